"""Each activation's ONNX form, keyed by the registries' names.

A form is a function ``form(emit, z, dtype) -> output`` that adds the nodes
of g(z) to a graph: ``emit(op_type, inputs, **attributes)`` adds a node and
returns its output's name, and a Python number among the inputs is a
constant of the graph's dtype (``_onnx._emitter``). ``onnx_op("Tanh")`` is
the form of an activation that is one operator. onnxruntime has no double
kernel for some operators (``Erf``, ``Softplus``, ``LeakyRelu``), so a form
may spell the function out in double, as ``_gelu_onnx`` does. The constants
(leaky_relu's slope, selu's alpha and scale) are the kernel's, written once
in src/_activations.pxd.

    HIDDEN_FORMS  each name of _options.HIDDEN_ACTIVATIONS -> its form
    OUTPUT_FORMS  each name of _options.OUTPUT_ACTIVATIONS -> its form

A new activation of the registries has its form here (tests/test_onnx.py
checks that every one has).
"""

import functools

import numpy as np

from ._dispatch import kernel


def onnx_op(op_type, **attributes):
    """The ONNX form of an activation that is one operator."""
    return lambda emit, z, dtype: emit(op_type, [z], **attributes)


def _leaky_relu_onnx(emit, z, dtype):
    """LeakyRelu in float; in double, `z * 0.01 if z < 0 else z` spelt out:
    onnxruntime (1.32) has no double kernel for LeakyRelu ("Could not find an
    implementation for LeakyRelu(16)") and its alpha is a float32 (Where
    also keeps NaN as cbp does)."""
    if dtype != np.float64:
        return emit("LeakyRelu", [z], alpha=kernel.LEAKY_SLOPE)
    negative = emit("Less", [z, 0.0])
    scaled = emit("Mul", [z, kernel.LEAKY_SLOPE])
    return emit("Where", [negative, scaled, z])


def _gelu_onnx(emit, z, dtype):
    """z Phi(z) = 0.5 z (1 + erf(z / sqrt 2)) (ONNX's Gelu is opset 20).

    In double, onnxruntime (1.2x) has no Erf kernel, so Phi is spelt out:
    with a = |z| / sqrt 2, erfc(a) = exp(-a^2) erfcx(a), erfcx by a Chebyshev
    series (_erfcx_chebyshev: relative 5e-14 on [0, 27], past which exp(-a^2)
    is 0), and Phi(z) = erfc(a) / 2 for z < 0, 1 - erfc(a) / 2 otherwise."""
    if dtype != np.float64:
        erf = emit("Erf", [emit("Mul", [z, 0.7071067811865476])])
        return emit("Mul", [emit("Mul", [z, 0.5]), emit("Add", [erf, 1.0])])
    a = emit("Mul", [emit("Abs", [z]), 0.7071067811865476])
    t = emit("Div", [2.0, emit("Add", [a, 2.0])])
    coefficients, t_min = _erfcx_chebyshev()
    # u: t from [t_min, 1] to [-1, 1] (clipped: a > 27 gives exp(-a^2) = 0)
    u = emit("Max", [emit("Sub", [emit("Mul", [t, 2.0 / (1.0 - t_min)]),
                                  (1.0 + t_min) / (1.0 - t_min)]), -1.0])
    # Clenshaw's recurrence for sum_k c_k T_k(u)
    two_u = emit("Mul", [u, 2.0])
    b1, b2 = float(coefficients[-1]), 0.0
    for c in coefficients[-2:0:-1]:
        b1, b2 = emit("Sub", [emit("Add", [emit("Mul", [two_u, b1]), float(c)]), b2]), b1
    erfcx = emit("Sub", [emit("Add", [emit("Mul", [u, b1]), float(coefficients[0])]), b2])
    half_erfc = emit("Mul", [emit("Mul", [emit("Exp", [emit("Neg", [emit("Mul", [a, a])])]),
                                          erfcx]), 0.5])
    phi = emit("Where", [emit("Less", [z, 0.0]), half_erfc, emit("Sub", [1.0, half_erfc])])
    return emit("Mul", [z, phi])


@functools.lru_cache(maxsize=None)
def _erfcx_chebyshev(degree=24, a_max=27.0):
    """Chebyshev coefficients of erfcx(a) = exp(a^2) erfc(a) in t = 2 / (2 +
    a), t in [t_min, 1] mapped to [-1, 1] (a in [0, a_max]), and t_min."""
    from numpy.polynomial import chebyshev
    from scipy.special import erfcx

    t_min = 2.0 / (2.0 + a_max)

    def of_u(u):
        return erfcx(2.0 / (t_min + (u + 1.0) / 2.0 * (1.0 - t_min)) - 2.0)

    return chebyshev.chebinterpolate(of_u, degree), t_min


def _silu_onnx(emit, z, dtype):
    """z sigmoid(z)."""
    return emit("Mul", [z, emit("Sigmoid", [z])])


def _selu_onnx(emit, z, dtype):
    """Selu in float; in double spelt out (Selu's alpha and gamma attributes
    are float32): scale z for z > 0, scale alpha (exp(z) - 1) otherwise."""
    if dtype != np.float64:
        return emit("Selu", [z], alpha=kernel.SELU_ALPHA, gamma=kernel.SELU_SCALE)
    negative = emit("Mul", [emit("Sub", [emit("Exp", [z]), 1.0]), kernel.SELU_SCALE * kernel.SELU_ALPHA])
    return emit("Where", [emit("Greater", [z, 0.0]), emit("Mul", [z, kernel.SELU_SCALE]),
                          negative])


def _mish_onnx(emit, z, dtype):
    """z tanh(softplus(z)) (ONNX's Mish is opset 18). In double onnxruntime
    has no Softplus kernel: softplus(z) = max(z, 0) + log1p(exp(-|z|)), log1p(e)
    as log(w) e / (w - 1) with w = 1 + e (e where w rounds to 1; Goldberg's
    exact form, ONNX having no Log1p)."""
    if dtype != np.float64:
        return emit("Mul", [z, emit("Tanh", [emit("Softplus", [z])])])
    e = emit("Exp", [emit("Neg", [emit("Abs", [z])])])
    w = emit("Add", [e, 1.0])
    w_minus_1 = emit("Sub", [w, 1.0])
    log1p = emit("Where", [emit("Equal", [w_minus_1, 0.0]), e,
                           emit("Div", [emit("Mul", [emit("Log", [w]), e]), w_minus_1])])
    softplus = emit("Add", [emit("Max", [z, 0.0]), log1p])
    return emit("Mul", [z, emit("Tanh", [softplus])])


HIDDEN_FORMS = {
    "identity": onnx_op("Identity"),
    "logistic": onnx_op("Sigmoid"),
    "tanh": onnx_op("Tanh"),
    "relu": onnx_op("Relu"),
    "leaky_relu": _leaky_relu_onnx,
    "gelu": _gelu_onnx,
    "silu": _silu_onnx,
    "selu": _selu_onnx,
    "mish": _mish_onnx,
}

OUTPUT_FORMS = {
    "identity": onnx_op("Identity"),
    "logistic": onnx_op("Sigmoid"),
    "softmax": onnx_op("Softmax", axis=1),
    "exp": onnx_op("Exp"),
}
