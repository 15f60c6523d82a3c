# Activation functions g and their derivatives g', applied in place to a
# contiguous block of n values. The derivatives of scikit-learn's activations
# are written, as in its neural_network/_base.py, in terms of the
# activation's output a = g(z), which is what the forward pass keeps; those
# that are not functions of a alone (GELU, SiLU, SELU, Mish: needs_z) read z,
# which the forward pass then keeps too (NetSpec.z_offset, _network.pxd).
# The new ones follow PyTorch's CPU formulas (aten/src/ATen/native/cpu/
# Activation.cpp), operation for operation where it matters.
from cython cimport floating
from libc.math cimport (erf, erff, exp, expf, expm1, expm1f, log1p, log1pf,
                        tanh, tanhf)

# Activation codes; Python sees them as _kernel.ACTIVATION_CODES.
cdef enum Activation:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    SOFTMAX = 4   # output layer only
    EXP = 5       # output layer only (Poisson)
    LEAKY_RELU = 6
    GELU = 7      # torch.nn.GELU(): z Phi(z), the exact (erf) form
    SILU = 8      # torch.nn.SiLU: z sigma(z)
    SELU = 9      # torch.nn.SELU
    MISH = 10     # torch.nn.Mish: z tanh(softplus(z))


# Negative slope of LEAKY_RELU (PyTorch's default), a compile-time constant;
# Python reads it as _kernel.LEAKY_SLOPE (the ONNX forms), so it is written here only
cdef extern from *:
    """
    #define CBP_LEAKY_SLOPE 0.01
    """
    const double LEAKY_SLOPE "CBP_LEAKY_SLOPE"


# SELU's constants (torch: SELU_ALPHA, SELU_SCALE in Activation.cpp); Python
# reads them as _kernel.SELU_ALPHA, _kernel.SELU_SCALE
cdef extern from *:
    """
    #define CBP_SELU_ALPHA 1.6732632423543772848170429916717
    #define CBP_SELU_SCALE 1.0507009873554804934193349852946
    #define CBP_SQRT1_2 0.70710678118654752440084436210484903928483593768847
    #define CBP_2_SQRTPI 1.12837916709551257389615890312154517168810125865800
    """
    const double SELU_ALPHA "CBP_SELU_ALPHA"
    const double SELU_SCALE "CBP_SELU_SCALE"
    const double SQRT1_2 "CBP_SQRT1_2"      # 1 / sqrt(2)
    const double TWO_SQRTPI "CBP_2_SQRTPI"  # 2 / sqrt(pi)


cdef inline dict hidden_activation_codes():
    """The hidden activations by name (_kernel.HIDDEN_ACTIVATIONS)."""
    return {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH,
            "relu": RELU, "leaky_relu": LEAKY_RELU, "gelu": GELU, "silu": SILU,
            "selu": SELU, "mish": MISH}


cdef inline dict output_activation_codes():
    """The output activations by name (_kernel.OUTPUT_ACTIVATIONS)."""
    return {"identity": IDENTITY, "logistic": LOGISTIC, "softmax": SOFTMAX,
            "exp": EXP}


cdef inline bint needs_z(int activation) noexcept nogil:
    """Whether multiply_derivative reads z (not a function of a = g(z)
    alone, or not accurately: SELU's e^z from a cancels for z << 0)."""
    return (activation == GELU or activation == SILU or activation == SELU
            or activation == MISH)


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


cdef inline floating _erf(floating x) noexcept nogil:
    if floating is float:
        return erff(x)
    else:
        return erf(x)


cdef inline floating _expm1(floating x) noexcept nogil:
    if floating is float:
        return expm1f(x)
    else:
        return expm1(x)


cdef inline floating _softplus(floating x) noexcept nogil:
    """log(1 + e^x) as torch's Mish takes it, log1p(exp(x)): exact for
    x << 0, and inf only where tanh of it is 1 anyway."""
    if floating is float:
        return log1pf(expf(x))
    else:
        return log1p(exp(x))


