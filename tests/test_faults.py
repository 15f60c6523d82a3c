"""Faults during training: divergence, Ctrl-C, memory, leaks.

The Ctrl-C and leak tests run in forked children (tests/isolation.py): a
SIGINT that arrived late would otherwise interrupt pytest itself, and the
memory measured must be the fit's alone.
"""

import os
import signal
import threading
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from cbp import MLPClassifier, MLPRegressor
from parts import initial_arrays
from isolation import run_isolated

RNG = np.random.RandomState(0)
X = RNG.normal(size=(60, 4))
Y = (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_divergence_raises_and_leaves_no_nan_weights(solver):
    model = MLPRegressor(hidden_layer_sizes=(8,), solver=solver, learning_rate_init=1e300,
                         max_iter=50, random_state=0)
    with pytest.raises(ValueError, match="non-finite|diverged"):
        model.fit(X * 1e150, X[:, 0] * 1e150)
    assert not hasattr(model, "coefs_"), "a diverged first fit must leave the model unfitted"


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_divergence_during_partial_fit_keeps_the_fitted_weights(solver):
    model = MLPRegressor(hidden_layer_sizes=(8,), solver=solver, random_state=0)
    model.partial_fit(X, X[:, 0])
    before = [c.copy() for c in model.coefs_]
    with pytest.raises(ValueError, match="non-finite|diverged"):
        model.partial_fit(X * 1e200, X[:, 0] * 1e200)  # (1e200)^2 overflows
    for a, b in zip(before, model.coefs_):
        np.testing.assert_array_equal(a, b)


def _interrupt_after(seconds):
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    return timer


def _interrupt_inside(function, seconds):
    """SIGINT ``seconds`` after the kernel's ``function`` is first entered, so
    that it lands inside the kernel however slowly a loaded machine reaches
    it (a timer started before ``fit`` can fire while the Python layer still
    validates, which interrupts that instead). Call in the forked child."""
    from cbp._dispatch import kernel

    original = getattr(kernel, function)

    def armed(*args, **kwargs):
        setattr(kernel, function, original)
        _interrupt_after(seconds)
        return original(*args, **kwargs)

    setattr(kernel, function, armed)


def test_ctrl_c_inside_one_long_epoch_returns_the_initial_weights():
    # One epoch of 200 batches of 10-20 ms each; SIGINT arrives during it. The
    # kernel checks for signals every few ms of work, so the fit returns
    # before the epoch completes (n_iter_ == 0), warns, and keeps the weights
    # of the last completed epoch: here, the initial ones.
    def interrupted_fit():
        rng = np.random.default_rng(1)
        X_big = rng.standard_normal(size=(20000, 1000), dtype=np.float32)
        y_big = rng.integers(0, 10, 20000)
        model = MLPClassifier(hidden_layer_sizes=(1000, 1000), solver="sgd", batch_size=100,
                              max_iter=1, random_state=0)
        _interrupt_inside("train_epoch", 0.3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X_big, y_big)
        messages = [str(w.message) for w in caught]
        units = [1000, 1000, 1000, 10]
        initial = initial_arrays(units, "relu", 0, np.float32)["coefs"]
        same = all(np.array_equal(a, b) for a, b in zip(model.coefs_, initial))
        usable = model.predict(X_big[:5]).shape == (5,)
        return model.n_iter_, messages, same, usable

    kind, value = run_isolated(interrupted_fit)
    assert kind == "returned", f"the fit raised {value!r}"
    n_iter, messages, same_as_initial, usable = value
    assert any("interrupted" in m for m in messages), messages
    assert n_iter == 0, "the interrupt was not seen inside the epoch"
    assert same_as_initial, "the weights are not those of the last completed epoch"
    assert usable


def _big_problem():
    rng = np.random.default_rng(1)
    X_big = rng.standard_normal(size=(6000, 1000), dtype=np.float32)
    return X_big, rng.integers(0, 10, 6000)


def test_ctrl_c_inside_one_full_batch_returns_the_initial_weights():
    # batch_size = n: the epoch is a single batch of ~1 s of work, which the
    # kernel runs in chunks of rows and checks for signals between them.
    def interrupted_fit():
        X_big, y_big = _big_problem()
        model = MLPClassifier(hidden_layer_sizes=(1000, 1000), solver="sgd",
                              batch_size=len(X_big), max_iter=1, random_state=0)
        _interrupt_inside("train_epoch", 0.2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X_big, y_big)
        units = [1000, 1000, 1000, 10]
        initial = initial_arrays(units, "relu", 0, np.float32)["coefs"]
        same = all(np.array_equal(a, b) for a, b in zip(model.coefs_, initial))
        return model.n_iter_, [str(w.message) for w in caught], same, model.t_

    kind, value = run_isolated(interrupted_fit)
    assert kind == "returned", f"the fit raised {value!r}"
    n_iter, messages, same_as_initial, t = value
    assert any("interrupted" in m for m in messages), messages
    assert n_iter == 0 and t == 0, "the interrupted batch was counted"
    assert same_as_initial, "the weights are not the initial ones"


def test_ctrl_c_during_lbfgs_raises_and_keeps_the_fitted_model():
    # L-BFGS's loss and gradient run over the whole data set chunk by chunk;
    # as in scikit-learn, KeyboardInterrupt reaches the caller, and the model
    # is left as it was before the call.
    def interrupted_refit():
        X_big, y_big = _big_problem()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = MLPClassifier(hidden_layer_sizes=(1000, 1000), solver="lbfgs",
                                  max_iter=1, random_state=0).fit(X_big[:50], y_big[:50])
        before = [c.copy() for c in model.coefs_]
        _interrupt_inside("loss_grad", 0.2)
        try:
            model.set_params(max_iter=100).fit(X_big, y_big)
        except KeyboardInterrupt:
            raised = True
        else:
            raised = False
        same = all(np.array_equal(a, b) for a, b in zip(model.coefs_, before))
        return raised, same, model.predict(X_big[:3]).shape

    kind, value = run_isolated(interrupted_refit)
    assert kind == "returned", f"the refit failed: {value!r}"
    raised, same, shape = value
    assert raised, "KeyboardInterrupt did not reach the caller"
    assert same, "the interrupted refit changed the fitted model"
    assert shape == (3,)


def test_ctrl_c_between_epochs_keeps_the_last_completed_epoch():
    def interrupted_fit():
        model = MLPClassifier(hidden_layer_sizes=(16,), solver="adam", max_iter=10**7,
                              tol=0.0, n_iter_no_change=10**7, random_state=0)
        _interrupt_inside("train_epoch", 0.5)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X, Y)
        return model.n_iter_, [str(w.message) for w in caught], [c.copy() for c in model.coefs_]

    kind, value = run_isolated(interrupted_fit)
    assert kind == "returned", f"the fit raised {value!r}"
    n_iter, messages, coefs = value
    assert any("interrupted" in m for m in messages)
    assert 0 < n_iter < 10**7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        replay = MLPClassifier(hidden_layer_sizes=(16,), solver="adam", max_iter=n_iter,
                               tol=0.0, n_iter_no_change=10**7, random_state=0).fit(X, Y)
    for a, b in zip(coefs, replay.coefs_):
        np.testing.assert_array_equal(a, b)


