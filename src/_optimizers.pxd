# In-place parameter updates, one pass over the flat parameter vector.
# The arithmetic follows scikit-learn's neural_network/_stochastic_optimizers.py
# operation for operation.
#
# The updates take the raw sums the δ recursion produces, A.T @ δ for the
# weights and sum_rows(δ) for the intercepts, and form the gradient in the
# same pass (one read of each vector instead of two):
#
#     g = (raw + alpha * params) * (1 / s)   for the first n_coefs values (weights)
#     g = raw * (1 / s)                      for the rest (intercepts)
#
# -- scikit-learn divides by s; a multiplication by 1 / s differs from it by
# at most a rounding, and a division per value held the whole pass of
# SGD's update (7 % of an epoch of the deep benchmark, AVX-512).
from cython cimport floating
from libc.math cimport pow, sqrt, sqrtf

from _blas cimport dot

# Values updated per tile (update_tile): the tile's squared norm is taken first
# (the L2 term of the batch's loss), so that the update reads it from cache.
cdef enum:
    _TILE = 4096

# Optimizer codes; Python names them (_kernel.OPTIMIZER_CODES).
cdef enum Solver:
    SGD = 0
    ADAM = 1
    RMSPROP = 2
    ADAMW = 3


cdef inline dict optimizer_codes():
    """The optimizers by name (_kernel.OPTIMIZER_CODES)."""
    return {"sgd": SGD, "adam": ADAM, "rmsprop": RMSPROP, "adamw": ADAMW}


cdef inline dict optimizer_states():
    """Each optimizer's named state vectors (_kernel.OPTIMIZER_STATE; the
    keys of _kernel.Optimizer.state, which update() receives by name):
    velocities (sgd); ms, vs, the first and second moments (adam, adamw);
    vs, the average of squared gradients (rmsprop)."""
    return {"sgd": ("velocities",), "adam": ("ms", "vs"), "rmsprop": ("vs",),
            "adamw": ("ms", "vs")}


cdef struct OptimizerSpec:
    # One optimizer's kind and hyper-parameters (filled by _kernel.Optimizer).
    int kind                # SGD, ADAM, RMSPROP or ADAMW
    double learning_rate    # the epoch's rate (adam: before bias correction)
    double momentum         # sgd
    bint nesterov           # sgd
    double beta_1, beta_2   # adam, adamw
    double rho              # rmsprop: decay of the squared-gradient average
    double epsilon          # adam, rmsprop, adamw
    double weight_decay     # adamw: params *= 1 - lr weight_decay per update


cdef inline dict hyper_parameter_defaults():
    """Every hyper-parameter of OptimizerSpec but kind and learning_rate, with
    its default: the keywords _kernel.Optimizer takes (a new hyper-parameter
    is a field above and an entry here)."""
    return dict(momentum=0.9, nesterov=True, beta_1=0.9, beta_2=0.999, rho=0.9,
                epsilon=1e-8, weight_decay=0.0)


cdef struct LrRanges:
    # Learning-rate factors of ranges of the flat parameter vector (filled
    # by _kernel.Optimizer from its lr_factors): the values start <= i < stop
    # of range r (bounds[2 r], bounds[2 r + 1]) are updated as by an
    # optimizer of rate learning_rate * factors[r] -- a torch.optim
    # parameter group of that lr -- and the values outside every range at
    # learning_rate. The ranges are sorted and disjoint.
    Py_ssize_t n                # how many; 0 (or no LrRanges): every factor 1
    const Py_ssize_t *bounds    # (n, 2): start, stop of each range
    const double *factors       # (n,)


cdef struct UpdateStep:
    # The scalars of one update (number t), the same for every value
    # (update_step).
    Py_ssize_t t            # the update's number, counting from 1
    double step             # adam: -lr_t; adamw: -lr / (1 - beta_1^t)
    double root_correction  # adamw: sqrt(1 - beta_2^t)


cdef inline str hyper_parameter_error(const OptimizerSpec *opt, Py_ssize_t t):
    """Why opt's hyper-parameters (at update count t) cannot be used, or
    None."""
    if (opt.kind == ADAM or opt.kind == ADAMW) and not (
            t >= 0 and 0 <= opt.beta_1 < 1 and 0 <= opt.beta_2 < 1
            and opt.epsilon > 0):
        return (("Adam" if opt.kind == ADAM else "AdamW")
                + " needs t >= 0, beta_1 and beta_2 in [0, 1), epsilon > 0")
    if opt.kind == ADAMW and not opt.weight_decay >= 0:
        return "AdamW needs weight_decay >= 0"
    if opt.kind == RMSPROP and not (0 <= opt.rho < 1 and opt.epsilon > 0):
        return "RMSprop needs rho in [0, 1), epsilon > 0"
    return None


