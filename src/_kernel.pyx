# cython: language_level=3
"""The compiled backpropagation kernel of cbp.

Three objects describe a training run, each built once per fit:

    Network(units, activation, loss, alpha, sparse_input, chunk_rows)
        the layers, their activations, the loss and its L2 penalty, and the
        rows that go through the layers at once (src/_network.pxd's NetSpec)
    Optimizer(kind, params, learning_rate, ...)
        the update rule, its hyper-parameters and its state vectors
        (src/_optimizers.pxd's OptimizerSpec)
    Data(X, Y=None, sample_weight=None)
        the rows: X dense (n, n_features) or CSR, targets as floating or as
        0/1 bytes, optional sample weights (src/_network.pxd's Rows)

and three entry points run it, each with the GIL released:

    forward(net, data, params, out, work)            prediction
    loss_grad(net, data, params, grads, work) -> J   full-batch loss, gradient
    data_loss(net, data, params, work) -> J          the loss alone, no L2
    train_epoch(net, optimizer, data, order, batch_size, params, grads, work)
        -> sum over batches of (batch loss * batch rows); one epoch of
        mini-batch updates of params, in place

A network of L layers has units = (n_features, n_hidden_1, ..., n_outputs).
Layer l maps activations[l] (rows, units[l]) to activations[l + 1]:

    z = activations[l] @ coefs[l] + intercepts[l]        (src/_forward.pxd)
    activations[l + 1] = g(z)                            (src/_activations.pxd)

and the gradient runs back through the delta recursion (src/_backprop.pxd)
from the loss's delta^L (src/_losses.pxd). Parameters, gradients and
optimizer state are flat vectors of n_params values (layout: _network.pxd).

A batch of more than chunk_rows rows goes through the layers chunk by chunk,
its gradient summed over the chunks: the scratch memory ``work``
(Network.workspace_size) holds one chunk, whatever the batch size, and Ctrl-C
is looked at between chunks. Nothing is allocated per batch.

With the Network's block_rows > 0, train_epoch takes each batch in fixed
blocks of rows instead, whose gradients are computed on OpenMP threads and
summed in block order, then shares the update among the threads: the result
does not depend on the number of threads (see "A batch in fixed blocks of
rows" below).

Every function here trusts the values it is given (finite, CSR indices in
range): cbp's Python layer validates them. The objects check dtypes, shapes
and codes, O(1) per call.
"""
from cython cimport floating
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from libc.stdlib cimport malloc, free
from libc.string cimport memset

import threading

import numpy as np

from _activations cimport (activate, multiply_derivative, needs_z,
                           hidden_activation_codes, output_activation_codes)
from _activations cimport (LEAKY_SLOPE as _LEAKY_SLOPE, SELU_ALPHA as _SELU_ALPHA,
                           SELU_SCALE as _SELU_SCALE)
from _blas cimport SMALL_GEMM_VECTOR_BYTES, gemm, small_gemm
from _backprop cimport scale_gradient, squared_norm_of_coefs, zero_touched_rows
from _epoch cimport (_chunks, _make_chunk, _all_finite, _weight_sum,
                     _check_signals, _work_per_row, _train_batch_in_blocks,
                     cbp_flush_denormals, cbp_restore_float_mode,
                     CHUNK_FORWARD, CHUNK_LOSS, CHUNK_GRADIENT)
from _forward cimport forward as forward_chunk
from _losses cimport (LossSpec, loss_and_output_delta, loss_codes,
                      loss_output_activations)
from _network cimport (NetSpec, Rows, Chunk, FORWARD, BACKWARD, EPOCH,
                      OFFSETS_PER_LAYER, lay_out, embedding_codes, NO_EMBEDDING,
                      PERIODIC)
from _optimizers cimport (OptimizerSpec, LrRanges, UpdateStep, hyper_parameter_defaults,
                          update, update_step, update_tile, n_tiles, sgd_update,
                          adam_update,
                          optimizer_codes, optimizer_states,
                          hyper_parameter_error, ADAMW)

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

cdef extern from *:
    """
    static int cbp_cpu_has_avx512f(void) {
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
        __builtin_cpu_init();
        return cbp_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f");
    #else
        return 0;
    #endif
    }
    """
    int cbp_cpu_has_avx512f() nogil


def cpu_has_avx2_fma():
    """Whether this CPU (and OS) run AVX2 and FMA code: _kernel_avx2 works."""
    return bool(cbp_cpu_has_avx2_fma())


def cpu_has_avx512f():
    """Whether this CPU (and OS) run AVX-512F code as well: _kernel_avx512
    works."""
    return bool(cbp_cpu_has_avx512f())


def vector_bytes():
    """The width of this build's vectors in the small products'
    micro-kernels (src/_small_gemm.h): 16, 32 or 64 bytes; 0 without
    vector extensions (plain loops)."""
    return SMALL_GEMM_VECTOR_BYTES


cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int cbp_openmp_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int cbp_openmp_max_threads(void) { return 1; }
    #endif
    """
    int cbp_openmp_max_threads() nogil


def openmp_max_threads():
    """The OpenMP runtime's thread count for a parallel region started now
    (OMP_NUM_THREADS, or threadpoolctl's limit on "openmp"); 1 when the
    kernel was built without OpenMP."""
    return cbp_openmp_max_threads()


# Names the Python package uses, and the codes the loops branch on; each
# table lives beside its enum (the .pxd of its mathematics).
HIDDEN_ACTIVATIONS = hidden_activation_codes()
OUTPUT_ACTIVATIONS = output_activation_codes()
ACTIVATION_CODES = {**HIDDEN_ACTIVATIONS, **OUTPUT_ACTIVATIONS}
LOSS_CODES = loss_codes()
LOSS_OUTPUT = loss_output_activations()     # each loss's output activation
OPTIMIZER_CODES = optimizer_codes()
OPTIMIZER_STATE = optimizer_states()        # each optimizer's state vectors
EMBEDDINGS = embedding_codes()              # the numeric embeddings of the input

# The activations' constants (src/_activations.pxd), for what Python builds
# from them (the ONNX forms): leaky_relu's negative slope, selu's alpha, scale
LEAKY_SLOPE = _LEAKY_SLOPE
SELU_ALPHA = _SELU_ALPHA
SELU_SCALE = _SELU_SCALE

# Workspace parts (Network.workspace_size)
FORWARD_PART, BACKWARD_PART, EPOCH_PART = FORWARD, BACKWARD, EPOCH

# Tuning knobs, copied into the NetSpec of each entry call (Network.for_call):
# the nogil code reads them there. tests/kernel_paths.py moves them
# (set_small_gemm_work below, set_min_block_work in _testing.pxi).
#
# Matrix products of at most these many multiply-adds (m * n * k) run in the
# micro-kernels of src/_small_gemm.h: A @ B and A.T @ B up to the first,
# A @ B.T up to the second; larger ones in BLAS, which packs its operands
# per call for a faster inner loop. cbp/_dispatch.py sets both for the BLAS
# in use when it picks a build (set_small_gemm_work), with the measurements
# that chose them; these defaults are those for a BLAS that packs.
cdef long long _small_gemm_work = 1 << 20
cdef long long _small_gemm_work_transposed = 1 << 24


def set_small_gemm_work(long long work, transposed=None):
    """Set the micro-kernels' thresholds (m * n * k): products A @ B and
    A.T @ B of at most ``work`` multiply-adds, A @ B.T of at most
    ``transposed`` (default: ``work`` as well) run in the micro-kernels,
    larger ones in BLAS. Returns the previous (work, transposed).
    cbp/_dispatch.py sets them for the BLAS in use; tests and benchmarks
    move them (0 sends every product to BLAS). Read by each entry point when
    it is called (Network.for_call)."""
    global _small_gemm_work, _small_gemm_work_transposed
    previous = (_small_gemm_work, _small_gemm_work_transposed)
    _small_gemm_work = work
    _small_gemm_work_transposed = work if transposed is None else transposed
    return previous


# Blocks of fewer multiply-adds than this run on one thread: below it, a
# parallel region costs more than it saves. Measured (2 cores, an sgd epoch
# of 20000 rows, blocks on 1 vs 2 threads, with set_min_block_work(0)):
# 2 threads took 0.99x / 0.95x / 0.88x / 0.77x the time at blocks of 27 / 150
# / 300 / 1944 multiply-adds (networks (2, 2, 1), (4, 4, 1), (8, 8, 1)), and
# 0.62x from 200000 up.
cdef double _min_block_work = 256


cdef const void *_address(object array) except? NULL:
    """The first byte of a C-contiguous array (the caller keeps it alive)."""
    cdef Py_buffer view
    cdef const void *address
    PyObject_GetBuffer(array, &view, PyBUF_SIMPLE)
    address = view.buf
    PyBuffer_Release(&view)
    return address


def _name(str kind, str name, dict allowed):
    if name not in allowed:
        raise ValueError(f"unknown {kind} {name!r}; expected one of {sorted(allowed)}")
    return allowed[name]


cdef LossSpec _loss_spec(str loss, double huber_delta) except *:
    """The LossSpec of a loss name (None: no loss, kind -1) and its
    parameters, checked."""
    cdef LossSpec spec
    if not huber_delta > 0:
        raise ValueError(f"huber_delta must be > 0, got {huber_delta}")
    spec.kind = -1 if loss is None else _name("loss", loss, LOSS_CODES)
    spec.huber_delta = huber_delta
    return spec


# --------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------

cdef class Network:
    """The compiled description of a network, built once per fit.

    Parameters
    ----------
    units : sequence of int, (L + 1,)
        Layer widths, input first: (n_features, *hidden_layer_sizes, n_outputs).
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'gelu',
                  'silu', 'selu', 'mish'}
        The hidden layers' activation.
    loss : {'squared_error', 'log_loss', 'binary_log_loss', 'poisson',
            'absolute_error', 'huber'} or None
        The loss trained with; its output activation is LOSS_OUTPUT[loss].
        None: a network for prediction only (forward), whose ``output``
        must be given.
    output : {'identity', 'logistic', 'softmax', 'exp'} or None
        The output activation; if given with a loss, it must be the loss's.
    huber_delta : float > 0
        The Huber loss's delta (the other losses ignore it).
    alpha : float >= 0
        L2 penalty on the coefs (not the intercepts).
    sparse_input : bool
        The first layer reads CSR rows (Data of a sparse X).
    chunk_rows : int >= 1
        Rows that go through the layers at once; the workspace holds that
        many, and larger batches are summed chunk by chunk (with batch_norm,
        every training batch must fit in one chunk: its statistics are the
        batch's).
    batch_norm : bool
        Every hidden layer normalises z (src/_layers.pxd): gamma and beta
        are trained parameters, the running means and variances state kept
        after them in params (layout: src/_network.pxd).
    batch_norm_momentum, batch_norm_eps : float
        torch.nn.BatchNorm1d's momentum (0 < m <= 1) and eps (> 0).
    dropout : None or sequence of L - 1 floats in [0, 1)
        Each hidden layer's dropout rate in training.
    dropout_seed : int in [0, 2**64)
        The dropout masks' key.
    block_rows : int >= 0
        0: train_epoch sums a batch's gradient chunk by chunk, in order. > 0:
        it splits each batch into fixed blocks of this many rows (the last
        shorter), computes each block's gradient on its own -- in parallel
        on train_epoch's n_threads -- and sums them in block order, so that
        the result does not depend on the number of threads. chunk_rows is
        then block_rows. Dense input only, no batch normalisation.
    members : int >= 1
        k: an ensemble of k networks trained as one (TabM's forms): every
        member's rows go through the layers stacked, and the loss is the
        mean of the members' losses (layout: src/_network.pxd). 1: a plain
        network.
    layer_kinds : None or (L, 4) array of 0/1
        Per layer: its own weights per member, its own intercepts per
        member, an input scaling r per member, an output scaling s per
        member (cbp/_options.py's ENSEMBLES make them). None: all 0.
    embedding : None, 'periodic' or 'piecewise_linear'
        A trained numeric embedding of the first k = embedded_features input
        columns before layer 0 (src/_embeddings.pxd), shared by the members:
        layer 0 reads units[0] = k * d + n_features - k values per row (d,
        the embedding size, is (units[0] - n_features + k) / k). 'periodic': rtdl's PeriodicEmbeddings
        (lite=False, with its ReLU), n_frequencies frequencies per feature;
        'piecewise_linear': rtdl's PiecewiseLinearEmbeddings (version 'B',
        no activation) over n_bins bins per feature, whose affine maps are
        buffers of params (set by the caller: layout()'s 'bin_weights',
        'bin_biases', 'bin_counts'). Dense input only.
    n_features : int >= 1
        The input's columns, with an embedding (without, units[0]).
    embedded_features : int in [0, n_features]
        With an embedding, only columns 0..k-1 (k = embedded_features; 0:
        all) are embedded; the others are passed to layer 0 unchanged, after
        the embeddings: units[0] = k * d + (n_features - k).
    n_frequencies : int >= 1
        The periodic embedding's frequencies per feature.
    n_bins : int >= 1
        The piecewise-linear embedding's bins per feature (the most any
        feature has; rtdl's max_n_bins).

    Attribute ``stream_position`` (public): the rows trained on so far, the
    dropout stream's position; train_epoch advances it by the epoch's rows.
    """
    cdef NetSpec spec
    cdef readonly object units          # (L + 1,) intp, read-only
    cdef readonly str activation, output, loss
    cdef readonly object dropout        # (L - 1,) float64, read-only
    cdef readonly object layer_kinds    # (L, 4) intp, read-only
    cdef readonly str embedding         # None, or EMBEDDINGS's name
    cdef readonly Py_ssize_t embedded_features  # k: the embedded columns
    cdef public unsigned long long stream_position

    def __cinit__(self, units, str activation="identity", str loss=None,
                  double alpha=0.0, bint sparse_input=False,
                  Py_ssize_t chunk_rows=1, *, str output=None,
                  double huber_delta=1.0, bint batch_norm=False,
                  double batch_norm_momentum=0.1, double batch_norm_eps=1e-5,
                  dropout=None, unsigned long long dropout_seed=0,
                  Py_ssize_t block_rows=0, Py_ssize_t members=1,
                  layer_kinds=None, str embedding=None, Py_ssize_t n_features=0,
                  Py_ssize_t n_frequencies=0, Py_ssize_t n_bins=0,
                  Py_ssize_t embedded_features=0):
        cdef Py_ssize_t L, l, M = block_rows if block_rows > 0 else chunk_rows
        cdef const Py_ssize_t[::1] u
        cdef const double[::1] rates
        cdef const Py_ssize_t[:, ::1] kinds
        self.spec.coef_offset = NULL
        given = np.asarray(units)
        if given.dtype.kind not in "iu" and not (
                given.dtype.kind == "f" and np.all(given == np.round(given))):
            raise ValueError(f"units must be integers, got {given.tolist()}")
        units = np.array(given, dtype=np.intp)
        if units.ndim != 1 or units.shape[0] < 2:
            raise ValueError("a network needs at least one layer (len(units) >= 2)")
        for l in range(units.shape[0]):
            if units[l] < 1:
                raise ValueError(f"units[{l}] = {units[l]}: every layer needs >= 1 unit")
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        if block_rows < 0:
            raise ValueError(f"block_rows must be >= 1, or 0 (no blocks), got {block_rows}")
        if block_rows > 0 and (batch_norm or sparse_input):
            raise ValueError(
                "block_rows needs dense input and no batch normalisation: "
                + ("batch statistics are the whole batch's" if batch_norm else
                   "sparse input trains its first layer from the non-zeros alone"))
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.spec.loss = _loss_spec(loss, huber_delta)
        units.setflags(write=False)
        self.units = units
        if loss is None and output is None:
            raise ValueError("a network needs a loss, or an output activation "
                             "(prediction only)")
        if loss is not None:
            if output is not None and output != LOSS_OUTPUT[loss]:
                raise ValueError(f"loss {loss!r} needs the output activation "
                                 f"{LOSS_OUTPUT[loss]!r}, got {output!r}")
            output = LOSS_OUTPUT[loss]
        self.activation, self.loss, self.output = activation, loss, output
        u = units
        L = units.shape[0] - 1
        self.spec.n_layers = L
        self.spec.units = &u[0]
        self.spec.activation = _name("hidden activation", activation, HIDDEN_ACTIVATIONS)
        self.spec.output = _name("output activation", output, OUTPUT_ACTIVATIONS)
        self.spec.alpha = alpha
        self.spec.sparse_input = sparse_input
        self.spec.chunk_rows = M
        self.spec.block_rows = block_rows
        self.spec.small_gemm_work = _small_gemm_work
        self.spec.small_gemm_work_transposed = _small_gemm_work_transposed
        self.spec.min_block_work = _min_block_work
        if not (0 < batch_norm_momentum <= 1 and batch_norm_eps > 0):
            raise ValueError("batch normalisation needs 0 < momentum <= 1 and eps > 0, "
                             f"got {batch_norm_momentum} and {batch_norm_eps}")
        self.spec.batch_norm = batch_norm
        self.spec.batch_norm_momentum = batch_norm_momentum
        self.spec.batch_norm_eps = batch_norm_eps
        dropout = np.zeros(L - 1) if dropout is None else np.array(dropout, dtype=np.float64)
        if dropout.shape != (L - 1,) or not np.all((dropout >= 0) & (dropout < 1)):
            raise ValueError(f"dropout must be {L - 1} rates in [0, 1), one per "
                             f"hidden layer, got {dropout.tolist()}")
        dropout.setflags(write=False)
        self.dropout = dropout
        rates = dropout
        self.spec.dropout = &rates[0] if L > 1 else NULL
        self.spec.any_dropout = bool(np.any(dropout > 0))
        self.spec.dropout_seed = dropout_seed
        self.stream_position = 0
        self.spec.training = False
        self.spec.update_running = False
        self.spec.keep_z = False

        if members < 1:
            raise ValueError(f"members must be >= 1, got {members}")
        self.spec.members = members
        layer_kinds = (np.zeros((L, 4), dtype=np.intp) if layer_kinds is None
                       else np.array(layer_kinds, dtype=np.intp))
        if layer_kinds.shape != (L, 4) or not np.all((layer_kinds == 0) | (layer_kinds == 1)):
            raise ValueError(f"layer_kinds must be ({L}, 4) zeros and ones, got "
                             f"{layer_kinds.tolist()}")
        layer_kinds.setflags(write=False)
        self.layer_kinds = layer_kinds
        kinds = layer_kinds

        self.spec.embedding = NO_EMBEDDING
        self.spec.n_features = units[0]
        self.spec.embedded_features = units[0]
        self.spec.embedding_size = 1
        self.spec.encoding_width = 0
        if embedding is not None:
            self.spec.embedding = _name("numeric embedding", embedding, EMBEDDINGS)
            if sparse_input:
                raise ValueError("a numeric embedding needs dense input")
            if embedded_features == 0:
                embedded_features = n_features
            if n_features < 1 or not 1 <= embedded_features <= n_features:
                raise ValueError(f"embedded_features must be in [1, n_features="
                                 f"{n_features}], got {embedded_features}")
            if (units[0] <= n_features - embedded_features
                    or (units[0] - (n_features - embedded_features)) % embedded_features):
                raise ValueError(f"an embedding of embedded_features={embedded_features} "
                                 f"of n_features={n_features} columns needs units[0] = "
                                 f"embedded_features * d + n_features - embedded_features, "
                                 f"got {units[0]}")
            self.spec.n_features = n_features
            self.spec.embedded_features = embedded_features
            self.spec.embedding_size = (units[0] - (n_features - embedded_features)) // embedded_features
            if self.spec.embedding == PERIODIC:
                if n_frequencies < 1:
                    raise ValueError(f"n_frequencies must be >= 1, got {n_frequencies}")
                self.spec.encoding_width = 2 * n_frequencies
            else:
                if n_bins < 1:
                    raise ValueError(f"n_bins must be >= 1, got {n_bins}")
                self.spec.encoding_width = n_bins
        self.embedding = embedding
        self.embedded_features = self.spec.embedded_features

        self.spec.coef_offset = <Py_ssize_t *> malloc(OFFSETS_PER_LAYER * (L + 1)
                                                      * sizeof(Py_ssize_t))
        if self.spec.coef_offset == NULL:
            raise MemoryError()
        lay_out(&self.spec, &rates[0] if L > 1 else NULL,
                needs_z(self.spec.activation), &kinds[0, 0])

    def __dealloc__(self):
        free(self.spec.coef_offset)

    @property
    def n_layers(self):
        return self.spec.n_layers

    @property
    def n_params(self):
        """The trained values: the length of grads and of the optimizer's
        state, the first n_params values of params."""
        return self.spec.n_params

    @property
    def n_values(self):
        """Length of the flat parameter vector: n_params, then (batch_norm)
        the running statistics."""
        return self.spec.n_values

    @property
    def members(self):
        return self.spec.members

    @property
    def n_features(self):
        """The input's columns (units[0], or what an embedding reads)."""
        return self.spec.n_features

    def layout(self):
        """{name: [(offset, shape) or None per layer]} of the flat vector:
        'coefs', 'intercepts', 'input_scalings', 'output_scalings'; with
        an embedding 'embedding_coefs', 'embedding_intercepts' and
        'embedding_frequencies' (periodic) or 'embedding_slopes',
        'bin_weights', 'bin_biases', 'bin_counts' (piecewise; one entry
        each); with batch_norm 'gammas',
        'betas', 'running_means', 'running_vars' (per hidden layer) -- the layout lay_out computed (tests compare it with
        cbp/_network.py's)."""
        cdef Py_ssize_t l, L = self.spec.n_layers, K = self.spec.members
        units = [int(v) for v in self.units]
        def part(offset, count, *shape):
            if offset < 0:
                return None
            return (offset, ((count,) if count > 1 else ()) + shape)
        result = {
            "coefs": [part(self.spec.coef_offset[l], self.spec.coef_count[l],
                           units[l], units[l + 1]) for l in range(L)],
            "intercepts": [part(self.spec.intercept_offset[l],
                                self.spec.intercept_count[l], units[l + 1])
                           for l in range(L)],
            "input_scalings": [part(self.spec.r_offset[l], K, units[l])
                               for l in range(L)],
            "output_scalings": [part(self.spec.s_offset[l], K, units[l + 1])
                                for l in range(L)],
        }
        if self.spec.embedding != NO_EMBEDDING:
            # the numeric embedding: one entry each, before layer 0
            F, d = self.spec.embedded_features, self.spec.embedding_size
            w = self.spec.encoding_width
            if self.spec.embedding == PERIODIC:
                result["embedding_frequencies"] = [part(self.spec.frequency_offset, 1,
                                                        F, w // 2)]
            else:
                result["embedding_slopes"] = [part(self.spec.slope_offset, 1, F, d)]
                result["bin_weights"] = [part(self.spec.bin_weight_offset, 1, F, w)]
                result["bin_biases"] = [part(self.spec.bin_bias_offset, 1, F, w)]
                result["bin_counts"] = [part(self.spec.bin_count_offset, 1, F)]
            result["embedding_coefs"] = [part(self.spec.embedding_coef_offset, 1,
                                              F, w, d)]
            result["embedding_intercepts"] = [part(self.spec.embedding_intercept_offset,
                                                   1, F, d)]
        if self.spec.batch_norm:
            # (gamma, beta, running mean, running var tables: L values apart)
            for i, name in enumerate(("gammas", "betas", "running_means",
                                      "running_vars")):
                result[name] = [part(self.spec.gamma_offset[i * L + l], K, units[l + 1])
                                for l in range(L - 1)]
        return result

    @property
    def alpha(self):
        return self.spec.alpha

    @property
    def huber_delta(self):
        return self.spec.loss.huber_delta

    @property
    def sparse_input(self):
        return bool(self.spec.sparse_input)

    @property
    def block_rows(self):
        return self.spec.block_rows

    @property
    def chunk_rows(self):
        return self.spec.chunk_rows

    def workspace_size(self, int part):
        """Length of the ``work`` vector: FORWARD_PART (prediction),
        BACKWARD_PART (loss and gradient) or EPOCH_PART (training epochs)."""
        if part not in (FORWARD, BACKWARD, EPOCH):
            raise ValueError(f"part must be FORWARD_PART, BACKWARD_PART or "
                             f"EPOCH_PART, got {part}")
        return self.spec.work_size[part]

    def workspace_views(self, work, Py_ssize_t n_rows):
        """(activations[1..L], deltas[0..L-1]) of the last chunk, n_rows rows
        (k * n_rows with k members, member-major), as NumPy views of work
        (tests)."""
        cdef Py_ssize_t l
        units = self.units
        if not 0 <= n_rows <= self.spec.chunk_rows:
            raise ValueError(f"n_rows must be in [0, {self.spec.chunk_rows}]")
        n_rows *= self.spec.members
        base = np.asarray(work)
        activations = [
            base[self.spec.activation_offset[l]:
                 self.spec.activation_offset[l] + n_rows * units[l]]
            .reshape(n_rows, units[l]) for l in range(1, self.spec.n_layers + 1)]
        deltas = [
            base[self.spec.delta_offset[l]:
                 self.spec.delta_offset[l] + n_rows * units[l + 1]]
            .reshape(n_rows, units[l + 1]) for l in range(self.spec.n_layers)]
        return activations, deltas

    def layer_views(self, work, Py_ssize_t n_rows):
        """{'x_hat', 'mask', 'dropped'}: per hidden layer, the last training
        chunk's normalised z, dropout mask (0 or 1 / (1 - p)) and dropped
        activations, n_rows rows, as NumPy views of work, or None where the
        layer has no such step (tests)."""
        cdef Py_ssize_t k
        if not 0 <= n_rows <= self.spec.chunk_rows:
            raise ValueError(f"n_rows must be in [0, {self.spec.chunk_rows}]")
        n_rows *= self.spec.members
        base = np.asarray(work)
        views = {"x_hat": [], "mask": [], "dropped": []}
        for k in range(self.spec.n_layers - 1):
            u = self.units[k + 1]
            for name, offset in (("x_hat", self.spec.x_hat_offset[k]),
                                 ("mask", self.spec.mask_offset[k]),
                                 ("dropped", self.spec.dropped_offset[k])):
                views[name].append(None if offset < 0 else
                                   base[offset:offset + n_rows * u].reshape(n_rows, u))
        return views

    cdef NetSpec for_call(self, Py_ssize_t n_values, Py_ssize_t n_work,
                          int part, bint training=False,
                          bint update_running=False) except *:
        """The spec to run with, after the size checks of one entry call, in
        training mode (batch statistics, dropout) or not."""
        cdef NetSpec spec = self.spec
        if part != FORWARD and spec.loss.kind < 0:
            raise ValueError("this network has no loss (prediction only)")
        if n_values != spec.n_values:
            raise ValueError(f"params has {n_values} values, the network "
                             f"needs {spec.n_values}")
        if n_work < spec.work_size[part]:
            raise ValueError(f"work has {n_work} values, needs {spec.work_size[part]}")
        spec.small_gemm_work = _small_gemm_work
        spec.small_gemm_work_transposed = _small_gemm_work_transposed
        spec.min_block_work = _min_block_work
        spec.training = training
        spec.update_running = update_running
        spec.keep_z = part != FORWARD and needs_z(spec.activation)
        return spec

    cdef int check_batches(self, Py_ssize_t n, Py_ssize_t batch_size) except -1:
        """With batch_norm, training batches of batch_size rows out of n
        must each fit in one chunk and hold at least 2 rows."""
        if not self.spec.batch_norm:
            return 0
        if batch_size > self.spec.chunk_rows:
            raise ValueError(f"batch normalisation needs each batch in one chunk: "
                             f"batch of {batch_size} rows, chunk_rows="
                             f"{self.spec.chunk_rows}")
        if batch_size < 2 or n % batch_size == 1:
            raise ValueError(
                "batch normalisation needs at least 2 rows in every training batch "
                f"(the variance of one row is undefined; PyTorch raises too): "
                f"{n} rows in batches of {batch_size} leave a batch of 1 row. "
                "Choose another batch_size.")
        return 0


# --------------------------------------------------------------------------
# The rows
# --------------------------------------------------------------------------

cdef class Data:
    """Rows the kernel reads: inputs, and for training targets and weights.

    X : ndarray (n, n_features), C-contiguous float32 or float64; or a
        scipy.sparse CSR matrix of that dtype (cbp's Python layer checks that
        its indices are in range; they are read as int32, its row pointers
        as intp, converted here if they are not).
    Y : None (prediction); ndarray (n, n_outputs) of X's dtype; or uint8 0/1
        targets (a classifier's indicator matrix in a quarter or an eighth of
        the memory, converted row by row as batches are gathered).
    sample_weight : None, or ndarray (n,) of X's dtype.

    Keeps references to the arrays it reads.
    """
    cdef Rows rows
    cdef bint double_precision
    cdef readonly object dtype
    cdef readonly object X, Y, sample_weight
    cdef object _keep

    def __cinit__(self, X, Y=None, sample_weight=None):
        cdef Py_ssize_t n
        self.rows.sparse = not isinstance(X, np.ndarray)
        if self.rows.sparse:
            if getattr(X, "format", None) != "csr":
                raise ValueError("X must be an ndarray or a CSR matrix")
            values, indices, indptr = X.data, X.indices, X.indptr
            n, n_features = X.shape
            if not (values.ndim == indices.ndim == indptr.ndim == 1
                    and values.flags.c_contiguous and indices.flags.c_contiguous
                    and indptr.flags.c_contiguous):
                raise ValueError("the CSR arrays must be contiguous vectors")
            if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
                raise ValueError("CSR indices and indptr must be integers, got "
                                 f"{indices.dtype} and {indptr.dtype}")
            # the loops read int32 column indices (BLAS's int bounds every
            # layer's width anyway) and intp row pointers
            if n_features > np.iinfo(np.intc).max:
                raise ValueError(f"X has {n_features} columns, more than 2**31 - 1")
            indices = np.ascontiguousarray(indices, dtype=np.intc)
            indptr = np.ascontiguousarray(indptr, dtype=np.intp)
            if (indptr.shape[0] != n + 1 or indices.shape[0] != values.shape[0]
                    or indptr[0] != 0 or indptr[n] != values.shape[0]):
                raise ValueError("CSR data, indices and indptr do not match")
            self._keep = (values, indices, indptr)
            self.dtype = values.dtype
            self.rows.X = _address(values)
            self.rows.indices = <const int *> _address(indices)
            self.rows.indptr = <const Py_ssize_t *> _address(indptr)
        else:
            if X.ndim != 2 or not X.flags.c_contiguous:
                raise ValueError("X must be a C-contiguous 2-d array")
            n, n_features = X.shape
            self.dtype = X.dtype
            self.rows.X = _address(X)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"X must be float32 or float64, got {self.dtype}")
        self.double_precision = self.dtype == np.float64
        self.rows.n_rows = n
        self.rows.n_features = n_features
        self.X = X

        self.rows.n_outputs = 0
        self.rows.Y = NULL
        self.rows.y_bytes = False
        if Y is not None:
            if (not isinstance(Y, np.ndarray) or Y.ndim != 2 or Y.shape[0] != n
                    or not Y.flags.c_contiguous):
                raise ValueError("Y must be a C-contiguous (n_samples, n_outputs) array")
            if Y.dtype != self.dtype and Y.dtype != np.uint8:
                raise ValueError(f"Y must be {self.dtype} or uint8, got {Y.dtype}")
            self.rows.n_outputs = Y.shape[1]
            self.rows.y_bytes = Y.dtype == np.uint8
            self.rows.Y = _address(Y)
        self.Y = Y

        self.rows.sample_weight = NULL
        if sample_weight is not None:
            if (not isinstance(sample_weight, np.ndarray) or sample_weight.ndim != 1
                    or sample_weight.shape[0] != n
                    or not sample_weight.flags.c_contiguous
                    or sample_weight.dtype != self.dtype):
                raise ValueError(f"sample_weight must be a contiguous ({n},) "
                                 f"array of {self.dtype}")
            self.rows.sample_weight = _address(sample_weight)
        self.sample_weight = sample_weight

    @property
    def n_rows(self):
        return self.rows.n_rows

    @property
    def sparse(self):
        return bool(self.rows.sparse)

    cdef int check(self, Network net, bint double_precision,
                   bint targets) except -1:
        """Data and network fit together, in the params' precision."""
        if self.double_precision != double_precision:
            raise ValueError(f"the data are {self.dtype}, the parameters "
                             f"{'float64' if double_precision else 'float32'}")
        if self.rows.sparse != net.spec.sparse_input:
            raise ValueError("sparse X needs Network(sparse_input=True), dense X "
                             "sparse_input=False")
        if self.rows.n_features != net.spec.n_features:
            raise ValueError(f"X has {self.rows.n_features} features, the network "
                             f"takes {net.spec.n_features}")
        if targets and (self.rows.Y == NULL
                        or self.rows.n_outputs != net.spec.units[net.spec.n_layers]):
            raise ValueError(f"Y must have {net.spec.units[net.spec.n_layers]} "
                             "outputs")
        return 0


# --------------------------------------------------------------------------
# The optimizer
# --------------------------------------------------------------------------

cdef class Optimizer:
    """The compiled description of an optimizer and its state, built once per fit.

    kind : {'sgd', 'adam', 'rmsprop', 'adamw'}
    params : the flat parameter vector, (n_params,) float32 or float64; the
        state vectors take its length and dtype, starting at zero.
    learning_rate : the rate of the coming epoch (schedules change it between
        epochs); for adam, before the bias correction.
    t : the number of updates made so far (the bias corrections).
    state : None, or a mapping name -> vector to start from (unpickling,
        load_state_dict): exactly the kind's names (OPTIMIZER_STATE[kind]),
        each a (n_params,) vector of params' dtype, taken as it is (not
        copied; train_epoch needs it writeable and contiguous).
    lr_factors : (start, stop, factor) ranges of the flat parameter vector,
        0 <= start < stop <= n_params, disjoint, factor finite and >= 0: the
        values of a range are updated as by this optimizer with the rate
        learning_rate * factor (adam: lr_t of that rate; adamw: its step and
        its decay lr * factor * weight_decay), as a torch.optim parameter
        group of that lr; the other values at learning_rate. Default (): every
        factor 1, the update unchanged.
    momentum, nesterov : sgd.  beta_1, beta_2 : adam, adamw.  rho : rmsprop.
    epsilon : adam, rmsprop, adamw (adamw adds it after the bias correction,
    as torch.optim.AdamW; adam before it, as scikit-learn).
    weight_decay : adamw's decoupled decay, params *= 1 - lr weight_decay
    each update (every trained value), beside the network's L2 alpha.

    Attributes
    state : dict name -> (n_params,) vector, OPTIMIZER_STATE[kind]'s names:
        velocities (sgd); ms, vs, the first and second moments (adam,
        adamw); vs, the average of squared gradients (rmsprop). train_epoch
        updates the vectors in place, reading them by name; a vector may be
        replaced by another of the same length and dtype.
    t, learning_rate : settable.  kind, lr_factors (sorted (start, stop,
    factor) tuples), hyper_parameters : read only.
    """
    cdef OptimizerSpec spec
    cdef LrRanges ranges
    cdef readonly str kind
    cdef readonly dict state
    cdef readonly tuple lr_factors
    cdef public Py_ssize_t t
    cdef object _bounds, _factors  # the arrays self.ranges points into

    def __cinit__(self, str kind, params, *, double learning_rate, Py_ssize_t t=0,
                  state=None, lr_factors=(), **hyper_parameters):
        unknown = set(hyper_parameters) - set(hyper_parameter_defaults())
        if unknown:
            raise TypeError(f"Optimizer got unexpected hyper-parameters {sorted(unknown)}; "
                            f"it takes {sorted(hyper_parameter_defaults())}")
        code = _name("optimizer", kind, OPTIMIZER_CODES)
        if not isinstance(params, np.ndarray) or params.dtype not in (np.float32,
                                                                      np.float64):
            raise ValueError("params must be a float32 or float64 ndarray")
        self.kind = kind
        # (a dict with every field of the struct becomes the struct)
        self.spec = {**hyper_parameter_defaults(), **hyper_parameters, "kind": code,
                     "learning_rate": learning_rate}
        self.t = t
        if state is None:
            self.state = {name: np.zeros_like(params) for name in OPTIMIZER_STATE[kind]}
        else:
            self.state = dict(state)
            self.check_state(params.shape[0], params.dtype, False)
        self.set_lr_factors(lr_factors, params.shape[0])

    cdef int set_lr_factors(self, lr_factors, Py_ssize_t n_params) except -1:
        """Check lr_factors and fill self.ranges (sorted by start)."""
        cdef Py_ssize_t start, stop, previous_stop = 0
        cdef double factor
        cdef Py_ssize_t[:, ::1] bounds
        cdef double[::1] factors
        ranges = []
        for start, stop, factor in lr_factors:
            ranges.append((start, stop, factor))
        ranges.sort()
        for start, stop, factor in ranges:
            if not (previous_stop <= start < stop <= n_params
                    and 0 <= factor < float("inf")):
                raise ValueError(
                    "lr_factors must be disjoint (start, stop, factor) ranges with "
                    f"0 <= start < stop <= {n_params} and a finite factor >= 0, got "
                    f"{list(lr_factors)!r}")
            previous_stop = stop
        self.lr_factors = tuple(ranges)
        self.ranges.n = len(ranges)
        self.ranges.bounds = NULL
        self.ranges.factors = NULL
        if ranges:
            self._bounds = np.array([r[:2] for r in ranges], dtype=np.intp)
            self._factors = np.array([r[2] for r in ranges], dtype=np.float64)
            bounds, factors = self._bounds, self._factors
            self.ranges.bounds = &bounds[0, 0]
            self.ranges.factors = &factors[0]
        return 0

    @property
    def learning_rate(self):
        return self.spec.learning_rate

    @learning_rate.setter
    def learning_rate(self, double value):
        self.spec.learning_rate = value

    @property
    def hyper_parameters(self):
        """learning_rate and every hyper-parameter (hyper_parameter_defaults's
        keys), as Python numbers, and lr_factors: the keywords that build
        this optimizer again."""
        cdef dict spec = self.spec
        return {**{name: type(default)(spec[name]) for name, default in
                   {"learning_rate": 0.0, **hyper_parameter_defaults()}.items()},
                "lr_factors": self.lr_factors}

    def __reduce__(self):
        return (_rebuild_optimizer,
                (self.kind, self.hyper_parameters, self.t, self.state))

    cdef int check_state(self, Py_ssize_t n_params, object dtype,
                         bint updated) except -1:
        """self.state holds exactly the kind's vectors, each fitting the
        parameters; updated: and each writeable and contiguous (an epoch
        updates them; a model unpickled from a read-only memory map predicts
        with read-only ones)."""
        names = OPTIMIZER_STATE[self.kind]
        if set(self.state) != set(names):
            raise ValueError(f"optimizer state must have exactly {list(names)} "
                             f"({self.kind}), got {list(self.state)}")
        for name in names:
            vector = self.state[name]
            if (not isinstance(vector, np.ndarray) or vector.ndim != 1
                    or vector.shape[0] != n_params or vector.dtype != dtype
                    or updated and not (vector.flags.c_contiguous
                                        and vector.flags.writeable)):
                raise ValueError(f"optimizer state {name} must be a writeable "
                                 f"({n_params},) vector of {dtype}")
        return 0

    cdef int check(self, Py_ssize_t n_params, object dtype) except -1:
        """The hyper-parameters are usable and the state and the lr_factors
        fit the parameters."""
        error = hyper_parameter_error(&self.spec, self.t)
        if error is not None:
            raise ValueError(error)
        self.check_state(n_params, dtype, True)
        # (the ranges are sorted: the last one ends last; no negative
        # indexing here, wraparound is off)
        if self.lr_factors and self.lr_factors[len(self.lr_factors) - 1][1] > n_params:
            raise ValueError(f"lr_factors reach past the {n_params} parameters")
        return 0


def _rebuild_optimizer(kind, hyper_parameters, t, *state):
    """The Optimizer pickled as (kind, hyper_parameters, t, state), state a
    mapping name -> vector; or, pickled before the state was named, as
    (kind, hyper_parameters, t, velocities, ms, vs), the vectors of the
    names the kind lacks empty. Hyper-parameters pickled before
    weight_decay or lr_factors existed lack them: their defaults."""
    if len(state) == 1:
        state = state[0]
    else:
        state = {name: vector for name, vector in zip(("velocities", "ms", "vs"), state)
                 if name in OPTIMIZER_STATE[kind]}
    return Optimizer(kind, next(iter(state.values())), t=t, state=state,
                     **hyper_parameters)


cdef inline bint _in_main_thread():
    # Signal handlers run in the main thread only: other threads never need
    # the GIL back inside a call (two models train in two threads at once).
    return threading.current_thread() is threading.main_thread()


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

def forward(Network net, Data data, const floating[::1] params,
            floating[:, ::1] out, floating[::1] work, bint check_finite=False):
    """Prediction: out = the network's output for data's X, chunk_rows rows
    at a time.

    out: (n, units[-1]), written -- with k members (n, k * units[-1]), each
    row's members' outputs side by side; work: net.workspace_size(
    FORWARD_PART) values.
    check_finite: first look at every input value, and return False (out not
    written) if one is NaN or infinite -- the check a caller would otherwise
    make in a pass of its own. Returns True otherwise.
    """
    cdef NetSpec spec = net.for_call(params.shape[0], work.shape[0], FORWARD)
    cdef Rows rows = data.rows
    cdef Py_ssize_t n = rows.n_rows
    cdef bint finite = True
    cdef double unused, work_since_check = 0.0
    cdef int bad
    data.check(net, floating is double, False)
    if out.shape[0] != n or out.shape[1] != spec.members * spec.units[spec.n_layers]:
        raise ValueError(f"out must be ({n}, {spec.members * spec.units[spec.n_layers]})")
    if n == 0:
        return True
    # (prediction reads no targets or weights)
    rows.n_outputs, rows.Y, rows.y_bytes, rows.sample_weight = 0, NULL, False, NULL
    with nogil:
        if check_finite:
            finite = _all_finite(<const floating *> rows.X,
                                 rows.indptr[n] if rows.sparse else n * rows.n_features)
        if finite:
            _chunks(&spec, &rows, CHUNK_FORWARD, NULL, 0, n, 0, &params[0],
                    &out[0, 0], &work[0], False, False, &work_since_check, False,
                    &unused, &bad)
    return finite


def data_loss(Network net, Data data, const floating[::1] params,
              floating[::1] work):
    """The loss of the rows without the L2 term, sum_i w_i J_i / s (forward
    passes only; for validation data). work: net.workspace_size(
    BACKWARD_PART) values (the output error is written there)."""
    cdef NetSpec spec = net.for_call(params.shape[0], work.shape[0], BACKWARD)
    cdef Rows rows = data.rows
    cdef Py_ssize_t n = rows.n_rows
    cdef double total, s, work_since_check = 0.0
    cdef int bad
    data.check(net, floating is double, True)
    if n == 0 or rows.y_bytes:
        raise ValueError("data_loss needs at least one row and floating targets")
    with nogil:
        s = _weight_sum(<const floating *> rows.sample_weight, NULL, 0, n)
        _chunks(&spec, &rows, CHUNK_LOSS, NULL, 0, n, 0, &params[0],
                <floating *> NULL, &work[0], False, False, &work_since_check,
                False, &total, &bad)
    return total / s


def loss_grad(Network net, Data data, const floating[::1] params,
              floating[::1] grads, floating[::1] work):
    """Full-batch loss and gradient (what L-BFGS needs), chunk by chunk.

    out: grads (n_params,) = dJ/dparams; work (net.workspace_size(
    BACKWARD_PART) values) holds the last chunk's activations and deltas.
    Returns

        J = sum_i w_i J_i / s + 0.5 alpha sum_l ||coefs[l]||^2 / s,

    s = sum_i w_i (n without weights). Ctrl-C (in the main thread) raises
    KeyboardInterrupt between chunks. Training mode: batch normalisation
    uses the statistics of all the rows (one chunk), and leaves the running
    statistics as they are; dropout masks are those of stream rows 0 .. n-1.
    """
    cdef NetSpec spec = net.for_call(params.shape[0], work.shape[0], BACKWARD,
                                     True, False)
    cdef Rows rows = data.rows
    cdef Py_ssize_t n = rows.n_rows
    cdef double total, s, work_since_check = 0.0
    cdef bint check_signals = _in_main_thread()
    cdef int bad
    data.check(net, floating is double, True)
    if grads.shape[0] != spec.n_params:
        raise ValueError(f"grads has {grads.shape[0]} values, the network "
                         f"needs {spec.n_params}")
    if n == 0 or rows.y_bytes:
        raise ValueError("loss_grad needs at least one row and floating targets")
    net.check_batches(n, n)
    with nogil:
        s = _weight_sum(<const floating *> rows.sample_weight, NULL, 0, n)
        _chunks(&spec, &rows, CHUNK_GRADIENT, NULL, 0, n, 0, &params[0],
                &grads[0], &work[0], False, False, &work_since_check,
                check_signals, &total, &bad)
        total = total / s + 0.5 * spec.alpha * squared_norm_of_coefs(&spec, &params[0]) / s
        scale_gradient(&spec, &params[0], &grads[0], s)
    return total


class NonFiniteInput(ValueError):
    """train_epoch(check_finite=True) met a NaN or an infinity in X."""


def train_epoch(Network net, Optimizer optimizer, Data data,
                const Py_ssize_t[::1] order, Py_ssize_t batch_size,
                floating[::1] params, floating[::1] grads, floating[::1] work,
                bint check_finite=False, int n_threads=1):
    """One epoch of mini-batch training, updating params in place.

    The rows are taken in ``order`` (n,) (or 0, 1, ..., n - 1 when order is
    empty), batch_size at a time, the last batch possibly shorter. Each batch:
    its loss and raw gradient, summed over chunks of at most net.chunk_rows
    rows, then one update of params by the optimizer (which forms the
    gradient, (raw + alpha coefs) / s, in its own pass; src/_optimizers.pxd).
    A batch whose weights sum to zero is skipped.

    in/out: params (n_params,); the optimizer's state vectors (by name) and t.
    grads (n_params,): scratch (the last batch's raw sums).
    work: net.workspace_size(EPOCH_PART) values.

    Ctrl-C (in the main thread) is looked at between chunks; it raises
    KeyboardInterrupt with params as they stand after the last whole batch.

    check_finite (dense X): look at each chunk's input rows as they are read
    -- they pass through the cache anyway -- and raise NonFiniteInput at the
    first NaN or infinity, before that chunk is used (the batches before it
    have updated params: the caller puts them back).

    n_threads: with net.block_rows > 0, the threads a batch's blocks run on
    (the result is the same for any number); the caller keeps BLAS on one
    thread. Without blocks, ignored.

    Returns the sum over batches of (batch loss * batch rows), the batch loss
    as loss_grad defines it, at the parameters before the batch's update.
    """
    cdef NetSpec spec = net.for_call(params.shape[0], work.shape[0], EPOCH,
                                     True, True)
    cdef OptimizerSpec opt = optimizer.spec
    cdef unsigned long long stream = net.stream_position
    cdef Rows rows = data.rows
    cdef Py_ssize_t n = rows.n_rows, start, rows_in_batch
    cdef Py_ssize_t t = optimizer.t
    cdef double total = 0.0, batch_loss, s, norm, work_since_check = 0.0
    cdef bint shuffled = order.shape[0] > 0
    cdef bint check_signals = _in_main_thread()
    cdef bint finite = True
    cdef unsigned int float_mode
    cdef const Py_ssize_t *batch_ids
    cdef LrRanges ranges = optimizer.ranges
    cdef floating *velocities = NULL
    cdef floating *ms = NULL
    cdef floating *vs = NULL
    cdef floating[::1] velocities_view, ms_view, vs_view
    # with blocks: each thread's work, the blocks' gradients after the first,
    # their losses and their finiteness flags
    cdef bint blocks = spec.block_rows > 0
    cdef Py_ssize_t n_blocks
    cdef int chunk_bad = 0
    cdef floating[::1] thread_work, block_grads
    cdef double[::1] block_losses, tile_norms
    cdef int[::1] bad
    data.check(net, floating is double, True)
    optimizer.check(spec.n_params, np.float64 if floating is double else np.float32)
    if grads.shape[0] != spec.n_params:
        raise ValueError(f"grads has {grads.shape[0]} values, the network "
                         f"needs {spec.n_params}")
    if not (1 <= batch_size <= n):
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    if order.shape[0] not in (0, n):
        raise ValueError(f"order must have 0 or {n} values, got {order.shape[0]}")
    net.check_batches(n, batch_size)
    check_finite = check_finite and not rows.sparse
    if spec.sparse_input:
        # the first coef block of grads starts zero; after each update the
        # rows the batch touched are zeroed again (zero_touched_rows)
        memset(&grads[0], 0,
               spec.coef_count[0] * spec.units[0] * spec.units[1] * sizeof(floating))
    # the state vectors by name (OPTIMIZER_STATE[kind]; check() has seen them)
    state = optimizer.state
    if "velocities" in state:
        velocities_view = state["velocities"]
        velocities = &velocities_view[0]
    if "ms" in state:
        ms_view = state["ms"]
        ms = &ms_view[0]
    if "vs" in state:
        vs_view = state["vs"]
        vs = &vs_view[0]
    if blocks:
        if n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        n_blocks = (batch_size + spec.block_rows - 1) // spec.block_rows
        n_threads = <int> min(<Py_ssize_t> n_threads, n_blocks)
        dtype = np.float64 if floating is double else np.float32
        thread_work = np.empty(n_threads * spec.work_size[EPOCH], dtype=dtype)
        block_grads = np.empty(max(1, (n_blocks - 1) * spec.n_params), dtype=dtype)
        block_losses = np.empty(n_blocks)
        tile_norms = np.empty(n_tiles(spec.n_params, spec.n_coefs))
        bad = np.zeros(n_blocks, dtype=np.intc)
    float_mode = cbp_flush_denormals()  # (_epoch.pxd: why; put back below)
    try:
        with nogil:
            start = 0
            while start < n:
                rows_in_batch = min(batch_size, n - start)
                batch_ids = &order[start] if shuffled else NULL
                s = _weight_sum(<const floating *> rows.sample_weight, batch_ids,
                                start, rows_in_batch)
                if not s > 0:
                    # a batch whose weights are all zero carries nothing to
                    # learn from: it is skipped rather than divided by zero
                    _check_signals(&work_since_check, 0.0, check_signals)
                    start += rows_in_batch
                    continue
                if blocks:
                    # the gradient and the update together, on threads
                    finite = _train_batch_in_blocks(
                        &spec, &opt, &ranges, &rows, batch_ids, start,
                        rows_in_batch, stream, &params[0], &grads[0], velocities,
                        ms, vs, <floating> s,
                        t + 1, &block_grads[0], &thread_work[0],
                        spec.work_size[EPOCH], &block_losses[0], &tile_norms[0],
                        &bad[0], check_finite, n_threads, &batch_loss, &norm)
                    if not finite:
                        break
                    t += 1
                    _check_signals(&work_since_check, _work_per_row(&spec) * rows_in_batch,
                                   check_signals)
                else:
                    # the batch chunk by chunk, in order, then the update
                    _chunks(&spec, &rows, CHUNK_GRADIENT, batch_ids, start,
                            rows_in_batch, stream, &params[0], &grads[0],
                            &work[0], check_finite, spec.sparse_input,
                            &work_since_check, check_signals, &batch_loss,
                            &chunk_bad)
                    if chunk_bad:
                        finite = False
                        break
                    t += 1
                    # (the update returns sum_l ||coefs[l]||^2 before it)
                    norm = update(&opt, &ranges, &params[0], &grads[0], velocities,
                                  ms, vs, spec.n_params, spec.n_coefs,
                                  <floating> spec.alpha, <floating> s, t)
                batch_loss = batch_loss / s + 0.5 * spec.alpha * norm / s
                total += batch_loss * rows_in_batch
                if spec.sparse_input:
                    zero_touched_rows(&spec, &rows, batch_ids, start,
                                      rows_in_batch, &grads[0])
                start += rows_in_batch
    finally:
        cbp_restore_float_mode(float_mode)
        # the updates made, also when Ctrl-C stops the epoch
        optimizer.t = t
    if not finite:
        raise NonFiniteInput("X contains NaN or infinity")
    net.stream_position = stream + <unsigned long long> n
    return total


def batch_statistics(Network net, Data data, floating[::1] params,
                     floating[::1] work):
    """One training-mode forward pass over all of data's rows as one batch
    (no dropout), moving the running statistics of batch normalisation by
    the network's momentum -- with momentum 1, setting them to the rows'
    mean and unbiased variance at params (what L-BFGS keeps at its end).

    in/out: params' running statistics; work: net.workspace_size(
    FORWARD_PART) values, n <= net.chunk_rows rows.
    """
    cdef NetSpec spec = net.for_call(params.shape[0], work.shape[0], FORWARD,
                                     True, True)
    cdef Rows rows = data.rows
    cdef Chunk chunk
    cdef Py_ssize_t n = rows.n_rows
    data.check(net, floating is double, False)
    net.check_batches(n, n)
    spec.any_dropout = False
    rows.n_outputs, rows.Y, rows.y_bytes, rows.sample_weight = 0, NULL, False, NULL
    with nogil:
        _make_chunk(&spec, &rows, <const Py_ssize_t *> NULL, 0, n, &work[0], &chunk)
        forward_chunk(&spec, &rows, &chunk, &params[0], &work[0],
                      &work[0] + spec.activation_offset[spec.n_layers])


# --------------------------------------------------------------------------
# Test-only entry points (single pieces, and the tuning knobs' hooks), kept
# apart from the product's
# --------------------------------------------------------------------------

include "_testing.pxi"
