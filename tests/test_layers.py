"""Batch normalisation and dropout: the kernel against the NumPy reference
(tests/reference.py, from the equations), central differences and PyTorch;
the estimators' parameters, attributes and state.
"""

import pickle
import threading
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import cbp
from cbp import MLPClassifier, MLPRegressor
from cbp._dispatch import kernel as K
from cbp._options import LOSSES as LOSS_ENTRIES
from cbp._options import STOCHASTIC
from cbp._options import SOLVERS as ALL_SOLVERS

import reference as ref
from docs_scripts import load_example
from optional import optional
from torch_layers import linear_from

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
DTYPES = [np.float32, np.float64]
HIDDEN = ["identity", "logistic", "tanh", "relu", "leaky_relu", "gelu", "silu", "selu", "mish"]
LOSSES = ["squared_error", "log_loss", "binary_log_loss", "huber"]
UNITS = [5, 7, 6, 3]
SEED = 12345


def _problem(loss, dtype, n=24, seed=0, units=UNITS):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, units[0])).astype(dtype)
    Y = ref.random_targets(rng, loss, n, units[-1], dtype)
    return X, Y


def _params(units, dtype, batch_norm, seed=1):
    """Random weights, and random gammas, betas and running statistics."""
    rng = np.random.default_rng(seed)
    params = ref.random_params(rng, units, np.float64)
    if batch_norm:
        hidden = units[1:-1]
        parts = {"gammas": [rng.uniform(0.5, 1.5, h) for h in hidden],
                 "betas": [rng.normal(0, 0.3, h) for h in hidden],
                 "running_means": [rng.normal(0, 0.5, h) for h in hidden],
                 "running_vars": [rng.uniform(0.5, 2.0, h) for h in hidden]}
        params = ref.join_layers(params, parts)
    return params.astype(dtype)


def _network(hidden, loss, batch_norm, dropout=None, n_rows=64, units=UNITS, **options):
    return K.Network(units, hidden, loss, 0.01, False, n_rows, batch_norm=batch_norm,
                     dropout=dropout, dropout_seed=SEED, **options)


def _kernel_loss_grad(net, X, Y, params):
    grads = np.empty(net.n_params, dtype=params.dtype)
    work = np.empty(net.workspace_size(K.BACKWARD_PART), dtype=params.dtype)
    J = K.loss_grad(net, K.Data(X, Y), params, grads, work)
    return J, grads, net.layer_views(work, X.shape[0])


# ---------------------------------------------------------------------------
# The kernel against the reference
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_batch_norm_loss_and_gradient_equal_the_reference(dtype, hidden, loss):
    X, Y = _problem(loss, dtype)
    params = _params(UNITS, dtype, batch_norm=True)
    net = _network(hidden, loss, batch_norm=True)
    J, grads, views = _kernel_loss_grad(net, X, Y, params)
    expected = ref.loss_grad_layers(X, Y, None, UNITS, hidden, ref.OUTPUT_FOR_LOSS[loss],
                                    loss, 0.01, params)
    assert_allclose(J, expected["loss"], **TOL[dtype], err_msg="loss")
    assert_allclose(grads, expected["grads"], **TOL[dtype], err_msg="gradient")
    for k, x_hat in enumerate(views["x_hat"]):
        assert_allclose(x_hat, expected["forward"]["x_hats"][k], **TOL[dtype],
                        err_msg=f"x_hat[{k}]")


@pytest.mark.parametrize("batch_norm", [False, True], ids=["dropout", "dropout+bn"])
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_dropout_gradient_equals_the_reference_given_the_kernels_masks(dtype, hidden,
                                                                       batch_norm):
    X, Y = _problem("log_loss", dtype)
    params = _params(UNITS, dtype, batch_norm)
    net = _network(hidden, "log_loss", batch_norm, dropout=[0.3, 0.5])
    J, grads, views = _kernel_loss_grad(net, X, Y, params)
    masks = views["mask"]
    expected = ref.loss_grad_layers(X, Y, None, UNITS, hidden, "softmax", "log_loss", 0.01,
                                    params, masks=masks)
    assert_allclose(J, expected["loss"], **TOL[dtype], err_msg="loss")
    assert_allclose(grads, expected["grads"], **TOL[dtype], err_msg="gradient")
    for k in range(2):
        assert_allclose(views["dropped"][k], expected["forward"]["activations"][k + 1],
                        **TOL[dtype], err_msg=f"dropped activations[{k}]")


