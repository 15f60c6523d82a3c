"""ONNX export of cbp's estimators, through skl2onnx.

Importing this module is cheap: it does not import skl2onnx (about 0.3 s on
top of cbp, 1.5 s on its own). :func:`register` does, and registers cbp's
converters with ``skl2onnx.update_registered_converter`` so that
``skl2onnx.to_onnx(model, X[:1])`` (or ``convert_sklearn``, or a Pipeline
holding a cbp estimator) finds them.

``import cbp`` calls :func:`register_when_skl2onnx_is_imported`: it registers
at once if skl2onnx is already imported, and otherwise puts a one-shot hook on
``sys.meta_path`` that registers right after the first ``import skl2onnx``
finishes, then removes itself. Users who never export pay nothing but the
hook's lookup of one module name.

The graph is skl2onnx's own for scikit-learn's MLP (MatMul, Add, activation
per layer, each activation's ONNX form from cbp._onnx_forms, keyed by
the registries' names), extended with cbp's 'leaky_relu' hidden activation (LeakyRelu,
alpha=0.01), batch normalisation (ONNX's BatchNormalization with the running
statistics: evaluation mode), ensembles (the members as a (k, n, units)
tensor, averaged at the end), dropout (the identity at prediction) and the
'exp' output of ``MLPRegressor(loss='poisson')``, and
fixed for multi-output regressors and multilabel classifiers. It computes in
the input's precision: double for a DoubleTensorType input, float otherwise.
A tabular model's graph reads its table's columns, encodes them in double
(_tabular_onnx) and runs the network in float32, as cbp does.
"""

import importlib.abc
import importlib.util
import sys
import threading
import warnings

import numpy as np
from sklearn.base import is_classifier

from . import _tabular_onnx
from ._network import BATCH_NORM_EPS
from ._onnx_forms import HIDDEN_FORMS, OUTPUT_FORMS

__all__ = ["register", "register_when_skl2onnx_is_imported", "to_onnx"]

CLASSIFIER_ALIAS = "CbpMLPClassifier"
REGRESSOR_ALIAS = "CbpMLPRegressor"
# skl2onnx's names of _tabular_onnx.EXPORTED, in its order
TABULAR_ALIASES = tuple(f"Cbp{model.__name__}" for model in _tabular_onnx.EXPORTED)

# reentrant: register() imports skl2onnx, which may run the import hook, which
# removes itself and calls register() in the same thread
_lock = threading.RLock()
_registered = False


# --------------------------------------------------------------------------
# checks shared by the shape calculators and the converters


def _check_exportable(model, name=None):
    """Raise a ValueError naming what cannot be exported (``name``: what the
    messages call the model), else return None."""
    name = name or type(model).__name__
    if "coefs_" not in model.__dict__:
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(
            f"This {name} instance is not fitted yet; fit it before exporting "
            "it to ONNX."
        )
    embedding = model.__dict__.get("_embedding")
    if embedding is not None:
        raise ValueError(
            f"cannot export {name} to ONNX: it was fitted with "
            f"numeric_embedding={embedding[0]!r}, which the export does not "
            "write (fit with numeric_embedding=None to export)."
        )
    if model.activation not in HIDDEN_FORMS:
        raise ValueError(
            f"cannot export {name} to ONNX: unknown hidden activation "
            f"{model.activation!r} (known: {sorted(HIDDEN_FORMS)})."
        )
    if model.out_activation_ not in OUTPUT_FORMS:
        raise ValueError(
            f"cannot export {name} to ONNX: unknown output activation "
            f"{model.out_activation_!r} (known: {sorted(OUTPUT_FORMS)})."
        )
    if hasattr(model, "_label_binarizer"):
        if model._label_binarizer.y_type_ not in (
            "binary", "multiclass", "multilabel-indicator"
        ):
            raise ValueError(
                f"cannot export {name} to ONNX: target type "
                f"{model._label_binarizer.y_type_!r} is not supported."
            )
        if len(model.classes_) < 2:
            raise ValueError(
                f"cannot export {name} to ONNX: it was fitted on a single class "
                f"({model.classes_[0]!r}), whose predict_proba has two columns "
                "for one label, which skl2onnx's ZipMap cannot name."
            )
        _class_labels(model)


