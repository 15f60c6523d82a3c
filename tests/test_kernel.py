"""Specification of cbp's compiled kernel, checked against tests/reference.py.

Every test states one behaviour of the installed ``cbp._kernel``; the
parametrization ids name the activation, loss, depth, dtype, solver, batch
size, ... of a failing case, and the assertion message names the layer or the
quantity that disagrees.

Tolerances (kernel vs. reference, which computes in the same dtype):
  float64: rtol 1e-12 for single steps (one pass, one update), 1e-10 for a
           whole epoch; atol 1e-14 / 1e-12 for values that cancel to ~0.
  float32: rtol 1e-5; atol 1e-6 for values near 0 (the quantities compared
           are O(0.1 - 10), so this is a few float32 ulps of the inputs), 5e-6
           for a whole epoch (24 momentum updates accumulate rounding: the
           largest difference seen is 9e-7 on a parameter of 0.025).
Measured worst |kernel - reference| / (atol + rtol |reference|), all cases:
float64 0.05 (steps) and 0.001 (epochs); float32 0.42 (steps) and 0.2 (epochs).
"""
import functools
import sys
import threading
import time

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cbp._dispatch import kernel  # the build this CPU runs (CBP_KERNEL=baseline: the portable one)
import reference as ref
from isolation import assert_raises_isolated
from kernel_paths import gemm_path

ACT = kernel.ACTIVATION_CODES
LOSS = kernel.LOSS_CODES
SOLVER = kernel.SOLVER_CODES

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
HIDDEN_LAYERS = {0: (), 1: (5,), 2: (5, 3), 4: (6, 3, 7, 4), "2wide": (24, 16)}
N_OUTPUTS = {"squared_error": 3, "log_loss": 3, "binary_log_loss": 2, "poisson": 2}
SOLVERS = {  # name: (solver code name, nesterov, learning rate)
    "sgd": ("sgd", False, 0.05),
    "nesterov": ("sgd", True, 0.05),
    "adam": ("adam", False, 0.01),
}
MOMENTUM, BETA_1, BETA_2, EPSILON = 0.9, 0.9, 0.999, 1e-8


# ---------------------------------------------------------------------------
# Problems and calls into the kernel
# ---------------------------------------------------------------------------

