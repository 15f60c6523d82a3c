"""The tabular estimators' encoder (TableEncoder) as ONNX nodes, and what of
a tabular model the ONNX export refuses.

The graph reads the table as it was fitted: one input per column, named as
the column (``x0``, ``x1``, ... for a model fitted on an array), of shape
(N, 1) or (N,). A numeric column is a double input (float, int64 and bool
inputs are cast to double), NaN where missing; a categorical column a string
input (int64 inputs are cast to their decimal strings and bool inputs become
'True' / 'False': the encoder's ``str`` of them), '<missing>' where missing
(the category TableEncoder gives a missing value). It computes what
``TableEncoder.transform`` computes, in double, and casts the encoded
columns to float32 at the end, as transform does:

    numeric columns, (N, m): a missing value -> the training median
        (IsNaN, Where), then
        'quantile': Phi^-1 of the level of np.interp both ways, averaged
            (scikit-learn's QuantileTransformer), each value's segment
            found by bisection of the quantiles (GatherElements, log2 of
            the levels steps); Phi^-1 as two Chebyshev interpolants of
            scipy.special.ndtri (central and tail) made at export, within
            1e-13 of it;
        'robust': (x - centre) * factor, then x / sqrt(1 + (x / 3)^2);
    their missing-value indicators (IsNaN, where the training data missed
        some);
    their piecewise-linear encodings (x w + b, clipped by Max / Min);
    each categorical column's one-hot columns: ai.onnx.ml's LabelEncoder
        from a category to its index, -1 for any other value (infrequent
        and unseen), Equal to the indices, and the infrequent column.

The graph cannot raise: an infinite value, which transform refuses, goes
through (an infinite piecewise-linear encoding, so a NaN prediction).

Every node is made by ``emit(op_type, inputs, **attributes)`` (cbp._onnx's
emitter: a numpy array among the inputs becomes a constant of its own dtype,
a Python number a double), so this module builds no graph of its own (it
imports skl2onnx only for the default input types, ``input_types``).
"""

import functools

import numpy as np
from numpy.polynomial import chebyshev
from scipy.special import ndtri as _scipy_ndtri
from sklearn.exceptions import NotFittedError

from ._robust_scaling import robust_factor
from ._table_encoder import _BOUND, _CLIP, MISSING, TableEncoder
from ._tabular import TabularMLPClassifier, TabularMLPRegressor

# the estimators whose graphs start with the encoder's nodes
EXPORTED = (TableEncoder, TabularMLPClassifier, TabularMLPRegressor)

# the kinds of input, by skl2onnx's tensor types, and what each kind of
# column takes
_KINDS = {"DoubleTensorType": "double", "FloatTensorType": "float",
          "Int64TensorType": "int64", "BooleanTensorType": "bool",
          "StringTensorType": "string"}
NUMERIC_INPUTS = ("double", "float", "int64", "bool")
CATEGORICAL_INPUTS = ("string", "int64", "bool")

# The TableEncoder parameters the graph reproduces, with the values it knows
# (None: any valid value). A parameter not listed is refused by name.
ENCODER_OPTIONS = {
    "categorical_features": None,
    "numeric": ("quantile", "robust"),
    "n_quantiles": None,
    "n_bins": None,
    "min_frequency": None,
    "max_categories": None,
}

# Phi^-1 on [_BOUND, 1/2], the levels' range reflected: Chebyshev series in
# p - 1/2 above exp(-2) (the central region) and in sqrt(-2 log p) below it
# (the tail), of these degrees (measured: within 3e-14 of scipy's ndtri)
_TAIL_START = float(np.exp(-2.0))
_CENTRAL_DEGREE, _TAIL_DEGREE = 24, 20


# --------------------------------------------------------------------------
# what is exported, and what is refused


