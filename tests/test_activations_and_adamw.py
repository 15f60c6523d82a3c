"""The hidden activations gelu, silu, selu and mish, and solver='adamw',
specified against PyTorch and by their definitions.

Against PyTorch (CPU, float64, when torch is importable): the same starting
weights, five full-batch steps, the same weights after (relative 1e-9).
The kernel's pieces (each activation's value and derivative, one AdamW
update) are checked against tests/reference.py in test_kernel.py; ONNX
export of every activation in test_onnx.py.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import cbp
from cbp import MLPClassifier, MLPRegressor
from optional import optional
from torch_layers import full_batch_steps

RTOL = 1e-9
N = 60
NEW_ACTIVATIONS = ["gelu", "silu", "selu", "mish"]


def _regression(seed=0):
    X, y = make_regression(N, 5, noise=5.0, random_state=seed)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _classification(seed=0):
    X, y = make_classification(N, 5, n_informative=4, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=seed)
    return StandardScaler().fit_transform(X), y


def _fit(model, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **fit_params)


def _start(units, seed=1):
    """Starting weights for both libraries: N(0, 1/fan_in) coefs, small biases."""
    rng = np.random.RandomState(seed)
    coefs = [rng.normal(0, 1 / np.sqrt(a), (a, b)) for a, b in zip(units[:-1], units[1:])]
    intercepts = [rng.normal(0, 0.1, b) for b in units[1:]]
    return coefs, intercepts


def _full_batch(**params):
    """Full-batch training: one update per epoch, in sample order."""
    base = dict(batch_size=N, shuffle=False, alpha=0.0, random_state=0, tol=0.0,
                n_iter_no_change=10**6)
    return {**base, **params}


def _cbp_steps(model, X, y, coefs, intercepts, steps):
    """cbp's weights after ``steps`` epochs of model from coefs, intercepts."""
    _fit(model.set_params(max_iter=1), X, y)
    model.coefs_ = [c.astype(model.coefs_[0].dtype) for c in coefs]
    model.intercepts_ = [b.astype(model.coefs_[0].dtype) for b in intercepts]
    return _fit(model.set_params(warm_start=True, max_iter=steps), X, y)


def _torch_steps(activation, X, y, coefs, intercepts, steps, optimizer, alpha=0.0,
                 lr_of_step=None):
    """PyTorch's weights after ``steps`` full-batch steps of the squared error
    0.5 sum (out - y)^2 / n (+ 0.5 alpha sum ||W||^2 / n, scikit-learn's L2)."""
    torch = optional("torch")
    return full_batch_steps(torch, activation, coefs, intercepts, X, y,
                            lambda out, target: 0.5 * ((out - target) ** 2).sum(), steps,
                            lambda parameters: optimizer(torch, parameters), alpha=alpha,
                            lr_of_step=lr_of_step)


def _assert_same(ours, coefs, intercepts, rtol=RTOL):
    for l, (a, b) in enumerate(zip(ours.coefs_, coefs)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12, err_msg=f"coefs_[{l}]")
    for l, (a, b) in enumerate(zip(ours.intercepts_, intercepts)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12, err_msg=f"intercepts_[{l}]")


# ---------------------------------------------------------------------------
# Against PyTorch
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_activation_trains_as_pytorch_with_sgd(activation):
    optional("torch")
    X, y = _regression()
    coefs, intercepts = _start([5, 8, 6, 1])
    ours = _cbp_steps(MLPRegressor(**_full_batch(
        hidden_layer_sizes=(8, 6), activation=activation, solver="sgd", momentum=0.0,
        learning_rate_init=0.05)), X, y, coefs, intercepts, 5)
    theirs = _torch_steps(activation, X, y, coefs, intercepts, 5,
                          lambda torch, p: torch.optim.SGD(p, lr=0.05))
    _assert_same(ours, *theirs)


