# In-place parameter updates, one pass over the flat parameter vector.
# The arithmetic follows scikit-learn's neural_network/_stochastic_optimizers.py
# operation for operation.
#
# The updates take the raw sums the δ recursion produces, A.T @ δ for the
# weights and sum_rows(δ) for the intercepts, and form the gradient in the
# same pass (one read of each vector instead of two):
#
#     g = (raw + alpha * params) / s     for the first n_coefs values (weights)
#     g = raw / s                        for the rest (intercepts)
#
# which is _backprop's scaled gradient, operation for operation.
from cython cimport floating
from libc.math cimport pow, sqrt, sqrtf

# Optimizer codes; Python names them (_kernel.OPTIMIZER_CODES).
cdef enum Solver:
    SGD = 0
    ADAM = 1


cdef struct OptimizerSpec:
    # One optimizer's kind and hyper-parameters (filled by _kernel.Optimizer).
    int kind                # SGD or ADAM
    double learning_rate    # sgd: the current rate; adam: learning_rate_init
    double momentum         # sgd
    bint nesterov           # sgd
    double beta_1, beta_2   # adam
    double epsilon          # adam


cdef inline void _sgd_range(floating *params, const floating *raw,
                            floating *velocities, Py_ssize_t start,
                            Py_ssize_t stop, bint penalised, floating alpha,
                            floating s, floating learning_rate,
                            floating momentum, bint nesterov) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating g, v
    for i in range(start, stop):
        g = (raw[i] + alpha * params[i]) / s if penalised else raw[i] / s
        v = momentum * velocities[i] - learning_rate * g
        velocities[i] = v
        params[i] += momentum * v - learning_rate * g if nesterov else v


cdef inline void sgd_update(floating *params, const floating *raw,
                            floating *velocities, Py_ssize_t n,
                            Py_ssize_t n_coefs, floating alpha, floating s,
                            floating learning_rate, floating momentum,
                            bint nesterov) noexcept nogil:
    """SGD with (Nesterov) momentum, g formed from raw as above.

    v := momentum * v - lr * g
    params += momentum * v - lr * g   (Nesterov)   or   params += v
    params, velocities: (n,), in/out; raw: (n,).
    """
    _sgd_range(params, raw, velocities, 0, n_coefs, True, alpha, s,
               learning_rate, momentum, nesterov)
    _sgd_range(params, raw, velocities, n_coefs, n, False, alpha, s,
               learning_rate, momentum, nesterov)


cdef inline void _adam_range(floating *params, const floating *raw,
                             floating *ms, floating *vs, Py_ssize_t start,
                             Py_ssize_t stop, bint penalised, floating alpha,
                             floating s, floating step, floating b1,
                             floating b2, floating c1, floating c2,
                             floating eps) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating g, m, v
    for i in range(start, stop):
        g = (raw[i] + alpha * params[i]) / s if penalised else raw[i] / s
        m = b1 * ms[i] + c1 * g
        v = b2 * vs[i] + c2 * (g * g)
        ms[i] = m
        vs[i] = v
        if floating is float:
            params[i] += step * m / (sqrtf(v) + eps)
        else:
            params[i] += step * m / (sqrt(v) + eps)


cdef inline void adam_update(floating *params, const floating *raw,
                             floating *ms, floating *vs, Py_ssize_t n,
                             Py_ssize_t n_coefs, floating alpha, floating s,
                             double learning_rate, double beta_1, double beta_2,
                             double epsilon, Py_ssize_t t) noexcept nogil:
    """Adam, step t (t >= 1 counts this update), g formed from raw as above.

    m := beta_1 m + (1 - beta_1) g;  v := beta_2 v + (1 - beta_2) g^2
    lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
    params -= lr_t m / (sqrt(v) + epsilon)
    epsilon is added before the bias correction (scikit-learn's placement).
    params, ms, vs: (n,), in/out; raw: (n,).
    """
    # (libc pow: Cython's ** on doubles can raise, which a nogil helper cannot)
    cdef double lr_t = (learning_rate * sqrt(1 - pow(beta_2, <double> t))
                        / (1 - pow(beta_1, <double> t)))
    cdef floating b1 = beta_1, b2 = beta_2, c1 = 1 - beta_1, c2 = 1 - beta_2
    cdef floating step = -lr_t, eps = epsilon
    _adam_range(params, raw, ms, vs, 0, n_coefs, True, alpha, s, step,
                b1, b2, c1, c2, eps)
    _adam_range(params, raw, ms, vs, n_coefs, n, False, alpha, s, step,
                b1, b2, c1, c2, eps)


cdef inline void update(const OptimizerSpec *opt, floating *params,
                        const floating *raw, floating *state_1,
                        floating *state_2, Py_ssize_t n, Py_ssize_t n_coefs,
                        floating alpha, floating s, Py_ssize_t t) noexcept nogil:
    """One update of the flat vectors by the optimizer ``opt``.

    raw: a batch's raw gradient sums; s: its weight sum; t: the update's
    number, counting from 1 (Adam). in/out: params, and the optimizer's state
    vectors (sgd: state_1 = velocities; adam: state_1, state_2 = ms, vs).
    """
    if opt.kind == SGD:
        sgd_update(params, raw, state_1, n, n_coefs, alpha, s,
                   <floating> opt.learning_rate, <floating> opt.momentum,
                   opt.nesterov)
    elif opt.kind == ADAM:
        adam_update(params, raw, state_1, state_2, n, n_coefs, alpha, s,
                    opt.learning_rate, opt.beta_1, opt.beta_2, opt.epsilon, t)
