"""input_scaling: a learned scale per input feature, x -> x * s before the
first layer (RealMLP's scaling layer), trained with its own learning-rate
factor -- against PyTorch, and through every path a part of the network
takes (save, load, pickle, ONNX, warm start, sparse input, blocks)."""

import pickle

import numpy as np
import pytest
import scipy.sparse
from numpy.testing import assert_allclose, assert_array_equal

import cbp
from cbp import MLPClassifier, MLPRegressor
from optional import optional
from parts import initial_arrays

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N, D = 40, 5


def _data(seed=0, sparse=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D)) * np.array([0.5, 1.0, 2.0, 0.2, 1.5])
    y = np.tanh(X @ rng.normal(size=D)) + 0.1 * rng.normal(size=N)
    if sparse:
        X = np.where(np.abs(X) < 0.6, 0.0, X)
    return X, y


def _full_batch(**params):
    """One update per epoch, in sample order, never stopping early."""
    return dict(dict(hidden_layer_sizes=(7, 6), activation="tanh", batch_size=N,
                     shuffle=False, random_state=0, tol=0.0, n_iter_no_change=10**6,
                     input_scaling=True), **params)


# optimizer name -> (cbp's parameters, torch.optim's optimizer of param groups)
OPTIMIZERS = {
    "sgd": (dict(solver="sgd", momentum=0.0, learning_rate_init=0.05),
            lambda torch, groups: torch.optim.SGD(groups)),
    "sgd-nesterov": (dict(solver="sgd", momentum=0.9, nesterovs_momentum=True,
                          learning_rate_init=0.02),
                     lambda torch, groups: torch.optim.SGD(groups, momentum=0.9,
                                                           nesterov=True)),
    "adamw": (dict(solver="adamw", learning_rate_init=0.01, weight_decay=0.1),
              lambda torch, groups: torch.optim.AdamW(groups, weight_decay=0.1)),
    "rmsprop": (dict(solver="rmsprop", learning_rate_init=0.01, rho=0.9),
                lambda torch, groups: torch.optim.RMSprop(groups, alpha=0.9, eps=1e-8)),
}


def _torch_steps(torch, X, y, steps, lr, factor, make_optimizer, alpha=0.0):
    """PyTorch's (coefs, intercepts, s) after ``steps`` full-batch steps of
    s * x -> Linear -> tanh -> Linear -> tanh -> Linear from cbp's starting
    weights, s from 1, s's learning rate lr * factor, scikit-learn's squared
    error sum / 2n and L2 0.5 alpha sum ||W||^2 / n (not on s)."""
    start = initial_arrays([D, 7, 6, 1], "tanh", 0, np.float64)
    linears = []
    for coef, intercept in zip(start["coefs"], start["intercepts"]):
        linear = torch.nn.Linear(*coef.shape, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(coef.T.copy()))
            linear.bias.copy_(torch.from_numpy(intercept.copy()))
        linears.append(linear)
    s = torch.nn.Parameter(torch.ones(D, dtype=torch.float64))
    weights = [p for linear in linears for p in linear.parameters()]
    opt = make_optimizer(torch, [{"params": weights, "lr": lr},
                                 {"params": [s], "lr": lr * factor}])
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y.reshape(-1, 1))
    for _ in range(steps):
        opt.zero_grad()
        a = X_t * s
        for l, linear in enumerate(linears):
            a = linear(a)
            if l < len(linears) - 1:
                a = torch.tanh(a)
        J = ((a - y_t) ** 2).sum() / (2 * N)
        J = J + 0.5 * alpha * sum((m.weight ** 2).sum() for m in linears) / N
        J.backward()
        opt.step()
    return ([m.weight.detach().numpy().T for m in linears],
            [m.bias.detach().numpy() for m in linears], s.detach().numpy())


@pytest.mark.parametrize("factor", [1.0, 6.0, 0.3])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_five_steps_train_as_pytorch(optimizer, factor):
    torch = optional("torch")
    X, y = _data()
    params, make_optimizer = OPTIMIZERS[optimizer]
    ours = MLPRegressor(**_full_batch(max_iter=5, input_scaling_lr_factor=factor, alpha=0.1,
                                      **params)).fit(X, y)
    coefs, intercepts, s = _torch_steps(torch, X, y, 5, params["learning_rate_init"], factor,
                                        make_optimizer, alpha=0.1)
    assert_allclose(ours.input_scalings_[0], s, rtol=1e-10, atol=1e-12)
    for ours_l, theirs_l in zip(ours.coefs_ + ours.intercepts_, coefs + intercepts):
        assert_allclose(ours_l, theirs_l, rtol=1e-10, atol=1e-12)


def test_lbfgs_minimises_the_same_loss_as_the_stochastic_solvers():
    """L-BFGS trains s too: its loss at the end is below the start's, and
    the scales moved from 1."""
    X, y = _data()
    model = MLPRegressor(**_full_batch(solver="lbfgs", max_iter=30)).fit(X, y)
    assert not np.allclose(model.input_scalings_[0], 1.0)
    start = MLPRegressor(**_full_batch(solver="lbfgs", max_iter=1)).fit(X, y)
    assert model.loss_ < start.loss_


def test_scales_start_at_one_and_leave_the_weights_as_without_them():
    X, y = _data()
    scaled = MLPRegressor(**_full_batch(max_iter=1, learning_rate_init=1e-300)).fit(X, y)
    plain = MLPRegressor(**_full_batch(max_iter=1, learning_rate_init=1e-300,
                                       input_scaling=False)).fit(X, y)
    assert_array_equal(scaled.input_scalings_[0], np.ones(D))
    for a, b in zip(scaled.coefs_, plain.coefs_):
        assert_array_equal(a, b)


