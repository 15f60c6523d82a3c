"""Bad input gets a clear Python exception, never a crash; unusual valid input works.

Each bad-input case runs in a forked child (tests/isolation.py), so that a
crash in the kernel fails that test instead of killing the test process.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from cbp import MLPClassifier, MLPRegressor
from isolation import assert_raises_isolated, run_isolated

RNG = np.random.RandomState(0)
X = RNG.normal(size=(40, 5))
Y_CLASS = np.arange(40) % 3
Y_REG = X[:, 0] - X[:, 1]
SOLVERS = ["sgd", "adam", "lbfgs"]


def _model(Estimator=MLPClassifier, **params):
    return Estimator(**{"hidden_layer_sizes": (4,), "max_iter": 3, "random_state": 0, **params})


def _fitted(Estimator=MLPClassifier, **params):
    y = Y_CLASS if Estimator is MLPClassifier else Y_REG
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _model(Estimator, **params).fit(X, y)


def _with(value, index=(3, 2), array=X):
    array = array.astype(float).copy()
    array[index] = value
    return array


# ----------------------------------------------------------------------
# fit: bad X, y, sample_weight
# ----------------------------------------------------------------------

BAD_FIT_INPUT = {
    "nan in X": (lambda: (_with(np.nan), Y_CLASS, None), ValueError, "NaN"),
    "inf in X": (lambda: (_with(np.inf), Y_CLASS, None), ValueError, "infinity"),
    "nan in y": (lambda: (X, _with(np.nan, 3, Y_REG), None), ValueError, "NaN"),
    "inf in y": (lambda: (X, _with(np.inf, 3, Y_REG), None), ValueError, "infinity"),
    "nan in sample_weight": (lambda: (X, Y_CLASS, _with(np.nan, 3, np.ones(40))), ValueError, "NaN"),
    "inf in sample_weight": (lambda: (X, Y_CLASS, _with(np.inf, 3, np.ones(40))), ValueError, "infinity"),
    "X 1-d": (lambda: (X[:, 0], Y_CLASS, None), ValueError, "2D array"),
    "X 3-d": (lambda: (X[:, :, None], Y_CLASS, None), ValueError, "dim"),
    "X scalar": (lambda: (3.0, Y_CLASS, None), ValueError, "2D array"),
    "y 3-d": (lambda: (X, Y_REG[:, None, None], None), ValueError, "dim|shape"),
    "no samples": (lambda: (X[:0], Y_CLASS[:0], None), ValueError, "0 sample"),
    "no features": (lambda: (X[:, :0], Y_CLASS, None), ValueError, "0 feature"),
    "X and y lengths differ": (lambda: (X, Y_CLASS[:-1], None), ValueError, "inconsistent"),
    "sample_weight length differs": (lambda: (X, Y_CLASS, np.ones(39)), ValueError, "sample_weight"),
    "sample_weight 2-d": (lambda: (X, Y_CLASS, np.ones((40, 2))), ValueError, "sample_weight|1D"),
    "strings in X": (lambda: (np.full((40, 5), "a"), Y_CLASS, None), ValueError, "convert|numeric|string"),
    "objects in X": (lambda: (np.array([[object()] * 5] * 40), Y_CLASS, None), (TypeError, ValueError), ""),
    "complex X": (lambda: (X + 1j, Y_CLASS, None), ValueError, "[Cc]omplex"),
    "all-zero sample_weight": (lambda: (X, Y_CLASS, np.zeros(40)), ValueError, "non-zero|zero"),
    "negative sample_weight": (lambda: (X, Y_CLASS, _with(-1.0, 3, np.ones(40))), ValueError, "[Nn]egative"),
}


@pytest.mark.parametrize("case", BAD_FIT_INPUT, ids=list(BAD_FIT_INPUT))
@pytest.mark.parametrize("solver", SOLVERS)
def test_bad_fit_input_raises(case, solver):
    make, exception, match = BAD_FIT_INPUT[case]
    Estimator = MLPRegressor if "in y" in case or "y 3-d" in case else MLPClassifier

    def fit():
        X_, y_, sw = make()
        _model(Estimator, solver=solver).fit(X_, y_, sample_weight=sw)

    assert_raises_isolated(exception, match, fit)


def test_complex_targets_raise():
    assert_raises_isolated(
        ValueError, "[Cc]omplex", lambda: _model(MLPRegressor).fit(X, Y_REG + 1j)
    )


def test_classifier_rejects_continuous_targets():
    assert_raises_isolated(ValueError, "continuous|Unknown label", lambda: _model().fit(X, Y_REG))


# ----------------------------------------------------------------------
# predict, score, partial_fit on a fitted model
# ----------------------------------------------------------------------

BAD_PREDICT_INPUT = {
    "too few features": (X[:, :4], ValueError, "features"),
    "too many features": (np.hstack([X, X]), ValueError, "features"),
    "nan": (_with(np.nan), ValueError, "NaN"),
    "1-d": (X[0], ValueError, "2D array"),
    "no samples": (X[:0], ValueError, "0 sample"),
    "strings": (np.full((3, 5), "a"), ValueError, "convert|numeric|string"),
    "complex": (X + 1j, ValueError, "[Cc]omplex"),
}


@pytest.mark.parametrize("case", BAD_PREDICT_INPUT, ids=list(BAD_PREDICT_INPUT))
@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba", "score"])
def test_bad_predict_input_raises(case, method):
    bad, exception, match = BAD_PREDICT_INPUT[case]
    model = _fitted()

    def call():
        if method == "score":
            return model.score(bad, Y_CLASS[: len(np.atleast_2d(bad))])
        return getattr(model, method)(bad)

    assert_raises_isolated(exception, match, call)


def test_predict_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    assert_raises_isolated(NotFittedError, "not fitted", lambda: _model().predict(X))


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_with_other_number_of_features_raises(solver):
    model = _model(solver=solver).partial_fit(X, Y_CLASS, classes=[0, 1, 2])
    assert_raises_isolated(ValueError, "features", lambda: model.partial_fit(X[:, :3], Y_CLASS))


def test_partial_fit_with_unseen_labels_raises():
    model = _model(solver="sgd").partial_fit(X, Y_CLASS, classes=[0, 1, 2])
    assert_raises_isolated(ValueError, "classes", lambda: model.partial_fit(X, Y_CLASS + 7))


def test_partial_fit_without_classes_raises():
    assert_raises_isolated(ValueError, "classes", lambda: _model(solver="sgd").partial_fit(X, Y_CLASS))


def test_partial_fit_with_other_number_of_outputs_raises():
    model = _model(MLPRegressor, solver="sgd").partial_fit(X, Y_REG)
    assert_raises_isolated(
        ValueError, "outputs", lambda: model.partial_fit(X, np.column_stack([Y_REG, Y_REG]))
    )


# ----------------------------------------------------------------------
# invalid parameters
# ----------------------------------------------------------------------

BAD_PARAMS = {
    "zero layer": dict(hidden_layer_sizes=(4, 0)),
    "negative layer": dict(hidden_layer_sizes=(-2,)),
    "float layer": dict(hidden_layer_sizes=(2.5,)),
    "string layers": dict(hidden_layer_sizes="big"),
    "absurd layer": dict(hidden_layer_sizes=(10**12,)),
    "unknown activation": dict(activation="swish"),
    "unknown solver": dict(solver="nadam"),
    "negative alpha": dict(alpha=-1e-3),
    "zero rate": dict(learning_rate_init=0.0),
    "negative rate": dict(learning_rate_init=-0.1),
    "nan rate": dict(learning_rate_init=float("nan")),
    "unknown schedule": dict(learning_rate="exponential"),
    "zero batch": dict(batch_size=0),
    "negative batch": dict(batch_size=-5),
    "float batch": dict(batch_size=2.5),
    "zero max_iter": dict(max_iter=0),
    "momentum above 1": dict(momentum=1.01),
    "validation_fraction 1": dict(validation_fraction=1.0),
    "beta_2 of 1": dict(beta_2=1.0),
    "zero epsilon": dict(epsilon=0.0),
    "negative tol": dict(tol=-1.0),
    "zero n_iter_no_change": dict(n_iter_no_change=0),
    "zero max_fun": dict(max_fun=0),
    "string shuffle": dict(shuffle="yes"),
}


@pytest.mark.parametrize("case", BAD_PARAMS, ids=list(BAD_PARAMS))
def test_invalid_parameter_raises(case):
    params = BAD_PARAMS[case]
    # InvalidParameterError is both a ValueError and a TypeError
    exception = (ValueError, MemoryError) if case == "absurd layer" else ValueError
    assert_raises_isolated(exception, None, lambda: _model(**params).fit(X, Y_CLASS))


def test_network_too_large_for_memory_raises_memory_error_before_work():
    assert_raises_isolated(
        MemoryError, "GiB", lambda: _model(hidden_layer_sizes=(10**6, 10**6)).fit(X, Y_CLASS)
    )


def test_memory_check_counts_every_member_of_a_packed_ensemble():
    """A network that fits in memory, whose 16 "packed" members (16 copies
    of its weights) do not: the check counts the members."""
    import os

    from cbp._network import check_fits_in_memory
    from cbp._parts import Architecture

    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    width = int((available / (4 * 80)) ** 0.5)  # (80 bytes a float64 value under adam)
    units = [10, width, width, 2]
    check_fits_in_memory(Architecture(units), 32, np.float64, "adam")  # a quarter of it
    with pytest.raises(MemoryError, match="GiB"):
        check_fits_in_memory(Architecture(units, (16, "packed")), 32, np.float64, "adam")


def test_absurd_batch_size_is_clipped_with_a_warning():
    with pytest.warns(UserWarning, match="clipped"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _model(solver="sgd", batch_size=10**12).fit(X, Y_CLASS)


def test_unknown_loss_raises():
    assert_raises_isolated(InvalidParameterError, "loss", lambda: MLPRegressor(loss="hinge").fit(X, Y_REG))


# ----------------------------------------------------------------------
# a failed fit leaves a fitted model exactly as it was
# ----------------------------------------------------------------------

FAILING_REFITS = {
    "nan in X": lambda m: m.fit(_with(np.nan), Y_CLASS),
    "warm_start other features": lambda m: m.set_params(warm_start=True).fit(X[:, :3], Y_CLASS),
    "bad parameter": lambda m: m.set_params(alpha=-1).fit(X, Y_CLASS),
    "partial_fit unseen label": lambda m: m.partial_fit(X, Y_CLASS + 5),
    "partial_fit nan": lambda m: m.partial_fit(_with(np.nan), Y_CLASS),
    # (dense X of the stochastic solvers is checked by the kernel as it reads
    # the rows: batches before the last row have updated the weights by then)
    "partial_fit inf in the last row": lambda m: m.set_params(batch_size=8, shuffle=False)
    .partial_fit(_with(np.inf, (39, 4)), Y_CLASS),
    "early stopping nan": lambda m: m.set_params(early_stopping=True, warm_start=True)
    .fit(_with(np.nan, (slice(0, 40, 7), 1)), Y_CLASS),
    "warm_start other classes": lambda m: m.set_params(warm_start=True).fit(X, Y_CLASS + 1),
    "diverging refit": lambda m: m.set_params(warm_start=True, learning_rate_init=1e300).fit(X * 1e100, Y_CLASS),
}


@pytest.mark.parametrize("case", FAILING_REFITS, ids=list(FAILING_REFITS))
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_failed_fit_leaves_fitted_model_unchanged(case, solver):
    model = _fitted(solver=solver)
    before = [a.copy() for a in model.coefs_ + model.intercepts_]
    proba = model.predict_proba(X)
    attributes = (model.n_iter_, model.t_, model.loss_, list(model.loss_curve_))

    def refit_then_report():
        try:
            FAILING_REFITS[case](model)
        except Exception as exc:  # noqa: BLE001 - the failure is expected
            failure = exc
        else:
            return None
        return (
            type(failure).__name__,
            [a.copy() for a in model.coefs_ + model.intercepts_],
            model.predict_proba(X),
            (model.n_iter_, model.t_, model.loss_, list(model.loss_curve_)),
        )

    kind, value = run_isolated(refit_then_report)
    assert kind == "returned" and value is not None, f"the refit did not fail: {value!r}"
    _, after, proba_after, attributes_after = value
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(proba, proba_after)
    assert attributes == attributes_after


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("row", [0, 39])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_non_finite_X_gets_scikit_learns_error(solver, row, value):
    """The same message as scikit-learn's, wherever the value is (the
    kernel finds it for dense X and the stochastic solvers)."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    bad = _with(value, (row, 2))
    with pytest.raises(ValueError) as expected:
        SkMLP(solver=solver).fit(bad, Y_CLASS)
    with pytest.raises(ValueError) as got:
        _model(solver=solver, batch_size=8, shuffle=False).fit(bad, Y_CLASS)
    assert str(got.value) == str(expected.value)


