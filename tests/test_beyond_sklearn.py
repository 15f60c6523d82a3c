"""What cbp adds to scikit-learn's MLP, specified against PyTorch and by rule.

L1 and Huber losses, leaky ReLU, RMSprop and the cosine schedule are checked
against PyTorch (CPU, float64) when torch is importable: the same starting
weights (cbp's Glorot draw for the random_state), a few full-batch steps, the
same weights after (relative 1e-9). class_weight, weight_tol, the cosine
learning rates, bad combinations, save/load and partial_fit are checked by
their definitions. (The kernel pieces -- losses, deltas, derivatives,
updates -- are checked against tests/reference.py in test_kernel.py.)
"""

import math
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.class_weight import compute_sample_weight

import cbp
from cbp import MLPClassifier, MLPRegressor
import reference as ref
from parts import initial_arrays
from cbp._options import STOCHASTIC
from optional import optional
from torch_layers import full_batch_steps

RTOL = 1e-9
N = 60


def _regression(n_outputs=1, seed=0):
    X, y = make_regression(N, 5, n_targets=n_outputs, noise=5.0, random_state=seed)
    y = (y - y.mean(axis=0)) / y.std(axis=0)
    return StandardScaler().fit_transform(X), y


def _classification(n_classes=3, seed=0, weights=None):
    X, y = make_classification(N, 5, n_informative=4, n_redundant=0, n_classes=n_classes,
                               n_clusters_per_class=1, weights=weights, random_state=seed)
    return StandardScaler().fit_transform(X), y


def _fit(model, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **fit_params)


