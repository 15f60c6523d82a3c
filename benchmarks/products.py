"""The micro-kernels against BLAS on one product at a time: the switch point.

    python benchmarks/products.py [--dtype float32] [--build avx512]

For the three products of a layer -- forward A @ W ('NN', m = batch rows),
weight gradient A.T @ delta ('TN', k = batch rows), delta propagation
delta @ W.T ('NT') -- and a range of shapes, times the kernel's micro-kernels
(src/_small_gemm.h) and BLAS's GEMM on the same operands through the same
entry point (kernel.product, repeated inside one call, so that neither pays
Python's cost per product), one thread, interleaved, best of 5. Prints
GFLOP/s of each and which is ahead; cbp sends products of at most
_small_gemm_work multiply-adds (src/_kernel.pyx) to the micro-kernels, a
constant chosen from this table. Also prints the machine's large-product
rate (a 2048^3 product in NumPy), the bar every figure is a fraction of.
"""

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

import report
from candidates import best_seconds, large_product_rate

# (m, n, k) of the forward product; the weight gradient is (n_in, n_out,
# rows) = (k, n, m) and delta propagation (rows, n_in, n_out) = (m, k, n)
LAYERS = [
    (32, 64, 64), (64, 64, 32), (64, 32, 64), (32, 10, 64), (200, 100, 784),
    (200, 10, 100), (32, 128, 128), (64, 128, 128), (128, 128, 128),
    (256, 128, 128), (32, 256, 256), (64, 256, 256), (128, 256, 256),
    (256, 256, 256), (1024, 64, 64), (1024, 128, 128), (256, 1024, 1024),
]


def shapes(trans, m, n, k):
    """(m, n, k) of the product ``trans`` of a layer whose forward is (m, n, k)."""
    return {"NN": (m, n, k), "TN": (k, n, m), "NT": (m, k, n)}[trans]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--build", default="", help="at most this kernel build "
                        "(cbp/_dispatch.py: avx512, avx2, baseline); default the widest")
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype).type
    from cbp import _dispatch

    kernel = _dispatch._select(args.build)
    info = report.machine_info()
    print(report.describe_machine(info))
    print(f"kernel build: {kernel.__name__} ({kernel.vector_bytes()}-byte vectors)")
    with threadpool_limits(limits=1):
        rate = large_product_rate(dtype)
        print(f"large-product rate ({args.dtype}, 1 thread): {rate:.0f} GFLOP/s\n")
        rows = []
        rng = np.random.default_rng(0)
        for trans in ("NN", "TN", "NT"):
            for layer in LAYERS:
                m, n, k = shapes(trans, *layer)
                A = rng.normal(size=(k, m) if trans[0] == "T" else (m, k)).astype(dtype)
                B = rng.normal(size=(n, k) if trans[1] == "T" else (k, n)).astype(dtype)
                C = np.zeros((m, n), dtype)
                flops = 2 * m * n * k
                repeat = max(3, int(2e8 / flops))
                rates = {}
                for path in ("micro", "blas", "micro", "blas"):   # interleaved
                    seconds = best_seconds(lambda: kernel.product(trans, A, B, C, 0.0,
                                                                  repeat, path))
                    rates[path] = max(rates.get(path, 0.0), flops * repeat / seconds / 1e9)
                rows.append([trans, f"{m} x {n} x {k}", f"{m * n * k:,}",
                             f"{rates['micro']:.1f}", f"{rates['blas']:.1f}",
                             f"{100 * rates['micro'] / rate:.0f} %",
                             "micro" if rates["micro"] > rates["blas"] else "BLAS"])
    print(report._table(["product", "m x n x k", "m n k", "micro GFLOP/s",
                         "BLAS GFLOP/s", "micro, of the large-product rate", "ahead"],
                        rows))


if __name__ == "__main__":
    main()
