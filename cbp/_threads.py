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
import os

from joblib import cpu_count
from threadpoolctl import ThreadpoolController

from ._dispatch import kernel as _kernel


# GNU OpenMP (libgomp) cannot run a parallel region on more than one thread in
# a process forked from one that ran such a region: the child waits forever
# for threads it did not inherit (scikit-learn's OpenMP loops share the
# limitation; joblib's default loky backend does not fork). The blocks give
# the same result on any number of threads, so in such a child they run on one.
_threads_started = False
_forked_after_threads = False


def _after_fork_in_child():
    global _forked_after_threads
    _forked_after_threads = _forked_after_threads or _threads_started


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def openmp_threads():
    """The threads a fit's blocks run on (>= 1)."""
    global _threads_started
    if _forked_after_threads:
        return 1
    n_threads = max(1, min(_kernel.openmp_max_threads(), cpu_count()))
    _threads_started = _threads_started or n_threads > 1
    return n_threads


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
