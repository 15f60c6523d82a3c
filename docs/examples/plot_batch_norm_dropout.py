"""
Batch normalisation and dropout
===============================

Besides scikit-learn's parameters, cbp's :class:`cbp.MLPClassifier` takes
``batch_norm=True`` (batch normalisation after every hidden layer) and
``dropout=0.2`` (each hidden unit dropped with probability 0.2 while
training). Here the same network is fitted on scikit-learn's digits with and
without them, on three random train/test splits, and the test accuracies are
compared. (The networks are small: BLAS is kept to one thread, where their
matrix products run fastest.)
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from cbp import MLPClassifier

options = {
    "plain": {},
    "batch_norm=True": {"batch_norm": True},
    "dropout=0.2": {"dropout": 0.2},
    "both": {"batch_norm": True, "dropout": 0.2},
}

X, y = load_digits(return_X_y=True)
accuracy = {name: [] for name in options}
for seed in range(3):
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    for name, extra in options.items():
        model = MLPClassifier((128, 64), max_iter=100, random_state=seed, **extra)
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        accuracy[name].append(model.score(X_test, y_test))

for name, scores in accuracy.items():
    print(f"{name:>16}: test accuracy {np.mean(scores):.4f} ± {np.std(scores):.4f}")

# %%
# The mean test accuracy over the three splits, with the spread as error bars.

names = list(accuracy)
means = [np.mean(accuracy[name]) for name in names]
spreads = [np.std(accuracy[name]) for name in names]

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(names, means, yerr=spreads, capsize=4, color=["C7", "C0", "C1", "C2"])
ax.set_ylim(0.9, 1.0)
ax.set_ylabel("test accuracy")
ax.set_title("MLPClassifier((128, 64)) on digits, 3 splits")
fig.tight_layout()