def encoder_of(model):
    """The fitted TableEncoder of a tabular model (or the encoder itself),
    after checking that the graph reproduces it.

    Parameters
    ----------
    model : TabularMLPClassifier, TabularMLPRegressor or TableEncoder

    Returns
    -------
    TableEncoder

    Raises
    ------
    NotFittedError
        The model is not fitted.
    ValueError
        The encoder has an option, or an option's value, the graph does not
        reproduce (named).
    """
    name = type(model).__name__
    encoder = model if isinstance(model, TableEncoder) else model.__dict__.get("encoder_")
    if encoder is None or "is_categorical_" not in encoder.__dict__ or (
            encoder is not model and "network_" not in model.__dict__):
        raise NotFittedError(f"This {name} instance is not fitted yet; fit it before "
                             "exporting it to ONNX.")
    params = encoder.get_params()
    unknown = sorted(set(params) - set(ENCODER_OPTIONS))
    if unknown:
        raise ValueError(f"cannot export {name} to ONNX: the encoder option(s) {unknown} "
                         f"have no ONNX form (exported: {sorted(ENCODER_OPTIONS)}).")
    for option, known in ENCODER_OPTIONS.items():
        if known is not None and params[option] not in known:
            raise ValueError(f"cannot export {name} to ONNX: the encoder's "
                             f"{option}={params[option]!r} has no ONNX form (exported: "
                             f"{', '.join(map(repr, known))}).")
    return encoder


def columns(encoder):
    """The table's columns as the graph's inputs.

    Parameters
    ----------
    encoder : fitted TableEncoder

    Returns
    -------
    list of (str, bool)
        Each column's name (``feature_names_in_``, or ``x<j>`` for a model
        fitted on an array) and whether it is categorical, in column order.
    """
    names = (list(encoder.feature_names_in_) if hasattr(encoder, "feature_names_in_")
             else [f"x{j}" for j in range(encoder.n_features_in_)])
    return [(str(n), bool(c)) for n, c in zip(names, encoder.is_categorical_)]


def check_inputs(encoder, inputs, name):
    """Raise naming what of the graph inputs does not fit the table.

    Parameters
    ----------
    encoder : fitted TableEncoder
    inputs : list of (str, str, list)
        Each input's name, kind ('double', 'float', 'int64', 'bool',
        'string' or another type's name) and shape.
    name : str
        The exported model's class, for the messages.

    Raises
    ------
    ValueError
        An input is missing or is not a column, or is not one column wide.
    TypeError
        An input's type does not fit its column (a float for a categorical
        column, a string for a numeric one).
    """
    expected = dict(columns(encoder))
    given = [i[0] for i in inputs]
    missing = [c for c in expected if c not in given]
    extra = [c for c in given if c not in expected]
    if missing or extra:
        raise ValueError(
            f"cannot export {name} to ONNX: its graph takes one input per column of "
            "the table it was fitted on, named as the columns"
            + (f"; no input for column(s) {missing}" if missing else "")
            + (f"; input(s) {extra} name no column" if extra else "")
            + ". Pass the DataFrame itself (X[:1]) as the sample, or no sample to "
            "cbp.onnx.to_onnx.")
    for column, kind, shape in inputs:
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise ValueError(f"cannot export {name} to ONNX: the input of column {column!r} "
                             f"has shape {list(shape)}; a column is (N, 1) or (N,).")
        if expected[column] and kind not in CATEGORICAL_INPUTS:
            raise TypeError(
                f"cannot export {name} to ONNX: categorical column {column!r} has a {kind} "
                "input, and its categories are Python's str() of the values (e.g. '2.0'), "
                "which ONNX's Cast does not reproduce: give it a string input (feed str "
                f"values, {MISSING!r} where missing).")
        if not expected[column] and kind not in NUMERIC_INPUTS:
            raise TypeError(f"cannot export {name} to ONNX: numeric column {column!r} has a "
                            f"{kind} input; a numeric column takes "
                            f"{', '.join(NUMERIC_INPUTS)}.")


def checked_inputs(model, variables):
    """A tabular model's (or TableEncoder's) encoder and its graph inputs,
    checked (``encoder_of``, ``check_inputs``).

    Parameters
    ----------
    model : TabularMLPClassifier, TabularMLPRegressor or TableEncoder
    variables : list of skl2onnx Variable
        The operator's inputs.

    Returns
    -------
    encoder : TableEncoder
    inputs : dict of str to (str, str)
        Each column's graph variable and kind, for ``encode``.
    """
    encoder = encoder_of(model)
    kinds = [_KINDS.get(type(v.type).__name__, type(v.type).__name__) for v in variables]
    check_inputs(encoder, [(v.raw_name, kind, v.type.shape)
                           for v, kind in zip(variables, kinds)], type(model).__name__)
    return encoder, {v.raw_name: (v.full_name, kind) for v, kind in zip(variables, kinds)}


