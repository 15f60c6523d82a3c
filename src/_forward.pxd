# The forward pass: z^l = a^(l-1) @ coefs[l] + intercepts[l], a^l = g(z^l),
# for one chunk of rows (with k members: each member's rows, stacked, through
# its layers -- shared or its own, with its scalings; _network.pxd). The
# first layer reads dense rows through a matrix product, or CSR rows non-zero
# by non-zero (sparse x dense). Hidden layers may normalise z and drop units
# (_layers.pxd).
from cython cimport floating
from libc.string cimport memcpy, memset

from _activations cimport activate
from _embeddings cimport embedding_forward
from _layers cimport batch_norm_forward, dropout_forward
from _network cimport (NetSpec, Rows, Chunk, row_id, layer_input, unscaled_input,
                       matmul, prefetch_rows, drops, NO_EMBEDDING)


cdef inline void sparse_times_dense(const Rows *data, const Chunk *chunk,
                                    const floating *coef, int n_out,
                                    const floating *scale,
                                    floating *Z) noexcept nogil:
    """Z += (X[chunk rows] * scale) @ coef for CSR X (in: coef (n_features,
    n_out); scale (n_features,): a member's input scaling r, or NULL for
    none; in/out: Z (chunk.n_rows, n_out)): one row of coef per non-zero."""
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
            if scale != NULL:
                x = x * scale[data.indices[p]]
            coef_row = coef + <Py_ssize_t> data.indices[p] * n_out
            for j in range(n_out):
                Z_row[j] += x * coef_row[j]


cdef inline Py_ssize_t member_input_stride(const NetSpec *net, Py_ssize_t l,
                                           Py_ssize_t n_rows) noexcept nogil:
    """How far member m's rows of layer l's input lie from member 0's, in
    values: 0 when the members share them (the chunk's input, unscaled, of
    layer 0), else n_rows * units[l] (stacked rows)."""
    if l == 0 and net.r_offset[0] < 0:
        return 0
    return n_rows * net.units[l]


cdef inline void scale_input(const NetSpec *net, const Chunk *chunk,
                             Py_ssize_t l, const floating *params,
                             floating *work) noexcept nogil:
    """scaled[m * n + i] = a_in[i or m * n + i] * r[m] for every member m and
    row i of the chunk (layer l scales its input; dense input)."""
    cdef Py_ssize_t m, i, j, K = net.members, n = chunk.n_rows, n_in = net.units[l]
    cdef Py_ssize_t stride = n * n_in if l > 0 else 0
    cdef const floating *a_in = unscaled_input(net, chunk, work, l)
    cdef const floating *r
    cdef const floating *row
    cdef floating *out
    for m in range(K):
        r = params + net.r_offset[l] + m * n_in
        for i in range(n):
            row = a_in + m * stride + i * n_in
            out = work + net.scaled_offset[l] + (m * n + i) * n_in
            for j in range(n_in):
                out[j] = row[j] * r[j]


