"""Machine information, Markdown tables, JSON and the chart."""

import json
import os
import platform
import statistics
import sys

import numpy as np
from threadpoolctl import threadpool_info

from workloads import training_flops

MIB = 2**20


# ---------------------------------------------------------------- machine


def machine_info():
    """CPU, BLAS and library versions: what the figures depend on."""
    import sklearn

    import cbp

    info = {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"]),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "cbp": getattr(cbp, "__version__", "?"),
        "cbp_path": os.path.dirname(cbp.__file__),
        "cbp_kernel": _cbp_kernel(),
        "torch": None,
        "threadpoolctl": threadpool_info(),
        "env": {
            key: os.environ.get(key)
            for key in ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                        "OMP_NUM_THREADS", "MKL_NUM_THREADS"]
        },
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_parallel_info"] = torch.__config__.parallel_info()
    except ImportError:
        pass
    return info


def _cbp_kernel():
    """The kernel build cbp runs here and its vectors' width, e.g.
    "_kernel_avx512 (64-byte vectors)"."""
    from cbp._dispatch import kernel

    return f"{kernel.__name__.rsplit('.', 1)[-1]} ({kernel.vector_bytes()}-byte vectors)"


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags(wanted):
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [flag for flag in wanted if flag in flags]
    except OSError:
        pass
    return []


def blas_architectures(info):
    """The OpenBLAS architectures threadpoolctl reports, e.g. "Haswell"."""
    return "/".join(sorted({lib.get("architecture") or "?" for lib in info["threadpoolctl"]
                            if lib.get("internal_api") == "openblas"})) or "no OpenBLAS"


def describe_machine(info):
    """A few lines about the machine and, above all, the BLAS in use, as a
    Markdown list (the results' Markdown is included in the documentation's
    Benchmarks page, where lines without a blank between them would run
    together)."""
    lines = [
        f"CPU: {info['cpu_model']} ({info['cpu_count']} logical CPUs; "
        f"{', '.join(info['cpu_flags']) or 'no AVX2/AVX-512 flags found'})",
        f"numpy {info['numpy']}, scikit-learn {info['sklearn']}, cbp {info['cbp']} "
        f"({info['cbp_path']}; kernel build {info.get('cbp_kernel', '?')}), "
        f"torch {info['torch'] or 'not installed'}",
    ]
    for lib in info["threadpoolctl"]:
        if lib.get("user_api") == "blas":
            lines.append(
                f"BLAS: {lib['internal_api']} {lib.get('version')} "
                f"architecture={lib.get('architecture')} "
                f"({os.path.basename(lib['filepath'])})"
            )
    env = ", ".join(f"{k}={v}" for k, v in info["env"].items() if v is not None)
    lines.append(f"Environment: {env or '(no BLAS/OpenMP variables set)'}")
    archs = blas_architectures(info)
    if "avx512f" in info["cpu_flags"] and set(archs.split("/")) & {"Haswell", "Zen",
                                                                   "Sandybridge"}:
        lines.append(
            f"Note: this CPU has AVX-512 but OpenBLAS runs its {archs} kernels; "
            "OPENBLAS_CORETYPE=SkylakeX (and OPENBLAS_L2_SIZE unset) may be ~2x faster "
            "for GEMMs (see benchmarks/README.md)."
        )
    return "\n".join(f"- {line}" for line in lines)


# ---------------------------------------------------------------- tables


def median(values):
    return statistics.median(values)


def paired_ratio(reference, candidate):
    """Median over rounds of reference time / candidate time in the same round.

    Candidates ran interleaved, so a slow phase of the machine hits both
    times of a round; pairing them cancels it better than a ratio of medians.
    """
    return median([r / c for r, c in zip(reference, candidate)])


def _seconds(values):
    """'median (min-max)' of a list of seconds, in a readable unit."""
    return f"{_fmt_s(median(values))} ({_fmt_s(min(values))}–{_fmt_s(max(values))})"