def parse_classifier(scope, model, inputs, custom_parsers=None):
    """skl2onnx's classifier parser (label, probabilities, ZipMap) for a
    TabularMLPClassifier, after ``encoder_of``'s refusals (it reads
    ``classes_`` first)."""
    from skl2onnx._parse import _parse_sklearn_classifier

    encoder_of(model)
    return _parse_sklearn_classifier(scope, model, inputs, custom_parsers=custom_parsers)


def input_types(model):
    """The graph's inputs when no sample table is given: skl2onnx's
    initial_types, a (N, 1) tensor per column, double for a numeric column
    and string for a categorical one."""
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    return [(name, (StringTensorType if categorical else DoubleTensorType)([None, 1]))
            for name, categorical in columns(encoder_of(model))]


# --------------------------------------------------------------------------
# the encoder's nodes


def encode(emit, encoder, inputs):
    """The encoded table, ``encoder.transform``'s columns, as nodes.

    Parameters
    ----------
    emit : callable
        ``emit(op_type, inputs, **attributes) -> output name``; Python
        numbers become double constants.
    encoder : fitted TableEncoder (checked by ``encoder_of``)
    inputs : dict of str to (str, str)
        Each column's graph variable and kind (checked by ``check_inputs``).

    Returns
    -------
    str
        The float32 (N, ``encoder.n_features_out_``) encoded columns.
    """
    def column(name):
        """One column as (N, 1)."""
        return emit("Reshape", [inputs[name][0], np.array([-1, 1], dtype=np.int64)])

    names = columns(encoder)
    numeric = [column(n) for n, categorical in names if not categorical]
    parts = []
    if numeric:
        x = emit("Concat", [emit("Cast", [c], to=_DOUBLE) for c in numeric], axis=1)
        missing = emit("IsNaN", [x])
        x = emit("Where", [missing, encoder.medians_[None, :], x])
        parts.append(_quantile(emit, encoder, x) if encoder.numeric == "quantile"
                     else _robust(emit, encoder, x))
        if encoder.has_indicator_.any():
            parts.append(emit("Gather", [emit("Cast", [missing], to=_DOUBLE),
                                         np.flatnonzero(encoder.has_indicator_)], axis=1))
        if encoder.bin_encoder_ is not None:
            parts.append(_piecewise_linear(emit, encoder.bin_encoder_, x))
    categorical = [(n, column(n)) for n, c in names if c]
    for (name, x), categories, infrequent in zip(categorical, encoder.categories_,
                                                 encoder.has_infrequent_):
        parts.append(_one_hot(emit, _as_strings(emit, x, inputs[name][1]), categories,
                              infrequent))
    encoded = parts[0] if len(parts) == 1 else emit("Concat", parts, axis=1)
    return emit("Cast", [encoded], to=_FLOAT)


# onnx.TensorProto's element types (this module does not import onnx)
_FLOAT, _DOUBLE, _STRING = 1, 11, 8


def _robust(emit, encoder, x):
    """(x - centre) * factor (robust_factor of the scale: 0 for a constant
    column), then the smooth clip x / sqrt(1 + (x / 3)^2)."""
    scaled = emit("Mul", [emit("Sub", [x, encoder.centers_[None, :]]),
                          robust_factor(encoder.scales_)[None, :]])
    ratio = emit("Div", [scaled, _CLIP])
    return emit("Div", [scaled, emit("Sqrt", [emit("Add", [1.0, emit("Mul", [ratio, ratio])])])])


def _quantile(emit, encoder, x):
    """TableEncoder._transform_numeric's 'quantile' branch for all numeric
    columns at once: x (N, m) double -> (N, m) double."""
    q, r = encoder.quantiles_, encoder.references_
    if len(r) == 1:  # fitted on one row: every value is at the bottom
        level = emit("Mul", [x, 0.0])
    else:
        levels = np.broadcast_to(r[:, None], q.shape)
        up = _interp(emit, x, q, levels)
        down = _interp(emit, emit("Neg", [x]), -q[::-1], -levels[::-1])
        level = emit("Mul", [0.5, emit("Sub", [up, down])])
        level = emit("Where", [emit("Greater", [emit("Add", [x, _BOUND]), q[-1:]]),
                               float(r[-1]), level])
        level = emit("Where", [emit("Less", [emit("Sub", [x, _BOUND]), q[:1]]),
                               float(r[0]), level])
    return ndtri(emit, emit("Min", [emit("Max", [level, _BOUND]), 1.0 - _BOUND]))


