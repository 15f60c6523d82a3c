# The forward pass: z^l = a^(l-1) @ coefs[l] + intercepts[l], a^l = g(z^l),
# for one chunk of rows. The first layer reads dense rows through a matrix
# product, or CSR rows non-zero by non-zero (sparse x dense). Hidden layers
# may normalise z and drop units (_layers.pxd).
from cython cimport floating
from libc.string cimport memcpy

from _activations cimport activate
from _layers cimport batch_norm_forward, dropout_forward
from _network cimport (NetSpec, Rows, Chunk, row_id, layer_input, matmul,
                       prefetch_rows, drops)


cdef inline void sparse_times_dense(const Rows *data, const Chunk *chunk,
                                    const floating *coef, int n_out,
                                    floating *Z) noexcept nogil:
    """Z += X[chunk rows] @ coef for CSR X (in: coef (n_features, n_out);
    in/out: Z (chunk.n_rows, n_out)): one row of coef per non-zero."""
    cdef Py_ssize_t r, i, p, j, end
    cdef floating x
    cdef floating *Z_row
    cdef const floating *coef_row
    cdef const floating *values = <const floating *> data.X
    for r in range(chunk.n_rows):
        i = row_id(chunk, r)
        Z_row = Z + r * n_out
        end = data.indptr[i + 1]
        for p in range(data.indptr[i], end):
            prefetch_rows(data, coef, n_out * sizeof(floating), p, end)
            x = values[p]
            coef_row = coef + <Py_ssize_t> data.indices[p] * n_out
            for j in range(n_out):
                Z_row[j] += x * coef_row[j]


cdef inline void forward(const NetSpec *net, const Rows *data,
                         const Chunk *chunk, const floating *params,
                         floating *work, floating *output) noexcept nogil:
    """activations[1..L] of the chunk's rows.

    Hidden activations go to their blocks of work; the output layer's to
    ``output`` (chunk.n_rows, units[L]), which may be the block of work for
    activations[L]. In training mode (net.training) hidden layers with batch
    normalisation also write x_hat and stats, those with dropout their mask
    and dropped activations, to work; with net.keep_z, every hidden layer
    its z (the activation's input).
    """
    cdef Py_ssize_t l, i, L = net.n_layers, n_rows = chunk.n_rows
    cdef int n_in, n_out
    cdef floating *Z
    cdef const floating *coef
    cdef const floating *intercept
    for l in range(L):
        n_in = net.units[l]
        n_out = net.units[l + 1]
        Z = output if l == L - 1 else work + net.activation_offset[l + 1]
        coef = params + net.coef_offset[l]
        intercept = params + net.intercept_offset[l]
        # Z = A_in @ coef + intercept   (intercept broadcast into Z, then added to)
        for i in range(n_rows):
            memcpy(Z + i * n_out, intercept, n_out * sizeof(floating))
        if l == 0 and net.sparse_input:
            sparse_times_dense(data, chunk, coef, n_out, Z)
        else:
            matmul(net, c'N', c'N', <int> n_rows, n_out, n_in,
                   layer_input(net, chunk, work, l), n_in, coef, n_out,
                   <floating> 1.0, Z, n_out)
        if l == L - 1:
            activate(net.output, Z, n_rows, n_out)
            continue
        if net.batch_norm:
            batch_norm_forward(net, l, n_rows, params, Z, work + net.x_hat_offset[l],
                               work + net.stats_offset[l])
        if net.keep_z:
            # z, for the derivative of an activation that needs it
            memcpy(work + net.z_offset[l], Z, n_rows * n_out * sizeof(floating))
        activate(net.activation, Z, n_rows, n_out)
        if drops(net, l):
            dropout_forward(net, l, chunk.stream_first, n_rows, Z,
                            work + net.mask_offset[l], work + net.dropped_offset[l])
