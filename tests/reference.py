"""A plain NumPy reference for cbp's compiled kernel, written from the equations.

Nothing here is derived from ``src/_kernel.pyx``: every function restates the
mathematics of a dense network trained by backpropagation, in the most direct
NumPy, so that the tests can compare the kernel against it.

Notation. A network of L layers has ``units = (n_features, n_1, ..., n_outputs)``.
Layer l (0 <= l < L) maps a^(l) (n_rows, units[l]) to

    z^(l) = a^(l) @ W_l + b_l,        a^(l+1) = g(z^(l)),

where g is the hidden activation for l < L - 1 and the output activation for
the last layer; a^(0) = X.

Parameter layout (the kernel's and scikit-learn's ``_pack``): one flat vector
holding every W_l (units[l], units[l+1]) row-major in layer order, then every
b_l (units[l+1],).

Losses, for sample weights w_i (all 1 when absent), s = sum_i w_i:

    squared_error    0.5 sum_i w_i sum_k (y_ik - yhat_ik)^2 / s
                     (summed over the outputs, NOT averaged: cbp fixes
                     scikit-learn issue #8349 so the loss is the one whose
                     gradient is used)
    log_loss         -sum_i w_i sum_k y_ik log(clip(p_ik)) / s      (softmax)
    binary_log_loss  -sum_i w_i sum_k [y log(clip p) + (1-y) log(1 - clip p)] / s
                                                                     (logistic)
    poisson          sum_i w_i sum_k [y log(y / yhat) - y + yhat] / s  (exp)

plus the L2 term 0.5 alpha sum_l ||W_l||^2 / s (intercepts not penalised),
with clip(p) = min(max(p, eps), 1 - eps) and eps = np.finfo(dtype).eps.

Each loss is paired with its canonical output activation, for which
dJ/dz^(L-1) = w (yhat - y) / s; the recursion is then

    delta^(L-1) = w (yhat - y)
    delta^(l)   = (delta^(l+1) @ W_(l+1).T) * g'(z^(l))
    dJ/dW_l     = (a^(l).T @ delta^(l) + alpha W_l) / s
    dJ/db_l     = sum_rows(delta^(l)) / s

Arithmetic is carried out in the dtype of the inputs (float32 or float64),
except the loss, which is a sum over the samples and is accumulated in float64.
All functions are pure: they return new arrays and never modify their inputs.
"""
import numpy as np
import scipy.sparse
import scipy.special

HIDDEN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu",
                      "gelu", "silu", "selu", "mish")
OUTPUT_ACTIVATIONS = ("identity", "logistic", "softmax", "exp")
LOSSES = ("squared_error", "log_loss", "binary_log_loss", "poisson",
          "absolute_error", "huber")

# The output activation of each loss.
OUTPUT_FOR_LOSS = {
    "squared_error": "identity",
    "log_loss": "softmax",
    "binary_log_loss": "logistic",
    "poisson": "exp",
    "absolute_error": "identity",
    "huber": "identity",
}
LEAKY_SLOPE = 0.01
# torch.nn.SELU's constants
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# ---------------------------------------------------------------------------
# Parameter layout
# ---------------------------------------------------------------------------

def n_params(units):
    """Number of weights and intercepts of a network with these units."""
    units = [int(u) for u in units]
    return sum(units[l] * units[l + 1] + units[l + 1] for l in range(len(units) - 1))


def pack(coefs, intercepts):
    """Flat vector: every coef (row-major) in layer order, then every intercept."""
    parts = [np.ravel(c) for c in coefs] + [np.ravel(b) for b in intercepts]
    return np.concatenate(parts)


def unpack(params, units):
    """(coefs, intercepts) as copies, inverse of ``pack``."""
    units = [int(u) for u in units]
    L = len(units) - 1
    if params.shape != (n_params(units),):
        raise ValueError(f"params has shape {params.shape}, expected ({n_params(units)},)")
    coefs, intercepts, position = [], [], 0
    for l in range(L):
        size = units[l] * units[l + 1]
        coefs.append(params[position:position + size].reshape(units[l], units[l + 1]).copy())
        position += size
    for l in range(L):
        intercepts.append(params[position:position + units[l + 1]].copy())
        position += units[l + 1]
    return coefs, intercepts


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------

