"""Past one process: searches on dask, ray and threads; data larger than memory.

Each search must give what the same search gives with n_jobs=1 (cbp is
deterministic for a fixed random_state). ``cbp.dask.Incremental`` trains
over the partitions of Dask collections: the same weights as ``partial_fit``
by hand in the same orders, predictions equal to the model's in memory,
bounded memory. Clusters start in-process on this machine and stop after the
module: a ``distributed.LocalCluster`` with in-process workers
(``processes=False``: two worker processes would each import cbp, pandas and
dask again on two shared cores, for every test), and one test on a worker
process, where the model and the partitions are pickled. dask,
distributed, pyarrow and ray come with the ``scale`` extra: without it the
module skips, naming the package (tests/optional.py); installed, a package
that fails to import fails the module, and CI, which installs them, fails on
the skip.
"""

import contextlib
import copy
import doctest
import os
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_validate

import cbp
from cbp import MLPClassifier, MLPRegressor
from optional import optional

dask = optional("dask")
da = optional("dask.array")
dd = optional("dask.dataframe")
distributed = optional("distributed")
optional("pyarrow")  # (read_parquet's engine)
Incremental = optional("cbp.dask").Incremental  # (cbp.dask imports dask)

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
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def ray_backend(tmp_path_factory):
    ray = optional("ray")  # (here: ray's import takes seconds)
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
    with joblib.parallel_backend("dask"):
        _assert_same_search(_search(-1, kind), alone[kind])


