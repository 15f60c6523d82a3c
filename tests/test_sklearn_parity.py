"""cbp's estimators give scikit-learn's results for the same random_state.

Every test fits scikit-learn's MLP and cbp's with the same parameters on the
same float64 data and asserts: weights within a relative 1e-6 (in practice
they agree to ~1e-15), the same n_iter_, and identical predictions.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler

import sklearn

from cbp import MLPClassifier, MLPRegressor

# cbp reproduces scikit-learn 1.9's arithmetic: with another release these
# comparisons would test that release's changes, not cbp
if tuple(int(v) for v in sklearn.__version__.split(".")[:2]) != (1, 9):
    pytest.skip(f"cbp reproduces scikit-learn 1.9's MLP; scikit-learn "
                f"{sklearn.__version__} is installed", allow_module_level=True)

RTOL = 1e-6
ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
SOLVERS = ["sgd", "adam", "lbfgs"]


def _data(task, n=90, seed=0):
    rng = np.random.RandomState(seed)
    if task == "binary":
        X, y = make_classification(n, 6, n_informative=4, random_state=seed)
    elif task == "multiclass":
        X, y = make_classification(
            n, 6, n_informative=4, n_classes=3, n_clusters_per_class=1, random_state=seed
        )
    elif task == "multilabel":
        X, y = make_multilabel_classification(n, 6, n_classes=3, random_state=seed)
    elif task == "regression":
        X, y = make_regression(n, 6, noise=1.0, random_state=seed)
        y = y / np.std(y)
    elif task == "multioutput":
        X, y = make_regression(n, 6, n_targets=2, noise=1.0, random_state=seed)
        y = y / np.std(y, axis=0)
    elif task == "poisson":
        X = rng.normal(size=(n, 6))
        y = rng.poisson(np.exp(0.3 * X[:, 0] - 0.2 * X[:, 1])).astype(float)
    X = StandardScaler().fit_transform(X)
    return X, y


def _pair(task, **params):
    if task in ("binary", "multiclass", "multilabel"):
        return MLPClassifier(**params), SkMLPClassifier(**params)
    if task == "poisson":
        return MLPRegressor(loss="poisson", **params), SkMLPRegressor(loss="poisson", **params)
    return MLPRegressor(**params), SkMLPRegressor(**params)


def _fit_both(task, sample_weight=None, **params):
    X, y = _data(task)
    ours, theirs = _pair(task, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y, sample_weight=sample_weight)
        theirs.fit(X, y, sample_weight=sample_weight)
    return ours, theirs, X


def _worst_relative_difference(ours, theirs):
    worst = 0.0
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.shape == b.shape
        worst = max(worst, np.max(np.abs(a - b)) / np.max(np.abs(b)))
    return worst


def assert_same_model(ours, theirs, X):
    worst = _worst_relative_difference(ours, theirs)
    assert worst <= RTOL, f"weights differ from scikit-learn's by {worst:.2e} (relative)"
    assert ours.n_iter_ == theirs.n_iter_, "n_iter_ differs from scikit-learn's"
    if isinstance(ours, MLPClassifier):
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression", "poisson"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_weights_after_five_epochs_match_sklearn(task, solver, activation):
    ours, theirs, X = _fit_both(
        task, hidden_layer_sizes=(7,), activation=activation, solver=solver,
        max_iter=5, random_state=0, batch_size=16,
        learning_rate_init=0.01 if solver != "lbfgs" else 0.001,
    )
    assert_same_model(ours, theirs, X)
    if solver != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
        dict(solver="sgd", momentum=0.5, nesterovs_momentum=True),
        dict(solver="sgd", momentum=0.0),
        dict(solver="sgd", learning_rate="invscaling", power_t=0.3, learning_rate_init=0.1),
        dict(solver="sgd", learning_rate="adaptive", n_iter_no_change=1, tol=10.0),
        dict(solver="adam", batch_size=7),
        dict(solver="sgd", batch_size=1),
        dict(solver="adam", batch_size=1000),
        dict(solver="adam", hidden_layer_sizes=(5, 4, 6, 3)),
        dict(solver="sgd", hidden_layer_sizes=(5, 4, 6, 3), activation="tanh"),
        dict(solver="adam", early_stopping=True, validation_fraction=0.2),
        dict(solver="sgd", early_stopping=True, n_iter_no_change=2, tol=0.5),
        dict(solver="adam", alpha=1.0),
        dict(solver="lbfgs", alpha=0.5),
        dict(solver="sgd", alpha=0.0),
        dict(solver="adam", shuffle=False),
        dict(solver="adam", beta_1=0.5, beta_2=0.9, epsilon=1e-4),
        dict(solver="adam", tol=1.0, n_iter_no_change=2),
    ],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()),
)
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_options_match_sklearn(task, params):
    params = dict(dict(hidden_layer_sizes=(6,), max_iter=8, random_state=1,
                       learning_rate_init=0.01), **params)
    if params.get("batch_size") == 1000:
        with pytest.warns(UserWarning, match="clipped"):
            ours, theirs, X = _fit_both(task, **params)
    else:
        ours, theirs, X = _fit_both(task, **params)
    assert_same_model(ours, theirs, X)
    if params["solver"] != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    if params.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
        np.testing.assert_allclose(ours.best_validation_score_, theirs.best_validation_score_)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_sample_weights_match_sklearn(task, solver):
    n = _data(task)[0].shape[0]
    sample_weight = np.random.RandomState(3).uniform(0.1, 3.0, n)
    ours, theirs, X = _fit_both(
        task, sample_weight=sample_weight, hidden_layer_sizes=(6,), solver=solver,
        max_iter=5, random_state=2, learning_rate_init=0.01,
    )
    assert_same_model(ours, theirs, X)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_warm_start_matches_sklearn(solver):
    X, y = _data("multiclass")
    params = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=3, random_state=0,
                  warm_start=True, learning_rate_init=0.01)
    ours, theirs = MLPClassifier(**params), SkMLPClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):
            ours.fit(X, y)
            theirs.fit(X, y)
    assert_same_model(ours, theirs, X)
    assert ours.t_ == theirs.t_


def _partial_fits_in_slices(X, y, solver, rows):
    """cbp's and scikit-learn's classifiers after partial_fit on each slice of
    ``rows`` rows in turn."""
    params = dict(hidden_layer_sizes=(6,), solver=solver, random_state=0,
                  learning_rate_init=0.01)
    ours, theirs = MLPClassifier(**params), SkMLPClassifier(**params)
    for start in range(0, X.shape[0], rows):
        batch = slice(start, start + rows)
        ours.partial_fit(X[batch], y[batch], classes=np.unique(y))
        theirs.partial_fit(X[batch], y[batch], classes=np.unique(y))
    return ours, theirs


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_matches_sklearn(solver):
    X, y = _data("multiclass")
    ours, theirs = _partial_fits_in_slices(X, y, solver, 30)
    assert_same_model(ours, theirs, X)


def test_regressor_partial_fit_matches_sklearn():
    X, y = _data("regression")
    ours = MLPRegressor(hidden_layer_sizes=(5,), solver="sgd", random_state=0)
    theirs = SkMLPRegressor(hidden_layer_sizes=(5,), solver="sgd", random_state=0)
    for _ in range(3):
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
    assert_same_model(ours, theirs, X)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_multioutput_squared_error_weights_match_sklearn(solver):
    # The gradient is scikit-learn's; only the reported loss differs (#8349).
    ours, theirs, X = _fit_both(
        "multioutput", hidden_layer_sizes=(6,), solver=solver, max_iter=5,
        random_state=0, learning_rate_init=0.01,
    )
    assert_same_model(ours, theirs, X)


def test_multioutput_squared_error_loss_is_the_one_whose_gradient_is_followed():
    # scikit-learn #8349: its loss averages over the outputs, its gradient
    # sums. cbp reports 0.5 * sum over outputs of the mean squared error.
    X, y = _data("multioutput")
    model = MLPRegressor(hidden_layer_sizes=(6,), solver="lbfgs", alpha=0.0,
                         max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    expected = 0.5 * np.mean(np.sum((y - model.predict(X)) ** 2, axis=1))
    np.testing.assert_allclose(model.loss_, expected, rtol=1e-10)


def test_float32_lbfgs_matches_sklearn_to_float32_precision():
    X, y = _data("multiclass")
    X = X.astype(np.float32)
    ours = MLPClassifier(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=5, random_state=0)
    theirs = SkMLPClassifier(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert _worst_relative_difference(ours, theirs) < 1e-3
    assert all(c.dtype == np.float32 for c in ours.coefs_)  # scikit-learn loses float32


# ---------------------------------------------------------------------------
# Sparse input: the first layer multiplies the CSR matrix as it is
# ---------------------------------------------------------------------------

def _sparse_data(task, n=120, n_features=300, density=0.04, seed=0):
    """A text-like CSR matrix (non-negative tf-idf-like values, a few empty
    rows) with targets from _data's recipes for the same task."""
    import scipy.sparse

    rng = np.random.RandomState(seed)
    X = scipy.sparse.random(n, n_features, density=density, format="csr",
                            random_state=rng, data_rvs=lambda k: rng.uniform(0.1, 1.0, k))
    keep = np.ones(n)
    keep[:3] = 0  # three empty rows
    X = scipy.sparse.diags(keep) @ X
    X.eliminate_zeros()
    _, y = _data(task, n=n, seed=seed)
    return X, y


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression", "poisson"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_fit_matches_sklearn_sparse_fit(solver, task, fmt):
    X, y = _sparse_data(task)
    X = X.asformat(fmt)
    params = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=5, random_state=0,
                  batch_size=16, learning_rate_init=0.01 if solver != "lbfgs" else 0.001)
    ours, theirs = _pair(task, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert_same_model(ours, theirs, X)
    if solver != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam", activation="tanh", hidden_layer_sizes=(6, 5)),
        dict(solver="sgd", shuffle=False),
        dict(solver="adam", early_stopping=True, validation_fraction=0.2),
        dict(solver="sgd", batch_size=1),
        dict(solver="adam", alpha=1.0, batch_size=1000),
    ],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()),
)
def test_sparse_options_match_sklearn(params):
    X, y = _sparse_data("multiclass")
    params = dict(dict(hidden_layer_sizes=(8,), max_iter=6, random_state=1,
                       learning_rate_init=0.01), **params)
    ours, theirs = _pair("multiclass", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y)
        theirs.fit(X, y)
    assert_same_model(ours, theirs, X)