cdef inline void _sgd_range(floating *params, const floating *raw,
                            floating *velocities, Py_ssize_t start,
                            Py_ssize_t stop, bint penalised, floating alpha,
                            floating s, floating learning_rate,
                            floating momentum, bint nesterov) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating inv_s = 1 / s
    cdef floating g, v
    for i in range(start, stop):
        g = (raw[i] + alpha * params[i]) * inv_s if penalised else raw[i] * inv_s
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
    cdef floating inv_s = 1 / s
    cdef floating g, m, v
    for i in range(start, stop):
        g = (raw[i] + alpha * params[i]) * inv_s if penalised else raw[i] * inv_s
        m = b1 * ms[i] + c1 * g
        v = b2 * vs[i] + c2 * (g * g)
        ms[i] = m
        vs[i] = v
        if floating is float:
            params[i] += step * m / (sqrtf(v) + eps)
        else:
            params[i] += step * m / (sqrt(v) + eps)


cdef inline void _adamw_range(floating *params, const floating *raw,
                              floating *ms, floating *vs, Py_ssize_t start,
                              Py_ssize_t stop, bint penalised, floating alpha,
                              floating s, floating decay, floating step,
                              floating root_correction, floating b1_weight,
                              bint lerp_from_m, floating one_minus_weight,
                              floating b2, floating c2,
                              floating eps) noexcept nogil:
    """AdamW as torch.optim.AdamW's single-tensor path, operation for
    operation (g formed from raw with the params before the decay):
        params *= 1 - lr weight_decay                           (decay)
        m.lerp_(g, 1 - b1):  m + w (g - m) when w < 0.5, else g - (g - m)(1 - w)
        v = b2 v + (1 - b2) g g                       (mul_, addcmul_)
        params += step m / (sqrt(v) / root_correction + eps)   (addcdiv_)
    with step = -lr / (1 - b1^t), root_correction = sqrt(1 - b2^t)."""
    cdef Py_ssize_t i
    cdef floating inv_s = 1 / s
    cdef floating g, m, v, p
    for i in range(start, stop):
        g = (raw[i] + alpha * params[i]) * inv_s if penalised else raw[i] * inv_s
        p = params[i] * decay
        if lerp_from_m:
            m = ms[i] + b1_weight * (g - ms[i])
        else:
            m = g - (g - ms[i]) * one_minus_weight
        v = vs[i] * b2
        v = v + c2 * g * g
        ms[i] = m
        vs[i] = v
        if floating is float:
            params[i] = p + step * m / (sqrtf(v) / root_correction + eps)
        else:
            params[i] = p + step * m / (sqrt(v) / root_correction + eps)


cdef inline void _rmsprop_range(floating *params, const floating *raw,
                                floating *vs, Py_ssize_t start, Py_ssize_t stop,
                                bint penalised, floating alpha, floating s,
                                floating learning_rate, floating rho,
                                floating one_minus_rho,
                                floating eps) noexcept nogil:
    """RMSprop (torch.optim.RMSprop: no momentum, not centred):
    v := rho v + (1 - rho) g^2;  params -= lr g / (sqrt(v) + epsilon)."""
    cdef Py_ssize_t i
    cdef floating inv_s = 1 / s
    cdef floating g, v
    for i in range(start, stop):
        g = (raw[i] + alpha * params[i]) * inv_s if penalised else raw[i] * inv_s
        v = rho * vs[i] + one_minus_rho * (g * g)
        vs[i] = v
        if floating is float:
            params[i] -= learning_rate * g / (sqrtf(v) + eps)
        else:
            params[i] -= learning_rate * g / (sqrt(v) + eps)


