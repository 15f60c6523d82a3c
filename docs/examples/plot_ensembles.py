"""
An ensemble against a single network
====================================

``ensemble_size=k`` makes :class:`cbp.MLPClassifier` train k networks at
once on the same mini-batches, as TabM does (BatchEnsemble): the members
share most weights (``ensemble="batch"``, the default, or ``"mini"``) or none
(``"packed"``), and ``predict_proba`` averages their probabilities. Here a
single network and ensembles of 8 are fitted on scikit-learn's digits; we
compare test accuracy, log-loss and fit time (on one thread, so that the
times compare the work done).
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from cbp import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

recipe = dict(hidden_layer_sizes=(128, 128), solver="adamw", learning_rate_init=2e-3,
              batch_size=64, max_iter=100, early_stopping=True, n_iter_no_change=10,
              random_state=0)
networks = {
    "single network": {},
    'k=8, "batch"': {"ensemble_size": 8, "ensemble": "batch"},
    'k=8, "mini"': {"ensemble_size": 8, "ensemble": "mini"},
    'k=8, "packed"': {"ensemble_size": 8, "ensemble": "packed"},
}

results, models = {}, {}
for name, extra in networks.items():
    model = MLPClassifier(**recipe, **extra)
    start = time.perf_counter()
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    accuracy = model.score(X_test, y_test)
    loss = log_loss(y_test, model.predict_proba(X_test))
    results[name] = (accuracy, loss, seconds)
    models[name] = model
    print(f"{name:>15}: accuracy {accuracy:.4f}, log-loss {loss:.4f}, "
          f"{model.n_iter_} epochs in {seconds:.2f} s")

# %%
# Each member on its own
# ----------------------
#
# ``predict(X, members=True)`` gives every member's own prediction, one
# column per member. In the ``"batch"`` form each member alone is usually
# weaker than the average of all of them.

model = models['k=8, "batch"']
members = model.predict(X_test, members=True)  # (n_samples, 8)
print("members alone:", np.round(np.mean(members == y_test[:, None], axis=0), 3))
print(f"their average: {model.score(X_test, y_test):.3f}")

# %%
# Accuracy and fit time
# ---------------------

names = list(results)
fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5))
colors = ["C7", "C0", "C1", "C2"]
left.bar(names, [results[n][0] for n in names], color=colors)
left.set_ylim(0.9, 1.0)
left.set_ylabel("test accuracy")
right.bar(names, [results[n][2] for n in names], color=colors)
right.set_ylabel("fit time (s)")
for ax in (left, right):
    ax.tick_params(axis="x", labelrotation=30)
fig.suptitle("MLPClassifier((128, 128)) on digits")
fig.tight_layout()
