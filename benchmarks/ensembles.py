"""TabM-style ensembles: cbp against PyTorch + the ``tabm`` package, per epoch.

    python benchmarks/ensembles.py --quick          # smoke test, ~1-2 minutes
    python benchmarks/ensembles.py                  # full size, ~9 minutes on 2 idle cores
    python benchmarks/ensembles.py --only batch-32,mlp-1 --repeats 5

Run it as a script (or from inside ``benchmarks/``), not as a module from the
repository root, where the source folder ``cbp/`` would shadow the installed
package.

The same network and data on both sides, float32: 20000 x 64 synthetic
learnable rows (workloads.py's teacher), 10 classes, 3 hidden layers of 256
(relu), batch 256, AdamW (lr 1e-3, weight_decay 0.01, betas and eps at
PyTorch's defaults; cbp's ``alpha`` L2 term set to 0, which PyTorch's loop
does not have), no dropout, one output layer per member. Cases (``--only``):

    batch-32, batch-8    cbp ensemble="batch"   vs tabm arch_type="tabm"
    mini-32, mini-8      cbp ensemble="mini"    vs tabm arch_type="tabm-mini"
    packed-32, packed-8  cbp ensemble="packed"  vs tabm arch_type="tabm-packed"
    mlp-1                plain cbp MLPClassifier vs tabm.MLPBackbone + nn.Linear

The tabm side is ``tabm.TabM.make(n_num_features=64, cat_cardinalities=[],
d_out=10, k=k, arch_type=..., n_blocks=3, d_block=256, dropout=0.0)`` (its
parameters have exactly cbp's shapes; checked at start-up), trained with a
plain loop: a ``randperm`` sliced into batches of 256, forward to (B, k, 10)
logits, ``cross_entropy(logits.flatten(0, 1), y.repeat_interleave(k))`` (the
mean of the members' mean losses, as cbp's), ``torch.optim.AdamW`` step.

Candidates of one case, interleaved round-robin in one process (one warm-up
epoch each, then ``--repeats`` timed epochs; the table shows medians and
paired ratios -- the median over rounds of the ratio within a round):

    cbp 1t         block_rows=None, threadpool_limits(1)
    cbp 2t blocks  block_rows=block_rows_for(form, k), threadpool_limits(2):
                   half the batch (plain, "packed"), 1024 / k rows ("batch",
                   "mini"); the blocks on OpenMP threads, BLAS on one
                   thread inside
    cbp 2t BLAS    block_rows=None, threadpool_limits(2): BLAS's own threads
                   (for reference)
    tabm 1t, 2t    torch.set_num_threads(1) / (2) (and threadpool_limits alike)

One cbp epoch is one ``partial_fit(X, y)`` (``classes=`` on the first call):
exactly one pass with the optimizer state kept, input validation included.
(``fit`` with ``warm_start=True, max_iter=1`` would re-create AdamW's state
every epoch.)

GFLOP/s counts the matrix products of one epoch of n rows and k members,
layer widths u_0 .. u_L (fan-in a = u_l, fan-out b = u_(l+1)):

    FLOPs = 2 n k Σ_l a b          forward
          + 2 n k Σ_l a b          weight gradients
          + 2 n k Σ_(l≥1) a b      δ propagation (none to the first layer's input)
          = 2 n k (3 Σ_l u_l u_(l+1) − u_0 u_1)

the same for every form: a shared W multiplies all k·batch stacked rows, a
per-member W its member's rows. Element-wise work (scalings r, s, biases,
relu, softmax, AdamW) is not counted, nor the first layer's input δ that
"batch" and "mini" need for the gradient of r (2 n k u_0 u_1, 4 % here):
the figure is conservative for them. For the main case (n=20000, k=32):
555 GFLOP per epoch.

A second table sets the 1-thread rows against the "GEMM bound": the same
epoch's matrix products alone, np.matmul on 1 thread with the ensemble's
shapes (k·256 stacked rows through a shared layer, k products of 256 rows
through a per-member one), timed in the same rotation -- what a kernel that
spent no time outside BLAS would take.

"% of large-product rate" is cbp's rate as a fraction of the machine's large-product
rate: the best of a few float32 ``np.matmul`` of 2048 x 2048 by 2048 x 2048,
under threadpool_limits(1) for the 1-thread rows and (2) for the 2-thread
rows, measured at the start and at the end (best of both). The same product
through ``scipy.linalg.blas.sgemm`` (the OpenBLAS that cbp's kernel calls,
which may differ from NumPy's) is recorded too.

"CPU/wall" is the process's CPU seconds over wall seconds for the cbp row:
about 1 on one thread and 2 on two on idle cores; less means a thread
waited (a busy machine spoils every 2-thread row; check ``uptime`` first).
Each candidate's training accuracy (cbp: its predict; tabm: the arg-max of
the members' mean probability) shows that both sides learn.

Also, once and outside the clock: an ensemble of each form (k=32, 2000 rows,
2 epochs) with block_rows_for(form, 32) fitted on 1 thread and on 2 must give the same
bits in every weight, intercept and scaling; printed as "same bits".

Writes ``ensembles-<date>-<time>[-quick].json`` (every raw timing, wall and
CPU seconds, warm-up included; the rates, FLOPs, accuracies, the check and
the machine) and ``.md`` (the table) to --out (benchmarks/results).
"""

