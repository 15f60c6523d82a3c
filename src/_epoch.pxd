# The rows of an entry call, chunk by chunk: which rows, gathered where
# needed, checked, and what each chunk goes through (the forward pass, the
# loss, or the loss and its raw gradient: _chunks, the one chunk loop every
# entry point runs); the Ctrl-C check between chunks; and a training batch
# in fixed blocks of rows on OpenMP threads (Network's block_rows > 0).
# The entry points that call these (_kernel.pyx) check their arguments; here
# everything is trusted, runs without the GIL and allocates nothing.
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from cpython.exc cimport PyErr_CheckSignals
from libc.string cimport memcpy

from _backprop cimport chunk_gradient, chunk_loss
from _forward cimport forward
from _network cimport NetSpec, Rows, Chunk, cbp_prefetch
from _optimizers cimport (OptimizerSpec, LrRanges, UpdateStep, update_step,
                          update_tile, n_tiles, tile_bounds)


# --------------------------------------------------------------------------
# Chunks: which rows, gathered where needed
# --------------------------------------------------------------------------

cdef inline double _weight_sum(const floating *sw, const Py_ssize_t *row_ids,
                               Py_ssize_t first, Py_ssize_t n_rows) noexcept nogil:
    """sum of the sample weights sw of rows row_ids[:n_rows] (or first, ...,
    first + n_rows - 1), in row order; n_rows without weights (sw NULL)."""
    cdef Py_ssize_t r
    cdef double total = 0.0
    if sw == NULL:
        return n_rows
    for r in range(n_rows):
        total += sw[row_ids[r] if row_ids != NULL else first + r]
    return total


# The gather of shuffled dense rows fetches the row this many rows ahead of
# the one it copies: the rows are scattered over X, each a wait on memory
# otherwise. Measured on mnist's 60000 x 784 float32 sgd epoch (kernel
# alone, one thread): 263.6 ms without, 258.8 / 257.2 / 257.5 / 266.3 ms
# fetching 1 / 2 / 4 / 8 rows ahead.
cdef enum:
    _GATHER_AHEAD = 2


cdef inline void _prefetch_row(const void *row, Py_ssize_t n_bytes) noexcept nogil:
    cdef Py_ssize_t offset = 0
    cdef const char *start = <const char *> row
    while offset < n_bytes:
        cbp_prefetch(start + offset)
        offset += 64


cdef inline void _make_chunk(const NetSpec *net, const Rows *data,
                             const Py_ssize_t *row_ids, Py_ssize_t first,
                             Py_ssize_t n_rows, floating *work,
                             Chunk *chunk) noexcept nogil:
    """Fill chunk (out) with rows row_ids[:n_rows], or first, ..., first +
    n_rows - 1 when row_ids is NULL. Rows that are not contiguous in the data
    (and byte targets) are gathered into work's chunk buffers."""
    cdef Py_ssize_t r, i, j, d = data.n_features, k = data.n_outputs
    cdef floating *x_buffer = work + net.x_offset
    cdef floating *y_buffer = work + net.y_offset
    cdef floating *sw_buffer = work + net.sw_offset
    cdef const floating *X = <const floating *> data.X
    cdef const floating *Y = <const floating *> data.Y
    cdef const unsigned char *Y_bytes = <const unsigned char *> data.Y
    cdef const floating *sw = <const floating *> data.sample_weight
    chunk.n_rows = n_rows
    chunk.row_ids = row_ids
    chunk.first = first
    chunk.stream_first = 0
    if row_ids == NULL:
        chunk.X = NULL if data.sparse else <const void *> (X + first * d)
        chunk.Y = <const void *> (Y + first * k)
        chunk.sample_weight = NULL if sw == NULL else <const void *> (sw + first)
    else:
        # gather X[row_ids] (dense only: CSR rows are read where they are),
        # Y[row_ids] and sample_weight[row_ids]
        for r in range(n_rows):
            i = row_ids[r]
            if not data.sparse:
                if r + _GATHER_AHEAD < n_rows:
                    # rows are scattered over X: fetch one a few rows ahead
                    _prefetch_row(X + row_ids[r + _GATHER_AHEAD] * d, d * sizeof(floating))
                memcpy(x_buffer + r * d, X + i * d, d * sizeof(floating))
            if not data.y_bytes and k > 0:
                memcpy(y_buffer + r * k, Y + i * k, k * sizeof(floating))
            if sw != NULL:
                sw_buffer[r] = sw[i]
        chunk.X = NULL if data.sparse else <const void *> x_buffer
        chunk.Y = <const void *> y_buffer
        chunk.sample_weight = NULL if sw == NULL else <const void *> sw_buffer
    if data.y_bytes:
        # the chunk's 0/1 target rows, bytes to floating
        for r in range(n_rows):
            i = row_ids[r] if row_ids != NULL else first + r
            for j in range(k):
                y_buffer[r * k + j] = Y_bytes[i * k + j]
        chunk.Y = <const void *> y_buffer


