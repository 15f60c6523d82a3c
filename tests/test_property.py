"""Property-based check of the compiled kernel against tests/reference.py.

test_kernel.py compares the kernel with the NumPy reference on a fixed grid
of networks; here hypothesis draws the network and the data instead, so that
shapes the grid does not list (a single row, a single unit, one feature, a
batch of every size from 1 to n, outputs of width 1, zero sample weights, an
optimizer state carried in from earlier epochs) are compared too:

    network   1-3 hidden layers of 1-9 units, 1-9 features and outputs,
              any hidden activation, any loss with its canonical output
    data      1-20 rows, float32 or float64, with or without sample weights
              (some of them 0, so whole batches can carry no weight), L2 or not
    input     X dense, or a CSR matrix (sparse first layer) of an X with
              zeros, some of them stored explicitly
    chunks    the rows that go through the layers at once (the network's
              chunk_rows), any of 1..n + 1: a batch larger than that is summed
              chunk by chunk
    training  sgd with and without Nesterov momentum, or adam, any batch size
              in 1..n, rows in order or shuffled, starting from zero or from a
              random optimizer state and update count t
    products  the kernel's micro-kernels, BLAS, or its default threshold
              between them (kernel.set_small_gemm_work), restored afterwards

Tolerances start from test_kernel.py's: a single loss_grad is one step (float64 rtol
1e-12 / atol 1e-14, float32 rtol 1e-5 / atol 1e-6), an epoch accumulates
rounding over its updates (float64 rtol 1e-10 / atol 1e-12, float32 rtol 1e-5 /
atol 5e-6). test_kernel.py's problems keep every compared quantity O(0.1 - 10);
drawn ones do not (an exp output, or a layer of 9 identity units, gives
gradients of 30 or more), so the atol, which covers values that cancel to about
0, is scaled by the largest magnitude in the compared vector when that exceeds
1: an element that is a sum of terms of size 30 can be off by a few ulps of 30
however small the sum is. (Found by the search: float32 units [6, 3, 6, 5],
identity, poisson, 3 rows: a gradient of 0.01854 next to ones of 37 differed by
1.4e-6, a third of an ulp of 37.) A float32 epoch of up to 20 updates on a
drawn network can also amplify rounding more than test_kernel.py's do (a
1-unit bottleneck, an exp output): there the atol is raised by NOISE_FACTOR
times the reference's own float32 rounding error, max |reference in float32 -
reference in float64|, since the kernel cannot be expected closer to the
float32 reference than the two rounded computations are to the exact one.
Over 15000 drawn float32 epochs the largest factor needed was 4.4 (typically
below 1.5); float64 epochs need none (worst |difference| 0.004 of the
tolerance). A wrong formula is far outside both: an alpha 0.1% off, beta_2 of
0.998 instead of 0.999 or the rows taken in reverse order all fail.

The run is bounded and reproducible: derandomize=True draws the same examples
on every run (no example database), and max_examples keeps it to a few
seconds.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from cbp._dispatch import kernel  # the build kernel_paths.gemm_path switches
import reference as ref
from kernel_paths import gemm_path

STEP_TOL = {np.float32: dict(rtol=1e-5, atol=1e-6),
            np.float64: dict(rtol=1e-12, atol=1e-14)}
EPOCH_TOL = {np.float32: dict(rtol=1e-5, atol=5e-6),
             np.float64: dict(rtol=1e-10, atol=1e-12)}

# (kernel solver, nesterov, learning rate): test_kernel.py's SOLVERS
SOLVERS = {
    "sgd": ("sgd", False, 0.05),
    "nesterov": ("sgd", True, 0.05),
    "adam": ("adam", False, 0.01),
}
MOMENTUM, BETA_1, BETA_2, EPSILON = 0.9, 0.9, 0.999, 1e-8

# float32 epochs: extra atol, in units of the reference's own float32 rounding
# error (see rounding_noise and the module docstring)
NOISE_FACTOR = 8.0

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def tolerance(table, dtype, expected):
    """table[dtype], with the atol scaled by max(1, max |expected|)."""
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    tol = dict(table[dtype])
    tol["atol"] *= scale
    return tol


class Problem:
    """A network, its parameters and a data set, drawn by ``problems()``, and
    the kernel's objects for them."""

    def __init__(self, dtype, units, hidden, loss, n, weighted, alpha, seed, sparse,
                 chunk_rows):
        rng = np.random.default_rng(seed)
        self.dtype, self.hidden, self.loss, self.alpha = dtype, hidden, loss, alpha
        self.sparse, self.chunk_rows = sparse, chunk_rows
        self.output = ref.OUTPUT_FOR_LOSS[loss]
        self.units = np.array(units, dtype=np.intp)
        k = int(self.units[-1])
        self.X = rng.normal(size=(n, int(self.units[0]))).astype(dtype)
        self.Y = ref.random_targets(rng, loss, n, k, dtype)
        if weighted:
            w = rng.uniform(0.5, 2.0, size=n)
            w[rng.uniform(size=n) < 0.25] = 0.0  # rows, even whole batches, of weight 0
            self.sample_weight = w.astype(dtype)
        else:
            self.sample_weight = None
        self.params = ref.random_params(rng, self.units, dtype)
        self.stored = None
        if sparse:  # half the entries 0, a fifth of those stored explicitly
            self.X[rng.uniform(size=self.X.shape) < 0.5] = 0
            self.stored = (self.X != 0) | (rng.uniform(size=self.X.shape) < 0.2)
        self.rng = rng

    def network(self):
        return kernel.Network(self.units, self.hidden, self.loss, self.alpha, self.sparse,
                              self.chunk_rows)

    def data(self):
        X = ref.csr(self.X, self.stored) if self.sparse else self.X
        return kernel.Data(X, self.Y, self.sample_weight)

    def __repr__(self):
        weights = None if self.sample_weight is None else self.sample_weight.tolist()
        return (f"Problem(units={self.units.tolist()}, hidden={self.hidden!r}, "
                f"loss={self.loss!r}, n={len(self.X)}, dtype={self.dtype.__name__}, "
                f"sample_weight={weights}, alpha={self.alpha}, "
                f"input={'csr' if self.sparse else 'dense'}, chunk_rows={self.chunk_rows})")