def _interp(emit, x, xp, fp):
    """np.interp(x[:, k], xp[:, k], fp[:, k]) for every column k, as numpy
    computes it: xp[j] <= x < xp[j + 1] found by bisection, then
    slope_j (x - xp[j]) + fp[j]; fp[j] where x == xp[j]; fp[0] below xp[0],
    fp[-1] from xp[-1] on.

    x : (N, m) double; xp, fp : (Q, m) float64, Q >= 2, xp non-decreasing
    -> (N, m) double
    """
    j = emit("Max", [emit("Min", [emit("Sub", [_count_at_most(emit, x, xp), _int(1)]),
                                  _int(len(xp) - 2)]), _int(0)])
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = (fp[1:] - fp[:-1]) / (xp[1:] - xp[:-1])
    # (a tied segment's slope is never used: xp[j] < xp[j + 1] where it is)
    slopes = np.where(np.isfinite(slopes), slopes, 0.0)

    def at_j(table):
        """table (Q - 1, m) at each value's segment j: (N, m)."""
        return emit("GatherElements", [np.ascontiguousarray(table), j], axis=0)

    left, f_left = at_j(xp[:-1]), at_j(fp[:-1])
    value = emit("Add", [emit("Mul", [at_j(slopes), emit("Sub", [x, left])]), f_left])
    value = emit("Where", [emit("Equal", [x, left]), f_left, value])
    value = emit("Where", [emit("Less", [x, xp[:1]]), np.ascontiguousarray(fp[:1]), value])
    return emit("Where", [emit("GreaterOrEqual", [x, xp[-1:]]),
                          np.ascontiguousarray(fp[-1:]), value])


def _count_at_most(emit, x, xp):
    """How many of xp[:, k] are <= x[:, k] (numpy's searchsorted 'right'),
    by bisection: x (N, m) double, xp (Q, m) -> (N, m) int64."""
    n = len(xp)
    # a row of +inf at n: the bisection may look at index n, never above it
    padded = np.vstack([xp, np.full((1, xp.shape[1]), np.inf)])
    mid = n // 2
    below = emit("LessOrEqual", [padded[mid:mid + 1], x])
    low = emit("Where", [below, _int(mid + 1), _int(0)])
    high = emit("Where", [below, _int(n), _int(mid)])
    size = max(n - mid, mid + 1)  # candidates left, at most
    while size > 1:
        mid = emit("Div", [emit("Add", [low, high]), _int(2)])
        below = emit("LessOrEqual", [emit("GatherElements", [padded, mid], axis=0), x])
        low = emit("Where", [below, emit("Add", [mid, _int(1)]), low])
        high = emit("Where", [below, high, mid])
        size = (size + 1) // 2
    return low


def _int(value):
    return np.array(value, dtype=np.int64)


def _piecewise_linear(emit, bin_encoder, x):
    """PiecewiseLinearEncoder.transform of x (N, m) double: every column's
    encodings side by side, x w + b clipped (the first not below, the last
    not above; a one-bin column not at all; a constant column: 0)."""
    index, w, b, low, high = [], [], [], [], []
    for j, edges in enumerate(bin_encoder.bin_edges_):
        if len(edges) < 2:
            index.append(j), w.append([0.0]), b.append([0.0])
            low.append([-np.inf]), high.append([np.inf])
            continue
        width = np.diff(edges)
        index += [j] * len(width)
        w.append(1.0 / width), b.append(-edges[:-1] / width)
        lo, hi = np.zeros(len(width)), np.ones(len(width))
        lo[0], hi[-1] = -np.inf, np.inf
        low.append(lo), high.append(hi)
    rows = [np.concatenate(v)[None, :] for v in (w, b, low, high)]
    v = emit("Add", [emit("Mul", [emit("Gather", [x, np.array(index, dtype=np.int64)],
                                       axis=1), rows[0]]), rows[1]])
    return emit("Min", [emit("Max", [v, rows[2]]), rows[3]])