def activation(name, z):
    """a = g(z), elementwise (softmax: row-wise), in z's dtype."""
    z = np.asarray(z)
    one = z.dtype.type(1)
    if name == "identity":
        return z.copy()
    if name == "logistic":
        with np.errstate(over="ignore"):  # exp(-z) = inf gives 1 / inf = 0
            return one / (one + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, z.dtype.type(0))
    if name == "leaky_relu":
        return np.where(z > 0, z, z * z.dtype.type(LEAKY_SLOPE))
    if name == "gelu":
        # z Phi(z) = 0.5 z (1 + erf(z / sqrt(2)))
        return z * z.dtype.type(0.5) * (one + scipy.special.erf(z / z.dtype.type(np.sqrt(2))))
    if name == "silu":
        # z sigma(z)
        return z * scipy.special.expit(z)
    if name == "selu":
        # scale z for z > 0, scale alpha (e^z - 1) otherwise
        return np.where(z > 0, z.dtype.type(SELU_SCALE) * z,
                        z.dtype.type(SELU_SCALE * SELU_ALPHA) * np.expm1(np.minimum(z, 0)))
    if name == "mish":
        # z tanh(softplus(z)), softplus(z) = log(1 + e^z) = logaddexp(0, z)
        return z * np.tanh(np.logaddexp(z.dtype.type(0), z))
    if name == "softmax":
        # shifted by the row maximum, so exp never overflows
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if name == "exp":
        return np.exp(z)
    raise ValueError(f"unknown activation {name!r}")


def derivative(name, z):
    """g'(z), elementwise, for the hidden activations (a function of z)."""
    z = np.asarray(z)
    if name == "identity":
        return np.ones_like(z)
    if name == "logistic":
        a = activation("logistic", z)
        return a * (z.dtype.type(1) - a)
    if name == "tanh":
        return z.dtype.type(1) - np.tanh(z) ** 2
    if name == "relu":
        # the subgradient 0 is taken at z = 0
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        # the slope is taken at z = 0 (as PyTorch)
        return np.where(z > 0, 1, LEAKY_SLOPE).astype(z.dtype)
    if name == "gelu":
        # Phi(z) + z phi(z)
        phi = np.exp(-z * z / z.dtype.type(2)) / z.dtype.type(np.sqrt(2 * np.pi))
        return z.dtype.type(0.5) * (1 + scipy.special.erf(z / z.dtype.type(np.sqrt(2)))) + z * phi
    if name == "silu":
        # sigma(z) (1 + z (1 - sigma(z)))
        sigma = scipy.special.expit(z)
        return sigma * (1 + z * (1 - sigma))
    if name == "selu":
        # scale for z > 0, scale alpha e^z otherwise
        return np.where(z > 0, z.dtype.type(SELU_SCALE),
                        z.dtype.type(SELU_SCALE * SELU_ALPHA) * np.exp(np.minimum(z, 0)))
    if name == "mish":
        # tanh(sp) + z sigma(z) (1 - tanh(sp)^2), sp = softplus(z)
        t = np.tanh(np.logaddexp(z.dtype.type(0), z))
        return t + z * scipy.special.expit(z) * (1 - t * t)
    raise ValueError(f"{name!r} has no elementwise derivative here")


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------

def _xlogy(x, y):
    """x log(y) with 0 log(y) = 0, in float64."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(y))


def _clip(p):
    eps = np.finfo(p.dtype).eps
    return np.clip(p, eps, 1 - eps)


def sample_losses(loss, y_pred, y, huber_delta=1.0):
    """J_i, the unweighted loss of every row (n_rows,), in float64."""
    y_pred = np.asarray(y_pred)
    if loss == "absolute_error":
        per_output = np.abs(y_pred.astype(np.float64) - y.astype(np.float64))
    elif loss == "huber":
        r = np.abs(y_pred.astype(np.float64) - y.astype(np.float64))
        per_output = np.where(r <= huber_delta, 0.5 * r * r,
                              huber_delta * (r - 0.5 * huber_delta))
    elif loss == "squared_error":
        r = y.astype(np.float64) - y_pred.astype(np.float64)
        per_output = 0.5 * r * r
    elif loss == "log_loss":
        per_output = -_xlogy(y, _clip(y_pred))
    elif loss == "binary_log_loss":
        p = _clip(y_pred).astype(np.float64)
        per_output = -(_xlogy(y, p) + _xlogy(1.0 - y.astype(np.float64), 1.0 - p))
    elif loss == "poisson":
        yy = y.astype(np.float64)
        p = y_pred.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_output = _xlogy(yy, yy / p) - yy + p
    else:
        raise ValueError(f"unknown loss {loss!r}")
    return per_output.sum(axis=1)


def weighted_loss_sum(loss, y_pred, y, sample_weight=None, huber_delta=1.0):
    """sum_i w_i J_i (not divided by s), in float64."""
    J = sample_losses(loss, y_pred, y, huber_delta)
    if sample_weight is None or len(sample_weight) == 0:
        return float(J.sum())
    return float((np.asarray(sample_weight, dtype=np.float64) * J).sum())


def output_delta(y_pred, y, sample_weight=None, loss="squared_error", huber_delta=1.0):
    """delta at the output layer, w dJ_i/dz, in y_pred's dtype: w (yhat - y)
    for a loss with its canonical output; w sign(yhat - y) (0 at a tie) for
    the absolute error; w clip(yhat - y, -delta, delta) for Huber."""
    d = y_pred - y
    if loss == "absolute_error":
        d = np.sign(d)
    elif loss == "huber":
        d = np.clip(d, -y_pred.dtype.type(huber_delta), y_pred.dtype.type(huber_delta))
    if sample_weight is None or len(sample_weight) == 0:
        return d
    return d * sample_weight[:, None]


def weight_sum(n_rows, sample_weight=None):
    """s: the sum of the sample weights, or the number of rows without them."""
    if sample_weight is None or len(sample_weight) == 0:
        return float(n_rows)
    return float(np.sum(np.asarray(sample_weight, dtype=np.float64)))


# ---------------------------------------------------------------------------
# Forward and backward passes
# ---------------------------------------------------------------------------

def forward(X, units, params, hidden, output):
    """(zs, activations): zs[l] = z^(l) for l < L; activations = [X, a^(1), ..., a^(L)]."""
    coefs, intercepts = unpack(params, units)
    L = len(coefs)
    zs, activations = [], [X]
    for l in range(L):
        z = activations[-1] @ coefs[l] + intercepts[l]
        zs.append(z)
        activations.append(activation(output if l == L - 1 else hidden, z))
    return zs, activations


def predict(X, units, params, hidden, output):
    """The network's output a^(L)."""
    return forward(X, units, params, hidden, output)[1][-1]


