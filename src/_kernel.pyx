# cython: language_level=3
"""The compiled backpropagation kernel of cbp.

A network of L layers has ``units = (n_features, n_hidden_1, ..., n_outputs)``
(length L + 1). Layer l (0 <= l < L) maps activations[l] (n_rows, units[l]) to
activations[l + 1] (n_rows, units[l + 1]):

    z = activations[l] @ coefs[l] + intercepts[l]
    activations[l + 1] = g(z)       (g: hidden activation, or the output one)

All parameters live in one flat vector ``params``, laid out as scikit-learn's
``_pack`` lays them out: every coefs[l] (units[l], units[l + 1]), row-major, in
layer order, then every intercepts[l] (units[l + 1],). Gradients and optimizer
state are flat vectors of the same length and layout.

Scratch memory is one flat ``work`` vector sized by ``workspace_size`` for the
largest batch; nothing is allocated per batch. Its layout, for a batch of at
most M rows:

    activations[1..L]   M * units[l]       each, row-major
    deltas[0..L-1]      M * units[l + 1]   each, row-major
    gathered batch      M * units[0] (X), M * units[L] (Y), M (sample weight)

Every function here trusts its inputs (C-contiguous, matching dtypes, finite,
shapes consistent): cbp's Python layer validates them. Only O(1) consistency
checks of the sizes are made, once per call.
"""
from cython cimport floating
from cpython.exc cimport PyErr_CheckSignals
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

import threading

import numpy as np

from _blas cimport dot, gemm, gemm_loops, gemv_column, outer
from _activations cimport (activate, multiply_derivative, IDENTITY, LOGISTIC,
                           TANH, RELU, SOFTMAX, EXP)
from _losses cimport (loss_and_output_delta, SQUARED_ERROR, LOG_LOSS,
                      BINARY_LOG_LOSS, POISSON)
from _optimizers cimport sgd_update, adam_update, SGD, ADAM

cdef extern from *:
    """
    static int cbp_cpu_has_avx2_fma(void) {
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    #else
        return 0;
    #endif
    }
    """
    int cbp_cpu_has_avx2_fma() nogil


def cpu_has_avx2_fma():
    """Whether this CPU (and OS) run AVX2 and FMA code: _kernel_avx2 works."""
    return bool(cbp_cpu_has_avx2_fma())


# Work (multiply-adds) between two checks for Ctrl-C inside an epoch: a few
# milliseconds of compute, so that an interrupt is seen within well under a
# second while the check itself costs nothing measurable.
cdef double _SIGNAL_CHECK_WORK = 2.0 ** 25

# Matrix products of at most this many multiply-adds (m * n * k) run as direct
# loops: below it, BLAS's per-call cost (argument checks, packing) outweighs
# its faster inner kernel. Measured with benchmarks/ (see README).
cdef long long _small_gemm_work = 1024


def set_small_gemm_work(long long work):
    """Set the direct-loop threshold (m * n * k) of the matrix products;
    returns the previous one. For measuring; 0 sends every product to BLAS."""
    global _small_gemm_work
    previous = _small_gemm_work
    _small_gemm_work = work
    return previous


cdef inline void _matmul(char trans_a, char trans_b, int m, int n, int k,
                         const floating *A, int lda, const floating *B, int ldb,
                         floating beta, floating *C, int ldc) noexcept nogil:
    """C := op(A) @ op(B) + beta * C (row-major): loops when small, else BLAS
    (GEMV or GER when one dimension is 1: GEMM would pack its operands)."""
    if <long long> m * n * k <= _small_gemm_work:
        gemm_loops(trans_a, trans_b, m, n, k, <floating> 1.0, A, lda, B, ldb,
                   beta, C, ldc)
    elif m == 1 and trans_a == c'N':
        # one row: C.T = op(B).T @ A.T, a column
        gemv_column(c'T' if trans_b == c'N' else c'N', c'T', n, k, <floating> 1.0,
                    B, ldb, A, 1, beta, C, 1)
    elif n == 1:
        gemv_column(trans_a, trans_b, m, k, <floating> 1.0, A, lda, B, ldb, beta,
                    C, ldc)
    elif k == 1:
        outer(trans_a, trans_b, m, n, <floating> 1.0, A, lda, B, ldb, beta, C, ldc)
    else:
        gemm(trans_a, trans_b, m, n, k, <floating> 1.0, A, lda, B, ldb, beta,
             C, ldc)

