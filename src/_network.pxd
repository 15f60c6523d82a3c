# The compiled description of a network (NetSpec), of the rows it reads
# (Rows) and of one chunk of those rows (Chunk), shared by the forward pass,
# the delta recursion and the epoch loop. The Python-facing objects that fill
# them (Network, Data) live in _kernel.pyx.
#
# Parameters: one flat vector laid out as scikit-learn's _pack: every
# coefs[l] (units[l], units[l + 1]) row-major in layer order, then every
# intercepts[l] (units[l + 1],). With batch normalisation, then for the hidden
# layers k = 0 .. L-2 (units[k + 1] each): every gamma[k], every beta[k] --
# trained, like the rest: n_params values in all -- and after them the
# state the optimizers do not touch: every running_mean[k], every
# running_var[k] (n_values values in all).
#
# Scratch ("work"): one flat vector; for chunks of at most M = chunk_rows rows
#     activations[1..L]   M * units[l]       each, row-major      (FORWARD)
#     per hidden layer k with batch normalisation: x_hat[k] M * units[k + 1],
#     stats[k] 2 * units[k + 1]; with dropout: mask[k] and dropped[k]
#     M * units[k + 1] each                                      (FORWARD)
#     z[k] per hidden layer k, when the hidden activation needs_z
#     (_activations.pxd): its input (after batch normalisation),
#     M * units[k + 1] each                                      (BACKWARD)
#     deltas[0..L-1]      M * units[l + 1]   each, row-major      (BACKWARD)
#     gathered chunk      M * units[0] (X, dense input only), M * units[L] (Y),
#                         M (sample weights)                      (EPOCH)
#
# An ensemble of k = members networks (TabM's forms; cbp/_options.py's
# ENSEMBLES says which layer has what) stacks its members' rows: every block
# of work above holds k * M rows, member m's rows m * n, ..., m * n + n - 1
# for a chunk of n rows (the gathered chunk and the stats of batch
# normalisation stay per chunk: M rows; 2 * k * units stats). Layer l then
#     has coef_count[l] = 1 (shared) or k weight matrices, member-major
#     (k, units[l], units[l + 1]), and intercept_count[l] = 1 or k intercept
#     vectors (k, units[l + 1]), in their blocks above;
#     may scale its input per member, x * r[m] (r: (k, units[l]) at
#     r_offset[l]), and its product per member, (x @ W) * s[m] (s: (k,
#     units[l + 1]) at s_offset[l]): every r, then every s, after the
#     intercepts, trained (no L2); batch normalisation's four blocks after
#     them hold (k, units[k + 1]) each.
#     Scratch: the scaled input (k * M * units[l], scaled_offset[l]) where r,
#     the product before s (k * M * units[l + 1], product_offset[l]) where s;
#     dJ/d(scaled input) of layer 0 (k * M * units[0], input_delta_offset)
#     when layer 0 has r (BACKWARD).
# With k = 1 and no scalings every size above is the plain network's.
#
# A numeric embedding (embedding != NO_EMBEDDING; _embeddings.pxd) maps the
# first F = embedded_features of the chunk's n_features = N input values per
# row to F * d values (d = embedding_size), followed by the other N - F
# values unchanged: layer 0 reads these units[0] = F * d + N - F values
# instead of the input (shared by the members). Each feature is first encoded into w values (encoding_width:
# 2q for q periodic frequencies, T for T piecewise-linear bins), then mapped
# to d by a linear map of its own. Trained, after every r and s (no L2),
# before batch normalisation's blocks:
#     periodic:  frequencies (F, q)          at frequency_offset
#     piecewise: slopes (F, d)               at slope_offset
#     both:      embedding coefs (F, w, d)   at embedding_coef_offset
#                embedding intercepts (F, d) at embedding_intercept_offset
# and, piecewise, after every other value (buffers, not trained): the bins'
# affine maps, bin weights and bin biases (F, T) each, and bin counts (F,),
# at bin_weight_offset, bin_bias_offset, bin_count_offset.
# Scratch: the encoding (M, F, w) at encoding_offset and layer 0's input (M,
# units[0]) at embedded_offset (FORWARD); dJ/d(encoding) of one feature (M, w) at
# encoding_delta_offset (periodic), and dJ/d(layer 0's input) at
# input_delta_offset (k * M * units[0]) (BACKWARD).