cdef inline double adam_step_size(double learning_rate, double beta_1,
                                  double beta_2, Py_ssize_t t) noexcept nogil:
    """lr_t = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)."""
    # (libc pow: Cython's ** on doubles can raise, which a nogil helper cannot)
    return (learning_rate * sqrt(1 - pow(beta_2, <double> t))
            / (1 - pow(beta_1, <double> t)))


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
    cdef floating b1 = beta_1, b2 = beta_2, c1 = 1 - beta_1, c2 = 1 - beta_2
    cdef floating step = -adam_step_size(learning_rate, beta_1, beta_2, t)
    cdef floating eps = epsilon
    _adam_range(params, raw, ms, vs, 0, n_coefs, True, alpha, s, step,
                b1, b2, c1, c2, eps)
    _adam_range(params, raw, ms, vs, n_coefs, n, False, alpha, s, step,
                b1, b2, c1, c2, eps)


cdef inline void _update_range(const OptimizerSpec *opt, floating *params,
                               const floating *raw, floating *velocities,
                               floating *ms, floating *vs, Py_ssize_t start,
                               Py_ssize_t stop, bint penalised, floating alpha,
                               floating s, const UpdateStep *step) noexcept nogil:
    """params[start:stop] by opt's rule; step: update_step's scalars. The
    state vectors by name (optimizer_states(); NULL where the kind has
    none): velocities (sgd), ms and vs (adam, adamw), vs (rmsprop)."""
    cdef double weight
    if opt.kind == SGD:
        _sgd_range(params, raw, velocities, start, stop, penalised, alpha, s,
                   <floating> opt.learning_rate, <floating> opt.momentum,
                   opt.nesterov)
    elif opt.kind == ADAM:
        _adam_range(params, raw, ms, vs, start, stop, penalised,
                    alpha, s, <floating> step.step, <floating> opt.beta_1,
                    <floating> opt.beta_2,
                    <floating> (1 - opt.beta_1), <floating> (1 - opt.beta_2),
                    <floating> opt.epsilon)
    elif opt.kind == RMSPROP:
        _rmsprop_range(params, raw, vs, start, stop, penalised, alpha, s,
                       <floating> opt.learning_rate, <floating> opt.rho,
                       <floating> (1 - opt.rho), <floating> opt.epsilon)
    elif opt.kind == ADAMW:
        weight = 1 - opt.beta_1
        _adamw_range(params, raw, ms, vs, start, stop, penalised,
                     alpha, s, <floating> (1 - opt.learning_rate * opt.weight_decay),
                     <floating> step.step, <floating> step.root_correction,
                     <floating> weight, weight < 0.5, <floating> (1 - weight),
                     <floating> opt.beta_2, <floating> (1 - opt.beta_2),
                     <floating> opt.epsilon)


cdef inline UpdateStep update_step(const OptimizerSpec *opt,
                                   Py_ssize_t t) noexcept nogil:
    """The scalars of update number t that update() passes to the ranges:
    Adam's -lr_t; AdamW's -lr / (1 - beta_1^t) and sqrt(1 - beta_2^t)
    (torch's bias_correction2 ** 0.5); else 0."""
    cdef UpdateStep step
    step.t = t
    step.step = 0
    step.root_correction = 1
    if opt.kind == ADAM:
        step.step = -adam_step_size(opt.learning_rate, opt.beta_1, opt.beta_2, t)
    elif opt.kind == ADAMW:
        step.step = -(opt.learning_rate / (1 - pow(opt.beta_1, <double> t)))
        step.root_correction = sqrt(1 - pow(opt.beta_2, <double> t))
    return step


cdef inline void _update_range_by_factors(
        const OptimizerSpec *opt, const LrRanges *ranges, floating *params,
        const floating *raw, floating *velocities, floating *ms, floating *vs,
        Py_ssize_t start, Py_ssize_t stop, bint penalised, floating alpha,
        floating s, const UpdateStep *step) noexcept nogil:
    """_update_range of params[start:stop], each value at its range's rate:
    inside range r by the rule of opt with learning_rate * factors[r] and
    that rate's own update_step (Adam's lr_t, AdamW's step and decay
    lr * weight_decay, as a torch.optim parameter group of that lr);
    outside every range by opt and step themselves."""
    cdef OptimizerSpec scaled = opt[0]
    cdef UpdateStep scaled_step
    cdef Py_ssize_t r, lo, hi, done = start
    for r in range(ranges.n):
        lo = max(ranges.bounds[2 * r], done)
        hi = min(ranges.bounds[2 * r + 1], stop)
        if lo >= hi:
            continue
        if done < lo:
            _update_range(opt, params, raw, velocities, ms, vs, done, lo,
                          penalised, alpha, s, step)
        scaled.learning_rate = opt.learning_rate * ranges.factors[r]
        scaled_step = update_step(&scaled, step.t)
        _update_range(&scaled, params, raw, velocities, ms, vs, lo, hi,
                      penalised, alpha, s, &scaled_step)
        done = hi
    if done < stop:
        _update_range(opt, params, raw, velocities, ms, vs, done, stop,
                      penalised, alpha, s, step)


