"""Saving and loading fitted models without pickle.

``model.save(path)`` writes a NumPy ``.npz`` archive of plain arrays (numbers
and fixed-width strings; never Python objects) and ``cbp.load(path)`` reads it
back with ``allow_pickle=False``, so that loading a file runs no code from it.
Every array is checked before a model is built from it: a truncated,
corrupted or tampered file, or one that cbp did not write, raises ValueError.

Archive keys:
    __cbp_format__          int, FORMAT_VERSION
    __class__               the estimator's class name (ESTIMATORS)
    __params__              the constructor parameters, as JSON
    __manifest__            every key of the archive (a damaged zip directory
                            can hide entries; the manifest shows them missing)
    coefs_/<l>, intercepts_/<l>
                            ((k, ...) where an ensemble's layer holds one
                            per member: _parts.layout)
    input_scalings_/<l>, output_scalings_/<l>
                            an ensemble's scalings, for the layers that
                            have them (ensemble_size > 1), or the input
                            scaling (layer 0, input_scaling=True)
    batch_norm_<part>_/<k>  gammas, betas, running_means, running_vars of
                            hidden layer k (models fitted with batch_norm)
    embedding_<part>_/0     frequencies, coefs, intercepts of the numeric
                            embedding (models fitted with numeric_embedding)
    attr/<name>             scalar and array fitted attributes
    optimizer/<name>        the stochastic optimizer's state, when present:
                            the entries _options.SOLVERS names for the
                            solver (sgd: velocities, learning_rate; adam: ms,
                            vs, t; rmsprop: vs; + epoch with the cosine
                            schedule). (Its settings come from the parameters.)
"""

import json
import numbers
import os
import zipfile
import zlib

import numpy as np

from sklearn.base import is_classifier

from ._parts import PARTS, WEIGHTS, architecture_of, layout, parts_of
from ._options import (LOSSES, OUTPUT_ACTIVATIONS, SOLVERS, classifier_output,
                       embedded_width, embedding_of, ensemble_of)
from ._state import ATTRIBUTES, TrainingState, archived_records

FORMAT_VERSION = 1

# The estimators an archive can hold, by class name: the estimator module
# registers its classes (persistence never imports it)
ESTIMATORS = {}


def register(cls):
    """Make ``cls`` loadable: archives name their class by ``cls.__name__``."""
    ESTIMATORS[cls.__name__] = cls
    return cls


# The scalar fitted attributes: the network's, and the training state's
# (cbp._state.RECORDS: n_iter_, t_, loss_, best_loss_, ..., the dropout stream)
_SCALAR_ATTRS = {
    "n_layers_": int,
    "n_outputs_": int,
    "n_features_in_": int,
    "out_activation_": str,
    **archived_records("scalar"),
}


def _optimizer_state_names(model):
    """The optimizer state saved for this model's solver and schedule: its
    _options.State entries (SOLVERS and SCHEDULES: the cosine schedule also
    needs the epochs it has started), each found by name in the optimizer's
    state_dict()."""
    return SOLVERS[model.solver].state_names(model.learning_rate)


# The vector fitted attributes: the training state's lists (loss_curve_,
# validation_scores_, validation_loss_curve_), the classes and feature names
_ARRAY_ATTRS = (*archived_records("list"), "classes_", "feature_names_in_")
_LIST_ATTRS = archived_records("list")