class Problem:
    """A network, its parameters and a data set, all in one dtype."""

    def __init__(self, hidden="tanh", loss="squared_error", depth=2,
                 dtype=np.float64, weighted=True, alpha=0.1, n=N_ROWS, seed=0):
        rng = np.random.default_rng(seed)
        self.hidden, self.loss, self.alpha = hidden, loss, alpha
        self.output = ref.OUTPUT_FOR_LOSS[loss]
        self.dtype = dtype
        k = N_OUTPUTS[loss]
        self.units = np.array((N_FEATURES, *HIDDEN_LAYERS[depth], k), dtype=np.intp)
        self.X = rng.normal(size=(n, N_FEATURES)).astype(dtype)
        self.Y = ref.random_targets(rng, loss, n, k, dtype)
        self.sample_weight = (rng.uniform(0.5, 2.0, size=n).astype(dtype) if weighted
                              else np.empty(0, dtype=dtype))
        self.params = ref.random_params(rng, self.units, dtype)

    @property
    def sw_or_none(self):
        return self.sample_weight if len(self.sample_weight) else None

    def reference_loss_grad(self, params=None):
        return ref.loss_grad(self.X, self.Y, self.sw_or_none, self.units, self.hidden,
                             self.output, self.loss, self.alpha,
                             self.params if params is None else params)

    def kernel_loss_grad(self, params=None):
        params = self.params if params is None else params
        n = len(self.X)
        grads = np.full(kernel.n_params(self.units), np.nan, dtype=self.dtype)
        # NaN-filled scratch: any read of a value the kernel did not write shows
        work = np.full(kernel.workspace_size(self.units, n, kernel.BACKWARD), np.nan,
                       dtype=self.dtype)
        J = kernel.loss_grad(self.X, self.Y, self.sample_weight, self.units,
                             ACT[self.hidden], ACT[self.output], LOSS[self.loss],
                             self.alpha, params, grads, work)
        activations, deltas = kernel.workspace_views(work, self.units, n, n)
        return {"loss": J, "grads": grads,
                "activations": [a.copy() for a in activations],
                "deltas": [d.copy() for d in deltas]}

    def epoch_args(self, solver):
        code, nesterov, lr = SOLVERS[solver]
        return dict(solver=code, learning_rate=lr, momentum=MOMENTUM, nesterov=nesterov,
                    beta_1=BETA_1, beta_2=BETA_2, epsilon=EPSILON)

    def reference_epoch(self, solver, batch_size, order, params=None, t=0,
                        state_1=None, state_2=None):
        return ref.train_epoch(self.X, self.Y, self.sw_or_none, order, batch_size,
                               self.units, self.hidden, self.output, self.loss,
                               self.alpha, self.params if params is None else params,
                               t=t, state_1=state_1, state_2=state_2,
                               **self.epoch_args(solver))

    def kernel_epoch(self, solver, batch_size, order, params=None, t=0,
                     state_1=None, state_2=None, X=None, Y=None, sample_weight=None):
        a = self.epoch_args(solver)
        params = (self.params if params is None else params).copy()
        state_1 = np.zeros_like(params) if state_1 is None else state_1.copy()
        state_2 = np.zeros_like(params) if state_2 is None else state_2.copy()
        grads = np.full_like(params, np.nan)
        work = np.full(kernel.workspace_size(self.units, batch_size, kernel.EPOCH),
                       np.nan, dtype=self.dtype)
        order = np.empty(0, dtype=np.intp) if order is None else order
        total, t = kernel.train_epoch(
            self.X if X is None else X, self.Y if Y is None else Y,
            self.sample_weight if sample_weight is None else sample_weight,
            order, batch_size, self.units, ACT[self.hidden], ACT[self.output],
            LOSS[self.loss], self.alpha, params, grads, work, SOLVER[a["solver"]],
            a["learning_rate"], a["momentum"], a["nesterov"], a["beta_1"],
            a["beta_2"], a["epsilon"], t, state_1, state_2)
        return {"total": total, "t": t, "params": params, "state_1": state_1,
                "state_2": state_2, "grads": grads}


# The kernel computes small matrix products (m n k <= a threshold) with direct
# loops and larger ones with BLAS; both paths are tested on every network.
GEMM_PATHS = [pytest.param("loops", id="loops"), pytest.param("blas", id="blas")]


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
def _reference_loss_grad(hidden, loss, depth, weighted, alpha, dtype):
    return Problem(hidden, loss, depth, dtype, weighted, alpha).reference_loss_grad()


@functools.lru_cache(maxsize=None)
def _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path="default"):
    """(kernel's, reference's) loss_grad results, cached across the tests."""
    with gemm_path(path):
        got = Problem(hidden, loss, depth, dtype, weighted, alpha).kernel_loss_grad()
    return got, _reference_loss_grad(hidden, loss, depth, weighted, alpha, dtype)


# ---------------------------------------------------------------------------
# Activations and their derivatives
# ---------------------------------------------------------------------------

