"""Many fits and data larger than memory, measured: python benchmarks/scaling.py

1. A 4-candidate x 3-fold GridSearchCV, cbp and scikit-learn, with n_jobs=1,
   with joblib's threading backend (n_jobs=2) and with loky processes
   (n_jobs=2); BLAS pinned to one thread per fit. Wall times, in one run.
2. Out of core: dask-ml's Incremental trains cbp over a Parquet dataset of
   several partitions, several epochs, and so does a plain loop of
   partial_fit over the blocks; the peak resident memory of each (a fresh
   process), against the dataset's size in memory.

Measured (AMD EPYC Zen 5, 2 vCPUs): 616 MiB dataset in 8 blocks of 77 MiB,
peak 720 MiB beyond start with Incremental and 810 MiB with the plain loop
(572 and 721 MiB with ARROW_DEFAULT_MEMORY_POOL=system): the memory does NOT
stay near one block, and not because of the training (cbp's model is 26 KB):
the Parquet reader's allocators keep what each block used (pandas.read_parquet
alone, file by file: +476 MiB kept; with ARROW_DEFAULT_MEMORY_POOL=system and
MALLOC_MMAP_THRESHOLD_=65536: 196 MiB peak, released; through dask: 451 MiB).
"""

import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

OUT_OF_CORE = r'''
import sys, warnings
import numpy as np
import dask, dask.dataframe as dd
from dask_ml.wrappers import Incremental
from cbp import MLPClassifier

path, epochs = sys.argv[1], int(sys.argv[2])
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS:")
with dask.config.set(scheduler="synchronous"):
    table = dd.read_parquet(path).to_dask_array(lengths=True)
    X, y = table[:, :-1], table[:, -1].astype(int)
    if sys.argv[3] == "incremental":
        model = Incremental(MLPClassifier(hidden_layer_sizes=(64,), random_state=0),
                           shuffle_blocks=True, random_state=0)
        for _ in range(epochs):
            model.partial_fit(X, y, classes=[0, 1])
    else:  # the plain loop: one block in memory at a time
        model = MLPClassifier(hidden_layer_sizes=(64,), random_state=0)
        X_blocks, y_blocks = X.to_delayed().ravel(), y.to_delayed().ravel()
        rng = np.random.default_rng(0)
        for _ in range(epochs):
            for i in rng.permutation(len(X_blocks)):
                X_i, y_i = dask.compute(X_blocks[i], y_blocks[i])
                model.partial_fit(X_i, y_i, classes=[0, 1])
        from dask_ml.wrappers import ParallelPostFit
        model = ParallelPostFit(model)
    # accuracy block by block (Incremental.score would gather all of X)
    score = float((model.predict(X) == y).mean().compute())
print(f"{status('VmHWM:') - base:.0f} {score:.3f} {X.numblocks[0]} {X.chunks[0][0]}")
'''


EPOCHS = 20


def search_timings():
    from joblib import parallel_backend
    from sklearn.datasets import make_classification
    from sklearn.model_selection import GridSearchCV
    from sklearn.neural_network import MLPClassifier as SkMLP
    from threadpoolctl import threadpool_limits

    from cbp import MLPClassifier

    X, y = make_classification(20000, 100, n_informative=30, random_state=0)
    X = X.astype(np.float32)
    grid = {"alpha": [1e-4, 1e-2], "hidden_layer_sizes": [(64,), (128,)]}
    rows = []
    for name, cls in [("cbp", MLPClassifier), ("scikit-learn", SkMLP)]:
        times = {}
        for how in ["n_jobs=1", "threads, n_jobs=2", "loky processes, n_jobs=2"]:
            search = GridSearchCV(cls(max_iter=EPOCHS, random_state=0), grid, cv=3,
                                  n_jobs=1 if how == "n_jobs=1" else 2)
            start = time.perf_counter()
            with warnings.catch_warnings(), threadpool_limits(1):
                warnings.simplefilter("ignore")
                if how.startswith("threads"):
                    with parallel_backend("threading", n_jobs=2):
                        search.fit(X, y)
                elif how.startswith("loky"):
                    with parallel_backend("loky", n_jobs=2, inner_max_num_threads=1):
                        search.fit(X, y)
                else:
                    search.fit(X, y)
            times[how] = time.perf_counter() - start
        base = times["n_jobs=1"]
        for how, seconds in times.items():
            rows.append(f"| {name} | {how} | {seconds:.1f} s | {base / seconds:.2f}x |")
    print(f"### 4 candidates x 3 folds, 20000 x 100, {EPOCHS} epochs each, float32, "
          "BLAS 1 thread\n")
    print("| estimator | how | wall time | vs n_jobs=1 |\n|---|---|---:|---:|")
    print("\n".join(rows) + "\n")


def out_of_core(n_files=8, rows_per_file=100_000, n_features=100, epochs=2):
    import dask.dataframe as dd
    import pandas as pd

    rng = np.random.default_rng(0)
    path = tempfile.mkdtemp()
    for i in range(n_files):
        X = rng.standard_normal((rows_per_file, n_features))
        y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.float64)
        frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(n_features)]).assign(label=y)
        frame.to_parquet(os.path.join(path, f"part.{i}.parquet"))
    total = n_files * rows_per_file * (n_features + 1) * 8 / 2**20
    block = total / n_files
    print(f"### Out of core: cbp.MLPClassifier((64,)), {epochs} epochs over {n_files} "
          f"Parquet blocks of {rows_per_file} rows; dataset {total:.0f} MiB in memory "
          f"(float64), one block {block:.0f} MiB\n")
    print("| how | peak resident memory beyond start | training accuracy |\n|---|---:|---:|")
    for how in ["incremental", "loop"]:
        out = subprocess.run([sys.executable, "-c", OUT_OF_CORE, path, str(epochs), how],
                             capture_output=True, text=True, cwd=tempfile.gettempdir())
        if out.returncode:
            print(out.stderr[-2000:])
            continue
        peak, score, _, _ = out.stdout.split()[-4:]
        label = ("dask-ml Incremental(shuffle_blocks=True)" if how == "incremental"
                 else "a loop of partial_fit over X.to_delayed() blocks")
        print(f"| {label} | {peak} MiB | {score} |")
    print()


if __name__ == "__main__":
    search_timings()
    out_of_core()
