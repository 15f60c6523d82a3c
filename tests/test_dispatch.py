"""The kernel builds: the portable one and the AVX2/FMA one agree.

cbp/_dispatch.py picks ``_kernel_avx2`` on CPUs with AVX2 and FMA, else
``_kernel``. The rest of the suite tests whichever was picked (``.ci/run``
runs the kernel tests a second time with ``CBP_KERNEL=baseline``); these
tests compare the two builds directly.
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

HAS_AVX2 = baseline.cpu_has_avx2_fma()


def _avx2():
    try:
        return importlib.import_module("cbp._kernel_avx2")
    except ImportError:
        pytest.skip("this platform has no AVX2 build of the kernel")


def test_dispatch_picks_the_avx2_build_where_the_cpu_runs_it():
    expected = "cbp._kernel_avx2" if HAS_AVX2 and _has_module("cbp._kernel_avx2") else "cbp._kernel"
    if os.environ.get("CBP_KERNEL", "").lower() == "baseline":
        expected = "cbp._kernel"
    assert _dispatch.kernel.__name__ == expected


def _has_module(name):
    return importlib.util.find_spec(name) is not None


def test_cbp_kernel_baseline_forces_the_portable_build():
    code = "from cbp._dispatch import kernel; print(kernel.__name__)"
    env = dict(os.environ, CBP_KERNEL="baseline")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, cwd=os.path.dirname(os.path.abspath(__file__)), check=True)
    assert out.stdout.strip() == "cbp._kernel"


@pytest.mark.skipif(not HAS_AVX2, reason="this CPU does not run AVX2/FMA code")
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
def test_both_builds_train_the_same_epoch(dtype, rtol, solver, activation, loss, input,
                                          chunk_rows):
    avx2 = _avx2()
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
    for kernel in (baseline, avx2):
        net = kernel.Network(units, activation, loss, 1e-3, input == "csr", chunk_rows)
        params = np.random.RandomState(1).normal(scale=0.3, size=net.n_params).astype(dtype)
        opt = kernel.Optimizer(solver, params, learning_rate=0.01, momentum=0.9,
                               nesterov=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
        grads = np.empty_like(params)
        work = np.empty(net.workspace_size(kernel.EPOCH_PART), dtype=dtype)
        total = kernel.train_epoch(net, opt, kernel.Data(X, Y), order, 8, params, grads,
                                   work)
        results.append((total, params))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=rtol)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=rtol, atol=rtol * 1e-2)
