"""Benchmarks beyond dense training epochs: prediction, two threads, peak
memory, training on a sparse (text-like) matrix, batch normalisation and
dropout, and one fit on one thread against two."""

import gc
import threading
import time
import tracemalloc
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from candidates import (
    GemmBound,
    NumpyForward,
    SklearnAPICandidate,
    TorchCandidate,
    interleaved_times,
    sklearn_api_params,
)
from workloads import SOLVER_PARAMS, forward_flops, make_data, make_sparse_data


def predict_benchmark(workload, estimators, dtype, use_torch, n_calls, n_batch, repeats):
    """Latency of predict on one sample and throughput on n_batch samples.

    The models are trained for one epoch on the workload's data; prediction
    uses held-out samples from the same teacher. Single-sample calls are
    timed one by one in interleaved blocks (median over n_calls per
    candidate); the n_batch call is timed `repeats` times, interleaved.
    """
    X, y = make_data(workload, dtype=dtype)
    models = {
        name: SklearnAPICandidate(cls, workload, "sgd", X, y)
        for name, cls in estimators.items()
    }
    if use_torch:
        models["torch"] = TorchCandidate(workload, "sgd", X, y, dtype)
    for model in models.values():
        model.epoch()
    # a plain NumPy forward pass with cbp's weights, the bar for one sample
    models["NumPy forward pass"] = NumpyForward(models["cbp"].model)
    del X, y

    X_test, y_test = make_data(workload, n_samples=n_batch, dtype=dtype, seed=1)
    one = np.ascontiguousarray(X_test[:1])
    units = workload.units()
    gemm_one = GemmBound(units, 1, 1, dtype, forward_only=True)
    gemm_batch = GemmBound(units, n_batch, n_batch, dtype, forward_only=True)

    latency = {name: [] for name in [*models, "GEMM bound"]}
    blocks = 20
    for _ in range(blocks):
        for name, model in models.items():
            latency[name] += _time_each(lambda m=model: m.predict(one), n_calls // blocks)
        latency["GEMM bound"] += _time_each(gemm_one.epoch, n_calls // blocks)

    tasks = {name: (lambda m=model: m.predict(X_test)) for name, model in models.items()}
    tasks["GEMM bound"] = gemm_batch.epoch
    throughput = interleaved_times(tasks, warmup=1, repeats=repeats)

    predictions = {name: model.predict(X_test) for name, model in models.items()}
    reference = predictions.get("sklearn")
    return {
        "workload": workload.name,
        "n_batch": n_batch,
        "forward_flops": forward_flops(units, n_batch),
        "latency": latency,
        "throughput": throughput,
        "test_accuracy": {
            name: float(np.mean(p == y_test)) for name, p in predictions.items()
        },
        "agree_with_sklearn": {
            name: float(np.mean(p == reference))
            for name, p in predictions.items()
            if reference is not None
        },
    }


def _time_each(fn, count):
    """Seconds of each of count calls of fn."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def two_threads_benchmark(workload, estimators, dtype, epochs, repeats):
    """Two identical models fitted one after the other vs in two threads.

    BLAS is pinned to one thread, so any speed-up comes from the Python
    threads running at once -- which needs the GIL released while training.
    The two modes alternate, `repeats` times each after one warm-up pair.
    """
    X, y = make_data(workload, dtype=dtype)
    jobs = {name: _training_job(cls, workload, X, y, epochs) for name, cls in estimators.items()}
    jobs[REFERENCE_JOB] = _matmul_job(dtype)
    results = {}
    with threadpool_limits(limits=1):
        for name, job in jobs.items():
            tasks = {
                "sequential": lambda job=job: (job(), job()),
                "two threads": lambda job=job: _in_threads(job, job),
            }
            results[name] = interleaved_times(tasks, warmup=1, repeats=repeats)
    return {"workload": workload.name, "n_samples": len(X), "epochs": epochs,
            "times": results}


REFERENCE_JOB = "numpy.matmul 512x512 x100 (what the machine allows)"


def _training_job(estimator_class, workload, X, y, epochs):
    """A function that trains a fresh model for some epochs."""

    def train():
        model = SklearnAPICandidate(estimator_class, workload, "sgd", X, y)
        for _ in range(epochs):
            model.epoch()

    return train


def _matmul_job(dtype):
    """Large GEMMs: BLAS releases the GIL, so this shows the machine's own scaling."""
    a = np.random.default_rng(0).standard_normal((512, 512)).astype(dtype)
    out = np.empty_like(a)

    def multiply():
        for _ in range(100):
            np.matmul(a, a, out=out)

    return multiply


def _in_threads(*functions):
    """Run functions in one thread each, and wait for all of them."""
    threads = [threading.Thread(target=f) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def memory_benchmark(workload, estimators, dtype, n_samples, epochs):
    """Peak memory traced during fit, beyond X and y (already allocated).

    tracemalloc sees NumPy's allocations and Python objects; the peak
    includes the fitted model's own weights.
    """
    X, y = make_data(workload, n_samples=n_samples, dtype=dtype)
    peaks = {}
    for name, cls in estimators.items():
        model = cls(**sklearn_api_params(workload, "sgd"), max_iter=epochs)
        gc.collect()
        tracemalloc.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peaks[name] = peak
        weights = sum(a.nbytes for a in model.coefs_ + model.intercepts_)
    return {
        "workload": workload.name,
        "n_samples": n_samples,
        "epochs": epochs,
        "data_bytes": X.nbytes + y.nbytes,
        "weights_bytes": weights,
        "peak_bytes": peaks,
    }


def sparse_benchmark(workload, estimators, dtype, solvers, repeats):
    """Epochs on a CSR matrix (sparse x dense first layer), and peak memory.

    Per solver: cbp's and scikit-learn's partial_fit epochs interleaved (one
    warm-up each, then ``repeats``), and the peak memory traced during one
    epoch of a fresh fit, beyond X and y (tracemalloc: NumPy's allocations),
    next to the size of the model's parameters.
    """
    X, y = make_sparse_data(workload, dtype=dtype)
    params = dict(hidden_layer_sizes=workload.hidden, batch_size=workload.batch_size,
                  activation="relu", alpha=1e-4, shuffle=True, random_state=0)
    classes = np.unique(y)
    results = []
    for solver in solvers:
        params = dict(params, **SOLVER_PARAMS[solver])
        models = {name: cls(solver=solver, **params) for name, cls in estimators.items()}

        def epoch_of(model):
            def epoch():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.partial_fit(X, y, classes=classes)
            return epoch

        times = interleaved_times({name: epoch_of(m) for name, m in models.items()},
                                  warmup=1, repeats=repeats)
        scores = {name: float(m.score(X, y)) for name, m in models.items()}
        peaks = {}
        for name, cls in estimators.items():
            model = cls(solver=solver, max_iter=1, **params)
            gc.collect()
            tracemalloc.start()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X, y)
            _, peaks[name] = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        weights = sum(a.nbytes for a in model.coefs_ + model.intercepts_)
        results.append({"solver": solver, "times": times, "scores": scores,
                        "peak_bytes": peaks, "weights_bytes": weights})
    return {
        "workload": {**workload.__dict__},
        "dtype": np.dtype(dtype).name,
        "nnz": int(X.nnz),
        "data_bytes": int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + y.nbytes),
        "results": results,
    }


LAYER_OPTIONS = {"plain": {}, "batch_norm": {"batch_norm": True}, "dropout 0.2": {"dropout": 0.2}}


def layers_benchmark(workload, estimator_class, dtype, solvers, repeats, use_torch):
    """Epochs of cbp and of PyTorch (BatchNorm1d, Dropout(0.2)) on one
    workload, each plain, with batch normalisation and with dropout, all
    interleaved in one rotation: each option's overhead over its own plain
    network, and cbp's speed against PyTorch's."""
    X, y = make_data(workload, dtype=dtype)
    results = []
    for solver in solvers:
        entries = {}
        for option, params in LAYER_OPTIONS.items():
            entries[f"cbp {option}"] = SklearnAPICandidate(estimator_class, workload, solver,
                                                           X, y, **params)
            if use_torch:
                entries[f"torch {option}"] = TorchCandidate(workload, solver, X, y, dtype,
                                                            **params)
        times = interleaved_times({name: c.epoch for name, c in entries.items()},
                                  warmup=1, repeats=repeats)
        scores = {name: c.score() for name, c in entries.items()}
        results.append({"solver": solver, "times": times, "scores": scores})
    return {"workload": workload.name, "n_samples": len(X), "results": results}


def one_fit_two_threads_benchmark(workloads, estimators, dtype, solver, repeats,
                                  use_torch):
    """Epochs of one fit on one thread and on two (BLAS, OpenMP and torch's
    threads alike), for cbp, scikit-learn and PyTorch, all interleaved in one
    rotation per workload: how much of a second core one fit uses.

    "cbp blocks": cbp with ``block_rows`` = half the batch (two blocks a
    batch, on the OpenMP threads, BLAS on one thread inside them); its
    speed-up is taken against plain cbp on one thread, the default a user
    would otherwise run."""
    results = []
    for workload in workloads:
        X, y = make_data(workload, dtype=dtype)
        tasks = {}
        for threads in (1, 2):
            for name, cls in estimators.items():
                candidate = SklearnAPICandidate(cls, workload, solver, X, y)
                tasks[f"{name}, {threads} thread(s)"] = _on_threads(candidate.epoch, threads)
            if "cbp" in estimators:
                candidate = SklearnAPICandidate(estimators["cbp"], workload, solver, X, y,
                                                block_rows=-(-workload.batch_size // 2))
                tasks[f"cbp blocks, {threads} thread(s)"] = _on_threads(candidate.epoch,
                                                                        threads)
            if use_torch:
                candidate = TorchCandidate(workload, solver, X, y, dtype)
                tasks[f"torch, {threads} thread(s)"] = _on_threads(candidate.epoch, threads,
                                                                  torch_too=True)
        times = interleaved_times(tasks, warmup=1, repeats=repeats)
        results.append({"workload": workload.name, "n_samples": len(X), "times": times})
    return {"solver": solver, "results": results}


def _on_threads(epoch, threads, torch_too=False):
    """epoch() with BLAS and OpenMP (and torch) limited to ``threads``."""

    def run():
        if torch_too:
            import torch

            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
        try:
            with threadpool_limits(limits=threads):
                epoch()
        finally:
            if torch_too:
                torch.set_num_threads(previous)

    return run
