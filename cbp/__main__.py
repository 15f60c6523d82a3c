"""``cbp-demo`` (or ``python -m cbp``): train on scikit-learn's digits, next
to scikit-learn.

Trains cbp's MLPClassifier on the bundled 8x8 digits (1797 images), printing
each epoch's loss, then scikit-learn's MLPClassifier with the same parameters
and random_state, and reports test accuracy, fit times and whether the two
models agree.
"""

import argparse
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from . import MLPClassifier


def _fit_timed(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cbp-demo", description=__doc__)
    parser.add_argument("--solver", default="sgd", choices=["sgd", "adam", "lbfgs"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64])
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)

    from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=args.random_state, stratify=y
    )
    params = dict(
        hidden_layer_sizes=tuple(args.hidden),
        solver=args.solver,
        learning_rate_init=0.05 if args.solver == "sgd" else 0.001,
        max_iter=args.epochs,
        random_state=args.random_state,
    )
    print(
        f"digits: {X_train.shape[0]} training and {X_test.shape[0]} test images, "
        f"{X.shape[1]} features, 10 classes"
    )
    print(f"MLPClassifier({', '.join(f'{k}={v!r}' for k, v in params.items())})\n")

    print("cbp:")
    ours = MLPClassifier(verbose=True, **params)
    ours_time = _fit_timed(ours, X_train, y_train)
    theirs = SklearnMLPClassifier(**params)
    theirs_time = _fit_timed(theirs, X_train, y_train)

    ours_accuracy = ours.score(X_test, y_test)
    theirs_accuracy = theirs.score(X_test, y_test)
    weight_diff = max(
        float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
        for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_)
    )
    same_predictions = np.mean(ours.predict(X_test) == theirs.predict(X_test))

    print()
    print(f"{'':14}{'test accuracy':>15}{'fit time':>12}{'epochs':>8}")
    print(f"{'cbp':14}{ours_accuracy:>15.4f}{ours_time:>11.3f}s{ours.n_iter_:>8}")
    print(f"{'scikit-learn':14}{theirs_accuracy:>15.4f}{theirs_time:>11.3f}s{theirs.n_iter_:>8}")
    print(f"\ncbp fitted {theirs_time / ours_time:.1f}x faster than scikit-learn.")
    agree = weight_diff < 1e-6 and same_predictions == 1.0 and ours.n_iter_ == theirs.n_iter_
    print(
        f"The two models {'agree' if agree else 'DIFFER'}: largest relative weight "
        f"difference {weight_diff:.1e}, {100 * same_predictions:.1f} % identical "
        "test predictions."
    )
    # cbp reproduces scikit-learn 1.9's arithmetic; another release may differ
    import sklearn

    reproduced = tuple(int(v) for v in sklearn.__version__.split(".")[:2]) == (1, 9)
    if not reproduced:
        print(f"(cbp reproduces scikit-learn 1.9; scikit-learn {sklearn.__version__} "
              "is installed, so the two need not agree exactly.)")
    return 0 if agree or not reproduced else 1


if __name__ == "__main__":
    sys.exit(main())