ACTIVATION_CODES = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH,
                    "relu": RELU, "softmax": SOFTMAX, "exp": EXP}
LOSS_CODES = {"squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS,
              "binary_log_loss": BINARY_LOG_LOSS, "poisson": POISSON}
SOLVER_CODES = {"sgd": SGD, "adam": ADAM}

# Workspace parts: forward pass only; forward and backward; and the gathered
# mini-batch too.
FORWARD, BACKWARD, EPOCH = 0, 1, 2


cdef struct Network:
    Py_ssize_t n_layers             # L, the number of weight matrices
    const Py_ssize_t *units         # (L + 1,)
    int activation                  # hidden activation code
    int output                      # output activation code
    int loss                        # loss code
    double alpha                    # L2 penalty
    Py_ssize_t n_params
    Py_ssize_t max_rows             # M, the rows the workspace holds
    Py_ssize_t *coef_offset         # (L,)  into params
    Py_ssize_t *intercept_offset    # (L,)  into params
    Py_ssize_t *activation_offset   # (L + 1,) into work; [0] unused
    Py_ssize_t *delta_offset        # (L,)  into work
    Py_ssize_t x_offset, y_offset, sw_offset  # gathered batch, into work
    Py_ssize_t work_size[3]         # FORWARD, BACKWARD, EPOCH


cdef int _network_init(Network *net, const Py_ssize_t[::1] units,
                       Py_ssize_t max_rows, int activation, int output,
                       int loss, double alpha) except -1:
    """Fill ``net``'s offsets; the caller must call _network_free."""
    cdef Py_ssize_t L = units.shape[0] - 1, l, position
    if L < 1:
        raise ValueError("a network needs at least one layer (len(units) >= 2)")
    for l in range(L + 1):
        if units[l] < 1:
            raise ValueError(f"units[{l}] = {units[l]}: every layer needs >= 1 unit")
    net.n_layers = L
    net.units = &units[0]
    net.activation = activation
    net.output = output
    net.loss = loss
    net.alpha = alpha
    net.max_rows = max_rows
    net.coef_offset = <Py_ssize_t *> malloc((4 * L + 1) * sizeof(Py_ssize_t))
    if net.coef_offset == NULL:
        raise MemoryError()
    net.intercept_offset = net.coef_offset + L
    net.delta_offset = net.coef_offset + 2 * L
    net.activation_offset = net.coef_offset + 3 * L

    position = 0
    for l in range(L):
        net.coef_offset[l] = position
        position += units[l] * units[l + 1]
    for l in range(L):
        net.intercept_offset[l] = position
        position += units[l + 1]
    net.n_params = position

    position = 0
    net.activation_offset[0] = -1
    for l in range(1, L + 1):
        net.activation_offset[l] = position
        position += max_rows * units[l]
    net.work_size[FORWARD] = position
    for l in range(L):
        net.delta_offset[l] = position
        position += max_rows * units[l + 1]
    net.work_size[BACKWARD] = position
    net.x_offset = position
    position += max_rows * units[0]
    net.y_offset = position
    position += max_rows * units[L]
    net.sw_offset = position
    position += max_rows
    net.work_size[EPOCH] = position
    return 0


cdef void _network_free(Network *net) noexcept:
    free(net.coef_offset)
    net.coef_offset = NULL


cdef inline const floating *_layer_input(const Network *net, const floating *X,
                                         const floating *work, Py_ssize_t l) noexcept nogil:
    """activations[l]: the input X for l == 0, else its block of work."""
    if l == 0:
        return X
    return work + net.activation_offset[l]


# --------------------------------------------------------------------------
# Forward pass
# --------------------------------------------------------------------------