def loss(X, Y, sample_weight, units, hidden, output, loss_name, alpha, params,
         huber_delta=1.0):
    """The penalised loss J of the batch, a Python float."""
    y_pred = predict(X, units, params, hidden, output)
    coefs, _ = unpack(params, units)
    s = weight_sum(len(X), sample_weight)
    penalty = sum(float(np.sum(c.astype(np.float64) ** 2)) for c in coefs)
    return (weighted_loss_sum(loss_name, y_pred, Y, sample_weight, huber_delta)
            + 0.5 * alpha * penalty) / s


def loss_grad(X, Y, sample_weight, units, hidden, output, loss_name, alpha, params,
              huber_delta=1.0):
    """Loss and gradient of a batch, and the intermediate quantities.

    Returns a dict with
      loss         J (Python float)
      grads        dJ/dparams, flat, in the parameter layout
      coef_grads   [dJ/dW_l], intercept_grads [dJ/db_l]
      activations  [a^(1), ..., a^(L)]
      deltas       [delta^(0), ..., delta^(L-1)] (delta^(l) = s dJ/dz^(l))
    """
    dtype = params.dtype.type
    coefs, intercepts = unpack(params, units)
    L = len(coefs)
    zs, activations = forward(X, units, params, hidden, output)
    s = weight_sum(len(X), sample_weight)
    penalty = sum(float(np.sum(c.astype(np.float64) ** 2)) for c in coefs)
    J = (weighted_loss_sum(loss_name, activations[-1], Y, sample_weight, huber_delta)
         + 0.5 * alpha * penalty) / s

    s_t, alpha_t = dtype(s), dtype(alpha)
    deltas = [None] * L
    coef_grads = [None] * L
    intercept_grads = [None] * L
    delta = output_delta(activations[-1], Y, sample_weight, loss_name, huber_delta)
    for l in range(L - 1, -1, -1):
        deltas[l] = delta
        coef_grads[l] = (activations[l].T @ delta + alpha_t * coefs[l]) / s_t
        intercept_grads[l] = delta.sum(axis=0) / s_t
        if l > 0:
            delta = (delta @ coefs[l].T) * derivative(hidden, zs[l - 1])
    return {
        "loss": J,
        "grads": pack(coef_grads, intercept_grads),
        "coef_grads": coef_grads,
        "intercept_grads": intercept_grads,
        "activations": activations[1:],
        "deltas": deltas,
    }


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------

def sgd_step(params, grads, velocities, learning_rate, momentum, nesterov):
    """(params, velocities) after one SGD update with (Nesterov) momentum.

    v = momentum v - lr g;   params += momentum v - lr g  (Nesterov)  or  v.
    """
    dtype = params.dtype.type
    lr, mom = dtype(learning_rate), dtype(momentum)
    v = mom * velocities - lr * grads
    if nesterov:
        return params + (mom * v - lr * grads), v
    return params + v, v


