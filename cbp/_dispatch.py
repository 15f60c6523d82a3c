"""Which build of the compiled kernel to use.

The kernel is compiled three times from src/_kernel.pyx: ``_kernel`` for any
x86-64 CPU, ``_kernel_avx2`` (built with -mavx2 -mfma) for CPUs with AVX2 and
FMA, where cbp's own loops run twice as wide, and ``_kernel_avx512``
(-mavx512f as well) for CPUs with AVX-512F, where the small products'
micro-kernels (src/_small_gemm.h) run on 64-byte vectors. ``kernel`` is the
widest one this CPU runs. Set the environment variable ``CBP_KERNEL`` to
``avx2`` or ``baseline`` (before importing cbp) to use at most that build.
They agree to rounding (FMA rounds once where a multiply and an add round
twice; wider vectors sum in another order).
"""

import importlib
import os

try:
    from . import _kernel as _baseline
except ImportError as exc:  # the source folder, or a package never built
    _here = os.path.dirname(os.path.abspath(__file__))
    raise ImportError(
        f"cbp's compiled kernel cannot be imported from {_here} ({exc}). If that is "
        "the source folder of a cbp checkout (Python looks in the current "
        "directory first), install the package and run it from anywhere with "
        "`pip install .` and then `cbp-demo` or `pytest`, or run Python from "
        "another directory."
    ) from exc


# The builds, widest first: (name for CBP_KERNEL, module, whether this CPU
# runs it). Each is optional: a compiler or platform without it skips it.
BUILDS = (
    ("avx512", "_kernel_avx512", _baseline.cpu_has_avx512f),
    ("avx2", "_kernel_avx2", _baseline.cpu_has_avx2_fma),
    ("baseline", "_kernel", lambda: True),
)


def _select(request=None):
    """The widest build this CPU runs, or at most the one CBP_KERNEL names."""
    if request is None:
        request = os.environ.get("CBP_KERNEL", "").lower()
    names = [name for name, _, _ in BUILDS]
    if request and request not in names:
        raise ImportError(
            f"CBP_KERNEL={request!r} names no kernel build; use one of {', '.join(names)}"
        )
    start = names.index(request) if request else 0
    for _, module, cpu_runs_it in BUILDS[start:]:
        if not cpu_runs_it():
            continue
        try:
            return importlib.import_module(f".{module}", __package__)
        except ImportError:  # built on a compiler or platform without it
            continue
    return _baseline


# Products of at most this many multiply-adds go to the kernel's micro-kernels
# (src/_small_gemm.h), larger ones to BLAS (the kernel's matmul): (A @ B and
# A.T @ B, A @ B.T). It depends on the BLAS. OpenBLAS's SkylakeX family of
# kernels has small-matrix kernels of its own that pack nothing; the others
# (Haswell, Zen, ...) pack both operands on every call. Measured with
# benchmarks/products.py (Intel Xeon, float32, one thread; GFLOP/s,
# micro-kernels against BLAS):
#   SkylakeX kernels, AVX-512 build: A @ B and A.T @ B even (32 x 64 x 64:
#   164 against 175; 1024 x 64 x 64: 174 against 126; 256 x 256 x 256: 132
#   against 149), so BLAS keeps them above 4096 (below it a call costs more
#   than the product); A @ B.T ahead up to 2**24 (32 x 64 x 64: 146 against
#   89; 1024 x 128 x 128: 183 against 149), behind at 256 x 1024 x 1024.
#   Haswell kernels (what AVX2-only CPUs run; OPENBLAS_CORETYPE for the
#   measurement only), AVX2 build: A @ B and A.T @ B ahead from 32 x 64 x 64
#   (113 against 66) to 2**20 and mostly beyond, A @ B.T up to 2**24 (32 x
#   64 x 64: 85 against 65; 1024 x 128 x 128: 118 against 106).
BLAS_WITH_SMALL_MATRIX_KERNELS = frozenset({"SkylakeX", "Cooperlake", "SapphireRapids"})
SMALL_GEMM_WORK = {"small-matrix BLAS": (4096, 1 << 24), "other BLAS": (1 << 20, 1 << 24)}


def blas_architecture():
    """The OpenBLAS core type of SciPy's BLAS, which the kernel calls (from
    threadpoolctl), or None for another BLAS."""
    from threadpoolctl import threadpool_info

    found = [lib.get("architecture") for lib in threadpool_info()
             if lib.get("internal_api") == "openblas"
             and "scipy_openblas" in lib.get("filepath", "")
             and "openblas64_" not in lib.get("filepath", "")]
    return found[0] if found else None


def small_gemm_work(architecture):
    """The micro-kernels' thresholds (m n k) for BLAS ``architecture``: (A @ B
    and A.T @ B, A @ B.T)."""
    if architecture in BLAS_WITH_SMALL_MATRIX_KERNELS:
        return SMALL_GEMM_WORK["small-matrix BLAS"]
    return SMALL_GEMM_WORK["other BLAS"]


kernel = _select()
kernel.set_small_gemm_work(*small_gemm_work(blas_architecture()))