def _class_labels(model):
    """classes_ as ONNX can hold them: int64 or str (object) array."""
    classes = np.asarray(model.classes_)
    if classes.dtype.kind in "biu":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f":
        if not np.all(np.isfinite(classes)) or np.any(classes != np.round(classes)):
            raise ValueError(
                f"cannot export {type(model).__name__} to ONNX: its float class "
                f"labels {classes.tolist()!r} are not all integers; ONNX labels "
                "are int64 or strings (refit with int or str labels)."
            )
        return classes.astype(np.int64)
    if all(isinstance(c, str) for c in classes):
        return classes.astype(object)
    raise ValueError(
        f"cannot export {type(model).__name__} to ONNX: class labels of type "
        f"{classes.dtype} are neither all integers nor all strings."
    )


def _uses_class_indices(scope, model):
    """skl2onnx's option nocl: labels are 0..n_classes-1."""
    return bool(scope.get_options(model, dict(nocl=False))["nocl"])


# --------------------------------------------------------------------------
# shape calculators


def _float_type(operator):
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    if isinstance(operator.inputs[0].type, DoubleTensorType):
        return DoubleTensorType
    return FloatTensorType


def _check_io(operator, n_outputs):
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
    )
    from skl2onnx.common.utils import (
        check_input_and_output_numbers,
        check_input_and_output_types,
    )

    check_input_and_output_numbers(
        operator, input_count_range=1, output_count_range=n_outputs
    )
    check_input_and_output_types(
        operator,
        good_input_types=[
            BooleanTensorType, DoubleTensorType, FloatTensorType, Int64TensorType
        ],
    )


def calculate_classifier_output_shapes(operator):
    """label: [N] (or [N, n_classes] if multilabel), probabilities: [N, n_classes]."""
    _check_io(operator, 2)
    model = operator.raw_operator
    _check_exportable(model)
    _classifier_types(operator, model, _float_type(operator))


def _classifier_types(operator, network, proba_type):
    """The label's and probabilities' types: the network's classes, the options."""
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    n = operator.inputs[0].get_first_dimension()
    n_classes = len(network.classes_)
    if _uses_class_indices(operator.scope_inst, operator.raw_operator):
        label_type = Int64TensorType
    else:
        labels = _class_labels(network)
        label_type = StringTensorType if labels.dtype == object else Int64TensorType
    multilabel = network._label_binarizer.y_type_ == "multilabel-indicator"
    operator.outputs[0].type = label_type([n, n_classes] if multilabel else [n])
    operator.outputs[1].type = proba_type([n, n_classes])


def calculate_regressor_output_shapes(operator):
    """variable: [N, n_outputs_] (also [N, 1] for a single output, as skl2onnx)."""
    _check_io(operator, 1)
    model = operator.raw_operator
    _check_exportable(model)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _float_type(operator)([n, model.n_outputs_])


# --------------------------------------------------------------------------
# converters


def _proto_dtype(operator):
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.proto import onnx_proto

    if isinstance(operator.inputs[0].type, DoubleTensorType):
        return onnx_proto.TensorProto.DOUBLE, np.float64
    return onnx_proto.TensorProto.FLOAT, np.float32


def _constant(scope, container, name, proto_dtype, np_dtype, value):
    const = scope.get_unique_variable_name(name)
    value = np.asarray(value, dtype=np_dtype)
    container.add_initializer(const, proto_dtype, list(value.shape), value.ravel())
    return const


def _batch_norm(scope, container, z, batch_norm, k, proto_dtype, np_dtype):
    """Hidden layer k's batch normalisation in evaluation mode: ONNX's
    BatchNormalization with the running statistics, gamma and beta
    (gamma (z - running_mean) / sqrt(running_var + eps) + beta)."""
    inputs = [z] + [
        _constant(scope, container, f"batch_norm{k}_{name}", proto_dtype, np_dtype,
                  batch_norm[part][k])
        for name, part in (("scale", "gammas"), ("bias", "betas"),
                           ("mean", "running_means"), ("var", "running_vars"))
    ]
    out = scope.get_unique_variable_name(f"batch_norm{k}")
    container.add_node("BatchNormalization", inputs, out, epsilon=BATCH_NORM_EPS,
                       name=scope.get_unique_operator_name("BatchNormalization"))
    return out