def adam_step(params, grads, ms, vs, learning_rate, beta_1, beta_2, epsilon, t):
    """(params, ms, vs) after Adam's update number t (t >= 1).

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);  params -= lr_t m / (sqrt(v) + eps).
    """
    dtype = params.dtype.type
    m = dtype(beta_1) * ms + dtype(1 - beta_1) * grads
    v = dtype(beta_2) * vs + dtype(1 - beta_2) * (grads * grads)
    lr_t = learning_rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    return params - dtype(lr_t) * m / (np.sqrt(v) + dtype(epsilon)), m, v


def adamw_step(params, grads, ms, vs, learning_rate, beta_1, beta_2, epsilon,
               weight_decay, t):
    """(params, ms, vs) after AdamW's update number t (t >= 1), as
    torch.optim.AdamW (decoupled decay; eps after the bias correction).

    params *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    params -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    """
    dtype = params.dtype.type
    decayed = params * dtype(1 - learning_rate * weight_decay)
    m = dtype(beta_1) * ms + dtype(1 - beta_1) * grads
    v = dtype(beta_2) * vs + dtype(1 - beta_2) * (grads * grads)
    step = learning_rate / (1 - beta_1 ** t)
    denom = np.sqrt(v) / dtype(np.sqrt(1 - beta_2 ** t)) + dtype(epsilon)
    return decayed - dtype(step) * m / denom, m, v


def rmsprop_step(params, grads, vs, learning_rate, rho, epsilon):
    """(params, vs) after one RMSprop update (no momentum, not centred).

    v = rho v + (1 - rho) g^2;  params -= lr g / (sqrt(v) + eps).
    """
    dtype = params.dtype.type
    v = dtype(rho) * vs + dtype(1 - rho) * (grads * grads)
    return params - dtype(learning_rate) * grads / (np.sqrt(v) + dtype(epsilon)), v


def train_epoch(X, Y, sample_weight, order, batch_size, units, hidden, output,
                loss_name, alpha, params, solver, learning_rate=0.001,
                momentum=0.9, nesterov=False, beta_1=0.9, beta_2=0.999,
                epsilon=1e-8, t=0, state_1=None, state_2=None, rho=0.9,
                huber_delta=1.0, weight_decay=0.0):
    """One epoch of mini-batch training.

    The rows are taken in ``order`` (0..n-1 when it is None or empty),
    batch_size at a time, the last batch possibly shorter. Each batch's loss
    and gradient are computed with the current parameters, loss * rows is
    accumulated, then the parameters are updated ("sgd", "adam", or "rmsprop",
    whose state_1 is the average of squared gradients). t counts
    the updates made: it is incremented before each one, whatever the solver
    (Adam's bias correction uses the incremented value; SGD ignores it).

    A batch whose sample weights sum to 0 carries nothing to learn from (its
    loss and gradient would divide by s = 0): it is skipped, adding nothing to
    the total and making no update (cbp's rule).

    Returns a dict: total (the accumulated sum), t, params, state_1, state_2
    and grads (the gradient of the last batch used).
    """
    n = len(X)
    index = np.arange(n) if order is None or len(order) == 0 else np.asarray(order)
    weighted = sample_weight is not None and len(sample_weight) > 0
    params = params.copy()
    state_1 = np.zeros_like(params) if state_1 is None else state_1.copy()
    state_2 = np.zeros_like(params) if state_2 is None else state_2.copy()
    total = 0.0
    grads = None
    for start in range(0, n, batch_size):
        rows = index[start:start + batch_size]
        if weighted and not np.sum(sample_weight[rows], dtype=np.float64) > 0:
            continue
        result = loss_grad(X[rows], Y[rows], sample_weight[rows] if weighted else None,
                           units, hidden, output, loss_name, alpha, params, huber_delta)
        total += result["loss"] * len(rows)
        grads = result["grads"]
        t += 1
        if solver == "sgd":
            params, state_1 = sgd_step(params, grads, state_1, learning_rate,
                                       momentum, nesterov)
        elif solver == "adam":
            params, state_1, state_2 = adam_step(params, grads, state_1, state_2,
                                                 learning_rate, beta_1, beta_2,
                                                 epsilon, t)
        elif solver == "adamw":
            params, state_1, state_2 = adamw_step(params, grads, state_1, state_2,
                                                  learning_rate, beta_1, beta_2,
                                                  epsilon, weight_decay, t)
        elif solver == "rmsprop":
            params, state_1 = rmsprop_step(params, grads, state_1, learning_rate, rho,
                                           epsilon)
        else:
            raise ValueError(f"unknown solver {solver!r}")
    return {"total": total, "t": t, "params": params, "state_1": state_1,
            "state_2": state_2, "grads": grads}


