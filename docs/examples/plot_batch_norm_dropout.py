"""
Batch normalisation and dropout
===============================

Besides scikit-learn's parameters, :class:`cbp.MLPClassifier` takes
``batch_norm=True`` (batch normalisation after every hidden layer) and
``dropout=0.2`` (each hidden unit dropped with probability 0.2 while
training). Here the same network, ``MLPClassifier((256, 128))`` with adam and
scikit-learn's stopping rule, is fitted on scikit-learn's digits (1797 8×8
images, 10 classes, standardised) with and without them, on five random
75/25 train/test splits; we compare test accuracy, epochs to convergence and
fit time. These are the figures of the user guide's
:doc:`/user_guide/layers` page.
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from cbp import MLPClassifier

OPTIONS = {
    "plain": {},
    "batch_norm=True": {"batch_norm": True},
    "dropout=0.2": {"dropout": 0.2},
    "both": {"batch_norm": True, "dropout": 0.2},
}


def compare(splits=5):
    """Fit every network of OPTIONS on each split; per network, the lists of
    test accuracies, epochs and fit times (s)."""
    X, y = load_digits(return_X_y=True)
    rows = {name: {"accuracy": [], "epochs": [], "seconds": []} for name in OPTIONS}
    for seed in range(splits):
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        for name, options in OPTIONS.items():
            model = MLPClassifier((256, 128), max_iter=300, random_state=seed, **options)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train, y_train)
            rows[name]["seconds"].append(time.perf_counter() - start)
            rows[name]["accuracy"].append(model.score(X_test, y_test))
            rows[name]["epochs"].append(model.n_iter_)
    return rows


def print_table(rows):
    """The table of the user guide (Markdown), one line per network."""
    splits = len(next(iter(rows.values()))["accuracy"])
    print(f"MLPClassifier((256, 128)), adam, digits, {splits} train/test splits\n")
    print("| network | test accuracy | test errors of 450 | epochs | fit time |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        accuracy = np.array(r["accuracy"])
        print(f"| {name} | {accuracy.mean():.4f} ± {accuracy.std():.4f} | "
              f"{np.mean((1 - accuracy) * 450):.1f} | {np.mean(r['epochs']):.0f} "
              f"({min(r['epochs'])}–{max(r['epochs'])}) | {np.mean(r['seconds']):.2f} s |")


def plot(rows):
    """Mean test accuracy with the spread over the splits as error bars, and
    mean epochs to convergence."""
    names = list(rows)
    colors = ["C7", "C0", "C1", "C2"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5))
    left.bar(names, [np.mean(rows[n]["accuracy"]) for n in names],
             yerr=[np.std(rows[n]["accuracy"]) for n in names], capsize=4, color=colors)
    left.set_ylim(0.95, 1.0)
    left.set_ylabel("test accuracy")
    right.bar(names, [np.mean(rows[n]["epochs"]) for n in names], color=colors)
    right.set_ylabel("epochs to convergence")
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=30)
    fig.suptitle("MLPClassifier((256, 128)) on digits")
    fig.tight_layout()


# %%
# Five splits, four networks each (about 15 s on one core):

if __name__ == "__main__":
    rows = compare(splits=5)
    print_table(rows)
    plot(rows)
    plt.show()