def _emitter(scope, container, proto_dtype, np_dtype):
    """emit(op_type, inputs, **attributes) -> the new node's output, for the
    activations' ONNX forms (_onnx_forms) and the table encoder's nodes
    (_tabular_onnx): a Python number among the inputs becomes a constant of
    the graph's dtype, a numpy array one of its own (float, int64, bool, str)."""
    from onnx.helper import np_dtype_to_tensor_dtype

    def constant(value):
        if isinstance(value, (int, float)):
            return _constant(scope, container, "constant", proto_dtype, np_dtype, value)
        if value.dtype.kind == "U":  # strings: UTF-8 bytes
            value = np.char.encode(value, "utf-8").astype(object)
        return _constant(scope, container, "constant",
                         np_dtype_to_tensor_dtype(value.dtype), value.dtype, value)

    def emit(op_type, inputs, **attributes):
        inputs = [value if isinstance(value, str) else constant(value) for value in inputs]
        out = scope.get_unique_variable_name(op_type.lower())
        container.add_node(op_type, inputs, out,
                           name=scope.get_unique_operator_name(op_type), **attributes)
        return out

    return emit


def _forward(scope, container, model, input_name, proto_dtype, np_dtype):
    """The output layer's activations (n, n_outputs_), cbp's _forward_pass_fast
    (for an ensemble: the mean of its members', _ensemble_forward)."""
    from skl2onnx.common._apply_operation import apply_cast

    x = scope.get_unique_variable_name("cast_input")
    apply_cast(scope, input_name, x, container, to=proto_dtype)
    emit = _emitter(scope, container, proto_dtype, np_dtype)
    if model._fitted_ensemble() is not None:
        return _ensemble_forward(scope, container, model, x, emit, proto_dtype, np_dtype)
    hidden = HIDDEN_FORMS[model.activation]
    last = model.n_layers_ - 2
    architecture = model._fitted_architecture()
    arrays = model._fitted_arrays(architecture)
    # dropout is the identity at prediction; batch normalisation normalises
    # by the running statistics (_batch_norm)
    batch_norm = arrays if architecture.batch_norm else None
    if architecture.input_scaling:  # x * s, s (n_features,)
        x = emit("Mul", [x, _constant(scope, container, "input_scaling", proto_dtype,
                                      np_dtype, np.reshape(arrays["input_scalings"][0],
                                                           (1, -1)))])
    for i, (coef, intercept) in enumerate(zip(model.coefs_, model.intercepts_)):
        w = _constant(scope, container, f"coefficient{i}", proto_dtype, np_dtype, coef)
        b = _constant(
            scope, container, f"intercepts{i}", proto_dtype, np_dtype,
            np.reshape(intercept, (1, -1)),
        )
        prod = scope.get_unique_variable_name("mul_result")
        container.add_node(
            "MatMul", [x, w], prod, name=scope.get_unique_operator_name("MatMul")
        )
        z = scope.get_unique_variable_name("add_result")
        container.add_node("Add", [prod, b], z, name=scope.get_unique_operator_name("Add"))
        if i < last and batch_norm is not None:
            z = _batch_norm(scope, container, z, batch_norm, i, proto_dtype, np_dtype)
        if i < last:
            x = hidden(emit, z, np_dtype)
        else:
            return OUTPUT_FORMS[model.out_activation_](emit, z, np_dtype)
    raise ValueError(f"{type(model).__name__} has no layers")  # pragma: no cover


