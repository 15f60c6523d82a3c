"""ONNX export through skl2onnx: onnxruntime's predictions equal cbp's.

Skipped when skl2onnx or onnxruntime is not installed (``pip install
".[onnx]"``). Test ids read <task>-<hidden activation>-<dtype>.
"""

import functools
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cbp
from cbp._dispatch import kernel
from cbp._onnx_forms import HIDDEN_FORMS, OUTPUT_FORMS
# every hidden activation cbp has (its registry), so that a new one is exported and checked
from cbp._options import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from optional import optional

skl2onnx = optional("skl2onnx")
ort = optional("onnxruntime")
import cbp.onnx  # noqa: E402  (it imports skl2onnx)

ACTIVATIONS = list(HIDDEN_ACTIVATIONS)
DTYPES = ["float32", "float64"]
CLASSIFIER_TASKS = ["binary", "multiclass_str", "multilabel"]
REGRESSOR_TASKS = ["regression", "multioutput", "poisson", "absolute_error", "huber"]
# float32: the brief's rtol; atol only for probabilities within 1e-7 of 0.
TOLERANCE = {"float32": dict(rtol=1e-5, atol=1e-7), "float64": dict(rtol=1e-12, atol=1e-15)}


@pytest.mark.parametrize("registry,forms", [
    pytest.param(HIDDEN_ACTIVATIONS, HIDDEN_FORMS, id="hidden"),
    pytest.param(OUTPUT_ACTIVATIONS, OUTPUT_FORMS, id="output"),
])
def test_every_activation_of_the_registry_has_an_onnx_form(registry, forms):
    assert set(forms) == set(registry)


def _recorder():
    """emit, and the list of (op_type, inputs, attributes) it was called with."""
    nodes = []

    def emit(op_type, inputs, **attributes):
        nodes.append((op_type, inputs, attributes))
        return f"out{len(nodes)}"

    return emit, nodes


@pytest.mark.parametrize("dtype,ops", [(np.float32, ["LeakyRelu"]),
                                       (np.float64, ["Less", "Mul", "Where"])])
def test_a_form_emits_through_the_callback_with_the_kernel_s_constant(dtype, ops):
    emit, nodes = _recorder()
    assert HIDDEN_FORMS["leaky_relu"](emit, "z", dtype) == f"out{len(ops)}"
    assert [node[0] for node in nodes] == ops
    constants = [v for node in nodes for v in [*node[1], *node[2].values()]
                 if isinstance(v, float) and v != 0.0]
    assert constants == [kernel.LEAKY_SLOPE]


def test_a_one_operator_form_passes_its_attributes():
    emit, nodes = _recorder()
    OUTPUT_FORMS["softmax"](emit, "z", np.float32)
    assert nodes == [("Softmax", ["z"], {"axis": 1})]


def _data(task, dtype, n=120, n_features=6, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, n_features).astype(dtype)
    w = rng.randn(n_features, 3)
    z = X.astype(np.float64) @ w
    if task == "binary":
        y = np.where(z[:, 0] > 0, 7, -3)  # int labels, not 0/1
    elif task == "binary_str":
        y = np.where(z[:, 0] > 0, "yes", "no")
    elif task == "multiclass_str":
        y = np.array(["ant", "bee", "cat", "dog"])[np.digitize(z[:, 0], [-1, 0, 1])]
    elif task == "multiclass_int":
        y = np.digitize(z[:, 0], [-1, 0, 1]) * 10
    elif task == "multilabel":
        y = (z > 0).astype(int)
    elif task == "multioutput":
        y = z
    elif task == "poisson":
        y = rng.poisson(np.exp(0.3 * z[:, 0])).astype(np.float64)
    else:
        y = z[:, 0]
    return X, y


