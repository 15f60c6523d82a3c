# The hidden layers' options: batch normalisation and dropout, for one chunk
# of rows (a whole batch when batch normalisation is on: its statistics are
# the batch's). Each hidden layer computes
#
#     z = a_in @ coefs + intercepts                       (_forward.pxd)
#     y = gamma * (z - mean) / sqrt(var + eps) + beta     batch_norm_forward
#     a = g(y)                                            (_activations.pxd)
#     a_out = a * mask,  mask = keep / (1 - p)            dropout_forward
#
# as torch.nn.Linear -> BatchNorm1d(momentum, eps) -> activation -> Dropout(p)
# in training mode: mean and var are the batch's (var biased), and the running
# statistics move towards them (running var towards the unbiased variance).
# In evaluation mode (prediction, validation) the running statistics
# normalise and dropout is the identity.
#
# Backward (_backprop.pxd), for delta = dJ/da_out:
#     delta *= mask;  delta *= g'(a);                      now dJ/dy
#     gamma_grad = sum_rows(delta * x_hat);  beta_grad = sum_rows(delta)
#     delta := gamma / sqrt(var + eps)
#              * (delta - beta_grad / n - x_hat * gamma_grad / n)      dJ/dz
#
# Dropout masks come from a counter-based generator: the mask of unit j of
# hidden layer k for the row at stream position r is a hash of (seed, r, k,
# j) -- a 64-bit key per (seed, r, k), then a 32-bit hash per unit, which
# vectorises -- so it does not depend on how rows are split into batches,
# chunks or threads, and no generator state is shared. Stream positions count the rows
# trained on, epoch after epoch, in the order they are taken.
from cython cimport floating
from libc.math cimport sqrt
from libc.stdint cimport uint32_t, uint64_t

from _network cimport NetSpec


# --------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------

cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    """SplitMix64's finaliser: a bijection of 64-bit words that scatters
    every input bit over the output."""
    z = (z ^ (z >> 30)) * <uint64_t> 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t> 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint32_t fmix32(uint32_t h) noexcept nogil:
    """MurmurHash3's 32-bit finaliser (a bijection; vectorises: 32-bit
    multiplies and shifts only)."""
    h = (h ^ (h >> 16)) * <uint32_t> 0x85EBCA6BU
    h = (h ^ (h >> 13)) * <uint32_t> 0xC2B2AE35U
    return h ^ (h >> 16)


cdef inline uint32_t dropout_row_key(uint64_t seed, uint64_t row,
                                     Py_ssize_t layer) noexcept nogil:
    """The 32-bit key of (seed, stream row, hidden layer)."""
    return <uint32_t> mix64(mix64(seed + row * <uint64_t> 0x9E3779B97F4A7C15ULL)
                            ^ (<uint64_t> layer * <uint64_t> 0xD1B54A32D192ED03ULL))


cdef inline uint32_t dropout_bits(uint32_t row_key, Py_ssize_t unit) noexcept nogil:
    """A uniform 32-bit word for unit ``unit`` of a row: the unit is kept
    where it is >= dropout_threshold(p)."""
    return fmix32(row_key + <uint32_t> unit * <uint32_t> 0x9E3779B9U)


cdef inline uint32_t dropout_threshold(double p) noexcept nogil:
    """round(p 2^32), at most 2^32 - 1: a unit is dropped with probability p
    (to within 2^-32)."""
    cdef double t = p * 4294967296.0 + 0.5
    return <uint32_t> (t if t < 4294967295.0 else 4294967295.0)


cdef inline void dropout_forward(const NetSpec *net, Py_ssize_t k,
                                 Py_ssize_t member, uint64_t first_row,
                                 Py_ssize_t n_rows, const floating *A,
                                 floating *mask, floating *dropped) noexcept nogil:
    """Hidden layer k's inverted dropout, for ensemble member ``member`` (0
    in a plain network), rows first_row, first_row + 1, ... of the stream:
    mask := keep / (1 - p) (0 or 1 / (1 - p)), dropped := A * mask. in: A
    (n_rows, units[k + 1]); out: mask, dropped (same shape). Member m's
    masks are those of hidden layer k + m (L - 1): every member draws its
    own."""
    cdef Py_ssize_t r, j, u = net.units[k + 1]
    cdef Py_ssize_t key_layer = k + member * (net.n_layers - 1)
    cdef uint32_t key, threshold = dropout_threshold(net.dropout[k])
    cdef floating scale = <floating> (1.0 / (1.0 - net.dropout[k]))
    cdef floating m
    cdef const floating *a_row
    cdef floating *mask_row
    cdef floating *dropped_row
    for r in range(n_rows):
        key = dropout_row_key(net.dropout_seed, first_row + <uint64_t> r, key_layer)
        a_row = A + r * u
        mask_row = mask + r * u
        dropped_row = dropped + r * u
        for j in range(u):
            m = scale if dropout_bits(key, j) >= threshold else 0
            mask_row[j] = m
            dropped_row[j] = a_row[j] * m


# --------------------------------------------------------------------------
# Batch normalisation
# --------------------------------------------------------------------------

