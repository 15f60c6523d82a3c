# The delta recursion and the gradients, for one chunk of rows:
#
#     delta^L = w (y_pred - y)                        (_losses.pxd)
#     delta^l = (delta^(l+1) @ coefs[l+1].T) * g'(z^l)
#     coef_grads[l] = activations[l].T @ delta^l       (raw: before L2 and 1/s)
#     intercept_grads[l] = sum_rows(delta^l)
#
# Hidden layers with dropout or batch normalisation add their steps between
# the product and the next delta (_layers.pxd).
#
# A batch larger than a chunk is the sum of its chunks' raw gradients; the
# caller adds the L2 term and divides by the batch's weight sum s, here
# (scale_gradient, for L-BFGS) or inside the optimizer's pass (_optimizers.pxd).
from cython cimport floating
from libc.string cimport memset

from _activations cimport multiply_derivative
from _blas cimport dot
from _embeddings cimport embedding_backward
from _forward cimport forward
from _layers cimport batch_norm_backward
from _losses cimport loss_and_output_delta
from _network cimport (NetSpec, Rows, Chunk, row_id, layer_input, unscaled_input,
                       matmul, prefetch_rows, drops, NO_EMBEDDING)


cdef inline void sparse_transpose_times(const Rows *data, const Chunk *chunk,
                                        const floating *delta, int n_out,
                                        const floating *scale,
                                        floating *coef_grad) noexcept nogil:
    """coef_grad += (X[chunk rows] * scale).T @ delta for CSR X (in: delta
    (chunk.n_rows, n_out); scale (n_features,): a member's input scaling r,
    or NULL for none; in/out: coef_grad (n_features, n_out)): one row of
    coef_grad per non-zero."""
    cdef Py_ssize_t r, i, p, j, end
    cdef floating x
    cdef floating *grad_row
    cdef const floating *delta_row
    cdef const floating *values = <const floating *> data.X
    for r in range(chunk.n_rows):
        i = row_id(chunk, r)
        delta_row = delta + r * n_out
        end = data.indptr[i + 1]
        for p in range(data.indptr[i], end):
            prefetch_rows(data, coef_grad, n_out * sizeof(floating), p, end)
            x = values[p]
            if scale != NULL:
                x = x * scale[data.indices[p]]
            grad_row = coef_grad + <Py_ssize_t> data.indices[p] * n_out
            for j in range(n_out):
                grad_row[j] += x * delta_row[j]


cdef inline void sparse_scaling_grad(const Rows *data, const Chunk *chunk,
                                     const floating *delta, int n_out,
                                     const floating *coef,
                                     floating *r_grad) noexcept nogil:
    """r_grad[c] += sum over the chunk's non-zeros x at column c of
    x * (delta[row] @ coef[c]) -- dJ/dr of a member's input scaling of a CSR
    first layer (in: delta (chunk.n_rows, n_out), dJ/d(product); coef
    (n_features, n_out), the member's weights; in/out: r_grad (n_features,)),
    without forming delta @ coef.T."""
    cdef Py_ssize_t r, i, p, j, end
    cdef floating total
    cdef const floating *delta_row
    cdef const floating *coef_row
    cdef const floating *values = <const floating *> data.X
    for r in range(chunk.n_rows):
        i = row_id(chunk, r)
        delta_row = delta + r * n_out
        end = data.indptr[i + 1]
        for p in range(data.indptr[i], end):
            prefetch_rows(data, coef, n_out * sizeof(floating), p, end)
            coef_row = coef + <Py_ssize_t> data.indices[p] * n_out
            total = 0
            for j in range(n_out):
                total = total + delta_row[j] * coef_row[j]
            r_grad[data.indices[p]] += values[p] * total