@pytest.mark.parametrize("options", [dict(batch_norm=True), dict(batch_norm=False, dropout=[0.4, 0.2]),
                                     dict(batch_norm=True, dropout=[0.2, 0.0])],
                         ids=["bn", "dropout", "bn+dropout"])
@pytest.mark.parametrize("hidden", ["tanh", "logistic", "identity"])
def test_gradient_equals_central_differences(hidden, options):
    """Every trained value's derivative, gammas and betas included (float64;
    smooth activations, so that differences see no kink)."""
    X, Y = _problem("squared_error", np.float64, n=12)
    params = _params(UNITS, np.float64, options["batch_norm"])
    net = _network(hidden, "squared_error", **options)
    _, grads, _ = _kernel_loss_grad(net, X, Y, params)
    numeric = np.empty(net.n_params)
    for i in range(net.n_params):
        shifted = params.copy()
        shifted[i] += 1e-6
        up = _kernel_loss_grad(net, X, Y, shifted)[0]
        shifted[i] -= 2e-6
        down = _kernel_loss_grad(net, X, Y, shifted)[0]
        numeric[i] = (up - down) / 2e-6
    assert_allclose(grads, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_evaluation_mode_normalises_by_the_running_statistics(dtype):
    X, _ = _problem("squared_error", dtype, n=30)
    params = _params(UNITS, dtype, batch_norm=True)
    net = K.Network(UNITS, "relu", None, 0.0, False, 30, output="identity",
                    batch_norm=True)
    out = np.empty((30, UNITS[-1]), dtype=dtype)
    K.forward(net, K.Data(X), params, out,
              np.empty(net.workspace_size(K.FORWARD_PART), dtype=dtype))
    expected = ref.forward_layers(X, UNITS, params, "relu", "identity", training=False)
    assert_allclose(out, expected["activations"][-1], **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_running_statistics_move_by_the_momentum_after_each_batch(dtype):
    """sgd at learning rate 0 keeps the weights: after an epoch of batches
    of 10 rows, the running statistics are the momentum recursion over the
    batches' means and unbiased variances."""
    X, Y = _problem("squared_error", dtype, n=40)
    params = _params(UNITS, dtype, batch_norm=True)
    net = _network("tanh", "squared_error", batch_norm=True, n_rows=10)
    optimizer = K.Optimizer("sgd", params[:net.n_params], learning_rate=0.0, momentum=0.0)
    trained = params.copy()
    K.train_epoch(net, optimizer, K.Data(X, Y), np.empty(0, dtype=np.intp), 10, trained,
                  np.empty(net.n_params, dtype=dtype),
                  np.empty(net.workspace_size(K.EPOCH_PART), dtype=dtype))
    weights, state = ref.split_layers(params, UNITS)
    for start in range(0, 40, 10):
        f = ref.forward_layers(X[start:start + 10], UNITS, params, "tanh", "identity")
        state = ref.running_statistics(state, f["means"], f["variances"], 10)
    _, got = ref.split_layers(trained, UNITS)
    for name in ("running_means", "running_vars"):
        for k in range(2):
            assert_allclose(got[name][k], state[name][k], **TOL[dtype], err_msg=f"{name}[{k}]")
    assert_array_equal(trained[:net.n_params], params[:net.n_params])


def test_running_statistics_stay_out_of_the_optimizer_and_the_gradient():
    net = _network("relu", "squared_error", batch_norm=True)
    weights = ref.n_params(UNITS)
    hidden = sum(UNITS[1:-1])
    assert net.n_params == weights + 2 * hidden
    assert net.n_values == weights + 4 * hidden


# ---------------------------------------------------------------------------
# Dropout masks
# ---------------------------------------------------------------------------

def test_dropout_masks_are_the_documented_counter_based_hash():
    X, Y = _problem("log_loss", np.float64, n=40)
    net = _network("relu", "log_loss", False, dropout=[0.25, 0.6])
    _, _, views = _kernel_loss_grad(net, X, Y, _params(UNITS, np.float64, False))
    expected = ref.dropout_masks(SEED, 0, 40, UNITS, [0.25, 0.6], np.float64)
    for k in range(2):
        assert_array_equal(views["mask"][k], expected[k], err_msg=f"layer {k}")


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keeps_units_at_rate_one_minus_p_and_scales_them(p):
    units = [4, 200, 2]
    X, Y = _problem("log_loss", np.float64, n=500, units=units)
    net = K.Network(units, "relu", "log_loss", 0.0, False, 500, dropout=[p],
                    dropout_seed=SEED)
    _, _, views = _kernel_loss_grad(net, X, Y, _params(units, np.float64, False))
    mask = views["mask"][0]
    kept = mask > 0
    sigma = np.sqrt(p * (1 - p) / mask.size)
    assert abs(kept.mean() - (1 - p)) < 5 * sigma, f"keep rate {kept.mean()}"
    assert_array_equal(mask[kept], 1 / (1 - p))


@pytest.mark.parametrize("batch_size", [7, 16, 40])
def test_dropout_masks_follow_the_stream_position_not_the_batches(batch_size):
    """The last batch's masks are those of its rows' stream positions,
    whatever the batch size, and a second epoch continues the stream."""
    n = 40
    X, Y = _problem("log_loss", np.float64, n=n)
    net = _network("relu", "log_loss", False, dropout=[0.3, 0.3], n_rows=batch_size)
    params = _params(UNITS, np.float64, False)
    optimizer = K.Optimizer("sgd", params, learning_rate=0.01)
    work = np.empty(net.workspace_size(K.EPOCH_PART))
    for epoch in range(2):
        K.train_epoch(net, optimizer, K.Data(X, Y), np.empty(0, dtype=np.intp), batch_size,
                      params, np.empty(net.n_params), work)
        assert net.stream_position == (epoch + 1) * n
        last = n - (n % batch_size or batch_size)
        expected = ref.dropout_masks(SEED, epoch * n + last, n - last, UNITS, [0.3, 0.3],
                                     np.float64)
        views = net.layer_views(work, n - last)
        for k in range(2):
            assert_array_equal(views["mask"][k], expected[k])


def test_a_different_seed_draws_different_masks():
    X, Y = _problem("log_loss", np.float64)
    masks = []
    for seed in (1, 2):
        net = K.Network(UNITS, "relu", "log_loss", 0.0, False, 64, dropout=[0.5, 0.5],
                        dropout_seed=seed)
        masks.append(_kernel_loss_grad(net, X, Y, _params(UNITS, np.float64, False))[2]["mask"][0].copy())
    assert not np.array_equal(*masks)


# ---------------------------------------------------------------------------
# Kernel checks
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("n, batch_size", [(10, 1), (21, 10), (1, 1)])
def test_a_training_batch_of_one_row_with_batch_norm_raises(n, batch_size):
    X, Y = _problem("squared_error", np.float64, n=n)
    net = _network("relu", "squared_error", batch_norm=True, n_rows=batch_size)
    params = _params(UNITS, np.float64, True)
    with pytest.raises(ValueError, match="at least 2 rows in every training batch"):
        K.train_epoch(net, K.Optimizer("sgd", params[:net.n_params], learning_rate=0.1),
                      K.Data(X, Y), np.empty(0, dtype=np.intp), batch_size, params.copy(),
                      np.empty(net.n_params), np.empty(net.workspace_size(K.EPOCH_PART)))


@pytest.mark.parametrize("dropout", [[0.5], [0.1, 1.0], [-0.1, 0.0]])
def test_network_rejects_bad_dropout_rates(dropout):
    with pytest.raises(ValueError, match="dropout must be 2 rates"):
        _network("relu", "squared_error", False, dropout=dropout)


# ---------------------------------------------------------------------------
# Against PyTorch
# ---------------------------------------------------------------------------

def _torch_batch_norm_run(model_params, X, y, steps, lr, activation):
    """PyTorch's Linear -> BatchNorm1d -> activation stack from the same
    starting weights, trained by full-batch SGD (no momentum) on 0.5 sum of
    squared errors / n; returns its state and eval-mode predictions."""
    torch = optional("torch")
    torch.manual_seed(0)
    units = model_params["units"]
    coefs, intercepts = model_params["coefs"], model_params["intercepts"]
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[activation]
    linears, norms, layers = [], [], []
    for l, (coef, intercept) in enumerate(zip(coefs, intercepts)):
        linear = linear_from(torch, coef, intercept)
        linears.append(linear)
        layers.append(linear)
        if l < len(coefs) - 1:
            norm = torch.nn.BatchNorm1d(units[l + 1], momentum=0.1, eps=1e-5,
                                        dtype=torch.float64)
            norms.append(norm)
            layers += [norm, act()]
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y.reshape(len(y), -1))
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        J = 0.5 * ((net(X_t) - y_t) ** 2).sum() / len(X)
        J.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        predictions = net(X_t).numpy()
    detach = lambda t: t.detach().numpy().copy()  # noqa: E731
    return {
        "coefs": [detach(m.weight).T for m in linears],
        "intercepts": [detach(m.bias) for m in linears],
        "gammas": [detach(m.weight) for m in norms],
        "betas": [detach(m.bias) for m in norms],
        "running_means": [detach(m.running_mean) for m in norms],
        "running_vars": [detach(m.running_var) for m in norms],
        "predictions": predictions,
    }


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_batch_norm_sgd_steps_equal_pytorch(activation):
    optional("torch")
    X, y = make_regression(60, 5, noise=5.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    start = MLPRegressor(hidden_layer_sizes=(8, 6), activation=activation,
                         batch_norm=True, random_state=0)
    start._random_state = np.random.RandomState(0)
    start.n_outputs_ = 1
    start._initialize([5, 8, 6, 1], np.float64)
    params = dict(units=[5, 8, 6, 1], coefs=[c.copy() for c in start.coefs_],
                  intercepts=[b.copy() for b in start.intercepts_])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPRegressor(hidden_layer_sizes=(8, 6), activation=activation, solver="sgd",
                            momentum=0.0, learning_rate_init=0.1, batch_size=60,
                            shuffle=False, alpha=0.0, max_iter=5, tol=0.0,
                            n_iter_no_change=10**6, batch_norm=True,
                            random_state=0).fit(X, y)
    theirs = _torch_batch_norm_run(params, X, y, 5, 0.1, activation)
    for name in ("coefs", "intercepts"):
        for l, (a, b) in enumerate(zip(getattr(ours, name + "_"), theirs[name])):
            assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"{name}_[{l}]")
    for name in ("gammas", "betas", "running_means", "running_vars"):
        for k, (a, b) in enumerate(zip(getattr(ours, f"batch_norm_{name}_"), theirs[name])):
            assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"batch_norm_{name}_[{k}]")
    assert_allclose(ours.predict(X), theirs["predictions"].ravel(), rtol=1e-9, atol=1e-12)