cdef inline bint _all_finite(const floating *values, Py_ssize_t n) noexcept nogil:
    """Whether every one of n values is finite: x - x is 0 for a finite x and
    NaN for an infinity or a NaN (an integer OR of the comparisons, so that
    the loop vectorises)."""
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(n):
        bad |= (values[i] - values[i]) != 0
    return bad == 0


# --------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------

# Work (multiply-adds) between two checks for Ctrl-C: a few milliseconds of
# compute, so that an interrupt is seen within well under a second while the
# check itself costs nothing measurable.
cdef enum:
    _SIGNAL_CHECK_WORK = 33554432   # 2 ** 25


cdef inline int _check_signals(double *work_since_check, double work,
                               bint check_signals) except -1 nogil:
    """Count work (multiply-adds) done; after every _SIGNAL_CHECK_WORK of it,
    let Python run its signal handlers when check_signals (the main thread):
    Ctrl-C raises KeyboardInterrupt here."""
    work_since_check[0] += work
    if check_signals and work_since_check[0] >= _SIGNAL_CHECK_WORK:
        work_since_check[0] = 0.0
        with gil:
            PyErr_CheckSignals()
    return 0


cdef inline double _work_per_row(const NetSpec *net) noexcept nogil:
    """Multiply-adds of one row's forward and backward pass, roughly."""
    return net.row_work


# --------------------------------------------------------------------------
# The chunk loop
# --------------------------------------------------------------------------

cdef enum ChunkAction:  # what _chunks does with each chunk of rows
    CHUNK_FORWARD = 0   # the output rows, into out (prediction)
    CHUNK_LOSS = 1      # the weighted loss (out unused)
    CHUNK_GRADIENT = 2  # the weighted loss and the raw gradient sums, into out


cdef inline void _interleave_members(const NetSpec *net, Py_ssize_t n_rows,
                                     const floating *stacked,
                                     floating *out) noexcept nogil:
    """out[i, m * u : (m + 1) * u] = stacked[m * n_rows + i] for the k members'
    output rows (u = units[L]): in: stacked (k * n_rows, u), member-major;
    out: (n_rows, k * u), each row's members side by side."""
    cdef Py_ssize_t m, i, u = net.units[net.n_layers], K = net.members
    for i in range(n_rows):
        for m in range(K):
            memcpy(out + (i * K + m) * u, stacked + (m * n_rows + i) * u,
                   u * sizeof(floating))


cdef inline double _chunk(const NetSpec *net, const Rows *rows, int action,
                          const Py_ssize_t *row_ids, Py_ssize_t first,
                          Py_ssize_t n_rows, unsigned long long stream_first,
                          const floating *params, floating *out, floating *work,
                          bint check_finite, bint accumulate,
                          bint first_block_zero, int *bad) noexcept nogil:
    """One chunk: rows row_ids[:n_rows] (or first, ..., first + n_rows - 1
    when row_ids is NULL), at position stream_first of the dropout stream,
    gathered into work, checked, and through ``action``. Returns the chunk's
    weighted loss (0 for CHUNK_FORWARD). out: CHUNK_FORWARD: the chunk's
    output rows (n_rows, units[L]); CHUNK_GRADIENT: the raw sums (written,
    or added to when accumulate; see chunk_gradient). With k members
    the forward output rows are (n_rows, k * units[L]), each row's members
    side by side. bad[0] = 1, and
    nothing computed, if check_finite finds a NaN or an infinity in the
    chunk's (dense) input rows, else 0."""
    cdef Chunk chunk
    _make_chunk(net, rows, row_ids, first, n_rows, work, &chunk)
    chunk.stream_first = stream_first
    bad[0] = check_finite and not _all_finite(<const floating *> chunk.X,
                                              n_rows * rows.n_features)
    if bad[0]:
        return 0.0
    if action == CHUNK_FORWARD:
        if net.members == 1:
            forward(net, rows, &chunk, params, work, out)
        else:
            forward(net, rows, &chunk, params, work,
                    work + net.activation_offset[net.n_layers])
            _interleave_members(net, n_rows, work + net.activation_offset[net.n_layers],
                                out)
        return 0.0
    if action == CHUNK_LOSS:
        return chunk_loss(net, rows, &chunk, params, work)
    return chunk_gradient(net, rows, &chunk, params, out, work, accumulate,
                          first_block_zero)


