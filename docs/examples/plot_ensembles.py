"""
An ensemble against a single network
====================================

``ensemble_size=k`` makes :class:`cbp.MLPClassifier` train k networks at
once on the same mini-batches, as TabM does (BatchEnsemble): the members
share most weights (``ensemble="batch"``, the default, or ``"mini"``) or none
(``"packed"``), and ``predict_proba`` averages their probabilities.

One recipe -- two hidden layers of 128, AdamW, batches of 64, early stopping
on a 10 % validation split -- as a single network and as ensembles of 32 in
each form, on scikit-learn's digits (standardised), five random 75/25
train/test splits. We compare test accuracy and log-loss of the averaged
prediction, the mean accuracy of the members alone, epochs and fit time (on
one thread, so that the times compare the work done). These are the figures
of the user guide's :doc:`/user_guide/ensembles` page.
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

RECIPE = dict(hidden_layer_sizes=(128, 128), solver="adamw", learning_rate_init=2e-3,
              batch_size=64, max_iter=200, early_stopping=True, n_iter_no_change=10)
FORMS = ("batch", "mini", "packed")


def options(k):
    """The networks compared: a single one, and ensembles of k in each form."""
    return {"single network": {}, **{f'ensemble_size={k}, "{form}"':
                                     {"ensemble_size": k, "ensemble": form}
                                     for form in FORMS}}


def compare(splits=5, k=32):
    """Fit every network on each split; per network, the lists of test
    accuracy, test log-loss, the members' mean accuracy, epochs and fit time."""
    networks = options(k)
    X, y = load_digits(return_X_y=True)
    rows = {name: {"accuracy": [], "log_loss": [], "members": [], "epochs": [],
                   "seconds": []} for name in networks}
    for seed in range(splits):
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        for name, settings in networks.items():
            model = MLPClassifier(**RECIPE, random_state=seed, **settings)
            start = time.perf_counter()
            with warnings.catch_warnings(), threadpool_limits(1):
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train, y_train)
            r = rows[name]
            r["seconds"].append(time.perf_counter() - start)
            r["accuracy"].append(model.score(X_test, y_test))
            r["log_loss"].append(log_loss(y_test, model.predict_proba(X_test)))
            # every member's own prediction, one column per member
            members = model.predict(X_test, members=True)  # (n_samples, k)
            r["members"].append(np.mean(members == y_test[:, None]))
            r["epochs"].append(model.n_iter_)
    return rows


def print_table(rows):
    """The table of the user guide (Markdown), one line per network."""
    splits = len(next(iter(rows.values()))["accuracy"])
    print(f"MLPClassifier((128, 128), solver='adamw'), digits, {splits} train/test splits\n")
    print("| network | test accuracy | test log-loss | members alone | epochs | fit time |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        accuracy = np.array(r["accuracy"])
        print(f"| {name} | {accuracy.mean():.4f} ± {accuracy.std():.4f} | "
              f"{np.mean(r['log_loss']):.4f} | {np.mean(r['members']):.4f} | "
              f"{np.mean(r['epochs']):.0f} | {np.mean(r['seconds']):.2f} s |")


def plot(rows):
    """Test accuracy of the average and of the members alone, and fit time."""
    names = list(rows)
    at = np.arange(len(names))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    left.bar(at - 0.2, [np.mean(rows[n]["accuracy"]) for n in names], 0.4,
             label="the network / the ensemble's average")
    left.bar(at + 0.2, [np.mean(rows[n]["members"]) for n in names], 0.4,
             label="its members alone")
    left.set_ylim(0.9, 1.0)
    left.set_ylabel("test accuracy")
    left.legend(fontsize=8, loc="upper left")
    right.bar(at, [np.mean(rows[n]["seconds"]) for n in names], color="C7")
    right.set_ylabel("fit time (s, one thread)")
    for ax in (left, right):
        ax.set_xticks(at, [n.replace("ensemble_size=", "k=").replace(", ", "\n")
                           for n in names], fontsize=8)
    fig.suptitle("MLPClassifier((128, 128), solver='adamw') on digits")
    fig.tight_layout()


# %%
# Five splits, a single network and three ensembles of 32 each (about a
# minute on one core). In ``"batch"`` and ``"mini"`` each member alone is
# weaker than the single network, and the average of 32 is better: the
# ensemble's point.

if __name__ == "__main__":
    rows = compare(splits=5, k=32)
    print_table(rows)
    plot(rows)
    plt.show()