def _ensemble_forward(scope, container, model, x, emit, proto_dtype, np_dtype):
    """An ensemble's prediction: the members' rows as a (k, n, units) tensor
    (x (n, d) broadcast to them), each layer ((x * r) @ W) * s + b with
    every per-member array shaped (k, 1, ...) or (k, in, out) and MatMul
    broadcasting; batch normalisation by the running statistics per member;
    the output activation on (n k, n_outputs_) rows; the mean over members."""
    k = model._fitted_ensemble()[0]
    hidden = HIDDEN_FORMS[model.activation]
    last = model.n_layers_ - 2
    architecture = model._fitted_architecture()
    arrays = model._fitted_arrays(architecture)
    batch_norm = arrays if architecture.batch_norm else None

    def const(name, value):
        return _constant(scope, container, name, proto_dtype, np_dtype, value)

    def per_member(value):
        """(k, u) -> (k, 1, u): one row per member, broadcast over n."""
        value = np.asarray(value)
        return value[:, None, :] if value.ndim == 2 else value

    for i, (coef, intercept) in enumerate(zip(model.coefs_, model.intercepts_)):
        r, s = arrays["input_scalings"][i], arrays["output_scalings"][i]
        if r is not None:
            x = emit("Mul", [x, const(f"input_scaling{i}", per_member(r))])
        z = emit("MatMul", [x, const(f"coefficient{i}", coef)])
        if s is not None:
            z = emit("Mul", [z, const(f"output_scaling{i}", per_member(s))])
        z = emit("Add", [z, const(f"intercepts{i}", per_member(intercept))])
        if i < last and batch_norm is not None:
            std = np.sqrt(np.asarray(batch_norm["running_vars"][i], dtype=np_dtype)
                          + np_dtype(BATCH_NORM_EPS))
            z = emit("Div", [emit("Sub", [z, const(f"batch_norm{i}_mean", per_member(
                batch_norm["running_means"][i]))]), const(f"batch_norm{i}_std", per_member(std))])
            z = emit("Add", [emit("Mul", [z, const(f"batch_norm{i}_scale", per_member(
                batch_norm["gammas"][i]))]), const(f"batch_norm{i}_bias", per_member(
                    batch_norm["betas"][i]))])
        if i < last:
            x = hidden(emit, z, np_dtype)
    # z: (k, n, out), or (1, n, out) -- every member's rows -> (n k, out)
    n_out = model.n_outputs_
    rows = emit("Reshape", [emit("Transpose", [z], perm=[1, 0, 2]),
                            _int64(scope, container, [-1, n_out])])
    y = OUTPUT_FORMS[model.out_activation_](emit, rows, np_dtype)
    members = emit("Reshape", [y, _int64(scope, container, [-1, k, n_out])])
    if container.target_opset >= 18:
        return emit("ReduceMean", [members, _int64(scope, container, [1])], keepdims=0)
    return emit("ReduceMean", [members], axes=[1], keepdims=0)


def _int64(scope, container, values):
    from skl2onnx.proto import onnx_proto

    name = scope.get_unique_variable_name("shape")
    container.add_initializer(name, onnx_proto.TensorProto.INT64, [len(values)], values)
    return name


def convert_classifier(scope, operator, container):
    """cbp.MLPClassifier: label (predict) and probabilities (predict_proba)."""
    model = operator.raw_operator
    _check_exportable(model)
    proto_dtype, np_dtype = _proto_dtype(operator)
    y = _forward(scope, container, model, operator.inputs[0].full_name,
                 proto_dtype, np_dtype)
    _class_outputs(scope, container, model, y, operator, proto_dtype, np_dtype,
                   _uses_class_indices(scope, model))


