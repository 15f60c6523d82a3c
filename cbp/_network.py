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
from ._options import ENSEMBLES, HIDDEN_ACTIVATIONS, SOLVERS

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


def chunk_rows(units, n_rows, gathered_input, ensemble=None):
    """Rows per chunk for batches of n_rows rows: at most _CHUNK_VALUES values
    of activations (every member's, for an ensemble (members, form)), and of
    input rows when those are gathered (shuffled dense training rows), per
    chunk."""
    units = [int(u) for u in units]
    members = 1 if ensemble is None else int(ensemble[0])
    per_row = members * sum(units[1:]) + (units[0] if gathered_input else 0)
    shared = (ensemble is not None
              and not layer_kinds(len(units) - 1, ensemble)[:, 0].all())
    floor = -(-_MIN_CHUNK_ROWS // members) if shared else _MIN_CHUNK_ROWS
    return int(max(1, min(n_rows, max(floor, _CHUNK_VALUES // per_row))))


def make_network(units, activation, loss, out_activation, alpha, n_rows, sparse_input,
                 batch_norm=False, dropout=None, dropout_seed=0, training=True,
                 block_rows=0, ensemble=None, **loss_parameters):
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
            else chunk_rows(units, n_rows, gathered_input=not sparse_input,
                            ensemble=ensemble))
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
        **ensemble_arguments(len(units) - 1, ensemble),
        **loss_parameters,
    )


def prediction_network(units, activation, out_activation, n_rows, sparse_input,
                       batch_norm=False, ensemble=None):
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
            out_activation, n_rows, sparse_input, batch_norm, ensemble,
        )
    return _prediction_network(units, activation, out_activation, n_rows, sparse_input,
                               batch_norm, ensemble)


def _prediction_network(units, activation, out_activation, n_rows, sparse_input,
                        batch_norm=False, ensemble=None):
    return _kernel.Network(
        units,
        activation,
        None,
        0.0,
        sparse_input,
        chunk_rows(units, n_rows, gathered_input=False, ensemble=ensemble),
        output=out_activation,
        batch_norm=batch_norm,
        batch_norm_eps=BATCH_NORM_EPS,
        **ensemble_arguments(len(units) - 1, ensemble),
    )


def ensemble_arguments(n_layers, ensemble):
    """The kernel Network's members and layer_kinds of an ensemble (members,
    form), or none for a plain network (None)."""
    if ensemble is None:
        return {}
    return {"members": int(ensemble[0]), "layer_kinds": layer_kinds(n_layers, ensemble)}


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
# An ensemble's per-member scalings, per layer (None where a layer has none),
# in the order the flat vector holds them (the estimator's <part>_)
SCALING_PARTS = ("input_scalings", "output_scalings")


def layer_kinds(n_layers, ensemble):
    """The kernel's layer_kinds of an ensemble (members, form) -- (L, 4)
    intp: member weights, member intercepts, input scaling r, output
    scaling s per layer, from _options.ENSEMBLES -- or None (a plain
    network: ensemble None)."""
    if ensemble is None:
        return None
    return np.array(ENSEMBLES[ensemble[1]].layer_kinds(n_layers), dtype=np.intp)


def layout(units, ensemble=None, batch_norm=False):
    """Where each array lies in the flat vector: {part: [(offset, shape) or
    None per layer]} for 'coefs', 'intercepts', 'input_scalings',
    'output_scalings' (and with batch_norm the four BATCH_NORM_PARTS, per
    hidden layer), and 'n_weights' (values before batch normalisation's),
    'n_values'. An array a layer holds per member has the members first:
    coefs (k, units[l], units[l + 1]). The kernel's Network.layout() is the
    same (src/_network.pxd's lay_out; tests/test_ensembles.py compares)."""
    units = [int(u) for u in units]
    L = len(units) - 1
    members = 1 if ensemble is None else int(ensemble[0])
    kinds = layer_kinds(L, ensemble)
    if kinds is None:
        kinds = np.zeros((L, 4), dtype=np.intp)
    position = 0
    result = {}

    def place(count, *shape):
        nonlocal position
        shape = ((count,) if count > 1 else ()) + shape
        entry = (position, shape)
        position += int(np.prod(shape))
        return entry

    result["coefs"] = [place(members if kinds[l, 0] else 1, units[l], units[l + 1])
                       for l in range(L)]
    result["intercepts"] = [place(members if kinds[l, 1] else 1, units[l + 1])
                            for l in range(L)]
    result["input_scalings"] = [place(members, units[l]) if kinds[l, 2] else None
                                for l in range(L)]
    result["output_scalings"] = [place(members, units[l + 1]) if kinds[l, 3] else None
                                 for l in range(L)]
    result["n_weights"] = position
    if batch_norm:
        for name in BATCH_NORM_PARTS:
            result[name] = [place(members, u) for u in units[1:-1]]
    result["n_values"] = position
    return result


def _views(params, entries):
    return [None if entry is None else
            params[entry[0]:entry[0] + int(np.prod(entry[1]))].reshape(entry[1])
            for entry in entries]


def n_weights(units, ensemble=None):
    """Values of the coefs, intercepts (and an ensemble's scalings) of a
    network with these units."""
    return layout(units, ensemble)["n_weights"]


def has_batch_norm(params, units, ensemble=None):
    """Whether the flat vector ``params`` holds batch normalisation's values
    after the weights (its length tells)."""
    return params.shape[0] > n_weights(units, ensemble)


def n_trained(params, units, ensemble=None):
    """Values of params the optimizers train: the weights (and scalings),
    and batch normalisation's gammas and betas when params holds them."""
    if not has_batch_norm(params, units, ensemble):
        return n_weights(units, ensemble)
    members = 1 if ensemble is None else int(ensemble[0])
    return n_weights(units, ensemble) + 2 * members * sum(int(u) for u in units[1:-1])


def unpack_batch_norm(params, units, ensemble=None):
    """{'gammas', 'betas', 'running_means', 'running_vars'}: lists of views
    into params, one per hidden layer ((k, units) each for k members); None
    when params holds weights only."""
    if not has_batch_norm(params, units, ensemble):
        return None
    places = layout(units, ensemble, batch_norm=True)
    return {name: _views(params, places[name]) for name in BATCH_NORM_PARTS}


def unpack_scalings(params, units, ensemble=None):
    """{'input_scalings', 'output_scalings'}: per layer, a view (k, units)
    of an ensemble's per-member scalings, or None; None for a plain
    network."""
    if ensemble is None:
        return None
    places = layout(units, ensemble)
    return {name: _views(params, places[name]) for name in SCALING_PARTS}


def initial_batch_norm(units, dtype, members=1):
    """Batch normalisation's starting values, as torch.nn.BatchNorm1d's:
    gamma 1, beta 0, running mean 0, running variance 1 (per member: (k,
    units) each, for k > 1 members)."""
    hidden = [int(u) for u in units[1:-1]]
    start = {"gammas": np.ones, "betas": np.zeros, "running_means": np.zeros,
             "running_vars": np.ones}
    shape = (lambda u: (members, u)) if members > 1 else (lambda u: u)
    return {name: [start[name](shape(u), dtype=dtype) for u in hidden]
            for name in BATCH_NORM_PARTS}


def unpack(params, units, ensemble=None):
    """(coefs, intercepts): lists of views into the flat vector ``params``."""
    places = layout(units, ensemble)
    return _views(params, places["coefs"]), _views(params, places["intercepts"])


def pack(coefs, intercepts, dtype, batch_norm=None, scalings=None):
    """A new flat parameter vector of ``dtype`` holding coefs and intercepts
    (an ensemble's scalings: a dict as unpack_scalings's; batch
    normalisation's values: a dict as unpack_batch_norm's)."""
    arrays = (list(coefs) + list(intercepts) + scaling_arrays(scalings)
              + batch_norm_arrays(batch_norm))
    return np.concatenate([np.ravel(a) for a in arrays]).astype(dtype, copy=False)


def batch_norm_arrays(batch_norm):
    """The arrays of a dict as unpack_batch_norm's, in the vector's order."""
    if batch_norm is None:
        return []
    return [v for name in BATCH_NORM_PARTS for v in batch_norm[name]]


def scaling_arrays(scalings):
    """The arrays of a dict as unpack_scalings's, in the vector's order."""
    if scalings is None:
        return []
    return [v for name in SCALING_PARTS for v in scalings[name] if v is not None]


def is_packed(params, views, coefs, intercepts, batch_norm=None, scalings=None):
    """Whether coefs, intercepts (an ensemble's scalings, batch
    normalisation's arrays: dicts as unpack_scalings's and
    unpack_batch_norm's) are still the views unpack(params) made.

    ``views`` is the tuple of those views, kept when they were made: the same
    objects, still based on ``params`` (a deep copy or pickle gives new
    arrays with their own memory). O(layers), no array is read.
    """
    if params is None or coefs is None or intercepts is None:
        return False
    # (a plain loop: this runs on every predict, and builds no list)
    groups = [coefs, intercepts]
    if scalings is not None:
        groups += [scalings[name] for name in SCALING_PARTS]
    if batch_norm is not None:
        groups += [batch_norm[name] for name in BATCH_NORM_PARTS]
    i, n = 0, len(views)
    for group in groups:
        for array in group:
            if array is None and scalings is not None:
                continue
            if i == n or array is not views[i] or array.base is not params:
                return False
            i += 1
    return i == n


def glorot_uniform(units, activation, random_state, dtype, ensemble=None):
    """Flat parameters drawn as scikit-learn's MLP draws them for the hidden
    ``activation`` (its initialisation in _options.HIDDEN_ACTIVATIONS):
    initial_weights with that scheme (initial_ensemble for an ensemble)."""
    init = HIDDEN_ACTIVATIONS[activation].init
    if ensemble is None:
        return initial_weights(units, init, random_state, dtype)
    return initial_ensemble(units, init, random_state, dtype, ensemble)


def initial_ensemble(units, init, random_state, dtype, ensemble):
    """Flat parameters of an ensemble (members, form), drawn layer by layer
    by ``init``: a layer with weights per member draws (coef, intercept)
    for each member in turn; a shared layer draws once, and its intercepts
    per member all start from that one draw (as the tabm package's
    LinearBatchEnsemble). Then, as TabM: the first layer's input scaling r
    starts at random signs (+-1, drawn from random_state), every other
    scaling at 1."""
    L = len(units) - 1
    members = int(ensemble[0])
    places = layout(units, ensemble)
    params = np.empty(places["n_weights"], dtype=dtype)
    coefs, intercepts = unpack(params, units, ensemble)
    kinds = layer_kinds(L, ensemble)
    for l, (fan_in, fan_out) in enumerate(zip(units[:-1], units[1:])):
        if kinds[l, 0]:
            for m in range(members):
                coefs[l][m], intercepts[l][m] = init.draw(random_state, fan_in, fan_out)
        else:
            coefs[l][...], intercepts[l][...] = init.draw(random_state, fan_in, fan_out)
    scalings = unpack_scalings(params, units, ensemble)
    for part in scalings.values():
        for scaling in part:
            if scaling is not None:
                scaling[...] = 1
    first = scalings["input_scalings"][0]
    if first is not None:
        first[...] = 2 * random_state.randint(0, 2, size=first.shape) - 1
    return params


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
                check_finite=False, sparse_input=None, ensemble=None):
    """The network's output for X (n, units[0]), as (n, units[-1]); for an
    ensemble (members, form), every member's, as (n, members, units[-1]).

    X: kernel_input(X, params.dtype) (dense or CSR); units: an intp array;
    params: the flat vector (with batch normalisation's values, if any:
    ``batch_norm``, found from its length when None). With check_finite,
    None if X holds a NaN or an infinity (the kernel looks as it reads).
    sparse_input: whether X is CSR, found out when None.
    """
    n = X.shape[0]
    members = 1 if ensemble is None else int(ensemble[0])
    out = np.empty((n, members * units[-1]), dtype=params.dtype)
    if ensemble is not None:
        out_shape = (n, members, units[-1])
    if n == 0:
        return out if ensemble is None else out.reshape(out_shape)
    if batch_norm is None:
        batch_norm = has_batch_norm(params, units, ensemble)
    if sparse_input is None:
        sparse_input = scipy.sparse.issparse(X)
    net = prediction_network(units, activation, out_activation, n, sparse_input,
                             batch_norm, ensemble)
    work = np.empty(net.workspace_size(_kernel.FORWARD_PART), dtype=params.dtype)
    if not _kernel.forward(net, _kernel.Data(X), params, out, work, check_finite):
        return None
    return out if ensemble is None else out.reshape(out_shape)


# BLAS (LP64) takes matrix dimensions as C ints.
_BLAS_INT_MAX = 2**31 - 1


def check_fits_in_memory(units, max_rows, dtype, solver="adam", sparse_input=False,
                         ensemble=None, batch_norm=False):
    """Raise before any work if a network cannot be trained on this machine.

    ValueError when a layer or a chunk is too large for BLAS's int
    dimensions; MemoryError when the parameters (every member's, for an
    ensemble (members, form), and batch normalisation's), gradients,
    optimizer state, the copies kept between epochs and the scratch memory
    for one chunk of batches of max_rows rows (every member's activations and
    deltas; Python integers: no overflow) exceed the machine's physical
    memory.
    """
    max_rows = chunk_rows(units, max_rows, not sparse_input, ensemble)
    for size in list(units) + [max_rows]:
        if size > _BLAS_INT_MAX:
            raise ValueError(
                f"a layer of {size} units (or a batch of {size} rows) is larger "
                f"than BLAS's limit of {_BLAS_INT_MAX}"
            )
    units = [int(u) for u in units]
    members = 1 if ensemble is None else int(ensemble[0])
    n_params = layout(units, ensemble, batch_norm)["n_values"]
    work = max_rows * (
        members * (2 * sum(units[1:]) + units[-1]) + (0 if sparse_input else units[0]) + 1
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
