"""Many fits and data larger than memory, measured: python benchmarks/scaling.py

1. A 4-candidate x 3-fold GridSearchCV, cbp and scikit-learn, with n_jobs=1,
   with joblib's threading backend (n_jobs=2) and with loky processes
   (n_jobs=2); BLAS pinned to one thread per fit. Wall times, in one run.
2. Out of core (``--only out-of-core``): ``cbp.dask.Incremental`` trains
   cbp.MLPClassifier((64,)) for 2 epochs over a Parquet dataset read by
   ``dask.dataframe.read_parquet`` (a partition per file), then scores it.
   In a fresh process per measurement, after a warm-up on one small file:
   the peak resident memory beyond the start of training (Linux's VmHWM,
   reset through /proc/self/clear_refs), of training and of scoring
   separately, over 2 and over ``--partitions`` partitions, three ways:

   threads             Dask's threaded scheduler in the process, pyarrow's
                       and glibc's default allocators
   threads, allocators the same, with pyarrow's system memory pool and
                       MALLOC_MMAP_THRESHOLD_=65536 (both hand freed
                       buffers back at once)
   distributed         a distributed.LocalCluster of one worker process:
                       the client's peak, and the worker's beside it

Options: --partitions N (8), --rows N (rows per partition, 100000),
--epochs N (2).

Measured (AMD EPYC Zen 3, 2 vCPUs; partitions of 77 MiB): training peaks at
680 / 746 MiB over 2 / 8 partitions with the default allocators, 358 / 380
MiB with the allocator settings, 157 / 157 MiB on a distributed client.
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
import dask.dataframe as dd, pyarrow
from cbp import MLPClassifier
from cbp.dask import Incremental

path, epochs, how, n_files = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
warnings.simplefilter("ignore")

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")   # VmHWM := VmRSS
    return status("VmRSS:")

if how == "threads, allocators":
    # the Parquet reader's buffers back to the system after each partition
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
client = None
if how == "distributed":
    from distributed import Client, LocalCluster
    client = Client(LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                 dashboard_address=None))

def train(files):
    frame = dd.read_parquet(files)
    X, y = frame.drop(columns="label"), frame["label"].astype(int)
    model = Incremental(MLPClassifier(hidden_layer_sizes=(64,), random_state=0),
                        max_epochs=epochs, random_state=0)
    return model.fit(X, y, classes=[0, 1]), X, y

# warm-up on one small file: imports and thread pools that the first read starts
tiny = tempfile.mkdtemp()
n_features = len(dd.read_parquet(sorted(glob.glob(path + "/*.parquet"))[0]).columns) - 1
frame = pd.DataFrame(np.random.default_rng(0).standard_normal((1000, n_features)),
                     columns=[f"f{j}" for j in range(n_features)])
frame.assign(label=np.arange(1000) % 2.0).to_parquet(tiny + "/part.0.parquet")
model, X, y = train([tiny + "/part.0.parquet"])
model.score(X, y).compute()
del model, X, y

files = sorted(glob.glob(path + "/*.parquet"))[:n_files]
worker_base = client.run(reset_peak) if client is not None else {}
base = reset_peak()
model, X, y = train(files)
training = status("VmHWM:") - base
base = reset_peak()
score = float(model.score(X, y).compute())
scoring = status("VmHWM:") - base
worker = float("nan") if client is None else max(
    peak - worker_base[address] for address, peak in client.run(status, "VmHWM:").items())
print(f"{training:.1f} {scoring:.1f} {worker:.1f} {score:.3f}")
"""

WAYS = ["threads", "threads, allocators", "distributed"]


def write_parquet(path, n_files, rows_per_file, n_features=100, seed=0):
    """n_files Parquet files of rows_per_file rows: float64 features f0.. and a
    0/1 label. Returns one partition's size in memory (MiB)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    for i in range(n_files):
        X = rng.standard_normal((rows_per_file, n_features))
        y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.float64)
        frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(n_features)]).assign(label=y)
        frame.to_parquet(os.path.join(path, f"part.{i:03d}.parquet"))
    return rows_per_file * (n_features + 1) * 8 / 2**20


def out_of_core_peak(path, n_files, how, epochs=2):
    """Train cbp.dask.Incremental over the first n_files partitions of path
    in a fresh process. Returns (training peak, scoring peak, the worker's
    peak or NaN) in MiB beyond their start, and the training accuracy.

    how: one of WAYS (see the module's docstring)."""
    env = dict(os.environ)
    if how == "threads, allocators":
        # glibc returns every buffer of 64 KiB or more to the system when it
        # is freed; by default it raises that threshold as it goes, and then
        # keeps some partitions' buffers in its heap at times
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    out = subprocess.run([sys.executable, "-c", OUT_OF_CORE, path, str(epochs), how,
                          str(n_files)],
                         capture_output=True, text=True, cwd=tempfile.gettempdir(), env=env)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    training, scoring, worker, score = map(float, out.stdout.split()[-4:])
    return training, scoring, worker, score


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


def _option(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def out_of_core(n_files=8, rows_per_file=100_000, epochs=2):
    import dask
    import distributed
    import pandas
    import pyarrow
    import sklearn

    path = tempfile.mkdtemp()
    block = write_parquet(path, n_files, rows_per_file)
    print(f"### Out of core: cbp.dask.Incremental(MLPClassifier((64,))), {epochs} epochs "
          f"over Parquet partitions of {rows_per_file} rows x 101 float64 columns "
          f"({block:.1f} MiB a partition in memory)\n")
    print(f"dask {dask.__version__}, distributed {distributed.__version__}, pyarrow "
          f"{pyarrow.__version__}, pandas {pandas.__version__}, scikit-learn "
          f"{sklearn.__version__}\n")
    print("| how | partitions | dataset | training peak | in partitions | scoring peak "
          "| worker's peak (both) | training accuracy |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")
    for how in WAYS:
        for n in sorted({2, n_files}):
            training, scoring, worker, score = out_of_core_peak(path, n, how, epochs)
            worker = "" if worker != worker else f"{worker:.0f} MiB"
            print(f"| {how} | {n} | {n * block:.0f} MiB | {training:.0f} MiB | "
                  f"{training / block:.1f} | {scoring:.0f} MiB | {worker} | {score:.3f} |")
    print()


if __name__ == "__main__":
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    if only in (None, "search"):
        search_timings()
    if only in (None, "out-of-core"):
        out_of_core(_option("--partitions", 8), _option("--rows", 100_000),
                    _option("--epochs", 2))
