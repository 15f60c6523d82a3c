"""The kernel's networks, the flat parameter vector's initial values, and
prediction.

A network keeps every array it trains or carries in one contiguous vector
(cbp/_parts.py describes each kind, the kernel lays them out). A plain
network's begins as scikit-learn's ``_pack``: ``coefs[0].ravel(), ...,
coefs[L-1].ravel(), intercepts[0], ..., intercepts[L-1]``; the estimator's
``coefs_`` and ``intercepts_`` are views into it, with scikit-learn's shapes
``(units[l], units[l + 1])`` and ``(units[l + 1],)``, and so are the other
parts' arrays (an ensemble's scalings, batch normalisation's).
"""

import functools
import os

import numpy as np
import scipy.sparse

from ._dispatch import kernel as _kernel
from ._options import EMBEDDINGS, HIDDEN_ACTIVATIONS, SOLVERS
from ._parts import PARTS, layout, views

# Rows go through the layers in chunks (prediction and training alike), so
# that scratch memory stays small whatever the batch: about _CHUNK_VALUES
# values of activations (and of gathered input rows) per chunk, but never
# fewer than _MIN_CHUNK_ROWS rows, below which the products get too thin for
# BLAS. Measured (full-batch loss and gradient, one thread; the user guide's
# design page): 1,000,000 x 16, layers (64, 64): 0.71 s at 127 rows a chunk,
# 0.76 s at 508, 1.43 s unchunked (1968 MiB of scratch); 16000 x 1024, layers
# (1024, 1024): 3.87 s at 31 rows, 1.81 s at 509, 1.79 s unchunked. Batches
# of up to 512 rows are never split, so their arithmetic is unchanged.
# An ensemble whose hidden layers share their weights stacks its k members'
# rows (k x chunk rows through each shared product), so its floor is
# _MIN_CHUNK_ROWS stacked rows, ceil(512 / k) rows of the batch: more would
# only push the element-wise passes around the products (the scalings, the
# sums of their gradients) out of the cache. Measured (k = 32, "batch",
# layers (256, 256, 256), batch 256, AdamW, one thread, 10240 rows, Xeon
# with AVX-512): 3.15 s an epoch with the batch in one chunk (8192 stacked
# rows), 2.44 s at 16 rows (512 stacked), 2.41 s at 8, 2.59 s at 64. Where
# every member has its own weights ("packed"), each product has the chunk's
# rows alone, and the floor stays 512 (k = 32: 3.2 s at 256 rows, 5.0 s at 16).
_CHUNK_VALUES = 1 << 16
_MIN_CHUNK_ROWS = 512


# torch.nn.BatchNorm1d's defaults, which cbp's batch normalisation follows
BATCH_NORM_EPS = 1e-5
BATCH_NORM_MOMENTUM = 0.1


