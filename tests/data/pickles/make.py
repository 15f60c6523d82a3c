"""Models pickled by cbp before the reorganisation, kept as test data.

tests/test_pickles.py unpickles each with today's code and checks that it is
the same class at the same import path, predicts exactly as the code that
pickled it did, and trains on (one more partial_fit, or a warm-started fit
for lbfgs and early stopping) to exactly the weights that code reached.

The pickles were written by the code of commit df30b2f, the last one before
the Python package was reorganised (cbp/_options.py, _training.py,
_fitted.py, _labels.py). Run this script with that code installed, from a
directory other than the repository root (so that the source folder cbp/
does not shadow the installed package):

    git worktree add --detach ../old df30b2f
    (cd ../old && pip install --no-build-isolation --no-deps .)
    cd /tmp
    python .../tests/data/pickles/make.py --pickles   # write data.npz and the
    CBP_KERNEL=baseline python .../make.py --pickles  # .pkl files of each kernel
                                                      # build (once, at df30b2f;
                                                      # never again)
    python .../tests/data/pickles/make.py             # record the results of
    CBP_KERNEL=baseline python .../make.py            # another platform

A pickle names the kernel module that built the model's optimizer
(cbp._kernel or cbp._kernel_avx2), and only that build can train it on, so
each build has its own pickles, in <kernel>/<name>.pkl.

What the old code computes depends on the kernel build (FMA or not) and on
the OpenBLAS kernels chosen for the CPU, so the results are recorded per
platform, as tests/guard/fits.py's ``platform_key`` names it, in
expected/<platform>/ (platforms.json maps each key to its folder, and each
kernel build to the platform that wrote its pickles): <name>.predict.npy,
for a classifier <name>.proba.npy, and <name>.continued.npy, every trained
array of the model after continue_training, flattened and concatenated.
"""

import json
import os
import pickle
import re
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "guard"))

# name -> (estimator, task, dtype, parameters)
MODELS = {
    "classifier-adam-float32": (
        "MLPClassifier", "classifier", "float32",
        dict(hidden_layer_sizes=(7, 5), solver="adam", batch_size=16, max_iter=6,
             random_state=0)),
    "regressor-sgd-huber-float64": (
        "MLPRegressor", "regressor", "float64",
        dict(hidden_layer_sizes=(6,), solver="sgd", loss="huber", huber_delta=0.5,
             learning_rate="invscaling", batch_size=10, max_iter=5, random_state=1)),
    "classifier-lbfgs-float64": (
        "MLPClassifier", "classifier", "float64",
        dict(hidden_layer_sizes=(5,), solver="lbfgs", activation="tanh", max_iter=15,
             random_state=2)),
    "classifier-rmsprop-dropout-batchnorm-float32": (
        "MLPClassifier", "classifier", "float32",
        dict(hidden_layer_sizes=(8, 6), solver="rmsprop", dropout=[0.2, 0.1],
             batch_norm=True, batch_size=20, max_iter=5, random_state=3)),
    "classifier-adam-early-stopping-float64": (
        "MLPClassifier", "classifier", "float64",
        dict(hidden_layer_sizes=(6,), solver="adam", early_stopping=True,
             validation_fraction=0.2, n_iter_no_change=2, max_iter=12,
             random_state=4)),
    "multilabel-sgd-block-rows-float64": (
        "MLPClassifier", "multilabel", "float64",
        dict(hidden_layer_sizes=(6, 5), solver="sgd", block_rows=4, batch_size=16,
             max_iter=5, random_state=5)),
}


def make_data():
    """{task: (X, y)} as written to data.npz (X in float64)."""
    from sklearn.datasets import (make_classification, make_multilabel_classification,
                                  make_regression)
    from sklearn.preprocessing import StandardScaler

    X_c, y_c = make_classification(80, 5, n_informative=3, n_classes=3,
                                   n_clusters_per_class=1, random_state=0)
    X_r, y_r = make_regression(80, 5, noise=1.0, random_state=0)
    X_m, y_m = make_multilabel_classification(80, 5, n_classes=3, random_state=0)
    return {"classifier": (StandardScaler().fit_transform(X_c), y_c),
            "regressor": (StandardScaler().fit_transform(X_r), y_r / np.std(y_r)),
            "multilabel": (StandardScaler().fit_transform(X_m), y_m)}