import argparse
import gc
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import report
from workloads import Workload, make_data

WORKLOAD = Workload("ensembles", 20000, 64, 10, (256, 256, 256), "relu", 256)
LEARNING_RATE, WEIGHT_DECAY = 1e-3, 0.01
BLOCK_ROWS = WORKLOAD.batch_size // 2


def block_rows_for(form, k):
    """The blocks of the 2-thread candidate, as the user guide advises (Ensembles): half the
    batch for a plain network and for "packed" (whose products are per
    member: the rows of a block alone), and about 1024 stacked rows (1024 /
    k rows of the batch) for the forms that share weights (a block is one
    chunk: larger ones take the element-wise passes out of the cache).
    Measured here (10240 rows, 2 threads): "batch" k=32 1.32 s an epoch at
    blocks of 32, 1.55 s at 128; "packed" k=32 2.78 s at 32, 2.08 s at 128."""
    if form in ("mlp", "packed"):
        return BLOCK_ROWS
    return max(1, min(BLOCK_ROWS, 1024 // k))
FORMS = {"batch": "tabm", "mini": "tabm-mini", "packed": "tabm-packed"}
CASES = ["batch-32", "mlp-1", "batch-8", "mini-32", "mini-8", "packed-32", "packed-8"]
CANDIDATES = ["cbp 1t", "cbp 2t blocks", "cbp 2t BLAS", "tabm 1t", "tabm 2t"]
LARGE = 2048
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="2000 rows and 3 timed epochs: a smoke test")
    parser.add_argument("--only", type=_cases, default=CASES,
                        help="comma-separated cases out of " + ", ".join(CASES))
    parser.add_argument("--rows", type=int, default=None,
                        help="training rows (default 20000, or 2000 with --quick)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed epochs per candidate after one warm-up "
                             "(default 3, also with --quick; at least 3)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="directory for JSON and Markdown")
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = 2000 if args.quick else WORKLOAD.n_samples
    if args.repeats is None:
        args.repeats = 3
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    return args


def _cases(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {unknown or 'empty list'}; choose from {', '.join(CASES)}")
    return [name for name in CASES if name in names]


def parse_case(name):
    form, k = name.split("-")
    return form, int(k)


def epoch_flops(units, n_samples, k):
    """The docstring's count: 2 n k (3 Σ_l u_l u_(l+1) − u_0 u_1)."""
    products = [a * b for a, b in zip(units[:-1], units[1:])]
    return 2 * n_samples * k * (3 * sum(products) - products[0])


# ---------------------------------------------------------------- candidates


def cbp_model(form, k, block_rows, random_state=0):
    from cbp import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=WORKLOAD.hidden, activation="relu", solver="adamw",
        learning_rate_init=LEARNING_RATE, weight_decay=WEIGHT_DECAY, alpha=0.0,
        batch_size=WORKLOAD.batch_size, shuffle=True, random_state=random_state,
        block_rows=block_rows,
        **({} if form == "mlp" else dict(ensemble_size=k, ensemble=form)),
    )


class CbpCandidate:
    """cbp: one epoch is one partial_fit(X, y) under threadpool_limits(threads)."""

    def __init__(self, form, k, X, y, threads, block_rows):
        self.model = cbp_model(form, k, block_rows)
        self.X, self.y, self.threads = X, y, threads
        self.classes = np.unique(y)

    def epoch(self):
        with threadpool_limits(limits=self.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not hasattr(self.model, "coefs_"):
                self.model.partial_fit(self.X, self.y, classes=self.classes)
            else:
                self.model.partial_fit(self.X, self.y)

    def accuracy(self):
        with threadpool_limits(limits=2):
            return float(self.model.score(self.X, self.y))


def tabm_model(form, k):
    import tabm
    import torch

    torch.manual_seed(0)
    if form == "mlp":
        backbone = tabm.MLPBackbone(d_in=WORKLOAD.n_features, n_blocks=len(WORKLOAD.hidden),
                                    d_block=WORKLOAD.hidden[0], dropout=0.0)
        return torch.nn.Sequential(backbone, torch.nn.Linear(WORKLOAD.hidden[-1],
                                                             WORKLOAD.n_outputs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tabm.TabM.make(n_num_features=WORKLOAD.n_features, cat_cardinalities=[],
                              d_out=WORKLOAD.n_outputs, k=k, arch_type=FORMS[form],
                              n_blocks=len(WORKLOAD.hidden), d_block=WORKLOAD.hidden[0],
                              dropout=0.0, activation="ReLU")


class TabmCandidate:
    """PyTorch + tabm: randperm batches, (B, k, 10) logits, mean of the
    members' cross-entropies, AdamW."""

    def __init__(self, form, k, X, y, threads):
        import torch

        self.torch = torch
        self.model = tabm_model(form, k)
        self.k = 1 if form == "mlp" else k
        self.X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=LEARNING_RATE,
                                           weight_decay=WEIGHT_DECAY)
        self.generator = torch.Generator().manual_seed(0)
        self.threads = threads

    def epoch(self):
        torch = self.torch
        cross_entropy = torch.nn.functional.cross_entropy
        model, optimizer, k = self.model, self.optimizer, self.k
        n, b = self.X.shape[0], WORKLOAD.batch_size
        with threadpool_limits(limits=self.threads):
            torch.set_num_threads(self.threads)
            order = torch.randperm(n, generator=self.generator)
            for start in range(0, n, b):
                idx = order[start:start + b]
                optimizer.zero_grad(set_to_none=True)
                logits = model(self.X[idx])
                if k == 1:
                    loss = cross_entropy(logits, self.y[idx])
                else:  # (B, k, classes): mean over members and rows
                    loss = cross_entropy(logits.flatten(0, 1), self.y[idx].repeat_interleave(k))
                loss.backward()
                optimizer.step()

    def accuracy(self):
        """Accuracy of the mean of the members' probabilities (as cbp predicts)."""
        torch = self.torch
        torch.set_num_threads(2)
        self.model.eval()
        with torch.no_grad():
            logits = self.model(self.X)
            proba = logits.softmax(-1)
            if proba.ndim == 3:
                proba = proba.mean(1)
        self.model.train()
        return float((proba.argmax(1) == self.y).double().mean())


def check_shapes(form, k):
    """cbp's and tabm's trained arrays have the same shapes (as multisets):
    the two sides train the same network."""
    import torch

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2 * WORKLOAD.batch_size, WORKLOAD.n_features)).astype(np.float32)
    y = np.arange(len(X)) % WORKLOAD.n_outputs
    model = cbp_model(form, k, None)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.partial_fit(X, y, classes=np.unique(y))
    arrays = list(model.coefs_) + list(model.intercepts_)
    if form != "mlp":
        arrays += [a for a in model.input_scalings_ + model.output_scalings_ if a is not None]

    def canonical(shape):  # tabm stores a shared W as (out, in), cbp as (in, out)
        return tuple(sorted(shape)) if len(shape) == 2 and 1 not in shape else tuple(shape)

    ours = sorted(canonical(a.shape) for a in arrays)
    theirs = sorted(canonical(tuple(p.shape)) for p in tabm_model(form, k).parameters())
    if ours != theirs:
        raise SystemExit(f"{form}-{k}: cbp's parameter shapes {ours} differ from tabm's "
                         f"{theirs}")
    return sum(a.size for a in arrays), all(p.dtype == torch.float32
                                            for p in tabm_model(form, k).parameters())


# ---------------------------------------------------------------- timing


def interleaved(tasks, warmup, repeats):
    """candidates.interleaved_times, with CPU time (all threads) beside wall time.

    Round-robin, each round starting one candidate later; garbage collected
    between calls, outside the clock.
    """
    names = list(tasks)
    times = {name: {"warmup": [], "timed": [], "cpu_warmup": [], "cpu_timed": []}
             for name in names}
    for round_ in range(warmup + repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            cpu, start = time.process_time(), time.perf_counter()
            tasks[name]()
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            phase = "warmup" if round_ < warmup else "timed"
            times[name][phase].append(elapsed)
            times[name]["cpu_" + phase].append(cpu)
    return times


class GemmBound:
    """The epoch's matrix products alone, np.matmul on 1 thread (as
    candidates.GemmBound, for an ensemble's shapes): per mini-batch of b rows,
    a shared layer multiplies the k·b stacked rows at once, a per-member layer
    (packed's hidden layers, every output layer) is a (k, b, a) @ (k, a, c)
    stack of k products. Forward, weight gradient, and δ propagation for every
    layer but the first. Nothing else a training step does."""

    def __init__(self, form, k, n_samples):
        rng = np.random.default_rng(0)
        full, rest = divmod(n_samples, WORKLOAD.batch_size)
        self.batches = [WORKLOAD.batch_size] * full + ([rest] if rest else [])
        self.calls = {b: self._calls(form, k, b, rng) for b in set(self.batches)}

    @staticmethod
    def _calls(form, k, b, rng):
        def rand(*shape):
            return (0.1 * rng.standard_normal(shape)).astype(np.float32)

        units = WORKLOAD.units()
        calls = []
        for i, (fan_in, fan_out) in enumerate(zip(units[:-1], units[1:])):
            per_member = form == "packed" or (i == len(units) - 2 and form != "mlp")
            if per_member:
                calls.append((rand(k, b, fan_in), rand(k, fan_in, fan_out),
                              np.empty((k, b, fan_out), np.float32)))
                calls.append((rand(k, fan_in, b), rand(k, b, fan_out),
                              np.empty((k, fan_in, fan_out), np.float32)))
                if i:
                    calls.append((rand(k, b, fan_out), rand(k, fan_out, fan_in),
                                  np.empty((k, b, fan_in), np.float32)))
            else:
                rows = b * (1 if form == "mlp" else k)
                calls.append((rand(rows, fan_in), rand(fan_in, fan_out),
                              np.empty((rows, fan_out), np.float32)))
                calls.append((rand(rows, fan_in).T, rand(rows, fan_out),
                              np.empty((fan_in, fan_out), np.float32)))
                if i:
                    calls.append((rand(rows, fan_out), rand(fan_in, fan_out).T,
                                  np.empty((rows, fan_in), np.float32)))
        return calls

    def epoch(self):
        matmul, calls = np.matmul, self.calls
        with threadpool_limits(limits=1):
            for b in self.batches:
                for left, right, out in calls[b]:
                    matmul(left, right, out=out)


def large_product_rates(tries=5):
    """GFLOP/s of float32 2048 x 2048 products, best of `tries`, on 1 and 2
    threads: np.matmul (NumPy's OpenBLAS) and scipy's sgemm (the kernel's)."""
    from scipy.linalg.blas import sgemm

    rng = np.random.default_rng(0)
    a = rng.standard_normal((LARGE, LARGE)).astype(np.float32)
    b = rng.standard_normal((LARGE, LARGE)).astype(np.float32)
    out = np.empty_like(a)
    fa, fb = np.asfortranarray(a), np.asfortranarray(b)
    flops = 2 * LARGE**3
    rates = {}
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            for name, product in (("numpy", lambda: np.matmul(a, b, out=out)),
                                  ("scipy", lambda: sgemm(1.0, fa, fb))):
                product()
                best = min(_timed(product) for _ in range(tries))
                rates[f"{name} {threads}t"] = flops / best / 1e9
    return rates


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def same_bits_check(X, y, k=32, rows=2000, epochs=2):
    """Each form at k members, block_rows=block_rows_for(form, k): 1 thread
    and 2 threads give the same bits; and (to show the check can fail)
    block_rows=None differs."""
    X, y = X[:rows], y[:rows]
    results = {}
    for form in FORMS:
        fitted = {}
        blocks = block_rows_for(form, k)
        for label, threads, block_rows in (("1t", 1, blocks), ("2t", 2, blocks),
                                           ("none", 1, None)):
            model = cbp_model(form, k, block_rows).set_params(max_iter=epochs)
            with threadpool_limits(limits=threads), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X, y)
            fitted[label] = _trained_arrays(model)
        same = all(a.tobytes() == b.tobytes() for a, b in zip(fitted["1t"], fitted["2t"]))
        differs = max(float(np.max(np.abs(a - b))) for a, b in zip(fitted["1t"], fitted["none"]))
        results[form] = {"same_bits_1t_2t": same, "max_abs_diff_vs_block_rows_none": differs,
                         "n_values": int(sum(a.size for a in fitted["1t"])),
                         "block_rows": blocks}
    return {"k": k, "rows": len(X), "epochs": epochs, "forms": results}


def _trained_arrays(model):
    arrays = list(model.coefs_) + list(model.intercepts_)
    arrays += [a for a in model.input_scalings_ + model.output_scalings_ if a is not None]
    return [np.array(a, copy=True) for a in arrays]


def run_case(name, X, y, repeats):
    form, k = parse_case(name)
    entries = {
        "cbp 1t": CbpCandidate(form, k, X, y, 1, None),
        "cbp 2t blocks": CbpCandidate(form, k, X, y, 2, block_rows_for(form, k)),
        "cbp 2t BLAS": CbpCandidate(form, k, X, y, 2, None),
        "tabm 1t": TabmCandidate(form, k, X, y, 1),
        "tabm 2t": TabmCandidate(form, k, X, y, 2),
        "GEMM bound 1t": GemmBound(form, k, len(X)),
    }
    times = interleaved({n: c.epoch for n, c in entries.items()}, warmup=1, repeats=repeats)
    accuracy = {n: c.accuracy() for n, c in entries.items() if hasattr(c, "accuracy")}
    return {"case": name, "form": form, "k": k, "n_samples": len(X),
            "flops": epoch_flops(WORKLOAD.units(), len(X), k),
            "times": times, "train_accuracy": accuracy}


# ---------------------------------------------------------------- report


ROWS = [("1", "cbp 1t", "tabm 1t", "tabm 1t", 1),
        ("2 (block_rows={})", "cbp 2t blocks", "tabm 2t", "tabm 1t", 2),
        ("2 (BLAS threads, ref.)", "cbp 2t BLAS", "tabm 2t", "tabm 1t", 2)]


def results_table(results, rates):
    header = ["form", "k", "threads", "cbp s/epoch", "tabm s/epoch", "speed-up cbp vs tabm",
              "cbp GFLOP/s", "% of large-product rate", "tabm GFLOP/s",
              "cbp 2t vs cbp 1t", "tabm 2t vs 1t", "cbp CPU/wall",
              "train acc. cbp / tabm"]
    rows = []
    for r in results:
        t = {name: v["timed"] for name, v in r["times"].items()}
        cpu = {name: v["cpu_timed"] for name, v in r["times"].items()}
        for label, ours, theirs, their_one, threads in ROWS:
            cbp_rate = r["flops"] / report.median(t[ours]) / 1e9
            form = "plain MLP" if r["form"] == "mlp" else r["form"]
            rows.append([
                form, r["k"], label.format(block_rows_for(r["form"], r["k"])),
                report._seconds(t[ours]), report._seconds(t[theirs]),
                f"{report.paired_ratio(t[theirs], t[ours]):.2f}x",
                f"{cbp_rate:.1f}",
                f"{100 * cbp_rate / rates[f'numpy {threads}t']:.0f} %",
                f"{r['flops'] / report.median(t[theirs]) / 1e9:.1f}",
                "" if threads == 1 else f"{report.paired_ratio(t['cbp 1t'], t[ours]):.2f}x",
                "" if ours != "cbp 2t blocks" else
                f"{report.paired_ratio(t[their_one], t[theirs]):.2f}x",
                f"{report.median(cpu[ours]) / report.median(t[ours]):.2f}",
                f"{r['train_accuracy'][ours]:.3f} / {r['train_accuracy'][theirs]:.3f}",
            ])
    return report._table(header, rows)


def gemm_table(results, rates):
    """The 1-thread rows against the epoch's own products alone."""
    header = ["form", "k", "GEMM bound s/epoch", "GEMM bound GFLOP/s",
              "% of large-product rate", "cbp 1t of GEMM bound", "tabm 1t of GEMM bound"]
    rows = []
    for r in results:
        t = {name: v["timed"] for name, v in r["times"].items()}
        bound = t["GEMM bound 1t"]
        rate = r["flops"] / report.median(bound) / 1e9
        rows.append(["plain MLP" if r["form"] == "mlp" else r["form"], r["k"],
                     report._seconds(bound), f"{rate:.1f}",
                     f"{100 * rate / rates['numpy 1t']:.0f} %",
                     f"{100 * report.paired_ratio(bound, t['cbp 1t']):.0f} %",
                     f"{100 * report.paired_ratio(bound, t['tabm 1t']):.0f} %"])
    return report._table(header, rows)


def rates_text(rates):
    return ("Large-product rate (float32 2048 x 2048 @ 2048 x 2048, best of start and end): "
            + ", ".join(f"{name} {value:.0f} GFLOP/s" for name, value in rates.items()))


def check_text(check):
    lines = [f"block_rows on 1 thread vs 2 threads "
             f"(k={check['k']}, {check['rows']} rows, {check['epochs']} epochs):"]
    for form, r in check["forms"].items():
        lines.append(f"  {form} (block_rows={r['block_rows']}): "
                     f"{'same bits' if r['same_bits_1t_2t'] else 'DIFFERENT BITS'} "
                     f"in all {r['n_values']} values (vs block_rows=None: max |diff| "
                     f"{r['max_abs_diff_vs_block_rows_none']:.1e})")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    import cbp

    info = report.machine_info()
    info["tabm"] = getattr(sys.modules.get("tabm") or __import__("tabm"), "__version__", "?")
    summary = report.describe_machine(info) + f"\n- tabm {info['tabm']}"
    print(summary + "\n", flush=True)
    print(f"cbp imported from {os.path.dirname(cbp.__file__)}\n", flush=True)

    for name in args.only:
        n_params, float32 = check_shapes(*parse_case(name))
        print(f"{name}: same parameter shapes in cbp and tabm ({n_params} values; "
              f"tabm float32: {float32})")
    print(flush=True)

    started = time.perf_counter()
    rates_start = large_product_rates()
    print(rates_text(rates_start) + " (start)\n", flush=True)
    X, y = make_data(WORKLOAD, n_samples=args.rows, dtype=np.float32)
    check = same_bits_check(X, y)
    print(check_text(check) + "\n", flush=True)

    results = []
    for name in args.only:
        result = run_case(name, X, y, args.repeats)
        results.append(result)
        t = {n: report.median(v["timed"]) for n, v in result["times"].items()}
        print(f"{name}: " + ", ".join(f"{n} {report._fmt_s(s)}" for n, s in t.items()),
              flush=True)
    rates_end = large_product_rates()
    rates = {name: max(rates_start[name], rates_end[name]) for name in rates_start}

    flops_main = epoch_flops(WORKLOAD.units(), args.rows, 32)
    title = (f"### Ensembles, cbp vs PyTorch + tabm — n={args.rows}, "
             f"{'-'.join(map(str, WORKLOAD.units()))} relu, batch {WORKLOAD.batch_size}, "
             f"AdamW, float32; median of {args.repeats} epochs after a warm-up "
             f"({flops_main / 1e9:.0f} GFLOP per epoch at k=32)")
    table = results_table(results, rates)
    text = "\n\n".join(part for part in [
        title, table,
        "The epoch's matrix products alone (np.matmul, 1 thread, in the same rotation):",
        gemm_table(results, rates), rates_text(rates), check_text(check)] if part)
    print("\n" + text + "\n")
    total = time.perf_counter() - started
    print(f"Total: {total:.0f} s")

    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, "ensembles-" + time.strftime("%Y%m%d-%H%M%S")
                        + ("-quick" if args.quick else ""))
    report.write_json(stem + ".json", {
        "args": vars(args), "machine": info, "machine_summary": summary,
        "rates_start": rates_start, "rates_end": rates_end, "rates": rates,
        "same_bits": check, "results": results, "total_seconds": total,
    })
    with open(stem + ".md", "w") as f:
        f.write(summary + "\n\n" + text + "\n")
    print(f"Wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
