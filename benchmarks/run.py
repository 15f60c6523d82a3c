"""Benchmark cbp against scikit-learn and PyTorch on the same networks and data.

    python benchmarks/run.py [--quick] [--only mnist,deep,...] [--threads 1]
                             [--dtype float32] [--solvers sgd,adam] [--out DIR]

For each workload and solver, trains the same network on the same data with
cbp, scikit-learn and a plain PyTorch CPU loop (if torch is importable),
one epoch of each in turn (round-robin), and reports the median seconds per
epoch, the speed relative to scikit-learn, GFLOP/s, the fraction of the GEMM
bound (numpy.matmul on the epoch's own shapes, timed in the same rotation)
and the training score. Then prediction latency and throughput, two fits in
two threads, and peak memory of a fit. Writes JSON, Markdown and a PNG chart
to --out. See benchmarks/README.md.
"""

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import candidates
import extras
import report
from workloads import TEXT, WORKLOADS, make_data

EXTRAS = ["predict", "threads", "memory", "text", "layers", "two-threads"]
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true",
                        help="n/10 and fewer repeats: about 1-2 minutes in all")
    parser.add_argument("--only", type=_names(list(WORKLOADS) + EXTRAS),
                        default=list(WORKLOADS) + EXTRAS,
                        help="comma-separated subset of: "
                             + ", ".join(list(WORKLOADS) + EXTRAS))
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS / OpenMP / torch threads for every candidate")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--solvers", type=_names(["sgd", "adam"]), default=["sgd", "adam"])
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed epochs per candidate after one warm-up "
                             "(default 5, or 3 with --quick; at least 3)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="directory for JSON, Markdown, PNG")
    parser.add_argument("--blas-products", action="store_true",
                        help="also train cbp with every matrix product in BLAS "
                             "(none in its micro-kernels), as a candidate of its own")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    args.dtype = np.dtype(args.dtype).type
    return args


def _names(allowed):
    """argparse type: a comma-separated list of names out of allowed."""

    def parse(text):
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {unknown or 'empty list'}; choose from {', '.join(allowed)}"
            )
        return names

    return parse


def import_torch(threads):
    """torch pinned to `threads` threads, or None with a printed note."""
    try:
        import torch
    except ImportError:
        print("Note: torch is not importable; the PyTorch candidate is skipped.\n")
        return None
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already started
        pass
    return torch


def estimator_classes(regression):
    """{"cbp": class, "sklearn": class} for a classifier or a regressor."""
    import sklearn.neural_network as sk

    import cbp

    kind = "MLPRegressor" if regression else "MLPClassifier"
    return {"cbp": getattr(cbp, kind), "sklearn": getattr(sk, kind)}


def run_workload(workload, solver, args, use_torch):
    """Interleaved epochs of every candidate on one workload and solver."""
    X, y = make_data(workload, dtype=args.dtype)
    entries = {
        name: candidates.SklearnAPICandidate(cls, workload, solver, X, y)
        for name, cls in estimator_classes(workload.regression).items()
    }
    if args.blas_products:
        entries["cbp, BLAS products"] = candidates.BlasProductsCandidate(
            estimator_classes(workload.regression)["cbp"], workload, solver, X, y)
    if use_torch:
        entries["torch"] = candidates.TorchCandidate(workload, solver, X, y, args.dtype)
    entries["GEMM bound"] = candidates.GemmBound(
        workload.units(), workload.n_samples, workload.batch_size, args.dtype
    )
    times = candidates.interleaved_times(
        {name: c.epoch for name, c in entries.items()}, warmup=1, repeats=args.repeats
    )
    scores = {name: c.score() for name, c in entries.items()}
    chance = 0.0 if workload.regression else float(np.bincount(y).max() / len(y))
    return {
        "workload": {**workload.__dict__, "units": workload.units()},
        "solver": solver,
        "dtype": np.dtype(args.dtype).name,
        "threads": args.threads,
        "times": times,
        "scores": scores,
        "chance_score": chance,
        "learned": learned(scores, chance),
    }


def learned(scores, chance):
    """{name: bool}: did the candidate get at least half of the best gain over chance?

    A candidate that is fast but does not train shows up here. If even the
    best gain is tiny, nobody learned.
    """
    real = {name: s for name, s in scores.items() if s is not None}
    best = max(real.values(), default=chance)
    return {
        name: bool(np.isfinite(s) and s - chance >= max(0.5 * (best - chance), 0.02))
        for name, s in real.items()
    }