def _assert_same_weights(a, b, rtol=RTOL, what="weights"):
    for l, (x, y) in enumerate(zip(a, b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-12, err_msg=f"{what}[{l}]")


# ---------------------------------------------------------------------------
# Against PyTorch
# ---------------------------------------------------------------------------

def _torch_run(units, activation, X, y, loss, steps, optimizer, lr, alpha=0.0,
               random_state=0, lr_of_step=None):
    """PyTorch's weights after ``steps`` full-batch steps from cbp's initial
    weights (tests/torch_layers.full_batch_steps)."""
    torch = optional("torch")
    arrays = initial_arrays(units, activation, random_state, np.float64)
    coefs, intercepts = arrays["coefs"], arrays["intercepts"]
    return full_batch_steps(torch, activation, coefs, intercepts, X, y, loss, steps,
                            lambda parameters: optimizer(parameters, lr), alpha=alpha,
                            lr_of_step=lr_of_step)


def _full_batch(**params):
    """Full-batch training in cbp: one update per epoch, in sample order."""
    base = dict(batch_size=N, shuffle=False, alpha=0.0, random_state=0, tol=0.0,
                n_iter_no_change=10**6)
    base.update(params)
    return base


@pytest.mark.parametrize("delta", [None, 0.3, 1.0, 5.0], ids=lambda d: f"huber{d}" if d else "l1")
def test_l1_and_huber_losses_train_as_pytorch(delta):
    torch = optional("torch")
    X, y = _regression()
    y = y * 2.0  # residuals on both sides of every delta
    if delta is None:
        params = dict(loss="absolute_error")
        loss = torch.nn.L1Loss(reduction="sum")
    else:
        params = dict(loss="huber", huber_delta=delta)
        loss = torch.nn.HuberLoss(reduction="sum", delta=delta)
    ours = _fit(MLPRegressor(**_full_batch(hidden_layer_sizes=(7,), activation="tanh",
                                           solver="sgd", momentum=0.0, learning_rate_init=0.1,
                                           max_iter=5, **params)), X, y)
    coefs, intercepts = _torch_run([5, 7, 1], "tanh", X, y, loss, 5,
                                   lambda p, lr: torch.optim.SGD(p, lr=lr), 0.1)
    _assert_same_weights(ours.coefs_, coefs, what="coefs_")
    _assert_same_weights(ours.intercepts_, intercepts, what="intercepts_")


def test_multi_output_huber_sums_over_outputs_as_pytorch():
    torch = optional("torch")
    X, y = _regression(n_outputs=2)
    ours = _fit(MLPRegressor(**_full_batch(hidden_layer_sizes=(6,), solver="sgd",
                                           momentum=0.0, learning_rate_init=0.05, max_iter=4,
                                           loss="huber", huber_delta=0.5)), X, y)
    coefs, _ = _torch_run([5, 6, 2], "relu", X, y,
                          torch.nn.HuberLoss(reduction="sum", delta=0.5), 4,
                          lambda p, lr: torch.optim.SGD(p, lr=lr), 0.05)
    _assert_same_weights(ours.coefs_, coefs)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("rho", [0.9, 0.5])
def test_rmsprop_trains_as_pytorch(rho, alpha):
    torch = optional("torch")
    X, y = _regression()
    ours = _fit(MLPRegressor(**_full_batch(hidden_layer_sizes=(7,), solver="rmsprop", rho=rho,
                                           epsilon=1e-6, learning_rate_init=0.01, max_iter=6,
                                           alpha=alpha)), X, y)
    half_squared = lambda out, target: 0.5 * ((out - target) ** 2).sum()  # noqa: E731
    coefs, intercepts = _torch_run(
        [5, 7, 1], "relu", X, y, half_squared, 6,
        lambda p, lr: torch.optim.RMSprop(p, lr=lr, alpha=rho, eps=1e-6), 0.01, alpha=alpha)
    _assert_same_weights(ours.coefs_, coefs, what="coefs_")
    _assert_same_weights(ours.intercepts_, intercepts, what="intercepts_")


def test_leaky_relu_trains_as_pytorch():
    torch = optional("torch")
    X, y = _regression()
    ours = _fit(MLPRegressor(**_full_batch(hidden_layer_sizes=(8, 6), activation="leaky_relu",
                                           solver="sgd", momentum=0.0, learning_rate_init=0.05,
                                           max_iter=5)), X, y)
    half_squared = lambda out, target: 0.5 * ((out - target) ** 2).sum()  # noqa: E731
    coefs, intercepts = _torch_run([5, 8, 6, 1], "leaky_relu", X, y, half_squared, 5,
                                   lambda p, lr: torch.optim.SGD(p, lr=lr), 0.05)
    _assert_same_weights(ours.coefs_, coefs, what="coefs_")


def test_cosine_schedule_trains_as_pytorch_with_the_same_rates():
    torch = optional("torch")
    X, y = _regression()
    max_iter, lr = 6, 0.1
    ours = _fit(MLPRegressor(**_full_batch(hidden_layer_sizes=(7,), solver="sgd", momentum=0.0,
                                           learning_rate="cosine", learning_rate_init=lr,
                                           max_iter=max_iter)), X, y)
    half_squared = lambda out, target: 0.5 * ((out - target) ** 2).sum()  # noqa: E731
    coefs, _ = _torch_run([5, 7, 1], "relu", X, y, half_squared, max_iter,
                          lambda p, lr: torch.optim.SGD(p, lr=lr), lr,
                          lr_of_step=lambda e: lr * 0.5 * (1 + math.cos(math.pi * e / max_iter)))
    _assert_same_weights(ours.coefs_, coefs)


# ---------------------------------------------------------------------------
# The cosine schedule
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("solver", STOCHASTIC)
def test_cosine_rates_follow_the_formula_epoch_by_epoch(solver, monkeypatch):
    from cbp._dispatch import kernel

    seen = []
    original = kernel.train_epoch

    def spy(net, optimizer, *args):
        seen.append(optimizer.learning_rate)
        return original(net, optimizer, *args)

    monkeypatch.setattr(kernel, "train_epoch", spy)
    X, y = _classification()
    _fit(MLPClassifier(hidden_layer_sizes=(4,), solver=solver, learning_rate="cosine",
                       learning_rate_init=0.02, max_iter=7, tol=0.0, n_iter_no_change=100,
                       random_state=0), X, y)
    expected = [0.02 * 0.5 * (1 + math.cos(math.pi * e / 7)) for e in range(7)]
    np.testing.assert_allclose(seen, expected, rtol=1e-15)


def test_cosine_schedule_carries_on_through_partial_fit():
    X, y = _classification()
    params = dict(hidden_layer_sizes=(4,), solver="rmsprop", learning_rate="cosine",
                  max_iter=5, random_state=0, shuffle=False, batch_size=N, tol=0.0,
                  n_iter_no_change=100)
    whole = _fit(MLPClassifier(**params), X, y)
    steps = MLPClassifier(**params)
    for _ in range(5):
        steps.partial_fit(X, y, classes=np.unique(y))
    _assert_same_weights(steps.coefs_, whole.coefs_, rtol=1e-12)


# ---------------------------------------------------------------------------
# RealMLP's coslog4 schedule (its per-epoch rates: tests/test_optimizers.py)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("solver", STOCHASTIC)
def test_coslog4_rates_are_the_epochs_means_of_realmlps_schedule(solver, monkeypatch):
    from cbp._dispatch import kernel

    seen = []
    original = kernel.train_epoch

    def spy(net, optimizer, *args):
        seen.append(optimizer.learning_rate)
        return original(net, optimizer, *args)

    monkeypatch.setattr(kernel, "train_epoch", spy)
    X, y = _classification()
    _fit(MLPClassifier(hidden_layer_sizes=(4,), solver=solver, learning_rate="coslog4",
                       learning_rate_init=0.02, max_iter=7, tol=0.0, n_iter_no_change=100,
                       random_state=0), X, y)
    np.testing.assert_allclose(seen, [0.02 * ref.coslog4_epoch_mean(e, 7) for e in range(7)],
                               rtol=1e-10)


def test_coslog4_schedule_trains_as_pytorch_with_the_same_rates():
    torch = optional("torch")
    X, y = _regression()
    max_iter, lr = 6, 0.1
    ours = _fit(MLPRegressor(**_full_batch(hidden_layer_sizes=(7,), solver="sgd", momentum=0.0,
                                           learning_rate="coslog4", learning_rate_init=lr,
                                           max_iter=max_iter)), X, y)
    half_squared = lambda out, target: 0.5 * ((out - target) ** 2).sum()  # noqa: E731
    coefs, _ = _torch_run([5, 7, 1], "relu", X, y, half_squared, max_iter,
                          lambda p, lr: torch.optim.SGD(p, lr=lr), lr,
                          lr_of_step=lambda e: lr * ref.coslog4_epoch_mean(e, max_iter))
    _assert_same_weights(ours.coefs_, coefs)


_COSLOG4 = dict(hidden_layer_sizes=(4,), solver="adam", learning_rate="coslog4",
                learning_rate_init=0.01, max_iter=6, random_state=0, tol=0.0,
                n_iter_no_change=100)


def test_coslog4_fits_are_reproducible():
    X, y = _classification()
    a, b = (_fit(MLPClassifier(**_COSLOG4), X, y) for _ in range(2))
    _assert_same_weights(a.coefs_, b.coefs_, rtol=0)


def test_coslog4_schedule_carries_on_through_partial_fit():
    X, y = _classification()
    params = dict(_COSLOG4, shuffle=False, batch_size=N)
    whole = _fit(MLPClassifier(**params), X, y)
    steps = MLPClassifier(**params)
    for _ in range(params["max_iter"]):
        steps.partial_fit(X, y, classes=np.unique(y))
    _assert_same_weights(steps.coefs_, whole.coefs_, rtol=1e-12)


@pytest.mark.parametrize("how", ["save", "pickle"])
def test_coslog4_schedule_state_survives_save_and_pickle(how, tmp_path):
    import pickle

    X, y = _classification()
    model = _fit(MLPClassifier(**dict(_COSLOG4, max_iter=3)), X, y)
    if how == "save":
        model.save(tmp_path / "m.npz")
        copy = cbp.load(tmp_path / "m.npz")
    else:
        copy = pickle.loads(pickle.dumps(model))
    assert copy._optimizer.schedule == model._optimizer.schedule
    assert copy._optimizer.schedule.epoch == 3
    for _ in range(2):
        model.partial_fit(X, y)
        copy.partial_fit(X, y)
    _assert_same_weights(copy.coefs_, model.coefs_, rtol=0)


# ---------------------------------------------------------------------------
# The weight-change stopping rule
# ---------------------------------------------------------------------------

def _largest_change(params, epochs):
    """max |w| change during epoch number ``epochs`` (replayed from scratch)."""
    def weights(k):
        model = _fit(MLPClassifier(**params, max_iter=k), *_classification())
        return np.concatenate([a.ravel() for a in model.coefs_ + model.intercepts_])
    return float(np.max(np.abs(weights(epochs) - weights(epochs - 1))))


@pytest.mark.parametrize("solver, learning_rate_init", [
    ("sgd", 0.01), ("adam", 0.003), ("rmsprop", 0.001)])
def test_weight_tol_stops_after_the_first_epoch_that_moves_no_weight_more_than_it(
        solver, learning_rate_init):
    params = dict(hidden_layer_sizes=(5,), solver=solver, tol=0.0, n_iter_no_change=10**6,
                  learning_rate_init=learning_rate_init, random_state=0)
    X, y = _classification()
    model = _fit(MLPClassifier(**params, max_iter=2000, weight_tol=2e-3), X, y)
    stopped = model.n_iter_
    assert 2 <= stopped < 2000, "the rule did not stop training, or stopped at once"
    assert _largest_change(params, stopped) <= 2e-3
    assert _largest_change(params, stopped - 1) > 2e-3, "it should have stopped an epoch later"


def test_weight_tol_says_which_rule_stopped_training(capsys):
    X, y = _classification()
    MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", learning_rate_init=0.001,
                  weight_tol=1.0, verbose=True, random_state=0).fit(X, y)
    assert "weight_tol=1 " in capsys.readouterr().out


