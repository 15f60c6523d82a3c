"""cbp's MLPClassifier and MLPRegressor behave as scikit-learn's estimators."""

import io
import pickle
import warnings
from contextlib import redirect_stdout

import joblib
import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from cbp import MLPClassifier, MLPRegressor
from optional import optional

SOLVERS = ["sgd", "adam", "lbfgs"]


@parametrize_with_checks(
    [MLPClassifier(max_iter=300, random_state=0), MLPRegressor(max_iter=300, random_state=0)]
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.fixture
def classification():
    X, y = make_classification(120, 8, n_informative=5, n_classes=3, random_state=0)
    return StandardScaler().fit_transform(X), y


@pytest.fixture
def regression():
    X, y = make_regression(120, 8, noise=0.5, random_state=0)
    return StandardScaler().fit_transform(X), y / y.std()


def _quiet_fit(model, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **kwargs)


@pytest.mark.parametrize("solver", SOLVERS)
def test_classifier_learns_digits(solver):
    X, y = load_digits(return_X_y=True)
    model = _quiet_fit(
        MLPClassifier(hidden_layer_sizes=(32,), solver=solver, max_iter=60,
                      learning_rate_init=0.05 if solver == "sgd" else 0.001,
                      random_state=0),
        X / 16, y,
    )
    assert model.score(X / 16, y) > 0.95


@pytest.mark.parametrize("solver", SOLVERS)
def test_fitted_attributes_have_sklearns_shapes(classification, solver):
    X, y = classification
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5, 4), solver=solver,
                                     max_iter=5), X, y)
    assert [c.shape for c in model.coefs_] == [(8, 5), (5, 4), (4, 3)]
    assert [b.shape for b in model.intercepts_] == [(5,), (4,), (3,)]
    assert model.n_layers_ == 4
    assert model.n_outputs_ == 3
    assert model.out_activation_ == "softmax"
    assert model.n_features_in_ == 8
    assert model.n_iter_ == 5
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert np.isfinite(model.loss_)
    if solver == "lbfgs":
        assert not hasattr(model, "loss_curve_")
    else:
        assert len(model.loss_curve_) == 5
        assert model.t_ == 5 * X.shape[0]
        assert model.best_loss_ == min(model.loss_curve_)
        assert model.validation_scores_ is None
        assert model.best_validation_score_ is None


def test_early_stopping_attributes(classification):
    X, y = classification
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), early_stopping=True,
                                     max_iter=20, random_state=0), X, y)
    assert model.best_loss_ is None
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)


@pytest.mark.parametrize(
    "y, activation",
    [
        (np.array(["cat", "dog"] * 30), "logistic"),
        (np.array(["a", "b", "c"] * 20), "softmax"),
        (np.array([True, False] * 30), "logistic"),
    ],
)
def test_labels_of_any_type(y, activation):
    X = np.random.RandomState(0).normal(size=(60, 4))
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=5), X, y)
    assert model.out_activation_ == activation
    assert set(model.predict(X)) <= set(y)
    proba = model.predict_proba(X)
    assert proba.shape == (60, len(np.unique(y)))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(proba))


def test_multilabel_indicator_targets():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 5))
    Y = (X[:, :3] > 0).astype(int)
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(10,), max_iter=300,
                                     random_state=0), X, Y)
    assert model.out_activation_ == "logistic"
    assert model.predict(X).shape == (80, 3)
    assert (model.predict(X) == Y).mean() > 0.85  # per-label accuracy


@pytest.mark.parametrize("solver", SOLVERS)
def test_multi_output_regression(regression, solver):
    X, y = regression
    Y = np.column_stack([y, -y])
    model = _quiet_fit(MLPRegressor(hidden_layer_sizes=(16,), solver=solver, learning_rate_init=0.01,
                                    max_iter=200, random_state=0), X, Y)
    assert model.predict(X).shape == (120, 2)
    assert model.score(X, Y) > 0.9


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_float32_input_stays_float32(classification, Estimator, solver):
    X, y = classification
    model = _quiet_fit(Estimator(hidden_layer_sizes=(5,), solver=solver, max_iter=5),
                       X.astype(np.float32), y)
    assert all(c.dtype == np.float32 for c in model.coefs_ + model.intercepts_)
    output = model.predict_proba(X) if Estimator is MLPClassifier else model.predict(X)
    assert output.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.int32])