cdef void _forward(const Network *net, const floating *X, Py_ssize_t n_rows,
                   const floating *params, floating *work,
                   floating *output) noexcept nogil:
    """activations[1..L] for the n_rows rows of X (n_rows, units[0]).

    Hidden activations are written to work; the output layer's to ``output``
    (n_rows, units[L]), which may itself be the block of work for activations[L].
    """
    cdef Py_ssize_t l, i, L = net.n_layers
    cdef int n_in, n_out
    cdef const floating *A_in
    cdef floating *Z
    cdef const floating *coef
    cdef const floating *intercept
    for l in range(L):
        n_in = net.units[l]
        n_out = net.units[l + 1]
        A_in = _layer_input(net, X, work, l)
        Z = output if l == L - 1 else work + net.activation_offset[l + 1]
        coef = params + net.coef_offset[l]
        intercept = params + net.intercept_offset[l]
        # Z = A_in @ coef + intercept   (intercept broadcast into Z, then beta=1)
        for i in range(n_rows):
            memcpy(Z + i * n_out, intercept, n_out * sizeof(floating))
        _matmul(c'N', c'N', <int> n_rows, n_out, n_in, A_in, n_in,
                coef, n_out, <floating> 1.0, Z, n_out)
        activate(net.output if l == L - 1 else net.activation, Z, n_rows, n_out)


# --------------------------------------------------------------------------
# Loss, delta recursion, gradients
# --------------------------------------------------------------------------