def test_weight_tol_none_changes_nothing():
    X, y = _classification()
    params = dict(hidden_layer_sizes=(5,), max_iter=30, random_state=0)
    a = _fit(MLPClassifier(**params), X, y)
    b = _fit(MLPClassifier(**params, weight_tol=None), X, y)
    _assert_same_weights(a.coefs_, b.coefs_, rtol=0)
    assert a.n_iter_ == b.n_iter_


# ---------------------------------------------------------------------------
# Class weights
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 1: 1.0, 2: 0.25}, {1: 5.0}],
                         ids=["balanced", "dict", "partial-dict"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_class_weight_is_the_sample_weight_it_defines(class_weight, solver):
    X, y = _classification(weights=[0.6, 0.3, 0.1])
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=8, random_state=0)
    weighted = _fit(MLPClassifier(**params, class_weight=class_weight), X, y)
    by_hand = _fit(MLPClassifier(**params), X, y,
                   sample_weight=compute_sample_weight(class_weight, y))
    _assert_same_weights(weighted.coefs_, by_hand.coefs_, rtol=0)


def test_class_weight_multiplies_a_given_sample_weight():
    X, y = _classification()
    sample_weight = np.random.RandomState(0).uniform(0.5, 2.0, N)
    class_weight = {0: 2.0, 1: 1.0, 2: 0.5}
    params = dict(hidden_layer_sizes=(5,), max_iter=8, random_state=0)
    weighted = _fit(MLPClassifier(**params, class_weight=class_weight), X, y,
                    sample_weight=sample_weight)
    by_hand = _fit(MLPClassifier(**params), X, y,
                   sample_weight=compute_sample_weight(class_weight, y) * sample_weight)
    _assert_same_weights(weighted.coefs_, by_hand.coefs_, rtol=0)