def _class_outputs(scope, container, model, y, operator, proto_dtype, np_dtype, nocl):
    """A classifier's outputs from its network's output y: the label (class
    indices with nocl) and the probabilities."""
    from skl2onnx.proto import onnx_proto

    label_out = operator.outputs[0].full_name
    proba_out = operator.outputs[1].full_name
    y_type = model._label_binarizer.y_type_
    if y_type in ("binary", "multilabel-indicator"):
        half = _constant(scope, container, "half", proto_dtype, np_dtype, 0.5)

    def node(op_type, inputs, output, **attrs):
        container.add_node(op_type, inputs, output,
                           name=scope.get_unique_operator_name(op_type), **attrs)

    def new(name):
        return scope.get_unique_variable_name(name)

    if y_type == "multilabel-indicator":
        # LabelBinarizer.inverse_transform: 1 where the probability > 0.5
        node("Identity", [y], proba_out)
        above = new("above_half")
        node("Greater", [y, half], above)
        node("Cast", [above], label_out, to=onnx_proto.TensorProto.INT64)
        return

    if y_type == "binary":
        # predict_proba: [1 - p, p]; predict: classes_[p > 0.5]
        one = _constant(scope, container, "one", proto_dtype, np_dtype, 1.0)
        negative = new("negative_class_proba")
        node("Sub", [one, y], negative)
        node("Concat", [negative, y], proba_out, axis=1)
        above = new("above_half")
        node("Greater", [y, half], above)
        index_2d = new("label_index_2d")
        node("Cast", [above], index_2d, to=onnx_proto.TensorProto.INT64)
        flat = _constant(scope, container, "flat_shape", onnx_proto.TensorProto.INT64,
                         np.int64, [-1])
        index = new("label_index")
        node("Reshape", [index_2d, flat], index)
    else:
        # multiclass: classes_[argmax(softmax)]
        node("Identity", [y], proba_out)
        index = new("label_index")
        node("ArgMax", [y], index, axis=1, keepdims=0)

    if nocl:
        node("Identity", [index], label_out)
        return
    labels = _class_labels(model)
    classes = scope.get_unique_variable_name("classes")
    if labels.dtype == object:
        container.add_initializer(
            classes, onnx_proto.TensorProto.STRING, [len(labels)],
            [s.encode("utf-8") for s in labels],
        )
    else:
        container.add_initializer(
            classes, onnx_proto.TensorProto.INT64, [len(labels)], labels
        )
    node("Gather", [classes, index], label_out, axis=0)


def convert_regressor(scope, operator, container):
    """cbp.MLPRegressor: predictions as (N, n_outputs_)."""
    model = operator.raw_operator
    _check_exportable(model)
    proto_dtype, np_dtype = _proto_dtype(operator)
    y = _forward(scope, container, model, operator.inputs[0].full_name,
                 proto_dtype, np_dtype)
    container.add_node("Identity", [y], operator.outputs[0].full_name,
                       name=scope.get_unique_operator_name("Identity"))


# --------------------------------------------------------------------------
# the tabular estimators and TableEncoder: the encoder's nodes, then the network's


