"""The bit-identity guard's grid of fits, and the digest of one fitted model.

Every fit here uses options whose results must not change while the code is
reorganised: both estimators, float32 and float64, every solver, several
batch sizes, with and without sample weights, and the additions (dropout,
batch normalisation, block_rows, sparse X, partial_fit, early stopping,
validation data, schedules, losses, activations, class weights).

A digest is the SHA-256 of the bytes of every weight, intercept and
batch-normalisation array, the loss curve, the validation scores and losses,
n_iter_ and the predictions (probabilities for a classifier) on the training
rows. Equal digests mean equal bits.

The bits depend on the kernel build (FMA or not) and on the BLAS kernels
OpenBLAS picks for this CPU, so the expected digests are recorded per
platform (``platform_key``): tests/guard/update.py records this machine's.
"""

import hashlib
import itertools
import json
import os
import warnings

import numpy as np
import scipy.sparse
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from cbp import MLPClassifier, MLPRegressor
from cbp._dispatch import kernel

N_SAMPLES, N_FEATURES = 64, 5


def _data(estimator, dtype):
    if estimator == "classifier":
        X, y = make_classification(N_SAMPLES, N_FEATURES, n_informative=3, n_classes=3,
                                   n_clusters_per_class=1, random_state=0)
    else:
        X, y = make_regression(N_SAMPLES, N_FEATURES, noise=1.0, random_state=0)
        y = y / np.std(y)
    X = StandardScaler().fit_transform(X).astype(dtype)
    sample_weight = np.random.RandomState(1).uniform(0.2, 2.0, N_SAMPLES)
    return X, y, sample_weight


def _grid():
    """(name, estimator, dtype, params, how) for every fit of the guard; how:
    'fit', 'sample_weight', 'sparse', 'partial_fit' or 'validation'."""
    fits = []
    base = dict(hidden_layer_sizes=(6, 4), max_iter=4, random_state=0)
    for estimator, dtype in itertools.product(("classifier", "regressor"),
                                              ("float32", "float64")):
        def add(label, params, how="fit"):
            fits.append((f"{estimator}-{dtype}-{label}", estimator, dtype,
                         {**base, **params}, how))

        for solver in ("sgd", "adam", "rmsprop"):
            for batch_size in (7, 32, "auto"):
                for how in ("fit", "sample_weight"):
                    add(f"{solver}-batch{batch_size}-{how}",
                        dict(solver=solver, batch_size=batch_size), how)
        for how in ("fit", "sample_weight"):
            add(f"lbfgs-{how}", dict(solver="lbfgs"), how)
        add("sgd-invscaling", dict(solver="sgd", learning_rate="invscaling"))
        add("sgd-adaptive", dict(solver="sgd", learning_rate="adaptive", max_iter=30,
                                 n_iter_no_change=2, tol=10.0))
        add("sgd-no-nesterov", dict(solver="sgd", nesterovs_momentum=False))
        add("adam-cosine", dict(solver="adam", learning_rate="cosine"))
        add("adam-dropout", dict(solver="adam", dropout=0.25, batch_size=16))
        add("adam-batch-norm", dict(solver="adam", batch_norm=True, batch_size=16))
        add("lbfgs-batch-norm", dict(solver="lbfgs", batch_norm=True))
        add("sgd-block-rows", dict(solver="sgd", block_rows=5, batch_size=16))
        add("adam-block-rows-dropout", dict(solver="adam", block_rows=4, batch_size=16,
                                            dropout=0.2))
        add("adam-sparse", dict(solver="adam", batch_size=16), "sparse")
        add("lbfgs-sparse", dict(solver="lbfgs"), "sparse")
        add("sgd-partial-fit", dict(solver="sgd", batch_size=16), "partial_fit")
        add("adam-partial-fit", dict(solver="adam", batch_size=16), "partial_fit")
        add("adam-early-stopping", dict(solver="adam", early_stopping=True,
                                        max_iter=8, batch_size=16))
        add("sgd-validation-data", dict(solver="sgd", batch_size=16), "validation")
        add("adam-weight-tol", dict(solver="adam", weight_tol=1e-9))
        for activation in ("identity", "logistic", "tanh", "leaky_relu"):
            add(f"adam-{activation}", dict(solver="adam", activation=activation))
        add("lbfgs-tanh", dict(solver="lbfgs", activation="tanh"))
        if estimator == "classifier":
            add("adam-class-weight", dict(solver="adam", class_weight="balanced"))
        else:
            for loss in ("poisson", "absolute_error", "huber"):
                add(f"adam-{loss}", dict(solver="adam", loss=loss))
    return fits