@st.composite
def problems(draw):
    hidden_layers = draw(st.lists(st.integers(1, 9), min_size=1, max_size=3))
    n_features = draw(st.integers(1, 9))
    n_outputs = draw(st.integers(1, 9))
    loss = draw(st.sampled_from(ref.LOSSES))
    n = draw(st.integers(1, 20))
    return Problem(
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        units=[n_features, *hidden_layers, n_outputs],
        hidden=draw(st.sampled_from(ref.HIDDEN_ACTIVATIONS)),
        loss=loss,
        n=n,
        weighted=draw(st.booleans()),
        alpha=draw(st.sampled_from([0.0, 0.1, 1.0])),
        seed=draw(st.integers(0, 2 ** 32 - 1)),
        sparse=draw(st.booleans()),
        chunk_rows=draw(st.integers(1, n + 1)),
    )


GEMM_PATHS = st.sampled_from(["default", "micro", "blas"])


@SETTINGS
@given(p=problems(), path=GEMM_PATHS)
def test_loss_grad_matches_reference(p, path):
    if p.sample_weight is not None and not p.sample_weight.sum() > 0:
        p.sample_weight[0] = 1  # a full batch needs some weight (s > 0)
    net = p.network()
    grads = np.full(net.n_params, np.nan, dtype=p.dtype)
    work = np.full(net.workspace_size(kernel.BACKWARD_PART), np.nan, dtype=p.dtype)
    with gemm_path(path):
        J = kernel.loss_grad(net, p.data(), p.params, grads, work)
    expected = ref.loss_grad(p.X, p.Y, p.sample_weight, p.units, p.hidden, p.output,
                             p.loss, p.alpha, p.params)
    assert_allclose(J, expected["loss"], err_msg="penalised batch loss J",
                    **tolerance(STEP_TOL, p.dtype, expected["loss"]))
    assert_allclose(grads, expected["grads"], err_msg="gradient",
                    **tolerance(STEP_TOL, p.dtype, expected["grads"]))


@st.composite
def epochs(draw):
    """A problem and how one epoch trains it."""
    p = draw(problems())
    n = len(p.X)
    solver = draw(st.sampled_from(list(SOLVERS)))
    batch_size = draw(st.integers(1, n))
    shuffled = draw(st.booleans())
    order = (p.rng.permutation(n).astype(np.intp) if shuffled
             else np.empty(0, dtype=np.intp))
    if draw(st.booleans()):  # continue from an earlier epoch's optimizer state
        t = draw(st.integers(1, 50))
        state_1 = (0.1 * p.rng.normal(size=len(p.params))).astype(p.dtype)
        state_2 = (0.01 * p.rng.uniform(size=len(p.params))).astype(p.dtype)
    else:
        t = 0
        state_1 = np.zeros_like(p.params)
        state_2 = np.zeros_like(p.params)
    return p, solver, batch_size, order, t, state_1, state_2


