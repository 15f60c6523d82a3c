# Losses J and the output-layer error delta^L = dJ/dz^L.
#
# Each loss is paired with an output activation (the kernel's LOSS_OUTPUT);
# for the first four, the canonical one, so that
# delta^L = sample_weight * (y_pred - y). The value returned is the weighted sum over samples (not yet divided
# by the weight sum):
#   squared error    0.5 * sum_i w_i sum_k (y - y_pred)^2
#                    (summed over the outputs, so that the loss is the one whose
#                    gradient delta^L is; scikit-learn averages over the outputs
#                    but not in the gradient, its issue #8349)
#   log-loss         -sum_i w_i sum_k y_k log p_k             (softmax)
#   binary log-loss  -sum_i w_i sum_k y log p + (1-y) log(1-p) (logistic)
#   Poisson          sum_i w_i sum_k y log(y / y_pred) - y + y_pred (exp)
#   absolute error   sum_i w_i sum_k |y - y_pred|                (identity;
#                    dJ/dz = sign(y_pred - y), 0 at a zero residual)
#   Huber            sum_i w_i sum_k h(y_pred - y), h(r) = r^2 / 2 for
#                    |r| <= delta, delta (|r| - delta / 2) beyond (identity;
#                    dJ/dz = r clipped to [-delta, delta])
# Probabilities are clipped to [eps, 1 - eps] of the dtype before the log,
# as scikit-learn does.
from cython cimport floating
from libc.math cimport fabs, log
from libc.float cimport DBL_EPSILON, FLT_EPSILON

# Loss codes; Python sees them as _kernel.LOSS_CODES.
cdef enum Loss:
    SQUARED_ERROR = 0
    LOG_LOSS = 1
    BINARY_LOG_LOSS = 2
    POISSON = 3
    ABSOLUTE_ERROR = 4
    HUBER = 5


cdef inline dict loss_codes():
    """The losses by name (_kernel.LOSS_CODES)."""
    return {"squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS,
            "binary_log_loss": BINARY_LOG_LOSS, "poisson": POISSON,
            "absolute_error": ABSOLUTE_ERROR, "huber": HUBER}


cdef inline dict loss_output_activations():
    """Each loss's output activation, by name (_kernel.LOSS_OUTPUT)."""
    return {"squared_error": "identity", "log_loss": "softmax",
            "binary_log_loss": "logistic", "poisson": "exp",
            "absolute_error": "identity", "huber": "identity"}


cdef struct LossSpec:
    # A loss and its parameters (filled by _kernel._loss_spec, for Network
    # and the tests' loss_and_delta).
    int kind                # a Loss code
    double huber_delta      # HUBER: where the quadratic part ends (> 0)


cdef inline double _clip(double p, double eps) noexcept nogil:
    if p < eps:
        return eps
    if p > 1 - eps:
        return 1 - eps
    return p


cdef inline double _xlogy(double x, double y) noexcept nogil:
    """x log(y), with 0 log(y) = 0 (scipy.special.xlogy)."""
    if x == 0:
        return 0.0
    return x * log(y)


cdef inline double loss_and_output_delta(
        const LossSpec *spec, const floating *y_pred, const floating *y,
        const floating *sample_weight, Py_ssize_t n_rows, Py_ssize_t n_outputs,
        floating *delta) noexcept nogil:
    """Weighted loss summed over the rows, and the output error delta^L.

    y_pred, y, delta: row-major (n_rows, n_outputs). sample_weight: (n_rows,),
    or NULL for unit weights. Returns sum_i w_i J_i in double precision;
    delta := w_i dJ_i/dz (z: the output layer's input), which for each loss
    here with its canonical output activation is w_i (y_pred - y).

    Each loss is one branch: its term of J_i for one output, and dJ_i/dz.
    """
    cdef Py_ssize_t i, j, k
    cdef int loss = spec.kind
    cdef double row_loss, total = 0.0, p, t, r
    cdef double eps = FLT_EPSILON if floating is float else DBL_EPSILON
    cdef floating d
    for i in range(n_rows):
        row_loss = 0.0
        for j in range(n_outputs):
            k = i * n_outputs + j
            p = y_pred[k]
            t = y[k]
            if loss == SQUARED_ERROR:
                row_loss += (t - p) * (t - p)       # (halved below)
                d = y_pred[k] - y[k]
            elif loss == LOG_LOSS:
                row_loss -= _xlogy(t, _clip(p, eps))
                d = y_pred[k] - y[k]
            elif loss == BINARY_LOG_LOSS:
                p = _clip(p, eps)
                row_loss -= _xlogy(t, p) + _xlogy(1 - t, 1 - p)
                d = y_pred[k] - y[k]
            elif loss == POISSON:
                row_loss += _xlogy(t, t / p) - t + p
                d = y_pred[k] - y[k]
            elif loss == ABSOLUTE_ERROR:
                row_loss += fabs(p - t)
                d = (y_pred[k] > y[k]) - (y_pred[k] < y[k])
            elif loss == HUBER:
                r = p - t
                if fabs(r) <= spec.huber_delta:
                    row_loss += 0.5 * r * r
                    d = y_pred[k] - y[k]
                else:
                    row_loss += spec.huber_delta * (fabs(r) - 0.5 * spec.huber_delta)
                    d = spec.huber_delta if r > 0 else -spec.huber_delta
            delta[k] = d * sample_weight[i] if sample_weight != NULL else d
        total += sample_weight[i] * row_loss if sample_weight != NULL else row_loss
    if loss == SQUARED_ERROR:
        total *= 0.5
    return total