def random_targets(rng, loss, n_rows, n_outputs, dtype):
    """Targets (n_rows, n_outputs) of ``dtype`` that ``loss`` accepts, drawn
    from the Generator ``rng``: reals, one-hot rows, 0/1 labels, or counts
    (zeros included)."""
    if loss == "squared_error":
        Y = rng.normal(size=(n_rows, n_outputs))
    elif loss in ("absolute_error", "huber"):
        # wide enough that residuals fall on both sides of a Huber delta of 1
        Y = rng.normal(scale=2.0, size=(n_rows, n_outputs))
    elif loss == "log_loss":
        Y = np.eye(n_outputs)[rng.integers(0, n_outputs, size=n_rows)]
    elif loss == "binary_log_loss":
        Y = rng.integers(0, 2, size=(n_rows, n_outputs))
    else:  # poisson
        Y = rng.poisson(1.5, size=(n_rows, n_outputs))
    return np.ascontiguousarray(Y, dtype=dtype)


def random_params(rng, units, dtype):
    """A flat parameter vector for ``units``, Glorot-uniform weights and
    intercepts drawn from the Generator ``rng``, in ``dtype``."""
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(units[:-1], units[1:]):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        coefs.append(rng.uniform(-bound, bound, size=(fan_in, fan_out)))
        intercepts.append(rng.uniform(-bound, bound, size=fan_out))
    return pack(coefs, intercepts).astype(dtype)


def csr(X, stored=None, index_dtype=np.int32):
    """X as a scipy.sparse CSR matrix storing exactly the entries where the
    boolean mask ``stored`` is True (default X != 0): zeros can be stored
    explicitly, and a row can store nothing. Every non-zero of X must be
    stored. Column indices and row pointers are of ``index_dtype``."""
    X = np.asarray(X)
    stored = X != 0 if stored is None else np.asarray(stored, dtype=bool)
    if np.any(X[~stored]):
        raise ValueError("every non-zero of X must be stored")
    rows, columns = np.nonzero(stored)  # row by row, columns ascending
    indptr = np.concatenate([[0], np.cumsum(stored.sum(axis=1))]).astype(index_dtype)
    matrix = scipy.sparse.csr_matrix(
        (X[rows, columns], columns.astype(index_dtype), indptr), shape=X.shape)
    # (scipy narrows int64 index arrays whose values fit in int32: put back
    # the ones asked for)
    matrix.indices = columns.astype(index_dtype)
    matrix.indptr = indptr
    return matrix


# ---------------------------------------------------------------------------
# Batch normalisation and dropout in the hidden layers
# ---------------------------------------------------------------------------
#
# Hidden layer l (l < L - 1), in training mode, as torch.nn.Linear ->
# BatchNorm1d -> activation -> Dropout:
#
#     z = a_in @ W_l + b_l
#     x_hat = (z - mean_rows(z)) / sqrt(var_rows(z) + eps)     (biased variance)
#     y = gamma_l x_hat + beta_l                  (batch_norm; else y = z)
#     a = g(y)
#     a_out = a * mask_l,  mask_l in {0, 1 / (1 - p_l)}         (dropout)
#
# Backward, for delta = dJ/da_out (times s):
#     delta_y = delta * mask_l * g'(y)
#     dJ/dgamma_l = sum_rows(delta_y * x_hat) / s;  dJ/dbeta_l = sum_rows(delta_y) / s
#     delta_z = gamma_l / sqrt(var + eps)
#               * (delta_y - mean_rows(delta_y) - x_hat mean_rows(delta_y * x_hat))
#
# (the last line is d/dz of the normalisation: the rows are coupled through
# their mean and variance). Evaluation mode normalises by the running
# statistics and drops nothing. The running statistics move after each batch:
# running_mean := (1 - m) running_mean + m mean, running_var := (1 - m)
# running_var + m var n / (n - 1).
#
# Flat layout with batch normalisation: the weights as above, then every
# gamma_l, every beta_l, every running_mean_l, every running_var_l.

BN_PARTS = ("gammas", "betas", "running_means", "running_vars")


def split_layers(params, units):
    """(weights, batch_norm): the weights' flat vector (copy) and a dict of
    the four lists of per-hidden-layer vectors (copies), or None."""
    units = [int(u) for u in units]
    n = n_params(units)
    if params.shape[0] == n:
        return params.copy(), None
    hidden = units[1:-1]
    position, parts = n, {}
    for name in BN_PARTS:
        parts[name] = []
        for width in hidden:
            parts[name].append(params[position:position + width].copy())
            position += width
    if position != params.shape[0]:
        raise ValueError(f"params has {params.shape[0]} values, expected {position}")
    return params[:n].copy(), parts