def test_cross_validate_on_a_dask_cluster_equals_it_alone(dask_client):
    model = MLPClassifier(max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = cross_validate(model, X, Y, cv=3)["test_score"]
        with joblib.parallel_backend("dask"):
            got = cross_validate(model, X, Y, cv=3, n_jobs=-1)["test_score"]
    np.testing.assert_array_equal(got, expected)


def test_search_on_ray_equals_the_search_alone(alone, ray_backend):
    with joblib.parallel_backend("ray"):
        _assert_same_search(_search(-1, "grid"), alone["grid"])


def test_search_in_threads_equals_the_search_alone(alone):
    with joblib.parallel_backend("threading", n_jobs=2):
        _assert_same_search(_search(2, "grid"), alone["grid"])


# ---------------------------------------------------------------------------
# Data larger than memory: cbp.dask.Incremental over a Dask collection's
# partitions
# ---------------------------------------------------------------------------

FEATURES = [f"f{i}" for i in range(8)]
N_PARTITIONS = 6


@contextlib.contextmanager
def _quiet():
    """ConvergenceWarning off: a few epochs do not converge."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A Parquet dataset of 6 files read lazily as one Dask DataFrame (a
    partition per file), X its feature columns and y its label: with
    ``frame`` (in memory) and each partition's rows."""
    path = tmp_path_factory.mktemp("parquet")
    X_all, y_all = make_classification(1200, 8, n_informative=5, random_state=1)
    frame = pd.DataFrame(X_all, columns=FEATURES).assign(label=y_all)
    # partitions of unequal sizes (the estimator reshuffles the rows of each)
    bounds = [0, 150, 400, 600, 800, 1050, 1200]
    for i in range(N_PARTITIONS):
        frame.iloc[bounds[i]:bounds[i + 1]].to_parquet(path / f"part.{i}.parquet")
    lazy = dd.read_parquet(str(path))
    X, y = lazy[FEATURES], lazy["label"]
    assert X.npartitions == y.npartitions == N_PARTITIONS
    return X, y, frame, np.diff(bounds)


def _in_memory_partitions(frame, lengths):
    """The partitions of the table, cut from its in-memory copy."""
    starts = np.concatenate([[0], np.cumsum(lengths)])
    return [frame.iloc[a:b] for a, b in zip(starts[:-1], starts[1:])]


def _orders(seed, n, epochs):
    """The documented orders: each epoch, the next permutation by
    check_random_state(seed)."""
    rng = np.random.RandomState(seed)
    return [rng.permutation(n) for _ in range(epochs)]


def _assert_same_weights(a, b):
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(x, y)


MLP = dict(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0)


def test_fit_equals_partial_fit_by_hand_in_the_shuffled_order(table, dask_client):
    """On the cluster, over a Parquet table: the weights of partial_fit by
    hand on the partitions in the orders check_random_state(seed) draws."""
    X, y, frame, lengths = table
    with _quiet():
        model = Incremental(MLPClassifier(**MLP), max_epochs=3, random_state=7).fit(X, y)
    by_hand = MLPClassifier(**MLP)
    orders = _orders(7, N_PARTITIONS, 3)
    parts = _in_memory_partitions(frame, lengths)
    losses = []
    for order in orders:
        total = 0.0
        for i in order:
            by_hand.partial_fit(parts[i][FEATURES], parts[i]["label"], classes=[0, 1])
            total += by_hand.loss_ * lengths[i]
        losses.append(total / lengths.sum())
    _assert_same_weights(model.estimator_, by_hand)
    assert model.n_epochs_ == 3 and model.estimator_.t_ == by_hand.t_ == 3 * 1200
    for got, expected in zip(model.partition_orders_, orders, strict=True):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(model.loss_curve_, losses, rtol=1e-12)
    assert list(model.estimator_.feature_names_in_) == FEATURES
    np.testing.assert_array_equal(model.classes_, [0, 1])


def test_regressor_over_arrays_with_weights_equals_partial_fit_by_hand(dask_client):
    """A Dask Array split across columns too (rechunked to whole rows), two
    outputs, sample weights: the same weights as by hand."""
    X_all, y_all = make_regression(900, 6, n_targets=2, noise=0.1, random_state=0)
    w_all = np.random.default_rng(0).uniform(0.5, 2, 900)
    X = da.from_array(X_all, chunks=(200, 3))
    y, w = da.from_array(y_all, chunks=(200, 2)), da.from_array(w_all, chunks=200)
    with _quiet():
        model = Incremental(MLPRegressor(**MLP), max_epochs=2, random_state=3).fit(
            X, y, sample_weight=w)
    by_hand = MLPRegressor(**MLP)
    for order in _orders(3, 5, 2):
        for i in order:
            rows = slice(200 * i, 200 * (i + 1))
            by_hand.partial_fit(X_all[rows], y_all[rows], sample_weight=w_all[rows])
    _assert_same_weights(model.estimator_, by_hand)
    assert is_regressor(model) and not is_classifier(model)


def test_the_seed_fixes_the_orders_and_another_seed_changes_them(table, dask_client):
    X, y, _, _ = table
    with _quiet():
        fits = [Incremental(MLPClassifier(**MLP), max_epochs=2, random_state=seed).fit(X, y)
                for seed in (1, 1, 2)]
        in_order = Incremental(MLPClassifier(**MLP), max_epochs=2, shuffle=False).fit(X, y)
    same, again, other = fits
    np.testing.assert_array_equal(same.partition_orders_, again.partition_orders_)
    _assert_same_weights(same.estimator_, again.estimator_)
    assert not np.array_equal(same.partition_orders_, other.partition_orders_)
    # each epoch draws a new order
    assert not np.array_equal(*same.partition_orders_)
    assert not np.array_equal(same.estimator_.coefs_[0], other.estimator_.coefs_[0])
    np.testing.assert_array_equal(in_order.partition_orders_,
                                  [np.arange(N_PARTITIONS)] * 2)


def test_fit_for_n_epochs_equals_n_calls_of_partial_fit(table, dask_client):
    """partial_fit is one epoch, continuing fit's stream of orders."""
    X, y, _, _ = table
    wrapper = Incremental(MLPClassifier(**MLP, n_iter_no_change=np.inf), max_epochs=3,
                          random_state=5)
    with _quiet():
        fitted = clone(wrapper).fit(X, y)
    stepped = clone(wrapper)
    for _ in range(3):
        stepped.partial_fit(X, y)
    _assert_same_weights(fitted.estimator_, stepped.estimator_)
    np.testing.assert_array_equal(fitted.partition_orders_, stepped.partition_orders_)
    assert fitted.loss_curve_ == stepped.loss_curve_ and stepped.n_epochs_ == 3


@pytest.mark.parametrize("validation_partition", [-1, 2])
def test_early_stopping_holds_out_a_partition_and_keeps_the_best_epoch(
        table, dask_client, validation_partition):
    """A tol no epoch can beat: the score counts as no improvement from the
    second epoch on, and more than n_iter_no_change = 2 of them stop after
    4 epochs (scikit-learn's rule). The model kept is the best epoch's."""
    X, y, frame, lengths = table
    mlp = MLPClassifier(**dict(MLP, learning_rate_init=0.05), tol=1e9, n_iter_no_change=2)
    model = Incremental(mlp, max_epochs=50, early_stopping=True, random_state=0,
                        validation_partition=validation_partition).fit(X, y)
    held_out = validation_partition % N_PARTITIONS
    assert model.n_epochs_ == 4 == len(model.validation_scores_)
    for order in model.partition_orders_:
        assert sorted(order) == sorted(set(range(N_PARTITIONS)) - {held_out})
    # by hand: train over the other partitions, keep a copy at the best score
    parts = _in_memory_partitions(frame, lengths)
    by_hand, best, scores = MLPClassifier(**mlp.get_params()), None, []
    for order in model.partition_orders_:
        for i in order:
            by_hand.partial_fit(parts[i][FEATURES], parts[i]["label"], classes=[0, 1])
        scores.append(by_hand.score(parts[held_out][FEATURES], parts[held_out]["label"]))
        if best is None or scores[-1] > max(scores[:-1]):
            best = copy.deepcopy(by_hand)
    assert model.validation_scores_ == scores
    assert model.best_validation_score_ == max(scores)
    _assert_same_weights(model.estimator_, best)
    assert model.best_loss_ is None


def test_the_training_loss_rule_stops_and_max_epochs_warns(table, dask_client):
    """Without early stopping, the estimator's tol and n_iter_no_change on
    each epoch's mean loss; none met within max_epochs: ConvergenceWarning."""
    X, y, _, _ = table
    stopped = Incremental(MLPClassifier(**MLP, tol=1e9, n_iter_no_change=1),
                          max_epochs=50, random_state=0).fit(X, y)
    assert stopped.n_epochs_ == 3
    assert stopped.best_loss_ == min(stopped.loss_curve_)
    with pytest.warns(ConvergenceWarning, match="Maximum epochs"):
        Incremental(MLPClassifier(**MLP), max_epochs=2).fit(X, y)


def test_classes_from_the_data_or_given(dask_client):
    """String labels of a DataFrame: y's distinct values by Dask, or the
    classes given (more than the data holds)."""
    X_all, y_all = make_classification(600, 6, n_informative=4, n_classes=3,
                                       random_state=0)
    labels = np.array(["low", "mid", "top"])[y_all]
    frame = dd.from_pandas(pd.DataFrame(X_all).assign(label=labels), npartitions=3)
    X, y = frame.drop(columns="label"), frame["label"]
    with _quiet():
        found = Incremental(MLPClassifier(**MLP), max_epochs=1).fit(X, y)
        given = Incremental(MLPClassifier(**MLP), max_epochs=1).fit(
            X, y, classes=["low", "mid", "top", "zzz"])
    np.testing.assert_array_equal(found.classes_, ["low", "mid", "top"])
    np.testing.assert_array_equal(given.classes_, ["low", "mid", "top", "zzz"])
    assert given.predict_proba(X).compute().shape == (600, 4)
    assert set(found.predict(X).compute()) <= {"low", "mid", "top"}


def test_prediction_through_dask_equals_the_model_in_memory(table, dask_client):
    """Lazy Dask Arrays; computed, the model's own predictions partition by
    partition (bitwise), and the accuracy of the whole."""
    X, y, frame, lengths = table
    with _quiet():
        model = Incremental(MLPClassifier(**MLP), max_epochs=3, random_state=0).fit(X, y)
    predicted, proba, score = model.predict(X), model.predict_proba(X), model.score(X, y)
    for lazy in (predicted, proba, score):
        assert isinstance(lazy, da.Array)
    assert np.isnan(predicted.shape[0])  # (a DataFrame's lengths: unknown)
    parts = _in_memory_partitions(frame, lengths)
    expected = np.concatenate([model.estimator_.predict(p[FEATURES]) for p in parts])
    expected_proba = np.concatenate([model.estimator_.predict_proba(p[FEATURES])
                                     for p in parts])
    np.testing.assert_array_equal(predicted.compute(), expected)
    np.testing.assert_array_equal(proba.compute(), expected_proba)
    np.testing.assert_allclose(expected_proba,
                               model.estimator_.predict_proba(frame[FEATURES]), rtol=1e-12)
    assert score.compute() == accuracy_score(frame["label"], expected) > 0.6
    # the collections hold a copy of the model: training on does not change them
    model.partial_fit(X, y)
    assert not np.array_equal(model.predict_proba(X).compute(), expected_proba)
    np.testing.assert_array_equal(proba.compute(), expected_proba)


def test_regressor_score_is_r2_over_all_partitions(dask_client):
    """R^2 from each block's sums equals r2_score on the whole (two outputs,
    averaged), and a zero-row block is predicted as zero rows."""
    X_all, y_all = make_regression(700, 5, n_targets=2, noise=5.0, random_state=1)
    y_all = y_all + [1000.0, -3.0]  # (a mean far from zero: the sums stay exact)
    rows = (150, 150, 0, 200, 200)
    X, y = da.from_array(X_all, chunks=(rows, 5)), da.from_array(y_all, chunks=(rows, 2))
    with _quiet():
        model = Incremental(MLPRegressor(**MLP), max_epochs=3).fit(X, y)
    predicted = model.predict(X)
    assert predicted.chunks == (X.chunks[0], (2,))
    expected = model.estimator_.predict(X_all)
    np.testing.assert_allclose(predicted.compute(), expected, rtol=1e-12)
    np.testing.assert_allclose(model.score(X, y).compute(), r2_score(y_all, expected),
                               rtol=1e-12)


def test_a_table_encoded_partition_by_partition_trains(dask_client):
    """The user guide's recipe for a table out of core: TableEncoder fitted
    on a sample in memory, each partition encoded through Dask, the network
    trained by Incremental with early stopping."""
    rng = np.random.default_rng(0)
    n = 2000
    table = pd.DataFrame({"age": rng.normal(40, 10, n),
                          "city": rng.choice(["Paris", "Lyon", "Nice", None], n)})
    table.loc[rng.random(n) < 0.1, "age"] = np.nan
    label = ((table["age"].fillna(40) > 40) ^ (table["city"] == "Lyon")).astype(int)
    frame = dd.from_pandas(table.assign(label=label), npartitions=5)
    X, y = frame.drop(columns="label"), frame["label"]
    encoder = cbp.TableEncoder(n_bins=8).fit(X.sample(frac=0.2, random_state=0).compute())
    encoded = X.map_partitions(encoder.transform,
                               meta=np.empty((0, encoder.n_features_out_), np.float32))
    network = MLPClassifier(hidden_layer_sizes=(16,), ensemble_size=4, solver="adamw",
                            learning_rate_init=0.01, random_state=0)
    with warnings.catch_warnings():
        # (ConvergenceWarning, and none from Dask: a DataFrame and an Array
        # computed in one call would make Dask warn)
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = Incremental(network, max_epochs=15, early_stopping=True,
                            random_state=0).fit(encoded, y)
    assert model.estimator_.coefs_[0].dtype == np.float32
    assert model.score(encoded, y).compute() > 0.9


@pytest.fixture(scope="module")
def small():
    X_all, y_all = make_classification(200, 4, random_state=0)
    return da.from_array(X_all, chunks=50), da.from_array(y_all, chunks=50), X_all, y_all


@pytest.mark.parametrize("case, error, match", [
    ("numpy X", TypeError, "X must be a Dask DataFrame, Series or Array.*not numpy.ndarray"),
    ("pandas y", TypeError, "y must be a Dask .*not pandas.Series"),
    ("1-d X", ValueError, "X must be a Dask Array of 2 dimension"),
    ("partitions differ", ValueError, "X has 4 partitions and y 5"),
    ("lengths differ", ValueError, "Partition 0 of X has 50 rows and of y 40"),
    ("unknown lengths differ", ValueError, "Partition 0 of X has 50 rows and of y 51"),
    ("no partial_fit", TypeError, "has no partial_fit"),
    ("estimator's early stopping", ValueError, "early_stopping=True: its partial_fit"),
    ("partial_fit with early stopping", ValueError, "partial_fit does not support"),
    ("validation partition", ValueError, "validation_partition=4 is not the index"),
    ("one partition", ValueError, "needs 2 or more partitions"),
    ("max_epochs", ValueError, "max_epochs must be an int >= 1"),
])
def test_refusals(small, case, error, match):
    X, y, X_all, y_all = small
    model = Incremental(MLPClassifier(hidden_layer_sizes=(4,)), max_epochs=1, shuffle=False)
    call = model.fit
    if case == "numpy X":
        X = X_all
    elif case == "pandas y":
        y = pd.Series(y_all)
    elif case == "1-d X":
        X = X[:, 0]
    elif case == "partitions differ":
        y = y.rechunk(40)
    elif case == "lengths differ":
        y = y.rechunk(((40, 60, 50, 50),))
    elif case == "unknown lengths differ":
        # a DataFrame's lengths are known only once a partition is computed
        X = dd.from_pandas(pd.DataFrame(X_all), npartitions=4)
        y = dd.from_pandas(pd.Series(y_all), npartitions=4).repartition(
            divisions=[0, 51, 100, 150, 199])
    elif case == "no partial_fit":
        model.set_params(estimator__solver="lbfgs")
    elif case == "estimator's early stopping":
        model.set_params(estimator__early_stopping=True)
    elif case == "partial_fit with early stopping":
        model.set_params(early_stopping=True)
        call = model.partial_fit
    elif case == "validation partition":
        model.set_params(early_stopping=True, validation_partition=4)
    elif case == "one partition":
        model.set_params(early_stopping=True)
        X, y = X.rechunk(200), y.rechunk(200)
    elif case == "max_epochs":
        model.set_params(max_epochs=0)
    with pytest.raises(error, match=match):
        call(X, y)


def test_prediction_before_fit_and_score_of_neither_kind_refused(small):
    X, y, _, _ = small
    with pytest.raises(NotFittedError):
        Incremental(MLPClassifier()).predict(X)
    from sklearn.cluster import MiniBatchKMeans

    model = Incremental(MiniBatchKMeans(2, n_init=1, random_state=0), max_epochs=1).fit(X, y)
    assert model.predict(X).compute().shape == (200,)
    with pytest.raises(TypeError, match="neither"):
        model.score(X, y)


def test_a_scikit_learn_meta_estimator(small):
    """get_params reaches the estimator's, clone copies the unfitted
    wrapper, the tags follow the estimator, a fitted wrapper pickles."""
    X, y, X_all, _ = small
    model = Incremental(MLPClassifier(alpha=0.5, **MLP), max_epochs=2, random_state=0)
    params = model.get_params()
    assert params["estimator__alpha"] == 0.5 and params["max_epochs"] == 2
    copied = clone(model).set_params(estimator__alpha=0.1)
    assert copied.estimator.alpha == 0.1 and model.estimator.alpha == 0.5
    assert is_classifier(model)
    with _quiet(), dask.config.set(scheduler="synchronous"):
        model.fit(X, y)
        assert not hasattr(model.estimator, "coefs_")  # (fit trained a clone)
        restored = pickle.loads(pickle.dumps(model))
        np.testing.assert_array_equal(restored.predict(X).compute(),
                                      model.estimator_.predict(X_all))
    assert restored.n_features_in_ == 4


def test_training_on_a_worker_process_equals_training_in_process():
    """On a worker process (the model and the partitions pickled), the same
    weights and predictions as with Dask's synchronous scheduler."""
    X_all, y_all = make_classification(600, 6, random_state=0)
    X, y = da.from_array(X_all, chunks=150), da.from_array(y_all, chunks=150)
    wrapper = Incremental(MLPClassifier(**MLP), max_epochs=2, random_state=0)
    with _quiet(), dask.config.set(scheduler="synchronous"):
        here = clone(wrapper).fit(X, y)
    # (":0": any free port for its HTTP server; the module's cluster has 8787)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    try:
        with distributed.Client(cluster), _quiet():
            there = clone(wrapper).fit(X, y)
            proba = there.predict_proba(X).compute()
    finally:
        cluster.close()
    _assert_same_weights(here.estimator_, there.estimator_)
    np.testing.assert_array_equal(proba, here.estimator_.predict_proba(X_all))


def test_import_cbp_imports_no_dask():
    code = "import sys, cbp; assert not any(m.startswith('dask') for m in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.abspath(__file__)))
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_module_docstring_examples_run():
    """cbp.dask's examples (cbp's doctests cover cbp.__all__, not this module)."""
    with _quiet(), dask.config.set(scheduler="synchronous"):
        results = doctest.testmod(cbp.dask, optionflags=doctest.ELLIPSIS
                                  | doctest.NORMALIZE_WHITESPACE)
    assert results.attempted >= 5 and results.failed == 0


def _scaling_benchmark():
    """benchmarks/scaling.py, whose out-of-core measurement this test runs."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "scaling.py"
    spec = importlib.util.spec_from_file_location("cbp_scaling_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_out_of_core_memory_does_not_grow_with_the_number_of_partitions(tmp_path):
    """Incremental trains 2 epochs over 16 Parquet partitions (a table 16
    times a partition's size) with the same peak memory as over 2: a few
    partitions' worth, not the table. In a fresh process (Linux's VmHWM),
    Dask's threaded scheduler, with the allocator settings of the user
    guide's "Scaling out" (pyarrow's system pool, a fixed glibc mmap
    threshold), which make the peak the same from run to run."""
    if not sys.platform.startswith("linux"):
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak memory")
    benchmark = _scaling_benchmark()
    # (partitions of 15 MiB: the peak varies by a few MiB from run to run)
    block = benchmark.write_parquet(str(tmp_path), n_files=16, rows_per_file=20_000)
    few, _, _, _ = benchmark.out_of_core_peak(str(tmp_path), 2, "threads, allocators")
    many, _, _, many_score = benchmark.out_of_core_peak(str(tmp_path), 16,
                                                        "threads, allocators")
    assert many - few < block, (
        f"peak memory grew from {few:.0f} MiB (2 partitions) to {many:.0f} MiB (16 "
        f"partitions of {block:.1f} MiB)")
    assert many < 0.5 * 16 * block, (
        f"peak memory {many:.0f} MiB over a {16 * block:.0f} MiB table")
    assert many_score > 0.9
