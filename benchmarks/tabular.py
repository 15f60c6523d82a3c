"""The tabular estimators against gradient boosting (CatBoost, LightGBM,
XGBoost, HistGradientBoosting), scikit-learn's MLP and PyTorch's RealMLP and
TabM, on real tables that PyPI packages ship.

    python benchmarks/tabular.py                      # cbp and the GBDTs: ~25 min
    python benchmarks/tabular.py --models realmlp,tabm --splits 1   # pytabkit: ~1 h
    python benchmarks/tabular.py --quick              # 3 sets, 1 split: ~1 min
    python benchmarks/tabular.py --suite held-back    # the 11 acceptance tables
    python benchmarks/tabular.py --report results/tabular-*.jsonl   # table + chart

Protocol (fixed): each data set of benchmarks/tabular_data.py (at most
--max-rows rows, a fixed subsample), split 80/20 at random (seeds 0, 1, 2;
stratified for classification); every model is fitted on the training part
as given -- a DataFrame with its categorical columns and missing values --
and scored on the test part: accuracy, or R^2. Fit time is the wall time of
``fit``, preprocessing included, with each library's default threads
(--threads default: every core, for every model here) or on one thread for
every model (--threads 1: threadpoolctl limits BLAS and OpenMP; cbp's
n_jobs=1, CatBoost's thread_count=1, LightGBM's and XGBoost's n_jobs=1,
torch.set_num_threads(1), pytabkit's n_threads=1), so that two runs can
share a 2-core machine.

Models:
    cbp        cbp.TabularMLPClassifier / TabularMLPRegressor(random_state=seed),
               defaults; --cbp '{"size": "small"}' passes parameters (a JSON
               object) and --label names the variant in the results
    hgb        HistGradientBoostingClassifier / Regressor(categorical_features=
               "from_dtype", random_state=seed), defaults (its own early
               stopping above 10,000 rows)
    catboost   CatBoostClassifier / Regressor(random_seed=seed, verbose=0),
               defaults (1000 trees of depth 6), categorical columns as
               strings ('missing' where missing) named in cat_features:
               its native categorical handling
    lightgbm   LGBMClassifier / Regressor(random_state=seed, verbose=-1),
               defaults, categorical columns as pandas 'category' (its
               native handling)
    xgboost    XGBClassifier / Regressor(random_state=seed,
               enable_categorical=True), defaults, categorical columns as
               'category'; classes trained as their indices
    sklearn    scikit-learn's MLPClassifier / MLPRegressor(random_state=seed),
               defaults, in a standard pipeline: numeric columns median-imputed
               and standardised, categorical ones one-hot
               (handle_unknown="ignore", missing as a category); regression
               targets standardised (TransformedTargetRegressor)
    realmlp    pytabkit RealMLP_TD_Classifier / Regressor(device="cpu",
               n_threads=1, random_state=seed), defaults. pytabkit refuses NaN
               in numeric columns: they get the training median and a 0/1
               indicator column first (outside the timed fit; it takes
               milliseconds)
    tabm       pytabkit TabM_D_Classifier / Regressor(device="cpu", n_threads=1,
               random_state=seed), defaults

Every result is appended as one JSON line to --out (default
benchmarks/results/tabular-<date>.jsonl); --report reads such files (several
runs merge; a later line for the same data set, split and model wins) and
prints the Markdown table, and --chart draws score against fit time.
"""

import argparse
import contextlib
import datetime
import glob
import json
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tabular_data  # noqa: E402  (the data suite beside this file)

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
MODELS = ["cbp", "hgb", "catboost", "lightgbm", "xgboost", "sklearn", "realmlp", "tabm"]
QUICK = ["chile", "fair", "gssvocab"]


# ----------------------------------------------------------------- models


def _as_categories(X_train, X_test):
    """Categorical columns as pandas 'category' (what HistGradientBoosting's
    and pytabkit's dtype detection read)."""
    return _categories(X_train), _categories(X_test)


def _categories(X):
    X = X.copy()
    for column in X.columns:
        dtype = X[column].dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            values = X[column].astype(object)
            X[column] = pd.Categorical(values.where(values.isna(), values.map(str, na_action="ignore")))
    return X


def make_cbp(task, seed, params, threads):
    import cbp

    Model = cbp.TabularMLPRegressor if task == "regression" else cbp.TabularMLPClassifier
    if threads == "1":
        params = {"n_jobs": 1, **params}
    return Model(random_state=seed, **params), None


