# Numeric embeddings of the input, before layer 0 (src/_network.pxd's
# layout): each of the F input features x_j of a row becomes d values, and
# layer 0 reads the (n, F * d) rows, feature-major (torch's .flatten(1)).
#
# Periodic (rtdl_num_embeddings.PeriodicEmbeddings, lite=False, with its
# ReLU): per feature j, with its frequencies c_j (q,), its coefs W_j (2q, d)
# and intercepts b_j (d,),
#
#     v = 2 pi c_j x_j                     (q,)
#     phi_j = [cos v, sin v]               (2q,)    periodic features
#     e_j = relu(phi_j @ W_j + b_j)        (d,)     one small linear map per
#                                                   feature (rtdl's _NLinear)
#
# and back, from dJ/de (the delta of layer 0's input, g below):
#
#     g_j := g_j * (e_j > 0)
#     dJ/dW_j = phi_j.T @ g_j,  dJ/db_j = sum_rows(g_j)
#     dJ/dphi_j = g_j @ W_j.T
#     dJ/dc_jf = sum_rows 2 pi x_j (cos v_f dJ/dsin v_f - sin v_f dJ/dcos v_f)
#
# Every matrix of one feature is a strided block of the chunk's: phi_j is
# columns [2q j, 2q (j + 1)) of phi (n, F * 2q), g_j columns [d j, d (j + 1))
# of g (n, F * d), so each product is one call with a leading dimension of
# the whole row (no copies, no masked dense product).
from cython cimport floating
from libc.math cimport cos, sin, M_PI
from libc.string cimport memcpy, memset

from _network cimport NetSpec, Chunk, matmul, PERIODIC


cdef inline void periodic_forward(const NetSpec *net, const Chunk *chunk,
                                  const floating *params,
                                  floating *work) noexcept nogil:
    """The periodic embedding of the chunk's dense rows (in: chunk.X (n, F);
    out: work's periodic features (n, F, 2q) and embedding (n, F * d))."""
    cdef Py_ssize_t i, j, f, n = chunk.n_rows
    cdef Py_ssize_t F = net.n_features, q = net.n_frequencies, d = net.embedding_size
    cdef const floating *X = <const floating *> chunk.X
    cdef const floating *c
    cdef floating *phi = work + net.periodic_offset
    cdef floating *E = work + net.embedded_offset
    cdef floating *phi_row
    cdef floating v
    # phi[i, j] = [cos(2 pi c_j x_ij), sin(2 pi c_j x_ij)]
    for i in range(n):
        for j in range(F):
            c = params + net.frequency_offset + j * q
            phi_row = phi + (i * F + j) * 2 * q
            for f in range(q):
                v = (<floating> (2.0 * M_PI) * c[f]) * X[i * F + j]
                phi_row[f] = cos(v)
                phi_row[q + f] = sin(v)
        # E[i] = intercepts, flattened (F * d,)
        memcpy(E + i * F * d, params + net.embedding_intercept_offset,
               F * d * sizeof(floating))
    for j in range(F):
        # E_j += phi_j @ W_j   (E_j: E[:, j*d:(j+1)*d], phi_j: phi[:, j, :])
        matmul(net, c'N', c'N', <int> n, <int> d, <int> (2 * q),
               phi + j * 2 * q, <int> (F * 2 * q),
               params + net.embedding_coef_offset + j * 2 * q * d, <int> d,
               <floating> 1.0, E + j * d, <int> (F * d))
    # E = relu(E)
    for i in range(n * F * d):
        if E[i] < 0:
            E[i] = 0


cdef inline void periodic_backward(const NetSpec *net, const Chunk *chunk,
                                   const floating *params, floating *work,
                                   floating *G, floating *raw,
                                   bint accumulate) noexcept nogil:
    """The periodic embedding's raw gradient sums over the chunk's rows
    (out: raw's frequencies, embedding coefs and intercepts -- written, or
    added to when ``accumulate``), from in/out G (n, F * d): dJ/d(embedding)
    on entry, dJ/d(its pre-activation) on return."""
    cdef Py_ssize_t i, j, f, n = chunk.n_rows
    cdef Py_ssize_t F = net.n_features, q = net.n_frequencies, d = net.embedding_size
    cdef const floating *X = <const floating *> chunk.X
    cdef const floating *phi = work + net.periodic_offset
    cdef const floating *E = work + net.embedded_offset
    cdef const floating *phi_row
    cdef const floating *S_row
    cdef floating *S = work + net.periodic_delta_offset
    cdef floating *c_grad
    cdef floating *intercept_grad = raw + net.embedding_intercept_offset
    cdef floating total
    cdef floating two_pi = <floating> (2.0 * M_PI)
    if not accumulate:
        # (frequencies, coefs and intercepts are one block of raw)
        memset(raw + net.frequency_offset, 0,
               F * (q + 2 * q * d + d) * sizeof(floating))
    # G = G * (E > 0); intercept_grad += G.sum(axis=0)
    for i in range(n):
        for j in range(F * d):
            if not E[i * F * d + j] > 0:
                G[i * F * d + j] = 0
            intercept_grad[j] += G[i * F * d + j]
    for j in range(F):
        # W_grad_j += phi_j.T @ G_j
        matmul(net, c'T', c'N', <int> (2 * q), <int> d, <int> n,
               phi + j * 2 * q, <int> (F * 2 * q), G + j * d, <int> (F * d),
               <floating> 1.0, raw + net.embedding_coef_offset + j * 2 * q * d,
               <int> d)
        # S = G_j @ W_j.T   (dJ/dphi_j, (n, 2q))
        matmul(net, c'N', c'T', <int> n, <int> (2 * q), <int> d,
               G + j * d, <int> (F * d),
               params + net.embedding_coef_offset + j * 2 * q * d, <int> d,
               <floating> 0.0, S, <int> (2 * q))
        # c_grad_j += sum_i 2 pi x_ij (cos v * S_sin - sin v * S_cos)
        c_grad = raw + net.frequency_offset + j * q
        for i in range(n):
            phi_row = phi + (i * F + j) * 2 * q
            S_row = S + i * 2 * q
            for f in range(q):
                total = phi_row[f] * S_row[q + f] - phi_row[q + f] * S_row[f]
                c_grad[f] += two_pi * X[i * F + j] * total


cdef inline void embedding_forward(const NetSpec *net, const Chunk *chunk,
                                   const floating *params,
                                   floating *work) noexcept nogil:
    """The network's numeric embedding of the chunk (net.embedding's)."""
    if net.embedding == PERIODIC:
        periodic_forward(net, chunk, params, work)


cdef inline void embedding_backward(const NetSpec *net, const Chunk *chunk,
                                    const floating *params, floating *work,
                                    floating *G, floating *raw,
                                    bint accumulate) noexcept nogil:
    """The numeric embedding's raw gradient sums, from G = dJ/d(embedding)
    (n, units[0]; overwritten)."""
    if net.embedding == PERIODIC:
        periodic_backward(net, chunk, params, work, G, raw, accumulate)
