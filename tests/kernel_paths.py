"""The kernel's paths that depend on a threshold, forced for the tests.

Products of at most a threshold of multiply-adds (m n k) run in the kernel's
micro-kernels (src/_small_gemm.h), larger ones through BLAS; ``gemm_path``
sends every product down one path.
A batch's blocks (block_rows) of less work than another threshold run on one
thread; ``blocks_on_threads`` runs them on the threads asked for whatever
their size (the result is the same either way).
"""

import contextlib
import importlib.util

import pytest

from cbp._dispatch import BUILDS, kernel


def kernel_builds(portable=True):
    """pytest params of the kernel builds that were compiled, as module names
    (``_kernel_avx512``, ...), each skipped where this CPU does not run it;
    without the portable ``_kernel`` when ``portable`` is False. A test
    imports the module itself (importlib), never at collection: a build for
    a wider instruction set need not even load on this CPU."""
    found = []
    for name, module, cpu_runs_it in BUILDS:
        if (module == "_kernel" and not portable) or \
                importlib.util.find_spec(f"cbp.{module}") is None:
            continue
        found.append(pytest.param(module, id=name, marks=pytest.mark.skipif(
            not cpu_runs_it(), reason=f"this CPU does not run the {name} build")))
    return found


@contextlib.contextmanager
def gemm_path(path):
    """Send every matrix product to the micro-kernels ("micro") or to BLAS
    ("blas"), or leave the kernel's threshold as it is ("default"); the
    previous threshold is always put back."""
    if path == "default":
        yield
        return
    previous = kernel.set_small_gemm_work(2 ** 62 if path == "micro" else 0)
    try:
        yield
    finally:
        kernel.set_small_gemm_work(*previous)


@contextlib.contextmanager
def small_gemm_work(build, work):
    """The micro-kernels' thresholds of ``build`` (a kernel module), both set
    to ``work`` (m n k); the previous ones are always put back."""
    previous = build.set_small_gemm_work(work)
    try:
        yield
    finally:
        build.set_small_gemm_work(*previous)


@contextlib.contextmanager
def blocks_on_threads():
    """Run every batch's blocks on the threads asked for, however little work
    each holds; the previous threshold is always put back."""
    previous = kernel.set_min_block_work(0.0)
    try:
        yield
    finally:
        kernel.set_min_block_work(previous)