@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_activation_trains_as_pytorch_with_adamw_and_l2(activation):
    optional("torch")
    X, y = _regression()
    coefs, intercepts = _start([5, 8, 6, 1])
    ours = _cbp_steps(MLPRegressor(**_full_batch(
        hidden_layer_sizes=(8, 6), activation=activation, solver="adamw",
        learning_rate_init=0.01, weight_decay=0.1, alpha=0.3)), X, y, coefs, intercepts, 5)
    theirs = _torch_steps(activation, X, y, coefs, intercepts, 5,
                          lambda torch, p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
                          alpha=0.3)
    _assert_same(ours, *theirs)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01, 0.5])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_adamw_trains_as_pytorch(weight_decay, alpha):
    optional("torch")
    X, y = _regression()
    coefs, intercepts = _start([5, 7, 1])
    ours = _cbp_steps(MLPRegressor(**_full_batch(
        hidden_layer_sizes=(7,), activation="tanh", solver="adamw", learning_rate_init=0.02,
        beta_1=0.8, beta_2=0.99, epsilon=1e-6, weight_decay=weight_decay, alpha=alpha)),
        X, y, coefs, intercepts, 5)
    theirs = _torch_steps("tanh", X, y, coefs, intercepts, 5,
                          lambda torch, p: torch.optim.AdamW(
                              p, lr=0.02, betas=(0.8, 0.99), eps=1e-6,
                              weight_decay=weight_decay), alpha=alpha)
    _assert_same(ours, *theirs)


@pytest.mark.parametrize("solver, torch_optimizer, epsilon", [
    # cbp's 'adam' adds epsilon before the bias correction (scikit-learn's
    # placement), torch.optim.Adam after: a negligible one makes them one rule
    ("adam", "Adam", 1e-30),
    ("adamw", "AdamW", 1e-8),
])
def test_beta_2_of_realmlp_trains_as_pytorch(solver, torch_optimizer, epsilon):
    """beta_2 = 0.95, RealMLP's (pytabkit's sq_mom), as torch's betas[1]
    (AdamW: both libraries' default weight_decay, 0.01)."""
    optional("torch")
    X, y = _regression()
    coefs, intercepts = _start([5, 7, 1])
    ours = _cbp_steps(MLPRegressor(**_full_batch(
        hidden_layer_sizes=(7,), activation="tanh", solver=solver, learning_rate_init=0.02,
        beta_2=0.95, epsilon=epsilon)), X, y, coefs, intercepts, 5)
    theirs = _torch_steps("tanh", X, y, coefs, intercepts, 5,
                          lambda torch, p: getattr(torch.optim, torch_optimizer)(
                              p, lr=0.02, betas=(0.9, 0.95), eps=epsilon))
    _assert_same(ours, *theirs)


def test_adamw_with_the_cosine_schedule_decays_by_the_scheduled_rate():
    optional("torch")
    import math

    X, y = _regression()
    coefs, intercepts = _start([5, 7, 1])
    lr, steps = 0.05, 5
    ours = _cbp_steps(MLPRegressor(**_full_batch(
        hidden_layer_sizes=(7,), activation="relu", solver="adamw", learning_rate="cosine",
        learning_rate_init=lr, weight_decay=0.3)), X, y, coefs, intercepts, steps)
    theirs = _torch_steps("relu", X, y, coefs, intercepts, steps,
                          lambda torch, p: torch.optim.AdamW(p, lr=lr, weight_decay=0.3),
                          lr_of_step=lambda e: lr * 0.5 * (1 + math.cos(math.pi * e / steps)))
    _assert_same(ours, *theirs)


# ---------------------------------------------------------------------------
# By definition
# ---------------------------------------------------------------------------

def test_adamw_default_weight_decay_is_torchs():
    assert MLPClassifier().weight_decay == 0.01 and MLPRegressor().weight_decay == 0.01


def test_weight_decay_is_validated():
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = _classification()
    with pytest.raises(InvalidParameterError, match="weight_decay"):
        MLPClassifier(solver="adamw", weight_decay=-1.0).fit(X, y)