def make_catboost(task, seed, params, threads):
    import catboost

    Model = catboost.CatBoostRegressor if task == "regression" else catboost.CatBoostClassifier
    if threads == "1":
        params = {"thread_count": 1, **params}

    def prepare(X_train, X_test):
        X_train, X_test = _strings(X_train), _strings(X_test)
        model.set_params(cat_features=[c for c in X_train.columns
                                       if not pd.api.types.is_numeric_dtype(X_train[c].dtype)])
        return X_train, X_test

    model = Model(random_seed=seed, verbose=0, allow_writing_files=False, **params)
    return model, prepare


def make_lightgbm(task, seed, params, threads):
    import lightgbm

    Model = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    if threads == "1":
        params = {"n_jobs": 1, **params}
    return Model(random_state=seed, verbose=-1, **params), _as_categories


class _LabelsAsIndices:
    """A classifier trained on y's class indices (XGBoost takes only 0 .. n - 1)
    that predicts the labels."""

    def __init__(self, model):
        self.model = model

    def fit(self, X, y):
        self.classes_, indices = np.unique(np.asarray(y).astype(str), return_inverse=True)
        self.model.fit(X, indices)
        return self

    def predict(self, X):
        return self.classes_[np.asarray(self.model.predict(X)).astype(int).ravel()]


def make_xgboost(task, seed, params, threads):
    import xgboost

    if threads == "1":
        params = {"n_jobs": 1, **params}
    if task == "regression":
        return xgboost.XGBRegressor(random_state=seed, enable_categorical=True,
                                    **params), _as_categories
    return _LabelsAsIndices(xgboost.XGBClassifier(random_state=seed, enable_categorical=True,
                                                  **params)), _as_categories


def make_hgb(task, seed, params, threads):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    Model = (HistGradientBoostingRegressor if task == "regression"
             else HistGradientBoostingClassifier)
    return Model(categorical_features="from_dtype", random_state=seed, **params), _as_categories


def make_sklearn(task, seed, params, threads):
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.compose import make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         make_column_selector(dtype_include="number")),
        ("categorical", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                      OneHotEncoder(handle_unknown="ignore")),
         make_column_selector(dtype_exclude="number")),
    ])
    if task == "regression":
        model = TransformedTargetRegressor(MLPRegressor(random_state=seed, **params),
                                           transformer=StandardScaler())
    else:
        model = MLPClassifier(random_state=seed, **params)
    return make_pipeline(columns, model), _strings_for_categories


def _strings_for_categories(X_train, X_test):
    return _strings(X_train), _strings(X_test)


def _strings(X):
    X = X.copy()
    for column in X.columns:
        if not pd.api.types.is_numeric_dtype(X[column].dtype) or \
                pd.api.types.is_bool_dtype(X[column].dtype):
            X[column] = X[column].astype(object).where(X[column].notna(), "missing").astype(str)
    return X


def _pytabkit(name, task, seed, params, threads):
    import pytabkit
    import torch

    n_threads = 1 if threads == "1" else os.cpu_count()
    torch.set_num_threads(n_threads)
    kind = "Regressor" if task == "regression" else "Classifier"
    Model = getattr(pytabkit, f"{name}_{kind}")
    return Model(device="cpu", n_threads=n_threads, random_state=seed, verbosity=0,
                 **params), \
        _imputed_with_categories


def _imputed_with_categories(X_train, X_test):
    """pytabkit refuses NaN in numeric columns: the training medians, and a
    0/1 indicator column for each numeric column the training part misses
    values of; categorical columns as 'category'."""
    X_train, X_test = _as_categories(X_train, X_test)
    numeric = [c for c in X_train.columns if pd.api.types.is_numeric_dtype(X_train[c].dtype)
               and not isinstance(X_train[c].dtype, pd.CategoricalDtype)]
    medians = X_train[numeric].median()
    out = []
    for X in (X_train, X_test):
        X = X.copy()
        for c in numeric:
            if X_train[c].isna().any():
                X[f"{c}_missing"] = X[c].isna().astype(np.float64)
            X[c] = X[c].fillna(medians[c] if pd.notna(medians[c]) else 0.0)
        out.append(X)
    return out


def make_realmlp(task, seed, params, threads):
    return _pytabkit("RealMLP_TD", task, seed, params, threads)


def make_tabm(task, seed, params, threads):
    return _pytabkit("TabM_D", task, seed, params, threads)


MAKERS = {"cbp": make_cbp, "hgb": make_hgb, "catboost": make_catboost,
          "lightgbm": make_lightgbm, "xgboost": make_xgboost, "sklearn": make_sklearn,
          "realmlp": make_realmlp, "tabm": make_tabm}