@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_sample_weights_match_sklearn(solver):
    X, y = _sparse_data("regression")
    sample_weight = np.random.RandomState(3).uniform(0.1, 3.0, X.shape[0])
    ours, theirs = _pair("regression", hidden_layer_sizes=(6,), solver=solver,
                         max_iter=5, random_state=2, learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y, sample_weight=sample_weight)
        theirs.fit(X, y, sample_weight=sample_weight)
    assert_same_model(ours, theirs, X)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_sparse_partial_fit_matches_sklearn(solver):
    X, y = _sparse_data("multiclass")
    ours, theirs = _partial_fits_in_slices(X, y, solver, 40)
    assert_same_model(ours, theirs, X)


# ---------------------------------------------------------------------------
# Batches larger than a chunk: gradients summed over chunks of rows
# ---------------------------------------------------------------------------

@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of at most 8 rows (instead of ~1 MiB of activations)."""
    import cbp._network
    import cbp._parts

    monkeypatch.setattr(cbp._network, "_CHUNK_VALUES", 8)
    monkeypatch.setattr(cbp._network, "_MIN_CHUNK_ROWS", 8)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("params", [
    dict(solver="lbfgs"),
    dict(solver="sgd", batch_size=90),            # full batch, 12 chunks
    dict(solver="adam", batch_size=30),           # 3 chunks of 8 and one of 6
    dict(solver="adam", batch_size=30, shuffle=False),
], ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
def test_chunked_batches_match_sklearn(small_chunks, params, sparse):
    import scipy.sparse

    import cbp._network
    import cbp._parts

    X, y = _data("multiclass")
    if sparse:
        X = scipy.sparse.csr_matrix(np.where(np.abs(X) < 0.7, 0.0, X))
    params = dict(dict(hidden_layer_sizes=(7, 5), max_iter=6, random_state=0,
                       learning_rate_init=0.01), **params)
    units = [X.shape[1], *params["hidden_layer_sizes"], 3]
    assert cbp._network.chunk_rows(cbp._parts.Architecture(units), X.shape[0],
                                   not sparse) == 8
    ours, theirs = _pair("multiclass", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert_same_model(ours, theirs, X)