def test_adamw_without_weight_decay_differs_from_adam_only_by_epsilons_placement():
    # torch's eps is added after the bias correction, scikit-learn's Adam's
    # before: with epsilon tiny the two runs agree closely
    X, y = _classification()
    params = dict(hidden_layer_sizes=(6,), epsilon=1e-14, max_iter=5, random_state=0)
    adam = _fit(MLPClassifier(solver="adam", **params), X, y)
    adamw = _fit(MLPClassifier(solver="adamw", weight_decay=0.0, **params), X, y)
    for a, b in zip(adam.coefs_, adamw.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_selu_starts_from_lecun_normal_weights_and_zero_intercepts():
    # one sgd step of rate 1e-300 moves no weight by a representable amount:
    # the fitted weights are the initial draw
    X, y = _regression()
    model = _fit(MLPRegressor(hidden_layer_sizes=(400, 300), activation="selu",
                              solver="sgd", momentum=0.0, learning_rate_init=1e-300,
                              max_iter=1, random_state=0), X, y)
    # LeCun normal (torch.nn.init.kaiming_normal_ with nonlinearity='linear',
    # what torch.nn.SELU's documentation asks for): coefs ~ N(0, 1 / fan_in),
    # drawn layer by layer from random_state; intercepts 0
    rng = np.random.RandomState(0)
    for coef in model.coefs_:
        fan_in, fan_out = coef.shape
        np.testing.assert_array_equal(coef, rng.normal(0, np.sqrt(1 / fan_in),
                                                        (fan_in, fan_out)))
    for intercept in model.intercepts_:
        assert np.all(np.abs(intercept) < 1e-200)


@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_float32_trains_as_float64(activation):
    X, y = _classification()
    params = dict(hidden_layer_sizes=(8,), activation=activation, solver="adamw",
                  max_iter=5, random_state=0, shuffle=False)
    single = _fit(MLPClassifier(**params), X.astype(np.float32), y)
    double = _fit(MLPClassifier(**params), X, y)
    assert single.coefs_[0].dtype == np.float32
    for a, b in zip(single.coefs_, double.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("activation", NEW_ACTIVATIONS + ["relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_and_load_predict_the_same(activation, dtype, tmp_path):
    X, y = _classification()
    X = X.astype(dtype)
    model = _fit(MLPClassifier(hidden_layer_sizes=(6,), activation=activation,
                               solver="adamw", max_iter=3, random_state=0), X, y)
    model.save(tmp_path / "m.npz")
    loaded = cbp.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.weight_decay == model.weight_decay


def test_adamw_state_is_saved_so_that_training_goes_on_as_unsaved(tmp_path):
    X, y = _classification()
    params = dict(hidden_layer_sizes=(6,), solver="adamw", weight_decay=0.2,
                  random_state=0, shuffle=False)
    model = MLPClassifier(**params)
    model.partial_fit(X, y, classes=np.unique(y))
    model.save(tmp_path / "m.npz")
    loaded = cbp.load(tmp_path / "m.npz")
    model.partial_fit(X, y)
    loaded.partial_fit(X, y)
    for a, b in zip(loaded.coefs_, model.coefs_):
        np.testing.assert_array_equal(a, b)


def test_adamw_partial_fits_equal_one_fit():
    X, y = _classification()
    params = dict(hidden_layer_sizes=(5,), solver="adamw", weight_decay=0.1, max_iter=4,
                  random_state=0, shuffle=False, batch_size=N, tol=0.0,
                  n_iter_no_change=100)
    whole = _fit(MLPClassifier(**params), X, y)
    steps = MLPClassifier(**params)
    for _ in range(4):
        steps.partial_fit(X, y, classes=np.unique(y))
    for a, b in zip(steps.coefs_, whole.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_block_rows_give_the_same_model_on_one_and_two_threads(activation):
    from threadpoolctl import threadpool_limits

    X, y = _classification()
    params = dict(hidden_layer_sizes=(16,), activation=activation, solver="adamw",
                  block_rows=8, batch_size=32, max_iter=3, random_state=0)
    models = []
    for threads in (1, 2):
        with threadpool_limits(threads, user_api="openmp"):
            models.append(_fit(MLPClassifier(**params), X, y))
    for a, b in zip(models[0].coefs_, models[1].coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_dropout_and_batch_norm_train_with_the_new_activations(activation):
    X, y = _classification()
    model = _fit(MLPClassifier(hidden_layer_sizes=(32,), activation=activation,
                               solver="adamw", dropout=0.1, batch_norm=True, batch_size=20,
                               learning_rate_init=0.01, max_iter=30, random_state=0), X, y)
    assert model.score(X, y) > 0.9
