"""The two ways the kernel computes a matrix product, for the tests.

Products of at most a threshold of multiply-adds (m n k) run as direct loops,
larger ones through BLAS; ``gemm_path`` sends every product down one path.
"""

import contextlib

from cbp._dispatch import kernel


@contextlib.contextmanager
def gemm_path(path):
    """Send every matrix product to the direct loops ("loops") or to BLAS
    ("blas"), or leave the kernel's threshold as it is ("default"); the
    previous threshold is always put back."""
    if path == "default":
        yield
        return
    previous = kernel.set_small_gemm_work(2 ** 62 if path == "loops" else 0)
    try:
        yield
    finally:
        kernel.set_small_gemm_work(previous)