def score(task, y_true, y_pred):
    from sklearn.metrics import accuracy_score, r2_score

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred).reshape(len(y_true), *y_true.shape[1:])
    if task == "regression":
        return float(r2_score(y_true, y_pred))
    return float(accuracy_score(y_true.astype(str), y_pred.astype(str)))


def run_one(model_name, task, X_train, y_train, X_test, y_test, seed, params, threads):
    model, prepare = MAKERS[model_name](task, seed, params, threads)
    if prepare is not None:
        X_train, X_test = prepare(X_train, X_test)
    limits = threadpool_limits(1) if threads == "1" else contextlib.nullcontext()
    with limits, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
        predicted = model.predict(X_test)
    extra = {}
    if model_name == "cbp":
        extra = {"epochs": [int(network.n_iter_) for network in model.networks_]}
    return score(task, y_test, predicted), fit_time, extra


# ----------------------------------------------------------------- running


def split(X, y, task, seed):
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=0.2, random_state=seed,
                            stratify=y if task != "regression" else None)


def run(args):
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    names = args.only.split(",") if args.only else (
        QUICK if args.quick else [d[0] for d in tabular_data.SUITES[args.suite]])
    models = args.models.split(",")
    unknown = set(models) - set(MAKERS)
    if unknown:
        raise SystemExit(f"unknown models {sorted(unknown)}; choose from {MODELS}")
    params = json.loads(args.cbp) if args.cbp else {}
    label = args.label or ("cbp" + (json.dumps(params, sort_keys=True) if params else ""))
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    for name in names:
        X, y, _, task = tabular_data.load(name, max_rows=args.max_rows)
        for seed in range(args.splits):
            X_train, X_test, y_train, y_test = split(X, y, task, seed)
            for model_name in models:
                s, t, extra = run_one(model_name, task, X_train, y_train, X_test, y_test,
                                      seed, params if model_name == "cbp" else {}, args.threads)
                record = dict(data=name, task=task, rows=len(X), split=seed,
                              model=label if model_name == "cbp" else model_name,
                              score=s, fit_time=t, machine=machine, threads=args.threads,
                              when=datetime.datetime.now().isoformat(timespec="seconds"),
                              **extra)
                print(f"{name:12s} split {seed} {record['model']:24s} score {s:.4f} "
                      f"fit {t:7.2f} s", flush=True)
                with open(args.out, "a") as f:
                    f.write(json.dumps(record) + "\n")


# ----------------------------------------------------------------- report


def read(paths):
    records = {}
    for pattern in paths:
        for path in sorted(glob.glob(pattern)):
            with open(path) as f:
                for line in f:
                    r = json.loads(line)
                    records[(r["data"], r["split"], r["model"])] = r
    return list(records.values())


def summarise(records, baseline="hgb"):
    """{model: {data: (mean score, std, median fit time, n splits)}}, the
    data sets' tasks and sizes."""
    by = {}
    info = {}
    for r in records:
        by.setdefault(r["model"], {}).setdefault(r["data"], []).append(r)
        info[r["data"]] = (r["task"], r["rows"])
    out = {}
    for model, sets in by.items():
        out[model] = {}
        for data, rs in sets.items():
            scores = [r["score"] for r in rs]
            out[model][data] = (statistics.mean(scores),
                                statistics.stdev(scores) if len(scores) > 1 else 0.0,
                                statistics.median(r["fit_time"] for r in rs), len(rs),
                                {r["split"]: r["score"] for r in rs})
    return out, info