cdef inline double chunk_loss(const NetSpec *net, const Rows *data,
                              const Chunk *chunk, const floating *params,
                              floating *work) noexcept nogil:
    """The chunk's weighted loss sum_i w_i J_i (no L2 term); with k members
    the mean over members of each member's. out: work: the chunk's
    activations, and delta^L (each member's rows' / k) in the block of
    deltas[L - 1]."""
    cdef Py_ssize_t L = net.n_layers, K = net.members, m, i
    cdef Py_ssize_t n = chunk.n_rows, n_out = net.units[L]
    cdef floating *out = work + net.activation_offset[L]
    cdef floating *delta = work + net.delta_offset[L - 1]
    cdef double total = 0.0
    cdef floating inverse_k
    forward(net, data, chunk, params, work, out)
    if K == 1:
        return loss_and_output_delta(
            &net.loss, out, <const floating *> chunk.Y,
            <const floating *> chunk.sample_weight, n, n_out, delta)
    # J = (1/k) sum_m J_m, each member's rows against the same targets
    for m in range(K):
        total += loss_and_output_delta(
            &net.loss, out + m * n * n_out, <const floating *> chunk.Y,
            <const floating *> chunk.sample_weight, n, n_out,
            delta + m * n * n_out)
    inverse_k = <floating> (1.0 / K)
    for i in range(K * n * n_out):
        delta[i] *= inverse_k
    return total / K


cdef inline void _sum_rows(const NetSpec *net, const floating *delta,
                           Py_ssize_t n, int n_out, Py_ssize_t count,
                           floating *grad) noexcept nogil:
    """grad += each member's delta.sum(axis=0) (count k: one vector per
    member; 1: one over every member's rows). delta: (k * n, n_out)."""
    cdef Py_ssize_t m, i, j
    cdef floating *g
    for m in range(net.members):
        g = grad + (m * n_out if count > 1 else 0)
        for i in range(m * n, m * n + n):
            for j in range(n_out):
                g[j] += delta[i * n_out + j]


cdef inline void _backward_scalings(const NetSpec *net, const Chunk *chunk,
                                    Py_ssize_t l, const floating *params,
                                    const floating *work, floating *delta,
                                    floating *raw,
                                    bint accumulate) noexcept nogil:
    """Layer l's output scaling s: s_grad[m] (+)= sum over member m's rows of
    delta * product, then delta := delta * s[m] (in/out: delta (k * n,
    units[l + 1]), dJ/dz on entry, dJ/d(product) on return)."""
    cdef Py_ssize_t m, i, j, n = chunk.n_rows, n_out = net.units[l + 1]
    cdef const floating *P = work + net.product_offset[l]
    cdef const floating *s
    cdef floating *grad
    for m in range(net.members):
        s = params + net.s_offset[l] + m * n_out
        grad = raw + net.s_offset[l] + m * n_out
        if not accumulate:
            memset(grad, 0, n_out * sizeof(floating))
        for i in range(m * n, m * n + n):
            for j in range(n_out):
                grad[j] += delta[i * n_out + j] * P[i * n_out + j]
                delta[i * n_out + j] *= s[j]


cdef inline void _backward_input_scaling(const NetSpec *net, const Chunk *chunk,
                                         Py_ssize_t l, const floating *params,
                                         const floating *work,
                                         floating *input_delta, floating *raw,
                                         bint accumulate) noexcept nogil:
    """Layer l's input scaling r: r_grad[m] (+)= sum over member m's rows of
    input_delta * a_in, then (l > 0, or an embedding before layer 0)
    input_delta := input_delta * r[m] (in/out: input_delta (k * n,
    units[l]), dJ/d(scaled input) on entry, dJ/da_in on return)."""
    cdef Py_ssize_t m, i, j, n = chunk.n_rows, n_in = net.units[l]
    cdef Py_ssize_t stride = n * n_in if l > 0 else 0
    cdef const floating *a_in = unscaled_input(net, chunk, work, l)
    cdef const floating *r
    cdef const floating *a_row
    cdef floating *d_row
    cdef floating *grad
    for m in range(net.members):
        r = params + net.r_offset[l] + m * n_in
        grad = raw + net.r_offset[l] + m * n_in
        if not accumulate:
            memset(grad, 0, n_in * sizeof(floating))
        for i in range(n):
            a_row = a_in + m * stride + i * n_in
            d_row = input_delta + (m * n + i) * n_in
            for j in range(n_in):
                grad[j] += d_row[j] * a_row[j]
            if l > 0 or net.embedding != NO_EMBEDDING:
                for j in range(n_in):
                    d_row[j] *= r[j]


