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
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-4), (np.float64, 1e-11)])
@pytest.mark.parametrize("solver", [0, 1])
@pytest.mark.parametrize("activation, output, loss", [(1, 4, 1), (2, 1, 2), (3, 0, 0), (0, 5, 3)])
def test_both_builds_train_the_same_epoch(dtype, rtol, solver, activation, output, loss):
    avx2 = _avx2()
    rng = np.random.RandomState(0)
    n, units = 50, np.array([7, 40, 30, 3], dtype=np.intp)
    X = rng.normal(size=(n, 7)).astype(dtype)
    Y = rng.uniform(size=(n, 3)).astype(dtype)
    if loss == 1:
        Y = np.eye(3, dtype=dtype)[rng.randint(0, 3, n)]
    order = rng.permutation(n).astype(np.intp)
    results = []
    for kernel in (baseline, avx2):
        params = np.random.RandomState(1).normal(
            scale=0.3, size=kernel.n_params(units)).astype(dtype)
        state = [np.zeros_like(params), np.zeros_like(params)]
        grads = np.empty_like(params)
        work = np.empty(kernel.workspace_size(units, 8, kernel.EPOCH), dtype=dtype)
        total, t = kernel.train_epoch(
            X, Y, np.empty(0, dtype), order, 8, units, activation, output, loss, 1e-3,
            params, grads, work, solver, 0.01, 0.9, True, 0.9, 0.999, 1e-8, 0, *state)
        results.append((total, params))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=rtol)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=rtol, atol=rtol * 1e-2)
