"""The network's parameters as one flat vector, and prediction.

A network with ``units = (n_features, *hidden_layer_sizes, n_outputs)`` keeps
every weight matrix and intercept vector in one contiguous vector, laid out as
scikit-learn's ``_pack`` does: ``coefs[0].ravel(), ..., coefs[L-1].ravel(),
intercepts[0], ..., intercepts[L-1]``. The estimator's ``coefs_`` and
``intercepts_`` are views into that vector, with scikit-learn's shapes
``(units[l], units[l + 1])`` and ``(units[l + 1],)``.
"""

import os

import numpy as np

from ._dispatch import kernel as _kernel

# Rows pushed through the network at once by predict: large enough for BLAS
# to run at full speed, small enough to keep the scratch memory in cache-sized
# blocks (the scratch is chunk_rows * sum(units[1:]) values).
_PREDICT_SCRATCH_VALUES = 1 << 18


def as_units(units):
    """``units`` as the C-contiguous intp array the kernel expects."""
    return np.ascontiguousarray(units, dtype=np.intp)


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


def pack(coefs, intercepts, dtype):
    """A new flat parameter vector of ``dtype`` holding coefs and intercepts."""
    return np.concatenate(
        [np.ravel(c) for c in coefs] + [np.ravel(b) for b in intercepts]
    ).astype(dtype, copy=False)


def is_packed(params, views, coefs, intercepts):
    """Whether coefs + intercepts are still the views unpack(params) made.

    ``views`` is the tuple of those views, kept when they were made: the same
    objects, still based on ``params`` (a deep copy or pickle gives new
    arrays with their own memory). O(layers), no array is read.
    """
    arrays = list(coefs) + list(intercepts)
    return (
        params is not None
        and len(arrays) == len(views)
        and all(a is v and a.base is params for a, v in zip(arrays, views))
    )


def glorot_uniform(units, activation, random_state, dtype):
    """Flat parameters drawn as scikit-learn's MLP draws them.

    Per layer, from the legacy RandomState: coef ~ U(-b, b) of shape
    (fan_in, fan_out), then intercept ~ U(-b, b) of shape (fan_out,), with
    b = sqrt(6 / (fan_in + fan_out)), or sqrt(2 / ...) for ``logistic``;
    drawn in float64, then cast to ``dtype``.
    """
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(units[:-1], units[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coefs.append(random_state.uniform(-bound, bound, (fan_in, fan_out)))
        intercepts.append(random_state.uniform(-bound, bound, fan_out))
    return pack(coefs, intercepts, dtype)


def predict_raw(X, params, units, activation, out_activation):
    """The network's output for X (n, units[0]), as (n, units[-1]).

    X and params must share a dtype; X must be C-contiguous; units is an
    intp array.
    """
    n = X.shape[0]
    out = np.empty((n, units[-1]), dtype=params.dtype)
    if n == 0:
        return out
    chunk_rows = min(n, max(1, _PREDICT_SCRATCH_VALUES // sum(units.tolist()[1:])))
    work = np.empty(
        _kernel.workspace_size(units, chunk_rows, _kernel.FORWARD), dtype=params.dtype
    )
    _kernel.forward(
        X,
        units,
        _kernel.ACTIVATION_CODES[activation],
        _kernel.ACTIVATION_CODES[out_activation],
        params,
        out,
        work,
        chunk_rows,
    )
    return out


# BLAS (LP64) takes matrix dimensions as C ints.
_BLAS_INT_MAX = 2**31 - 1


def check_fits_in_memory(units, max_rows, dtype, solver="adam"):
    """Raise before any work if a network cannot be trained on this machine.

    ValueError when a layer or the batch is too large for BLAS's int
    dimensions; MemoryError when the parameters, gradients, optimizer state,
    the copies kept between epochs and the scratch memory for max_rows rows
    (Python integers: no overflow) exceed the machine's physical memory.
    """
    for size in list(units) + [max_rows]:
        if size > _BLAS_INT_MAX:
            raise ValueError(
                f"a layer of {size} units (or a batch of {size} rows) is larger "
                f"than BLAS's limit of {_BLAS_INT_MAX}"
            )
    units = [int(u) for u in units]
    n_params = sum(a * b for a, b in zip(units[:-1], units[1:])) + sum(units[1:])
    work = max_rows * (2 * sum(units[1:]) + units[0] + units[-1] + 1)
    itemsize = np.dtype(dtype).itemsize
    # params, grads, two optimizer vectors, last-epoch and best copies, the
    # copies a refit keeps to undo a failure, and the float64 draw of the
    # initial weights
    per_param = 9 * itemsize + 8
    if solver == "lbfgs":
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