# lay_out (below) computes both layouts' offsets; cbp/_network.py makes the
# same parameter layout's views for Python (coefs_, intercepts_, ...), and
# tests/test_ensembles.py checks the two agree.
from cython cimport floating
from libc.stdint cimport uint64_t

from _blas cimport gemm, small_gemm, gemv_column, outer
from _losses cimport LossSpec


cdef enum Embedding:  # numeric embeddings of the input (_embeddings.pxd)
    NO_EMBEDDING = 0
    PERIODIC = 1
    PIECEWISE_LINEAR = 2


cdef inline dict embedding_codes():
    """The numeric embeddings by name (cbp/_options.py's EMBEDDINGS names
    exactly these)."""
    return {"periodic": PERIODIC, "piecewise_linear": PIECEWISE_LINEAR}


cdef enum:  # workspace parts
    FORWARD = 0     # prediction
    BACKWARD = 1    # loss and gradient (L-BFGS)
    EPOCH = 2       # training epochs, which also gather shuffled rows


# One row times a matrix of more than this many values goes to BLAS's GEMV
# (matmul), which streams the matrix once; the micro-kernels read it once
# per four vectors of columns. Measured (AVX-512 build, float32): one row
# times (64, 64) takes 0.10 us in the micro-kernels; times (784, 100), 6.6 us
# there against GEMV's 2-3 us.
cdef enum:
    SMALL_GEMV_WORK = 16384