def save(model, path):
    """Write a fitted cbp model to ``path`` (a .npz file; see module doc)."""
    arrays = archive_arrays(model)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def archive_arrays(model):
    """The archive of a fitted model: {key: array}, checked as load checks
    it. A class with ``_archive_arrays`` (the tabular estimators) gives its
    own entries, nesting a network's archive under a prefix."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    arrays = {
        "__cbp_format__": np.array(FORMAT_VERSION),
        "__class__": np.array(type(model).__name__),
    }
    if hasattr(model, "_archive_arrays"):
        arrays["__params__"] = np.array(json.dumps(model._json_params()))
        arrays.update(model._archive_arrays(archive_arrays))
    else:
        arrays["__params__"] = np.array(json.dumps(_json_params(model)))
        arrays.update(_network_arrays(model))
    arrays["__manifest__"] = np.array(sorted(arrays))
    # what load would reject is not written (e.g. parameters changed by
    # set_params since the fit, so that they no longer match the weights)
    try:
        _build(arrays)
    except _Invalid as exc:
        raise ValueError(f"cannot save this model: {exc}") from None
    return arrays


def _network_arrays(model):
    arrays = {}
    architecture = model._fitted_architecture()
    for part in parts_of(architecture):
        for l, value in enumerate(getattr(model, part.attribute)):
            if value is not None:
                arrays[f"{part.attribute}/{l}"] = np.ascontiguousarray(value)
    for name in _SCALAR_ATTRS:
        value = getattr(model, name, None)
        if value is not None:
            arrays[f"attr/{name}"] = np.array(value)
    for name in _ARRAY_ATTRS:
        value = getattr(model, name, None)
        if value is not None:
            arrays[f"attr/{name}"] = _plain_array(name, value)
    if hasattr(model, "_label_binarizer"):
        arrays["attr/y_type_"] = np.array(model._label_binarizer.y_type_)
    optimizer = getattr(model, "_optimizer", None)
    saved = {} if optimizer is None else optimizer.state_dict()
    state = {entry.name: entry.find(saved) for entry in _optimizer_state_names(model)}
    # (after set_params(solver=...) the optimizer is another solver's: not saved)
    if optimizer is not None and all(value is not None for value in state.values()):
        for name, value in state.items():
            arrays[f"optimizer/{name}"] = np.asarray(value)
    return arrays


def load(path):
    """Read a model written by ``save``; ValueError if the file is not one.

    Parameters
    ----------
    path : str, path-like or binary file object
        The ``.npz`` archive a fitted model's ``save`` method wrote.

    Returns
    -------
    model : MLPClassifier, MLPRegressor, TabularMLPClassifier or TabularMLPRegressor
        The fitted model, which predicts exactly as the saved one.

    Raises
    ------
    ValueError
        If the file is not a valid cbp model archive (truncated, corrupted,
        tampered with, or not written by cbp). Loading runs no code from the
        file: it is read with ``allow_pickle=False``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from cbp import MLPClassifier, load
    >>> X, y = make_classification(random_state=0)
    >>> model = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs",
    ...                       random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "model.npz")
    ...     model.save(path)
    ...     loaded = load(path)
    >>> loaded
    MLPClassifier(hidden_layer_sizes=(16,), random_state=0, solver='lbfgs')
    >>> np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    True
    """
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with loaded as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            NotImplementedError, RuntimeError, TypeError, UnicodeDecodeError) as exc:
        # (zipfile raises NotImplementedError and RuntimeError for flags and
        # methods it does not support, as a damaged directory can claim)
        raise ValueError(
            f"{_described(path)} is not a readable cbp model file: {exc!r}"
        ) from exc
    try:
        return _build(arrays)
    except _Invalid as exc:
        raise ValueError(f"{_described(path)} is not a valid cbp model file: {exc}") from None


def _described(path):
    """The path's text for a message, or the object's repr if it is an open
    file (np.load reads those too)."""
    return repr(os.fspath(path)) if isinstance(path, (str, bytes, os.PathLike)) else repr(path)


class _Invalid(Exception):
    pass


def _require(condition, message):
    if not condition:
        raise _Invalid(message)


def _json_params(model):
    params = model.get_params(deep=False)
    out = {}
    for name, value in params.items():
        if name == "random_state" and not (value is None or isinstance(value, numbers.Integral)):
            value = None  # a RandomState instance is not data; it is not restored
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, (tuple, list, np.ndarray)):
            if isinstance(value, tuple):
                out.setdefault(_TUPLES, []).append(name)
            # (layer sizes are integers; dropout rates are floats)
            value = [_plain_scalar(name, v) for v in value]
        elif isinstance(value, dict):
            # (class_weight: its keys are class labels, JSON's are strings)
            out.setdefault(_DICTS, []).append(name)
            value = [[_plain_scalar(name, k), _plain_scalar(name, v)]
                     for k, v in value.items()]
        out[name] = value
    return out


def _plain_scalar(name, value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise ValueError(f"cannot save {name}: {value!r} is not a plain number or string")
    return value


# The keys of __params__ listing the parameters given as tuples (JSON has
# lists) and as dicts (saved as [key, value] pairs)
_TUPLES = "__tuples__"
_DICTS = "__dicts__"


def _plain_array(name, value):
    array = np.asarray(value)
    if array.dtype == object:
        try:
            array = array.astype(str)
        except (TypeError, ValueError):
            raise ValueError(f"cannot save {name}: its values are not plain numbers or strings")
    if array.dtype.kind not in "biufU":
        raise ValueError(f"cannot save {name} of dtype {array.dtype} without pickle")
    return array


def _scalar(arrays, key, kind):
    _require(key in arrays, f"missing {key}")
    value = arrays[key]
    _require(value.shape == (), f"{key} must be a scalar")
    if kind is str:
        _require(value.dtype.kind == "U", f"{key} must be a string")
        return str(value)
    _require(value.dtype.kind in "biuf", f"{key} must be a number")
    value = value.item()
    if kind is int:
        _require(isinstance(value, int) and value >= 0, f"{key} must be a non-negative integer")
        return value
    return float(value)


def _build(arrays):
    _require("__cbp_format__" in arrays, "no cbp format marker")
    version = _scalar(arrays, "__cbp_format__", int)
    _require(version == FORMAT_VERSION,
             f"format version {version}; this cbp reads version {FORMAT_VERSION}")
    name = _scalar(arrays, "__class__", str)
    _require(name in ESTIMATORS, f"unknown estimator {name!r}")
    if hasattr(ESTIMATORS[name], "_from_archive"):
        _scalar(arrays, "__params__", str)
        try:
            model = ESTIMATORS[name]._from_archive(arrays, _build, _require)
        except (KeyError, TypeError, ValueError, AttributeError, json.JSONDecodeError) as exc:
            raise _Invalid(f"unreadable {name}: {exc!r}") from None
        _check_manifest(arrays)
        return model
    model = _model_with_params(ESTIMATORS[name], arrays)
    ensemble = ensemble_of(model)
    coefs, intercepts, architecture = _weights(arrays, model, ensemble)
    dtype = coefs[0].dtype
    parts = _other_parts(arrays, architecture, dtype)
    attrs = _attributes(arrays, model, coefs)
    if is_classifier(model):
        model._label_binarizer = _label_binarizer(arrays, attrs)

    records = {attr: attrs.pop(attr) for attr in list(attrs) if attr in ATTRIBUTES}
    for attr, value in attrs.items():
        setattr(model, attr, value)
    model._ensemble = ensemble
    model._embedding = architecture.embedding
    model.coefs_ = [np.array(c) for c in coefs]
    model.intercepts_ = [np.array(b) for b in intercepts]
    for part, values in parts.items():
        setattr(model, PARTS[part].attribute,
                [None if v is None else np.array(v) for v in values])
    state = TrainingState.of(model)
    state.loaded(records, SOLVERS[model.solver].stochastic, model.early_stopping,
                 model._params())
    state.optimizer = _load_optimizer(arrays, model, dtype)
    _check_manifest(arrays)
    return model


def _model_with_params(Estimator, arrays):
    """An Estimator with the archive's parameters, validated."""
    try:
        params = json.loads(_scalar(arrays, "__params__", str))
    except json.JSONDecodeError as exc:
        raise _Invalid(f"unreadable parameters: {exc}") from None
    _require(isinstance(params, dict), "parameters must be a mapping")
    model = Estimator()
    tuples = params.pop(_TUPLES, [])
    _require(isinstance(tuples, list) and all(isinstance(t, str) for t in tuples),
             f"{_TUPLES} must list parameter names")
    dicts = params.pop(_DICTS, [])
    _require(isinstance(dicts, list) and all(isinstance(d, str) for d in dicts),
             f"{_DICTS} must list parameter names")
    unknown = set(params) - set(model.get_params())
    _require(not unknown, f"unknown parameters {sorted(unknown)}")
    for key in tuples:
        _require(isinstance(params.get(key), list), f"{key} is not a sequence")
        params[key] = tuple(params[key])
    for key in dicts:
        pairs = params.get(key)
        _require(isinstance(pairs, list) and all(
            isinstance(p, list) and len(p) == 2 and not isinstance(p[0], (list, dict))
            for p in pairs), f"{key} is not a list of [key, value] pairs")
        params[key] = {k: v for k, v in pairs}
    model.set_params(**params)
    sizes = model._hidden_sizes()
    _require(all(isinstance(v, int) and not isinstance(v, bool) for v in sizes),
             f"hidden_layer_sizes must be integers, got {sizes}")
    try:
        model._validate_params()
    except (ValueError, TypeError) as exc:
        raise _Invalid(f"invalid parameters: {exc}") from None
    return model