def run_extras(args, use_torch, tables, payload):
    """The prediction, two-thread, memory and sparse (text) benchmarks that
    --only selects."""
    mnist = WORKLOADS["mnist"].shrunk(10) if args.quick else WORKLOADS["mnist"]
    classifiers = estimator_classes(regression=False)
    if "predict" in args.only:
        result = extras.predict_benchmark(
            mnist, classifiers, args.dtype, use_torch, n_calls=2000, n_batch=10000,
            repeats=5 if args.quick else 9,
        )
        result["large_product_rate"] = payload["large_product_rate"][
            np.dtype(args.dtype).name]
        _emit(tables, report.predict_table(result))
        payload["predict"] = result
    if "threads" in args.only:
        deep = WORKLOADS["deep"].shrunk(10 if args.quick else 2)
        result = extras.two_threads_benchmark(deep, classifiers, args.dtype,
                                              epochs=2 if args.quick else 8,
                                              repeats=3 if args.quick else 5)
        _emit(tables, report.threads_table(result))
        payload["threads"] = result
    if "memory" in args.only:
        result = extras.memory_benchmark(mnist, classifiers, args.dtype,
                                         n_samples=min(mnist.n_samples, 20000), epochs=2)
        _emit(tables, report.memory_table(result))
        payload["memory"] = result
    if "text" in args.only:
        text = TEXT.shrunk(10) if args.quick else TEXT
        result = extras.sparse_benchmark(text, classifiers, args.dtype, args.solvers,
                                         repeats=args.repeats)
        _emit(tables, report.sparse_table(result))
        payload["text"] = result
    if "layers" in args.only:
        deep = WORKLOADS["deep"].shrunk(10) if args.quick else WORKLOADS["deep"]
        result = extras.layers_benchmark(deep, classifiers["cbp"], args.dtype,
                                         args.solvers, args.repeats, use_torch)
        _emit(tables, report.layers_table(result))
        payload["layers"] = result
    if "two-threads" in args.only:
        names = ["mnist", "deep", "wide"]
        workloads = [WORKLOADS[n].shrunk(10) if args.quick else WORKLOADS[n] for n in names]
        result = extras.one_fit_two_threads_benchmark(
            workloads, classifiers, args.dtype, args.solvers[0], args.repeats, use_torch)
        _emit(tables, report.one_fit_two_threads_table(result))
        payload["two_threads"] = result


def _emit(tables, text):
    """Print a table as soon as it is ready, and keep it for the Markdown file."""
    print(text + "\n", flush=True)
    tables.append(text)


def write_outputs(args, payload, tables):
    """JSON with everything, the tables as Markdown, and the chart."""
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, "bench-" + time.strftime("%Y%m%d-%H%M%S")
                        + ("-quick" if args.quick else ""))
    report.write_json(stem + ".json", payload)
    with open(stem + ".md", "w") as f:
        f.write("\n\n".join([payload["machine_summary"], *tables]) + "\n")
    print(f"Wrote {stem}.json and {stem}.md")
    subtitle = (f"{payload['args']['dtype']}, {args.threads} thread(s), OpenBLAS "
                f"{report.blas_architectures(payload['machine'])}, "
                f"{payload['machine']['cpu_model']}" + (", --quick" if args.quick else ""))
    if report.draw_chart(stem + ".png", payload["training"], payload.get("predict"), subtitle):
        print(f"Wrote {stem}.png")
    else:
        print("Note: matplotlib is not importable (pip install matplotlib); no chart drawn.")


def main(argv=None):
    args = parse_args(argv)
    torch = import_torch(args.threads)
    info = report.machine_info()
    summary = report.describe_machine(info)
    print(summary + "\n", flush=True)
    payload = {
        "args": {**vars(args), "dtype": np.dtype(args.dtype).name},
        "machine": info,
        "machine_summary": summary,
        "training": [],
    }
    tables = []
    started = time.perf_counter()
    # the bar of every GFLOP/s figure: one large product on one thread
    with threadpool_limits(limits=1):
        payload["large_product_rate"] = {
            name: candidates.large_product_rate(np.dtype(name).type)
            for name in ("float32", "float64")}
    rates = ", ".join(f"{name} {rate:.0f} GFLOP/s"
                      for name, rate in payload["large_product_rate"].items())
    _emit(tables, f"Large-product rate (a 2048^3 numpy.matmul, 1 thread): {rates}")
    with threadpool_limits(limits=args.threads):
        for name in [n for n in WORKLOADS if n in args.only]:
            workload = WORKLOADS[name].shrunk(10) if args.quick else WORKLOADS[name]
            for solver in args.solvers:
                result = run_workload(workload, solver, args, use_torch=torch is not None)
                result["large_product_rate"] = payload["large_product_rate"][
                    np.dtype(args.dtype).name]
                _emit(tables, report.training_table(result))
                payload["training"].append(result)
        run_extras(args, torch is not None, tables, payload)
    payload["total_seconds"] = time.perf_counter() - started
    print(f"Total: {payload['total_seconds']:.0f} s")
    write_outputs(args, payload, tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