cdef inline double chunk_gradient(const NetSpec *net, const Rows *data,
                                  const Chunk *chunk, const floating *params,
                                  floating *raw, floating *work,
                                  bint accumulate,
                                  bint first_block_zero) noexcept nogil:
    """The chunk's weighted loss sum_i w_i J_i, and its raw gradient sums.

    out: raw (n_params,): A.T @ delta per coef block, sum_rows(delta) per
    intercept block (and the scalings' and batch normalisation's sums) --
    written, or added to when ``accumulate`` (the chunks after a batch's
    first); work: the chunk's activations and deltas.

    first_block_zero (sparse input): the first coef block of raw is zero
    already -- the caller zeroes the rows a batch touched after its update
    (zero_touched_rows) -- so it is added to without being cleared: a batch
    touches few rows of a wide sparse input, and clearing them all would cost
    a pass over the layer's weights per batch.

    With k members, a shared layer's weight gradient is one product over
    every member's rows; a member's own weights, scalings and intercepts sum
    over its rows alone.
    """
    cdef Py_ssize_t l, m, j, L = net.n_layers, n = chunk.n_rows, K = net.members
    cdef int n_in, n_out
    cdef Py_ssize_t stride, coef_step
    cdef double loss
    cdef floating *delta
    cdef floating *input_delta
    cdef floating *coef_grad
    cdef floating *intercept_grad
    cdef const floating *coef
    cdef const floating *A

    loss = chunk_loss(net, data, chunk, params, work)

    for l in range(L - 1, -1, -1):
        n_in = net.units[l]
        n_out = net.units[l + 1]
        delta = work + net.delta_offset[l]
        coef = params + net.coef_offset[l]
        coef_grad = raw + net.coef_offset[l]
        intercept_grad = raw + net.intercept_offset[l]
        coef_step = n_in * n_out if net.coef_count[l] > 1 else 0
        stride = n * n_in if (l > 0 or net.r_offset[0] >= 0) else 0

        # intercept_grad (+)= delta.sum(axis=0)
        if not accumulate:
            for j in range(net.intercept_count[l] * n_out):
                intercept_grad[j] = 0
        _sum_rows(net, delta, n, n_out, net.intercept_count[l], intercept_grad)
        if net.s_offset[l] >= 0:
            _backward_scalings(net, chunk, l, params, work, delta, raw, accumulate)

        if l == 0 and net.sparse_input:
            # coef_grad (+)= (X * r[m]).T @ delta_m, from the non-zeros of X
            if not accumulate and not first_block_zero:
                memset(coef_grad, 0,
                       net.coef_count[0] * n_in * n_out * sizeof(floating))
            for m in range(K):
                sparse_transpose_times(
                    data, chunk, delta + m * n * n_out, n_out,
                    params + net.r_offset[0] + m * n_in if net.r_offset[0] >= 0
                    else NULL, coef_grad + m * coef_step)
                if net.r_offset[0] >= 0:
                    if not accumulate and m == 0:
                        memset(raw + net.r_offset[0], 0,
                               K * n_in * sizeof(floating))
                    sparse_scaling_grad(data, chunk, delta + m * n * n_out, n_out,
                                        coef + m * coef_step,
                                        raw + net.r_offset[0] + m * n_in)
            continue
        A = layer_input(net, chunk, work, l)
        if net.coef_count[l] == 1 and (K == 1 or stride > 0):
            # coef_grad (+)= A_in.T @ delta   (every member's rows in one product)
            matmul(net, c'T', c'N', n_in, n_out, <int> (K * n), A, n_in, delta,
                   n_out, <floating> (1.0 if accumulate else 0.0), coef_grad, n_out)
        else:
            # coef_grad[m] (+)= A_m.T @ delta_m  (one shared block: summed)
            for m in range(K):
                matmul(net, c'T', c'N', n_in, n_out, <int> n, A + m * stride, n_in,
                       delta + m * n * n_out, n_out,
                       <floating> (1.0 if accumulate or (coef_step == 0 and m > 0)
                                   else 0.0),
                       coef_grad + m * coef_step, n_out)

        if l == 0 and net.r_offset[0] < 0 and net.embedding == NO_EMBEDDING:
            continue
        # input_delta = delta @ coef.T (per member where the weights are)
        input_delta = (work + net.delta_offset[l - 1] if l > 0
                       else work + net.input_delta_offset)
        if net.coef_count[l] == 1:
            matmul(net, c'N', c'T', <int> (K * n), n_in, n_out, delta, n_out,
                   coef, n_out, <floating> 0.0, input_delta, n_in)
        else:
            for m in range(K):
                matmul(net, c'N', c'T', <int> n, n_in, n_out, delta + m * n * n_out,
                       n_out, coef + m * coef_step, n_out, <floating> 0.0,
                       input_delta + m * n * n_in, n_in)
        if net.r_offset[l] >= 0:
            _backward_input_scaling(net, chunk, l, params, work, input_delta, raw,
                                    accumulate)
        if l == 0:
            if net.embedding != NO_EMBEDDING:
                # the embedding's gradient, from dJ/d(its output) summed over
                # the members that share it: G = sum_m input_delta_m
                for m in range(1, K):
                    for j in range(n * n_in):
                        input_delta[j] += input_delta[m * n * n_in + j]
                embedding_backward(net, chunk, params, work, input_delta, raw,
                                   accumulate)
            continue
        # delta^(l-1) = input_delta * mask * g'(activations[l]), then back
        # through the normalisation
        delta = input_delta
        if drops(net, l - 1):
            for j in range(K * n * n_in):
                delta[j] *= work[net.mask_offset[l - 1] + j]
        multiply_derivative(net.activation, work + net.activation_offset[l],
                            work + net.z_offset[l - 1] if net.keep_z else NULL,
                            delta, K * n * n_in)
        if net.batch_norm:
            for m in range(K):
                batch_norm_backward(net, l - 1, m, n, params,
                                    work + net.x_hat_offset[l - 1] + m * n * n_in,
                                    work + net.stats_offset[l - 1] + 2 * m * n_in,
                                    delta + m * n * n_in, raw)
    return loss