def _weights(arrays, model, ensemble):
    """(coefs, intercepts, places): shapes that chain, one float dtype,
    finite values, the hidden layers the parameters say, the shapes the
    ensemble's layout gives (places: _network.layout's, with batch
    normalisation's entries)."""
    n_layers = sum(1 for key in arrays if key.startswith("coefs_/"))
    _require(n_layers >= 1, "no weights")
    keys = [f"coefs_/{l}" for l in range(n_layers)] + [f"intercepts_/{l}" for l in range(n_layers)]
    _require(set(keys) == {k for k in arrays if k.startswith(("coefs_/", "intercepts_/"))},
             "weights are missing or numbered wrongly")
    coefs = [arrays[f"coefs_/{l}"] for l in range(n_layers)]
    intercepts = [arrays[f"intercepts_/{l}"] for l in range(n_layers)]
    dtype = coefs[0].dtype
    _require(dtype in (np.float32, np.float64), f"weights of dtype {dtype}")
    for l, coef in enumerate(coefs):
        _require(coef.ndim in (2, 3) and min(coef.shape) >= 1,
                 f"coefs_[{l}] is not a matrix (or one per ensemble member)")
        if l > 0:
            _require(coef.shape[-2] == coefs[l - 1].shape[-1],
                     f"coefs_[{l}] has {coef.shape[-2]} rows, the layer before has "
                     f"{coefs[l - 1].shape[-1]} units")
    units = [coefs[0].shape[-2]] + [c.shape[-1] for c in coefs]
    _require(units[1:-1] == model._hidden_sizes(),
             f"weights for hidden layers {tuple(units[1:-1])}, parameters say "
             f"{model.hidden_layer_sizes}")
    if model.numeric_embedding is not None:
        # (the first layer reads k * embedding_size + n_features - k values;
        # k = n_features when embedded_features is None, as in archives
        # written before it)
        d, k = model.embedding_size, model.embedded_features
        if k is None:
            _require(units[0] % d == 0,
                     f"coefs_[0] has {units[0]} rows, not n_features * embedding_size "
                     f"(embedding_size={d})")
            units[0] //= d
        else:
            _require(units[0] >= k * d,
                     f"coefs_[0] has {units[0]} rows, fewer than embedded_features * "
                     f"embedding_size ({k} * {d})")
            units[0] -= k * (d - 1)
    architecture = architecture_of(model, units)
    places = layout(architecture).places
    for l, (coef, intercept) in enumerate(zip(coefs, intercepts)):
        _require(coef.dtype == dtype and intercept.dtype == dtype, "weights of mixed dtypes")
        expected = places["coefs"][l][1]
        _require(coef.shape == expected,
                 f"coefs_[{l}] has shape {coef.shape}, expected {expected} "
                 f"(ensemble_size={model.ensemble_size}, ensemble={model.ensemble!r})")
        expected = places["intercepts"][l][1]
        _require(intercept.shape == expected,
                 f"intercepts_[{l}] has shape {intercept.shape}, expected {expected}")
        _require(np.isfinite(coef).all() and np.isfinite(intercept).all(),
                 f"non-finite weights in layer {l}")
    return coefs, intercepts, architecture


