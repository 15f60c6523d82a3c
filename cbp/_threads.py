"""Threads for one fit: how many run a batch's blocks, and BLAS kept to one
thread inside them (``block_rows``; src/_kernel.pyx, "A batch in fixed
blocks of rows").

The count follows scikit-learn's convention for its own OpenMP loops (its
``_openmp_effective_n_threads``, among its utilities' OpenMP helpers): the OpenMP
runtime's ``omp_get_max_threads()`` -- ``OMP_NUM_THREADS``, or a
``threadpoolctl.threadpool_limits(n, user_api="openmp")`` around the fit --
and never more than the CPUs this process may use. BLAS runs on one thread
inside the blocks (as scikit-learn's k-means does around its prange): its
own threads would compete with the blocks', and its results can depend on
its thread count, where the blocks' must not.
"""

import contextlib
import functools

from joblib import cpu_count
from threadpoolctl import ThreadpoolController

from ._dispatch import kernel as _kernel


def openmp_threads():
    """The threads a fit's blocks run on (>= 1)."""
    return max(1, min(_kernel.openmp_max_threads(), cpu_count()))


@functools.cache
def _controller():
    # (looking up the loaded libraries costs milliseconds: once per process)
    return ThreadpoolController()


def blas_limit(n_threads):
    """A context in which BLAS runs on at most n_threads threads; None: a
    context that changes nothing."""
    if n_threads is None:
        return contextlib.nullcontext()
    return _controller().limit(limits=n_threads, user_api="blas")