cdef inline double squared_norm_of_coefs(const NetSpec *net,
                                         const floating *params) noexcept nogil:
    """sum over layers of ||coefs[l]||^2 (intercepts are not penalised)."""
    cdef Py_ssize_t l
    cdef double total = 0.0
    for l in range(net.n_layers):
        # total += coefs[l].ravel() @ coefs[l].ravel()
        total += dot(net.coef_count[l] * net.units[l] * net.units[l + 1],
                     params + net.coef_offset[l])
    return total


cdef inline void scale_gradient(const NetSpec *net, const floating *params,
                                floating *grads, double s) noexcept nogil:
    """grads := (raw + alpha * coefs) / s for the coefs, raw / s for the
    intercepts (in/out: grads (n_params,), the raw sums on entry)."""
    cdef Py_ssize_t i
    cdef floating alpha = net.alpha, s_f = <floating> s
    for i in range(net.n_coefs):
        grads[i] = (grads[i] + alpha * params[i]) / s_f
    for i in range(net.n_coefs, net.n_params):
        grads[i] /= s_f


cdef inline void zero_touched_rows(const NetSpec *net, const Rows *data,
                                   const Py_ssize_t *row_ids, Py_ssize_t first,
                                   Py_ssize_t n_rows,
                                   floating *raw) noexcept nogil:
    """Zero the rows of raw's first coef block that the CSR rows row_ids[:n_rows]
    (or first, ..., first + n_rows - 1) have non-zeros in: the block is all
    zero again after a batch (O(non-zeros * units[1]))."""
    cdef Py_ssize_t r, i, p, end, m, width = net.units[1]
    cdef floating *block
    for m in range(net.coef_count[0]):   # (each member's own weights)
        block = raw + m * net.units[0] * width
        for r in range(n_rows):
            i = row_ids[r] if row_ids != NULL else first + r
            end = data.indptr[i + 1]
            for p in range(data.indptr[i], end):
                prefetch_rows(data, block, width * sizeof(floating), p, end)
                memset(block + <Py_ssize_t> data.indices[p] * width, 0,
                       width * sizeof(floating))