def _other_parts(arrays, architecture, dtype):
    """{part name: list of arrays, None where a layer has none} of every
    part of the architecture but the weights: each where the layout places
    it, of the weights' dtype, finite and valid; no other part's keys."""
    places = layout(architecture).places
    parts = {}
    expected = set()
    for part in parts_of(architecture):
        if part.name in WEIGHTS:
            continue
        keys = [None if place is None else f"{part.attribute}/{l}"
                for l, place in enumerate(places[part.name])]
        _require(all(key is None or key in arrays for key in keys),
                 f"{part.attribute} is missing or numbered wrongly")
        parts[part.name] = [None if key is None else arrays[key] for key in keys]
        for key, place in zip(keys, places[part.name]):
            if key is None:
                continue
            value = arrays[key]
            _require(value.dtype == dtype and value.shape == place[1],
                     f"{key} does not match its layer: shape {value.shape}, "
                     f"expected {place[1]} of {dtype}")
            _require(np.isfinite(value).all(), f"non-finite {key}")
            _require(part.valid(value), f"{key}: {part.requirement}")
            expected.add(key)
    others = {key for key in arrays for part in PARTS.values()
              if part.name not in WEIGHTS and key.startswith(part.attribute + "/")}
    _require(others == expected,
             f"entries {sorted(others - expected)} are not parts of this network "
             f"({', '.join(part.attribute for part in parts_of(architecture))})")
    return parts