cdef inline Py_ssize_t n_tiles(Py_ssize_t n, Py_ssize_t n_coefs) noexcept nogil:
    """How many tiles update_tile splits n values into: the coefs in tiles of
    _TILE values, then the rest likewise."""
    return (n_coefs + _TILE - 1) // _TILE + (n - n_coefs + _TILE - 1) // _TILE


cdef inline bint tile_bounds(Py_ssize_t tile, Py_ssize_t n, Py_ssize_t n_coefs,
                             Py_ssize_t *start, Py_ssize_t *stop) noexcept nogil:
    """out: [start, stop), the values of tile number ``tile``; returns
    whether they are coefs (penalised)."""
    cdef Py_ssize_t coef_tiles = (n_coefs + _TILE - 1) // _TILE
    if tile < coef_tiles:
        start[0] = tile * _TILE
        stop[0] = min(start[0] + _TILE, n_coefs)
        return True
    start[0] = n_coefs + (tile - coef_tiles) * _TILE
    stop[0] = min(start[0] + _TILE, n)
    return False


cdef inline double update_tile(const OptimizerSpec *opt, const LrRanges *ranges,
                               floating *params, const floating *raw,
                               floating *velocities, floating *ms, floating *vs,
                               Py_ssize_t tile, Py_ssize_t n, Py_ssize_t n_coefs,
                               floating alpha, floating s,
                               const UpdateStep *step) noexcept nogil:
    """update() of tile number ``tile`` alone (0 <= tile < n_tiles(n,
    n_coefs)); returns the tile's share of the squared norm (0 past the
    coefs, or when alpha is 0). update() is these tiles in order, their
    shares summed in that order; each value's arithmetic is its own, so the
    tiles may also run in any order, on any threads."""
    cdef Py_ssize_t start, stop
    cdef double norm = 0.0
    cdef bint penalised = tile_bounds(tile, n, n_coefs, &start, &stop)
    if penalised and alpha != 0:
        # norm = params[start:stop] @ params[start:stop]
        norm = dot(stop - start, params + start)
    if ranges == NULL or ranges.n == 0:
        _update_range(opt, params, raw, velocities, ms, vs, start, stop,
                      penalised, alpha, s, step)
    else:
        _update_range_by_factors(opt, ranges, params, raw, velocities, ms, vs,
                                 start, stop, penalised, alpha, s, step)
    return norm


cdef inline double update(const OptimizerSpec *opt, const LrRanges *ranges,
                          floating *params, const floating *raw,
                          floating *velocities, floating *ms, floating *vs,
                          Py_ssize_t n, Py_ssize_t n_coefs, floating alpha,
                          floating s, Py_ssize_t t) noexcept nogil:
    """One update of the flat vectors by the optimizer ``opt``; returns the
    squared norm of the coefs before it, sum_l ||coefs[l]||^2 (the L2 term of
    the batch's loss), when alpha > 0 (else 0).

    raw: a batch's raw gradient sums; s: its weight sum; t: the update's
    number, counting from 1 (Adam, AdamW). in/out: params (n,), and the
    optimizer's state vectors (n,), by name (optimizer_states(); NULL where
    the kind has none): sgd's velocities; adam's and adamw's ms and vs;
    rmsprop's vs. ranges: the learning-rate factors (NULL, or none: every
    factor 1, each value updated as without them).

    AdamW decays every one of the n values (torch decays every parameter it
    is given: coefs, intercepts, batch-norm gamma and beta), independently
    of the L2 term alpha, which reads the params before the decay.
    """
    cdef UpdateStep step = update_step(opt, t)
    cdef double norm = 0.0
    cdef Py_ssize_t tile
    # tile by tile: each tile's squared norm is taken just before its update
    # reads it from cache (the same values, in the same order, that the tiles
    # of a batch in blocks update on threads)
    for tile in range(n_tiles(n, n_coefs)):
        norm += update_tile(opt, ranges, params, raw, velocities, ms, vs, tile,
                            n, n_coefs, alpha, s, &step)
    return norm