@functools.lru_cache(maxsize=None)
def fitted(task, activation, dtype):
    X, y = _data(task, dtype)
    common = dict(hidden_layer_sizes=(9, 7), activation=activation, max_iter=40,
                  random_state=0)
    if task in REGRESSOR_TASKS:
        loss = task if task in ("poisson", "absolute_error", "huber") else "squared_error"
        model = cbp.MLPRegressor(loss=loss, **common)
    else:
        model = cbp.MLPClassifier(**common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model, X


def run_onnx(model, X, **kwargs):
    onx = skl2onnx.to_onnx(model, X[:1], **kwargs)
    session = ort.InferenceSession(onx.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def _ids(cases):
    return ["-".join(case) for case in cases]


CLASSIFIER_CASES = [(t, a, d) for t in CLASSIFIER_TASKS for a in ACTIVATIONS for d in DTYPES]
REGRESSOR_CASES = [(t, a, d) for t in REGRESSOR_TASKS for a in ACTIVATIONS for d in DTYPES]


@pytest.mark.parametrize("task, activation, dtype", CLASSIFIER_CASES,
                         ids=_ids(CLASSIFIER_CASES))
def test_classifier_labels_equal_predict(task, activation, dtype):
    model, X = fitted(task, activation, dtype)
    labels, _ = run_onnx(model, X, options={"zipmap": False})
    expected = model.predict(X)
    assert labels.shape == expected.shape
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize("task, activation, dtype", CLASSIFIER_CASES,
                         ids=_ids(CLASSIFIER_CASES))
def test_classifier_probabilities_equal_predict_proba(task, activation, dtype):
    model, X = fitted(task, activation, dtype)
    _, proba = run_onnx(model, X, options={"zipmap": False})
    assert proba.dtype == np.dtype(dtype)
    np.testing.assert_allclose(proba, model.predict_proba(X), **TOLERANCE[dtype])


@pytest.mark.parametrize("task, activation, dtype", REGRESSOR_CASES,
                         ids=_ids(REGRESSOR_CASES))
def test_regressor_predictions_equal_predict(task, activation, dtype):
    model, X = fitted(task, activation, dtype)
    (pred,) = run_onnx(model, X)
    assert pred.dtype == np.dtype(dtype)
    assert pred.shape == (len(X), model.n_outputs_)
    expected = model.predict(X).reshape(len(X), -1)
    np.testing.assert_allclose(pred, expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("task", ["binary_str", "multiclass_int"])
def test_other_label_types_equal_predict(task):
    model, X = fitted(task, "relu", "float32")
    labels, proba = run_onnx(model, X, options={"zipmap": False})
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X), **TOLERANCE["float32"])


def test_default_zipmap_gives_one_dict_per_row_keyed_by_class():
    model, X = fitted("multiclass_str", "tanh", "float32")
    labels, dicts = run_onnx(model, X)
    np.testing.assert_array_equal(labels, model.predict(X))
    proba = np.array([[row[c] for c in model.classes_] for row in dicts])
    np.testing.assert_allclose(proba, model.predict_proba(X), **TOLERANCE["float32"])


def test_nocl_option_gives_class_indices():
    model, X = fitted("multiclass_str", "relu", "float32")
    labels, _ = run_onnx(model, X, options={"zipmap": False, "nocl": True})
    np.testing.assert_array_equal(model.classes_[labels], model.predict(X))


def test_float64_model_with_float32_input_computes_in_float32():
    model, X = fitted("regression", "tanh", "float64")
    X32 = X.astype(np.float32)
    (pred,) = run_onnx(model, X32)
    assert pred.dtype == np.float32
    np.testing.assert_allclose(pred.ravel(), model.predict(X), rtol=1e-4, atol=1e-5)


def test_pipeline_with_cbp_step_converts():
    X, y = _data("multiclass_str", "float32")
    pipe = make_pipeline(StandardScaler(), cbp.MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=30, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X, y)
    labels, proba = run_onnx(pipe, X, options={id(pipe[-1]): {"zipmap": False}})
    np.testing.assert_array_equal(labels, pipe.predict(X))
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=1e-4, atol=1e-6)


LAYER_CASES = [(Estimator, params, dtype)
               for Estimator in ("MLPClassifier", "MLPRegressor")
               for params in ({"batch_norm": True}, {"dropout": 0.3},
                              {"batch_norm": True, "dropout": [0.2, 0.1]})
               for dtype in DTYPES]


@pytest.mark.parametrize("Estimator, params, dtype", LAYER_CASES,
                         ids=[f"{e}-{'+'.join(p)}-{d}" for e, p, d in LAYER_CASES])
