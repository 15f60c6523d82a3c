# Numeric embeddings of the input, before layer 0 (src/_network.pxd's
# layout): each of the F embedded input features x_j of a row becomes d
# values, and layer 0 reads them feature-major (torch's .flatten(1)).
# Both embeddings encode each feature into w values phi_j, then map them by a
# linear map of the feature's own, W_j (w, d) and b_j (d,) (rtdl's _NLinear):
#
# Periodic (rtdl_num_embeddings.PeriodicEmbeddings, lite=False, with its
# ReLU), with the feature's frequencies c_j (q,), w = 2q:
#
#     v = 2 pi c_j x_j                     (q,)
#     phi_j = [cos v, sin v]               (2q,)
#     e_j = relu(phi_j @ W_j + b_j)        (d,)
#
# Piecewise-linear (rtdl's PiecewiseLinearEmbeddings, version "B", no
# activation), with the feature's slopes a_j (d,) and its bins' affine maps
# (buffers: bin weights u_j, bin biases t_j (T,), from the bin edges), w = T:
#
#     phi_j = clamp(x_j u_j + t_j)         (T,)    the piecewise-linear encoding
#     e_j = x_j a_j + b_j + phi_j @ W_j    (d,)    (rtdl's LinearEmbeddings +
#                                                   _NLinear without bias)
#
# where clamp caps the first component above at 1, the middle ones to [0, 1]
# and the last below at 0 (not at all for a feature of one bin; nothing for
# T = 1), as rtdl's _PiecewiseLinearEncodingImpl.
#
# Back, from dJ/de (the delta of layer 0's input, g below):
#
#     (periodic) g_j := g_j * (e_j > 0)
#     dJ/dW_j = phi_j.T @ g_j,  dJ/db_j = sum_rows(g_j)
#     (periodic) dJ/dphi_j = g_j @ W_j.T, and
#                dJ/dc_jf = sum_rows 2 pi x_j (cos v_f dJ/dsin v_f - sin v_f dJ/dcos v_f)
#     (piecewise) dJ/da_j = sum_rows(x_j g_j)  (the bins are not trained)
#
# Only the first k = embedded_features of the N input columns are embedded
# (k = N by default): layer 0 reads rows of width R = k d + (N - k),
# [E_0 .. E_{k-1}, x_k .. x_{N-1}] (torch.cat([emb(x[:, :k]).flatten(1),
# x[:, k:]], 1)); the forward pass copies the passed columns into the tail of
# each row of E, and no gradient flows into them (they are data). Below F is
# k, X's row stride N and E's (and G's) row stride R.
#
# Every matrix of one feature is a strided block of the chunk's: phi_j is
# columns [w j, w (j + 1)) of phi (n, F * w), g_j columns [d j, d (j + 1)) of
# g (n, F * d), so each product is one call with a leading dimension of the
# whole row (no copies, no masked dense product).
from cython cimport floating
from libc.math cimport cos, sin, M_PI
from libc.string cimport memcpy, memset

from _network cimport NetSpec, Chunk, matmul, PERIODIC, PIECEWISE_LINEAR


cdef inline Py_ssize_t _first_trained(const NetSpec *net) noexcept nogil:
    """Where the embedding's trained values begin in params: its
    frequencies (periodic) or slopes (piecewise), then its coefs and
    intercepts, one block of F * (w / 2 or d) + F * w * d + F * d values."""
    return net.frequency_offset if net.embedding == PERIODIC else net.slope_offset


cdef inline void _per_feature_linear(const NetSpec *net, Py_ssize_t n,
                                     const floating *params,
                                     floating *work) noexcept nogil:
    """E_j += phi_j @ W_j for every feature j (in: the encoding phi (n, F,
    w) in work; in/out: the embedding E (n, F * d) in work)."""
    cdef Py_ssize_t j, F = net.embedded_features, w = net.encoding_width
    cdef Py_ssize_t d = net.embedding_size, R = net.units[0]
    cdef const floating *phi = work + net.encoding_offset
    cdef floating *E = work + net.embedded_offset
    for j in range(F):
        # E_j += phi_j @ W_j   (E_j: E[:, j*d:(j+1)*d], phi_j: phi[:, j, :])
        matmul(net, c'N', c'N', <int> n, <int> d, <int> w,
               phi + j * w, <int> (F * w),
               params + net.embedding_coef_offset + j * w * d, <int> d,
               <floating> 1.0, E + j * d, <int> R)


