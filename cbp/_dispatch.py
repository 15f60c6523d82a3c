"""Which build of the compiled kernel to use.

The kernel is compiled twice from src/_kernel.pyx: ``_kernel`` for any x86-64
CPU and ``_kernel_avx2`` (built with -mavx2 -mfma) for CPUs with AVX2 and
FMA, where cbp's own loops run twice as wide. ``kernel`` is the fastest one this CPU runs. Set
the environment variable ``CBP_KERNEL=baseline`` (before importing cbp) to
force the portable build. The two agree to rounding (FMA rounds once where
a multiply and an add round twice).
"""

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


def _select():
    if os.environ.get("CBP_KERNEL", "").lower() != "baseline" and _baseline.cpu_has_avx2_fma():
        try:
            from . import _kernel_avx2
        except ImportError:  # built on a compiler or platform without it
            pass
        else:
            return _kernel_avx2
    return _baseline


kernel = _select()