def test_batch_norm_and_dropout_models_export(Estimator, params, dtype):
    """Batch normalisation as ONNX's BatchNormalization (its running
    statistics), dropout as the identity. (onnxruntime's double
    BatchNormalization rounds differently from cbp's (z - mean) / std:
    relative 1e-10 there.)"""
    tolerance = dict(TOLERANCE[dtype])
    if dtype == "float64" and params.get("batch_norm"):
        tolerance["rtol"] = 1e-10
    X, y = _data("multiclass_int" if Estimator == "MLPClassifier" else "regression", dtype)
    model = getattr(cbp, Estimator)(hidden_layer_sizes=(9, 7), max_iter=40,
                                    random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    if Estimator == "MLPClassifier":
        labels, proba = run_onnx(model, X, options={"zipmap": False})
        np.testing.assert_array_equal(labels, model.predict(X))
        np.testing.assert_allclose(proba, model.predict_proba(X), **tolerance)
    else:
        (pred,) = run_onnx(model, X)
        np.testing.assert_allclose(pred.ravel(), model.predict(X), **tolerance)


def test_batch_norm_exports_as_onnx_batch_normalization():
    X, y = _data("regression", "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = cbp.MLPRegressor(hidden_layer_sizes=(9, 7), batch_norm=True, dropout=0.2,
                                 max_iter=5, random_state=0).fit(X, y)
    ops = [node.op_type for node in skl2onnx.to_onnx(model, X[:1]).graph.node]
    assert ops.count("BatchNormalization") == 2
    assert "Dropout" not in ops


def test_cbp_onnx_to_onnx_equals_skl2onnx_to_onnx():
    model, X = fitted("regression", "relu", "float32")
    assert cbp.onnx.to_onnx(model, X[:1]) == skl2onnx.to_onnx(model, X[:1])


def test_unfitted_model_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        skl2onnx.to_onnx(cbp.MLPRegressor(), np.zeros((1, 3), np.float32))


def test_single_class_classifier_raises_clear_error():
    X = np.random.RandomState(0).randn(20, 3).astype(np.float32)
    model = cbp.MLPClassifier(max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, np.full(20, "only"))
    with pytest.raises(ValueError, match="single class"):
        skl2onnx.to_onnx(model, X[:1])


def test_integral_float_labels_export_as_int64():
    X = np.random.RandomState(0).randn(30, 3).astype(np.float32)
    model = cbp.MLPClassifier(max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, np.where(X[:, 0] > 0, 1.0, 2.0))
    labels, _ = run_onnx(model, X, options={"zipmap": False})
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, model.predict(X))


def test_register_is_idempotent():
    cbp.onnx.register()
    cbp.onnx.register()
    model, X = fitted("binary", "relu", "float32")
    labels, _ = run_onnx(model, X, options={"zipmap": False})
    np.testing.assert_array_equal(labels, model.predict(X))


# Registration without cbp.onnx, in fresh interpreters.
_EXPORT = (
    "import numpy as np, warnings; "
    "X = np.random.RandomState(0).randn(30, 4).astype(np.float32); "
    "warnings.simplefilter('ignore'); "
    "m = cbp.MLPRegressor(max_iter=5, random_state=0).fit(X, X[:, 0]); "
    "skl2onnx.to_onnx(m, X[:1]); print('ok')"
)


def _python(code, cwd):
    # cwd: not the repository root, whose cbp/ (no compiled kernel) would
    # shadow the installed package
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120, cwd=cwd)  # a deadlock fails


IMPORT_ORDERS = {
    "cbp_then_skl2onnx": "import cbp; import skl2onnx; ",
    "skl2onnx_then_cbp": "import skl2onnx; import cbp; ",
    "cbp_onnx_alone": "import cbp.onnx; import skl2onnx; cbp = __import__('cbp'); ",
    "skl2onnx_submodule_first": "import cbp; import skl2onnx.common.data_types; "
                                "import skl2onnx; ",
}


@pytest.mark.parametrize("order", list(IMPORT_ORDERS))
def test_import_order_registers_automatically(order, tmp_path):
    result = _python(IMPORT_ORDERS[order] + _EXPORT, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_import_cbp_does_not_import_skl2onnx(tmp_path):
    result = _python(
        "import sys, cbp; print('skl2onnx' in sys.modules, 'onnx' in sys.modules)",
        tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_import_hook_removes_itself_once_skl2onnx_is_imported(tmp_path):
    result = _python("import sys, cbp, cbp._onnx as o; hooked = o._hook in sys.meta_path; "
                     "import skl2onnx; print(hooked, o._hook is None, o._registered)",
                     tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True"]
