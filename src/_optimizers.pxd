# In-place parameter updates, one loop over the flat parameter vector.
# The arithmetic follows scikit-learn's neural_network/_stochastic_optimizers.py
# operation for operation.
from cython cimport floating
from libc.math cimport pow, sqrt, sqrtf

# Solver codes, shared with cbp/_codes.py.
cdef enum Solver:
    SGD = 0
    ADAM = 1


cdef inline void sgd_update(floating *params, const floating *grads,
                            floating *velocities, Py_ssize_t n,
                            floating learning_rate, floating momentum,
                            bint nesterov) noexcept nogil:
    """SGD with (Nesterov) momentum.

    v := momentum * v - lr * g
    params += momentum * v - lr * g   (Nesterov)   or   params += v
    params, grads, velocities: (n,), in/out except grads.
    """
    cdef Py_ssize_t i
    cdef floating v
    if nesterov:
        for i in range(n):
            v = momentum * velocities[i] - learning_rate * grads[i]
            velocities[i] = v
            params[i] += momentum * v - learning_rate * grads[i]
    else:
        for i in range(n):
            v = momentum * velocities[i] - learning_rate * grads[i]
            velocities[i] = v
            params[i] += v


cdef inline void adam_update(floating *params, const floating *grads,
                             floating *ms, floating *vs, Py_ssize_t n,
                             double learning_rate, double beta_1, double beta_2,
                             double epsilon, Py_ssize_t t) noexcept nogil:
    """Adam, step t (t >= 1 counts this update).

    m := beta_1 m + (1 - beta_1) g;  v := beta_2 v + (1 - beta_2) g^2
    lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
    params -= lr_t m / (sqrt(v) + epsilon)
    epsilon is added before the bias correction (scikit-learn's placement).
    """
    cdef Py_ssize_t i
    # (libc pow: Cython's ** on doubles can raise, which a nogil helper cannot)
    cdef double lr_t = (learning_rate * sqrt(1 - pow(beta_2, <double> t))
                        / (1 - pow(beta_1, <double> t)))
    cdef floating b1 = beta_1, b2 = beta_2, c1 = 1 - beta_1, c2 = 1 - beta_2
    cdef floating step = -lr_t, eps = epsilon
    cdef floating m, v
    for i in range(n):
        m = b1 * ms[i] + c1 * grads[i]
        v = b2 * vs[i] + c2 * (grads[i] * grads[i])
        ms[i] = m
        vs[i] = v
        if floating is float:
            params[i] += step * m / (sqrtf(v) + eps)
        else:
            params[i] += step * m / (sqrt(v) + eps)