def test_failed_first_fit_leaves_the_model_unfitted():
    model = _model()
    with pytest.raises(ValueError):
        model.fit(_with(np.nan), Y_CLASS)
    assert not hasattr(model, "coefs_")
    assert not hasattr(model, "classes_")


# ----------------------------------------------------------------------
# valid but unusual input: the same result as the plain case
# ----------------------------------------------------------------------


def _memmap(tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, X)
    return np.load(path, mmap_mode="r")


def _read_only(_):
    array = X.copy()
    array.flags.writeable = False
    return array


UNUSUAL_X = {
    "fortran order": lambda _: np.asfortranarray(X),
    "strided": lambda _: np.repeat(X, 2, axis=1)[:, ::2],
    "read-only": _read_only,
    "memory-mapped": _memmap,
    "list of lists": lambda _: X.tolist(),
}


@pytest.mark.parametrize("case", UNUSUAL_X, ids=list(UNUSUAL_X))
@pytest.mark.parametrize("solver", SOLVERS)
def test_unusual_layouts_give_the_plain_result(case, solver, tmp_path):
    plain = _fitted(solver=solver)
    unusual_X = UNUSUAL_X[case](tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        unusual = _model(solver=solver).fit(unusual_X, Y_CLASS)
    for a, b in zip(plain.coefs_, unusual.coefs_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(plain.predict_proba(X), unusual.predict_proba(unusual_X))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16])