def _as_strings(emit, x, kind):
    """A categorical column's values as the encoder's str of them."""
    if kind == "int64":
        return emit("Cast", [x], to=_STRING)
    if kind == "bool":
        return emit("Where", [x, np.array(["True"]), np.array(["False"])])
    return x


def _one_hot(emit, x, categories, infrequent):
    """x (N, 1) strings -> (N, len(categories) + infrequent) double: a 1 in
    its category's column, or in the infrequent one."""
    # (no category of its own: every value is infrequent, LabelEncoder gives -1)
    keys = list(categories) or [MISSING]
    index = emit("LabelEncoder", [x], op_domain="ai.onnx.ml", op_version=2,
                 keys_strings=[k.encode("utf-8") for k in keys],
                 values_int64s=list(range(len(categories))) or [-1], default_int64=-1)
    parts = []
    if len(categories):
        parts.append(emit("Cast", [emit("Equal", [index, np.arange(len(categories))[None, :]])],
                          to=_DOUBLE))
    if infrequent:
        parts.append(emit("Cast", [emit("Less", [index, _int(0)])], to=_DOUBLE))
    return parts[0] if len(parts) == 1 else emit("Concat", parts, axis=1)


# --------------------------------------------------------------------------
# Phi^-1


@functools.lru_cache(maxsize=None)
def _ndtri_series():
    """The Chebyshev coefficients of scipy's ndtri: on the central region
    (p - 1/2 in [exp(-2) - 1/2, 0]) and on the tail (s = sqrt(-2 log p) in
    [2, sqrt(-2 log _BOUND)]), with each region's bounds."""
    def series(f, a, b, degree):
        return chebyshev.chebinterpolate(lambda t: f(0.5 * (a + b) + 0.5 * (b - a) * t),
                                         degree), a, b

    top = float(np.sqrt(-2.0 * np.log(_BOUND)))
    return (series(lambda w: _scipy_ndtri(0.5 + w), _TAIL_START - 0.5, 0.0, _CENTRAL_DEGREE),
            series(lambda s: _scipy_ndtri(np.exp(-0.5 * s * s)), 2.0, top, _TAIL_DEGREE))


def ndtri(emit, p):
    """Phi^-1(p) (scipy.special.ndtri) for p in [1e-7, 1 - 1e-7], within 1e-13.

    Parameters
    ----------
    emit : callable
        The emitter (Python numbers: double constants).
    p : str
        A double tensor, every value in [1e-7, 1 - 1e-7].

    Returns
    -------
    str
        A double tensor of p's shape: -Phi^-1(1 - p) above 1/2 (1 - p is
        exact there), the central or the tail series below.
    """
    (central, a, b), (tail, s0, s1) = _ndtri_series()
    low = emit("Min", [p, emit("Sub", [1.0, p])])
    t = emit("Div", [emit("Sub", [emit("Mul", [emit("Sub", [low, 0.5]), 2.0]), a + b]), b - a])
    s = emit("Sqrt", [emit("Mul", [emit("Log", [low]), -2.0])])
    u = emit("Div", [emit("Sub", [emit("Mul", [s, 2.0]), s0 + s1]), s1 - s0])
    value = emit("Where", [emit("Less", [low, _TAIL_START]), _clenshaw(emit, tail, u),
                           _clenshaw(emit, central, t)])
    return emit("Where", [emit("Greater", [p, 0.5]), emit("Neg", [value]), value])


def _clenshaw(emit, c, t):
    """sum_k c_k T_k(t) by Clenshaw's recurrence (len(c) >= 3)."""
    t2 = emit("Mul", [t, 2.0])
    b2, b1 = float(c[-1]), emit("Add", [emit("Mul", [t2, float(c[-1])]), float(c[-2])])
    for ck in c[-3:0:-1]:
        b1, b2 = emit("Sub", [emit("Add", [emit("Mul", [t2, b1]), float(ck)]), b2]), b1
    return emit("Sub", [emit("Add", [emit("Mul", [t, b1]), float(c[0])]), b2])
