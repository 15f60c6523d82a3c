"""Specification of cbp's compiled kernel, checked against tests/reference.py.

Every test states one behaviour of the installed ``cbp._kernel``; the
parametrization ids name the activation, loss, depth, dtype, input, solver,
batch size, chunk size, ... of a failing case, and the assertion message
names the layer or the quantity that disagrees.

The kernel is driven through three objects: a Network (the layers, the
hidden activation, the loss -- which fixes the output activation --, the L2
penalty, whether the first layer reads CSR rows, and chunk_rows, the rows
that go through the layers at once), a Data (X dense or CSR, targets floating
or 0/1 bytes, optional sample weights) and an Optimizer (sgd or adam, its
hyper-parameters, its state vectors and its update count t). The reference
always computes on the dense X, with floating targets and each batch at
once: a CSR X, byte targets and batches split into chunks must give the
reference's numbers all the same.

Tolerances (kernel vs. reference, which computes in the same dtype):
  float64: rtol 1e-12 for single steps (one pass, one update), 1e-10 for a
           whole epoch; atol 1e-14 / 1e-12 for values that cancel to ~0.
  float32: rtol 1e-5; atol 1e-6 for values near 0 (the quantities compared
           are O(0.1 - 10), so this is a few float32 ulps of the inputs), 5e-6
           for a whole epoch (24 momentum updates accumulate rounding: the
           largest difference seen is 9e-7 on a parameter of 0.025).
A batch summed chunk by chunk is held to the same tolerances as one computed
at once: a loss_grad in chunks is one step (float64 rtol 1e-12), an epoch in
chunks is an epoch.
Measured worst |kernel - reference| / (atol + rtol |reference|), over the
loss_grad, forward and epoch cases of the grids below (dense and CSR input,
whole batches and chunks; AVX2 and portable builds): float64 0.07 (steps) and
0.002 (epochs); float32 0.64 (steps) and 0.24 (epochs). The CSR and chunked
cases alone: float64 0.07 and 0.0004, float32 0.5 and 0.08.
"""
import functools
import pickle
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse
from numpy.testing import assert_allclose, assert_array_equal

from cbp._dispatch import kernel  # the build this CPU runs (CBP_KERNEL=baseline: the portable one)
import reference as ref
from isolation import assert_raises_isolated
from kernel_paths import blocks_on_threads, gemm_path
from optional import optional

DTYPES = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]

STEP_TOL = {np.float32: dict(rtol=1e-5, atol=1e-6),
            np.float64: dict(rtol=1e-12, atol=1e-14)}
EPOCH_TOL = {np.float32: dict(rtol=1e-5, atol=5e-6),
             np.float64: dict(rtol=1e-10, atol=1e-12)}

N_ROWS = 24
N_FEATURES = 4
# batch sizes: single rows, a divisor of N_ROWS, a non-divisor (24 = 10 + 10 + 4)
BATCH_SIZES = [pytest.param(1, id="batch1"), pytest.param(6, id="batch6-divides-24"),
               pytest.param(10, id="batch10-does-not-divide-24")]
# "2wide": a layer of 24 x 16 = 384 > 256 coefficients, whose squared norm
# (the L2 term) the kernel takes with BLAS's dot rather than a loop
HIDDEN_LAYERS = {0: (), 1: (5,), 2: (5, 3), 4: (6, 3, 7, 4), "2wide": (24, 16),
                 # 4 * 70 + 70 * 70 = 5180 coefs: two of the update's tiles
                 "2tiles": (70, 70)}
N_OUTPUTS = {"squared_error": 3, "log_loss": 3, "binary_log_loss": 2, "poisson": 2,
             "absolute_error": 2, "huber": 2}
SOLVERS = {  # name: (kernel optimizer, nesterov, learning rate)
    "sgd": ("sgd", False, 0.05),
    "nesterov": ("sgd", True, 0.05),
    "adam": ("adam", False, 0.01),
    "rmsprop": ("rmsprop", False, 0.01),
    "adamw": ("adamw", False, 0.01),
}
MOMENTUM, BETA_1, BETA_2, RHO, EPSILON = 0.9, 0.9, 0.999, 0.9, 1e-8
WEIGHT_DECAY = 0.05  # adamw

# How X reaches the kernel: a C-contiguous array, or a scipy.sparse CSR
# matrix (Network(sparse_input=True)). A third input, "csr-int64" (column
# indices and row pointers int64 rather than scipy's usual int32), is
# compared with "csr" in test_csr_with_int64_indices_gives_the_same_results_as_int32.
INPUTS = [pytest.param("dense", id="dense"), pytest.param("csr", id="csr")]
# A CSR problem's X: about half its entries are 0; row EMPTY_ROW is all zero
# and stores nothing, row STORED_ZEROS_ROW is all zero and stores all its
# zeros explicitly, and other zeros are stored with probability 0.2.
CSR_DENSITY = 0.5
EMPTY_ROW, STORED_ZEROS_ROW = 2, 7


# ---------------------------------------------------------------------------
# Problems and calls into the kernel
# ---------------------------------------------------------------------------

class Problem:
    """A network, its parameters and a data set, all in one dtype, and the
    kernel objects and calls that compute on them.

    input: "dense", "csr" or "csr-int64" (INPUTS). A CSR problem has the
    same targets, weights and parameters as the dense problem of the same
    seed; its X has zeros (CSR_DENSITY, EMPTY_ROW, STORED_ZEROS_ROW). The
    reference is always given the dense X.
    """

    def __init__(self, hidden="tanh", loss="squared_error", depth=2,
                 dtype=np.float64, weighted=True, alpha=0.1, n=N_ROWS, seed=0,
                 input="dense", n_features=N_FEATURES, density=CSR_DENSITY):
        rng = np.random.default_rng(seed)
        self.hidden, self.loss, self.alpha = hidden, loss, alpha
        self.output = ref.OUTPUT_FOR_LOSS[loss]
        self.dtype, self.input = dtype, input
        k = N_OUTPUTS[loss]
        self.units = np.array((n_features, *HIDDEN_LAYERS[depth], k), dtype=np.intp)
        self.X = rng.normal(size=(n, n_features)).astype(dtype)
        self.Y = ref.random_targets(rng, loss, n, k, dtype)
        self.sample_weight = (rng.uniform(0.5, 2.0, size=n).astype(dtype) if weighted
                              else None)
        self.params = ref.random_params(rng, self.units, dtype)
        self.stored_zeros = np.zeros(self.X.shape, dtype=bool)
        if input != "dense":
            self.X[rng.uniform(size=self.X.shape) >= density] = 0
            special = [r for r in (EMPTY_ROW, STORED_ZEROS_ROW) if r < n]
            self.X[special] = 0
            self.stored_zeros = (self.X == 0) & (rng.uniform(size=self.X.shape) < 0.2)
            if EMPTY_ROW < n:
                self.stored_zeros[EMPTY_ROW] = False
            if STORED_ZEROS_ROW < n:
                self.stored_zeros[STORED_ZEROS_ROW] = True

    @property
    def sparse(self):
        return self.input != "dense"

    def take(self, rows):
        """The problem restricted to (or reordered as) ``rows``."""
        p = object.__new__(Problem)
        p.__dict__.update(self.__dict__)
        p.X, p.Y, p.stored_zeros = self.X[rows], self.Y[rows], self.stored_zeros[rows]
        if self.sample_weight is not None:
            p.sample_weight = self.sample_weight[rows]
        return p

    # -- the kernel's objects ------------------------------------------------

    def kernel_X(self):
        if not self.sparse:
            return self.X
        return ref.csr(self.X, (self.X != 0) | self.stored_zeros,
                       np.int64 if self.input == "csr-int64" else np.int32)

    def byte_Y(self):
        assert np.all((self.Y == 0) | (self.Y == 1)), "byte targets are 0/1"
        return self.Y.astype(np.uint8)

    def data(self, targets="float"):
        """kernel.Data of the problem; targets "float", "bytes" or None."""
        Y = (self.Y if targets == "float" else self.byte_Y() if targets == "bytes"
             else None)
        return kernel.Data(self.kernel_X(), Y, self.sample_weight)

    def network(self, chunk_rows=None, block_rows=0):
        """kernel.Network of the problem; chunk_rows defaults to all rows."""
        return kernel.Network(self.units, self.hidden, self.loss, self.alpha,
                              self.sparse, len(self.X) if chunk_rows is None else chunk_rows,
                              block_rows=block_rows)

    def optimizer(self, solver, params, t=0, state_1=None, state_2=None):
        """kernel.Optimizer for SOLVERS[solver], starting from the given state
        (velocities, or ms and vs) when one is given, else from zeros."""
        kind, nesterov, lr = SOLVERS[solver]
        opt = kernel.Optimizer(kind, params, learning_rate=lr, momentum=MOMENTUM,
                               nesterov=nesterov, beta_1=BETA_1, beta_2=BETA_2,
                               rho=RHO, epsilon=EPSILON, weight_decay=WEIGHT_DECAY,
                               t=t)
        if state_1 is not None and kind == "sgd":
            opt.state["velocities"] = state_1.copy()
        if state_1 is not None and kind in ("adam", "adamw"):
            opt.state["ms"], opt.state["vs"] = state_1.copy(), state_2.copy()
        if state_1 is not None and kind == "rmsprop":
            opt.state["vs"] = state_1.copy()
        return opt

    # -- calls ---------------------------------------------------------------

    def kernel_forward(self, chunk_rows=None):
        net = self.network(chunk_rows)
        out = np.full(self.Y.shape, np.nan, dtype=self.dtype)
        work = np.full(net.workspace_size(kernel.FORWARD_PART), np.nan, dtype=self.dtype)
        kernel.forward(net, self.data(targets=None), self.params, out, work)
        return out

    def reference_forward(self):
        return ref.predict(self.X, self.units, self.params, self.hidden, self.output)

    def kernel_loss_grad(self, params=None, chunk_rows=None):
        """loss_grad's J and gradient, and the activations and deltas of the
        last chunk (the rows last_chunk), which the workspace holds after it."""
        params = self.params if params is None else params
        net = self.network(chunk_rows)
        n = len(self.X)
        grads = np.full(net.n_params, np.nan, dtype=self.dtype)
        # NaN-filled scratch: any read of a value the kernel did not write shows
        work = np.full(net.workspace_size(kernel.BACKWARD_PART), np.nan, dtype=self.dtype)
        J = kernel.loss_grad(net, self.data(), params, grads, work)
        last = (n - 1) % net.chunk_rows + 1
        activations, deltas = net.workspace_views(work, last)
        coef_grads, intercept_grads = ref.unpack(grads, self.units)
        return {"loss": J, "grads": grads, "coef_grads": coef_grads,
                "intercept_grads": intercept_grads,
                "activations": [a.copy() for a in activations],
                "deltas": [d.copy() for d in deltas], "last_chunk": slice(n - last, n)}

    def reference_loss_grad(self, params=None):
        return ref.loss_grad(self.X, self.Y, self.sample_weight, self.units, self.hidden,
                             self.output, self.loss, self.alpha,
                             self.params if params is None else params)

    def kernel_epoch(self, solver, batch_size, order, params=None, t=0,
                     state_1=None, state_2=None, chunk_rows=None, targets="float",
                     block_rows=0, n_threads=1, check_finite=False):
        """One train_epoch from params (default: the problem's) and the given
        optimizer state; chunk_rows defaults to batch_size; block_rows > 0:
        batches in blocks of that many rows, on n_threads threads."""
        params = (self.params if params is None else params).copy()
        net = self.network(batch_size if chunk_rows is None else chunk_rows, block_rows)
        opt = self.optimizer(solver, params, t, state_1, state_2)
        grads = np.full_like(params, np.nan)
        work = np.full(net.workspace_size(kernel.EPOCH_PART), np.nan, dtype=self.dtype)
        order = np.empty(0, dtype=np.intp) if order is None else order
        total = kernel.train_epoch(net, opt, self.data(targets), order, batch_size,
                                   params, grads, work, check_finite, n_threads)
        state = [opt.state[name] for name in kernel.OPTIMIZER_STATE[opt.kind]]
        return {"total": total, "t": opt.t, "params": params, "state_1": state[0],
                "state_2": state[1] if len(state) > 1 else None, "optimizer": opt}

    def reference_epoch(self, solver, batch_size, order, params=None, t=0,
                        state_1=None, state_2=None):
        kind, nesterov, lr = SOLVERS[solver]
        return ref.train_epoch(self.X, self.Y, self.sample_weight, order, batch_size,
                               self.units, self.hidden, self.output, self.loss,
                               self.alpha, self.params if params is None else params,
                               kind, learning_rate=lr, momentum=MOMENTUM,
                               nesterov=nesterov, beta_1=BETA_1, beta_2=BETA_2,
                               rho=RHO, epsilon=EPSILON, t=t, state_1=state_1,
                               state_2=state_2, weight_decay=WEIGHT_DECAY)