cdef inline void _per_feature_linear_grad(const NetSpec *net, Py_ssize_t n,
                                          const floating *work,
                                          const floating *G,
                                          floating *raw) noexcept nogil:
    """The per-feature linear map's raw gradient sums, from G = dJ/dE (n,
    F * d) (in: the encoding phi in work; in/out: raw's embedding coefs and
    intercepts, added to)."""
    cdef Py_ssize_t i, j, F = net.embedded_features, w = net.encoding_width
    cdef Py_ssize_t d = net.embedding_size, R = net.units[0]
    cdef const floating *phi = work + net.encoding_offset
    cdef floating *intercept_grad = raw + net.embedding_intercept_offset
    # intercept_grad += G[:, :F * d].sum(axis=0)
    for i in range(n):
        for j in range(F * d):
            intercept_grad[j] += G[i * R + j]
    for j in range(F):
        # W_grad_j += phi_j.T @ G_j
        matmul(net, c'T', c'N', <int> w, <int> d, <int> n,
               phi + j * w, <int> (F * w), G + j * d, <int> R,
               <floating> 1.0, raw + net.embedding_coef_offset + j * w * d, <int> d)


cdef inline void periodic_encode(const NetSpec *net, const Chunk *chunk,
                                 const floating *params,
                                 floating *work) noexcept nogil:
    """phi[i, j] = [cos(2 pi c_j x_ij), sin(2 pi c_j x_ij)] (in: chunk.X
    (n, F); out: the encoding (n, F, 2q) in work), and E[i] = the
    intercepts, flattened."""
    cdef Py_ssize_t i, j, f, n = chunk.n_rows
    cdef Py_ssize_t F = net.embedded_features, q = net.encoding_width // 2
    cdef Py_ssize_t d = net.embedding_size, N = net.n_features, R = net.units[0]
    cdef const floating *X = <const floating *> chunk.X
    cdef const floating *c
    cdef floating *phi_row
    cdef floating v
    for i in range(n):
        for j in range(F):
            c = params + net.frequency_offset + j * q
            phi_row = work + net.encoding_offset + (i * F + j) * 2 * q
            for f in range(q):
                v = (<floating> (2.0 * M_PI) * c[f]) * X[i * N + j]
                phi_row[f] = cos(v)
                phi_row[q + f] = sin(v)
        # E[i, :F * d] = intercepts.ravel()
        memcpy(work + net.embedded_offset + i * R,
               params + net.embedding_intercept_offset, F * d * sizeof(floating))


cdef inline void piecewise_linear_encode(const NetSpec *net, const Chunk *chunk,
                                         const floating *params,
                                         floating *work) noexcept nogil:
    """phi[i, j] = clamp(x_ij u_j + t_j) (in: chunk.X (n, F); out: the
    encoding (n, F, T) in work), and E[i, j] = x_ij a_j + b_j (the linear
    embedding, written)."""
    cdef Py_ssize_t i, j, t, n = chunk.n_rows
    cdef Py_ssize_t F = net.embedded_features, T = net.encoding_width
    cdef Py_ssize_t d = net.embedding_size, N = net.n_features, R = net.units[0]
    cdef const floating *X = <const floating *> chunk.X
    cdef const floating *u
    cdef const floating *b
    cdef const floating *a
    cdef floating *phi_row
    cdef floating *E_row
    cdef floating x
    for i in range(n):
        for j in range(F):
            x = X[i * N + j]
            u = params + net.bin_weight_offset + j * T
            b = params + net.bin_bias_offset + j * T
            phi_row = work + net.encoding_offset + (i * F + j) * T
            for t in range(T):
                phi_row[t] = b[t] + u[t] * x
            if T > 1:
                if phi_row[0] > 1:
                    phi_row[0] = 1
                for t in range(1, T - 1):
                    phi_row[t] = min(max(phi_row[t], <floating> 0.0), <floating> 1.0)
                if params[net.bin_count_offset + j] != 1 and phi_row[T - 1] < 0:
                    phi_row[T - 1] = 0
            # E_ij = b_j + a_j * x_ij   (rtdl's torch.addcmul(bias, weight, x))
            a = params + net.slope_offset + j * d
            b = params + net.embedding_intercept_offset + j * d
            E_row = work + net.embedded_offset + i * R + j * d
            for t in range(d):
                E_row[t] = b[t] + a[t] * x