def _fmt_s(seconds):
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 0.1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _table(header, rows):
    """A Markdown table; the first column left-aligned, the others right."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def training_table(result):
    """Markdown table of one workload and solver."""
    w = result["workload"]
    timed = {name: t["timed"] for name, t in result["times"].items()}
    flops = training_flops(w["units"], w["n_samples"])
    rate = result.get("large_product_rate")
    rows = []
    for name, t in timed.items():
        rows.append([
            name,
            _seconds(t),
            f"{paired_ratio(timed['sklearn'], t):.2f}x",
            f"{flops / median(t) / 1e9:.1f}",
            f"{100 * flops / median(t) / 1e9 / rate:.0f} %" if rate else "—",
            f"{100 * paired_ratio(timed['GEMM bound'], t):.0f} %",
            _score_cell(result["scores"].get(name), result["learned"].get(name)),
        ])
    title = (
        f"### {w['name']} — {result['solver']}: n={w['n_samples']}, "
        f"{'-'.join(map(str, w['units']))} {w['activation']}, batch {w['batch_size']}, "
        f"{result['dtype']}, {result['threads']} thread(s); "
        f"{flops / 1e9:.2f} GFLOP per epoch"
    )
    header = ["candidate", "s/epoch median (min–max)", "vs sklearn", "GFLOP/s",
              "of the large-product rate", "of GEMM bound",
              "train R²" if w["regression"] else "train accuracy"]
    return title + "\n\n" + _table(header, rows)


def _score_cell(score, learned):
    if score is None:
        return "—"
    text = f"{score:.3f}"
    return text if learned else f"{text} ✗ DID NOT LEARN"


def predict_table(result):
    """Markdown table of single-sample latency and batch throughput."""
    lat = {name: median(t) for name, t in result["latency"].items()}
    thr = {name: t["timed"] for name, t in result["throughput"].items()}
    n, flops = result["n_batch"], result["forward_flops"]
    rate = result.get("large_product_rate")
    rows = []
    for name in result["latency"]:
        rows.append([
            name,
            _fmt_s(lat[name]),
            f"{lat['sklearn'] / lat[name]:.2f}x",
            _seconds(thr[name]),
            f"{n / median(thr[name]):,.0f}",
            f"{paired_ratio(thr['sklearn'], thr[name]):.2f}x",
            f"{flops / median(thr[name]) / 1e9:.1f}",
            f"{100 * flops / median(thr[name]) / 1e9 / rate:.0f} %" if rate else "—",
            f"{100 * paired_ratio(thr['GEMM bound'], thr[name]):.0f} %",
            _fmt_optional(result["test_accuracy"].get(name)),
            _fmt_optional(result["agree_with_sklearn"].get(name)),
        ])
    header = ["candidate", "1 sample", "vs sklearn", f"{n} samples", "samples/s",
              "vs sklearn", "GFLOP/s", "of the large-product rate", "of GEMM bound",
              "test accuracy",
              "same labels as sklearn"]
    title = (f"### predict — {result['workload']} model: latency of one sample "
             f"(median of {len(result['latency']['sklearn'])} calls), "
             f"throughput on {n} held-out samples")
    return title + "\n\n" + _table(header, rows)


def _fmt_optional(value):
    return "—" if value is None else f"{value:.3f}"


def threads_table(result):
    """Markdown table of two fits one after the other vs in two threads."""
    rows = []
    for name, times in result["times"].items():
        sequential, parallel = times["sequential"]["timed"], times["two threads"]["timed"]
        rows.append([name, _seconds(sequential), _seconds(parallel),
                     f"{paired_ratio(sequential, parallel):.2f}x"])
    title = (f"### two models fitted in two threads — {result['workload']}, "
             f"n={result['n_samples']}, {result['epochs']} epochs each, sgd, "
             "BLAS pinned to 1 thread (ideal throughput ratio: 2x on >= 2 cores)")
    header = ["job", "one after the other", "in two threads", "throughput ratio"]
    return title + "\n\n" + _table(header, rows)


def memory_table(result):
    """Markdown table of peak traced memory during fit."""
    peaks = result["peak_bytes"]
    rows = [
        [name, f"{peak / MIB:.1f}", f"{peaks['sklearn'] / peak:.2f}x"]
        for name, peak in peaks.items()
    ]
    title = (f"### peak memory of fit beyond X and y — {result['workload']}, "
             f"n={result['n_samples']}, {result['epochs']} epochs, sgd "
             f"(X+y: {result['data_bytes'] / MIB:.1f} MiB, "
             f"weights: {result['weights_bytes'] / MIB:.2f} MiB)")
    header = ["estimator", "tracemalloc peak (MiB)", "sklearn / candidate"]
    return title + "\n\n" + _table(header, rows)


def sparse_table(result):
    """Markdown table of the sparse (text) workload: epochs and peak memory."""
    w = result["workload"]
    rows = []
    for r in result["results"]:
        times = {name: t["timed"] for name, t in r["times"].items()}
        peaks = r["peak_bytes"]
        for name in times:
            rows.append([
                f"{name} {r['solver']}",
                _seconds(times[name]),
                "1.00x" if name == "sklearn" else
                f"{paired_ratio(times['sklearn'], times[name]):.2f}x",
                f"{peaks[name] / MIB:.1f}",
                f"{peaks[name] / r['weights_bytes']:.1f}x",
                f"{r['scores'][name]:.3f}",
            ])
    title = (f"### sparse input — {w['name']}: {w['n_samples']} x {w['n_features']} CSR, "
             f"{result['nnz'] / w['n_samples']:.0f} non-zeros a row, layers "
             f"{w['hidden']}, batch {w['batch_size']}, {result['dtype']} "
             f"(X+y: {result['data_bytes'] / MIB:.1f} MiB; weights "
             f"{result['results'][0]['weights_bytes'] / MIB:.1f} MiB)")
    header = ["candidate", "s/epoch median (min–max)", "vs sklearn",
              "peak MiB beyond X (1-epoch fit)", "peak / weights", "training accuracy"]
    return title + "\n\n" + _table(header, rows)


# ---------------------------------------------------------------- files


def layers_table(result):
    """Markdown table of batch normalisation and dropout: overhead over the
    framework's own plain network, and cbp against PyTorch."""
    rows = []
    for r in result["results"]:
        times = {name: t["timed"] for name, t in r["times"].items()}
        for name, values in times.items():
            framework, option = name.split(" ", 1)
            plain = times[f"{framework} plain"]
            torch_same = times.get(f"torch {option}")
            rows.append([
                f"{name}, {r['solver']}", _seconds(values),
                "" if option == "plain" else f"{paired_ratio(values, plain) - 1:+.0%}",
                f"{paired_ratio(torch_same, values):.2f}x"
                if framework == "cbp" and torch_same is not None else "",
                f"{r['scores'][name]:.3f}",
            ])
    title = (f"### batch normalisation and dropout — {result['workload']}, "
             f"n={result['n_samples']}, one epoch")
    header = ["network", "s / epoch", "overhead over plain", "speed vs torch", "train acc."]
    return title + "\n\n" + _table(header, rows)