def join_layers(weights, batch_norm):
    """The flat vector of split_layers' parts."""
    if batch_norm is None:
        return weights.copy()
    return np.concatenate([weights] + [v for name in BN_PARTS for v in batch_norm[name]])


def dropout_bits(seed, rows, layer, units):
    """The kernel's counter-based 32-bit words (src/_layers.pxd), for stream
    rows ``rows`` (n,) and hidden layer ``layer``: (n, units) uint32. A
    restatement of SplitMix64's and MurmurHash3's finalisers in NumPy's
    wrapping unsigned integers."""
    def mix64(z):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    def fmix32(h):
        h = (h ^ (h >> np.uint32(16))) * np.uint32(0x85EBCA6B)
        h = (h ^ (h >> np.uint32(13))) * np.uint32(0xC2B2AE35)
        return h ^ (h >> np.uint32(16))

    with np.errstate(over="ignore"):
        rows = np.asarray(rows, dtype=np.uint64)
        key = mix64(mix64(np.uint64(seed) + rows * np.uint64(0x9E3779B97F4A7C15))
                    ^ (np.uint64(layer) * np.uint64(0xD1B54A32D192ED03)))
        key = (key & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        unit = np.arange(units, dtype=np.uint32) * np.uint32(0x9E3779B9)
        return fmix32(key[:, None] + unit[None, :])


def dropout_masks(seed, first_row, n_rows, units, rates, dtype):
    """Per hidden layer, the mask (n_rows, units[l + 1]): 1 / (1 - p) where
    the 32-bit word is >= round(p 2^32), else 0; None where p == 0."""
    masks = []
    rows = np.arange(first_row, first_row + n_rows)
    for k, p in enumerate(rates):
        if p == 0:
            masks.append(None)
            continue
        bits = dropout_bits(seed, rows, k, int(units[k + 1]))
        threshold = min(int(p * 2.0**32 + 0.5), 2**32 - 1)
        masks.append(np.where(bits >= threshold, dtype(1.0 / (1.0 - p)), dtype(0)).astype(dtype))
    return masks


def forward_layers(X, units, params, hidden, output, masks=None, training=True,
                   eps=1e-5):
    """The forward pass with batch normalisation (if params holds it) and
    dropout masks (a list per hidden layer, None entries for none).

    Returns a dict: activations [X, a_out^(1), ..., a^(L)] (after dropout),
    ys (the hidden layers' y), x_hats, inv_stds, means, variances (biased;
    training mode), and the unmasked hidden activations."""
    weights, bn = split_layers(params, units)
    coefs, intercepts = unpack(weights, units)
    L = len(coefs)
    dtype = params.dtype.type
    out = {"activations": [X], "ys": [], "x_hats": [], "inv_stds": [], "means": [],
           "variances": [], "unmasked": []}
    for l in range(L):
        z = out["activations"][-1] @ coefs[l] + intercepts[l]
        if l == L - 1:
            out["activations"].append(activation(output, z))
            break
        if bn is not None:
            if training:
                mean = z.mean(axis=0)
                var = ((z - mean) ** 2).mean(axis=0)
            else:
                mean, var = bn["running_means"][l], bn["running_vars"][l]
            inv_std = dtype(1) / np.sqrt(var + dtype(eps))
            x_hat = (z - mean) * inv_std
            y = bn["gammas"][l] * x_hat + bn["betas"][l]
            out["x_hats"].append(x_hat)
            out["inv_stds"].append(inv_std)
            out["means"].append(mean)
            out["variances"].append(var)
        else:
            y = z
        a = activation(hidden, y)
        out["ys"].append(y)
        out["unmasked"].append(a)
        if training and masks is not None and masks[l] is not None:
            a = a * masks[l]
        out["activations"].append(a)
    return out


def loss_grad_layers(X, Y, sample_weight, units, hidden, output, loss_name, alpha,
                     params, masks=None, eps=1e-5):
    """loss_grad with batch normalisation and dropout (training mode): J and
    the flat gradient of the trained values (weights, then gammas, betas)."""
    dtype = params.dtype.type
    weights, bn = split_layers(params, units)
    coefs, intercepts = unpack(weights, units)
    L = len(coefs)
    f = forward_layers(X, units, params, hidden, output, masks, True, eps)
    acts = f["activations"]
    s = weight_sum(len(X), sample_weight)
    penalty = sum(float(np.sum(c.astype(np.float64) ** 2)) for c in coefs)
    J = (weighted_loss_sum(loss_name, acts[-1], Y, sample_weight)
         + 0.5 * alpha * penalty) / s
    s_t, alpha_t, n = dtype(s), dtype(alpha), dtype(len(X))
    coef_grads, intercept_grads = [None] * L, [None] * L
    gamma_grads, beta_grads = [None] * (L - 1), [None] * (L - 1)
    delta = output_delta(acts[-1], Y, sample_weight, loss_name)
    for l in range(L - 1, -1, -1):
        coef_grads[l] = (acts[l].T @ delta + alpha_t * coefs[l]) / s_t
        intercept_grads[l] = delta.sum(axis=0) / s_t
        if l == 0:
            break
        k = l - 1
        delta = delta @ coefs[l].T
        if masks is not None and masks[k] is not None:
            delta = delta * masks[k]
        delta = delta * derivative(hidden, f["ys"][k])
        if bn is not None:
            x_hat = f["x_hats"][k]
            gamma_sum = (delta * x_hat).sum(axis=0)
            beta_sum = delta.sum(axis=0)
            gamma_grads[k], beta_grads[k] = gamma_sum / s_t, beta_sum / s_t
            delta = bn["gammas"][k] * f["inv_stds"][k] * (
                delta - beta_sum / n - x_hat * (gamma_sum / n))
    grads = pack(coef_grads, intercept_grads)
    if bn is not None:
        grads = np.concatenate([grads] + gamma_grads + beta_grads)
    return {"loss": J, "grads": grads, "forward": f}


def running_statistics(batch_norm, means, variances, n_rows, momentum=0.1):
    """The running statistics after one batch of n_rows rows whose hidden
    layers had these means and (biased) variances."""
    new = {name: [v.copy() for v in batch_norm[name]] for name in BN_PARTS}
    m = momentum
    for k, (mean, var) in enumerate(zip(means, variances)):
        new["running_means"][k] = (1 - m) * batch_norm["running_means"][k] + m * mean
        new["running_vars"][k] = ((1 - m) * batch_norm["running_vars"][k]
                                  + m * var * n_rows / (n_rows - 1))
    return new


# ---------------------------------------------------------------------------
# Ensembles of k members (TabM's forms)
# ---------------------------------------------------------------------------
#
# Member m's layer l, for the arrays the layer holds (``kinds[l]`` = (weights
# per member, intercepts per member, input scaling r, output scaling s); an
# array not held per member is shared by every member, a scaling not held is
# 1):
#
#     z_m^(l) = ((a_m^(l) * r_m^(l)) @ W_m^(l)) * s_m^(l) + b_m^(l),
#
# a_m^(0) = X for every member. The loss is the mean of the members' losses,
# plus the L2 term 0.5 alpha sum ||W||^2 / s over every weight matrix once
# (a shared one once). Flat layout: every coefs[l] ((k, in, out) per member,
# (in, out) shared), every intercepts[l] ((k, out) or (out,)), every r
# (k, in), every s (k, out), layer by layer.

def ensemble_split(params, units, k, kinds):
    """{'coefs', 'intercepts', 'r', 's'}: per layer, a view of params (None
    for a scaling the layer does not hold)."""
    L = len(units) - 1
    start = 0
    parts = {"coefs": [], "intercepts": [], "r": [], "s": []}

    def take(shape):
        nonlocal start
        size = int(np.prod(shape))
        view = params[start:start + size].reshape(shape)
        start += size
        return view

    for l in range(L):
        parts["coefs"].append(take(((k,) if kinds[l][0] else ()) + (units[l], units[l + 1])))
    for l in range(L):
        parts["intercepts"].append(take(((k,) if kinds[l][1] else ()) + (units[l + 1],)))
    for l in range(L):
        parts["r"].append(take((k, units[l])) if kinds[l][2] else None)
    for l in range(L):
        parts["s"].append(take((k, units[l + 1])) if kinds[l][3] else None)
    assert start == len(params), "params does not match the layout"
    return parts


def _member(array, m, per_member):
    return array[m] if per_member else array


def ensemble_forward(X, units, params, k, kinds, hidden, output):
    """Per member m: (zs[m], activations[m], scaled[m], products[m]) with
    zs[m][l] = z_m^(l), activations[m] = [X, a_m^(1), ..., a_m^(L)],
    scaled[m][l] = a_m^(l) * r_m^(l) (or a_m^(l)), products[m][l] = scaled @ W."""
    parts = ensemble_split(params, units, k, kinds)
    L = len(units) - 1
    result = []
    for m in range(k):
        zs, activations, scaled, products = [], [X], [], []
        for l in range(L):
            a = activations[-1]
            u = a * parts["r"][l][m] if kinds[l][2] else a
            p = u @ _member(parts["coefs"][l], m, kinds[l][0])
            z = (p * parts["s"][l][m] if kinds[l][3] else p) \
                + _member(parts["intercepts"][l], m, kinds[l][1])
            scaled.append(u)
            products.append(p)
            zs.append(z)
            activations.append(activation(output if l == L - 1 else hidden, z))
        result.append((zs, activations, scaled, products))
    return result


def ensemble_predict(X, units, params, k, kinds, hidden, output):
    """Every member's output: (n, k, units[-1])."""
    members = ensemble_forward(X, units, params, k, kinds, hidden, output)
    return np.stack([activations[-1] for _, activations, _, _ in members], axis=1)


def ensemble_loss(X, Y, sample_weight, units, params, k, kinds, hidden, output,
                  loss_name, alpha):
    """J: the mean of the members' losses, plus the L2 term."""
    y_pred = ensemble_predict(X, units, params, k, kinds, hidden, output)
    s = weight_sum(len(X), sample_weight)
    losses = [weighted_loss_sum(loss_name, y_pred[:, m], Y, sample_weight)
              for m in range(k)]
    penalty = sum(float(np.sum(c.astype(np.float64) ** 2))
                  for c in ensemble_split(params, units, k, kinds)["coefs"])
    return (sum(losses) / k + 0.5 * alpha * penalty) / s


def ensemble_loss_grad(X, Y, sample_weight, units, params, k, kinds, hidden, output,
                       loss_name, alpha):
    """(J, dJ/dparams in the flat layout), from the equations: with
    delta_m = dJ/dz_m (times s), for each layer

        db_m = sum_rows(delta_m)            ds_m = sum_rows(delta_m * p_m)
        dp_m = delta_m * s_m                dW_m = u_m.T @ dp_m
        du_m = dp_m @ W_m.T                 dr_m = sum_rows(du_m * a_m)
        da_m = du_m * r_m,  delta_m^(l-1) = da_m * g'(z_m^(l-1)),

    a shared array's gradient the sum of its members' (and 1/k for the mean
    of the members' losses)."""
    dtype = params.dtype.type
    L = len(units) - 1
    parts = ensemble_split(params, units, k, kinds)
    grads = np.zeros_like(params)
    grad_parts = ensemble_split(grads, units, k, kinds)
    s = weight_sum(len(X), sample_weight)
    members = ensemble_forward(X, units, params, k, kinds, hidden, output)
    scale = dtype(1.0 / (k * s))
    for m, (zs, activations, scaled, products) in enumerate(members):
        delta = output_delta(activations[-1], Y, sample_weight, loss_name) * scale
        for l in range(L - 1, -1, -1):
            if kinds[l][1]:
                grad_parts["intercepts"][l][m] += delta.sum(axis=0)
            else:
                grad_parts["intercepts"][l] += delta.sum(axis=0)
            dp = delta
            if kinds[l][3]:
                grad_parts["s"][l][m] += (delta * products[l]).sum(axis=0)
                dp = delta * parts["s"][l][m]
            W = _member(parts["coefs"][l], m, kinds[l][0])
            dW = scaled[l].T @ dp
            if kinds[l][0]:
                grad_parts["coefs"][l][m] += dW
            else:
                grad_parts["coefs"][l] += dW
            if l == 0:
                if kinds[l][2]:
                    grad_parts["r"][l][m] += ((dp @ W.T) * activations[0]).sum(axis=0)
                break
            du = dp @ W.T
            if kinds[l][2]:
                grad_parts["r"][l][m] += (du * activations[l]).sum(axis=0)
                du = du * parts["r"][l][m]
            delta = du * derivative(hidden, zs[l - 1])
    for l in range(L):
        grad_parts["coefs"][l] += dtype(alpha / s) * parts["coefs"][l]
    J = ensemble_loss(X, Y, sample_weight, units, params, k, kinds, hidden, output,
                      loss_name, alpha)
    return J, grads


# ---------------------------------------------------------------------------
# learning-rate schedules
# ---------------------------------------------------------------------------

def coslog4(t):
    """RealMLP's coslog4 factor at training progress t in [0, 1], as
    pytabkit's CoslogFunc(4) defines it."""
    return 0.5 * (1 - np.cos(2 * np.pi * np.log2(1 + (2 ** 4 - 1) * t)))


def coslog4_epoch_mean(epoch, max_iter):
    """The mean of coslog4 over epoch ``epoch`` of ``max_iter``, by quadrature."""
    from scipy.integrate import quad

    t0, t1 = epoch / max_iter, (epoch + 1) / max_iter
    return quad(coslog4, t0, t1, epsabs=0, epsrel=1e-13)[0] / (t1 - t0)