cdef inline int _chunks(const NetSpec *net, const Rows *rows, int action,
                        const Py_ssize_t *row_ids, Py_ssize_t first,
                        Py_ssize_t n_rows, unsigned long long stream,
                        const floating *params, floating *out, floating *work,
                        bint check_finite, bint first_block_zero,
                        double *work_since_check, bint check_signals,
                        double *loss, int *bad) except -1 nogil:
    """The rows row_ids[:n_rows] (or first, ..., first + n_rows - 1), in
    chunks of at most net.chunk_rows, in order, each through ``action``
    (_chunk); row j of them is at position stream + first + j of the dropout
    stream. out: loss[0], the sum of the chunks' weighted losses; for
    CHUNK_FORWARD, out's rows (n_rows, k * units[L]); for CHUNK_GRADIENT, out
    (n_params,) the raw sums of all the rows (the first chunk writes them,
    the others add). bad[0] = 1 at the first chunk whose input is not
    finite (check_finite), which stops the loop. Ctrl-C (check_signals)
    raises KeyboardInterrupt between chunks."""
    cdef Py_ssize_t c = 0, m
    cdef Py_ssize_t n_out = net.members * net.units[net.n_layers]
    loss[0] = 0.0
    bad[0] = 0
    while c < n_rows:
        m = min(net.chunk_rows, n_rows - c)
        loss[0] += _chunk(
            net, rows, action, row_ids + c if row_ids != NULL else NULL,
            first + c, m, stream + <unsigned long long> (first + c), params,
            out + c * n_out if action == CHUNK_FORWARD else out, work,
            check_finite, c > 0, first_block_zero, bad)
        if bad[0]:
            return 0
        c += m
        _check_signals(work_since_check, _work_per_row(net) * m, check_signals)
    return 0


# --------------------------------------------------------------------------
# A batch in fixed blocks of rows, on threads (Network's block_rows > 0)
#
# Block b holds the batch's rows b * B, ..., min((b + 1) * B, n) - 1 (B =
# block_rows). Each block's loss and raw gradient are computed on their own
# -- block 0's into grads, block b's into block_grads[b - 1] -- by whichever
# thread the static schedule gives it, with that thread's own work; then
#     grads = ((grads + block_grads[0]) + block_grads[1]) + ...
# element by element, and the loss is the sum of the block losses in block
# order. Nothing in that arithmetic depends on the number of threads. BLAS
# runs single-threaded inside the blocks (the caller limits it, as
# scikit-learn's k-means does around its own prange). Blocks of fewer
# multiply-adds than net.min_block_work run on one thread.
# --------------------------------------------------------------------------

cdef extern from *:
    """
    /* Every thread of the enclosing parallel region waits here for the
       others (an orphaned barrier): Cython's prange inside a parallel block
       ends without one ("omp for nowait"). */
    static inline void cbp_barrier(void) {
    #ifdef _OPENMP
        #pragma omp barrier
    #endif
    }
    """
    void cbp_barrier() noexcept nogil


# Training flushes denormal numbers (below 1.2e-38 in float32, 2.2e-308 in
# float64) to zero, as torch.set_flush_denormal(True) does: arithmetic on
# them takes a slow path in the CPU, ~25x (measured: Adam's update 0.52 ns a
# parameter, 12.5 ns when g * g underflows), and tiny gradients reach them
# in every epoch of a network with a few hundred thousand weights. Every
# thread that trains sets the mode (SSE's FTZ and DAZ bits) and puts the
# caller's back when it is done; elsewhere (other CPUs) nothing changes.
cdef extern from *:
    """
    #if defined(__SSE2__) || defined(_M_X64)
    #include <xmmintrin.h>
    static inline unsigned int cbp_flush_denormals(void) {
        unsigned int mode = _mm_getcsr();
        _mm_setcsr(mode | 0x8040);  /* flush to zero (bit 15), denormals are zero (bit 6) */
        return mode;
    }
    static inline void cbp_restore_float_mode(unsigned int mode) { _mm_setcsr(mode); }
    #else
    static inline unsigned int cbp_flush_denormals(void) { return 0; }
    static inline void cbp_restore_float_mode(unsigned int mode) { (void) mode; }
    #endif
    """
    unsigned int cbp_flush_denormals() noexcept nogil
    void cbp_restore_float_mode(unsigned int mode) noexcept nogil