def test_class_weight_with_string_labels():
    X, y = _classification()
    labels = np.array(["cat", "dog", "eel"])[y]
    weighted = _fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0,
                                  class_weight={"eel": 4.0}), X, labels)
    by_hand = _fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0), X,
                   labels, sample_weight=np.where(labels == "eel", 4.0, 1.0))
    _assert_same_weights(weighted.coefs_, by_hand.coefs_, rtol=0)


def test_class_weight_rejects_multilabel_targets():
    X, _ = _classification()
    Y = (np.random.RandomState(0).uniform(size=(N, 3)) > 0.5).astype(int)
    with pytest.raises(ValueError, match="multilabel"):
        MLPClassifier(class_weight="balanced", max_iter=2).fit(X, Y)


def test_balanced_class_weight_is_rejected_by_partial_fit_and_a_dict_works():
    X, y = _classification()
    with pytest.raises(ValueError, match="partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    model = MLPClassifier(class_weight={0: 2.0}, random_state=0)
    model.partial_fit(X, y, classes=[0, 1, 2])
    by_hand = MLPClassifier(random_state=0).partial_fit(
        X, y, classes=[0, 1, 2], sample_weight=np.where(y == 0, 2.0, 1.0))
    _assert_same_weights(model.coefs_, by_hand.coefs_, rtol=0)


# ---------------------------------------------------------------------------
# Validation: bad values and combinations that make no sense
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("Estimator, params", [
    (MLPRegressor, dict(loss="huber", huber_delta=0.0)),
    (MLPRegressor, dict(loss="huber", huber_delta=-1.0)),
    (MLPRegressor, dict(loss="mean_absolute_error")),
    (MLPClassifier, dict(solver="rmsprop", rho=1.0)),
    (MLPClassifier, dict(solver="rmsprop", rho=-0.1)),
    (MLPClassifier, dict(weight_tol=0.0)),
    (MLPClassifier, dict(weight_tol=-1e-3)),
    (MLPClassifier, dict(class_weight="uniform")),
    (MLPClassifier, dict(activation="leaky")),
    (MLPClassifier, dict(learning_rate="cosine_restarts")),
], ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) if isinstance(p, dict) else p.__name__)
def test_invalid_new_parameters_raise_invalid_parameter_error(Estimator, params):
    X, y = _regression() if Estimator is MLPRegressor else _classification()
    with pytest.raises(InvalidParameterError):
        Estimator(**params).fit(X, y)