cdef inline void embedding_forward(const NetSpec *net, const Chunk *chunk,
                                   const floating *params,
                                   floating *work) noexcept nogil:
    """Layer 0's input E (n, R) of the chunk's dense rows, in work: the
    embedding of the first F columns, then the other N - F columns (with the
    encoding phi the embedding is made from)."""
    cdef Py_ssize_t i, j, n = chunk.n_rows
    cdef Py_ssize_t F = net.embedded_features, N = net.n_features, R = net.units[0]
    cdef Py_ssize_t Fd = F * net.embedding_size
    cdef floating *E = work + net.embedded_offset
    cdef const floating *X = <const floating *> chunk.X
    if net.embedding == PERIODIC:
        periodic_encode(net, chunk, params, work)
    else:
        piecewise_linear_encode(net, chunk, params, work)
    _per_feature_linear(net, n, params, work)
    if net.embedding == PERIODIC:
        # E[:, :F * d] = relu(E[:, :F * d])
        for i in range(n):
            for j in range(Fd):
                if E[i * R + j] < 0:
                    E[i * R + j] = 0
    if N > F:
        # E[:, F * d:] = X[:, F:]   (the passed-through columns)
        for i in range(n):
            memcpy(E + i * R + Fd, X + i * N + F, (N - F) * sizeof(floating))


cdef inline void _periodic_frequency_grad(const NetSpec *net, const Chunk *chunk,
                                          const floating *params, floating *work,
                                          const floating *G,
                                          floating *raw) noexcept nogil:
    """raw's frequencies += dJ/dc, from G = dJ/d(pre-activation) (n, F * d),
    through dJ/dphi_j of one feature at a time (in work)."""
    cdef Py_ssize_t i, j, f, n = chunk.n_rows
    cdef Py_ssize_t F = net.embedded_features, q = net.encoding_width // 2
    cdef Py_ssize_t d = net.embedding_size, N = net.n_features, R = net.units[0]
    cdef const floating *X = <const floating *> chunk.X
    cdef const floating *phi_row
    cdef const floating *S_row
    cdef floating *S = work + net.encoding_delta_offset
    cdef floating *c_grad
    cdef floating total
    cdef floating two_pi = <floating> (2.0 * M_PI)
    for j in range(F):
        # S = G_j @ W_j.T   (dJ/dphi_j, (n, 2q))
        matmul(net, c'N', c'T', <int> n, <int> (2 * q), <int> d,
               G + j * d, <int> R,
               params + net.embedding_coef_offset + j * 2 * q * d, <int> d,
               <floating> 0.0, S, <int> (2 * q))
        # c_grad_j += sum_i 2 pi x_ij (cos v * S_sin - sin v * S_cos)
        c_grad = raw + net.frequency_offset + j * q
        for i in range(n):
            phi_row = work + net.encoding_offset + (i * F + j) * 2 * q
            S_row = S + i * 2 * q
            for f in range(q):
                total = phi_row[f] * S_row[q + f] - phi_row[q + f] * S_row[f]
                c_grad[f] += two_pi * X[i * N + j] * total


cdef inline void embedding_backward(const NetSpec *net, const Chunk *chunk,
                                    const floating *params, floating *work,
                                    floating *G, floating *raw,
                                    bint accumulate) noexcept nogil:
    """The numeric embedding's raw gradient sums over the chunk's rows (out:
    raw's embedding values -- written, or added to when ``accumulate``), from
    in/out G (n, F * d): dJ/d(embedding) on entry (periodic: dJ/d(its
    pre-activation) on return)."""
    cdef Py_ssize_t i, j, t, n = chunk.n_rows
    cdef Py_ssize_t F = net.embedded_features, w = net.encoding_width, d = net.embedding_size
    cdef Py_ssize_t N = net.n_features, R = net.units[0]
    cdef const floating *E = work + net.embedded_offset
    cdef const floating *X = <const floating *> chunk.X
    cdef floating *a_grad
    if not accumulate:
        memset(raw + _first_trained(net), 0,
               F * ((w // 2 if net.embedding == PERIODIC else d) + w * d + d)
               * sizeof(floating))
    if net.embedding == PERIODIC:
        # G[:, :F * d] *= (E[:, :F * d] > 0)
        for i in range(n):
            for j in range(F * d):
                if not E[i * R + j] > 0:
                    G[i * R + j] = 0
    _per_feature_linear_grad(net, n, work, G, raw)
    if net.embedding == PERIODIC:
        _periodic_frequency_grad(net, chunk, params, work, G, raw)
    else:
        # a_grad_j += sum_i x_ij G_ij
        for i in range(n):
            for j in range(F):
                a_grad = raw + net.slope_offset + j * d
                for t in range(d):
                    a_grad[t] += X[i * N + j] * G[i * R + j * d + t]