def _z(dtype, seed=0):
    Z = np.random.default_rng(seed).normal(scale=3.0, size=(7, 5)).astype(dtype)
    Z[0, 0] = 0.0  # the relu kink
    return Z


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["identity", "logistic", "tanh", "relu", "softmax", "exp"])
def test_activation_matches_reference(name, dtype):
    Z = _z(dtype)
    A = Z.copy()
    kernel.apply_activation(ACT[name], A)
    assert_allclose(A, ref.activation(name, Z), err_msg=f"{name}(z)", **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_is_stable_for_large_inputs(dtype):
    Z = np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1000.0, -1000.0]], dtype=dtype)
    A = Z.copy()
    kernel.apply_activation(ACT["softmax"], A)
    assert np.all(np.isfinite(A)), f"softmax overflowed: {A}"
    assert_allclose(A.sum(axis=1), 1.0, rtol=1e-6, err_msg="softmax rows must sum to 1")
    assert_allclose(A, ref.activation("softmax", Z), **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_saturates_without_nan(dtype):
    Z = np.array([[-1000.0, 1000.0]], dtype=dtype)  # exp(1000) overflows to inf
    kernel.apply_activation(ACT["logistic"], Z)
    assert_array_equal(Z, [[0.0, 1.0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_keeps_nan_as_np_maximum_does(dtype):
    Z = np.array([[np.nan, -1.0, 2.0]], dtype=dtype)
    kernel.apply_activation(ACT["relu"], Z)
    assert_array_equal(Z, [[np.nan, 0.0, 2.0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ref.HIDDEN_ACTIVATIONS)
def test_derivative_matches_reference(name, dtype):
    """apply_derivative(A = g(z), delta) multiplies delta by g'(z)."""
    Z = _z(dtype)
    delta = np.random.default_rng(1).normal(size=Z.shape).astype(dtype)
    A = ref.activation(name, Z)
    out = delta.copy()
    kernel.apply_derivative(ACT[name], A, out)
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
    kernel.loss_and_delta(LOSS[loss], y_pred, Y, np.empty(0), delta)
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
    got = kernel.loss_and_delta(LOSS[loss], y_pred, Y, sw, np.empty_like(y_pred))
    expected = ref.weighted_loss_sum(loss, y_pred, Y, sw)
    assert_allclose(got, expected, err_msg=f"sum_i w_i J_i of {loss}", **STEP_TOL[dtype])


@pytest.mark.parametrize("weighted", WEIGHTED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ref.LOSSES)
def test_output_delta_matches_reference(loss, dtype, weighted):
    y_pred, Y, sw = _loss_inputs(loss, dtype, weighted)
    delta = np.full_like(y_pred, np.nan)
    kernel.loss_and_delta(LOSS[loss], y_pred, Y, sw, delta)
    assert_allclose(delta, ref.output_delta(y_pred, Y, sw), err_msg="w (y_pred - y)",
                    **STEP_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_squared_error_is_summed_over_outputs_not_averaged(dtype):
    """0.5 sum_k (y - y_pred)^2 per sample, so that delta = y_pred - y is its
    gradient (scikit-learn divides by n_outputs in the loss only, #8349)."""
    y_pred = np.zeros((2, 4), dtype=dtype)
    Y = np.ones((2, 4), dtype=dtype)
    got = kernel.loss_and_delta(LOSS["squared_error"], y_pred, Y, np.empty(0, dtype),
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
    got = kernel.loss_and_delta(LOSS[loss], y_pred, np.array(y, dtype=dtype),
                                np.empty(0, dtype), np.empty_like(y_pred))
    assert got == pytest.approx(-np.log(np.finfo(dtype).eps), rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_loss_of_a_zero_count_is_the_prediction(dtype):
    y_pred = np.array([[2.5]], dtype=dtype)
    got = kernel.loss_and_delta(LOSS["poisson"], y_pred, np.zeros((1, 1), dtype),
                                np.empty(0, dtype), np.empty_like(y_pred))
    assert got == pytest.approx(2.5), "0 log(0 / y_pred) must count as 0"


# ---------------------------------------------------------------------------
# Forward pass, loss, deltas and gradients of whole networks (loss_grad)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", NETWORK_CASES)
def test_activations_of_every_layer_match_reference(hidden, loss, depth, weighted, alpha, dtype, path):
    got, expected = _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path)
    for l, (a, e) in enumerate(zip(got["activations"], expected["activations"]), start=1):
        assert_allclose(a, e, err_msg=f"activations[{l}]", **STEP_TOL[dtype])


@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", NETWORK_CASES)
def test_loss_matches_reference(hidden, loss, depth, weighted, alpha, dtype, path):
    got, expected = _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path)
    assert_allclose(got["loss"], expected["loss"], err_msg="penalised batch loss J",
                    **STEP_TOL[dtype])


@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", NETWORK_CASES)
def test_delta_of_every_layer_matches_reference(hidden, loss, depth, weighted, alpha, dtype, path):
    got, expected = _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path)
    L = len(expected["deltas"])
    for l in range(L - 1, -1, -1):  # from the output back, so the first failure is the origin
        assert_allclose(got["deltas"][l], expected["deltas"][l],
                        err_msg=f"deltas[{l}] (of {L} layers)", **STEP_TOL[dtype])


@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", NETWORK_CASES)
def test_coef_gradients_match_reference(hidden, loss, depth, weighted, alpha, dtype, path):
    got, expected = _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path)
    p = Problem(hidden, loss, depth, dtype, weighted, alpha)
    coef_grads, _ = ref.unpack(got["grads"], p.units)
    for l in range(len(coef_grads) - 1, -1, -1):
        assert_allclose(coef_grads[l], expected["coef_grads"][l],
                        err_msg=f"coef gradient of layer {l}", **STEP_TOL[dtype])


@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", NETWORK_CASES)
def test_intercept_gradients_match_reference(hidden, loss, depth, weighted, alpha, dtype, path):
    got, expected = _loss_grad_pair(hidden, loss, depth, weighted, alpha, dtype, path)
    p = Problem(hidden, loss, depth, dtype, weighted, alpha)
    _, intercept_grads = ref.unpack(got["grads"], p.units)
    for l in range(len(intercept_grads) - 1, -1, -1):
        assert_allclose(intercept_grads[l], expected["intercept_grads"][l],
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


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_weight_rows_do_not_count(dtype):
    """A row of weight 0 changes neither the loss nor the gradient (nor s)."""
    p = Problem("logistic", "poisson", dtype=dtype, weighted=True)
    p.sample_weight[[3, 11]] = 0
    with_rows = p.kernel_loss_grad()
    keep = np.setdiff1d(np.arange(N_ROWS), [3, 11])
    p.X, p.Y, p.sample_weight = p.X[keep], p.Y[keep], p.sample_weight[keep]
    without_rows = p.kernel_loss_grad()
    assert_allclose(with_rows["loss"], without_rows["loss"], **STEP_TOL[dtype])
    assert_allclose(with_rows["grads"], without_rows["grads"], **STEP_TOL[dtype])


# ---------------------------------------------------------------------------
# The forward entry point (prediction, in chunks)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk_rows", [
    pytest.param(1, id="chunk1"), pytest.param(6, id="chunk6-divides-24"),
    pytest.param(10, id="chunk10-does-not-divide-24"), pytest.param(24, id="chunk24-all"),
    pytest.param(40, id="chunk40-more-than-n")])
@pytest.mark.parametrize("loss", ref.LOSSES, ids=[f"{ref.OUTPUT_FOR_LOSS[l]}-output"
                                                   for l in ref.LOSSES])
@pytest.mark.parametrize("path", GEMM_PATHS)
def test_forward_matches_reference(loss, chunk_rows, dtype, path):
    p = Problem("tanh", loss, depth=2, dtype=dtype)
    out = np.full_like(p.Y, np.nan)
    work = np.full(kernel.workspace_size(p.units, chunk_rows, kernel.FORWARD), np.nan, dtype)
    with gemm_path(path):
        kernel.forward(p.X, p.units, ACT[p.hidden], ACT[p.output], p.params, out, work,
                       chunk_rows)
    assert_allclose(out, ref.predict(p.X, p.units, p.params, p.hidden, p.output),
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


# ---------------------------------------------------------------------------
# Whole epochs
# ---------------------------------------------------------------------------

ORDERS = [pytest.param(False, id="in-order"), pytest.param(True, id="shuffled")]
SOLVER_NAMES = list(SOLVERS)


@functools.lru_cache(maxsize=None)
def _epoch_pair(solver, batch_size, shuffled, dtype, hidden="tanh", loss="squared_error",
                depth=2, weighted=True, alpha=0.1, path="default"):
    """(kernel's, reference's) results of one epoch from the same start, cached."""
    p = Problem(hidden, loss, depth, dtype, weighted, alpha)
    order = shuffled_order() if shuffled else None
    with gemm_path(path):
        got = p.kernel_epoch(solver, batch_size, order)
    return got, p.reference_epoch(solver, batch_size, order)


@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffled", ORDERS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_params_match_reference(solver, batch_size, shuffled, dtype, path):
    got, expected = _epoch_pair(solver, batch_size, shuffled, dtype, path=path)
    assert_allclose(got["params"], expected["params"], err_msg="params after the epoch",
                    **EPOCH_TOL[dtype])


@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffled", ORDERS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_loss_sum_matches_reference(solver, batch_size, shuffled, dtype, path):
    got, expected = _epoch_pair(solver, batch_size, shuffled, dtype, path=path)
    assert_allclose(got["total"], expected["total"],
                    err_msg="sum over batches of batch loss * rows", **EPOCH_TOL[dtype])


@pytest.mark.parametrize("path", GEMM_PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffled", ORDERS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_optimizer_state_matches_reference(solver, batch_size, shuffled, dtype, path):
    got, expected = _epoch_pair(solver, batch_size, shuffled, dtype, path=path)
    assert got["t"] == expected["t"], "update count t"
    assert_allclose(got["state_1"], expected["state_1"],
                    err_msg="velocities" if solver != "adam" else "first moments",
                    **EPOCH_TOL[dtype])
    if solver == "adam":
        assert_allclose(got["state_2"], expected["state_2"], err_msg="second moments",
                        **EPOCH_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("hidden, loss", HIDDEN_X_LOSS)
def test_epoch_matches_reference_for_every_activation_and_loss(hidden, loss, solver, dtype):
    got, expected = _epoch_pair(solver, 10, True, dtype, hidden, loss)
    assert_allclose(got["params"], expected["params"], err_msg="params after the epoch",
                    **EPOCH_TOL[dtype])
    assert_allclose(got["total"], expected["total"], err_msg="summed loss",
                    **EPOCH_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffled", ORDERS)
@pytest.mark.parametrize("hidden, loss, depth, weighted, alpha", DEPTH_CASES)
def test_epoch_matches_reference_for_every_depth_with_and_without_weights_and_l2(
        hidden, loss, depth, weighted, alpha, shuffled, dtype):
    got, expected = _epoch_pair("nesterov", 10, shuffled, dtype, hidden, loss, depth,
                                weighted, alpha)
    assert_allclose(got["params"], expected["params"], err_msg="params after the epoch",
                    **EPOCH_TOL[dtype])
    assert_allclose(got["total"], expected["total"], err_msg="summed loss",
                    **EPOCH_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_continues_from_the_given_optimizer_state(solver, dtype):
    """Two epochs in a row, the second fed the first's params, state and t."""
    p = Problem("relu", "binary_log_loss", dtype=dtype)
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


@pytest.mark.parametrize("solver, batch_size, expected_t", [
    pytest.param("sgd", 10, 5, id="sgd-keeps-t"),
    pytest.param("adam", 10, 5 + 3, id="adam-batch10-adds-3"),
    pytest.param("adam", 1, 5 + 24, id="adam-batch1-adds-24"),
])
def test_epoch_returns_the_update_count(solver, batch_size, expected_t):
    p = Problem()
    assert p.kernel_epoch(solver, batch_size, None, t=5)["t"] == expected_t


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_epoch_skips_a_batch_whose_weights_are_all_zero(solver):
    """In order, batch_size 10: the second batch (rows 10-19) has weight 0; it
    adds nothing to the loss and makes no update (Adam's t counts 2, not 3)."""
    p = Problem(weighted=True)
    p.sample_weight[10:20] = 0
    got = p.kernel_epoch(solver, 10, None)
    expected = p.reference_epoch(solver, 10, None)
    assert np.all(np.isfinite(got["params"])), "params after a zero-weight batch"
    assert got["t"] == expected["t"], "update count t"
    assert_allclose(got["params"], expected["params"], err_msg="params",
                    **EPOCH_TOL[np.float64])
    assert_allclose(got["total"], expected["total"], err_msg="summed loss",
                    **EPOCH_TOL[np.float64])


def test_in_order_epoch_equals_epoch_in_identity_order():
    p = Problem()
    in_order = p.kernel_epoch("adam", 10, None)
    identity = p.kernel_epoch("adam", 10, np.arange(N_ROWS, dtype=np.intp))
    assert_allclose(identity["params"], in_order["params"], rtol=1e-14, atol=0)
    assert identity["total"] == pytest.approx(in_order["total"], rel=1e-14)


def test_shuffled_epoch_equals_in_order_epoch_on_permuted_rows():
    p = Problem()
    order = shuffled_order()
    shuffled = p.kernel_epoch("sgd", 10, order)
    permuted = p.kernel_epoch("sgd", 10, None, X=p.X[order], Y=p.Y[order],
                              sample_weight=p.sample_weight[order])
    assert_allclose(shuffled["params"], permuted["params"], rtol=1e-14, atol=0)
    assert shuffled["total"] == pytest.approx(permuted["total"], rel=1e-14)


# ---------------------------------------------------------------------------
# Worked examples, by hand
# ---------------------------------------------------------------------------

def _worked_loss_grad(implementation, units, hidden, X, Y, params):
    units = np.array(units, dtype=np.intp)
    X, Y, params = (np.array(a, dtype=np.float64) for a in (X, Y, params))
    if implementation == "reference":
        r = ref.loss_grad(X, Y, None, units, hidden, "identity", "squared_error", 0.0, params)
        return r["loss"], r["grads"]
    grads = np.empty_like(params)
    work = np.empty(kernel.workspace_size(units, len(X), kernel.BACKWARD))
    J = kernel.loss_grad(X, Y, np.empty(0), units, ACT[hidden], ACT["identity"],
                         LOSS["squared_error"], 0.0, params, grads, work)
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
    params = rng.normal(scale=0.05, size=kernel.n_params(units))
    grads, state = np.empty_like(params), np.zeros_like(params)
    work = np.empty(kernel.workspace_size(units, 50, kernel.EPOCH))

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
        kernel.train_epoch(X, Y, np.empty(0), np.empty(0, dtype=np.intp), 50, units,
                           ACT["relu"], ACT["identity"], LOSS["squared_error"], 1e-4,
                           params, grads, work, SOLVER["sgd"], 1e-3, 0.9, True,
                           0.9, 0.999, 1e-8, 0, state, np.empty(0))
        during = count - before
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(switch_interval)
    assert during >= 100, (
        f"the counting thread advanced only {during} times while train_epoch ran: "
        "the epoch holds the GIL")


# ---------------------------------------------------------------------------
# Sizes: layout of params and work, and the O(1) checks
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("depth", list(HIDDEN_LAYERS))
def test_n_params_counts_coefs_and_intercepts(depth):
    units = np.array((N_FEATURES, *HIDDEN_LAYERS[depth], 3), dtype=np.intp)
    assert kernel.n_params(units) == ref.n_params(units)


@pytest.mark.parametrize("depth", list(HIDDEN_LAYERS))
def test_workspace_size_follows_documented_layout(depth):
    """FORWARD: activations[1..L]; BACKWARD: and deltas[0..L-1]; EPOCH: and the
    gathered batch (X, Y, sample weights), M rows each."""
    units = np.array((N_FEATURES, *HIDDEN_LAYERS[depth], 3), dtype=np.intp)
    M = 7
    layers = M * int(units[1:].sum())
    assert kernel.workspace_size(units, M, kernel.FORWARD) == layers
    assert kernel.workspace_size(units, M, kernel.BACKWARD) == 2 * layers
    assert kernel.workspace_size(units, M, kernel.EPOCH) == (
        2 * layers + M * (int(units[0]) + int(units[-1]) + 1))


@pytest.mark.parametrize("units", [pytest.param([3], id="no-layer"),
                                   pytest.param([3, 0, 2], id="empty-layer")])
def test_invalid_units_are_rejected(units):
    with pytest.raises(ValueError):
        kernel.n_params(np.array(units, dtype=np.intp))


def _sized_call(entry, change=None):
    """Call an entry point with every size right, except the one ``change`` names."""
    change = change or {}
    p = Problem(dtype=np.float64)
    n, P = N_ROWS, kernel.n_params(p.units)
    part = {"forward": kernel.FORWARD, "loss_grad": kernel.BACKWARD,
            "train_epoch": kernel.EPOCH}[entry]
    rows = 10 if entry == "train_epoch" else n
    sizes = {"params": P, "grads": P, "state_1": P, "state_2": P,
             "work": kernel.workspace_size(p.units, rows, part), "batch_size": rows}
    sizes.update(change)
    params = p.params.copy()
    params = np.resize(params, sizes["params"])
    grads = np.zeros(sizes["grads"])
    work = np.zeros(sizes["work"])
    if entry == "forward":
        return kernel.forward(p.X, p.units, ACT["tanh"], ACT["identity"], params,
                              np.empty_like(p.Y), work, rows)
    if entry == "loss_grad":
        return kernel.loss_grad(p.X, p.Y, p.sample_weight, p.units, ACT["tanh"],
                                ACT["identity"], LOSS["squared_error"], 0.1, params,
                                grads, work)
    return kernel.train_epoch(p.X, p.Y, p.sample_weight, np.empty(0, dtype=np.intp),
                              sizes["batch_size"], p.units, ACT["tanh"], ACT["identity"],
                              LOSS["squared_error"], 0.1, params, grads, work,
                              SOLVER["adam"], 1e-3, 0.9, False, 0.9, 0.999, 1e-8, 0,
                              np.zeros(sizes["state_1"]), np.zeros(sizes["state_2"]))


@pytest.mark.parametrize("entry", ["forward", "loss_grad", "train_epoch"])
def test_exact_sizes_are_accepted(entry):
    _sized_call(entry)


def _bad_sizes():
    units = np.array((N_FEATURES, *HIDDEN_LAYERS[2], 3), dtype=np.intp)
    P = ref.n_params(units)

    def work(rows, part):
        return kernel.workspace_size(units, rows, part)

    cases = []
    for entry in ("forward", "loss_grad", "train_epoch"):
        cases += [pytest.param(entry, {"params": P - 1}, id=f"{entry}-params-one-short"),
                  pytest.param(entry, {"params": P + 1}, id=f"{entry}-params-one-long")]
    cases += [
        pytest.param("forward", {"work": work(N_ROWS, kernel.FORWARD) - 1},
                     id="forward-work-one-short"),
        pytest.param("loss_grad", {"work": work(N_ROWS, kernel.BACKWARD) - 1},
                     id="loss_grad-work-one-short"),
        pytest.param("loss_grad", {"work": work(N_ROWS, kernel.FORWARD)},
                     id="loss_grad-work-of-forward-size"),
        pytest.param("loss_grad", {"grads": P - 1}, id="loss_grad-grads-one-short"),
        pytest.param("train_epoch", {"work": work(10, kernel.EPOCH) - 1},
                     id="train_epoch-work-one-short"),
        pytest.param("train_epoch", {"work": work(10, kernel.BACKWARD)},
                     id="train_epoch-work-of-backward-size"),
        pytest.param("train_epoch", {"grads": P - 1}, id="train_epoch-grads-one-short"),
        pytest.param("train_epoch", {"state_1": P - 1}, id="train_epoch-state_1-one-short"),
        pytest.param("train_epoch", {"state_2": P - 1},
                     id="train_epoch-adam-state_2-one-short"),
        pytest.param("train_epoch", {"batch_size": 0}, id="train_epoch-batch_size-0"),
        pytest.param("train_epoch", {"batch_size": N_ROWS + 1},
                     id="train_epoch-batch_size-above-n"),
    ]
    return cases


@pytest.mark.parametrize("entry, change", _bad_sizes())
def test_size_mismatch_raises_value_error(entry, change):
    with pytest.raises(ValueError):
        _sized_call(entry, change)


@pytest.mark.parametrize("chunk_rows", [0, -1])
def test_forward_rejects_chunk_rows_below_one(chunk_rows):
    """Run in a forked child: a kernel that looped forever would be killed
    after isolation's timeout and fail the test instead of hanging it."""
    units = np.array([2, 3, 1], dtype=np.intp)
    X = np.ones((4, 2))
    work = np.empty(kernel.workspace_size(units, 1, kernel.FORWARD))
    assert_raises_isolated(
        ValueError, "chunk_rows",
        lambda: kernel.forward(X, units, 0, 0, np.zeros(kernel.n_params(units)),
                               np.empty((4, 1)), work, chunk_rows))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffled", [False, True], ids=["in-order", "shuffled"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_epoch_with_byte_targets_equals_float_targets(solver, shuffled, dtype):
    """Y_indicator (0/1 targets as uint8, what classifiers pass) trains exactly
    as the same targets given as floats."""
    rng = np.random.default_rng(7)
    units = np.array([5, 6, 3], dtype=np.intp)
    n = 23
    X = rng.normal(size=(n, 5)).astype(dtype)
    Y_bytes = np.eye(3, dtype=np.uint8)[rng.integers(0, 3, n)]
    order = rng.permutation(n).astype(np.intp) if shuffled else np.empty(0, np.intp)
    results = []
    for as_bytes in (False, True):
        params = np.random.default_rng(1).normal(scale=0.3, size=kernel.n_params(units)).astype(dtype)
        state = [np.zeros_like(params), np.zeros_like(params)]
        work = np.empty(kernel.workspace_size(units, 4, kernel.EPOCH), dtype=dtype)
        Y = np.empty((0, 3), dtype) if as_bytes else Y_bytes.astype(dtype)
        total, t = kernel.train_epoch(
            X, Y, np.empty(0, dtype), order, 4, units, ACT["relu"], ACT["softmax"],
            LOSS["log_loss"], 1e-3, params, np.empty_like(params), work, SOLVER[solver],
            0.01, 0.9, True, 0.9, 0.999, 1e-8, 0, *state,
            Y_indicator=Y_bytes if as_bytes else None)
        results.append((total, t, params))
    assert results[0][0] == results[1][0], "epoch loss"
    assert results[0][1] == results[1][1], "update count"
    assert_array_equal(results[0][2], results[1][2], err_msg="weights")


@pytest.mark.parametrize("field, value", [("solver", 2), ("solver", -1), ("activation", 9),
                                          ("output", 7), ("loss", 4)])
def test_train_epoch_rejects_unknown_codes(field, value):
    """An unknown code would take no branch or the wrong one (an unknown
    solver ran Adam on an empty second-moment vector: a segfault)."""
    units = np.array([3, 4, 2], dtype=np.intp)
    params = np.zeros(kernel.n_params(units))
    args = dict(activation=ACT["relu"], output=ACT["identity"], loss=LOSS["squared_error"],
                solver=SOLVER["sgd"])
    args[field] = value
    with pytest.raises(ValueError, match="unknown"):
        kernel.train_epoch(
            np.zeros((5, 3)), np.zeros((5, 2)), np.empty(0), np.empty(0, np.intp), 2, units,
            args["activation"], args["output"], args["loss"], 0.0, params,
            np.empty_like(params), np.empty(kernel.workspace_size(units, 2, kernel.EPOCH)),
            args["solver"], 0.1, 0.9, True, 0.9, 0.999, 1e-8, 0, np.zeros_like(params),
            np.empty(0))


@pytest.mark.parametrize("call", [
    lambda: kernel.sgd_step(np.zeros(3), np.zeros(2), np.zeros(3), 0.1, 0.9, True),
    lambda: kernel.adam_step(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(1), 0.1, 0.9,
                             0.999, 1e-8, 1),
    lambda: kernel.apply_derivative(ACT["tanh"], np.zeros((2, 3)), np.zeros((3, 2))),
    lambda: kernel.loss_and_delta(LOSS["squared_error"], np.zeros((2, 3)), np.zeros((2, 2)),
                                  np.empty(0), np.zeros((2, 3))),
], ids=["sgd_step", "adam_step", "apply_derivative", "loss_and_delta"])
def test_single_piece_helpers_reject_mismatched_shapes(call):
    with pytest.raises(ValueError):
        call()