cdef inline void batch_norm_forward(const NetSpec *net, Py_ssize_t k,
                                    Py_ssize_t member, Py_ssize_t n_rows,
                                    const floating *params, floating *Z,
                                    floating *x_hat,
                                    floating *stats) noexcept nogil:
    """Z := gamma * x_hat + beta for hidden layer k of ensemble member
    ``member`` (0 in a plain network; each member has its own gamma, beta
    and running statistics, as tabm's BatchNorm1dEnsemble) (in/out: Z
    (n_rows, u), z on entry -- the member's rows).

    Training mode (net.training): x_hat = (z - mean) / sqrt(var + eps) with
    the rows' mean and biased variance; out: x_hat (n_rows, u), stats (2u,):
    mean, then 1 / sqrt(var + eps). With net.update_running (and n_rows >= 2)
    the running statistics in params move by the momentum:
        running_mean := (1 - m) running_mean + m mean
        running_var  := (1 - m) running_var + m var * n / (n - 1)
    (written through params: the entry points that set update_running hold
    a writable params). Evaluation mode: the running statistics normalise;
    x_hat and stats are not written.
    """
    cdef Py_ssize_t i, j, u = net.units[k + 1]
    cdef const floating *gamma = params + net.gamma_offset[k] + member * u
    cdef const floating *beta = params + net.beta_offset[k] + member * u
    cdef floating *running_mean = (<floating *> params + net.running_mean_offset[k]
                                   + member * u)
    cdef floating *running_var = (<floating *> params + net.running_var_offset[k]
                                  + member * u)
    cdef floating *mean = stats
    cdef floating *inv_std = stats + u
    cdef floating *row
    cdef floating *x_row
    cdef floating d, eps = <floating> net.batch_norm_eps
    cdef floating momentum = <floating> net.batch_norm_momentum
    cdef floating n = <floating> n_rows
    if not net.training:
        for j in range(u):
            inv_std[j] = 1 / <floating> sqrt(running_var[j] + eps)
        for i in range(n_rows):
            row = Z + i * u
            for j in range(u):
                row[j] = gamma[j] * ((row[j] - running_mean[j]) * inv_std[j]) + beta[j]
        return
    # mean = Z.mean(axis=0); var = ((Z - mean) ** 2).mean(axis=0)
    for j in range(u):
        mean[j] = 0
        inv_std[j] = 0
    for i in range(n_rows):
        row = Z + i * u
        for j in range(u):
            mean[j] += row[j]
    for j in range(u):
        mean[j] /= n
    for i in range(n_rows):
        row = Z + i * u
        for j in range(u):
            d = row[j] - mean[j]
            inv_std[j] += d * d            # (the sum of squares, for now)
    if net.update_running and n_rows >= 2:
        for j in range(u):
            running_mean[j] = (1 - momentum) * running_mean[j] + momentum * mean[j]
            running_var[j] = ((1 - momentum) * running_var[j]
                              + momentum * (inv_std[j] / (n - 1)))
    for j in range(u):
        inv_std[j] = 1 / <floating> sqrt(inv_std[j] / n + eps)
    # x_hat = (Z - mean) * inv_std; Z = gamma * x_hat + beta
    for i in range(n_rows):
        row = Z + i * u
        x_row = x_hat + i * u
        for j in range(u):
            x_row[j] = (row[j] - mean[j]) * inv_std[j]
            row[j] = gamma[j] * x_row[j] + beta[j]


cdef inline void batch_norm_backward(const NetSpec *net, Py_ssize_t k,
                                     Py_ssize_t member, Py_ssize_t n_rows,
                                     const floating *params,
                                     const floating *x_hat,
                                     const floating *stats, floating *delta,
                                     floating *raw) noexcept nogil:
    """Through hidden layer k's normalisation (training mode), one whole
    batch of ensemble member ``member``'s rows (0 in a plain network).

    in: x_hat (n_rows, u) and stats (mean, inv_std) of the forward pass;
    in/out: delta (n_rows, u), dJ/dy on entry, dJ/dz on return;
    out: raw's gamma and beta blocks of layer k (the raw sums, written).
    """
    cdef Py_ssize_t i, j, u = net.units[k + 1]
    cdef const floating *gamma = params + net.gamma_offset[k] + member * u
    cdef const floating *inv_std = stats + u
    cdef floating *gamma_grad = raw + net.gamma_offset[k] + member * u
    cdef floating *beta_grad = raw + net.beta_offset[k] + member * u
    cdef floating *row
    cdef const floating *x_row
    cdef floating n = <floating> n_rows
    for j in range(u):
        gamma_grad[j] = 0
        beta_grad[j] = 0
    # gamma_grad = (delta * x_hat).sum(axis=0); beta_grad = delta.sum(axis=0)
    for i in range(n_rows):
        row = delta + i * u
        x_row = x_hat + i * u
        for j in range(u):
            gamma_grad[j] += row[j] * x_row[j]
            beta_grad[j] += row[j]
    # delta = gamma * inv_std * (delta - beta_grad / n - x_hat * gamma_grad / n)
    for i in range(n_rows):
        row = delta + i * u
        x_row = x_hat + i * u
        for j in range(u):
            row[j] = gamma[j] * inv_std[j] * (
                row[j] - beta_grad[j] / n - x_row[j] * (gamma_grad[j] / n))
