"""Many fits and data larger than memory, measured: python benchmarks/scaling.py

1. A 4-candidate x 3-fold GridSearchCV, cbp and scikit-learn, with n_jobs=1,
   with joblib's threading backend (n_jobs=2) and with loky processes
   (n_jobs=2); BLAS pinned to one thread per fit. Wall times, in one run.
2. Out of core: dask-ml's Incremental trains cbp over a Parquet dataset,
   2 epochs, with the user guide's recipe (Scaling out) (row counts from the Parquet metadata,
   dask's synchronous scheduler, pyarrow's system memory pool, a fixed glibc
   mmap threshold) and without it;
   the peak resident memory of each (a fresh process, after a warm-up on one
   small file) over 2 and over 8 blocks.

Measured (AMD EPYC Zen 5, 2 vCPUs; blocks of 77 MiB): the recipe peaks at
355 MiB over 2 blocks and 356 MiB over 8 (about 4.6 blocks' worth whatever
the dataset's size); without it 1290 and 1319 MiB.
"""

import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

OUT_OF_CORE = r"""
import glob, sys, tempfile, warnings
import numpy as np, pandas as pd
import dask, dask.dataframe as dd, pyarrow, pyarrow.parquet as pq
from dask_ml.wrappers import Incremental
from cbp import MLPClassifier

path, epochs, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
warnings.simplefilter("ignore")

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

if how == "recipe":
    # the Parquet reader's buffers back to the system after each block
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())

def train(files):
    frame = dd.read_parquet(files)
    if how == "recipe":   # row counts from the files' metadata: nothing is read
        lengths = [pq.ParquetFile(f).metadata.num_rows for f in files]
    else:                 # reads every block once to count its rows
        lengths = True
    table = frame.to_dask_array(lengths=lengths)
    X, y = table[:, :-1], table[:, -1].astype(int)
    # one block at a time: the threaded scheduler reads blocks ahead of the fit
    scheduler = "synchronous" if how == "recipe" else "threads"
    with dask.config.set(scheduler=scheduler):
        model = Incremental(MLPClassifier(hidden_layer_sizes=(64,), random_state=0),
                            shuffle_blocks=True, random_state=0)
        for _ in range(epochs):
            model.partial_fit(X, y, classes=[0, 1])
        # accuracy block by block (Incremental.score would gather all of X)
        return float((model.predict(X) == y).mean().compute())

# warm-up on one small file: imports and thread pools that the first read starts
tiny = tempfile.mkdtemp()
n_features = pq.ParquetFile(sorted(glob.glob(path + "/*.parquet"))[0]).metadata.num_columns - 1
frame = pd.DataFrame(np.random.default_rng(0).standard_normal((1000, n_features)),
                     columns=[f"f{j}" for j in range(n_features)])
frame.assign(label=np.arange(1000) % 2.0).to_parquet(tiny + "/part.0.parquet")
train([tiny + "/part.0.parquet"])

files = sorted(glob.glob(path + "/*.parquet"))[:int(sys.argv[4])]
base = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")   # VmHWM := VmRSS
score = train(files)
print(f"{status('VmHWM:') - base:.1f} {score:.3f}")
"""


def write_parquet(path, n_files, rows_per_file, n_features=100, seed=0):
    """n_files Parquet files of rows_per_file rows: float64 features f0.. and a
    0/1 label. Returns one block's size in memory (MiB)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    for i in range(n_files):
        X = rng.standard_normal((rows_per_file, n_features))
        y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.float64)
        frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(n_features)]).assign(label=y)
        frame.to_parquet(os.path.join(path, f"part.{i:03d}.parquet"))
    return rows_per_file * (n_features + 1) * 8 / 2**20


def out_of_core_peak(path, n_files, how, epochs=2):
    """Peak resident memory (MiB) beyond its start of a fresh process that
    trains over the first n_files blocks of path, and its training accuracy.

    how: "recipe" (the user guide's) or "naive" (to_dask_array(lengths=True),
    dask's threaded scheduler, pyarrow's default memory pool, glibc's
    default malloc settings)."""
    env = dict(os.environ)
    if how == "recipe":
        # glibc returns every buffer of 64 KiB or more to the system when it
        # is freed; by default it raises that threshold as it goes, and then
        # keeps a block's buffers in its heap at times (peaks of 47 or 55-63
        # MiB, from run to run, over the same 16 blocks of 7.7 MiB)
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    out = subprocess.run([sys.executable, "-c", OUT_OF_CORE, path, str(epochs), how,
                          str(n_files)],
                         capture_output=True, text=True, cwd=tempfile.gettempdir(), env=env)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    peak, score = out.stdout.split()[-2:]
    return float(peak), float(score)


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


def out_of_core(n_files=8, rows_per_file=100_000, epochs=2):
    path = tempfile.mkdtemp()
    block = write_parquet(path, n_files, rows_per_file)
    print(f"### Out of core: cbp.MLPClassifier((64,)), dask-ml Incremental, {epochs} "
          f"epochs over Parquet blocks of {rows_per_file} rows x 101 float64 columns "
          f"({block:.0f} MiB a block in memory)\n")
    print("| how | blocks | dataset | peak memory beyond start | in blocks | training accuracy |\n"
          "|---|---:|---:|---:|---:|---:|")
    for how in ["naive", "recipe"]:
        for n in sorted({2, n_files}):
            peak, score = out_of_core_peak(path, n, how, epochs)
            print(f"| {how} | {n} | {n * block:.0f} MiB | {peak:.0f} MiB | {peak / block:.1f} "
                  f"| {score:.3f} |")
    print()


if __name__ == "__main__":
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    if only in (None, "search"):
        search_timings()
    if only in (None, "out-of-core"):
        out_of_core()
