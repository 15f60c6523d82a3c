"""The kernel builds: the portable one, the AVX2/FMA one and the AVX-512 one
agree.

cbp/_dispatch.py picks the widest build the CPU runs (``_kernel_avx512``,
``_kernel_avx2``, ``_kernel``), or at most the one ``CBP_KERNEL`` names. The
rest of the suite tests whichever was picked (``.ci/run`` runs the kernel
tests again with ``CBP_KERNEL=baseline`` and ``avx2``); these tests compare
the builds directly.
"""

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse

import cbp._kernel as baseline
from cbp import _dispatch
from kernel_paths import kernel_builds

TESTS = os.path.dirname(os.path.abspath(__file__))


def _has_module(name):
    return importlib.util.find_spec(name) is not None


def _widest(request=""):
    """The build _dispatch should pick: the first, from the one named, that
    this CPU runs and that was built."""
    names = [name for name, _, _ in _dispatch.BUILDS]
    start = names.index(request) if request else 0
    for _, module, cpu_runs_it in _dispatch.BUILDS[start:]:
        if cpu_runs_it() and _has_module(f"cbp.{module}"):
            return f"cbp.{module}"
    return "cbp._kernel"


def _picked(request):
    code = "from cbp._dispatch import kernel; print(kernel.__name__)"
    env = dict(os.environ, CBP_KERNEL=request)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, cwd=TESTS)


def test_dispatch_picks_the_widest_build_the_cpu_runs():
    assert _dispatch.kernel.__name__ == _widest(os.environ.get("CBP_KERNEL", "").lower())


@pytest.mark.parametrize("request_", ["baseline", "avx2", "avx512"])
def test_cbp_kernel_picks_at_most_the_build_it_names(request_):
    out = _picked(request_)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == _widest(request_)


def test_cbp_kernel_baseline_forces_the_portable_build():
    assert _picked("baseline").stdout.strip() == "cbp._kernel"


def test_cbp_kernel_names_an_unknown_build():
    out = _picked("sse9")
    assert out.returncode != 0
    assert "CBP_KERNEL='sse9' names no kernel build" in out.stderr


@pytest.mark.parametrize("wider", kernel_builds(portable=False))
@pytest.mark.parametrize("input, chunk_rows", [
    pytest.param("dense", 8, id="dense-batch-at-once"),
    pytest.param("dense", 3, id="dense-in-chunks-of-3"),
    pytest.param("csr", 3, id="csr-in-chunks-of-3"),
])
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-4), (np.float64, 1e-11)])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("activation, loss", [("logistic", "log_loss"),
                                              ("tanh", "binary_log_loss"),
                                              ("relu", "squared_error"),
                                              ("identity", "poisson")])
def test_both_builds_train_the_same_epoch(wider, dtype, rtol, solver, activation, loss,
                                          input, chunk_rows):
    wider = importlib.import_module(f"cbp.{wider}")
    rng = np.random.RandomState(0)
    n, units = 50, np.array([7, 40, 30, 3], dtype=np.intp)
    X = rng.normal(size=(n, 7)).astype(dtype)
    Y = rng.uniform(size=(n, 3)).astype(dtype)
    if loss == "log_loss":
        Y = np.eye(3, dtype=dtype)[rng.randint(0, 3, n)]
    if input == "csr":
        X[rng.uniform(size=X.shape) < 0.6] = 0
        X = scipy.sparse.csr_matrix(X)
    order = rng.permutation(n).astype(np.intp)
    results = []
    for kernel in (baseline, wider):
        # the same products down the same path in both builds (cbp/_dispatch.py
        # sets the threshold of the build it picks for its BLAS; the other
        # keeps its default): the builds differ in vector width, not in path
        previous = kernel.set_small_gemm_work(1 << 20)
        try:
            net = kernel.Network(units, activation, loss, 1e-3, input == "csr", chunk_rows)
            params = np.random.RandomState(1).normal(scale=0.3,
                                                     size=net.n_params).astype(dtype)
            opt = kernel.Optimizer(solver, params, learning_rate=0.01, momentum=0.9,
                                   nesterov=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
            grads = np.empty_like(params)
            work = np.empty(net.workspace_size(kernel.EPOCH_PART), dtype=dtype)
            total = kernel.train_epoch(net, opt, kernel.Data(X, Y), order, 8, params,
                                       grads, work)
        finally:
            kernel.set_small_gemm_work(*previous)
        results.append((total, params))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=rtol)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=rtol, atol=rtol * 1e-2)