def test_dropout_gradient_equals_pytorch_given_the_same_masks():
    """One step's gradient with cbp's masks applied in PyTorch as
    Dropout would (a * mask, mask in {0, 1/(1-p)})."""
    torch = optional("torch")
    X, Y = _problem("squared_error", np.float64, n=20)
    params = _params(UNITS, np.float64, batch_norm=False)
    net = _network("tanh", "squared_error", False, dropout=[0.3, 0.5])
    J, grads, views = _kernel_loss_grad(net, X, Y, params)
    coefs, intercepts = ref.unpack(params, UNITS)
    W = [torch.tensor(c, requires_grad=True) for c in coefs]
    b = [torch.tensor(v, requires_grad=True) for v in intercepts]
    a = torch.from_numpy(X)
    for l in range(3):
        z = a @ W[l] + b[l]
        a = z if l == 2 else torch.tanh(z) * torch.from_numpy(views["mask"][l].copy())
    loss = 0.5 * ((a - torch.from_numpy(Y)) ** 2).sum() / len(X) + 0.5 * 0.01 * sum(
        (w ** 2).sum() for w in W) / len(X)
    loss.backward()
    expected = np.concatenate([w.grad.numpy().ravel() for w in W] + [v.grad.numpy() for v in b])
    assert_allclose(J, loss.item(), rtol=1e-12)
    assert_allclose(grads, expected, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------
# The estimators
# ---------------------------------------------------------------------------

def _digits_like(n=300, seed=0):
    X, y = make_classification(n, 10, n_informative=6, n_classes=3, random_state=seed)
    return StandardScaler().fit_transform(X), y


def _fit(model, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **kw)


def _same_model(a, b):
    """a and b have the same trained arrays, bit for bit: the same attributes
    (both fitted, or neither), one array per layer in each."""
    for name in ("coefs_", "intercepts_", "batch_norm_gammas_", "batch_norm_betas_",
                 "batch_norm_running_means_", "batch_norm_running_vars_"):
        assert hasattr(a, name) == hasattr(b, name), name
        for x, y in zip(getattr(a, name, []), getattr(b, name, []), strict=True):
            assert_array_equal(x, y, err_msg=name)


SOLVERS = list(ALL_SOLVERS)  # every solver cbp has (its registry)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_batch_norm_attributes_one_array_per_hidden_layer(dtype, solver):
    X, y = _digits_like()
    model = _fit(MLPClassifier((16, 8), solver=solver, batch_norm=True, max_iter=20,
                               learning_rate_init=0.05, random_state=0), X.astype(dtype), y)
    for name in ("gammas", "betas", "running_means", "running_vars"):
        arrays = getattr(model, f"batch_norm_{name}_")
        assert [a.shape for a in arrays] == [(16,), (8,)], name
        assert all(a.dtype == dtype for a in arrays), name
    assert all(np.all(v > 0) for v in model.batch_norm_running_vars_)
    assert not np.allclose(model.batch_norm_gammas_[0], 1.0), "gammas were not trained"
    assert model.score(X.astype(dtype), y) > 0.7


def test_no_batch_norm_attributes_without_it():
    X, y = _digits_like()
    model = _fit(MLPClassifier((8,), max_iter=5, random_state=0), X, y)
    assert not hasattr(model, "batch_norm_gammas_")


@pytest.mark.parametrize("params", [dict(dropout=0.3), dict(batch_norm=True),
                                    dict(dropout=[0.2, 0.4], batch_norm=True)],
                         ids=["dropout", "bn", "both"])
@pytest.mark.parametrize("solver", STOCHASTIC)
def test_same_random_state_gives_bit_identical_models(solver, params):
    X, y = _digits_like()
    a, b = (_fit(MLPClassifier((12, 6), solver=solver, max_iter=8, random_state=3, **params),
                 X, y) for _ in range(2))
    _same_model(a, b)
    c = _fit(MLPClassifier((12, 6), solver=solver, max_iter=8, random_state=4, **params), X, y)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


@pytest.mark.parametrize("dropout", [0.0, [0.0, 0.0]])
def test_zero_dropout_and_no_batch_norm_change_nothing(dropout):
    """The defaults draw nothing more from random_state: the model is the
    one without the parameters (and so scikit-learn's)."""
    X, y = _digits_like()
    plain = _fit(MLPClassifier((12, 6), max_iter=5, random_state=0), X, y)
    given = _fit(MLPClassifier((12, 6), max_iter=5, random_state=0, dropout=dropout,
                               batch_norm=False), X, y)
    _same_model(plain, given)


def test_dropout_is_random_in_training_and_off_in_prediction():
    X, y = _digits_like()
    model = _fit(MLPClassifier((32,), max_iter=5, random_state=0, dropout=0.5), X, y)
    assert_array_equal(model.predict_proba(X), model.predict_proba(X))
    plain = MLPClassifier((32,), random_state=0)
    plain.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    plain._params()
    assert_array_equal(plain.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("params", [dict(dropout=0.3), dict(dropout=0.3, batch_norm=True)])
@pytest.mark.parametrize("how", ["pickle", "save"])
def test_partial_fit_continues_the_dropout_stream_across_pickle_and_save(params, how,
                                                                         tmp_path):
    X, y = _digits_like()
    whole = MLPClassifier((12,), random_state=0, **params)
    for _ in range(3):
        whole.partial_fit(X, y, classes=[0, 1, 2])
    resumed = MLPClassifier((12,), random_state=0, **params).partial_fit(X, y, classes=[0, 1, 2])
    if how == "pickle":
        resumed = pickle.loads(pickle.dumps(resumed))
    else:
        resumed.save(tmp_path / "model.npz")
        resumed = cbp.load(tmp_path / "model.npz")
    for _ in range(2):
        resumed.partial_fit(X, y)
    _same_model(whole, resumed)
    assert whole._dropout_stream == 3 * len(X)


def test_warm_start_keeps_the_running_statistics_and_the_stream():
    X, y = _digits_like()
    model = _fit(MLPClassifier((12,), max_iter=3, random_state=0, batch_norm=True,
                               dropout=0.2, warm_start=True), X, y)
    means = [m.copy() for m in model.batch_norm_running_means_]
    stream = model._dropout_stream
    _fit(model, X, y)
    assert model._dropout_stream == stream + 3 * len(X)
    assert not np.array_equal(means[0], model.batch_norm_running_means_[0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_models_trained_in_two_threads_equal_each_trained_alone():
    X, y = _digits_like(n=2000)
    make = lambda seed: MLPClassifier((64, 32), max_iter=4, random_state=seed,  # noqa: E731
                                      dropout=0.3, batch_norm=True)
    alone = [_fit(make(seed), X, y) for seed in (0, 1)]
    together = [make(0), make(1)]
    errors = []

    def fit_in_thread(model):
        try:
            _fit(model, X, y)
        except BaseException as exc:  # (re-raised below, in the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=fit_in_thread, args=(m,)) for m in together]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for a, b in zip(alone, together, strict=True):
        assert b.n_iter_ == a.n_iter_ == 4
        _same_model(a, b)


def test_lbfgs_sets_the_running_statistics_once_from_all_the_data():
    X, y = _digits_like()
    model = _fit(MLPClassifier((10, 6), solver="lbfgs", max_iter=30, batch_norm=True,
                               random_state=0), X, y)
    params = model._params()
    f = ref.forward_layers(X, model._units, params, "relu", "softmax")
    for k in range(2):
        n = len(X)
        assert_allclose(model.batch_norm_running_means_[k], f["means"][k], rtol=1e-10,
                        atol=1e-12)
        assert_allclose(model.batch_norm_running_vars_[k], f["variances"][k] * n / (n - 1),
                        rtol=1e-10)


def test_lbfgs_with_dropout_is_rejected():
    X, y = _digits_like()
    model = MLPClassifier((8,), solver="lbfgs", dropout=0.2)
    with pytest.raises(ValueError, match="L-BFGS's line search needs a deterministic"):
        model.fit(X, y)


@pytest.mark.parametrize("batch_size, n", [(1, 50), (10, 51)])
def test_one_row_batch_with_batch_norm_raises_and_leaves_the_model(batch_size, n):
    X, y = _digits_like()
    model = _fit(MLPClassifier((8,), batch_norm=True, max_iter=2, random_state=0), X, y)
    before = [c.copy() for c in model.coefs_]
    predicted = model.predict_proba(X)
    bad = model.set_params(batch_size=batch_size)
    with pytest.raises(ValueError, match="at least 2 rows in every training batch"):
        bad.partial_fit(X[:n], y[:n])
    for a, b in zip(before, model.coefs_):
        assert_array_equal(a, b)
    assert_array_equal(model.predict_proba(X), predicted)


def test_batch_norm_cannot_change_on_a_warm_start():
    X, y = _digits_like()
    model = _fit(MLPClassifier((8,), max_iter=2, warm_start=True, random_state=0), X, y)
    with pytest.raises(ValueError, match="batch_norm changed"):
        model.set_params(batch_norm=True).fit(X, y)


@pytest.mark.parametrize("dropout, match", [
    ([0.1, 0.2, 0.3], "dropout has 3 rates, the network has 2 hidden layers"),
    ([0.1, 1.0], r"in \[0, 1\)"),
    (["a", 0.1], "must be numbers"),
])
def test_bad_dropout_rates_raise(dropout, match):
    X, y = _digits_like()
    with pytest.raises(ValueError, match=match):
        MLPClassifier((8, 4), dropout=dropout).fit(X, y)


def test_regressor_with_batch_norm_and_dropout_trains():
    X, y = make_regression(400, 8, noise=1.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    model = _fit(MLPRegressor(hidden_layer_sizes=(32, 16), batch_norm=True, dropout=0.1, max_iter=100,
                              random_state=0), X, y)
    assert model.score(X, y) > 0.9


@pytest.mark.parametrize("solver, params", [
    ("sgd", dict(batch_norm=True, dropout=0.2)), ("adam", dict(dropout=[0.3, 0.1])),
    ("lbfgs", dict(batch_norm=True))])
def test_sparse_input_trains_as_the_same_dense_input(solver, params):
    import scipy.sparse

    X, y = _digits_like()
    X = np.where(np.abs(X) > 1, X, 0.0)
    dense = _fit(MLPClassifier((16, 8), solver=solver, max_iter=10, random_state=0,
                               **params), X, y)
    sparse = _fit(MLPClassifier((16, 8), solver=solver, max_iter=10, random_state=0,
                                **params), scipy.sparse.csr_matrix(X), y)
    for a, b in zip(dense.coefs_, sparse.coefs_):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_validation_loss_and_early_stopping_use_the_running_statistics():
    X, y = _digits_like()
    model = _fit(MLPClassifier((16,), batch_norm=True, dropout=0.2, max_iter=5,
                               random_state=0), X[:240], y[:240], X_val=X[240:],
                 y_val=y[240:])
    params = model._params()
    out = ref.forward_layers(X[240:], model._units, params, "relu", "softmax",
                             training=False)["activations"][-1]
    expected = ref.weighted_loss_sum("log_loss", out, np.eye(3)[y[240:]]) / 60
    assert_allclose(model.validation_loss_curve_[-1], expected, rtol=1e-10)
    assert model.validation_scores_[-1] == model.score(X[240:], y[240:])


def test_validation_loss_of_many_rows_goes_in_chunks_with_batch_norm():
    """Evaluation mode normalises each row by the running statistics, so a
    large validation set goes through in chunks, as without batch_norm."""
    X, y = make_classification(1800, 10, n_informative=6, n_classes=3, random_state=0)
    X = StandardScaler().fit_transform(X)
    model = _fit(MLPClassifier((256,), batch_norm=True, max_iter=2, random_state=0),
                 X[:300], y[:300], X_val=X[300:], y_val=y[300:])
    out = ref.forward_layers(X[300:], model._units, model._params(), "relu", "softmax",
                             training=False)["activations"][-1]
    expected = ref.weighted_loss_sum("log_loss", out, np.eye(3)[y[300:]]) / 1500
    assert_allclose(model.validation_loss_curve_[-1], expected, rtol=1e-10)
    from cbp._network import make_network
    net = make_network(model._fitted_architecture(), "relu", LOSS_ENTRIES["log_loss"], "softmax",
                       0.0, 1500, False, training=False)
    assert net.chunk_rows < 1500


def test_the_gallery_digits_example_runs_and_learns(capsys):
    """docs/examples/plot_batch_norm_dropout.py, whose figures the user guide
    gives (Layers), on one train/test split."""
    example = load_example("plot_batch_norm_dropout")
    example.print_table(example.compare(splits=1))
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and "±" in line]
    assert [row.split(" | ")[0][2:] for row in rows] == list(example.OPTIONS)
    for row in rows:
        accuracy = float(row.split(" | ")[1].split(" ± ")[0])
        assert accuracy > 0.95, row