def _attributes(arrays, model, coefs):
    """The fitted attributes, checked against the weights and the loss."""
    attrs = {}
    for attr, kind in _SCALAR_ATTRS.items():
        if f"attr/{attr}" in arrays:
            attrs[attr] = _scalar(arrays, f"attr/{attr}", kind)
    for attr in ("n_layers_", "n_outputs_", "n_iter_", "t_", "n_features_in_", "out_activation_"):
        _require(attr in attrs, f"missing {attr}")
    _require(attrs["n_layers_"] == len(coefs) + 1, "n_layers_ does not match the weights")
    n = attrs["n_features_in_"]
    embedding = embedding_of(model, n)
    _require(isinstance(n, int) and (embedding is None or embedding[3] <= n),
             "n_features_in_ is fewer than embedded_features")
    width = n if embedding is None else embedded_width(embedding, model.embedding_size)
    _require(width == coefs[0].shape[-2],
             "n_features_in_ does not match the weights")
    _require(attrs["n_outputs_"] == coefs[-1].shape[-1], "n_outputs_ does not match the weights")
    out = attrs["out_activation_"]
    _require(out in OUTPUT_ACTIVATIONS, f"unknown output activation {out!r}")
    if not is_classifier(model):
        expected = LOSSES[model.loss].output
        _require(out == expected, f"output activation {out!r} for loss {model.loss!r}")
    for attr in _ARRAY_ATTRS:
        if f"attr/{attr}" in arrays:
            value = arrays[f"attr/{attr}"]
            _require(value.ndim == 1 and value.dtype.kind in "biufU", f"{attr} is not a plain vector")
            attrs[attr] = value
    for attr in _LIST_ATTRS:
        if attr in attrs:
            _require(attrs[attr].dtype.kind == "f", f"{attr} must hold floats")
            attrs[attr] = attrs[attr].tolist()
    if "feature_names_in_" in attrs:
        _require(attrs["feature_names_in_"].shape == (coefs[0].shape[-2],),
                 "feature_names_in_ does not match the weights")
        attrs["feature_names_in_"] = attrs["feature_names_in_"].astype(object)
    return attrs