# The kernel computes small matrix products (m n k <= a threshold) in its
# micro-kernels and larger ones with BLAS; both paths are tested on every network.
GEMM_PATHS = [pytest.param("micro", id="micro"), pytest.param("blas", id="blas")]


def shuffled_order(n=N_ROWS, seed=1):
    return np.random.default_rng(seed).permutation(n).astype(np.intp)


def _id(hidden, loss, depth, weighted, alpha):
    return (f"{hidden}-{loss}-{depth}{'-' if isinstance(depth, str) else ''}hidden-"
            f"{'weighted' if weighted else 'unweighted'}-{'L2' if alpha else 'noL2'}")


def _hidden_x_loss_cases():
    """Every hidden activation x every loss, 2 hidden layers, weights and L2."""
    return [pytest.param(hidden, loss, 2, True, 0.1, id=_id(hidden, loss, 2, True, 0.1))
            for hidden in ref.HIDDEN_ACTIVATIONS for loss in ref.LOSSES]


def _depth_cases():
    """Every depth x with/without sample weights x with/without L2; the
    activation and the loss rotate so that each depth meets several."""
    cases, i = [], 0
    for depth in HIDDEN_LAYERS:
        for weighted in (False, True):
            for alpha in (0.0, 0.1):
                hidden = ref.HIDDEN_ACTIVATIONS[i % 4]
                loss = ref.LOSSES[(i // 4 + i) % 4]
                cases.append(pytest.param(hidden, loss, depth, weighted, alpha,
                                          id=_id(hidden, loss, depth, weighted, alpha)))
                i += 1
    return cases


DEPTH_CASES = _depth_cases()
NETWORK_CASES = _hidden_x_loss_cases() + [
    c for c in DEPTH_CASES if c.id not in {h.id for h in _hidden_x_loss_cases()}]
HIDDEN_X_LOSS = [pytest.param(h, l, id=f"{h}-{l}")
                 for h in ref.HIDDEN_ACTIVATIONS for l in ref.LOSSES]


@functools.lru_cache(maxsize=None)
def _reference_loss_grad(hidden, loss, depth, weighted, alpha, dtype, input):
    return Problem(hidden, loss, depth, dtype, weighted, alpha,
                   input=input).reference_loss_grad()


@functools.lru_cache(maxsize=None)
def _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path="default",
                    input="dense"):
    """(kernel's, reference's) loss_grad results, cached across the tests."""
    with gemm_path(path):
        got = Problem(hidden, loss, depth, dtype, weighted, alpha,
                      input=input).kernel_loss_grad()
    return got, _reference_loss_grad(hidden, loss, depth, weighted, alpha, dtype, input)


# ---------------------------------------------------------------------------
# Activations and their derivatives
# ---------------------------------------------------------------------------

def _z(dtype, seed=0):
    Z = np.random.default_rng(seed).normal(scale=3.0, size=(7, 5)).astype(dtype)
    Z[0, 0] = 0.0  # the relu kink
    return Z


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["identity", "logistic", "tanh", "relu", "softmax", "exp",
                                  "leaky_relu", "gelu", "silu", "selu", "mish"])