GRID = _grid()
NAMES = [name for name, *_ in GRID]


def fit(name):
    """The fitted model of the grid's fit ``name``, and the rows it predicts."""
    _, estimator, dtype, params, how = next(f for f in GRID if f[0] == name)
    X, y, sample_weight = _data(estimator, dtype)
    if estimator == "regressor" and params.get("loss") == "poisson":
        y = np.exp(y / 3)
    model = (MLPClassifier if estimator == "classifier" else MLPRegressor)(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if how == "fit":
            model.fit(X, y)
        elif how == "sample_weight":
            model.fit(X, y, sample_weight=sample_weight)
        elif how == "sparse":
            X = scipy.sparse.csr_matrix(np.where(np.abs(X) > 0.7, X, 0))
            model.fit(X, y)
        elif how == "validation":
            model.fit(X[:48], y[:48], X_val=X[48:], y_val=y[48:])
        elif how == "partial_fit":
            extra = {"classes": np.unique(y)} if estimator == "classifier" else {}
            for start in (0, 32, 0):
                model.partial_fit(X[start:start + 32], y[start:start + 32], **extra)
                extra = {}
    return model, X


def digest(model, X):
    """SHA-256 of everything a fit computes (see the module docstring)."""
    h = hashlib.sha256()

    def put(label, value):
        h.update(label.encode())
        array = np.ascontiguousarray(np.asarray(value, dtype=float)
                                     if isinstance(value, (list, float, int)) else value)
        h.update(str(array.dtype).encode() + str(array.shape).encode())
        h.update(array.tobytes())

    for l, (coef, intercept) in enumerate(zip(model.coefs_, model.intercepts_)):
        put(f"coef{l}", coef)
        put(f"intercept{l}", intercept)
    for part in ("gammas", "betas", "running_means", "running_vars"):
        for k, value in enumerate(getattr(model, f"batch_norm_{part}_", None) or []):
            put(f"{part}{k}", value)
    put("loss_curve", list(getattr(model, "loss_curve_", None) or []))
    put("loss", float(model.loss_))
    put("n_iter", int(model.n_iter_))
    for name in ("validation_scores_", "validation_loss_curve_"):
        put(name, list(getattr(model, name, None) or []))
    if isinstance(model, MLPClassifier):
        put("proba", model.predict_proba(X))
        put("predict", model.predict(X).astype(float))
    else:
        put("predict", model.predict(X))
    return h.hexdigest()


def platform_key():
    """What the bits depend on besides cbp's code: the kernel build, and the
    OpenBLAS kernels (core type) of SciPy's BLAS, which the kernel calls."""
    from threadpoolctl import threadpool_info

    blas = sorted({f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                   for i in threadpool_info() if i.get("user_api") == "blas"
                   and "scipy" in i.get("filepath", "")})
    return kernel.__name__.rsplit(".", 1)[-1] + " | " + "; ".join(blas)


def record_for_this_platform(path, results):
    """Write ``results`` into the JSON file ``path`` under this platform's
    key, keeping the other platforms' entries; returns the key."""
    recorded = {}
    if os.path.exists(path):
        with open(path) as f:
            recorded = json.load(f)
    key = platform_key()
    recorded[key] = results
    with open(path, "w") as f:
        json.dump(recorded, f, indent=1, sort_keys=True)
        f.write("\n")
    return key