def rounding_noise(expected, p, order, batch_size, code, lr, nesterov, t, state_1, state_2):
    """max |reference in p.dtype - reference in float64| of every result of the
    epoch (0 for float64 problems): how far float32 rounding alone moves it."""
    names = ("total", "params", "state_1", "state_2", "grads")
    if p.dtype == np.float64:
        return dict.fromkeys(names, 0.0)
    f64 = {name: None if value is None else np.asarray(value, dtype=np.float64)
           for name, value in dict(X=p.X, Y=p.Y, sw=p.sample_weight, params=p.params,
                                   state_1=state_1, state_2=state_2).items()}
    exact = ref.train_epoch(
        f64["X"], f64["Y"], f64["sw"], order, batch_size, p.units, p.hidden, p.output,
        p.loss, p.alpha, f64["params"], code, learning_rate=lr, momentum=MOMENTUM,
        nesterov=nesterov, beta_1=BETA_1, beta_2=BETA_2, epsilon=EPSILON, t=t,
        state_1=f64["state_1"], state_2=f64["state_2"])
    return {name: 0.0 if expected[name] is None else float(np.max(np.abs(
        np.asarray(expected[name], dtype=np.float64) - exact[name]), initial=0.0))
        for name in names}


@SETTINGS
@given(case=epochs(), path=GEMM_PATHS)
def test_train_epoch_matches_reference(case, path):
    p, solver, batch_size, order, t, state_1, state_2 = case
    code, nesterov, lr = SOLVERS[solver]
    with np.errstate(over="ignore", invalid="ignore"):  # (blown-up epochs: see below)
        expected = ref.train_epoch(
            p.X, p.Y, p.sample_weight, order, batch_size, p.units, p.hidden, p.output,
            p.loss, p.alpha, p.params, code, learning_rate=lr, momentum=MOMENTUM,
            nesterov=nesterov, beta_1=BETA_1, beta_2=BETA_2, epsilon=EPSILON, t=t,
            state_1=state_1, state_2=state_2)
    # An epoch that blows up (an exp output or a chain of identity layers with
    # sgd's learning rate of 0.05 can) amplifies the rounding differences of
    # its first updates until they are as large as the values; such a
    # trajectory says nothing about the kernel's arithmetic.
    assume(np.all(np.isfinite(expected["params"])) and np.isfinite(expected["total"])
           and np.max(np.abs(expected["params"])) < 10)

    params = p.params.copy()
    optimizer = kernel.Optimizer(code, params, learning_rate=lr, momentum=MOMENTUM,
                                 nesterov=nesterov, beta_1=BETA_1, beta_2=BETA_2,
                                 epsilon=EPSILON, t=t)
    if code == "sgd":
        optimizer.state["velocities"] = s1 = state_1.copy()
    else:
        optimizer.state["ms"], optimizer.state["vs"] = s1, s2 = state_1.copy(), state_2.copy()
    net = p.network()
    grads = np.full_like(params, np.nan)
    work = np.full(net.workspace_size(kernel.EPOCH_PART), np.nan, dtype=p.dtype)
    with gemm_path(path):
        total = kernel.train_epoch(net, optimizer, p.data(), order, batch_size, params,
                                   grads, work)
    t_after = optimizer.t

    noise = rounding_noise(expected, p, order, batch_size, code, lr, nesterov, t,
                           state_1, state_2)

    def check(got, name, what):
        want = expected[name]
        tol = tolerance(EPOCH_TOL, p.dtype, want)
        tol["atol"] += NOISE_FACTOR * noise[name]
        assert_allclose(got, want, err_msg=what, **tol)

    assert t_after == expected["t"], "update count t"
    check(total, "total", "sum of batch loss * rows")
    check(params, "params", "params after the epoch")
    check(s1, "state_1", "first moments" if code == "adam" else "velocities")
    if code == "adam":
        check(s2, "state_2", "second moments")
    # (grads is the kernel's scratch after an epoch: the update forms each
    # batch's gradient from raw sums in its own pass, src/_optimizers.pxd)


def test_gemm_path_puts_the_threshold_back():
    """The path drawn for one example must not leak into the next one."""
    set_threshold = getattr(kernel, "set_small_gemm_work", None)
    if set_threshold is None:
        pytest.skip("this kernel has no set_small_gemm_work")
    before = set_threshold(1024)
    set_threshold(*before)
    for path in ("micro", "blas"):
        with gemm_path(path):
            pass
        with pytest.raises(RuntimeError), gemm_path(path):
            raise RuntimeError
    assert set_threshold(*before) == before