def _label_binarizer(arrays, attrs):
    """The classifier's LabelBinarizer, its classes matching the output layer."""
    from sklearn.preprocessing import LabelBinarizer

    _require("classes_" in attrs and "attr/y_type_" in arrays, "missing classes_")
    y_type = _scalar(arrays, "attr/y_type_", str)
    classes = attrs["classes_"]
    n_outputs = attrs["n_outputs_"]
    if y_type == "multiclass":
        matches = len(classes) == n_outputs >= 3
    elif y_type == "binary":
        matches = len(classes) <= 2 and n_outputs == 1
    elif y_type == "multilabel-indicator":
        matches = len(classes) == n_outputs
    else:
        raise _Invalid(f"unknown target type {y_type!r}")
    _require(matches and attrs["out_activation_"] == classifier_output(y_type),
             "classes_ do not match the output layer")
    binarizer = LabelBinarizer()
    binarizer.classes_ = classes
    binarizer.y_type_ = y_type
    binarizer.sparse_input_ = False
    return binarizer


def _check_manifest(arrays):
    """Last, so that a changed entry is named before: nothing missing,
    nothing added."""
    _require("__manifest__" in arrays, "missing __manifest__")
    manifest = arrays["__manifest__"]
    _require(manifest.ndim == 1 and manifest.dtype.kind == "U", "__manifest__ is not a list")
    missing = sorted(set(manifest.tolist()) - set(arrays))
    extra = sorted(set(arrays) - set(manifest.tolist()) - {"__manifest__"})
    _require(not missing, f"entries missing from the archive: {missing}")
    _require(not extra, f"entries not in the manifest: {extra}")


def _load_optimizer(arrays, model, dtype):
    """The optimizer of ``model``'s parameters, with the saved state put back.

    Either every entry of the solver's state is there, or none (a model saved
    before any stochastic training, or an lbfgs one).
    """
    state = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer/")}
    if not state:
        return None
    solver = SOLVERS[model.solver]
    _require(solver.state, f"optimizer state for solver {model.solver!r}")
    entries = solver.state_names(model.learning_rate)
    expected = [entry.name for entry in entries]
    unknown = sorted(set(state) - set(expected))
    if unknown:
        raise _Invalid(f"unknown optimizer state {unknown[0]!r}")
    missing = sorted(set(expected) - set(state))
    _require(not missing, f"missing optimizer state {missing}")

    optimizer = model._make_optimizer(model._params())
    # the new optimizer's state_dict, the saved entries put in by name
    loaded = optimizer.state_dict()
    for entry in entries:
        entry.put(loaded, _state_value(entry, state[entry.name], entry.find(loaded),
                                       model, dtype))
    for entry in entries:
        if entry.non_negative:
            _require(np.all(state[entry.name] >= 0),
                     f"optimizer state {entry.name!r} has negative values")
    optimizer.load_state_dict(loaded)
    return optimizer


def _state_value(entry, value, current, model, dtype):
    """The checked value of one saved State entry (see _options.State);
    current: the new optimizer's own value of it."""
    name = entry.name
    if entry.kind == "vector":
        # (the new optimizer's own vector: the trained values' length)
        _require(value.shape == current.shape and value.dtype == dtype,
                 f"optimizer state {name!r} does not match the weights")
        _require(np.isfinite(value).all(), f"non-finite optimizer state {name!r}")
        return np.array(value)
    _require(value.shape == () and value.dtype.kind in "iuf",
             f"optimizer state {name!r} is not a scalar")
    number = value.item()
    if entry.kind == "count":
        _require(isinstance(number, int) and number >= 0,
                 f"optimizer state {name!r} must be a non-negative integer")
        return number
    # a rate: the current learning rate of a schedule
    _require(np.isfinite(number) and 0 < number <= model.learning_rate_init,
             f"optimizer state {name!r} = {number} is not in "
             f"(0, learning_rate_init]")
    return float(number)
