"""cbp under threads: the kernel releases the GIL, so results must not depend
on what other threads do at the same time.

What is safe (see the user guide, "Bad input, faults and threads"): predicting with one fitted model from
many threads; fitting different models in different threads. What is not:
fitting (or partial_fit-ing) one model from two threads at once, or fitting a
model while another thread predicts with it.
"""

import threading
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from cbp import MLPClassifier, MLPRegressor

# (warnings.catch_warnings is not thread-safe: filter for the whole module)
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.RandomState(0)
X = RNG.normal(size=(400, 12))
Y_CLASS = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
Y_REG = np.sin(X[:, 0]) + X[:, 1]


def _run_in_threads(functions):
    """Start every function in its own thread at once; return their results."""
    results = [None] * len(functions)
    errors = []
    barrier = threading.Barrier(len(functions))

    def run(i, function):
        try:
            barrier.wait()
            results[i] = function()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_many_threads_predicting_with_one_model_agree(dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=5, random_state=0)
        model.fit(X.astype(dtype), Y_CLASS)
    X_big = np.tile(X, (10, 1)).astype(dtype)
    # (one BLAS thread for both: OpenBLAS's result depends on its thread count)
    with threadpool_limits(1):
        expected = model.predict_proba(X_big)
        results = _run_in_threads([lambda: model.predict_proba(X_big)] * 8)
    for result in results:
        np.testing.assert_array_equal(result, expected)


def test_threads_predicting_with_a_freshly_assigned_model_agree():
    # The first predict after coefs_ were assigned packs them into the flat
    # vector; many threads doing that at once still agree.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, Y_REG)
    model.coefs_ = [c * 0.5 for c in model.coefs_]
    expected = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected.fit(X, Y_REG)
    expected.coefs_ = [c * 0.5 for c in expected.coefs_]
    results = _run_in_threads([lambda: model.predict(X)] * 8)
    for result in results:
        np.testing.assert_array_equal(result, expected.predict(X))


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_models_fitted_in_parallel_threads_equal_their_solo_fits(solver):
    def fit(seed):
        model = MLPClassifier(hidden_layer_sizes=(24, 12), solver=solver, max_iter=15,
                              batch_size=16, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return model.fit(X, Y_CLASS)

    with threadpool_limits(1):
        solo = [fit(seed) for seed in range(4)]
        parallel = _run_in_threads([lambda s=seed: fit(s) for seed in range(4)])
    for alone, together in zip(solo, parallel):
        for a, b in zip(alone.coefs_ + alone.intercepts_, together.coefs_ + together.intercepts_):
            np.testing.assert_array_equal(a, b)
        assert alone.n_iter_ == together.n_iter_


def test_partial_fit_of_different_models_in_parallel_threads():
    def stream(seed):
        model = MLPRegressor(hidden_layer_sizes=(16,), solver="sgd", random_state=seed)
        for start in range(0, 400, 50):
            model.partial_fit(X[start:start + 50], Y_REG[start:start + 50])
        return model

    with threadpool_limits(1):
        solo = [stream(seed) for seed in range(3)]
        parallel = _run_in_threads([lambda s=seed: stream(s) for seed in range(3)])
    for alone, together in zip(solo, parallel):
        for a, b in zip(alone.coefs_, together.coefs_):
            np.testing.assert_array_equal(a, b)


def test_predicting_while_another_model_trains():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, Y_CLASS)
    expected = fitted.predict_proba(X)

    def train():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return MLPClassifier(hidden_layer_sizes=(64,), max_iter=30, random_state=1).fit(X, Y_CLASS)

    def predict_many():
        return [fitted.predict_proba(X) for _ in range(50)]

    with threadpool_limits(1):
        _, predictions = _run_in_threads([train, predict_many])
    for result in predictions:
        np.testing.assert_array_equal(result, expected)