def test_other_input_dtypes_are_trained_in_float64(classification, dtype):
    X, y = classification
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5),
                       (X * 10).astype(dtype), y)
    assert model.coefs_[0].dtype == np.float64


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_gives_the_dense_result(classification, solver, fmt):
    """The sparse first layer sums the same products in another order."""
    X, y = classification
    X[np.abs(X) < 0.5] = 0
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=5, random_state=0)
    dense = _quiet_fit(MLPClassifier(**params), X, y)
    sparse = _quiet_fit(MLPClassifier(**params), scipy.sparse.csr_matrix(X).asformat(fmt), y)
    for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        sparse.predict_proba(scipy.sparse.csr_matrix(X)), dense.predict_proba(X),
        rtol=1e-10, atol=1e-12,
    )


def test_pandas_input_keeps_feature_names(classification):
    pd = optional("pandas")
    X, y = classification
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5), frame, y)
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)
    with pytest.warns(UserWarning, match="feature names"):
        model.predict(X)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame.rename(columns={"f0": "other"}))


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_pickle_and_joblib_round_trip(classification, Estimator, tmp_path):
    X, y = classification
    model = _quiet_fit(Estimator(hidden_layer_sizes=(5,), max_iter=5, random_state=0), X, y)
    expected = model.predict(X)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), expected)
    joblib.dump(model, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict(X), expected)


def test_unpickled_model_keeps_training(classification):
    X, y = classification
    model = MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", random_state=0)
    model.partial_fit(X, y, classes=np.unique(y))
    restored = pickle.loads(pickle.dumps(model))
    model.partial_fit(X, y)
    restored.partial_fit(X, y)
    for a, b in zip(model.coefs_, restored.coefs_):
        np.testing.assert_array_equal(a, b)


def test_assigned_coefs_are_used_for_prediction(classification):
    X, y = classification
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5), X, y)
    model.coefs_ = [np.zeros_like(c) for c in model.coefs_]
    model.intercepts_[-1] = np.array([0.0, 5.0, 0.0])
    np.testing.assert_array_equal(model.predict(X), np.ones(X.shape[0]))


def test_verbose_prints_one_line_per_epoch(classification):
    X, y = classification
    out = io.StringIO()
    with redirect_stdout(out):
        _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, verbose=True), X, y)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("Iteration")]
    assert len(lines) == 3
    assert lines[0].startswith("Iteration 1, loss = ")


@pytest.mark.parametrize("solver", SOLVERS)
def test_non_convergence_warns(classification, solver):
    X, y = classification
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(hidden_layer_sizes=(5,), solver=solver, max_iter=2).fit(X, y)


@pytest.mark.parametrize(
    "params",
    [
        dict(hidden_layer_sizes=0),
        dict(hidden_layer_sizes=-3),
        dict(activation="softplus"),
        dict(solver="nadam"),
        dict(alpha=-1.0),
        dict(batch_size=0),
        dict(batch_size="big"),
        dict(learning_rate="exponential"),
        dict(learning_rate_init=0.0),
        dict(max_iter=0),
        dict(momentum=1.5),
        dict(validation_fraction=1.0),
        dict(beta_1=1.0),
        dict(epsilon=0.0),
        dict(n_iter_no_change=0),
        dict(max_fun=0),
    ],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()),
)
def test_invalid_parameters_raise_sklearns_error(classification, params):
    X, y = classification
    with pytest.raises((InvalidParameterError, ValueError)):
        MLPClassifier(**params).fit(X, y)


def test_invalid_parameter_error_type(classification):
    X, y = classification
    with pytest.raises(InvalidParameterError, match="activation"):
        MLPClassifier(activation="softplus").fit(X, y)


def test_invalid_loss_raises(regression):
    X, y = regression
    with pytest.raises(InvalidParameterError, match="loss"):
        MLPRegressor(loss="hinge").fit(X, y)


def test_hidden_layer_with_zero_units_raises(classification):
    X, y = classification
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(5, 0)).fit(X, y)


def test_partial_fit_needs_classes_on_first_call(classification):
    X, y = classification
    with pytest.raises(ValueError, match="classes must be passed"):
        MLPClassifier().partial_fit(X, y)


def test_partial_fit_rejects_unseen_labels(classification):
    X, y = classification
    model = MLPClassifier(hidden_layer_sizes=(5,)).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="classes not in"):
        model.partial_fit(X, y + 1)