def report(records, baseline="hgb"):
    table, info = summarise(records)
    models = [m for m in MODELS if m in table] + sorted(m for m in table if m not in MODELS)
    sets = [name for name in tabular_data.BY_NAME if name in info]
    lines = ["| data set | task | rows | " + " | ".join(models) + " |",
             "|---|---|---:|" + "---:|" * len(models)]
    for data in sets:
        task, rows = info[data]
        cells = []
        for m in models:
            v = table[m].get(data)
            cells.append("" if v is None else f"{v[0]:.4f} ({_seconds(v[2])})")
        lines.append(f"| {data} | {task} | {rows} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"| model | data sets | mean score | mean vs {baseline} (same splits) | "
                 f"wins vs {baseline} | median fit time | median time / {baseline}'s |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    base = table.get(baseline, {})
    for m in models:
        common = [d for d in sets if d in table[m]]
        if not common:
            continue
        mean = statistics.mean(table[m][d][0] for d in common)
        diffs, wins, ratios = [], 0, []
        for d in common:
            if d not in base:
                continue
            same = [s for s in table[m][d][4] if s in base[d][4]]
            if not same:
                continue
            diff = statistics.mean(table[m][d][4][s] - base[d][4][s] for s in same)
            diffs.append(diff)
            wins += diff > 0
            ratios.append(table[m][d][2] / base[d][2])
        median_time = statistics.median(table[m][d][2] for d in common)
        lines.append(
            f"| {m} | {len(common)} | {mean:.4f} | "
            + (f"{statistics.mean(diffs):+.4f}" if diffs else "") + " | "
            + (f"{wins} of {len(diffs)}" if diffs and m != baseline else "") + " | "
            + f"{_seconds(median_time)} | "
            + (f"{statistics.median(ratios):.1f}x" if ratios and m != baseline else "") + " |")
    return "\n".join(lines)


def _seconds(t):
    return f"{t:.2f} s" if t < 10 else f"{t:.0f} s"


def chart(records, path, baseline="hgb"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, info = summarise(records)
    if baseline not in table:
        raise SystemExit(f"the chart's baseline {baseline!r} is not in the results")
    base = table[baseline]
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    names = {"cbp": "cbp TabularMLP* (defaults)", "hgb": "HistGradientBoosting",
             "catboost": "CatBoost", "lightgbm": "LightGBM", "xgboost": "XGBoost",
             "sklearn": "scikit-learn MLP pipeline", "realmlp": "RealMLP (pytabkit)",
             "tabm": "TabM (pytabkit)"}
    # (the cbp variants' points are close: their labels below, above, right)
    right = 0.0
    offsets = iter([((0, -16), "center"), ((0, 10), "center"), ((8, -14), "left")] * 10)
    for m, sets in table.items():
        diffs, times = [], []
        for d, v in sets.items():
            if d in base:
                same = [s for s in v[4] if s in base[d][4]]
                if same:
                    diffs.append(statistics.mean(v[4][s] - base[d][4][s] for s in same))
                    times.append(v[2])
        if not diffs:
            continue
        x, y = statistics.median(times), statistics.mean(diffs)
        label = names.get(m, m)
        if len(diffs) < len(info):
            label += f" ({len(diffs)} of {len(info)} sets)"
        cbp = m.startswith("cbp")
        ax.scatter([x], [y], s=40, color="C0" if cbp else "C1")
        offset, align = next(offsets) if cbp else ((6, 6), "left")
        ax.annotate(label, (x, y), textcoords="offset points", fontsize=8, xytext=offset,
                    ha=align)
        right = max(right, x)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlim(right=right * 8)  # (room for the labels)
    threads = {r.get("threads", "1") for r in records}
    ax.set_xlabel("median fit time per data set (s, "
                  + ("one thread" if threads == {"1"} else "default threads") + ", log scale)")
    ax.set_ylabel(f"mean test score minus {names.get(baseline, baseline)}'s")
    ax.set_title(f"{len(info)} tables: score against fit time (mean over each model's sets)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="cbp,hgb,catboost,lightgbm,xgboost")
    parser.add_argument("--only", default="")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--suite", choices=sorted(tabular_data.SUITES), default="dev",
                        help="dev: the tables defaults are chosen on; held-back: the "
                        "acceptance tables, never used to choose anything")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--threads", choices=["default", "1"], default="default",
                        help="default: each library's own (all cores for every model here: "
                        "cbp's folds, CatBoost's, LightGBM's, XGBoost's and "
                        "HistGradientBoosting's trees, BLAS for scikit-learn's MLP, "
                        "torch for pytabkit's); 1: one thread for every model")
    parser.add_argument("--max-rows", type=int, default=20000)
    parser.add_argument("--cbp", default="", help="TabularMLP* parameters, a JSON object")
    parser.add_argument("--label", default="", help="the cbp variant's name in the results")
    parser.add_argument("--out", default=os.path.join(
        RESULTS, f"tabular-{datetime.date.today().isoformat()}.jsonl"))
    parser.add_argument("--report", nargs="*", help="JSONL files (globs) to summarise")
    parser.add_argument("--chart", default="", help="with --report: write the chart here")
    parser.add_argument("--baseline", default="catboost",
                        help="with --report: the model the others are compared with")
    args = parser.parse_args()
    if args.report is not None:
        records = read(args.report or [args.out])
        print(report(records, args.baseline))
        if args.chart:
            chart(records, args.chart, args.baseline)
        return
    run(args)


if __name__ == "__main__":
    main()