def one_fit_two_threads_table(result):
    """Markdown table of one fit on one thread and on two."""
    rows = []
    for r in result["results"]:
        times = {name: t["timed"] for name, t in r["times"].items()}
        for name in [n for n in times if n.endswith("1 thread(s)")]:
            who = name.split(",")[0]
            one, two = times[name], times[f"{who}, 2 thread(s)"]
            # cbp's blocks against plain cbp on one thread (the default)
            base = times["cbp, 1 thread(s)"] if who == "cbp blocks" else one
            rows.append([f"{r['workload']}: {who}", _seconds(one), _seconds(two),
                         f"{paired_ratio(one, two):.2f}x",
                         f"{paired_ratio(base, two):.2f}x" if who == "cbp blocks" else ""])
    title = (f"### one fit on one thread and on two — {result['solver']}, BLAS, "
             "OpenMP and torch threads limited alike (ideal: 2x on >= 2 cores); "
             "cbp blocks: block_rows = batch_size / 2")
    header = ["fit", "1 thread", "2 threads", "speed-up", "vs plain cbp, 1 thread"]
    return title + "\n\n" + _table(header, rows)


def write_json(path, payload):
    with open(path, "w") as f:
        json.dump(payload, f, indent=1, default=_json_default)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def draw_chart(path, training, predict, subtitle=""):
    """Grouped bar chart of speed relative to scikit-learn (log scale).

    Returns False (and draws nothing) if matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return False

    groups = {}
    for result in training:
        times = {n: t["timed"] for n, t in result["times"].items()}
        label = f"{result['workload']['name']}\n{result['solver']}"
        groups[label] = {n: paired_ratio(times["sklearn"], t)
                         for n, t in times.items() if n != "sklearn"}
    if predict:
        lat = {n: median(t) for n, t in predict["latency"].items()}
        thr = {n: t["timed"] for n, t in predict["throughput"].items()}
        groups["predict\n1 sample"] = {n: lat["sklearn"] / t for n, t in lat.items()
                                       if n != "sklearn"}
        groups[f"predict\n{predict['n_batch']}"] = {
            n: paired_ratio(thr["sklearn"], t) for n, t in thr.items() if n != "sklearn"
        }
    if not groups:
        return False
    candidates = list(dict.fromkeys(c for g in groups.values() for c in g))
    # every candidate its own colour: one left to matplotlib's cycle would
    # start it again at cbp's blue
    colours = {"cbp": "tab:blue", "torch": "tab:orange", "GEMM bound": "tab:gray"}
    spare = iter(["tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"])
    for name in candidates:
        colours.setdefault(name, next(spare, None))

    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(groups)), 4.5))
    width = 0.8 / len(candidates)
    x = np.arange(len(groups))
    for i, name in enumerate(candidates):
        values = [g.get(name, np.nan) for g in groups.values()]
        bars = ax.bar(x + (i - (len(candidates) - 1) / 2) * width, values, width,
                      label=name, color=colours.get(name))
        ax.bar_label(bars, labels=[_bar_label(v) for v in values],
                     fontsize=7, padding=1)
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ratios = [v for g in groups.values() for v in g.values() if v > 0]
    ax.set_ylim(min(0.5, min(ratios) / 1.5), max(2.0, max(ratios) * 1.5))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(x, list(groups), fontsize=8)
    ax.set_ylabel("speed relative to scikit-learn (x, log)")
    ax.set_title("sklearn time / candidate time (> 1: faster than scikit-learn)"
                 + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _bar_label(value):
    if value != value:  # NaN: candidate missing in this group
        return ""
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"