cdef struct NetSpec:
    Py_ssize_t n_layers             # L, the number of weight matrices
    const Py_ssize_t *units         # (L + 1,)
    int activation                  # hidden activation code (_activations.pxd)
    int output                      # output activation code
    LossSpec loss                   # the loss and its parameters (_losses.pxd)
    double alpha                    # L2 penalty on the coefs
    bint sparse_input               # the first layer reads CSR rows
    Py_ssize_t n_params             # trained values (the optimizers' length)
    Py_ssize_t n_values             # params' length: n_params + running stats
    Py_ssize_t n_coefs              # the coefs come first in params
    # hidden-layer options (_layers.pxd)
    bint batch_norm
    double batch_norm_momentum, batch_norm_eps
    const double *dropout           # (L - 1,) rate per hidden layer
    bint any_dropout
    uint64_t dropout_seed
    Py_ssize_t *gamma_offset        # (L - 1,) into params, with batch_norm
    Py_ssize_t *beta_offset
    Py_ssize_t *running_mean_offset
    Py_ssize_t *running_var_offset
    Py_ssize_t *x_hat_offset        # (L - 1,) into work, with batch_norm
    Py_ssize_t *stats_offset
    Py_ssize_t *mask_offset         # (L - 1,) into work, where dropout > 0
    Py_ssize_t *dropped_offset
    Py_ssize_t *z_offset            # (L - 1,) into work, when the hidden
                                    # activation needs z (_activations.pxd)
    # the mode of one entry call (set by Network.for_call)
    bint training                   # batch statistics and dropout masks
    bint update_running             # move the running statistics (epochs)
    bint keep_z                     # the forward pass writes z[k] (calls
                                    # with a backward pass, when needs_z)
    Py_ssize_t chunk_rows           # M: rows that go through the layers at once
    Py_ssize_t block_rows           # 0: a training batch goes through in chunks,
                                    # in order; else in fixed blocks of this many
                                    # rows (= M), on threads (_kernel.pyx, "A
                                    # batch in fixed blocks of rows")
    long long small_gemm_work       # A @ B, A.T @ B of at most this m*n*k:
                                    # the micro-kernels (_small_gemm.h)
    long long small_gemm_work_transposed  # A @ B.T: the same, its own
    double min_block_work           # blocks of less work (multiply-adds) run
                                    # on one thread (_epoch.pxd)
    Py_ssize_t *coef_offset         # (L,)     into params
    Py_ssize_t *intercept_offset    # (L,)     into params
    Py_ssize_t *activation_offset   # (L + 1,) into work; [0] unused
    Py_ssize_t *delta_offset        # (L,)     into work
    Py_ssize_t x_offset, y_offset, sw_offset   # gathered chunk, into work
    Py_ssize_t work_size[3]         # FORWARD, BACKWARD, EPOCH
    # ensembles (see the top of this file); members 1: a plain network
    Py_ssize_t members              # k
    Py_ssize_t *coef_count          # (L,) 1 or k weight matrices
    Py_ssize_t *intercept_count     # (L,) 1 or k intercept vectors
    Py_ssize_t *r_offset            # (L,) into params, or -1
    Py_ssize_t *s_offset            # (L,) into params, or -1
    Py_ssize_t *scaled_offset       # (L,) into work, where r
    Py_ssize_t *product_offset      # (L,) into work, where s
    Py_ssize_t input_delta_offset   # into work, when layer 0 has r; else -1
    double row_work                 # multiply-adds of one row's forward and
                                    # backward pass, roughly
    # a numeric embedding of the input (see the top of this file)
    int embedding                   # Embedding code; NO_EMBEDDING: none
    Py_ssize_t n_features           # F, the input's columns (units[0] without
                                    # an embedding)
    Py_ssize_t embedded_features    # k <= F: columns 0..k-1 are embedded,
                                    # k..F-1 passed through (F without one)
    Py_ssize_t embedding_size       # d: units[0] = R = k * d + (F - k)
    Py_ssize_t encoding_width       # w: 2q (periodic), T (piecewise)
    Py_ssize_t frequency_offset     # into params, or -1 (periodic)
    Py_ssize_t slope_offset         # (piecewise)
    Py_ssize_t embedding_coef_offset
    Py_ssize_t embedding_intercept_offset
    Py_ssize_t bin_weight_offset    # buffers (piecewise)
    Py_ssize_t bin_bias_offset
    Py_ssize_t bin_count_offset
    Py_ssize_t encoding_offset      # into work, or -1
    Py_ssize_t embedded_offset
    Py_ssize_t encoding_delta_offset


# The offset tables of a NetSpec, one block of Py_ssize_t: OFFSETS_PER_LAYER
# * (L + 1) values hold every table below (lay_out).
cdef enum:
    OFFSETS_PER_LAYER = 19