def test_integer_and_float16_input_give_the_float64_result(dtype):
    X_cast = (X * 4).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cast = _model().fit(X_cast, Y_CLASS)
        plain = _model().fit(X_cast.astype(np.float64), Y_CLASS)
    for a, b in zip(plain.coefs_, cast.coefs_):
        np.testing.assert_array_equal(a, b)


def test_read_only_sample_weight_and_targets():
    sample_weight = np.linspace(0.5, 2, 40)
    y = Y_CLASS.copy()
    sample_weight.flags.writeable = False
    y.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _model().fit(X, y, sample_weight=sample_weight)
        plain = _model().fit(X, Y_CLASS, sample_weight=np.linspace(0.5, 2, 40))
    np.testing.assert_array_equal(model.coefs_[0], plain.coefs_[0])


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_a_single_sample(Estimator, solver):
    y = [1] if Estimator is MLPClassifier else [0.5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _model(Estimator, solver=solver).fit(X[:1], y)
    assert model.predict(X[:1]).shape == (1,)
    assert model.predict(X).shape == (40,)


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_single_class(solver):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _model(solver=solver).fit(X, np.full(40, "only"))
    np.testing.assert_array_equal(model.predict(X), np.full(40, "only"))


def test_batch_larger_than_n_equals_full_batch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match="clipped"):
            large = _model(solver="sgd", batch_size=1000).fit(X, Y_CLASS)
        full = _model(solver="sgd", batch_size=40).fit(X, Y_CLASS)
    np.testing.assert_array_equal(large.coefs_[0], full.coefs_[0])


def test_zero_weight_batches_are_skipped_not_divided_by_zero():
    sample_weight = np.zeros(40)
    sample_weight[::2] = 1.0  # with batch_size=1 and no shuffling, every other batch is empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = _model(solver="sgd", batch_size=1, shuffle=False).fit(
            X, Y_CLASS, sample_weight=sample_weight
        )
        kept_only = _model(solver="sgd", batch_size=1, shuffle=False).fit(X[::2], Y_CLASS[::2])
    for a, b in zip(weighted.coefs_, kept_only.coefs_):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, rtol=1e-12)