def test_partial_fit_accepts_a_subset_of_the_classes(classification):
    X, y = classification
    model = MLPClassifier(hidden_layer_sizes=(5,)).partial_fit(X, y, classes=[0, 1, 2, 3])
    model.partial_fit(X[y == 0], y[y == 0])
    assert model.predict_proba(X).shape == (X.shape[0], 4)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_lbfgs_has_no_partial_fit(Estimator):
    # scikit-learn's MLPRegressor(solver="lbfgs") exposes one by mistake.
    assert not hasattr(Estimator(solver="lbfgs"), "partial_fit")
    assert hasattr(Estimator(solver="adam"), "partial_fit")


def test_partial_fit_with_early_stopping_raises(classification):
    X, y = classification
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_poisson_rejects_negative_targets(regression):
    X, y = regression
    with pytest.raises(ValueError, match="non-negative"):
        MLPRegressor(loss="poisson").fit(X, y)


def test_poisson_learns_counts():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 3))
    y = rng.poisson(np.exp(0.8 * X[:, 0])).astype(float)
    model = _quiet_fit(MLPRegressor(loss="poisson", hidden_layer_sizes=(8,),
                                    max_iter=300, random_state=0), X, y)
    assert model.out_activation_ == "exp"
    assert (model.predict(X) > 0).all()
    assert np.corrcoef(model.predict(X), np.exp(0.8 * X[:, 0]))[0, 1] > 0.9


def test_warm_start_with_other_classes_raises(classification):
    X, y = classification
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), warm_start=True,
                                     max_iter=2), X, y)
    with pytest.raises(ValueError, match="warm_start"):
        model.fit(X, np.where(y == 2, 5, y))


def test_works_in_pipeline_grid_search_and_cross_validation(classification):
    X, y = classification
    pipeline = make_pipeline(StandardScaler(), MLPClassifier(max_iter=50, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipeline, X, y, cv=3)
        search = GridSearchCV(
            pipeline, {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)]}, cv=3
        ).fit(X, y)
    assert scores.shape == (3,) and (scores > 0.5).all()
    assert search.best_params_["mlpclassifier__hidden_layer_sizes"] in [(4,), (16,)]


def test_clone_gives_an_unfitted_twin(classification):
    X, y = classification
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3), X, y)
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    assert not hasattr(twin, "coefs_")


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_epoch_order_is_sklearn_shuffle(seed):
    from sklearn.utils import check_random_state, shuffle

    from cbp._multilayer_perceptron import _shuffled

    ours, theirs = check_random_state(seed), check_random_state(seed)
    order_ours = order_theirs = np.arange(50)
    for _ in range(3):  # the permutations compose across epochs
        order_ours = _shuffled(order_ours, ours)
        order_theirs = shuffle(order_theirs, random_state=theirs)
        np.testing.assert_array_equal(order_ours, order_theirs)


@pytest.mark.parametrize(
    "y",
    [np.array([3, 1, 2, 3, 1, 2] * 5), np.array(["b", "a"] * 15), np.array([True, False] * 15),
     np.array(["x", "y", "z"] * 10)],
    ids=["int-multiclass", "str-binary", "bool-binary", "str-multiclass"],
)
def test_label_fast_path_is_label_binarizer(y):
    from sklearn.preprocessing import LabelBinarizer

    X = np.random.RandomState(0).normal(size=(len(y), 3))
    model = MLPClassifier(hidden_layer_sizes=(3,), max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    _, Y = model._validate_input(X, y, incremental=False, reset=False)
    np.testing.assert_array_equal(Y, LabelBinarizer().fit(y).transform(y).astype(bool))


def test_early_stopping_switched_on_for_a_warm_start(classification):
    X, y = classification
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, warm_start=True,
                                     random_state=0), X, y)
    model.set_params(early_stopping=True, max_iter=5)
    _quiet_fit(model, X, y)
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)


def test_predict_uses_assigned_arrays_without_taking_them_over(classification):
    # As in scikit-learn: coefs_ assigned by the user stay the user's arrays,
    # and editing them in place changes the next prediction.
    X, y = classification
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3), X, y)
    W = model.coefs_[0].copy()
    model.coefs_ = [W] + model.coefs_[1:]
    before = model.predict_proba(X)
    assert model.coefs_[0] is W
    W[:] = 0
    after = model.predict_proba(X)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, after[:1].repeat(len(X), axis=0))


def test_lbfgs_convergence_warning_is_sklearns(classification):
    X, y = classification
    with pytest.warns(ConvergenceWarning, match="scale the data"):
        MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=2).fit(X, y)