cdef inline void lay_out(NetSpec *net, const double *dropout,
                         bint keeps_z, const Py_ssize_t *layer_kinds) noexcept:
    """Fill net's offset tables (coef_offset: a block of OFFSETS_PER_LAYER *
    (L + 1) values, allocated by the caller), n_coefs, n_params, n_values,
    work_size and row_work, as the comment at the top of this file lays them
    out, from its units, n_layers, members, chunk_rows, batch_norm,
    sparse_input and embedding (n_features, embedding_size, encoding_width);
    dropout: the (L - 1,) rates (NULL for L = 1); keeps_z: the
    hidden activation needs_z; layer_kinds: (L, 4) per layer: member
    weights, member intercepts, r, s (0 or 1; NULL: a plain network).
    Tables of options a layer does not have hold -1."""
    cdef Py_ssize_t L = net.n_layers, K = net.members, l, k, part, position
    cdef Py_ssize_t F, w, d
    cdef Py_ssize_t KM = K * net.chunk_rows
    cdef const Py_ssize_t *u = net.units
    net.intercept_offset = net.coef_offset + L
    net.delta_offset = net.coef_offset + 2 * L
    net.activation_offset = net.coef_offset + 3 * L   # L + 1
    net.gamma_offset = net.coef_offset + 4 * L + 1
    net.beta_offset = net.coef_offset + 5 * L + 1
    net.running_mean_offset = net.coef_offset + 6 * L + 1
    net.running_var_offset = net.coef_offset + 7 * L + 1
    net.x_hat_offset = net.coef_offset + 8 * L + 1
    net.stats_offset = net.coef_offset + 9 * L + 1
    net.mask_offset = net.coef_offset + 10 * L + 1
    net.dropped_offset = net.coef_offset + 11 * L + 1
    net.z_offset = net.coef_offset + 12 * L + 1
    net.r_offset = net.coef_offset + 13 * L + 1
    net.s_offset = net.coef_offset + 14 * L + 1
    net.scaled_offset = net.coef_offset + 15 * L + 1
    net.product_offset = net.coef_offset + 16 * L + 1
    net.coef_count = net.coef_offset + 17 * L + 1
    net.intercept_count = net.coef_offset + 18 * L + 1
    for k in range(13 * L):
        net.gamma_offset[k] = -1
    for l in range(L):
        net.coef_count[l] = K if layer_kinds != NULL and layer_kinds[4 * l] else 1
        net.intercept_count[l] = (K if layer_kinds != NULL and layer_kinds[4 * l + 1]
                                  else 1)

    # parameters
    position = 0
    net.row_work = 0.0
    for l in range(L):
        net.coef_offset[l] = position
        position += net.coef_count[l] * u[l] * u[l + 1]
        net.row_work += 3.0 * K * (u[l] * u[l + 1] + u[l + 1])
    net.n_coefs = position
    for l in range(L):
        net.intercept_offset[l] = position
        position += net.intercept_count[l] * u[l + 1]
    if layer_kinds != NULL:
        for l in range(L):
            if layer_kinds[4 * l + 2]:
                net.r_offset[l] = position
                position += K * u[l]
        for l in range(L):
            if layer_kinds[4 * l + 3]:
                net.s_offset[l] = position
                position += K * u[l + 1]
    net.frequency_offset = -1
    net.slope_offset = -1
    net.embedding_coef_offset = -1
    net.embedding_intercept_offset = -1
    net.bin_weight_offset = -1
    net.bin_bias_offset = -1
    net.bin_count_offset = -1
    if net.embedding != NO_EMBEDDING:
        F, w, d = net.embedded_features, net.encoding_width, net.embedding_size
        if net.embedding == PERIODIC:
            net.frequency_offset = position
            position += F * (w // 2)
        else:
            net.slope_offset = position
            position += F * d
        net.embedding_coef_offset = position
        position += F * w * d
        net.embedding_intercept_offset = position
        position += F * d
        net.row_work += 3.0 * F * (w + w * d + d)
    net.n_params = position
    if net.batch_norm:
        for part in range(4):  # gamma, beta | running mean, running var
            for k in range(L - 1):
                net.gamma_offset[part * L + k] = position
                position += K * u[k + 1]
            if part == 1:
                net.n_params = position
    if net.embedding == PIECEWISE_LINEAR:
        net.bin_weight_offset = position
        position += net.embedded_features * net.encoding_width
        net.bin_bias_offset = position
        position += net.embedded_features * net.encoding_width
        net.bin_count_offset = position
        position += net.embedded_features
    net.n_values = position
    if K == 1:
        net.row_work = 3.0 * net.n_params

    # scratch
    position = 0
    net.activation_offset[0] = -1
    for l in range(1, L + 1):
        net.activation_offset[l] = position
        position += KM * u[l]
    for k in range(L - 1):
        if net.batch_norm:
            net.x_hat_offset[k] = position
            position += KM * u[k + 1]
            net.stats_offset[k] = position
            position += 2 * K * u[k + 1]
        if dropout[k] > 0:
            net.mask_offset[k] = position
            position += KM * u[k + 1]
            net.dropped_offset[k] = position
            position += KM * u[k + 1]
    for l in range(L):
        if net.r_offset[l] >= 0 and not (l == 0 and net.sparse_input):
            net.scaled_offset[l] = position
            position += KM * u[l]
        if net.s_offset[l] >= 0:
            net.product_offset[l] = position
            position += KM * u[l + 1]
    net.encoding_offset = -1
    net.embedded_offset = -1
    net.encoding_delta_offset = -1
    if net.embedding != NO_EMBEDDING:
        net.encoding_offset = position
        position += net.chunk_rows * net.embedded_features * net.encoding_width
        net.embedded_offset = position
        position += net.chunk_rows * u[0]
    net.work_size[FORWARD] = position
    if keeps_z:
        for k in range(L - 1):
            net.z_offset[k] = position
            position += KM * u[k + 1]
    for l in range(L):
        net.delta_offset[l] = position
        position += KM * u[l + 1]
    net.input_delta_offset = -1
    if (net.r_offset[0] >= 0 or net.embedding != NO_EMBEDDING) and not net.sparse_input:
        net.input_delta_offset = position
        position += KM * u[0]
    if net.embedding == PERIODIC:
        net.encoding_delta_offset = position
        position += net.chunk_rows * net.encoding_width
    net.work_size[BACKWARD] = position
    net.x_offset = position
    if not net.sparse_input:  # shuffled dense rows are gathered; CSR rows are not
        position += net.chunk_rows * net.n_features
    net.y_offset = position
    position += net.chunk_rows * u[L]
    net.sw_offset = position
    position += net.chunk_rows
    net.work_size[EPOCH] = position


cdef struct Rows:
    # A data set as the kernel reads it (pointers into arrays Data keeps alive).
    Py_ssize_t n_rows
    Py_ssize_t n_features
    Py_ssize_t n_outputs            # 0 when there are no targets (prediction)
    bint sparse
    const void *X                   # dense: (n_rows, n_features) floating;
                                    # sparse: the CSR values (nnz,) floating
    const int *indices              # CSR column indices (nnz,)
    const Py_ssize_t *indptr        # CSR row pointers (n_rows + 1,)
    const void *Y                   # (n_rows, n_outputs): floating, or
                                    # unsigned char when y_bytes (0/1 targets)
    bint y_bytes
    const void *sample_weight       # (n_rows,) floating, or NULL


cdef struct Chunk:
    # At most chunk_rows rows of a Rows, ready for the layers.
    Py_ssize_t n_rows
    const Py_ssize_t *row_ids       # which rows (n_rows,), or NULL: first,
    Py_ssize_t first                # first + 1, ..., first + n_rows - 1
    uint64_t stream_first           # the stream position of row 0 (dropout)
    const void *X                   # dense input rows (n_rows, n_features)
                                    # floating; unused for sparse input
    const void *Y                   # (n_rows, n_outputs) floating
    const void *sample_weight       # (n_rows,) floating, or NULL


cdef extern from *:
    """
    #if defined(__GNUC__)
    #define cbp_prefetch(address) __builtin_prefetch((address), 1, 3)
    #else
    #define cbp_prefetch(address) ((void) 0)
    #endif
    """
    void cbp_prefetch(const void *address) noexcept nogil


# A sparse first layer reads (or writes) one row of a coefficient matrix per
# non-zero, rows scattered over a matrix far larger than cache: each is
# fetched this many non-zeros ahead.
cdef enum:
    PREFETCH_AHEAD = 8


cdef inline void prefetch_rows(const Rows *data, const void *matrix,
                               Py_ssize_t row_bytes, Py_ssize_t p,
                               Py_ssize_t end) noexcept nogil:
    """Prefetch the matrix row (row_bytes long) of non-zero p + PREFETCH_AHEAD,
    when that non-zero is before end."""
    cdef Py_ssize_t q = p + PREFETCH_AHEAD, offset
    cdef const char *row
    if q < end:
        row = <const char *> matrix + <Py_ssize_t> data.indices[q] * row_bytes
        offset = 0
        while offset < row_bytes:
            cbp_prefetch(row + offset)
            offset += 64


cdef inline Py_ssize_t row_id(const Chunk *chunk, Py_ssize_t r) noexcept nogil:
    """The data row behind the chunk's row r."""
    if chunk.row_ids != NULL:
        return chunk.row_ids[r]
    return chunk.first + r


cdef inline bint drops(const NetSpec *net, Py_ssize_t k) noexcept nogil:
    """Whether hidden layer k applies dropout in this call (training only)."""
    return net.training and net.any_dropout and net.dropout[k] > 0


cdef inline const floating *network_input(const NetSpec *net, const Chunk *chunk,
                                          const floating *work) noexcept nogil:
    """What layer 0 reads before its input scaling: the chunk's dense input
    rows, or their numeric embedding (n rows, written by the forward pass)."""
    if net.embedding != NO_EMBEDDING:
        return work + net.embedded_offset
    return <const floating *> chunk.X


cdef inline const floating *layer_input(const NetSpec *net, const Chunk *chunk,
                                        const floating *work,
                                        Py_ssize_t l) noexcept nogil:
    """activations[l] as layer l reads them: the chunk's dense input for
    l == 0, else its block of work (after dropout, when hidden layer l - 1
    drops units); where layer l scales its input per member (r), the scaled
    rows instead (k * n rows, written by the forward pass)."""
    if net.r_offset[l] >= 0:
        return work + net.scaled_offset[l]
    if l == 0:
        return network_input(net, chunk, work)
    if drops(net, l - 1):
        return work + net.dropped_offset[l - 1]
    return work + net.activation_offset[l]


cdef inline const floating *unscaled_input(const NetSpec *net, const Chunk *chunk,
                                           const floating *work,
                                           Py_ssize_t l) noexcept nogil:
    """activations[l] before layer l's input scaling: the chunk's dense input
    (n rows, shared by the members) for l == 0, else k * n rows of work."""
    if l == 0:
        return network_input(net, chunk, work)
    if drops(net, l - 1):
        return work + net.dropped_offset[l - 1]
    return work + net.activation_offset[l]


cdef inline void matmul(const NetSpec *net, char trans_a, char trans_b,
                        int m, int n, int k, const floating *A, int lda,
                        const floating *B, int ldb, floating beta, floating *C,
                        int ldc) noexcept nogil:
    """C := op(A) @ op(B) + beta * C (row-major): the micro-kernels of
    _small_gemm.h when small, else BLAS (GEMV or GER when one dimension is
    1: GEMM would pack its operands). One row times a large matrix (a
    prediction) goes to GEMV, which streams the matrix once."""
    if m == 1 and trans_a == c'N' and <long long> n * k > SMALL_GEMV_WORK:
        # one row: C.T = op(B).T @ A.T, a column
        gemv_column(c'T' if trans_b == c'N' else c'N', c'T', n, k, <floating> 1.0,
                    B, ldb, A, 1, beta, C, 1)
    elif <long long> m * n * k <= (net.small_gemm_work if trans_b == c'N'
                                   else net.small_gemm_work_transposed):
        small_gemm(trans_a, trans_b, m, n, k, A, lda, B, ldb, beta, C, ldc)
    elif n == 1:
        gemv_column(trans_a, trans_b, m, k, <floating> 1.0, A, lda, B, ldb, beta,
                    C, ldc)
    elif k == 1:
        outer(trans_a, trans_b, m, n, <floating> 1.0, A, lda, B, ldb, beta, C, ldc)
    else:
        gemm(trans_a, trans_b, m, n, k, <floating> 1.0, A, lda, B, ldb, beta,
             C, ldc)
