"""
The tabular benchmark's chart
=============================

The repository ships the results of its tabular benchmark
(``benchmarks/tabular.py``) in ``benchmarks/latest/tabular.jsonl``: one JSON
line per data set, random split and model, with the test score (accuracy, or
R² for regression) and the fit time. This example draws its figure from them:
for every model, the mean over the data sets of its score minus CatBoost's
(on the same splits; CatBoost with its defaults is the strongest of the
gradient-boosting libraries by default) against its median fit time.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

# sphinx-gallery runs the example from docs/examples/; look upwards from here
# for the repository's benchmarks/ folder
here = Path.cwd().resolve()
path = next(folder / "benchmarks" / "latest" / "tabular.jsonl"
            for folder in (here, *here.parents)
            if (folder / "benchmarks" / "latest" / "tabular.jsonl").exists())
results = pd.read_json(path, lines=True)
print(results[["data", "split", "model", "score", "fit_time"]].head())
print(f"\n{results['data'].nunique()} data sets; models:",
      *sorted(results["model"].unique()), sep="\n  ")

# %%
# Score relative to CatBoost
# --------------------------
#
# Each model's score is set against CatBoost's (``"catboost"``) on the same
# data set and split, then averaged over the splits of each data set.

baseline = results[results["model"] == "catboost"].set_index(["data", "split"])["score"]
results["vs_catboost"] = results["score"] - baseline.reindex(
    pd.MultiIndex.from_frame(results[["data", "split"]])).to_numpy()
per_set = results.dropna(subset=["vs_catboost"]).groupby(["model", "data"]).agg(
    vs_catboost=("vs_catboost", "mean"), fit_time=("fit_time", "median"))
summary = per_set.groupby("model").agg(
    vs_catboost=("vs_catboost", "mean"), fit_time=("fit_time", "median"),
    data_sets=("vs_catboost", "size"))
print(summary.sort_values("fit_time").round(4))

# %%
# Score against fit time
# ----------------------

names = {"cbp": "cbp TabularMLP* (defaults)", "hgb": "HistGradientBoosting",
         "catboost": "CatBoost", "lightgbm": "LightGBM", "xgboost": "XGBoost",
         "sklearn": "scikit-learn MLP pipeline", "realmlp": "RealMLP (pytabkit)",
         "tabm": "TabM (pytabkit)"}
# the cbp variants' points are close together: their labels below, above, right
offsets = {"cbp": ((0, -16), "center"), "cbp ensemble_size=8": ((0, 10), "center"),
           "cbp size=medium, ensemble_size=8": ((8, -14), "left")}
n_sets = results["data"].nunique()
fig, ax = plt.subplots(figsize=(7.2, 4.6))
for model, row in summary.iterrows():
    label = names.get(model, model)
    if row["data_sets"] < n_sets:
        label += f" ({row['data_sets']:.0f} of {n_sets} sets)"
    offset, align = offsets.get(model, ((6, 6), "left"))
    ax.scatter(row["fit_time"], row["vs_catboost"], s=40,
               color="C0" if model.startswith("cbp") else "C1")
    ax.annotate(label, (row["fit_time"], row["vs_catboost"]), textcoords="offset points",
                xytext=offset, ha=align, fontsize=8)
ax.axhline(0, color="grey", lw=0.8)
ax.set_xscale("log")
ax.set_xlim(right=summary["fit_time"].max() * 8)  # room for the labels
ax.set_xlabel("median fit time per data set (s, log scale)")
ax.set_ylabel("mean test score minus CatBoost's")
ax.set_title(f"{n_sets} tables: score against fit time")
fig.tight_layout()