def calculate_tabular_output_shapes(operator):
    """TableEncoder: variable, float [N, n_features_out_]; TabularMLPClassifier:
    label [N], probabilities float [N, n_classes]; TabularMLPRegressor:
    variable, double [N, n_outputs] (the model and its inputs checked:
    _tabular_onnx's refusals, then the network's)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    model = operator.raw_operator
    encoder, _ = _tabular_onnx.checked_inputs(model, operator.inputs)
    n = operator.inputs[0].get_first_dimension()
    if model is encoder:
        operator.outputs[0].type = FloatTensorType([n, encoder.n_features_out_])
        return
    for network in model._fitted_networks():
        _check_exportable(network, f"{type(model).__name__}'s network")
    if is_classifier(model):
        _classifier_types(operator, model.network_, FloatTensorType)
    else:
        operator.outputs[0].type = DoubleTensorType([n, model.network_.n_outputs_])


def convert_tabular(scope, operator, container):
    """The encoded table (TableEncoder's output), then the float32 network
    (with folds: the mean of the folds' networks' outputs): a classifier's
    label and probabilities, a regressor's double output times y_scale_
    plus y_mean_ (TabularMLPRegressor.predict)."""
    from skl2onnx.proto import onnx_proto

    model = operator.raw_operator
    encoder, inputs = _tabular_onnx.checked_inputs(model, operator.inputs)
    emit = _emitter(scope, container, onnx_proto.TensorProto.DOUBLE, np.float64)
    y = _tabular_onnx.encode(emit, encoder, inputs)
    if model is not encoder:
        float32 = onnx_proto.TensorProto.FLOAT, np.float32
        outputs = [_forward(scope, container, network, y, *float32)
                   for network in model._fitted_networks()]
        y = outputs[0]
        if len(outputs) > 1:
            y = emit("Div", [emit("Sum", outputs), np.array(len(outputs), dtype=np.float32)])
        if is_classifier(model):
            return _class_outputs(scope, container, model.network_, y, operator, *float32,
                                  _uses_class_indices(scope, model))
        y = emit("Mul", [emit("Cast", [y], to=onnx_proto.TensorProto.DOUBLE),
                         model.y_scale_[None, :]])
        y = emit("Add", [y, model.y_mean_[None, :]])
    container.add_node("Identity", [y], operator.outputs[0].full_name,
                       name=scope.get_unique_operator_name("Identity"))


# --------------------------------------------------------------------------
# registration


def register():
    """Register cbp's converters with skl2onnx (imports it); idempotent.

    After this, ``skl2onnx.to_onnx(model, X[:1])`` converts a fitted
    cbp.MLPClassifier or cbp.MLPRegressor, alone or in a Pipeline.
    """
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter

    with _lock:
        if _registered:
            return

        from ._multilayer_perceptron import MLPClassifier, MLPRegressor

        update_registered_converter(
            MLPClassifier, CLASSIFIER_ALIAS,
            calculate_classifier_output_shapes, convert_classifier,
            options={
                "zipmap": [True, False, "columns"],
                "output_class_labels": [False, True],
                "nocl": [True, False],
            },
        )
        update_registered_converter(
            MLPRegressor, REGRESSOR_ALIAS,
            calculate_regressor_output_shapes, convert_regressor,
        )
        for model, alias in zip(_tabular_onnx.EXPORTED, TABULAR_ALIASES, strict=True):
            classifier = is_classifier(model())
            update_registered_converter(
                model, alias, calculate_tabular_output_shapes, convert_tabular,
                parser=_tabular_onnx.parse_classifier if classifier else None,
                options={"zipmap": [True, False, "columns"], "nocl": [True, False]}
                if classifier else None,
            )
        _registered = True


def to_onnx(model, X=None, **kwargs):
    """``skl2onnx.to_onnx(model, X, **kwargs)`` after :func:`register`; a
    tabular model or TableEncoder needs no X (_tabular_onnx.input_types)."""
    register()
    import skl2onnx

    if (X is None and kwargs.get("initial_types") is None
            and isinstance(model, _tabular_onnx.EXPORTED)):
        kwargs["initial_types"] = _tabular_onnx.input_types(model)
    return skl2onnx.to_onnx(model, X, **kwargs)


class _RegisterAfterSkl2onnxImport(importlib.abc.MetaPathFinder):
    """One-shot sys.meta_path hook: registers once ``import skl2onnx`` has run.

    It finds skl2onnx's spec with the other finders and wraps its loader's
    exec_module; it leaves any other import, and any loader without
    exec_module, untouched.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "skl2onnx":
            return None
        _remove_hook()
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec  # pragma: no cover - unusual loaders

        def exec_then_register(module):
            exec_module(module)
            _register_or_warn()

        loader.exec_module = exec_then_register
        return spec


_hook = None


def _register_or_warn():
    """register(), but never break `import cbp` or `import skl2onnx`."""
    try:
        register()
    except Exception as exc:
        warnings.warn(
            f"cbp could not register its ONNX converters with skl2onnx "
            f"({type(exc).__name__}: {exc}); call cbp.onnx.register() to see "
            "the error.",
            RuntimeWarning,
            stacklevel=3,
        )


def _remove_hook():
    global _hook
    with _lock:
        if _hook is not None:
            try:
                sys.meta_path.remove(_hook)
            except ValueError:
                pass
            _hook = None


def register_when_skl2onnx_is_imported():
    """Register now if skl2onnx is imported, else right after it is."""
    global _hook
    if _registered:
        return
    module = sys.modules.get("skl2onnx")
    if module is not None and getattr(module, "to_onnx", None) is not None:
        _register_or_warn()
        return
    with _lock:
        if _hook is None and not _registered:
            _hook = _RegisterAfterSkl2onnxImport()
            sys.meta_path.insert(0, _hook)
