"""
A hyper-parameter search on threads
===================================

cbp's kernel releases the GIL while it trains, so several fits can run at
once in threads of one process -- no copies of the data to worker processes,
no start-up cost. Here scikit-learn's ``GridSearchCV`` tries
:class:`cbp.MLPClassifier`'s ``hidden_layer_sizes`` and ``alpha`` on the digits,
with ``n_jobs=2`` and joblib's threading backend. Each fit keeps BLAS to
one thread (``threadpool_limits(1)``), so that two fits at once use two
cores without competing for them.
"""

import time
import warnings

import joblib
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from cbp import MLPClassifier

X, y = load_digits(return_X_y=True)
X = X / 16

grid = {"hidden_layer_sizes": [(16,), (64,), (128,)], "alpha": [1e-4, 1e-2, 1.0]}
search = GridSearchCV(MLPClassifier(max_iter=50, random_state=0), grid, cv=3, n_jobs=2)

start = time.perf_counter()
with joblib.parallel_backend("threading"), threadpool_limits(1), \
        warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X, y)
print(f"{len(search.cv_results_['params']) * 3} fits in "
      f"{time.perf_counter() - start:.1f} s on 2 threads")
print("best:", search.best_params_, f"accuracy {search.best_score_:.4f}")

# %%
# The mean cross-validated accuracy of every candidate
# ----------------------------------------------------

scores = search.cv_results_["mean_test_score"].reshape(
    len(grid["alpha"]), len(grid["hidden_layer_sizes"]))  # the grid's keys, sorted

fig, ax = plt.subplots(figsize=(5.5, 3.5))
for i, alpha in enumerate(grid["alpha"]):
    ax.plot([str(h) for h in grid["hidden_layer_sizes"]], scores[i], "o-",
            label=f"alpha={alpha:g}")
ax.set_xlabel("hidden_layer_sizes")
ax.set_ylabel("mean test accuracy (3-fold)")
ax.set_title("GridSearchCV(MLPClassifier) on digits")
ax.legend()
fig.tight_layout()