cdef inline double _sum(const floating *x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef double total = 0.0
    for i in range(n):
        total += x[i]
    return total


cdef double _squared_norm_of_coefs(const Network *net,
                                   const floating *params) noexcept nogil:
    """sum over layers of ||coefs[l]||^2 (intercepts are not penalised)."""
    cdef Py_ssize_t l
    cdef double total = 0.0
    for l in range(net.n_layers):
        # total += coefs[l].ravel() @ coefs[l].ravel()
        total += dot(net.units[l] * net.units[l + 1], params + net.coef_offset[l])
    return total


cdef double _backprop(const Network *net, const floating *X, const floating *Y,
                      const floating *sample_weight, Py_ssize_t n_rows,
                      double s, const floating *params, floating *grads,
                      floating *work, bint scaled) noexcept nogil:
    """Loss of one batch and the gradient of every parameter.

    X (n_rows, units[0]), Y (n_rows, units[L]), sample_weight (n_rows,) or NULL.
    out: grads (n_params,), and in work the activations and deltas of every
    layer. Returns the batch loss

        J = sum_i w_i J_i / s + 0.5 alpha sum_l ||coefs[l]||^2 / s,

    s = sum_i w_i (n_rows without weights; the caller's), with params before any
    update; grads = dJ/dparams:

        delta^L = w (y_pred - y)
        delta^l = (delta^(l+1) @ coefs[l+1].T) * g'(z^l)
        coef_grads[l] = (activations[l].T @ delta^l + alpha coefs[l]) / s
        intercept_grads[l] = sum_rows(delta^l) / s

    With scaled false, grads holds the raw sums activations[l].T @ delta^l
    and sum_rows(delta^l): the optimizers form the gradient from them in
    their own pass over the vector (src/_optimizers.pxd).
    """
    cdef Py_ssize_t l, i, j, L = net.n_layers
    cdef int n_in, n_out
    cdef double loss
    cdef floating alpha = net.alpha, s_f
    cdef const floating *A_in
    cdef floating *delta
    cdef floating *coef_grad
    cdef floating *intercept_grad
    cdef const floating *coef

    _forward(net, X, n_rows, params, work, work + net.activation_offset[L])

    s_f = <floating> s

    loss = loss_and_output_delta(
        net.loss, work + net.activation_offset[L], Y, sample_weight, n_rows,
        net.units[L], work + net.delta_offset[L - 1]) / s
    loss += 0.5 * net.alpha * _squared_norm_of_coefs(net, params) / s

    for l in range(L - 1, -1, -1):
        n_in = net.units[l]
        n_out = net.units[l + 1]
        A_in = _layer_input(net, X, work, l)
        delta = work + net.delta_offset[l]
        coef = params + net.coef_offset[l]
        coef_grad = grads + net.coef_offset[l]
        intercept_grad = grads + net.intercept_offset[l]

        # coef_grad = A_in.T @ delta
        _matmul(c'T', c'N', n_in, n_out, <int> n_rows, A_in, n_in,
                delta, n_out, <floating> 0.0, coef_grad, n_out)
        # intercept_grad = delta.sum(axis=0)
        for j in range(n_out):
            intercept_grad[j] = 0
        for i in range(n_rows):
            for j in range(n_out):
                intercept_grad[j] += delta[i * n_out + j]
        if scaled:
            # coef_grad = (coef_grad + alpha * coef) / s; intercept_grad /= s
            for i in range(<Py_ssize_t> n_in * n_out):
                coef_grad[i] = (coef_grad[i] + alpha * coef[i]) / s_f
            for j in range(n_out):
                intercept_grad[j] /= s_f

        if l > 0:
            # delta^(l-1) = (delta @ coef.T) * g'(activations[l])
            _matmul(c'N', c'T', <int> n_rows, n_in, n_out, delta,
                    n_out, coef, n_out, <floating> 0.0,
                    work + net.delta_offset[l - 1], n_in)
            multiply_derivative(net.activation, A_in,
                                work + net.delta_offset[l - 1], n_rows * n_in)
    return loss


# --------------------------------------------------------------------------
# Python entry points
# --------------------------------------------------------------------------

def workspace_size(const Py_ssize_t[::1] units, Py_ssize_t max_rows, int part):
    """Length of the ``work`` vector for batches of at most max_rows rows.

    part: FORWARD (prediction), BACKWARD (loss and gradient) or EPOCH
    (training epochs, which also gather mini-batches).
    """
    cdef Network net
    if part not in (FORWARD, BACKWARD, EPOCH):
        raise ValueError(f"part must be FORWARD, BACKWARD or EPOCH, got {part}")
    _network_init(&net, units, max_rows, 0, 0, 0, 0.0)
    try:
        return net.work_size[part]
    finally:
        _network_free(&net)


def n_params(const Py_ssize_t[::1] units):
    """Length of the flat parameter vector of a network with these units."""
    cdef Network net
    _network_init(&net, units, 1, 0, 0, 0, 0.0)
    try:
        return net.n_params
    finally:
        _network_free(&net)


cdef int _check_codes(int activation, int output, int loss, int solver) except -1:
    """Unknown codes would send the kernel down no branch, or the wrong one."""
    if activation not in (IDENTITY, LOGISTIC, TANH, RELU):
        raise ValueError(f"unknown hidden activation code {activation}")
    if output not in (IDENTITY, LOGISTIC, SOFTMAX, EXP):
        raise ValueError(f"unknown output activation code {output}")
    if loss not in (SQUARED_ERROR, LOG_LOSS, BINARY_LOG_LOSS, POISSON):
        raise ValueError(f"unknown loss code {loss}")
    if solver not in (SGD, ADAM):
        raise ValueError(f"unknown solver code {solver}")
    return 0


cdef int _check_sizes(const Network *net, Py_ssize_t n_params,
                      Py_ssize_t n_work, int part, str name="params") except -1:
    if n_params != net.n_params:
        raise ValueError(f"{name} has {n_params} values, the network "
                         f"needs {net.n_params}")
    if n_work < net.work_size[part]:
        raise ValueError(f"work has {n_work} values, needs {net.work_size[part]}")
    return 0


def forward(const floating[:, ::1] X, const Py_ssize_t[::1] units,
            int activation, int output, const floating[::1] params,
            floating[:, ::1] out, floating[::1] work, Py_ssize_t chunk_rows):
    """Prediction: out = the network's output for X, chunk_rows rows at a time.

    X: (n, units[0]); out: (n, units[-1]), written; work: at least
    workspace_size(units, chunk_rows, FORWARD) values.
    """
    cdef Network net
    cdef Py_ssize_t n = X.shape[0], start, rows
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    _check_codes(activation, output, SQUARED_ERROR, SGD)
    _network_init(&net, units, chunk_rows, activation, output, 0, 0.0)
    try:
        _check_sizes(&net, params.shape[0], work.shape[0], FORWARD)
        if (X.shape[1] != units[0] or out.shape[0] != n
                or out.shape[1] != units[net.n_layers]):
            raise ValueError("X, out and units do not match")
        if n == 0:
            return
        with nogil:
            start = 0
            while start < n:
                rows = min(chunk_rows, n - start)
                _forward(&net, &X[start, 0], rows, &params[0], &work[0],
                         &out[start, 0])
                start += rows
    finally:
        _network_free(&net)


def loss_grad(const floating[:, ::1] X, const floating[:, ::1] Y,
              const floating[::1] sample_weight, const Py_ssize_t[::1] units,
              int activation, int output, int loss, double alpha,
              const floating[::1] params, floating[::1] grads,
              floating[::1] work):
    """Full-batch loss and gradient (what L-BFGS needs).

    X: (n, units[0]); Y: (n, units[-1]); sample_weight: (n,), or (0,) for
    unit weights. out: grads (n_params,); work (at least
    workspace_size(units, n, BACKWARD)) holds every layer's activations and
    deltas afterwards. Returns the loss J (see _backprop).
    """
    cdef Network net
    cdef double J
    cdef Py_ssize_t n = X.shape[0]
    cdef const floating *sw = NULL
    _check_codes(activation, output, loss, SGD)
    _network_init(&net, units, n, activation, output, loss, alpha)
    try:
        _check_sizes(&net, params.shape[0], work.shape[0], BACKWARD)
        _check_sizes(&net, grads.shape[0], work.shape[0], BACKWARD, "grads")
        if (n == 0 or X.shape[1] != units[0] or Y.shape[0] != n
                or Y.shape[1] != units[net.n_layers]
                or sample_weight.shape[0] not in (0, n)):
            raise ValueError("X, Y, sample_weight and units do not match")
        if sample_weight.shape[0] > 0:
            sw = &sample_weight[0]
        with nogil:
            J = _backprop(&net, &X[0, 0], &Y[0, 0], sw, n,
                          _sum(sw, n) if sw != NULL else n, &params[0],
                          &grads[0], &work[0], True)
        return J
    finally:
        _network_free(&net)


def train_epoch(const floating[:, ::1] X, const floating[:, ::1] Y,
                const floating[::1] sample_weight,
                const Py_ssize_t[::1] order, Py_ssize_t batch_size,
                const Py_ssize_t[::1] units, int activation, int output,
                int loss, double alpha,
                floating[::1] params, floating[::1] grads, floating[::1] work,
                int solver, double learning_rate, double momentum,
                bint nesterov, double beta_1, double beta_2, double epsilon,
                Py_ssize_t t, floating[::1] state_1, floating[::1] state_2,
                const unsigned char[:, ::1] Y_indicator=None):
    """One epoch of mini-batch training, updating params in place.

    The samples are taken in ``order`` (n,) (or 0, 1, ..., n - 1 when order
    is empty), batch_size at a time, the last batch possibly shorter. For each
    batch: gather it, forward, loss, deltas, gradients, then update:

      solver SGD:  state_1 = velocities (momentum, nesterov, learning_rate)
      solver ADAM: state_1, state_2 = first and second moments; t counts the
                   updates made before this call (beta_1, beta_2, epsilon)

    X: (n, units[0]); Y: (n, units[-1]); sample_weight: (n,) or (0,).
    Y_indicator: 0/1 targets (n, units[-1]) as bytes, in place of Y (which is
    then ignored): a classifier's one-hot targets in a quarter (float32) or an
    eighth (float64) of the memory; each batch's rows are converted as they
    are gathered.
    in/out: params, state_1, state_2 (n_params,). grads (n_params,): scratch
    (the last batch's raw sums; see _backprop).
    work: workspace_size(units, batch_size, EPOCH) values.

    Ctrl-C is checked every few milliseconds of compute (when called from the
    main thread, where Python runs signal handlers); it raises
    KeyboardInterrupt with params as they stand after the last whole batch.

    Returns (sum over batches of batch loss * batch rows, t after the epoch).
    """
    cdef Network net
    cdef Py_ssize_t n = X.shape[0], n_features = X.shape[1]
    cdef Py_ssize_t n_outputs = Y.shape[1], start, rows, r, i
    cdef double total = 0.0, batch_loss, work_since_check = 0.0
    cdef bint shuffled = order.shape[0] > 0, weighted = sample_weight.shape[0] > 0
    cdef bint indicator = Y_indicator is not None
    cdef Py_ssize_t j, n_coefs
    cdef double s
    cdef floating alpha_f = alpha
    cdef const floating *Xb
    cdef const floating *Yb
    cdef const floating *swb
    cdef floating *x_buffer
    cdef floating *y_buffer
    cdef floating *sw_buffer
    cdef floating lr = learning_rate, mom = momentum
    cdef double work_per_row
    # Signal handlers run in the main thread only: other threads never need
    # the GIL back inside an epoch (two models train in two threads at once).
    cdef bint check_signals = threading.current_thread() is threading.main_thread()

    _check_codes(activation, output, loss, solver)
    if not (1 <= batch_size <= n):
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    if solver == ADAM and not (t >= 0 and 0 <= beta_1 < 1 and 0 <= beta_2 < 1
                               and epsilon > 0):
        raise ValueError("Adam needs t >= 0, beta_1 and beta_2 in [0, 1), epsilon > 0")
    _network_init(&net, units, batch_size, activation, output, loss, alpha)
    try:
        _check_sizes(&net, params.shape[0], work.shape[0], EPOCH)
        if (grads.shape[0] != net.n_params or state_1.shape[0] != net.n_params
                or (solver != SGD and state_2.shape[0] != net.n_params)):
            raise ValueError("grads and optimizer state must have n_params values")
        if indicator:
            n_outputs = Y_indicator.shape[1]
        if (n_features != units[0]
                or (Y_indicator.shape[0] if indicator else Y.shape[0]) != n
                or n_outputs != units[net.n_layers]
                or sample_weight.shape[0] not in (0, n)
                or order.shape[0] not in (0, n)):
            raise ValueError("X, Y, sample_weight, order and units do not match")
        n_coefs = net.intercept_offset[0]  # the weights come first in params
        x_buffer = &work[0] + net.x_offset
        y_buffer = &work[0] + net.y_offset
        sw_buffer = &work[0] + net.sw_offset
        work_per_row = 3.0 * net.n_params
        with nogil:
            start = 0
            while start < n:
                rows = min(batch_size, n - start)
                if shuffled:
                    # gather X[order[start:start + rows]] (and Y, weights)
                    for r in range(rows):
                        i = order[start + r]
                        memcpy(x_buffer + r * n_features, &X[i, 0],
                               n_features * sizeof(floating))
                        if not indicator:
                            memcpy(y_buffer + r * n_outputs, &Y[i, 0],
                                   n_outputs * sizeof(floating))
                        if weighted:
                            sw_buffer[r] = sample_weight[i]
                    Xb, Yb, swb = x_buffer, y_buffer, sw_buffer
                else:
                    Xb = &X[start, 0]
                    Yb = y_buffer if indicator else &Y[start, 0]
                    swb = &sample_weight[start] if weighted else NULL
                if indicator:
                    # the batch's target rows, bytes to floating
                    for r in range(rows):
                        i = order[start + r] if shuffled else start + r
                        for j in range(n_outputs):
                            y_buffer[r * n_outputs + j] = Y_indicator[i, j]
                if not weighted:
                    swb = NULL

                s = _sum(swb, rows) if swb != NULL else rows
                if s > 0:
                    # (a batch whose weights are all zero carries nothing to
                    # learn from: it is skipped rather than divided by zero)
                    batch_loss = _backprop(&net, Xb, Yb, swb, rows, s,
                                           &params[0], &grads[0], &work[0], False)
                    total += batch_loss * rows

                    # the update forms the gradient from grads' raw sums
                    if solver == SGD:
                        sgd_update(&params[0], &grads[0], &state_1[0],
                                   net.n_params, n_coefs, alpha_f, <floating> s,
                                   lr, mom, nesterov)
                    else:
                        t += 1
                        adam_update(&params[0], &grads[0], &state_1[0],
                                    &state_2[0], net.n_params, n_coefs, alpha_f,
                                    <floating> s, learning_rate, beta_1, beta_2,
                                    epsilon, t)

                work_since_check += work_per_row * rows
                if check_signals and work_since_check >= _SIGNAL_CHECK_WORK:
                    work_since_check = 0.0
                    with gil:
                        PyErr_CheckSignals()
                start += rows
        return total, t
    finally:
        _network_free(&net)


# --------------------------------------------------------------------------
# Single pieces, for the tests against the NumPy reference
# --------------------------------------------------------------------------

def apply_activation(int activation, floating[:, ::1] Z):
    """Z := g(Z) in place, for any activation code (tests)."""
    if activation not in (IDENTITY, LOGISTIC, TANH, RELU, SOFTMAX, EXP):
        raise ValueError(f"unknown activation code {activation}")
    if Z.shape[0] == 0 or Z.shape[1] == 0:
        return
    with nogil:
        activate(activation, &Z[0, 0], Z.shape[0], Z.shape[1])


def apply_derivative(int activation, const floating[:, ::1] A,
                     floating[:, ::1] delta):
    """delta := delta * g'(z), with A = g(z), in place (tests)."""
    _check_codes(activation, IDENTITY, SQUARED_ERROR, SGD)
    if A.shape[0] != delta.shape[0] or A.shape[1] != delta.shape[1]:
        raise ValueError("A and delta must have the same shape")
    if A.shape[0] == 0 or A.shape[1] == 0:
        return
    with nogil:
        multiply_derivative(activation, &A[0, 0], &delta[0, 0],
                            A.shape[0] * A.shape[1])


def loss_and_delta(int loss, const floating[:, ::1] y_pred,
                   const floating[:, ::1] Y, const floating[::1] sample_weight,
                   floating[:, ::1] delta):
    """(sum_i w_i J_i, and delta := w (y_pred - Y) in place) (tests)."""
    cdef const floating *sw = NULL
    _check_codes(IDENTITY, IDENTITY, loss, SGD)
    if (Y.shape[0] != y_pred.shape[0] or Y.shape[1] != y_pred.shape[1]
            or delta.shape[0] != y_pred.shape[0] or delta.shape[1] != y_pred.shape[1]
            or sample_weight.shape[0] not in (0, y_pred.shape[0])
            or y_pred.shape[0] == 0 or y_pred.shape[1] == 0):
        raise ValueError("y_pred, Y, delta and sample_weight do not match")
    if sample_weight.shape[0] > 0:
        sw = &sample_weight[0]
    return loss_and_output_delta(loss, &y_pred[0, 0], &Y[0, 0], sw,
                                 y_pred.shape[0], y_pred.shape[1], &delta[0, 0])


def sgd_step(floating[::1] params, const floating[::1] grads,
             floating[::1] velocities, double learning_rate, double momentum,
             bint nesterov):
    """One in-place SGD update of the flat vectors (tests)."""
    if grads.shape[0] != params.shape[0] or velocities.shape[0] != params.shape[0]:
        raise ValueError("params, grads and velocities must have the same length")
    if params.shape[0] == 0:
        return
    with nogil:
        # (grads is the gradient itself: no weights penalised, s = 1)
        sgd_update(&params[0], &grads[0], &velocities[0], params.shape[0], 0,
                   <floating> 0.0, <floating> 1.0, <floating> learning_rate,
                   <floating> momentum, nesterov)


def adam_step(floating[::1] params, const floating[::1] grads,
              floating[::1] ms, floating[::1] vs, double learning_rate,
              double beta_1, double beta_2, double epsilon, Py_ssize_t t):
    """One in-place Adam update, step t >= 1 (tests)."""
    if t < 1:
        raise ValueError(f"Adam's step t counts from 1, got {t}")
    if (grads.shape[0] != params.shape[0] or ms.shape[0] != params.shape[0]
            or vs.shape[0] != params.shape[0]):
        raise ValueError("params, grads, ms and vs must have the same length")
    if params.shape[0] == 0:
        return
    with nogil:
        # (grads is the gradient itself: no weights penalised, s = 1)
        adam_update(&params[0], &grads[0], &ms[0], &vs[0], params.shape[0], 0,
                    <floating> 0.0, <floating> 1.0, learning_rate, beta_1,
                    beta_2, epsilon, t)


def workspace_views(floating[::1] work, const Py_ssize_t[::1] units,
                    Py_ssize_t max_rows, Py_ssize_t n_rows):
    """(activations[1..L], deltas[0..L-1]) as NumPy views of work (tests)."""
    cdef Network net
    _network_init(&net, units, max_rows, 0, 0, 0, 0.0)
    try:
        base = np.asarray(work)
        activations = [
            base[net.activation_offset[l]:net.activation_offset[l] + n_rows * units[l]]
            .reshape(n_rows, units[l]) for l in range(1, net.n_layers + 1)]
        deltas = [
            base[net.delta_offset[l]:net.delta_offset[l] + n_rows * units[l + 1]]
            .reshape(n_rows, units[l + 1]) for l in range(net.n_layers)]
        return activations, deltas
    finally:
        _network_free(&net)