def test_without_it_a_model_has_no_input_scalings_attribute():
    X, y = _data()
    model = MLPRegressor(**_full_batch(max_iter=2, input_scaling=False)).fit(X, y)
    assert not hasattr(model, "input_scalings_")


def test_an_ensemble_refuses_it_and_names_the_alternative():
    X, y = _data()
    with pytest.raises(ValueError, match="input_scaling.*ensemble='batch' or 'mini'"):
        MLPRegressor(**_full_batch(ensemble_size=4)).fit(X, y)


@pytest.mark.parametrize("factor", [0.0, -1.0])
def test_a_learning_rate_factor_that_is_not_positive_is_refused(factor):
    X, y = _data()
    with pytest.raises(ValueError, match="input_scaling_lr_factor"):
        MLPRegressor(**_full_batch(input_scaling_lr_factor=factor)).fit(X, y)


def test_warm_start_refuses_a_network_that_gained_it():
    X, y = _data()
    model = MLPRegressor(**_full_batch(max_iter=2, input_scaling=False, warm_start=True))
    model.fit(X, y)
    model.set_params(input_scaling=True)
    with pytest.raises(ValueError, match="input_scaling changed"):
        model.fit(X, y)
    assert not hasattr(model, "input_scalings_")
    model.predict(X)  # still usable


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_save_load_and_pickle_give_the_same_model_that_trains_on_alike(Estimator, tmp_path):
    X, y = _data()
    if Estimator is MLPClassifier:
        y = (y > 0).astype(int)
    model = Estimator(**_full_batch(max_iter=3, solver="adam")).fit(X, y)
    model.save(tmp_path / "m.npz")
    copies = [cbp.load(tmp_path / "m.npz"), pickle.loads(pickle.dumps(model))]
    for copy in copies:
        assert_array_equal(copy.input_scalings_[0], model.input_scalings_[0])
        assert_array_equal(copy.predict(X), model.predict(X))
    model.partial_fit(X, y)
    for copy in copies:
        copy.partial_fit(X, y)
        assert_array_equal(copy.input_scalings_[0], model.input_scalings_[0])


def test_an_archive_without_its_scales_is_refused(tmp_path):
    X, y = _data()
    model = MLPRegressor(**_full_batch(max_iter=2)).fit(X, y)
    model.save(tmp_path / "m.npz")
    arrays = dict(np.load(tmp_path / "m.npz"))
    del arrays["input_scalings_/0"]
    arrays["__manifest__"] = np.array(sorted(arrays))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="input_scalings_ is missing"):
        cbp.load(tmp_path / "bad.npz")


def test_assigned_scales_are_what_the_model_predicts_with():
    X, y = _data()
    model = MLPRegressor(**_full_batch(max_iter=2)).fit(X, y)
    expected = model.predict(X * 2.0)
    model.input_scalings_ = [model.input_scalings_[0] * 2.0, None, None]
    assert_allclose(model.predict(X), expected, rtol=1e-12)


def test_assigned_scales_of_the_wrong_shape_are_refused_by_name():
    X, y = _data()
    model = MLPRegressor(**_full_batch(max_iter=2)).fit(X, y)
    model.input_scalings_ = [model.input_scalings_[0][:2], None, None]
    with pytest.raises(ValueError, match=r"input_scalings_ must hold arrays of shapes"):
        model.predict(X)


def test_sparse_input_trains_as_dense():
    X, y = _data(sparse=True)
    dense = MLPRegressor(**_full_batch(max_iter=4)).fit(X, y)
    sparse = MLPRegressor(**_full_batch(max_iter=4)).fit(scipy.sparse.csr_matrix(X), y)
    assert_allclose(sparse.input_scalings_[0], dense.input_scalings_[0], rtol=1e-12)
    assert_allclose(sparse.predict(X), dense.predict(X), rtol=1e-12)


def test_blocks_on_threads_train_as_one_piece_to_rounding():
    X, y = _data()
    whole = MLPRegressor(**_full_batch(max_iter=4)).fit(X, y)
    blocks = MLPRegressor(**_full_batch(max_iter=4, block_rows=8)).fit(X, y)
    assert_allclose(blocks.input_scalings_[0], whole.input_scalings_[0], rtol=1e-12)


def test_batch_norm_and_dropout_train_with_it():
    X, y = _data()
    model = MLPRegressor(**_full_batch(max_iter=3, batch_norm=True, dropout=0.1)).fit(X, y)
    assert np.isfinite(model.input_scalings_[0]).all()
    assert not np.allclose(model.input_scalings_[0], 1.0)
    assert len(model.batch_norm_gammas_) == 2


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_onnx_export_predicts_as_the_model(Estimator):
    optional("skl2onnx")
    ort = optional("onnxruntime")
    import cbp.onnx

    X, y = _data()
    is_classifier = Estimator is MLPClassifier
    if is_classifier:
        y = (y > 0).astype(int)
    model = Estimator(**_full_batch(max_iter=5, solver="adam",
                                    learning_rate_init=0.05)).fit(X, y)
    options = {"zipmap": False} if is_classifier else None
    onx = cbp.onnx.to_onnx(model, X[:1], options=options)
    session = ort.InferenceSession(onx.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: X})
    if is_classifier:
        assert_allclose(outputs[1], model.predict_proba(X), rtol=1e-9, atol=1e-12)
    else:
        assert_allclose(outputs[0].ravel(), model.predict(X), rtol=1e-9, atol=1e-12)
