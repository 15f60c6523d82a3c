"""The network's parameters as one flat vector, and prediction.

A network with ``units = (n_features, *hidden_layer_sizes, n_outputs)`` keeps
every weight matrix and intercept vector in one contiguous vector, laid out as
scikit-learn's ``_pack`` does: ``coefs[0].ravel(), ..., coefs[L-1].ravel(),
intercepts[0], ..., intercepts[L-1]``. The estimator's ``coefs_`` and
``intercepts_`` are views into that vector, with scikit-learn's shapes
``(units[l], units[l + 1])`` and ``(units[l + 1],)``.

With batch normalisation the vector goes on, for the hidden layers k (of
``units[k + 1]`` values each): every gamma, every beta (trained with the
rest), then every running mean and every running variance (state the
optimizers do not touch) -- the estimator's ``batch_norm_gammas_``,
``batch_norm_betas_``, ``batch_norm_running_means_`` and
``batch_norm_running_vars_``, views again.
"""

import functools
import os

import numpy as np
import scipy.sparse

from ._dispatch import kernel as _kernel
from ._options import HIDDEN_ACTIVATIONS, SOLVERS

# Rows go through the layers in chunks (prediction and training alike), so
# that scratch memory stays small whatever the batch: about _CHUNK_VALUES
# values of activations (and of gathered input rows) per chunk, but never
# fewer than _MIN_CHUNK_ROWS rows, below which the products get too thin for
# BLAS. Measured (full-batch loss and gradient, one thread; README, "How it
# is organised"): 1,000,000 x 16, layers (64, 64): 0.71 s at 127 rows a chunk,
# 0.76 s at 508, 1.43 s unchunked (1968 MiB of scratch); 16000 x 1024, layers
# (1024, 1024): 3.87 s at 31 rows, 1.81 s at 509, 1.79 s unchunked. Batches
# of up to 512 rows are never split, so their arithmetic is unchanged.
_CHUNK_VALUES = 1 << 16
_MIN_CHUNK_ROWS = 512


# torch.nn.BatchNorm1d's defaults, which cbp's batch normalisation follows
BATCH_NORM_EPS = 1e-5
BATCH_NORM_MOMENTUM = 0.1