def test_activation_matches_reference(name, dtype):
    Z = _z(dtype)
    A = Z.copy()
    kernel.apply_activation(name, A)
    assert_allclose(A, ref.activation(name, Z), err_msg=f"{name}(z)", **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_is_stable_for_large_inputs(dtype):
    Z = np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1000.0, -1000.0]], dtype=dtype)
    A = Z.copy()
    kernel.apply_activation("softmax", A)
    assert np.all(np.isfinite(A)), f"softmax overflowed: {A}"
    assert_allclose(A.sum(axis=1), 1.0, rtol=1e-6, err_msg="softmax rows must sum to 1")
    assert_allclose(A, ref.activation("softmax", Z), **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_saturates_without_nan(dtype):
    Z = np.array([[-1000.0, 1000.0]], dtype=dtype)  # exp(1000) overflows to inf
    kernel.apply_activation("logistic", Z)
    assert_array_equal(Z, [[0.0, 1.0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_keeps_nan_as_np_maximum_does(dtype):
    Z = np.array([[np.nan, -1.0, 2.0]], dtype=dtype)
    kernel.apply_activation("relu", Z)
    assert_array_equal(Z, [[np.nan, 0.0, 2.0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ref.HIDDEN_ACTIVATIONS)
def test_derivative_matches_reference(name, dtype):
    """apply_derivative(A = g(z), delta, Z = z) multiplies delta by g'(z)."""
    Z = _z(dtype)
    delta = np.random.default_rng(1).normal(size=Z.shape).astype(dtype)
    A = ref.activation(name, Z)
    out = delta.copy()
    kernel.apply_derivative(name, A, out, Z)
    assert_allclose(out, delta * ref.derivative(name, Z), err_msg=f"{name}'(z) * delta",
                    **STEP_TOL[dtype])


def _y_for(loss, shape, rng):
    if loss == "squared_error":
        return rng.normal(size=shape)
    if loss == "log_loss":
        return np.eye(shape[1])[rng.integers(0, shape[1], size=shape[0])]
    if loss == "binary_log_loss":
        return rng.integers(0, 2, size=shape).astype(float)
    return rng.poisson(1.5, size=shape).astype(float)


@pytest.mark.parametrize("loss", ref.LOSSES)
def test_output_delta_is_derivative_of_loss_through_output_activation(loss):
    """For each loss and its canonical output activation (identity, softmax,
    logistic, exp), the kernel's delta = y_pred - y is dJ_i/dz: the output
    activation's derivative is folded into the loss. Central differences in z."""
    rng = np.random.default_rng(2)
    output = ref.OUTPUT_FOR_LOSS[loss]
    Z = rng.normal(size=(5, 3))
    Y = np.ascontiguousarray(_y_for(loss, Z.shape, rng))
    y_pred = ref.activation(output, Z)
    delta = np.empty_like(Z)
    kernel.loss_and_delta(loss, y_pred, Y, np.empty(0), delta)
    h = 1e-6
    numeric = np.empty_like(Z)
    for i in range(Z.shape[0]):
        for k in range(Z.shape[1]):
            Zp, Zm = Z.copy(), Z.copy()
            Zp[i, k] += h
            Zm[i, k] -= h
            numeric[i, k] = (ref.sample_losses(loss, ref.activation(output, Zp), Y)[i]
                             - ref.sample_losses(loss, ref.activation(output, Zm), Y)[i]) / (2 * h)
    assert_allclose(delta, numeric, rtol=1e-6, atol=1e-8,
                    err_msg=f"delta of {loss} is not dJ/dz through {output}")


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------

def _loss_inputs(loss, dtype, weighted):
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(9, N_OUTPUTS[loss]))
    y_pred = ref.activation(ref.OUTPUT_FOR_LOSS[loss], Z).astype(dtype)
    Y = np.ascontiguousarray(_y_for(loss, Z.shape, rng), dtype=dtype)
    sw = rng.uniform(0.5, 2.0, size=9).astype(dtype) if weighted else np.empty(0, dtype)
    return y_pred, Y, sw


WEIGHTED = [pytest.param(False, id="unweighted"), pytest.param(True, id="weighted")]


@pytest.mark.parametrize("weighted", WEIGHTED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ref.LOSSES)
def test_loss_value_matches_reference(loss, dtype, weighted):
    y_pred, Y, sw = _loss_inputs(loss, dtype, weighted)
    got = kernel.loss_and_delta(loss, y_pred, Y, sw, np.empty_like(y_pred))
    expected = ref.weighted_loss_sum(loss, y_pred, Y, sw)
    assert_allclose(got, expected, err_msg=f"sum_i w_i J_i of {loss}", **STEP_TOL[dtype])


@pytest.mark.parametrize("weighted", WEIGHTED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ref.LOSSES)
def test_output_delta_matches_reference(loss, dtype, weighted):
    y_pred, Y, sw = _loss_inputs(loss, dtype, weighted)
    delta = np.full_like(y_pred, np.nan)
    kernel.loss_and_delta(loss, y_pred, Y, sw, delta)
    assert_allclose(delta, ref.output_delta(y_pred, Y, sw, loss), err_msg="w dJ/dz",
                    **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("huber_delta", [0.1, 0.7, 3.0])
def test_huber_loss_and_delta_match_reference_for_any_delta(huber_delta, dtype):
    y_pred, Y, sw = _loss_inputs("huber", dtype, True)
    delta = np.full_like(y_pred, np.nan)
    got = kernel.loss_and_delta("huber", y_pred, Y, sw, delta, huber_delta)
    assert_allclose(got, ref.weighted_loss_sum("huber", y_pred, Y, sw, huber_delta),
                    rtol=1e-12 if dtype == np.float64 else 1e-6)
    assert_allclose(delta, ref.output_delta(y_pred, Y, sw, "huber", huber_delta),
                    **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_absolute_error_subgradient_is_zero_at_a_zero_residual(dtype):
    y_pred = np.array([[1.0, -2.0, 0.5]], dtype=dtype)
    Y = np.array([[1.0, -3.0, 0.5]], dtype=dtype)
    delta = np.full_like(y_pred, np.nan)
    J = kernel.loss_and_delta("absolute_error", y_pred, Y, np.empty(0, dtype), delta)
    assert J == 1.0
    assert_array_equal(delta, [[0.0, 1.0, 0.0]])


def test_huber_delta_must_be_positive():
    with pytest.raises(ValueError, match="huber_delta"):
        kernel.Network([3, 2], "relu", "huber", huber_delta=0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_squared_error_is_summed_over_outputs_not_averaged(dtype):
    """0.5 sum_k (y - y_pred)^2 per sample, so that delta = y_pred - y is its
    gradient (scikit-learn divides by n_outputs in the loss only, #8349)."""
    y_pred = np.zeros((2, 4), dtype=dtype)
    Y = np.ones((2, 4), dtype=dtype)
    got = kernel.loss_and_delta("squared_error", y_pred, Y, np.empty(0, dtype),
                                np.empty_like(y_pred))
    assert got == pytest.approx(0.5 * 2 * 4), "squared error must sum over the 4 outputs"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, y_pred, y", [
    pytest.param("log_loss", [[0.0, 1.0]], [[1.0, 0.0]], id="log_loss-p0"),
    pytest.param("binary_log_loss", [[0.0]], [[1.0]], id="binary_log_loss-p0"),
    pytest.param("binary_log_loss", [[1.0]], [[0.0]], id="binary_log_loss-p1"),
])
def test_log_losses_clip_probabilities_to_eps(loss, y_pred, y, dtype):
    """A probability of 0 (or 1) for the wrong class costs -log(eps), eps of the dtype."""
    y_pred = np.array(y_pred, dtype=dtype)
    got = kernel.loss_and_delta(loss, y_pred, np.array(y, dtype=dtype),
                                np.empty(0, dtype), np.empty_like(y_pred))
    assert got == pytest.approx(-np.log(np.finfo(dtype).eps), rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_loss_of_a_zero_count_is_the_prediction(dtype):
    y_pred = np.array([[2.5]], dtype=dtype)
    got = kernel.loss_and_delta("poisson", y_pred, np.zeros((1, 1), dtype),
                                np.empty(0, dtype), np.empty_like(y_pred))
    assert got == pytest.approx(2.5), "0 log(0 / y_pred) must count as 0"


# ---------------------------------------------------------------------------
# Forward pass, loss, deltas and gradients of whole networks (loss_grad),
# dense and sparse first layer
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", NETWORK_CASES)
def test_activations_of_every_layer_match_reference(hidden, loss, depth, weighted, alpha,
                                                    dtype, path, input):
    got, expected = _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path, input)
    for l, (a, e) in enumerate(zip(got["activations"], expected["activations"]), start=1):
        assert_allclose(a, e, err_msg=f"activations[{l}]", **STEP_TOL[dtype])


@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", NETWORK_CASES)
def test_loss_matches_reference(hidden, loss, depth, weighted, alpha, dtype, path, input):
    got, expected = _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path, input)
    assert_allclose(got["loss"], expected["loss"], err_msg="penalised batch loss J",
                    **STEP_TOL[dtype])


@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", NETWORK_CASES)
def test_delta_of_every_layer_matches_reference(hidden, loss, depth, weighted, alpha, dtype,
                                                path, input):
    got, expected = _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path, input)
    L = len(expected["deltas"])
    tol = STEP_TOL[dtype]
    if hidden == "gelu" and dtype == np.float32:
        # GELU's g'(z) = Phi(z) + z phi(z) cancels for z < 0: one float32 ulp
        # of erff (the kernel's) against scipy's erf (the reference's) becomes
        # ~2e-6 in a delta of 0.09 behind Poisson's exp output
        tol = dict(tol, atol=5e-6)
    for l in range(L - 1, -1, -1):  # from the output back, so the first failure is the origin
        assert_allclose(got["deltas"][l], expected["deltas"][l],
                        err_msg=f"deltas[{l}] (of {L} layers)", **tol)


@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", NETWORK_CASES)
def test_coef_gradients_match_reference(hidden, loss, depth, weighted, alpha, dtype, path,
                                        input):
    got, expected = _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path, input)
    for l in range(len(got["coef_grads"]) - 1, -1, -1):
        assert_allclose(got["coef_grads"][l], expected["coef_grads"][l],
                        err_msg=f"coef gradient of layer {l}", **STEP_TOL[dtype])


@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", NETWORK_CASES)
def test_intercept_gradients_match_reference(hidden, loss, depth, weighted, alpha, dtype,
                                             path, input):
    got, expected = _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path, input)
    for l in range(len(got["intercept_grads"]) - 1, -1, -1):
        assert_allclose(got["intercept_grads"][l], expected["intercept_grads"][l],
                        err_msg=f"intercept gradient of layer {l}", **STEP_TOL[dtype])


def _central_differences(loss_of, params, h=1e-6):
    numeric = np.empty_like(params)
    for i in range(len(params)):
        plus, minus = params.copy(), params.copy()
        plus[i] += h
        minus[i] -= h
        numeric[i] = (loss_of(plus) - loss_of(minus)) / (2 * h)
    return numeric


@pytest.mark.parametrize("hidden, loss", HIDDEN_X_LOSS)
def test_gradient_is_the_derivative_of_the_loss(hidden, loss):
    """loss_grad's gradient against central differences of loss_grad's own loss
    (float64, h = 1e-6, 2 hidden layers, sample weights and L2)."""
    p = Problem(hidden, loss, depth=2, dtype=np.float64, weighted=True, alpha=0.1)
    grads = p.kernel_loss_grad()["grads"]
    numeric = _central_differences(lambda q: p.kernel_loss_grad(q)["loss"], p.params)
    assert_allclose(grads, numeric, rtol=1e-6, atol=1e-8,
                    err_msg="analytic gradient vs central differences")


@pytest.mark.parametrize("hidden, loss", HIDDEN_X_LOSS)
def test_reference_gradient_is_the_derivative_of_its_loss(hidden, loss):
    """The reference checks itself the same way, so that kernel and reference
    cannot agree on a wrong equation."""
    p = Problem(hidden, loss, depth=2, dtype=np.float64, weighted=True, alpha=0.1)
    grads = p.reference_loss_grad()["grads"]
    numeric = _central_differences(
        lambda q: ref.loss(p.X, p.Y, p.sample_weight, p.units, p.hidden, p.output,
                           p.loss, p.alpha, q), p.params)
    assert_allclose(grads, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unit_sample_weights_equal_no_sample_weights(dtype):
    p = Problem("relu", "log_loss", dtype=dtype, weighted=False)
    unweighted = p.kernel_loss_grad()
    p.sample_weight = np.ones(N_ROWS, dtype=dtype)
    weighted = p.kernel_loss_grad()
    assert_allclose(weighted["loss"], unweighted["loss"], **STEP_TOL[dtype])
    assert_allclose(weighted["grads"], unweighted["grads"], **STEP_TOL[dtype])


@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_weight_rows_do_not_count(dtype, input):
    """A row of weight 0 changes neither the loss nor the gradient (nor s)."""
    p = Problem("logistic", "poisson", dtype=dtype, weighted=True, input=input)
    p.sample_weight[[3, 11]] = 0
    with_rows = p.kernel_loss_grad()
    without_rows = p.take(np.setdiff1d(np.arange(N_ROWS), [3, 11])).kernel_loss_grad()
    assert_allclose(with_rows["loss"], without_rows["loss"], **STEP_TOL[dtype])
    assert_allclose(with_rows["grads"], without_rows["grads"], **STEP_TOL[dtype])


# ---------------------------------------------------------------------------
# The forward entry point (prediction, in chunks)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk_rows", [
    pytest.param(1, id="chunk1"), pytest.param(3, id="chunk3"),
    pytest.param(6, id="chunk6-divides-24"), pytest.param(10, id="chunk10-does-not-divide-24"),
    pytest.param(24, id="chunk24-all"), pytest.param(40, id="chunk40-more-than-n")])
@pytest.mark.parametrize("loss", ref.LOSSES, ids=[f"{ref.OUTPUT_FOR_LOSS[l]}-output"
                                                   for l in ref.LOSSES])
@pytest.mark.parametrize("path", GEMM_PATHS)
def test_forward_matches_reference(loss, chunk_rows, dtype, path, input):
    p = Problem("tanh", loss, depth=2, dtype=dtype, input=input)
    with gemm_path(path):
        out = p.kernel_forward(chunk_rows)
    assert_allclose(out, p.reference_forward(),
                    err_msg=f"prediction, {chunk_rows} rows at a time", **STEP_TOL[dtype])


# ---------------------------------------------------------------------------
# Single optimizer steps
# ---------------------------------------------------------------------------

def _step_vectors(dtype, n=40):
    rng = np.random.default_rng(4)
    params, grads, state = (rng.normal(size=n).astype(dtype) for _ in range(3))
    return params, grads, state


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_step_matches_reference(momentum, dtype):
    params, grads, velocities = _step_vectors(dtype)
    exp_params, exp_vel = ref.sgd_step(params, grads, velocities, 0.1, momentum, False)
    kernel.sgd_step(params, grads, velocities, 0.1, momentum, False)
    assert_allclose(params, exp_params, err_msg="params", **STEP_TOL[dtype])
    assert_allclose(velocities, exp_vel, err_msg="velocities", **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_nesterov_step_matches_reference(dtype):
    params, grads, velocities = _step_vectors(dtype)
    exp_params, exp_vel = ref.sgd_step(params, grads, velocities, 0.1, 0.9, True)
    kernel.sgd_step(params, grads, velocities, 0.1, 0.9, True)
    assert_allclose(params, exp_params, err_msg="params", **STEP_TOL[dtype])
    assert_allclose(velocities, exp_vel, err_msg="velocities", **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("t", [1, 7])
def test_adam_step_matches_reference(t, dtype):
    params, grads, ms = _step_vectors(dtype)
    vs = (np.random.default_rng(5).uniform(size=len(params)) if t > 1
          else np.zeros(len(params))).astype(dtype)
    ms = ms if t > 1 else np.zeros_like(ms)
    exp_params, exp_m, exp_v = ref.adam_step(params, grads, ms, vs, 0.01, BETA_1, BETA_2,
                                             EPSILON, t)
    kernel.adam_step(params, grads, ms, vs, 0.01, BETA_1, BETA_2, EPSILON, t)
    assert_allclose(params, exp_params, err_msg="params", **STEP_TOL[dtype])
    assert_allclose(ms, exp_m, err_msg="first moments", **STEP_TOL[dtype])
    assert_allclose(vs, exp_v, err_msg="second moments", **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("t", [1, 7])
@pytest.mark.parametrize("beta_1", [0.9, 0.3], ids=["beta1-0.9", "beta1-0.3"])
def test_adamw_step_matches_reference(beta_1, t, dtype):
    params, grads, ms = _step_vectors(dtype)
    vs = (np.random.default_rng(5).uniform(size=len(params)) if t > 1
          else np.zeros(len(params))).astype(dtype)
    ms = ms if t > 1 else np.zeros_like(ms)
    exp_params, exp_m, exp_v = ref.adamw_step(params, grads, ms, vs, 0.01, beta_1, BETA_2,
                                              EPSILON, WEIGHT_DECAY, t)
    kernel.adamw_step(params, grads, ms, vs, 0.01, beta_1, BETA_2, EPSILON, WEIGHT_DECAY, t)
    assert_allclose(params, exp_params, err_msg="params", **STEP_TOL[dtype])
    assert_allclose(ms, exp_m, err_msg="first moments", **STEP_TOL[dtype])
    assert_allclose(vs, exp_v, err_msg="second moments", **STEP_TOL[dtype])


def test_old_pickled_hyper_parameters_without_weight_decay_rebuild():
    params = Problem().params
    opt = kernel.Optimizer("adam", params, learning_rate=0.01)
    old = {k: v for k, v in opt.hyper_parameters.items() if k != "weight_decay"}
    copy = kernel._rebuild_optimizer("adam", old, 4, np.zeros(0), opt.state["ms"],
                                     opt.state["vs"])
    assert copy.hyper_parameters == {**old, "weight_decay": 0.0} and copy.t == 4


# ---------------------------------------------------------------------------
# Agreement with PyTorch (float64, relative 1e-12)
# ---------------------------------------------------------------------------

TORCH_ACTIVATIONS = ["gelu", "silu", "selu", "mish"]


@pytest.mark.parametrize("name", TORCH_ACTIVATIONS)
def test_activation_and_derivative_equal_torch(name):
    torch = optional("torch")
    module = {"gelu": torch.nn.GELU(), "silu": torch.nn.SiLU(), "selu": torch.nn.SELU(),
              "mish": torch.nn.Mish()}[name]
    Z = np.random.default_rng(0).normal(scale=3.0, size=(40, 25))
    Z[0, :6] = [0.0, 1e-10, -1e-10, 25.0, -25.0, -700.0]
    z = torch.tensor(Z, requires_grad=True)
    a = module(z)
    a.sum().backward()
    A = Z.copy()
    kernel.apply_activation(name, A)
    g = np.ones_like(Z)
    kernel.apply_derivative(name, A, g, Z)
    assert_allclose(A, a.detach().numpy(), rtol=1e-12, atol=0, err_msg=f"{name}(z)")
    assert_allclose(g, z.grad.numpy(), rtol=1e-12, atol=0, err_msg=f"{name}'(z)")


@pytest.mark.parametrize("beta_1", [0.9, 0.3], ids=["beta1-0.9", "beta1-0.3"])
def test_five_adamw_steps_equal_torch(beta_1):
    torch = optional("torch")
    rng = np.random.default_rng(0)
    params = rng.normal(size=300)
    grads = [rng.normal(size=300) for _ in range(5)]
    p = torch.tensor(params.copy(), requires_grad=True)
    opt = torch.optim.AdamW([p], lr=0.01, betas=(beta_1, BETA_2), eps=EPSILON,
                            weight_decay=WEIGHT_DECAY)
    ms, vs = np.zeros_like(params), np.zeros_like(params)
    for t, g in enumerate(grads, 1):
        kernel.adamw_step(params, g, ms, vs, 0.01, beta_1, BETA_2, EPSILON, WEIGHT_DECAY, t)
        p.grad = torch.tensor(g)
        opt.step()
    state = opt.state[p]
    assert_allclose(params, p.detach().numpy(), rtol=1e-12, atol=0, err_msg="params")
    assert_allclose(ms, state["exp_avg"].numpy(), rtol=1e-12, atol=0, err_msg="exp_avg")
    assert_allclose(vs, state["exp_avg_sq"].numpy(), rtol=1e-12, atol=0, err_msg="exp_avg_sq")


# ---------------------------------------------------------------------------
# Whole epochs, dense and sparse first layer
# ---------------------------------------------------------------------------

ORDERS = [pytest.param(False, id="in-order"), pytest.param(True, id="shuffled")]
SOLVER_NAMES = list(SOLVERS)


@functools.lru_cache(maxsize=None)
def _epoch_pair(solver, batch_size, shuffled, dtype, hidden="tanh", loss="squared_error",
                depth=2, weighted=True, alpha=0.1, path="default", input="dense"):
    """(kernel's, reference's) results of one epoch from the same start, cached."""
    p = Problem(hidden, loss, depth, dtype, weighted, alpha, input=input)
    order = shuffled_order() if shuffled else None
    with gemm_path(path):
        got = p.kernel_epoch(solver, batch_size, order)
    return got, p.reference_epoch(solver, batch_size, order)


@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffled", ORDERS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_params_match_reference(solver, batch_size, shuffled, dtype, path, input):
    got, expected = _epoch_pair(solver, batch_size, shuffled, dtype, path=path, input=input)
    assert_allclose(got["params"], expected["params"], err_msg="params after the epoch",
                    **EPOCH_TOL[dtype])


@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffled", ORDERS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_loss_sum_matches_reference(solver, batch_size, shuffled, dtype, path, input):
    got, expected = _epoch_pair(solver, batch_size, shuffled, dtype, path=path, input=input)
    assert_allclose(got["total"], expected["total"],
                    err_msg="sum over batches of batch loss * rows", **EPOCH_TOL[dtype])


# The state vectors each optimizer keeps, as the kernel_epoch results name them
STATE_NAMES = {"sgd": ("velocities",), "nesterov": ("velocities",),
               "adam": ("first moments", "second moments"),
               "rmsprop": ("averages of squared gradients",),
               "adamw": ("first moments", "second moments")}


def _assert_same_optimizer_state(got, expected, solver, dtype):
    """The epoch's optimizer state vectors (state_1, and state_2 for Adam)."""
    for key, name in zip(("state_1", "state_2"), STATE_NAMES[solver]):
        assert_allclose(got[key], expected[key], err_msg=name, **EPOCH_TOL[dtype])


@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffled", ORDERS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_optimizer_state_matches_reference(solver, batch_size, shuffled, dtype, path,
                                                 input):
    got, expected = _epoch_pair(solver, batch_size, shuffled, dtype, path=path, input=input)
    assert got["t"] == expected["t"], "update count t"
    _assert_same_optimizer_state(got, expected, solver, dtype)


@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("hidden, loss", HIDDEN_X_LOSS)
def test_epoch_matches_reference_for_every_activation_and_loss(hidden, loss, solver, dtype,
                                                               input):
    got, expected = _epoch_pair(solver, 10, True, dtype, hidden, loss, input=input)
    assert_allclose(got["params"], expected["params"], err_msg="params after the epoch",
                    **EPOCH_TOL[dtype])
    assert_allclose(got["total"], expected["total"], err_msg="summed loss",
                    **EPOCH_TOL[dtype])


@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffled", ORDERS)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", DEPTH_CASES)
def test_epoch_matches_reference_for_every_depth_with_and_without_weights_and_l2(
        hidden, loss, depth, weighted, alpha, shuffled, dtype, input):
    got, expected = _epoch_pair("nesterov", 10, shuffled, dtype, hidden, loss, depth,
                                weighted, alpha, input=input)
    assert_allclose(got["params"], expected["params"], err_msg="params after the epoch",
                    **EPOCH_TOL[dtype])
    assert_allclose(got["total"], expected["total"], err_msg="summed loss",
                    **EPOCH_TOL[dtype])


@pytest.mark.parametrize("input", INPUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_continues_from_the_given_optimizer_state(solver, dtype, input):
    """Two epochs in a row, the second fed the first's params, state and t."""
    p = Problem("relu", "binary_log_loss", dtype=dtype, input=input)
    order = shuffled_order()
    k1 = p.kernel_epoch(solver, 10, order)
    r1 = p.reference_epoch(solver, 10, order)
    k2 = p.kernel_epoch(solver, 10, order[::-1].copy(), params=k1["params"], t=k1["t"],
                        state_1=k1["state_1"], state_2=k1["state_2"])
    r2 = p.reference_epoch(solver, 10, order[::-1].copy(), params=r1["params"], t=r1["t"],
                           state_1=r1["state_1"], state_2=r1["state_2"])
    assert k2["t"] == r2["t"]
    assert_allclose(k2["params"], r2["params"], err_msg="params after the second epoch",
                    **EPOCH_TOL[dtype])


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_skips_a_batch_whose_weights_are_all_zero(solver):
    """In order, batch_size 10: the second batch (rows 10-19) has weight 0; it
    adds nothing to the loss and makes no update (t counts 2, not 3)."""
    p = Problem(weighted=True)
    p.sample_weight[10:20] = 0
    got = p.kernel_epoch(solver, 10, None)
    expected = p.reference_epoch(solver, 10, None)
    assert np.all(np.isfinite(got["params"])), "params after a zero-weight batch"
    assert got["t"] == expected["t"] == 2, "update count t"
    assert_allclose(got["params"], expected["params"], err_msg="params",
                    **EPOCH_TOL[np.float64])
    assert_allclose(got["total"], expected["total"], err_msg="summed loss",
                    **EPOCH_TOL[np.float64])


@pytest.mark.parametrize("input", INPUTS)
def test_in_order_epoch_equals_epoch_in_identity_order(input):
    p = Problem(input=input)
    in_order = p.kernel_epoch("adam", 10, None)
    identity = p.kernel_epoch("adam", 10, np.arange(N_ROWS, dtype=np.intp))
    assert_allclose(identity["params"], in_order["params"], rtol=1e-14, atol=0)
    assert identity["total"] == pytest.approx(in_order["total"], rel=1e-14)


@pytest.mark.parametrize("input", INPUTS)
def test_shuffled_epoch_equals_in_order_epoch_on_permuted_rows(input):
    p = Problem(input=input)
    order = shuffled_order()
    shuffled = p.kernel_epoch("sgd", 10, order)
    permuted = p.take(order).kernel_epoch("sgd", 10, None)
    assert_allclose(shuffled["params"], permuted["params"], rtol=1e-14, atol=0)
    assert shuffled["total"] == pytest.approx(permuted["total"], rel=1e-14)


# ---------------------------------------------------------------------------
# Sparse first layer: the CSR matrix itself
# ---------------------------------------------------------------------------

def test_csr_problems_have_empty_rows_and_stored_zeros():
    """The CSR inputs above exercise what the sparse loops must handle: a row
    that stores nothing, a row of stored zeros only, zeros stored among
    non-zeros."""
    X = Problem(input="csr").kernel_X()
    lengths = np.diff(X.indptr)
    assert lengths[EMPTY_ROW] == 0, "a row storing nothing"
    row = X.data[X.indptr[STORED_ZEROS_ROW]:X.indptr[STORED_ZEROS_ROW + 1]]
    assert len(row) == N_FEATURES and not np.any(row), "a row of stored zeros"
    assert np.sum(X.data == 0) > N_FEATURES, "zeros stored among non-zeros"
    assert X.indices.dtype == np.int32 and X.indptr.dtype == np.int32


def _int64_results(input, entry, dtype):
    p = Problem("relu", "log_loss", dtype=dtype, input=input)
    if entry == "forward":
        return {"out": p.kernel_forward(chunk_rows=5)}
    if entry == "loss_grad":
        got = p.kernel_loss_grad(chunk_rows=5)
        return {"loss": got["loss"], "grads": got["grads"]}
    order = shuffled_order() if entry == "train_epoch-shuffled" else None
    got = p.kernel_epoch("adam", 10, order, chunk_rows=3)
    return {"total": got["total"], "params": got["params"], "ms": got["state_1"],
            "vs": got["state_2"]}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ["forward", "loss_grad", "train_epoch-in-order",
                                   "train_epoch-shuffled"])
def test_csr_with_int64_indices_gives_the_same_results_as_int32(entry, dtype):
    """scipy gives int64 indices and row pointers to large matrices (and to
    some operations' results): the kernel computes exactly the same."""
    assert Problem(input="csr-int64").kernel_X().indices.dtype == np.int64
    int32 = _int64_results("csr", entry, dtype)
    int64 = _int64_results("csr-int64", entry, dtype)
    for name in int32:
        assert_array_equal(int64[name], int32[name], err_msg=name)


WIDE = dict(n_features=40, density=0.1)  # about 4 non-zeros a row, out of 40


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffled", ORDERS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_on_a_wide_sparse_input_matches_reference(solver, batch_size, shuffled, dtype):
    """40 features, about 4 non-zeros a row: each batch touches few rows of
    the first layer's weights, whose other rows still get their L2 update."""
    p = Problem("relu", "log_loss", dtype=dtype, input="csr", **WIDE)
    order = shuffled_order() if shuffled else None
    got = p.kernel_epoch(solver, batch_size, order, chunk_rows=3)
    expected = p.reference_epoch(solver, batch_size, order)
    assert_allclose(got["params"], expected["params"], err_msg="params after the epoch",
                    **EPOCH_TOL[dtype])
    assert_allclose(got["total"], expected["total"], err_msg="summed loss",
                    **EPOCH_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_grad_on_a_wide_sparse_input_matches_reference(dtype):
    p = Problem("relu", "log_loss", dtype=dtype, input="csr", **WIDE)
    got, expected = p.kernel_loss_grad(chunk_rows=5), p.reference_loss_grad()
    assert_allclose(got["loss"], expected["loss"], err_msg="loss", **STEP_TOL[dtype])
    assert_allclose(got["grads"], expected["grads"], err_msg="gradient", **STEP_TOL[dtype])


# ---------------------------------------------------------------------------
# Batches in chunks: the same numbers as whole batches
# ---------------------------------------------------------------------------

CHUNK_ROWS = [pytest.param(1, id="chunk1"), pytest.param(3, id="chunk3"),
              pytest.param(7, id="chunk7")]
# rows of weight 0 in the "zero-weights" cases: a whole chunk of 3 (rows
# 3-5), and in epochs of batch 10 in order a whole batch (rows 10-19), skipped
ZERO_WEIGHT_ROWS = [3, 4, 5, *range(10, 20)]


def _chunk_case(input="dense", shuffled=False, targets="float", weights="random"):
    return dict(input=input, shuffled=shuffled, targets=targets, weights=weights)


# How the rows reach the kernel; the network is tanh, 2 hidden layers,
# log_loss (softmax output, one-hot targets, which can be bytes), L2.
EPOCH_CHUNK_CASES = {
    "dense-in-order": _chunk_case(),
    "dense-shuffled": _chunk_case(shuffled=True),  # rows gathered into the workspace
    "csr-in-order": _chunk_case(input="csr"),
    "csr-shuffled": _chunk_case(input="csr", shuffled=True),
    "byte-targets-in-order": _chunk_case(targets="bytes"),
    "byte-targets-shuffled": _chunk_case(shuffled=True, targets="bytes"),
    "csr-byte-targets-shuffled": _chunk_case(input="csr", shuffled=True, targets="bytes"),
    "unweighted": _chunk_case(weights=None),
    "zero-weights-in-order": _chunk_case(weights="zeros"),
    "csr-zero-weights-in-order": _chunk_case(input="csr", weights="zeros"),
}
# loss_grad reads all rows in order and floating targets only
LOSS_GRAD_CHUNK_CASES = {name: case for name, case in EPOCH_CHUNK_CASES.items()
                         if not case["shuffled"] and case["targets"] == "float"}


def _chunk_problem(case, dtype, n=N_ROWS):
    p = Problem("tanh", "log_loss", 2, dtype, weighted=case["weights"] is not None,
                n=n, input=case["input"])
    if case["weights"] == "zeros":
        p.sample_weight[[r for r in ZERO_WEIGHT_ROWS if r < n]] = 0
    return p


@functools.lru_cache(maxsize=None)
def _chunked_loss_grad(case_name, n, chunk_rows, dtype):
    """(kernel's loss_grad in chunks, reference's of the whole batch)."""
    p = _chunk_problem(LOSS_GRAD_CHUNK_CASES[case_name], dtype, n)
    return p.kernel_loss_grad(chunk_rows=chunk_rows), p.reference_loss_grad()


@functools.lru_cache(maxsize=None)
def _chunked_epoch(case_name, solver, batch_size, chunk_rows, dtype):
    """(kernel's epoch in chunks, reference's epoch)."""
    case = EPOCH_CHUNK_CASES[case_name]
    p = _chunk_problem(case, dtype)
    order = shuffled_order() if case["shuffled"] else None
    got = p.kernel_epoch(solver, batch_size, order, chunk_rows=chunk_rows,
                         targets=case["targets"])
    return got, p.reference_epoch(solver, batch_size, order)


LOSS_GRAD_ROWS = [pytest.param(10, id="10-rows"), pytest.param(24, id="24-rows")]
CHUNKED_BATCH_SIZES = [pytest.param(10, id="batch10-of-24-rows"),
                       pytest.param(24, id="batch24-all-rows")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk_rows", CHUNK_ROWS)
@pytest.mark.parametrize("n", LOSS_GRAD_ROWS)
@pytest.mark.parametrize("case", list(LOSS_GRAD_CHUNK_CASES))
def test_loss_in_chunks_matches_reference(case, n, chunk_rows, dtype):
    got, expected = _chunked_loss_grad(case, n, chunk_rows, dtype)
    assert_allclose(got["loss"], expected["loss"], err_msg="penalised batch loss J",
                    **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk_rows", CHUNK_ROWS)
@pytest.mark.parametrize("n", LOSS_GRAD_ROWS)
@pytest.mark.parametrize("case", list(LOSS_GRAD_CHUNK_CASES))
def test_gradient_in_chunks_matches_reference(case, n, chunk_rows, dtype):
    got, expected = _chunked_loss_grad(case, n, chunk_rows, dtype)
    for l in range(len(got["coef_grads"]) - 1, -1, -1):
        assert_allclose(got["coef_grads"][l], expected["coef_grads"][l],
                        err_msg=f"coef gradient of layer {l}", **STEP_TOL[dtype])
        assert_allclose(got["intercept_grads"][l], expected["intercept_grads"][l],
                        err_msg=f"intercept gradient of layer {l}", **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk_rows", CHUNK_ROWS)
@pytest.mark.parametrize("n", LOSS_GRAD_ROWS)
@pytest.mark.parametrize("case", list(LOSS_GRAD_CHUNK_CASES))
def test_workspace_holds_the_last_chunk_after_loss_grad(case, n, chunk_rows, dtype):
    """workspace_views gives the activations and deltas of the last chunk's rows."""
    got, expected = _chunked_loss_grad(case, n, chunk_rows, dtype)
    rows = got["last_chunk"]
    for l, a in enumerate(got["activations"], start=1):
        assert_allclose(a, expected["activations"][l - 1][rows],
                        err_msg=f"activations[{l}] of rows {rows}", **STEP_TOL[dtype])
    for l, d in enumerate(got["deltas"]):
        assert_allclose(d, expected["deltas"][l][rows],
                        err_msg=f"deltas[{l}] of rows {rows}", **STEP_TOL[dtype])


@pytest.mark.parametrize("chunk_rows", CHUNK_ROWS)
@pytest.mark.parametrize("case", list(LOSS_GRAD_CHUNK_CASES))
def test_loss_grad_in_chunks_equals_loss_grad_at_once(case, chunk_rows):
    """float64: chunked and unchunked agree to rtol 1e-12 (a single step)."""
    p = _chunk_problem(LOSS_GRAD_CHUNK_CASES[case], np.float64)
    chunked, at_once = p.kernel_loss_grad(chunk_rows=chunk_rows), p.kernel_loss_grad()
    assert_allclose(chunked["loss"], at_once["loss"], err_msg="loss", **STEP_TOL[np.float64])
    assert_allclose(chunked["grads"], at_once["grads"], err_msg="gradient",
                    **STEP_TOL[np.float64])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk_rows", CHUNK_ROWS)
@pytest.mark.parametrize("batch_size", CHUNKED_BATCH_SIZES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("case", list(EPOCH_CHUNK_CASES))
def test_epoch_params_in_chunks_match_reference(case, solver, batch_size, chunk_rows, dtype):
    got, expected = _chunked_epoch(case, solver, batch_size, chunk_rows, dtype)
    assert_allclose(got["params"], expected["params"], err_msg="params after the epoch",
                    **EPOCH_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk_rows", CHUNK_ROWS)
@pytest.mark.parametrize("batch_size", CHUNKED_BATCH_SIZES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("case", list(EPOCH_CHUNK_CASES))
def test_epoch_loss_sum_in_chunks_matches_reference(case, solver, batch_size, chunk_rows,
                                                    dtype):
    got, expected = _chunked_epoch(case, solver, batch_size, chunk_rows, dtype)
    assert_allclose(got["total"], expected["total"],
                    err_msg="sum over batches of batch loss * rows", **EPOCH_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk_rows", CHUNK_ROWS)
@pytest.mark.parametrize("batch_size", CHUNKED_BATCH_SIZES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("case", list(EPOCH_CHUNK_CASES))
def test_epoch_optimizer_state_in_chunks_matches_reference(case, solver, batch_size,
                                                           chunk_rows, dtype):
    got, expected = _chunked_epoch(case, solver, batch_size, chunk_rows, dtype)
    assert got["t"] == expected["t"], "update count t (batches, not chunks)"
    _assert_same_optimizer_state(got, expected, solver, dtype)


@pytest.mark.parametrize("chunk_rows", CHUNK_ROWS)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("case", list(EPOCH_CHUNK_CASES))
def test_one_update_in_chunks_equals_one_update_at_once(case, solver, chunk_rows):
    """float64, one batch of all 24 rows, one update: chunked and unchunked
    agree to rtol 1e-12 (a single step)."""
    spec = EPOCH_CHUNK_CASES[case]
    p = _chunk_problem(spec, np.float64)
    order = shuffled_order() if spec["shuffled"] else None
    chunked, at_once = (p.kernel_epoch(solver, N_ROWS, order, chunk_rows=c,
                                       targets=spec["targets"])
                        for c in (chunk_rows, N_ROWS))
    assert_allclose(chunked["params"], at_once["params"], err_msg="params",
                    **STEP_TOL[np.float64])
    assert_allclose(chunked["total"], at_once["total"], err_msg="batch loss * rows",
                    **STEP_TOL[np.float64])


# ---------------------------------------------------------------------------
# Batches in fixed blocks of rows, on threads (Network's block_rows)
# ---------------------------------------------------------------------------

# Rows per block, with batches of 6 and 10 rows: single rows, a divisor of 6,
# a non-divisor of both (10 = 4 + 4 + 2), a whole batch
BLOCK_ROWS = [pytest.param(1, id="blocks1"), pytest.param(3, id="blocks3"),
              pytest.param(4, id="blocks4"), pytest.param(10, id="blocks10")]
BLOCK_BATCH_SIZES = [pytest.param(6, id="batch6"), pytest.param(10, id="batch10")]


@pytest.fixture
def blocks_on_threads_however_small():
    """The kernel's blocks run on the threads asked for, however little work
    each holds (below its threshold they would run on one)."""
    with blocks_on_threads():
        yield


@functools.lru_cache(maxsize=None)
def _block_epoch_pair(solver, batch_size, block_rows, dtype, hidden="tanh",
                      loss="squared_error", depth=2, n_threads=2):
    """(kernel's epoch in blocks on n_threads threads, reference's epoch)."""
    p = Problem(hidden, loss, depth, dtype)
    with blocks_on_threads():
        got = p.kernel_epoch(solver, batch_size, shuffled_order(), block_rows=block_rows,
                             n_threads=n_threads)
    return got, p.reference_epoch(solver, batch_size, shuffled_order())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block_rows", BLOCK_ROWS)
@pytest.mark.parametrize("batch_size", BLOCK_BATCH_SIZES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_in_blocks_matches_reference(solver, batch_size, block_rows, dtype):
    got, expected = _block_epoch_pair(solver, batch_size, block_rows, dtype)
    assert_allclose(got["params"], expected["params"], err_msg="params after the epoch",
                    **EPOCH_TOL[dtype])
    assert_allclose(got["total"], expected["total"],
                    err_msg="sum over batches of batch loss * rows", **EPOCH_TOL[dtype])
    assert got["t"] == expected["t"], "update count t (batches, not blocks)"
    _assert_same_optimizer_state(got, expected, solver, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, loss", HIDDEN_X_LOSS)
def test_epoch_in_blocks_matches_reference_for_every_activation_and_loss(hidden, loss,
                                                                         dtype):
    got, expected = _block_epoch_pair("adam", 10, 4, dtype, hidden, loss)
    assert_allclose(got["params"], expected["params"], err_msg="params after the epoch",
                    **EPOCH_TOL[dtype])
    assert_allclose(got["total"], expected["total"], err_msg="summed loss",
                    **EPOCH_TOL[dtype])


@pytest.mark.parametrize("depth", [0, 4, "2tiles"])
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_in_blocks_matches_reference_for_every_depth(solver, depth):
    got, expected = _block_epoch_pair(solver, 10, 3, np.float64, depth=depth)
    assert_allclose(got["params"], expected["params"], err_msg="params after the epoch",
                    **EPOCH_TOL[np.float64])
    assert_allclose(got["total"], expected["total"], err_msg="summed loss (L2 term too)",
                    **EPOCH_TOL[np.float64])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block_rows", BLOCK_ROWS)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("depth", [2, "2tiles"])
def test_epoch_in_blocks_is_the_same_on_any_number_of_threads(
        depth, solver, block_rows, dtype, blocks_on_threads_however_small):
    p = Problem(depth=depth, dtype=dtype)
    one, *more = (p.kernel_epoch(solver, 10, shuffled_order(), block_rows=block_rows,
                                 n_threads=threads) for threads in (1, 2, 3))
    for threads, got in zip((2, 3), more):
        assert_array_equal(got["params"], one["params"],
                           err_msg=f"params on {threads} threads vs 1")
        assert got["total"] == one["total"], f"summed loss on {threads} threads vs 1"
        for key in ("state_1", "state_2"):
            if one[key] is not None:
                assert_array_equal(got[key], one[key],
                                   err_msg=f"optimizer {key} on {threads} threads vs 1")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("depth", [2, "2tiles"])
def test_one_block_per_batch_equals_the_batch_in_one_chunk(depth, solver, dtype):
    """Blocks as large as the batch: each batch's gradient is one block's, and
    the update in tiles (on threads) is the update at once, bit for bit --
    the L2 term of the loss included."""
    p = Problem(depth=depth, dtype=dtype)
    in_blocks = p.kernel_epoch(solver, 10, shuffled_order(), block_rows=10, n_threads=2)
    at_once = p.kernel_epoch(solver, 10, shuffled_order())
    assert_array_equal(in_blocks["params"], at_once["params"], err_msg="params")
    assert in_blocks["total"] == at_once["total"], "summed loss"
    assert_array_equal(in_blocks["state_1"], at_once["state_1"], err_msg="optimizer state")


@pytest.mark.parametrize("row", [0, 7, 23])
def test_non_finite_input_in_a_block_raises_before_its_batch_updates(
        row, blocks_on_threads_however_small):
    """check_finite: NaN in a block's rows raises NonFiniteInput; the batches
    before it have updated params (the caller restores them), its own has not."""
    p = Problem(dtype=np.float64)
    p.X = p.X.copy()
    p.X[row, 1] = np.nan
    params = p.params.copy()
    net = p.network(10, block_rows=4)
    opt = p.optimizer("adam", params)
    grads = np.empty(net.n_params)
    work = np.empty(net.workspace_size(kernel.EPOCH_PART))
    with pytest.raises(kernel.NonFiniteInput, match="NaN or infinity"):
        kernel.train_epoch(net, opt, p.data(), np.empty(0, dtype=np.intp), 10, params,
                           grads, work, True, 2)
    batches_before = row // 10
    assert opt.t == batches_before, "updates made before the batch with NaN"
    assert np.all(np.isfinite(params)), "no NaN reached params"
    if batches_before == 0:
        assert_array_equal(params, p.params, err_msg="params untouched")


@pytest.mark.parametrize("option", ["batch_norm", "sparse_input"])
def test_network_refuses_blocks_with_batch_norm_or_sparse_input(option):
    kwargs = dict(batch_norm=True) if option == "batch_norm" else {}
    with pytest.raises(ValueError, match="block_rows needs dense input and no batch"):
        kernel.Network([4, 5, 2], "relu", "squared_error", 0.0,
                       option == "sparse_input", 8, block_rows=4, **kwargs)


def test_network_refuses_negative_block_rows():
    with pytest.raises(ValueError, match="block_rows must be >= 1, or 0"):
        kernel.Network([4, 5, 2], "relu", "squared_error", 0.0, False, 8, block_rows=-1)


def test_epoch_in_blocks_refuses_zero_threads():
    p = Problem()
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        p.kernel_epoch("sgd", 10, None, block_rows=4, n_threads=0)


# ---------------------------------------------------------------------------
# Worked examples, by hand
# ---------------------------------------------------------------------------

def _worked_loss_grad(implementation, units, hidden, X, Y, params):
    units = np.array(units, dtype=np.intp)
    X, Y, params = (np.array(a, dtype=np.float64) for a in (X, Y, params))
    if implementation == "reference":
        r = ref.loss_grad(X, Y, None, units, hidden, "identity", "squared_error", 0.0, params)
        return r["loss"], r["grads"]
    net = kernel.Network(units, hidden, "squared_error", 0.0, False, len(X))
    grads = np.empty_like(params)
    work = np.empty(net.workspace_size(kernel.BACKWARD_PART))
    J = kernel.loss_grad(net, kernel.Data(X, Y), params, grads, work)
    return J, grads


IMPLEMENTATIONS = ["kernel", "reference"]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_worked_example_one_linear_unit(implementation):
    """J = 1/2 (w x + b - y)^2 with w = 2, b = 8, x = -2, y = 2: w x + b = 4,
    J = 1/2 (4 - 2)^2 = 2, dJ/dw = (4 - 2) x = -4, dJ/db = 4 - 2 = 2."""
    # params layout: [w, b]
    J, grads = _worked_loss_grad(implementation, [1, 1], "identity", [[-2.0]], [[2.0]],
                                 [2.0, 8.0])
    assert J == pytest.approx(2.0, abs=1e-12)
    assert_allclose(grads, [-4.0, 2.0], atol=1e-12, err_msg="[dJ/dw, dJ/db]")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_worked_example_two_relu_units(implementation):
    """x = 1, y = 5; a1 = relu(w1 x + b1) = relu(2) = 2, a2 = w2 a1 + b2 = 7.

    The kernel's last layer uses the OUTPUT activation, so the second "ReLU
    unit" is an identity output here; since a2 = 7 > 0 a ReLU would change
    nothing. J = 1/2 (7 - 5)^2 = 2; dJ/da2 = 2; dJ/dw2 = 2 a1 = 4;
    dJ/db2 = 2; dJ/da1 = 2 w2 = 6, and relu'(2) = 1, so dJ/dw1 = 6 x = 6 and
    dJ/db1 = 6. (The source text of this example printed dJ/db1 = 0; it is 6,
    since dz1/db1 = 1.)
    """
    # params layout: [w1, w2, b1, b2]
    J, grads = _worked_loss_grad(implementation, [1, 1, 1], "relu", [[1.0]], [[5.0]],
                                 [2.0, 3.0, 0.0, 1.0])
    assert J == pytest.approx(2.0, abs=1e-12)
    assert_allclose(grads, [6.0, 4.0, 6.0, 2.0], atol=1e-12,
                    err_msg="[dJ/dw1, dJ/dw2, dJ/db1, dJ/db2]")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_worked_example_two_relu_units_after_moving_w1(implementation):
    """w1 = 2.001: a1 = 2.001, a2 = 3 * 2.001 + 1 = 7.003, J = 1/2 2.003^2 = 2.0060045."""
    J, _ = _worked_loss_grad(implementation, [1, 1, 1], "relu", [[1.0]], [[5.0]],
                             [2.001, 3.0, 0.0, 1.0])
    assert J == pytest.approx(2.0060045, abs=1e-9)


# ---------------------------------------------------------------------------
# The optimizer object: update count, state, pickling
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("solver, batch_size, chunk_rows, zero_weight_rows, expected_t", [
    pytest.param("sgd", 10, None, (), 5 + 3, id="sgd-batch10-adds-3"),
    pytest.param("adam", 10, None, (), 5 + 3, id="adam-batch10-adds-3"),
    pytest.param("adam", 1, None, (), 5 + 24, id="adam-batch1-adds-24"),
    pytest.param("adam", 10, 3, (), 5 + 3, id="adam-batch10-in-chunks-of-3-adds-3"),
    pytest.param("sgd", 10, None, range(10, 20), 5 + 2,
                 id="sgd-batch10-second-batch-weightless-adds-2"),
    pytest.param("adam", 6, 4, range(6, 12), 5 + 3,
                 id="adam-batch6-second-batch-weightless-adds-3"),
])
def test_update_count_t_advances_by_the_batches_not_skipped(solver, batch_size, chunk_rows,
                                                            zero_weight_rows, expected_t):
    """opt.t counts the updates made, whatever the solver: one per batch whose
    weights do not sum to zero (a batch in several chunks is one update)."""
    p = Problem()
    p.sample_weight[list(zero_weight_rows)] = 0
    got = p.kernel_epoch(solver, batch_size, None, t=5, chunk_rows=chunk_rows)
    assert got["t"] == expected_t


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_optimizer_state_starts_at_zero_in_the_params_dtype(solver):
    params = Problem(dtype=np.float32).params
    opt = Problem().optimizer(solver, params)
    state = [opt.state[name] for name in {"sgd": ["velocities"], "adam": ["ms", "vs"],
             "rmsprop": ["vs"], "adamw": ["ms", "vs"]}[opt.kind]]
    assert opt.t == 0
    for vector in state:
        assert vector.dtype == np.float32 and vector.shape == params.shape
        assert not np.any(vector)


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_updates_the_optimizer_state_vectors_in_place(solver):
    """The vectors assigned to the optimizer are the ones the epoch writes."""
    p = Problem()
    opt = p.optimizer(solver, p.params)
    names = {"sgd": ["velocities"], "adam": ["ms", "vs"], "rmsprop": ["vs"],
             "adamw": ["ms", "vs"]}[opt.kind]
    for name in names:
        opt.state[name] = np.zeros_like(p.params)
    given = [opt.state[name] for name in names]
    net = p.network(10)
    kernel.train_epoch(net, opt, p.data(), np.empty(0, np.intp), 10, p.params.copy(),
                       np.empty_like(p.params), np.empty(net.workspace_size(kernel.EPOCH_PART)))
    for name, vector in zip(names, given):
        assert opt.state[name] is vector, f"{name} replaced"
        assert np.any(vector), f"{name} not updated"


@pytest.mark.parametrize("solver", ["sgd", "nesterov"])
def test_learning_rate_set_between_epochs_is_used(solver):
    """sgd's schedules change opt.learning_rate between epochs."""
    p = Problem()
    kind, nesterov, lr = SOLVERS[solver]
    net = p.network(10)

    def epoch(built_with, set_to=None):
        params = p.params.copy()
        opt = kernel.Optimizer(kind, params, learning_rate=built_with, momentum=MOMENTUM,
                               nesterov=nesterov)
        if set_to is not None:
            opt.learning_rate = set_to
        kernel.train_epoch(net, opt, p.data(), np.empty(0, np.intp), 10, params,
                           np.empty_like(params),
                           np.empty(net.workspace_size(kernel.EPOCH_PART)))
        return params

    assert_array_equal(epoch(lr, set_to=3 * lr), epoch(3 * lr))


def _trained_optimizer(solver, dtype):
    """An optimizer after one epoch: non-zero state, t > 0."""
    got = Problem(dtype=dtype).kernel_epoch(solver, 10, shuffled_order())
    return got["optimizer"], got["params"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_unpickled_optimizer_has_equal_state_and_hyper_parameters(solver, dtype):
    opt, _ = _trained_optimizer(solver, dtype)
    copy = pickle.loads(pickle.dumps(opt))
    assert copy.kind == opt.kind
    assert copy.t == opt.t > 0
    assert copy.hyper_parameters == opt.hyper_parameters
    assert copy.state.keys() == opt.state.keys()
    for name in opt.state:
        assert copy.state[name].dtype == opt.state[name].dtype, name
        assert_array_equal(copy.state[name], opt.state[name], err_msg=name)


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_unpickled_optimizer_trains_on_exactly_as_the_original(solver):
    opt, params = _trained_optimizer(solver, np.float64)
    copy = pickle.loads(pickle.dumps(opt))
    p = Problem()
    net = p.network(10)
    results = []
    for optimizer in (opt, copy):
        q = params.copy()
        total = kernel.train_epoch(net, optimizer, p.data(), shuffled_order(seed=2), 10, q,
                                   np.empty_like(q),
                                   np.empty(net.workspace_size(kernel.EPOCH_PART)))
        results.append((total, q, optimizer.t))
    assert results[0][0] == results[1][0], "epoch loss"
    assert_array_equal(results[0][1], results[1][1], err_msg="params")
    assert results[0][2] == results[1][2], "update count"


# ---------------------------------------------------------------------------
# Concurrency: the GIL is released during an epoch
# ---------------------------------------------------------------------------

def test_train_epoch_releases_the_gil():
    """A Python thread keeps running while train_epoch works (~0.5 s of compute).

    No timing is asserted. The switch interval is made very long, and the
    counting thread gives the GIL up at every iteration (time.sleep(0)): then
    the counter can move during the call only if train_epoch releases the GIL
    (a GIL-holding call measured this way gives exactly 0), and the main thread
    is never starved.
    """
    rng = np.random.default_rng(6)
    n, units = 8000, np.array([40, 200, 200, 10], dtype=np.intp)
    X = rng.normal(size=(n, units[0]))
    Y = rng.normal(size=(n, units[-1]))
    net = kernel.Network(units, "relu", "squared_error", 1e-4, False, 50)
    params = rng.normal(scale=0.05, size=net.n_params)
    opt = kernel.Optimizer("sgd", params, learning_rate=1e-3, momentum=0.9, nesterov=True)
    data = kernel.Data(X, Y)
    grads = np.empty_like(params)
    work = np.empty(net.workspace_size(kernel.EPOCH_PART))

    count = 0
    started, stop = threading.Event(), threading.Event()

    def counter():
        nonlocal count
        started.set()
        while not stop.is_set():
            count += 1
            time.sleep(0)  # releases the GIL

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    thread = threading.Thread(target=counter)
    thread.start()
    try:
        started.wait()
        before = count
        kernel.train_epoch(net, opt, data, np.empty(0, dtype=np.intp), 50, params, grads,
                           work)
        during = count - before
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(switch_interval)
    assert during >= 100, (
        f"the counting thread advanced only {during} times while train_epoch ran: "
        "the epoch holds the GIL")


# ---------------------------------------------------------------------------
# The network object: sizes and layout
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("depth", list(HIDDEN_LAYERS))
def test_n_params_counts_coefs_and_intercepts(depth):
    units = np.array((N_FEATURES, *HIDDEN_LAYERS[depth], 3), dtype=np.intp)
    assert kernel.Network(units, "tanh", "squared_error").n_params == ref.n_params(units)


def test_network_reports_what_it_was_built_with():
    net = kernel.Network([5, 4, 3, 2], "relu", "log_loss", 0.25, True, 9)
    assert_array_equal(net.units, [5, 4, 3, 2])
    assert net.n_layers == 3
    assert net.chunk_rows == 9
    assert net.alpha == 0.25
    assert net.sparse_input is True


@pytest.mark.parametrize("loss", ref.LOSSES)
def test_output_activation_follows_from_the_loss(loss):
    """Each loss trains with its canonical output activation, for which
    delta = w (y_pred - y)."""
    assert kernel.LOSS_OUTPUT[loss] == ref.OUTPUT_FOR_LOSS[loss]
    assert kernel.Network([3, 4, 2], "tanh", loss).output == ref.OUTPUT_FOR_LOSS[loss]


@pytest.mark.parametrize("sparse_input", [False, True], ids=["dense-input", "csr-input"])
@pytest.mark.parametrize("depth", list(HIDDEN_LAYERS))
def test_workspace_size_follows_documented_layout(depth, sparse_input):
    """Per chunk of M rows: FORWARD, activations[1..L]; BACKWARD, and
    deltas[0..L-1]; EPOCH, and the gathered chunk: X rows (dense input only:
    CSR rows are read where they are), Y rows and sample weights."""
    units = np.array((N_FEATURES, *HIDDEN_LAYERS[depth], 3), dtype=np.intp)
    M = 7
    net = kernel.Network(units, "tanh", "squared_error", 0.0, sparse_input, M)
    layers = M * int(units[1:].sum())
    gathered_X = 0 if sparse_input else M * int(units[0])
    assert net.workspace_size(kernel.FORWARD_PART) == layers
    assert net.workspace_size(kernel.BACKWARD_PART) == 2 * layers
    assert net.workspace_size(kernel.EPOCH_PART) == (
        2 * layers + gathered_X + M * int(units[-1]) + M)


# ---------------------------------------------------------------------------
# Byte targets
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffled", [False, True], ids=["in-order", "shuffled"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_epoch_with_byte_targets_equals_float_targets(solver, shuffled, dtype):
    """uint8 0/1 targets (a classifier's indicator matrix) train exactly as
    the same targets given as floats."""
    rng = np.random.default_rng(7)
    units = np.array([5, 6, 3], dtype=np.intp)
    n = 23
    X = rng.normal(size=(n, 5)).astype(dtype)
    Y_bytes = np.eye(3, dtype=np.uint8)[rng.integers(0, 3, n)]
    order = rng.permutation(n).astype(np.intp) if shuffled else np.empty(0, np.intp)
    net = kernel.Network(units, "relu", "log_loss", 1e-3, False, 4)
    results = []
    for Y in (Y_bytes.astype(dtype), Y_bytes):
        params = np.random.default_rng(1).normal(scale=0.3, size=net.n_params).astype(dtype)
        opt = kernel.Optimizer(solver, params, learning_rate=0.01, momentum=0.9,
                               nesterov=True)
        work = np.empty(net.workspace_size(kernel.EPOCH_PART), dtype=dtype)
        total = kernel.train_epoch(net, opt, kernel.Data(X, Y), order, 4, params,
                                   np.empty_like(params), work)
        results.append((total, opt.t, params))
    assert results[0][0] == results[1][0], "epoch loss"
    assert results[0][1] == results[1][1], "update count"
    assert_array_equal(results[0][2], results[1][2], err_msg="weights")


# ---------------------------------------------------------------------------
# Rejected calls: sizes, shapes, dtypes and names (O(1) checks)
# ---------------------------------------------------------------------------

PART = {"forward": kernel.FORWARD_PART, "loss_grad": kernel.BACKWARD_PART,
        "train_epoch": kernel.EPOCH_PART}


def _call_args(entry):
    """Everything an entry point takes, every size right: a tanh network
    (4, 5, 3, 3) trained on squared error, in chunks of 7 rows; 24 float64
    rows with sample weights; Adam; batches of 10."""
    p = Problem(dtype=np.float64)
    net = p.network(chunk_rows=7)
    params = p.params.copy()
    return SimpleNamespace(
        p=p, net=net, data=p.data(), params=params, grads=np.zeros(net.n_params),
        work=np.zeros(net.workspace_size(PART[entry])), out=np.empty_like(p.Y),
        optimizer=p.optimizer("adam", params), order=np.empty(0, dtype=np.intp),
        batch_size=10)


def _call(entry, change=None):
    """Call ``entry`` with every size right, except what ``change`` alters."""
    a = _call_args(entry)
    if change is not None:
        change(a)
    if entry == "forward":
        return kernel.forward(a.net, a.data, a.params, a.out, a.work)
    if entry == "loss_grad":
        return kernel.loss_grad(a.net, a.data, a.params, a.grads, a.work)
    return kernel.train_epoch(a.net, a.optimizer, a.data, a.order, a.batch_size, a.params,
                              a.grads, a.work)


@pytest.mark.parametrize("entry", list(PART))
def test_exact_sizes_are_accepted(entry):
    _call(entry)


def _set(**make):
    """A change that sets each attribute name to make[name](args)."""
    def change(a):
        for name, value in make.items():
            setattr(a, name, value(a))
    return change


def _data(X=None, Y="same", sample_weight="same"):
    """A change of the data: the problem's, with X, Y or sample_weight replaced."""
    def make(a):
        return kernel.Data(a.p.X if X is None else X(a.p),
                           a.p.Y if Y == "same" else Y(a.p) if Y is not None else None,
                           a.p.sample_weight if sample_weight == "same" else sample_weight)
    return _set(data=make)


def _optimizer(solver, **state):
    """A change of the optimizer: SOLVERS[solver] with state vectors replaced
    (state[name](n_params) makes the vector)."""
    def make(a):
        opt = a.p.optimizer(solver, a.params)
        for name, vector in state.items():
            opt.state[name] = vector(len(a.params))
        return opt
    return _set(optimizer=make)


def _read_only(n):
    vector = np.zeros(n)
    vector.setflags(write=False)
    return vector


def _shorter(name):
    return _set(**{name: lambda a: getattr(a, name)[:-1].copy()})


ALL_ENTRIES = list(PART)
BAD_CALLS = [  # (entries, what is wrong, change, a word the error message names)
    (ALL_ENTRIES, "params-one-short", _shorter("params"), "params"),
    (ALL_ENTRIES, "params-one-long", _set(params=lambda a: np.append(a.params, 0.0)),
     "params"),
    (ALL_ENTRIES, "work-one-short", _shorter("work"), "work"),
    (ALL_ENTRIES, "data-one-feature-more",
     _data(X=lambda p: np.hstack([p.X, p.X[:, :1]])), "features"),
    (ALL_ENTRIES, "csr-data-for-a-dense-network",
     _data(X=lambda p: scipy.sparse.csr_matrix(p.X)), "sparse"),
    (ALL_ENTRIES, "dense-data-for-a-sparse-network",
     _set(net=lambda a: kernel.Network(a.p.units, "tanh", "squared_error", 0.1, True, 7)),
     "sparse"),
    (ALL_ENTRIES, "float32-data-for-float64-params",
     _set(data=lambda a: kernel.Data(a.p.X.astype(np.float32), a.p.Y.astype(np.float32),
                                     a.p.sample_weight.astype(np.float32))), "float32"),
    (["forward"], "out-one-row-short", _shorter("out"), "out"),
    (["forward"], "out-one-output-more",
     _set(out=lambda a: np.empty((len(a.p.X), a.p.units[-1] + 1))), "out"),
    (["loss_grad", "train_epoch"], "grads-one-short", _shorter("grads"), "grads"),
    (["loss_grad", "train_epoch"], "data-one-output-more",
     _data(Y=lambda p: np.hstack([p.Y, p.Y[:, :1]])), "outputs"),
    (["loss_grad", "train_epoch"], "data-without-targets", _data(Y=None), "Y"),
    (["loss_grad"], "work-of-forward-size",
     _set(work=lambda a: np.zeros(a.net.workspace_size(kernel.FORWARD_PART))), "work"),
    (["loss_grad"], "byte-targets", _data(Y=lambda p: (p.Y > 0).astype(np.uint8)),
     "targets"),
    (["train_epoch"], "work-of-backward-size",
     _set(work=lambda a: np.zeros(a.net.workspace_size(kernel.BACKWARD_PART))), "work"),
    (["train_epoch"], "sgd-velocities-one-short",
     _optimizer("sgd", velocities=lambda n: np.zeros(n - 1)), "velocities"),
    (["train_epoch"], "sgd-velocities-float32",
     _optimizer("sgd", velocities=lambda n: np.zeros(n, np.float32)), "velocities"),
    (["train_epoch"], "sgd-velocities-read-only", _optimizer("sgd", velocities=_read_only),
     "velocities"),
    (["train_epoch"], "adam-ms-one-short", _optimizer("adam", ms=lambda n: np.zeros(n - 1)),
     "ms"),
    (["train_epoch"], "adam-vs-one-short", _optimizer("adam", vs=lambda n: np.zeros(n - 1)),
     "vs"),
    (["train_epoch"], "adam-ms-float32",
     _optimizer("adam", ms=lambda n: np.zeros(n, np.float32)), "ms"),
    (["train_epoch"], "adam-vs-float32",
     _optimizer("adam", vs=lambda n: np.zeros(n, np.float32)), "vs"),
    (["train_epoch"], "adam-beta_1-of-1",
     _set(optimizer=lambda a: kernel.Optimizer("adam", a.params, learning_rate=1e-3,
                                               beta_1=1.0)), "beta_1"),
    (["train_epoch"], "batch_size-0", _set(batch_size=lambda a: 0), "batch_size"),
    (["train_epoch"], "batch_size-above-n", _set(batch_size=lambda a: N_ROWS + 1),
     "batch_size"),
    (["train_epoch"], "order-one-short",
     _set(order=lambda a: np.arange(N_ROWS - 1, dtype=np.intp)), "order"),
]


@pytest.mark.parametrize("entry, change, word", [
    pytest.param(entry, change, word, id=f"{entry}-{what}")
    for entries, what, change, word in BAD_CALLS for entry in entries])
def test_mismatched_call_raises_value_error(entry, change, word):
    """ValueError, whose message names what is wrong. Run in a forked child:
    a check that is missing would let the kernel read or write out of bounds,
    which fails the test instead of crashing the run."""
    assert_raises_isolated(ValueError, word, _call, entry, change)


def _rows(p):
    return p.X, p.Y, p.sample_weight


@pytest.mark.parametrize("make", [
    pytest.param(lambda X, Y, sw: kernel.Data(X, Y.astype(np.float32), sw),
                 id="Y-float32-for-float64-X"),
    pytest.param(lambda X, Y, sw: kernel.Data(X, Y.astype(np.int64), sw), id="Y-int64"),
    pytest.param(lambda X, Y, sw: kernel.Data(X, Y[:-1].copy(), sw), id="Y-one-row-short"),
    pytest.param(lambda X, Y, sw: kernel.Data(X, Y[:, 0].copy(), sw), id="Y-1d"),
    pytest.param(lambda X, Y, sw: kernel.Data(X, np.asfortranarray(Y), sw),
                 id="Y-fortran-order"),
    pytest.param(lambda X, Y, sw: kernel.Data(X, Y, sw.astype(np.float32)),
                 id="sample_weight-float32-for-float64-X"),
    pytest.param(lambda X, Y, sw: kernel.Data(X, Y, sw[:-1].copy()),
                 id="sample_weight-one-short"),
    pytest.param(lambda X, Y, sw: kernel.Data(np.asfortranarray(X), Y, sw),
                 id="X-fortran-order"),
    pytest.param(lambda X, Y, sw: kernel.Data(X.astype(np.int64), Y, sw), id="X-int64"),
    pytest.param(lambda X, Y, sw: kernel.Data(X[:, 0].copy(), Y, sw), id="X-1d"),
    pytest.param(lambda X, Y, sw: kernel.Data(scipy.sparse.csc_matrix(X), Y, sw),
                 id="X-csc-matrix"),
])
def test_data_rejects_mismatched_arrays(make):
    with pytest.raises(ValueError):
        make(*_rows(Problem()))


@pytest.mark.parametrize("chunk_rows", [0, -1])
def test_network_rejects_chunk_rows_below_one(chunk_rows):
    """Run in a forked child: a kernel that looped forever would be killed
    after isolation's timeout and fail the test instead of hanging it."""
    assert_raises_isolated(
        ValueError, "chunk_rows",
        lambda: kernel.Network(np.array([2, 3, 1]), "tanh", "squared_error", 0.0, False,
                               chunk_rows))


@pytest.mark.parametrize("units", [pytest.param([3], id="no-layer"),
                                   pytest.param([3, 0, 2], id="empty-layer")])
def test_invalid_units_are_rejected(units):
    with pytest.raises(ValueError):
        kernel.Network(np.array(units, dtype=np.intp), "tanh", "squared_error")


def test_negative_alpha_is_rejected():
    with pytest.raises(ValueError, match="alpha"):
        kernel.Network([3, 4, 2], "tanh", "squared_error", -0.1)


@pytest.mark.parametrize("build", [
    pytest.param(lambda: kernel.Network([3, 4, 2], "bogus", "squared_error"),
                 id="hidden-activation-bogus"),
    pytest.param(lambda: kernel.Network([3, 4, 2], "softmax", "log_loss"),
                 id="hidden-activation-softmax-an-output-activation"),
    pytest.param(lambda: kernel.Network([3, 4, 2], "relu", "hinge"), id="loss-hinge"),
    pytest.param(lambda: kernel.Optimizer("nadam", np.zeros(3), learning_rate=0.1),
                 id="optimizer-nadam"),
    pytest.param(lambda: kernel.apply_activation("bogus", np.zeros((2, 2))),
                 id="apply_activation-bogus"),
    pytest.param(lambda: kernel.apply_derivative("softmax", np.zeros((2, 2)),
                                                 np.zeros((2, 2))),
                 id="apply_derivative-softmax-has-no-elementwise-derivative"),
    pytest.param(lambda: kernel.loss_and_delta("hinge", np.zeros((2, 2)), np.zeros((2, 2)),
                                               np.empty(0), np.zeros((2, 2))),
                 id="loss_and_delta-hinge"),
])
def test_unknown_names_are_rejected(build):
    """An unknown name would take no branch or the wrong one (an unknown
    solver once ran Adam on an empty second-moment vector: a segfault)."""
    with pytest.raises(ValueError, match="unknown"):
        build()


@pytest.mark.parametrize("call", [
    lambda: kernel.sgd_step(np.zeros(3), np.zeros(2), np.zeros(3), 0.1, 0.9, True),
    lambda: kernel.adam_step(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(1), 0.1, 0.9,
                             0.999, 1e-8, 1),
    lambda: kernel.apply_derivative("tanh", np.zeros((2, 3)), np.zeros((3, 2))),
    lambda: kernel.loss_and_delta("squared_error", np.zeros((2, 3)), np.zeros((2, 2)),
                                  np.empty(0), np.zeros((2, 3))),
], ids=["sgd_step", "adam_step", "apply_derivative", "loss_and_delta"])
def test_single_piece_helpers_reject_mismatched_shapes(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("units", [pytest.param([3.7, 2.2], id="fractional"),
                                   pytest.param(["3", "2"], id="strings")])
def test_non_integer_units_are_rejected(units):
    with pytest.raises(ValueError, match="integers"):
        kernel.Network(units, "relu", "squared_error")


@pytest.mark.parametrize("params", [pytest.param([1.0, 2.0], id="list"),
                                    pytest.param(np.zeros(3, dtype=np.int64), id="int64")])
def test_optimizer_state_needs_float_params(params):
    with pytest.raises(ValueError, match="params"):
        kernel.Optimizer("sgd", params, learning_rate=0.1)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_check_finite_reports_a_non_finite_input_and_writes_nothing(dtype, sparse,
                                                                            value):
    rng = np.random.default_rng(0)
    units = [6, 5, 3]
    X = rng.normal(size=(9, 6)).astype(dtype)
    params = ref.random_params(rng, units, dtype)
    net = kernel.Network(units, "relu", None, 0.0, sparse, 9, output="softmax")
    work = np.empty(net.workspace_size(kernel.FORWARD_PART), dtype=dtype)
    as_input = scipy.sparse.csr_matrix if sparse else (lambda a: a)
    out = np.full((9, 3), -1.0, dtype=dtype)
    assert kernel.forward(net, kernel.Data(as_input(X)), params, out, work, True)
    assert_allclose(out, ref.predict(X, units, params, "relu", "softmax"),
                    rtol=1e-5 if dtype == np.float32 else 1e-12)
    X[4, 2] = value
    out[:] = -1.0
    assert not kernel.forward(net, kernel.Data(as_input(X)), params, out, work, True)
    assert np.all(out == -1.0)