def chunk_rows(architecture, n_rows, gathered_input):
    """Rows per chunk for batches of n_rows rows: at most _CHUNK_VALUES values
    of activations (every member's, for an ensemble), and of input rows when
    those are gathered (shuffled dense training rows), per chunk."""
    units, members = architecture.units, architecture.members
    per_row = members * sum(units[1:]) + (architecture.n_features if gathered_input else 0)
    shared = (architecture.ensemble is not None
              and not architecture.layer_kinds()[:, 0].all())
    floor = -(-_MIN_CHUNK_ROWS // members) if shared else _MIN_CHUNK_ROWS
    return int(max(1, min(n_rows, max(floor, _CHUNK_VALUES // per_row))))


def make_network(architecture, activation, loss, out_activation, alpha, n_rows,
                 sparse_input, dropout=None, dropout_seed=0, training=True,
                 block_rows=0, **options):
    """The kernel's description of a network of this Architecture trained
    with ``loss`` (an _options.Loss carrying its parameters) on batches of
    up to n_rows rows (see _kernel.Network); out_activation must be the
    loss's (the kernel checks); options: other keywords of _kernel.Network
    (batch_norm_momentum). With batch normalisation a
    training batch is never split into chunks: its statistics are the whole
    batch's (``training=False``: a network only evaluated, e.g. for the
    validation loss, whose rows are normalised by the running statistics
    and can go in chunks). block_rows > 0: training batches in blocks of
    that many rows, on threads (the kernel's Network)."""
    rows = (int(n_rows) if architecture.batch_norm and training
            else chunk_rows(architecture, n_rows, gathered_input=not sparse_input))
    options.setdefault("batch_norm_momentum", BATCH_NORM_MOMENTUM)
    return _kernel.Network(
        as_units(architecture.units),
        activation,
        loss.name,
        float(alpha),
        sparse_input,
        max(rows, 1),
        output=out_activation,
        batch_norm_eps=BATCH_NORM_EPS,
        dropout=dropout,
        dropout_seed=dropout_seed,
        block_rows=block_rows,
        **architecture.kernel_arguments(),
        **loss.kernel_arguments(),
        **options,
    )


def prediction_network(architecture, activation, out_activation, n_rows, sparse_input):
    """The kernel's description of a network that predicts for n_rows rows
    (evaluation mode: batch normalisation by the running statistics).

    Networks are immutable, so those for small batches (one-sample
    prediction above all) are cached and shared between calls, models and
    threads.
    """
    if n_rows <= _CACHED_PREDICTION_ROWS:
        return _small_prediction_network(architecture, activation, out_activation, n_rows,
                                         sparse_input)
    return _prediction_network(architecture, activation, out_activation, n_rows,
                               sparse_input)


def _prediction_network(architecture, activation, out_activation, n_rows, sparse_input):
    return _kernel.Network(
        as_units(architecture.units),
        activation,
        None,
        0.0,
        sparse_input,
        chunk_rows(architecture, n_rows, gathered_input=False),
        output=out_activation,
        batch_norm_eps=BATCH_NORM_EPS,
        **architecture.kernel_arguments(),
    )


# Below this many rows, building the network would cost more than its forward pass.
_CACHED_PREDICTION_ROWS = 64
_small_prediction_network = functools.lru_cache(maxsize=256)(_prediction_network)


def kernel_input(X, dtype):
    """X as the kernel reads it: a C-contiguous dense array of dtype, or a
    CSR matrix of dtype (CSC and COO are converted to CSR once; sparse input
    is never densified).

    ValueError for a malformed CSR matrix (row pointers not increasing,
    column indices out of range), which the kernel would read out of bounds.
    """
    if not scipy.sparse.issparse(X):
        return np.ascontiguousarray(X, dtype=dtype)
    X = X.tocsr()
    n_rows, n_features = X.shape
    data, indices, indptr = X.data, X.indices, X.indptr
    if (
        indptr.shape != (n_rows + 1,)
        or indptr[0] != 0
        or indptr[-1] != data.shape[0]
        or indices.shape != data.shape
        or (n_rows > 0 and np.any(indptr[1:] < indptr[:-1]))
    ):
        raise ValueError("sparse X is malformed: its row pointers do not match its data")
    if indices.size and (indices.min() < 0 or indices.max() >= n_features):
        raise ValueError(
            f"sparse X is malformed: column indices outside [0, {n_features})"
        )
    if data.dtype == dtype and data.flags.c_contiguous and indices.flags.c_contiguous:
        return X
    return scipy.sparse.csr_matrix(
        (np.ascontiguousarray(data, dtype=dtype), np.ascontiguousarray(indices), indptr),
        shape=X.shape,
    )


def as_units(units):
    """``units`` as the C-contiguous intp array the kernel expects."""
    return np.ascontiguousarray(units, dtype=np.intp)


def initial_parameters(architecture, activation, random_state, dtype, embedding_start=None):
    """The flat vector of a new network, as scikit-learn's MLP starts for the
    hidden ``activation`` (its initialisation in _options.HIDDEN_ACTIVATIONS):
    the weights drawn layer by layer (initial_weights, or initial_ensemble
    for an ensemble), then every other part at its Part.start (an
    ensemble's first input scaling: random signs, drawn then, as TabM), and
    last a numeric embedding's arrays, drawn by its _options.EMBEDDINGS
    entry from embedding_start (the training X and the estimator
    parameters the entry reads: _options.embedding_start) -- after every
    other draw, so that a network without one starts as it always did."""
    init = HIDDEN_ACTIVATIONS[activation].init
    params = np.empty(layout(architecture).n_values, dtype=dtype)
    arrays = views(params, architecture)
    if architecture.ensemble is None:
        initial_weights(architecture.units, init, random_state, params)
    else:
        initial_ensemble(architecture, init, random_state, arrays)
    for name, entries in arrays.items():
        if PARTS[name].start is None:  # (drawn)
            continue
        for array in entries:
            if array is not None:
                array[...] = PARTS[name].start
    first = arrays.get("input_scalings", [None])[0]
    if architecture.ensemble is not None and first is not None:
        first[...] = 2 * random_state.randint(0, 2, size=first.shape) - 1
    if architecture.embedding is not None:
        EMBEDDINGS[architecture.embedding[0]].draw(random_state, arrays,
                                                   **(embedding_start or {}))
    return params


def initial_ensemble(architecture, init, random_state, arrays):
    """Draw an ensemble's coefs and intercepts into arrays (views's) layer
    by layer by ``init``: a layer with weights per member draws (coef,
    intercept) for each member in turn; a shared layer draws once, and its
    intercepts per member all start from that one draw (as the tabm
    package's LinearBatchEnsemble)."""
    units = architecture.units
    kinds = architecture.layer_kinds()
    for l, (fan_in, fan_out) in enumerate(zip(units[:-1], units[1:])):
        coef, intercept = arrays["coefs"][l], arrays["intercepts"][l]
        if kinds[l, 0]:
            for m in range(architecture.members):
                coef[m], intercept[m] = init.draw(random_state, fan_in, fan_out)
        else:
            coef[...], intercept[...] = init.draw(random_state, fan_in, fan_out)


def initial_weights(units, init, random_state, params):
    """Draw a plain network's coefs and intercepts into the first values of
    the flat vector params, layer by layer by ``init`` (e.g. GlorotUniform:
    per layer, from the legacy RandomState, coef ~ U(-b, b) of shape
    (fan_in, fan_out), then intercept ~ U(-b, b) of shape (fan_out,), with
    b = sqrt(6 / (fan_in + fan_out)), or sqrt(2 / ...) for ``logistic``);
    drawn in float64 and written into params's dtype (one layer's float64
    draw at a time: the peak is the vector plus one layer).
    """
    layers = list(zip(units[:-1], units[1:]))
    coef_start, intercept_start = 0, sum(a * b for a, b in layers)
    for fan_in, fan_out in layers:
        coef, intercept = init.draw(random_state, fan_in, fan_out)
        size = fan_in * fan_out
        params[coef_start:coef_start + size] = coef.ravel()
        params[intercept_start:intercept_start + fan_out] = intercept
        coef_start += size
        intercept_start += fan_out


def predict_raw(X, params, architecture, activation, out_activation,
                check_finite=False, sparse_input=None):
    """The network's output for X (n, units[0]), as (n, units[-1]); for an
    ensemble, every member's, as (n, members, units[-1]).

    X: kernel_input(X, params.dtype) (dense or CSR); params: the flat vector
    of the Architecture. With check_finite, None if X holds a NaN or an
    infinity (the kernel looks as it reads). sparse_input: whether X is
    CSR, found out when None.
    """
    n, n_outputs, members = X.shape[0], architecture.units[-1], architecture.members
    out = np.empty((n, members * n_outputs), dtype=params.dtype)
    if n > 0:
        if sparse_input is None:
            sparse_input = scipy.sparse.issparse(X)
        net = prediction_network(architecture, activation, out_activation, n, sparse_input)
        work = np.empty(net.workspace_size(_kernel.FORWARD_PART), dtype=params.dtype)
        if not _kernel.forward(net, _kernel.Data(X), params, out, work, check_finite):
            return None
    return out if architecture.ensemble is None else out.reshape(n, members, n_outputs)


# BLAS (LP64) takes matrix dimensions as C ints.
_BLAS_INT_MAX = 2**31 - 1


def check_fits_in_memory(architecture, max_rows, dtype, solver="adam", sparse_input=False):
    """Raise before any work if a network cannot be trained on this machine.

    ValueError when a layer or a chunk is too large for BLAS's int
    dimensions; MemoryError when the parameters (every member's, for an
    ensemble (members, form), batch normalisation's and a numeric
    embedding's), gradients,
    optimizer state, the copies kept between epochs and the scratch memory
    for one chunk of batches of max_rows rows (every member's activations and
    deltas; Python integers: no overflow) exceed the machine's physical
    memory.
    """
    units = list(architecture.units)
    max_rows = chunk_rows(architecture, max_rows, not sparse_input)
    # (an embedding's encoding rows are BLAS's leading dimension too)
    widths = [] if architecture.embedding is None else [
        2 * architecture.n_features * architecture.embedding[2]]
    for size in units + widths + [max_rows]:
        if size > _BLAS_INT_MAX:
            raise ValueError(
                f"a layer of {size} units (or a batch of {size} rows) is larger "
                f"than BLAS's limit of {_BLAS_INT_MAX}"
            )
    members = architecture.members
    n_params = layout(architecture).n_values
    work = max_rows * (
        members * (2 * sum(units[1:]) + units[-1])
        + (0 if sparse_input else architecture.n_features) + 1
    )
    if architecture.embedding is not None:
        # its encoding (at most 2 values per feature and frequency or bin),
        # its output and the delta of it
        work += max_rows * (2 * architecture.n_features * architecture.embedding[2]
                            + (members + 1) * units[0])
    itemsize = np.dtype(dtype).itemsize
    # params, grads, two optimizer vectors, last-epoch and best copies, the
    # copies a refit keeps to undo a failure, and the float64 draw of the
    # initial weights
    per_param = 9 * itemsize + 8
    if not SOLVERS[solver].stochastic:
        # scipy's L-BFGS-B in float64: x, gradient, 10 pairs of history
        # vectors and its work arrays
        per_param += 28 * 8
    needed = n_params * per_param + work * itemsize
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return
    if needed > available:
        raise MemoryError(
            f"a network with layer sizes {units} needs about {needed / 2**30:.3g} GiB "
            f"to train, more than this machine's {available / 2**30:.3g} GiB of memory"
        )