cdef inline void activate(int activation, floating *Z, Py_ssize_t n_rows,
                          Py_ssize_t n_cols) noexcept nogil:
    """Z := g(Z), in place; Z is a row-major (n_rows, n_cols) block."""
    cdef Py_ssize_t i, j, n = n_rows * n_cols
    cdef floating zmax, total
    cdef floating *row
    if activation == LOGISTIC:
        # scipy.special.expit
        for i in range(n):
            Z[i] = 1 / (1 + _exp(-Z[i]))
    elif activation == TANH:
        for i in range(n):
            if floating is float:
                Z[i] = tanhf(Z[i])
            else:
                Z[i] = tanh(Z[i])
    elif activation == RELU:
        # an unconditional store, so that the loop vectorises (NaN is kept,
        # as np.maximum(Z, 0) keeps it)
        for i in range(n):
            Z[i] = 0 if Z[i] < 0 else Z[i]
    elif activation == LEAKY_RELU:
        # z for z > 0, 0.01 z otherwise (NaN is kept)
        for i in range(n):
            Z[i] = Z[i] * <floating> LEAKY_SLOPE if Z[i] < 0 else Z[i]
    elif activation == EXP:
        for i in range(n):
            Z[i] = _exp(Z[i])
    elif activation == GELU:
        # z * 0.5 * (1 + erf(z / sqrt(2)))
        for i in range(n):
            Z[i] = Z[i] * <floating> 0.5 * (1 + _erf(Z[i] * <floating> SQRT1_2))
    elif activation == SILU:
        # z / (1 + e^-z)
        for i in range(n):
            Z[i] = Z[i] / (1 + _exp(-Z[i]))
    elif activation == SELU:
        # scale alpha (e^z - 1) for z <= 0, scale z otherwise
        for i in range(n):
            Z[i] = (_expm1(Z[i]) * <floating> (SELU_ALPHA * SELU_SCALE) if Z[i] <= 0
                    else Z[i] * <floating> SELU_SCALE)
    elif activation == MISH:
        # z tanh(softplus(z))
        for i in range(n):
            Z[i] = Z[i] * _tanh(_softplus(Z[i]))
    elif activation == SOFTMAX:
        # row-wise, shifted by the row's maximum so that exp cannot overflow
        for i in range(n_rows):
            row = Z + i * n_cols
            zmax = row[0]
            for j in range(1, n_cols):
                if row[j] > zmax:
                    zmax = row[j]
            total = 0
            for j in range(n_cols):
                row[j] = _exp(row[j] - zmax)
                total += row[j]
            for j in range(n_cols):
                row[j] /= total
    # IDENTITY: nothing to do


cdef inline void multiply_derivative(int activation, const floating *A,
                                     const floating *Z, floating *delta,
                                     Py_ssize_t n) noexcept nogil:
    """delta := delta * g'(z), in place, with g'(z) written in a = g(z)
    (A), or in z (Z) for the activations that need_z (else Z is unused and
    may be NULL)."""
    cdef Py_ssize_t i
    cdef floating z, sigma, t
    if activation == LOGISTIC:
        # g' = a (1 - a)
        for i in range(n):
            delta[i] = delta[i] * A[i] * (1 - A[i])
    elif activation == TANH:
        # g' = 1 - a^2
        for i in range(n):
            delta[i] *= 1 - A[i] * A[i]
    elif activation == RELU:
        # g' = 1 where a > 0, else 0
        for i in range(n):
            delta[i] = 0 if A[i] == 0 else delta[i]
    elif activation == LEAKY_RELU:
        # g' = 1 where a > 0 (z > 0), else 0.01 (also at z = 0, as PyTorch)
        for i in range(n):
            delta[i] = delta[i] if A[i] > 0 else delta[i] * <floating> LEAKY_SLOPE
    elif activation == GELU:
        # g' = Phi(z) + z phi(z):  cdf + z * (2/sqrt(pi) / sqrt(2) / 2) e^(-z^2/2)
        for i in range(n):
            z = Z[i]
            delta[i] *= (<floating> 0.5 * (1 + _erf(z * <floating> SQRT1_2))
                         + z * (<floating> (TWO_SQRTPI * SQRT1_2 * 0.5)
                                * _exp(z * z * <floating> -0.5)))
    elif activation == SILU:
        # g' = sigma(z) (1 + z (1 - sigma(z)))
        for i in range(n):
            z = Z[i]
            sigma = 1 / (1 + _exp(-z))
            delta[i] *= sigma * (1 + z * (1 - sigma))
    elif activation == SELU:
        # g' = scale alpha e^z for z <= 0, scale otherwise
        for i in range(n):
            delta[i] *= (<floating> (SELU_ALPHA * SELU_SCALE) * _exp(Z[i]) if Z[i] <= 0
                         else <floating> SELU_SCALE)
    elif activation == MISH:
        # g' = tanh(sp) + z sigma(z) (1 - tanh(sp)^2), sp = softplus(z)
        for i in range(n):
            z = Z[i]
            sigma = 1 / (1 + _exp(-z))
            t = _tanh(_softplus(z))
            delta[i] *= t + z * sigma * (1 - t * t)
    # IDENTITY: g' = 1
