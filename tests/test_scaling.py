"""Past one process: searches on dask, ray and threads; data larger than memory.

Each search must give what the same search gives with n_jobs=1 (cbp is
deterministic for a fixed random_state). Clusters start in-process on this
machine and stop after the module. Skipped without the packages (the
``scale`` extra).
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_validate

import cbp
from cbp import MLPClassifier

X, Y = make_classification(300, 8, n_informative=5, random_state=0)
GRID = {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(4,), (8,)]}


def _search(n_jobs, kind="grid"):
    estimator = MLPClassifier(max_iter=15, random_state=0)
    if kind == "grid":
        search = GridSearchCV(estimator, GRID, cv=3, n_jobs=n_jobs)
    else:
        search = RandomizedSearchCV(estimator, GRID, n_iter=3, cv=3, n_jobs=n_jobs,
                                    random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return search.fit(X, Y)


def _assert_same_search(search, alone):
    assert search.best_params_ == alone.best_params_
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  alone.cv_results_["mean_test_score"])
    for a, b in zip(search.best_estimator_.coefs_, alone.best_estimator_.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def alone():
    return {kind: _search(1, kind) for kind in ("grid", "random")}


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def ray_backend(tmp_path_factory):
    ray = pytest.importorskip("ray")
    import os

    from ray.util.joblib import register_ray

    # Ray's workers start in the driver's working directory: in a cbp
    # checkout, the source folder cbp/ would shadow the installed package
    # there, so Ray is started from elsewhere (the user guide, "Scaling out").
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray"))
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        register_ray()
        yield
    finally:
        ray.shutdown()
        os.chdir(here)


@pytest.mark.parametrize("kind", ["grid", "random"])
def test_search_on_a_dask_cluster_equals_the_search_alone(kind, alone, dask_client):
    import joblib

    with joblib.parallel_backend("dask"):
        _assert_same_search(_search(-1, kind), alone[kind])


def test_cross_validate_on_a_dask_cluster_equals_it_alone(dask_client):
    import joblib

    model = MLPClassifier(max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = cross_validate(model, X, Y, cv=3)["test_score"]
        with joblib.parallel_backend("dask"):
            got = cross_validate(model, X, Y, cv=3, n_jobs=-1)["test_score"]
    np.testing.assert_array_equal(got, expected)


def test_search_on_ray_equals_the_search_alone(alone, ray_backend):
    import joblib

    with joblib.parallel_backend("ray"):
        _assert_same_search(_search(-1, "grid"), alone["grid"])


def test_search_in_threads_equals_the_search_alone(alone):
    import joblib

    with joblib.parallel_backend("threading", n_jobs=2):
        _assert_same_search(_search(2, "grid"), alone["grid"])


# ---------------------------------------------------------------------------
# Data larger than memory: dask-ml over the blocks of a Parquet dataset
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def parquet_blocks(tmp_path_factory):
    """A Parquet dataset of 6 partitions, read lazily as (X, y) dask arrays."""
    pytest.importorskip("pyarrow")
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    path = tmp_path_factory.mktemp("parquet")
    X_all, y_all = make_classification(1200, 8, n_informative=5, random_state=1)
    frame = pd.DataFrame(X_all, columns=[f"f{i}" for i in range(8)]).assign(label=y_all)
    dd.from_pandas(frame, npartitions=6).to_parquet(path)
    # one array of every column, then X and y as column slices: the same row
    # blocks (reading a projection of the columns lets dask merge small files)
    table = dd.read_parquet(path).to_dask_array(lengths=True)
    X_dask, y_dask = table[:, :8], table[:, 8].astype(int)
    assert X_dask.numblocks == (6, 1) and y_dask.numblocks == (6,)
    return X_dask, y_dask, X_all, y_all


def test_incremental_trains_epoch_by_epoch_over_the_blocks_as_partial_fit(parquet_blocks):
    """dask-ml's Incremental feeds the blocks, in order, to partial_fit: the
    same weights as doing it by hand."""
    pytest.importorskip("dask_ml")
    from dask_ml.wrappers import Incremental

    X_dask, y_dask, X_all, y_all = parquet_blocks
    params = dict(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0)
    wrapped = Incremental(MLPClassifier(**params), shuffle_blocks=False)
    by_hand = MLPClassifier(**params)
    for epoch in range(3):
        wrapped.partial_fit(X_dask, y_dask, classes=[0, 1])
        for X_block, y_block in zip(X_dask.to_delayed().ravel(), y_dask.to_delayed().ravel()):
            by_hand.partial_fit(X_block.compute(), y_block.compute(), classes=[0, 1])
    for a, b in zip(wrapped.estimator_.coefs_, by_hand.coefs_):
        np.testing.assert_array_equal(a, b)
    assert wrapped.score(X_dask, y_dask) == by_hand.score(X_all, y_all) > 0.6


def test_incremental_shuffles_the_block_order_each_epoch_when_asked(parquet_blocks):
    pytest.importorskip("dask_ml")
    from dask_ml.wrappers import Incremental

    X_dask, y_dask, _, _ = parquet_blocks
    ordered = Incremental(MLPClassifier(hidden_layer_sizes=(8,), random_state=0),
                          shuffle_blocks=False)
    shuffled = Incremental(MLPClassifier(hidden_layer_sizes=(8,), random_state=0),
                           shuffle_blocks=True, random_state=3)
    for _ in range(2):
        ordered.partial_fit(X_dask, y_dask, classes=[0, 1])
        shuffled.partial_fit(X_dask, y_dask, classes=[0, 1])
    assert not np.array_equal(ordered.estimator_.coefs_[0], shuffled.estimator_.coefs_[0])


def test_parallel_post_fit_predicts_block_by_block_as_the_model(parquet_blocks):
    pytest.importorskip("dask_ml")
    from dask_ml.wrappers import ParallelPostFit

    X_dask, _, X_all, y_all = parquet_blocks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(
            X_all, y_all)
    wrapped = ParallelPostFit(model)
    np.testing.assert_array_equal(wrapped.predict(X_dask).compute(), model.predict(X_all))
    np.testing.assert_allclose(wrapped.predict_proba(X_dask).compute(),
                               model.predict_proba(X_all), rtol=1e-12)


def _scaling_benchmark():
    """benchmarks/scaling.py, whose out-of-core measurement this test runs."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "scaling.py"
    spec = importlib.util.spec_from_file_location("cbp_scaling_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_out_of_core_memory_does_not_grow_with_the_number_of_blocks(tmp_path):
    """The user guide's recipe (Scaling out: row counts from the Parquet
    metadata, dask's synchronous scheduler, pyarrow's system memory pool, a fixed glibc mmap
    threshold) trains 2 epochs over
    16 blocks with the same peak memory as over 2 blocks: a few blocks' worth,
    not the dataset. (Measured in a fresh process: Linux's VmHWM.)"""
    for module in ("pyarrow", "dask.dataframe", "dask_ml", "pandas"):
        pytest.importorskip(module)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak memory")
    benchmark = _scaling_benchmark()
    block = benchmark.write_parquet(str(tmp_path), n_files=16, rows_per_file=10_000)
    few, few_score = benchmark.out_of_core_peak(str(tmp_path), 2, "recipe")
    many, many_score = benchmark.out_of_core_peak(str(tmp_path), 16, "recipe")
    assert many - few < block, (
        f"peak memory grew from {few:.0f} MiB (2 blocks) to {many:.0f} MiB (16 blocks "
        f"of {block:.1f} MiB)")
    assert many < 0.5 * 16 * block, (
        f"peak memory {many:.0f} MiB over a {16 * block:.0f} MiB dataset")
    assert many_score > 0.9