@pytest.mark.parametrize("params, match", [
    (dict(solver="lbfgs", weight_tol=1e-4), "weight_tol"),
    (dict(solver="lbfgs", learning_rate="cosine"), "cosine"),
])
def test_combinations_that_make_no_sense_raise(params, match):
    X, y = _classification()
    model = MLPClassifier(**params)
    with pytest.raises(ValueError, match=match):
        model.fit(X, y)
    assert not hasattr(model, "coefs_")


def test_classifier_has_no_regression_loss_parameters():
    assert "huber_delta" not in MLPClassifier().get_params()
    assert "class_weight" not in MLPRegressor().get_params()


# ---------------------------------------------------------------------------
# Saved, loaded, carried on
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("Estimator, params", [
    (MLPRegressor, dict(loss="absolute_error", solver="adam")),
    (MLPRegressor, dict(loss="huber", huber_delta=0.4, solver="rmsprop", rho=0.8)),
    (MLPClassifier, dict(solver="rmsprop", learning_rate="cosine", activation="leaky_relu")),
    (MLPClassifier, dict(solver="sgd", learning_rate="cosine", class_weight={0: 2.0, 2: 0.5})),
    (MLPClassifier, dict(solver="adam", weight_tol=1e-5, class_weight="balanced")),
], ids=["l1", "huber-rmsprop", "rmsprop-cosine-leaky", "sgd-cosine-dict", "adam-balanced"])
def test_saved_model_loads_and_continues_exactly(Estimator, params, tmp_path):
    X, y = _regression() if Estimator is MLPRegressor else _classification()
    model = _fit(Estimator(hidden_layer_sizes=(6,), max_iter=4, random_state=0, **params), X, y)
    model.save(tmp_path / "m.npz")
    loaded = cbp.load(tmp_path / "m.npz")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    if params.get("class_weight") != "balanced":
        # (a dict class_weight carries over into partial_fit; 'balanced' is refused there)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(X, y)
            loaded.partial_fit(X, y)
        _assert_same_weights(loaded.coefs_, model.coefs_, rtol=0)
