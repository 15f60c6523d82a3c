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
from _forward cimport forward
from _layers cimport batch_norm_backward
from _losses cimport loss_and_output_delta
from _network cimport (NetSpec, Rows, Chunk, row_id, layer_input, matmul,
                       prefetch_rows, drops)


cdef inline void sparse_transpose_times(const Rows *data, const Chunk *chunk,
                                        const floating *delta, int n_out,
                                        floating *coef_grad) noexcept nogil:
    """coef_grad += X[chunk rows].T @ delta for CSR X (in: delta
    (chunk.n_rows, n_out); in/out: coef_grad (n_features, n_out)): one row of
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
            grad_row = coef_grad + <Py_ssize_t> data.indices[p] * n_out
            for j in range(n_out):
                grad_row[j] += x * delta_row[j]


cdef inline double chunk_loss(const NetSpec *net, const Rows *data,
                              const Chunk *chunk, const floating *params,
                              floating *work) noexcept nogil:
    """The chunk's weighted loss sum_i w_i J_i (no L2 term). out: work: the
    chunk's activations, and delta^L in the block of deltas[L - 1]."""
    cdef Py_ssize_t L = net.n_layers
    forward(net, data, chunk, params, work, work + net.activation_offset[L])
    return loss_and_output_delta(
        &net.loss, work + net.activation_offset[L], <const floating *> chunk.Y,
        <const floating *> chunk.sample_weight, chunk.n_rows, net.units[L],
        work + net.delta_offset[L - 1])


cdef inline double chunk_gradient(const NetSpec *net, const Rows *data,
                                  const Chunk *chunk, const floating *params,
                                  floating *raw, floating *work,
                                  bint accumulate,
                                  bint first_block_zero) noexcept nogil:
    """The chunk's weighted loss sum_i w_i J_i, and its raw gradient sums.

    out: raw (n_params,): A.T @ delta per coef block, sum_rows(delta) per
    intercept block -- written, or added to when ``accumulate`` (the chunks
    after a batch's first); work: the chunk's activations and deltas.

    first_block_zero (sparse input): the first coef block of raw is zero
    already -- the caller zeroes the rows a batch touched after its update
    (zero_touched_rows) -- so it is added to without being cleared: a batch
    touches few rows of a wide sparse input, and clearing them all would cost
    a pass over the layer's weights per batch.
    """
    cdef Py_ssize_t l, i, j, L = net.n_layers, n_rows = chunk.n_rows
    cdef int n_in, n_out
    cdef double loss
    cdef floating *delta
    cdef floating *coef_grad
    cdef floating *intercept_grad
    cdef const floating *coef

    loss = chunk_loss(net, data, chunk, params, work)

    for l in range(L - 1, -1, -1):
        n_in = net.units[l]
        n_out = net.units[l + 1]
        delta = work + net.delta_offset[l]
        coef = params + net.coef_offset[l]
        coef_grad = raw + net.coef_offset[l]
        intercept_grad = raw + net.intercept_offset[l]

        if l == 0 and net.sparse_input:
            # coef_grad (+)= X.T @ delta, from the non-zeros of X
            if not accumulate and not first_block_zero:
                memset(coef_grad, 0, <Py_ssize_t> n_in * n_out * sizeof(floating))
            sparse_transpose_times(data, chunk, delta, n_out, coef_grad)
        else:
            # coef_grad (+)= A_in.T @ delta
            matmul(net, c'T', c'N', n_in, n_out, <int> n_rows,
                   layer_input(net, chunk, work, l), n_in, delta, n_out,
                   <floating> (1.0 if accumulate else 0.0), coef_grad, n_out)
        # intercept_grad (+)= delta.sum(axis=0)
        if not accumulate:
            for j in range(n_out):
                intercept_grad[j] = 0
        for i in range(n_rows):
            for j in range(n_out):
                intercept_grad[j] += delta[i * n_out + j]

        if l > 0:
            # delta^(l-1) = (delta @ coef.T) * mask * g'(activations[l]),
            # then back through the normalisation
            delta = work + net.delta_offset[l - 1]
            matmul(net, c'N', c'T', <int> n_rows, n_in, n_out,
                   work + net.delta_offset[l], n_out, coef, n_out, <floating> 0.0,
                   delta, n_in)
            if drops(net, l - 1):
                for i in range(n_rows * n_in):
                    delta[i] *= work[net.mask_offset[l - 1] + i]
            multiply_derivative(net.activation, work + net.activation_offset[l],
                                work + net.z_offset[l - 1] if net.keep_z else NULL,
                                delta, n_rows * n_in)
            if net.batch_norm:
                batch_norm_backward(net, l - 1, n_rows, params,
                                    work + net.x_hat_offset[l - 1],
                                    work + net.stats_offset[l - 1], delta, raw)
    return loss


cdef inline double squared_norm_of_coefs(const NetSpec *net,
                                         const floating *params) noexcept nogil:
    """sum over layers of ||coefs[l]||^2 (intercepts are not penalised)."""
    cdef Py_ssize_t l
    cdef double total = 0.0
    for l in range(net.n_layers):
        # total += coefs[l].ravel() @ coefs[l].ravel()
        total += dot(net.units[l] * net.units[l + 1], params + net.coef_offset[l])
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
    cdef Py_ssize_t r, i, p, end, width = net.units[1]
    for r in range(n_rows):
        i = row_ids[r] if row_ids != NULL else first + r
        end = data.indptr[i + 1]
        for p in range(data.indptr[i], end):
            prefetch_rows(data, raw, width * sizeof(floating), p, end)
            memset(raw + <Py_ssize_t> data.indices[p] * width, 0,
                   width * sizeof(floating))