cdef inline void _add_blocks(floating *grads, const floating *block_grads,
                             Py_ssize_t n_params, Py_ssize_t n_blocks,
                             Py_ssize_t tile, Py_ssize_t n_coefs) noexcept nogil:
    """grads += block_grads[b - 1] for b = 1, ..., n_blocks - 1, in that
    order, over update_tile's tile number ``tile``."""
    cdef Py_ssize_t b, i, start, stop
    cdef const floating *block
    tile_bounds(tile, n_params, n_coefs, &start, &stop)
    for b in range(1, n_blocks):
        block = block_grads + (b - 1) * n_params
        for i in range(start, stop):
            grads[i] += block[i]


cdef inline bint _train_batch_in_blocks(
        const NetSpec *net, const OptimizerSpec *opt, const LrRanges *ranges,
        const Rows *rows, const Py_ssize_t *batch_ids, Py_ssize_t start,
        Py_ssize_t n_rows, unsigned long long stream, floating *params,
        floating *grads, floating *velocities, floating *ms, floating *vs,
        floating s, Py_ssize_t t,
        floating *block_grads, floating *work, Py_ssize_t work_size,
        double *block_losses, double *tile_norms, int *bad, bint check_finite,
        int n_threads, double *loss, double *norm) noexcept nogil:
    """One batch of n_rows rows in blocks (see above): the blocks' gradients,
    their sum (into grads), and the optimizer's update number t of params
    and its named state vectors (update()'s velocities, ms, vs; ranges its
    learning-rate factors) -- on n_threads threads, in one parallel region. The
    batch starts at row start of the epoch, whose rows are batch_ids[...]
    (or start + ... when batch_ids is NULL); the epoch starts at position
    stream of the dropout stream.

    Returns whether every block's input is finite (check_finite); when not,
    nothing is updated. out: loss, the batch's weighted loss; norm,
    sum_l ||coefs[l]||^2 before the update (as update() returns it).
    Scratch: block_grads (n_blocks - 1) * n_params values, work n_threads *
    work_size, block_losses and bad (n_blocks,), tile_norms
    (n_tiles(n_params, n_coefs),).
    """
    cdef Py_ssize_t B = net.block_rows, n = net.n_params, n_coefs = net.n_coefs
    cdef Py_ssize_t n_blocks = (n_rows + B - 1) // B, tiles = n_tiles(n, n_coefs)
    cdef Py_ssize_t b, k, tile
    cdef int threads = <int> min(<Py_ssize_t> n_threads, n_blocks), any_bad
    cdef unsigned int float_mode
    cdef floating alpha = <floating> net.alpha
    cdef UpdateStep step = update_step(opt, t)
    if _work_per_row(net) * B < net.min_block_work:
        threads = 1
    with parallel(num_threads=threads):
        float_mode = cbp_flush_denormals()  # (each thread's own)
        for b in prange(n_blocks, schedule="static"):
            block_losses[b] = _chunk(
                net, rows, CHUNK_GRADIENT,
                batch_ids + b * B if batch_ids != NULL else NULL,
                start + b * B, min(B, n_rows - b * B),
                stream + <unsigned long long> (start + b * B), params,
                grads if b == 0 else block_grads + (b - 1) * n,
                work + threadid() * work_size, check_finite, False, False,
                bad + b)
        cbp_barrier()  # every block's gradient is written
        any_bad = 0
        for k in range(n_blocks):
            any_bad = any_bad | bad[k]
        for tile in prange(tiles, schedule="static"):
            if not any_bad:
                _add_blocks(grads, block_grads, n, n_blocks, tile, n_coefs)
                tile_norms[tile] = update_tile(opt, ranges, params, grads,
                                               velocities, ms, vs, tile, n,
                                               n_coefs, alpha, s, &step)
        cbp_restore_float_mode(float_mode)
    for b in range(n_blocks):
        if bad[b]:
            return False
    loss[0] = 0.0
    for b in range(n_blocks):
        loss[0] += block_losses[b]
    norm[0] = 0.0
    for tile in range(tiles):
        norm[0] += tile_norms[tile]
    return True
