# Test-only entry points of the kernel, included at the end of _kernel.pyx
# (they stay names of the _kernel module: tests call kernel.apply_activation
# etc.): single pieces of the mathematics, for the tests against the NumPy
# reference, and hooks that move the tuning knobs (tests/kernel_paths.py).


def set_min_block_work(double work):
    """Set the work (multiply-adds) per block below which a batch's blocks
    run on one thread; returns the previous one. For measuring (the result
    is the same either way). Read by train_epoch when it is called
    (Network.for_call)."""
    global _min_block_work
    previous = _min_block_work
    _min_block_work = work
    return previous



def product(str trans, const floating[:, ::1] A, const floating[:, ::1] B,
            floating[:, ::1] C, double beta=0.0, int repeat=1, str path="micro"):
    """C := op(A) @ op(B) + beta * C in place (tests, benchmarks/products.py):
    by the micro-kernels of src/_small_gemm.h (path "micro"), whatever the
    size, or by BLAS's GEMM ("blas"). trans: "NN", "TN" or "NT"; A, B, C
    C-contiguous, shapes checked here (the kernel trusts them). repeat:
    computed that many times in one call, to time a product without the
    call's cost (beta 1 then adds repeat times)."""
    if trans not in ("NN", "TN", "NT"):
        raise ValueError(f"trans must be NN, TN or NT, got {trans!r}")
    if path not in ("micro", "blas"):
        raise ValueError(f"path must be micro or blas, got {path!r}")
    cdef int m = A.shape[1] if trans[0] == "T" else A.shape[0]
    cdef int k = A.shape[0] if trans[0] == "T" else A.shape[1]
    cdef int n = B.shape[0] if trans[1] == "T" else B.shape[1]
    cdef int k_b = B.shape[1] if trans[1] == "T" else B.shape[0]
    if k_b != k or C.shape[0] != m or C.shape[1] != n:
        raise ValueError(f"shapes {(A.shape[0], A.shape[1])}, {(B.shape[0], B.shape[1])}, "
                         f"{(C.shape[0], C.shape[1])} do not fit {trans}")
    if m == 0 or n == 0:
        return
    cdef char trans_a = ord(trans[0]), trans_b = ord(trans[1])
    cdef bint micro = path == "micro"
    cdef floating zero = 0
    cdef const floating *a = &A[0, 0] if A.shape[0] * A.shape[1] > 0 else &zero
    cdef const floating *b = &B[0, 0] if B.shape[0] * B.shape[1] > 0 else &zero
    cdef int r, lda = max(1, A.shape[1]), ldb = max(1, B.shape[1])
    with nogil:
        for r in range(repeat):
            if micro:
                small_gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb,
                           <floating> beta, &C[0, 0], <int> C.shape[1])
            else:
                gemm(trans_a, trans_b, m, n, k, <floating> 1.0, a, lda, b, ldb,
                     <floating> beta, &C[0, 0], <int> C.shape[1])


def apply_activation(str activation, floating[:, ::1] Z):
    """Z := g(Z) in place, for any activation name (tests)."""
    cdef int code = _name("activation", activation, ACTIVATION_CODES)
    if Z.shape[0] == 0 or Z.shape[1] == 0:
        return
    with nogil:
        activate(code, &Z[0, 0], Z.shape[0], Z.shape[1])


def apply_derivative(str activation, const floating[:, ::1] A,
                     floating[:, ::1] delta, Z=None):
    """delta := delta * g'(z), in place, with A = g(z) and Z = z (an array
    like A; needed by the activations that need z, ignored by the others)
    (tests)."""
    cdef int code = _name("hidden activation", activation, HIDDEN_ACTIVATIONS)
    cdef const floating[:, ::1] z_view
    cdef const floating *z = NULL
    if A.shape[0] != delta.shape[0] or A.shape[1] != delta.shape[1]:
        raise ValueError("A and delta must have the same shape")
    if needs_z(code):
        if Z is None:
            raise ValueError(f"the derivative of {activation!r} needs Z")
        z_view = Z
        if z_view.shape[0] != A.shape[0] or z_view.shape[1] != A.shape[1]:
            raise ValueError("Z and A must have the same shape")
        if A.shape[0] > 0 and A.shape[1] > 0:
            z = &z_view[0, 0]
    if A.shape[0] == 0 or A.shape[1] == 0:
        return
    with nogil:
        multiply_derivative(code, &A[0, 0], z, &delta[0, 0], A.shape[0] * A.shape[1])


def loss_and_delta(str loss, const floating[:, ::1] y_pred,
                   const floating[:, ::1] Y, const floating[::1] sample_weight,
                   floating[:, ::1] delta, double huber_delta=1.0):
    """(sum_i w_i J_i, and delta := w dJ_i/dz in place) (tests)."""
    cdef const floating *sw = NULL
    cdef LossSpec spec = _loss_spec(loss, huber_delta)
    if (Y.shape[0] != y_pred.shape[0] or Y.shape[1] != y_pred.shape[1]
            or delta.shape[0] != y_pred.shape[0] or delta.shape[1] != y_pred.shape[1]
            or sample_weight.shape[0] not in (0, y_pred.shape[0])
            or y_pred.shape[0] == 0 or y_pred.shape[1] == 0):
        raise ValueError("y_pred, Y, delta and sample_weight do not match")
    if sample_weight.shape[0] > 0:
        sw = &sample_weight[0]
    return loss_and_output_delta(&spec, &y_pred[0, 0], &Y[0, 0], sw,
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


def adamw_step(floating[::1] params, const floating[::1] grads,
               floating[::1] ms, floating[::1] vs, double learning_rate,
               double beta_1, double beta_2, double epsilon,
               double weight_decay, Py_ssize_t t):
    """One in-place AdamW update, step t >= 1, by the kernel's own update
    path (update_tile over the tiles) (tests)."""
    cdef OptimizerSpec opt
    cdef UpdateStep step
    cdef Py_ssize_t tile, n = params.shape[0]
    if t < 1:
        raise ValueError(f"AdamW's step t counts from 1, got {t}")
    if grads.shape[0] != n or ms.shape[0] != n or vs.shape[0] != n:
        raise ValueError("params, grads, ms and vs must have the same length")
    opt.kind = ADAMW
    opt.learning_rate = learning_rate
    opt.beta_1, opt.beta_2 = beta_1, beta_2
    opt.epsilon = epsilon
    opt.weight_decay = weight_decay
    error = hyper_parameter_error(&opt, t)
    if error is not None:
        raise ValueError(error)
    if n == 0:
        return
    with nogil:
        # (grads is the gradient itself: no weights penalised, s = 1)
        step = update_step(&opt, t)
        for tile in range(n_tiles(n, 0)):
            update_tile(&opt, NULL, &params[0], &grads[0], <floating *> NULL,
                        &ms[0], &vs[0], tile, n, 0, <floating> 0.0,
                        <floating> 1.0, &step)