cdef inline void linear(const NetSpec *net, const Rows *data,
                        const Chunk *chunk, Py_ssize_t l,
                        const floating *params, floating *work,
                        floating *Z) noexcept nogil:
    """Z = layer l's affine map of its input, for every member's rows (out:
    Z (k * n, units[l + 1])): member m's rows are

        ((a_in * r[m]) @ coefs[l][m]) * s[m] + intercepts[l][m]

    with r, s where the layer has them and coefs, intercepts shared where
    the layer has one of each. Where s, the product before it goes to the
    layer's block of work (for s's gradient)."""
    cdef Py_ssize_t m, i, j, K = net.members, n = chunk.n_rows
    cdef int n_in = net.units[l], n_out = net.units[l + 1]
    cdef Py_ssize_t stride = member_input_stride(net, l, n)
    cdef bint scaled_out = net.s_offset[l] >= 0
    cdef floating *P = work + net.product_offset[l] if scaled_out else Z
    cdef const floating *A
    cdef const floating *coef = params + net.coef_offset[l]
    cdef const floating *intercept
    cdef const floating *s
    cdef Py_ssize_t coef_step = n_in * n_out if net.coef_count[l] > 1 else 0
    if net.r_offset[l] >= 0 and not (l == 0 and net.sparse_input):
        scale_input(net, chunk, l, params, work)
    # P = intercepts broadcast (added to by the product), or 0 where s
    # scales the product alone
    for m in range(K):
        intercept = params + net.intercept_offset[l] + (
            m * n_out if net.intercept_count[l] > 1 else 0)
        for i in range(n):
            if scaled_out:
                memset(P + (m * n + i) * n_out, 0, n_out * sizeof(floating))
            else:
                memcpy(P + (m * n + i) * n_out, intercept, n_out * sizeof(floating))
    if l == 0 and net.sparse_input:
        # P_m += (X * r[m]) @ coefs[0][m], from the non-zeros of X
        for m in range(K):
            sparse_times_dense(
                data, chunk, coef + m * coef_step, n_out,
                params + net.r_offset[0] + m * n_in if net.r_offset[0] >= 0 else NULL,
                P + m * n * n_out)
    elif net.coef_count[l] == 1 and (K == 1 or stride > 0):
        # P += A @ coef   (every member's rows in one product)
        A = layer_input(net, chunk, work, l)
        matmul(net, c'N', c'N', <int> (K * n), n_out, n_in, A, n_in, coef, n_out,
               <floating> 1.0, P, n_out)
    else:
        # P_m += A_m @ coefs[l][m]
        A = layer_input(net, chunk, work, l)
        for m in range(K):
            matmul(net, c'N', c'N', <int> n, n_out, n_in, A + m * stride, n_in,
                   coef + m * coef_step, n_out, <floating> 1.0,
                   P + m * n * n_out, n_out)
    if scaled_out:
        # Z_m = P_m * s[m] + intercepts[l][m]
        for m in range(K):
            s = params + net.s_offset[l] + m * n_out
            intercept = params + net.intercept_offset[l] + (
                m * n_out if net.intercept_count[l] > 1 else 0)
            for i in range(m * n, m * n + n):
                for j in range(n_out):
                    Z[i * n_out + j] = P[i * n_out + j] * s[j] + intercept[j]


cdef inline void forward(const NetSpec *net, const Rows *data,
                         const Chunk *chunk, const floating *params,
                         floating *work, floating *output) noexcept nogil:
    """activations[1..L] of the chunk's rows (k * n of them for k members),
    after the numeric embedding of its input, if any (_embeddings.pxd).

    Hidden activations go to their blocks of work; the output layer's to
    ``output`` (k * chunk.n_rows, units[L]), which may be the block of work for
    activations[L]. In training mode (net.training) hidden layers with batch
    normalisation also write x_hat and stats, those with dropout their mask
    and dropped activations, to work; with net.keep_z, every hidden layer
    its z (the activation's input). Batch normalisation and dropout act on
    each member's rows on their own.
    """
    cdef Py_ssize_t l, m, L = net.n_layers, n = chunk.n_rows, K = net.members
    cdef int n_out
    cdef floating *Z
    if net.embedding != NO_EMBEDDING:
        embedding_forward(net, chunk, params, work)
    for l in range(L):
        n_out = net.units[l + 1]
        Z = output if l == L - 1 else work + net.activation_offset[l + 1]
        linear(net, data, chunk, l, params, work, Z)
        if l == L - 1:
            activate(net.output, Z, K * n, n_out)
            continue
        if net.batch_norm:
            for m in range(K):
                batch_norm_forward(net, l, m, n, params, Z + m * n * n_out,
                                   work + net.x_hat_offset[l] + m * n * n_out,
                                   work + net.stats_offset[l] + 2 * m * n_out)
        if net.keep_z:
            # z, for the derivative of an activation that needs it
            memcpy(work + net.z_offset[l], Z, K * n * n_out * sizeof(floating))
        activate(net.activation, Z, K * n, n_out)
        if drops(net, l):
            for m in range(K):
                dropout_forward(net, l, m, chunk.stream_first, n, Z + m * n * n_out,
                                work + net.mask_offset[l] + m * n * n_out,
                                work + net.dropped_offset[l] + m * n * n_out)