def _resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's quarantine keeps freed memory resident")
def test_thousands_of_fits_and_predictions_keep_memory_flat():
    def many_fits():
        rng = np.random.RandomState(0)
        X_small = rng.normal(size=(30, 5))
        y_small = rng.randint(0, 3, 30)
        samples = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for i in range(2500):
                solver = ("sgd", "adam", "lbfgs")[i % 3]
                model = MLPClassifier(hidden_layer_sizes=(6,), solver=solver, max_iter=2)
                model.fit(X_small, y_small).predict_proba(X_small)
                if i % 500 == 499:
                    samples.append(_resident_bytes())
        return samples

    kind, samples = run_isolated(many_fits)
    assert kind == "returned", samples
    growth = samples[-1] - samples[0]
    assert growth < 8 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB over 2000 fits"


def test_divergence_with_early_stopping_keeps_the_best_model_and_stops_at_once():
    # scikit-learn #29504: users rely on a diverging fit with early stopping
    # returning its best model and recording NaN; cbp also stops at once.
    from sklearn.datasets import load_iris

    X_iris, y_iris = load_iris(return_X_y=True)
    model = MLPRegressor(hidden_layer_sizes=100, activation="identity", solver="sgd",
                         learning_rate_init=1, max_iter=20, early_stopping=True,
                         random_state=0)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        model.fit(X_iris, y_iris)
    assert np.isnan(model.validation_scores_[-1])
    assert model.n_iter_ == len(model.validation_scores_) == len(model.loss_curve_)
    assert model.n_iter_ < 20, "training went on after the divergence"
    assert all(np.isfinite(c).all() for c in model.coefs_)
    assert np.isfinite(model.predict(X_iris)).all()