def data(task, dtype):
    """(X, y) of ``task`` as stored in data.npz, X of ``dtype``."""
    with np.load(os.path.join(HERE, "data.npz"), allow_pickle=False) as stored:
        return stored[f"X_{task}"].astype(dtype), stored[f"y_{task}"]


def continues_with(name):
    """How the model trains on: 'warm_start' for lbfgs and for early stopping
    (which partial_fit refuses), else 'partial_fit'."""
    params = MODELS[name][3]
    if params["solver"] == "lbfgs" or params.get("early_stopping"):
        return "warm_start"
    return "partial_fit"


def continue_training(model, name):
    """One partial_fit on the whole data set, or (continues_with) a
    warm-started fit of 3 iterations."""
    _, task, dtype, _ = MODELS[name]
    X, y = data(task, dtype)
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if continues_with(name) == "partial_fit":
            return model.partial_fit(X, y)
        return model.set_params(warm_start=True, max_iter=3).fit(X, y)


def trained_arrays(model):
    """Every trained array (weights, intercepts, batch normalisation's
    parameters and running statistics), flattened and concatenated."""
    arrays = list(model.coefs_) + list(model.intercepts_)
    for part in ("gammas", "betas", "running_means", "running_vars"):
        arrays += list(getattr(model, f"batch_norm_{part}_", None) or [])
    return np.concatenate([np.ravel(a) for a in arrays])


def predictions(model, name):
    """{'predict': ..., 'proba': ... for a classifier} on the model's data."""
    _, task, dtype, _ = MODELS[name]
    X, _ = data(task, dtype)
    out = {"predict": model.predict(X)}
    if hasattr(model, "predict_proba"):
        out["proba"] = model.predict_proba(X)
    return out


def build():
    """The name of the kernel build in use: '_kernel' or '_kernel_avx2'."""
    from cbp._dispatch import kernel

    return kernel.__name__.rsplit(".", 1)[-1]


def pickle_path(name):
    """The pickle of model ``name`` written by the kernel build in use."""
    return os.path.join(HERE, build(), name + ".pkl")


def load(name):
    with open(pickle_path(name), "rb") as f:
        return pickle.loads(f.read())


def folder(key):
    """The folder name of platform ``key``."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", key).strip("-")


def write_pickles():
    import cbp
    from sklearn.exceptions import ConvergenceWarning

    if not os.path.exists(os.path.join(HERE, "data.npz")):
        np.savez(os.path.join(HERE, "data.npz"),
                 **{f"{part}_{task}": value for task, (X, y) in make_data().items()
                    for part, value in (("X", X), ("y", y))})
    os.makedirs(os.path.join(HERE, build()), exist_ok=True)
    for name, (estimator, task, dtype, params) in MODELS.items():
        X, y = data(task, dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = getattr(cbp, estimator)(**params).fit(X, y)
        with open(pickle_path(name), "wb") as f:
            f.write(pickle.dumps(model))


def main():
    from fits import platform_key

    import cbp

    if os.path.dirname(os.path.abspath(cbp.__file__)) == os.path.join(
            os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "cbp"):
        sys.exit("cbp is imported from the source folder: run from another directory")
    path = os.path.join(HERE, "platforms.json")
    platforms = (json.load(open(path)) if os.path.exists(path)
                 else {"recorded": {}, "written_on": {}})
    if "--pickles" in sys.argv:
        write_pickles()
        platforms["written_on"][build()] = platform_key()
    key = platform_key()
    out = os.path.join(HERE, "expected", folder(key))
    os.makedirs(out, exist_ok=True)
    for name in MODELS:
        for label, value in predictions(load(name), name).items():
            np.save(os.path.join(out, f"{name}.{label}.npy"), value)
        np.save(os.path.join(out, f"{name}.continued.npy"),
                trained_arrays(continue_training(load(name), name)))
    platforms["recorded"][key] = folder(key)
    with open(path, "w") as f:
        json.dump(platforms, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"recorded {len(MODELS)} pickles' results for {key} in expected/{folder(key)}")


if __name__ == "__main__":
    main()
