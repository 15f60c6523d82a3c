"""Archives written by cbp's save() at a known commit, kept as test data.

tests/test_archives.py loads each with ``cbp.load`` and checks that today's
code predicts from it, and continues training it, exactly as the code that
wrote it did: the archive format and its meaning must not drift while the
package is reorganised.

    python tests/data/archives/make.py --archives   # write the .npz files
                                                    # (only ever at the commit
                                                    # that introduces them)
    python tests/data/archives/make.py              # record this platform's
                                                    # expected results

The archives are written once and never rewritten. The expected results are
recorded per platform (kernel build and OpenBLAS core type, as the guard's
tests/guard/fits.py ``platform_key``), as SHA-256 digests in expected.json;
``<name>.predict.npy`` holds the predictions of the platform that wrote the
archives, for a tolerance check on any platform.
"""

import hashlib
import os
import sys
import warnings

import numpy as np
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "guard"))


def data(task, dtype):
    """(X, y) for 'classifier', 'binary' or 'regressor', of dtype."""
    if task == "regressor":
        X, y = make_regression(80, 5, noise=1.0, random_state=0)
        y = y / np.std(y)
    else:
        X, y = make_classification(80, 5, n_informative=3,
                                   n_classes=3 if task == "classifier" else 2,
                                   n_clusters_per_class=1, random_state=0)
    return StandardScaler().fit_transform(X).astype(dtype), y


# name -> (estimator, task, dtype, parameters, how it continues training)
ARCHIVES = {
    "classifier-adam-cosine-batchnorm-float32": (
        "MLPClassifier", "classifier", "float32",
        dict(hidden_layer_sizes=(7, 5), solver="adam", learning_rate="cosine",
             batch_norm=True, batch_size=16, max_iter=6, random_state=0),
        "partial_fit"),
    "regressor-sgd-huber-float64": (
        "MLPRegressor", "regressor", "float64",
        dict(hidden_layer_sizes=(6,), solver="sgd", loss="huber", huber_delta=0.5,
             learning_rate="invscaling", batch_size=10, max_iter=5, random_state=1),
        "partial_fit"),
    "classifier-lbfgs-float64": (
        "MLPClassifier", "binary", "float64",
        dict(hidden_layer_sizes=(5,), solver="lbfgs", activation="tanh",
             max_iter=15, random_state=2),
        "warm_start"),
    "classifier-rmsprop-dropout-float32": (
        "MLPClassifier", "classifier", "float32",
        dict(hidden_layer_sizes=(8, 6), solver="rmsprop", dropout=[0.2, 0.1],
             activation="leaky_relu", batch_size=20, max_iter=5, random_state=3),
        "partial_fit"),
    "regressor-adam-early-stopping-float64": (
        "MLPRegressor", "regressor", "float64",
        dict(hidden_layer_sizes=(6,), solver="adam", early_stopping=True,
             validation_fraction=0.2, n_iter_no_change=2, max_iter=12,
             random_state=4),
        "warm_start"),
}


def fit(name):
    import cbp

    estimator, task, dtype, params, _ = ARCHIVES[name]
    X, y = data(task, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(cbp, estimator)(**params).fit(X, y)


def predictions(model, task, dtype):
    X, _ = data(task, dtype)
    out = {"predict": model.predict(X)}
    if hasattr(model, "predict_proba"):
        out["predict_proba"] = model.predict_proba(X)
    return out


def continue_training(model, name):
    """The model after one more round of training, as ARCHIVES says: one
    partial_fit, or a warm-started fit of 3 iterations."""
    _, task, dtype, _, how = ARCHIVES[name]
    X, y = data(task, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if how == "partial_fit":
            return model.partial_fit(X, y)
        return model.set_params(warm_start=True, max_iter=3).fit(X, y)


def sha(array):
    array = np.ascontiguousarray(array)
    h = hashlib.sha256(str(array.dtype).encode() + str(array.shape).encode())
    h.update(array.tobytes())
    return h.hexdigest()


def results(name):
    """{label: digest} of what today's code does with archive ``name``."""
    import cbp
    from fits import digest

    _, task, dtype, _, _ = ARCHIVES[name]
    model = cbp.load(os.path.join(HERE, name + ".npz"))
    out = {label: sha(v) for label, v in predictions(model, task, dtype).items()}
    X, _ = data(task, dtype)
    out["continued"] = digest(continue_training(model, name), X)
    return out


def main():
    from fits import record_for_this_platform

    if "--archives" in sys.argv:
        for name, (_, task, dtype, _, _) in ARCHIVES.items():
            model = fit(name)
            model.save(os.path.join(HERE, name + ".npz"))
            np.save(os.path.join(HERE, name + ".predict.npy"),
                    predictions(model, task, dtype)["predict"])
    key = record_for_this_platform(os.path.join(HERE, "expected.json"),
                                   {name: results(name) for name in ARCHIVES})
    print(f"recorded {len(ARCHIVES)} archives' results for {key}")


if __name__ == "__main__":
    main()
