# Activation functions g and their derivatives g', applied in place to a
# contiguous block of n values. Each derivative is written, as in
# scikit-learn's neural_network/_base.py, in terms of the activation's
# output a = g(z), which is what the forward pass keeps.
from cython cimport floating
from libc.math cimport exp, expf, tanh, tanhf

# Activation codes; Python sees them as _kernel.ACTIVATION_CODES.
cdef enum Activation:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    SOFTMAX = 4   # output layer only
    EXP = 5       # output layer only (Poisson)
    LEAKY_RELU = 6


# Negative slope of LEAKY_RELU (PyTorch's default), a compile-time constant
cdef extern from *:
    """
    #define CBP_LEAKY_SLOPE 0.01
    """
    const double LEAKY_SLOPE "CBP_LEAKY_SLOPE"


cdef inline dict hidden_activation_codes():
    """The hidden activations by name (_kernel.HIDDEN_ACTIVATIONS)."""
    return {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH,
            "relu": RELU, "leaky_relu": LEAKY_RELU}


cdef inline dict output_activation_codes():
    """The output activations by name (_kernel.OUTPUT_ACTIVATIONS)."""
    return {"identity": IDENTITY, "logistic": LOGISTIC, "softmax": SOFTMAX,
            "exp": EXP}


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


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
                                     floating *delta, Py_ssize_t n) noexcept nogil:
    """delta := delta * g'(z), in place, with g'(z) written in a = g(z)."""
    cdef Py_ssize_t i
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
    # IDENTITY: g' = 1