def chunk_rows(units, n_rows, gathered_input):
    """Rows per chunk for batches of n_rows rows: at most _CHUNK_VALUES values
    of activations, and of input rows when those are gathered (shuffled
    dense training rows), per chunk."""
    units = [int(u) for u in units]
    per_row = sum(units[1:]) + (units[0] if gathered_input else 0)
    return int(max(1, min(n_rows, max(_MIN_CHUNK_ROWS, _CHUNK_VALUES // per_row))))


def make_network(units, activation, loss, out_activation, alpha, n_rows, sparse_input,
                 batch_norm=False, dropout=None, dropout_seed=0, training=True,
                 block_rows=0, **loss_parameters):
    """The kernel's description of a network trained with ``loss`` on
    batches of up to n_rows rows (see _kernel.Network); out_activation must
    be the loss's (the kernel checks); loss_parameters: e.g. huber_delta,
    batch_norm_momentum. With batch_norm a training batch is never split into
    chunks: its statistics are the whole batch's (``training=False``: a
    network only evaluated, e.g. for the validation loss, whose rows are
    normalised by the running statistics and can go in chunks). block_rows >
    0: training batches in blocks of that many rows, on threads (the
    kernel's Network)."""
    rows = (int(n_rows) if batch_norm and training
            else chunk_rows(units, n_rows, gathered_input=not sparse_input))
    loss_parameters.setdefault("batch_norm_momentum", BATCH_NORM_MOMENTUM)
    return _kernel.Network(
        units,
        activation,
        loss,
        float(alpha),
        sparse_input,
        max(rows, 1),
        output=out_activation,
        batch_norm=batch_norm,
        batch_norm_eps=BATCH_NORM_EPS,
        dropout=dropout,
        dropout_seed=dropout_seed,
        block_rows=block_rows,
        **loss_parameters,
    )


def prediction_network(units, activation, out_activation, n_rows, sparse_input,
                       batch_norm=False):
    """The kernel's description of a network that predicts for n_rows rows
    (evaluation mode: batch normalisation by the running statistics).

    units: an intp array, or a tuple of ints (the cache's key as it is).
    Networks are immutable, so those for small batches
    (one-sample prediction above all) are cached and shared between calls,
    models and threads.
    """
    if n_rows <= _CACHED_PREDICTION_ROWS:
        return _small_prediction_network(
            units if type(units) is tuple else tuple(units.tolist()), activation,
            out_activation, n_rows, sparse_input, batch_norm,
        )
    return _prediction_network(units, activation, out_activation, n_rows, sparse_input,
                               batch_norm)


def _prediction_network(units, activation, out_activation, n_rows, sparse_input,
                        batch_norm=False):
    return _kernel.Network(
        units,
        activation,
        None,
        0.0,
        sparse_input,
        chunk_rows(units, n_rows, gathered_input=False),
        output=out_activation,
        batch_norm=batch_norm,
        batch_norm_eps=BATCH_NORM_EPS,
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


# The four per-hidden-layer arrays of batch normalisation, in the order the
# flat vector holds them (and the estimator names them: batch_norm_<part>_)
BATCH_NORM_PARTS = ("gammas", "betas", "running_means", "running_vars")


def n_weights(units):
    """Values of the coefs and intercepts of a network with these units."""
    units = [int(u) for u in units]
    return sum(a * b + b for a, b in zip(units[:-1], units[1:]))


def has_batch_norm(params, units):
    """Whether the flat vector ``params`` holds batch normalisation's values
    after the weights (its length tells)."""
    return params.shape[0] > n_weights(units)


def n_trained(params, units):
    """Values of params the optimizers train: the weights, and batch
    normalisation's gammas and betas when params holds them."""
    if not has_batch_norm(params, units):
        return n_weights(units)
    return n_weights(units) + 2 * sum(int(u) for u in units[1:-1])


def unpack_batch_norm(params, units):
    """{'gammas', 'betas', 'running_means', 'running_vars'}: lists of views
    into params, one per hidden layer; None when params holds weights only."""
    if not has_batch_norm(params, units):
        return None
    hidden = [int(u) for u in units[1:-1]]
    start = n_weights(units)
    parts = {}
    for name in BATCH_NORM_PARTS:
        parts[name] = []
        for width in hidden:
            parts[name].append(params[start:start + width])
            start += width
    return parts


def initial_batch_norm(units, dtype):
    """Batch normalisation's starting values, as torch.nn.BatchNorm1d's:
    gamma 1, beta 0, running mean 0, running variance 1."""
    hidden = [int(u) for u in units[1:-1]]
    start = {"gammas": np.ones, "betas": np.zeros, "running_means": np.zeros,
             "running_vars": np.ones}
    return {name: [start[name](u, dtype=dtype) for u in hidden]
            for name in BATCH_NORM_PARTS}


def unpack(params, units):
    """(coefs, intercepts): lists of views into the flat vector ``params``."""
    coefs, intercepts = [], []
    start = 0
    for n_in, n_out in zip(units[:-1], units[1:]):
        coefs.append(params[start:start + n_in * n_out].reshape(n_in, n_out))
        start += n_in * n_out
    for n_out in units[1:]:
        intercepts.append(params[start:start + n_out])
        start += n_out
    return coefs, intercepts


def pack(coefs, intercepts, dtype, batch_norm=None):
    """A new flat parameter vector of ``dtype`` holding coefs and intercepts
    (and batch normalisation's values: a dict as unpack_batch_norm's)."""
    arrays = list(coefs) + list(intercepts) + batch_norm_arrays(batch_norm)
    return np.concatenate([np.ravel(a) for a in arrays]).astype(dtype, copy=False)


def batch_norm_arrays(batch_norm):
    """The arrays of a dict as unpack_batch_norm's, in the vector's order."""
    if batch_norm is None:
        return []
    return [v for name in BATCH_NORM_PARTS for v in batch_norm[name]]


def is_packed(params, views, coefs, intercepts, batch_norm=None):
    """Whether coefs, intercepts (and batch normalisation's arrays, a dict as
    unpack_batch_norm's) are still the views unpack(params) made.

    ``views`` is the tuple of those views, kept when they were made: the same
    objects, still based on ``params`` (a deep copy or pickle gives new
    arrays with their own memory). O(layers), no array is read.
    """
    if params is None or coefs is None or intercepts is None:
        return False
    # (a plain loop: this runs on every predict, and builds no list)
    groups = [coefs, intercepts]
    if batch_norm is not None:
        groups += [batch_norm[name] for name in BATCH_NORM_PARTS]
    i, n = 0, len(views)
    for group in groups:
        for array in group:
            if i == n or array is not views[i] or array.base is not params:
                return False
            i += 1
    return i == n


def glorot_uniform(units, activation, random_state, dtype):
    """Flat parameters drawn as scikit-learn's MLP draws them for the hidden
    ``activation`` (its initialisation in _options.HIDDEN_ACTIVATIONS):
    initial_weights with that scheme."""
    return initial_weights(units, HIDDEN_ACTIVATIONS[activation].init, random_state,
                           dtype)


def initial_weights(units, init, random_state, dtype):
    """Flat parameters drawn layer by layer by ``init`` (e.g. GlorotUniform:
    per layer, from the legacy RandomState, coef ~ U(-b, b) of shape
    (fan_in, fan_out), then intercept ~ U(-b, b) of shape (fan_out,), with
    b = sqrt(6 / (fan_in + fan_out)), or sqrt(2 / ...) for ``logistic``);
    drawn in float64 and written into the flat vector of ``dtype`` (one
    layer's float64 draw at a time: the peak is the vector plus one layer).
    """
    layers = list(zip(units[:-1], units[1:]))
    n_coefs = sum(a * b for a, b in layers)
    params = np.empty(n_coefs + sum(b for _, b in layers), dtype=dtype)
    coef_start, intercept_start = 0, n_coefs
    for fan_in, fan_out in layers:
        coef, intercept = init.draw(random_state, fan_in, fan_out)
        size = fan_in * fan_out
        params[coef_start:coef_start + size] = coef.ravel()
        params[intercept_start:intercept_start + fan_out] = intercept
        coef_start += size
        intercept_start += fan_out
    return params


def predict_raw(X, params, units, activation, out_activation, batch_norm=None,
                check_finite=False, sparse_input=None):
    """The network's output for X (n, units[0]), as (n, units[-1]).

    X: kernel_input(X, params.dtype) (dense or CSR); units: an intp array;
    params: the flat vector (with batch normalisation's values, if any:
    ``batch_norm``, found from its length when None). With check_finite,
    None if X holds a NaN or an infinity (the kernel looks as it reads).
    sparse_input: whether X is CSR, found out when None.
    """
    n = X.shape[0]
    out = np.empty((n, units[-1]), dtype=params.dtype)
    if n == 0:
        return out
    if batch_norm is None:
        batch_norm = has_batch_norm(params, units)
    if sparse_input is None:
        sparse_input = scipy.sparse.issparse(X)
    net = prediction_network(units, activation, out_activation, n, sparse_input,
                             batch_norm)
    work = np.empty(net.workspace_size(_kernel.FORWARD_PART), dtype=params.dtype)
    if not _kernel.forward(net, _kernel.Data(X), params, out, work, check_finite):
        return None
    return out


# BLAS (LP64) takes matrix dimensions as C ints.
_BLAS_INT_MAX = 2**31 - 1


def check_fits_in_memory(units, max_rows, dtype, solver="adam", sparse_input=False):
    """Raise before any work if a network cannot be trained on this machine.

    ValueError when a layer or a chunk is too large for BLAS's int
    dimensions; MemoryError when the parameters, gradients, optimizer state,
    the copies kept between epochs and the scratch memory for one chunk of
    batches of max_rows rows (Python integers: no overflow) exceed the
    machine's physical memory.
    """
    max_rows = chunk_rows(units, max_rows, not sparse_input)
    for size in list(units) + [max_rows]:
        if size > _BLAS_INT_MAX:
            raise ValueError(
                f"a layer of {size} units (or a batch of {size} rows) is larger "
                f"than BLAS's limit of {_BLAS_INT_MAX}"
            )
    units = [int(u) for u in units]
    n_params = sum(a * b for a, b in zip(units[:-1], units[1:])) + sum(units[1:])
    work = max_rows * (
        2 * sum(units[1:]) + (0 if sparse_input else units[0]) + units[-1] + 1
    )
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
