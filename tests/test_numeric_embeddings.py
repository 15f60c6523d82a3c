"""numeric_embedding: a trained embedding of each input feature before the
first layer (rtdl_num_embeddings's PeriodicEmbeddings), in the kernel --
against rtdl's modules and PyTorch's autograd and optimizers, and through
the paths every part of a network takes (save, load, pickle, warm start,
L-BFGS, ensembles, blocks, the refusals)."""

import json
import pickle

import numpy as np
import pytest
import scipy.sparse
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.utils import check_random_state

import cbp
from cbp import MLPClassifier, MLPRegressor
from cbp._dispatch import kernel as _kernel
from cbp._network import initial_parameters
from cbp._parts import Architecture, views
from optional import optional

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N, F, D, Q, SIGMA, B = 30, 4, 3, 5, 0.3, 6   # rows, features, embedding size,
# frequencies, their scale, bins
HIDDEN = (7, 6)
# embedded_features=K: only the first K of the F columns are embedded, the
# others reach layer 0 unchanged after the embeddings (units[0] = K D + F - K)
K = 2
RTOL = {np.float64: 1e-12, np.float32: 2e-5}
# each embedding's estimator parameters, and its encoding's size (the
# Architecture's)
KINDS = {"periodic": (dict(n_frequencies=Q, frequency_scale=SIGMA), Q),
         "piecewise_linear": (dict(n_bins=B), B)}


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, F)) * np.array([0.5, 1.0, 2.0, 1.5])
    y = np.tanh(X @ rng.normal(size=F)) + 0.1 * rng.normal(size=N)
    return X, y


def _estimator_params(kind="periodic", **params):
    """Full batch, one update per epoch, in sample order, never stopping."""
    return dict(dict(hidden_layer_sizes=HIDDEN, activation="tanh", batch_size=N,
                     shuffle=False, random_state=0, tol=0.0, n_iter_no_change=10**6,
                     numeric_embedding=kind, embedding_size=D, **KINDS[kind][0]), **params)


def _architecture(kind, units, ensemble=None, k=F):
    """units[0] is k * D + F - k: the first k of F columns embedded."""
    return Architecture((k * D + F - k, *units[1:]), ensemble,
                        embedding=(kind, F, KINDS[kind][1], k))


def _start(kind, units, dtype=np.float64, ensemble=None, random_state=0, X=None, k=F):
    """(params, arrays): what an estimator with these units starts from (the
    bins of the piecewise-linear embedding from X[:, :k], _data's by
    default)."""
    architecture = _architecture(kind, units, ensemble, k)
    start = dict(KINDS[kind][0], X=(_data()[0] if X is None else X)[:, :k])
    params = initial_parameters(architecture, "tanh", check_random_state(random_state),
                                dtype, embedding_start=start)
    return params, views(params, architecture)


def _randomise_piecewise_coefs(kind, arrays, seed=1):
    """The piecewise-linear embedding's coefs start at 0: random ones, so
    that the comparisons see the encoding."""
    if kind == "piecewise_linear":
        coefs = arrays["embedding_coefs"][0]
        coefs[...] = np.random.default_rng(seed).uniform(-0.5, 0.5, coefs.shape)


def _rtdl_embedding(torch, rtdl, kind, arrays, X=None, k=F):
    """rtdl's embedding module (float64) of k features holding cbp's arrays
    (the piecewise-linear one with bins from cbp's PiecewiseLinearEncoder on
    X[:, :k])."""
    def put(parameter, name):
        parameter.copy_(torch.from_numpy(arrays[name][0].astype(np.float64)))

    if kind == "periodic":
        module = rtdl.PeriodicEmbeddings(k, D, n_frequencies=Q, frequency_init_scale=SIGMA,
                                         activation=True, lite=False).double()
        with torch.no_grad():
            put(module.periodic.weight, "embedding_frequencies")
            put(module.linear.weight, "embedding_coefs")
            put(module.linear.bias, "embedding_intercepts")
        return module
    edges = cbp.PiecewiseLinearEncoder(n_bins=B).fit(
        (_data()[0] if X is None else X)[:, :k]).bin_edges_
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # (rtdl's buffers: the default dtype)
    try:
        module = rtdl.PiecewiseLinearEmbeddings([torch.from_numpy(e) for e in edges], D,
                                                activation=False, version="B")
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        put(module.linear0.weight, "embedding_slopes")
        put(module.linear0.bias, "embedding_intercepts")
        put(module.linear.weight, "embedding_coefs")
    return module


def _rtdl_parameters(kind, module):
    """{cbp's part name: rtdl's parameter}."""
    if kind == "periodic":
        return {"embedding_frequencies": module.periodic.weight,
                "embedding_coefs": module.linear.weight,
                "embedding_intercepts": module.linear.bias}
    return {"embedding_slopes": module.linear0.weight,
            "embedding_intercepts": module.linear0.bias,
            "embedding_coefs": module.linear.weight}


def _linears(torch, arrays):
    linears = []
    for coef, intercept in zip(arrays["coefs"], arrays["intercepts"]):
        linear = torch.nn.Linear(*coef.shape, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(coef.T.astype(np.float64)))
            linear.bias.copy_(torch.from_numpy(intercept.astype(np.float64)))
        linears.append(linear)
    return linears


def _torch_forward(torch, embedding, linears, X_t, k=F):
    """The MLP on cat([embedding(X[:, :k]).flatten(1), X[:, k:]], 1)."""
    a = torch.cat([embedding(X_t[:, :k]).flatten(1), X_t[:, k:]], 1)
    for l, linear in enumerate(linears):
        a = linear(a)
        if l < len(linears) - 1:
            a = torch.tanh(a)
    return a


def _max_relative(ours, theirs):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", list(KINDS))
def test_the_embedding_is_rtdl_s(kind, dtype):
    """A one-layer network whose layer is the identity outputs the embedding
    (of rows inside and beyond the training range)."""
    torch = optional("torch")
    rtdl = optional("rtdl_num_embeddings")
    X = np.vstack([_data()[0], 1.5 * _data(1)[0]])
    units = (F * D, F * D)
    params, arrays = _start(kind, units, dtype)
    _randomise_piecewise_coefs(kind, arrays)
    arrays["coefs"][0][...] = np.eye(F * D)
    arrays["intercepts"][0][...] = 0
    net = _kernel.Network(np.array(units, dtype=np.intp), "identity", None, output="identity",
                          chunk_rows=7, **_architecture(kind, units).kernel_arguments())
    out = np.empty((len(X), F * D), dtype=dtype)
    work = np.empty(net.workspace_size(_kernel.FORWARD_PART), dtype=dtype)
    _kernel.forward(net, _kernel.Data(np.ascontiguousarray(X, dtype=dtype)), params, out, work)
    module = _rtdl_embedding(torch, rtdl, kind, arrays)
    theirs = module(torch.from_numpy(X.astype(dtype).astype(np.float64))).flatten(1)
    theirs = theirs.detach().numpy()
    if kind == "periodic":
        assert (theirs > 0).any() and (theirs == 0).any()  # the ReLU acts
    assert_allclose(out, theirs, rtol=RTOL[dtype], atol=RTOL[dtype] * np.abs(theirs).max())


def test_the_bins_are_rtdl_s():
    """The piecewise-linear embedding's buffers are rtdl's encoding's
    (weights, biases), from the training X's quantile bins."""
    torch = optional("torch")
    rtdl = optional("rtdl_num_embeddings")
    X, y = _data()
    model = MLPRegressor(**_estimator_params("piecewise_linear", max_iter=1)).fit(X, y)
    module = _rtdl_embedding(torch, rtdl, "piecewise_linear", views(
        model._params(), model._fitted_architecture()), X)
    assert_array_equal(model.embedding_bin_weights_[0], module.impl.weight.numpy())
    assert_array_equal(model.embedding_bin_biases_[0], module.impl.bias.numpy())
    assert_array_equal(model.embedding_bin_counts_[0], np.full(F, B))


def test_a_constant_feature_and_one_of_few_values_embed_as_cbp_s_encoder():
    """Bins merge for a feature of few distinct values (fewer than n_bins:
    padding in the middle, rtdl's layout) and a constant one encodes as
    zeros: its embedding is x a + b alone."""
    X, y = _data()
    X[:, 1] = 2.0
    X[:, 2] = np.round(X[:, 2] / 3)
    model = MLPRegressor(**_estimator_params("piecewise_linear", max_iter=1)).fit(X, y)
    counts = model.embedding_bin_counts_[0]
    assert counts[1] == 0 and 1 < counts[2] < B and counts[0] == B
    assert np.all(model.embedding_bin_weights_[0][1] == 0)
    assert np.isfinite(model.predict(X)).all()


@pytest.mark.parametrize("k", [F, K], ids=["every-column", "first-k"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", list(KINDS))
def test_the_loss_gradient_is_pytorch_s(kind, dtype, k):
    torch = optional("torch")
    rtdl = optional("rtdl_num_embeddings")
    X, y = _data()
    units = (k * D + F - k, *HIDDEN, 1)
    params, arrays = _start(kind, units, dtype, k=k)
    _randomise_piecewise_coefs(kind, arrays)
    architecture = _architecture(kind, units, k=k)
    net = _kernel.Network(np.array(units, dtype=np.intp), "tanh", "squared_error", 0.0,
                          False, 11, **architecture.kernel_arguments())
    grads = np.empty(net.n_params, dtype=dtype)
    work = np.empty(net.workspace_size(_kernel.BACKWARD_PART), dtype=dtype)
    J = _kernel.loss_grad(net, _kernel.Data(np.ascontiguousarray(X, dtype=dtype),
                                            np.ascontiguousarray(y.reshape(-1, 1), dtype=dtype)),
                          params, grads, work)
    module, linears = _rtdl_embedding(torch, rtdl, kind, arrays, k=k), _linears(torch, arrays)
    X_t = torch.from_numpy(X.astype(dtype).astype(np.float64))
    y_t = torch.from_numpy(y.astype(dtype).astype(np.float64).reshape(-1, 1))
    loss = ((_torch_forward(torch, module, linears, X_t, k) - y_t) ** 2).sum() / (2 * N)
    loss.backward()
    assert_allclose(J, loss.item(), rtol=RTOL[dtype])
    ours = views(np.concatenate([grads, params[net.n_params:]]), architecture)
    for name, parameter in _rtdl_parameters(kind, module).items():
        assert _max_relative(ours[name][0], parameter.grad.numpy()) < 50 * RTOL[dtype], name
    for l, linear in enumerate(linears):
        assert _max_relative(ours["coefs"][l], linear.weight.grad.numpy().T) < 50 * RTOL[dtype]
        assert _max_relative(ours["intercepts"][l], linear.bias.grad.numpy()) < 50 * RTOL[dtype]


# optimizer name -> (cbp's parameters, torch.optim's optimizer)
OPTIMIZERS = {
    "sgd": (dict(solver="sgd", momentum=0.0, learning_rate_init=0.05),
            lambda torch, parameters: torch.optim.SGD(parameters, lr=0.05)),
    "sgd-nesterov": (dict(solver="sgd", momentum=0.9, nesterovs_momentum=True,
                          learning_rate_init=0.02),
                     lambda torch, parameters: torch.optim.SGD(parameters, lr=0.02,
                                                               momentum=0.9, nesterov=True)),
    "adamw": (dict(solver="adamw", learning_rate_init=0.01, weight_decay=0.1),
              lambda torch, parameters: torch.optim.AdamW(parameters, lr=0.01,
                                                          weight_decay=0.1)),
}


def _torch_steps(torch, rtdl, kind, X, y, steps, make_optimizer, alpha, k=F):
    """rtdl's embedding + Linear/tanh layers after ``steps`` full-batch
    steps from cbp's start; scikit-learn's squared error sum / 2n and L2 0.5
    alpha sum ||W||^2 / n on the Linear layers' weights alone."""
    _, arrays = _start(kind, (F * D, *HIDDEN, 1), k=k)
    module, linears = _rtdl_embedding(torch, rtdl, kind, arrays, k=k), _linears(torch, arrays)
    opt = make_optimizer(torch, [*module.parameters(),
                                 *[p for m in linears for p in m.parameters()]])
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y.reshape(-1, 1))
    for _ in range(steps):
        opt.zero_grad()
        J = ((_torch_forward(torch, module, linears, X_t, k) - y_t) ** 2).sum() / (2 * N)
        J = J + 0.5 * alpha * sum((m.weight ** 2).sum() for m in linears) / N
        J.backward()
        opt.step()
    return module, linears


@pytest.mark.parametrize("embedded", [None, K], ids=["every-column", "first-k"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_five_steps_train_as_pytorch(kind, optimizer, embedded):
    torch = optional("torch")
    rtdl = optional("rtdl_num_embeddings")
    X, y = _data()
    k = F if embedded is None else embedded
    params, make_optimizer = OPTIMIZERS[optimizer]
    ours = MLPRegressor(**_estimator_params(kind, max_iter=5, alpha=0.1,
                                            embedded_features=embedded, **params)).fit(X, y)
    module, linears = _torch_steps(torch, rtdl, kind, X, y, 5, make_optimizer, alpha=0.1, k=k)
    pairs = [(getattr(ours, name + "_")[0], parameter)
             for name, parameter in _rtdl_parameters(kind, module).items()]
    pairs += [(c, m.weight.T) for c, m in zip(ours.coefs_, linears)]
    pairs += [(b, m.bias) for b, m in zip(ours.intercepts_, linears)]
    for mine, theirs in pairs:
        assert_allclose(mine, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)
    # (the embedding moved)
    _, start = _start(kind, (k * D + F - k, *HIDDEN, 1), k=k)
    assert not np.allclose(ours.embedding_coefs_[0], start["embedding_coefs"][0])


@pytest.mark.parametrize("kind", list(KINDS))
def test_float32_trains_as_float64_loosely(kind):
    X, y = _data()
    params = _estimator_params(kind, max_iter=5, solver="adamw", learning_rate_init=0.01)
    wide = MLPRegressor(**params).fit(X, y)
    narrow = MLPRegressor(**params).fit(X.astype(np.float32), y.astype(np.float32))
    assert narrow.embedding_coefs_[0].dtype == np.float32
    for name in ("embedding_coefs_", "embedding_intercepts_"):
        assert_allclose(getattr(narrow, name)[0], getattr(wide, name)[0], rtol=1e-3, atol=1e-5)
    assert_allclose(narrow.predict(X.astype(np.float32)), wide.predict(X), rtol=1e-3,
                    atol=1e-4)


def test_the_periodic_start_is_rtdl_s_distribution():
    """Frequencies normal(0, sigma) truncated at 3 sigma; the per-feature
    linear map U(-b, b), b = 1 / sqrt(2q)."""
    _, arrays = _start("periodic", (F * D, 5, 1), random_state=3)
    c = arrays["embedding_frequencies"][0]
    assert c.shape == (F, Q) and np.all(np.abs(c) <= 3 * SIGMA) and c.std() > 0.1 * SIGMA
    bound = (2 * Q) ** -0.5
    for name, shape in (("embedding_coefs", (F, 2 * Q, D)), ("embedding_intercepts", (F, D))):
        array = arrays[name][0]
        assert array.shape == shape and np.all(np.abs(array) <= bound)


def test_the_piecewise_linear_start_is_rtdl_s_version_b():
    """Slopes and intercepts U(-b, b), b = 1 / sqrt(d) (LinearEmbeddings'),
    the per-feature coefs 0: at the start the embedding is linear."""
    _, arrays = _start("piecewise_linear", (F * D, 5, 1), random_state=3)
    bound = D ** -0.5
    for name in ("embedding_slopes", "embedding_intercepts"):
        array = arrays[name][0]
        assert array.shape == (F, D) and np.all(np.abs(array) <= bound) and array.std() > 0
    assert arrays["embedding_coefs"][0].shape == (F, B, D)
    assert np.all(arrays["embedding_coefs"][0] == 0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_weights_start_as_without_it(kind):
    """The embedding is drawn after every other draw: a network without one
    starts as it always did, and the layers after the first start alike."""
    X, y = _data()
    plain = MLPRegressor(**_estimator_params(kind, max_iter=1, learning_rate_init=1e-300,
                                             numeric_embedding=None)).fit(X, y)
    embedded = MLPRegressor(**_estimator_params(kind, max_iter=1,
                                                learning_rate_init=1e-300)).fit(X, y)
    assert embedded.coefs_[0].shape == (F * D, HIDDEN[0])
    assert plain.coefs_[0].shape == (F, HIDDEN[0])
    assert not hasattr(plain, "embedding_coefs_")


@pytest.mark.parametrize("kind", list(KINDS))
def test_lbfgs_trains_it(kind):
    X, y = _data()
    start = MLPRegressor(**_estimator_params(kind, solver="lbfgs", max_iter=1)).fit(X, y)
    model = MLPRegressor(**_estimator_params(kind, solver="lbfgs", max_iter=40)).fit(X, y)
    assert model.loss_ < 0.5 * start.loss_
    assert not np.allclose(model.embedding_coefs_[0], start.embedding_coefs_[0])


@pytest.mark.parametrize("k", [F, K])
@pytest.mark.parametrize("form", ["batch", "mini", "packed"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_an_ensemble_s_gradient_is_its_central_differences(kind, form, k):
    """The members share the embedding (of the first k columns): its
    gradient sums theirs."""
    X, y = _data()
    units = (F * D, 5, 1)
    ensemble = (3, form)
    architecture = _architecture(kind, units, ensemble, k)
    params, arrays = _start(kind, units, ensemble=ensemble, k=k)
    _randomise_piecewise_coefs(kind, arrays)
    net = _kernel.Network(np.array(architecture.units, dtype=np.intp), "tanh", "squared_error",
                          0.0, False, 8, **architecture.kernel_arguments())
    data = _kernel.Data(X, y.reshape(-1, 1).copy())
    grads = np.empty(net.n_params)
    work = np.empty(net.workspace_size(_kernel.BACKWARD_PART))
    _kernel.loss_grad(net, data, params, grads, work)
    places = net.layout()
    trained = [name for name in places if name.startswith("embedding_")] + ["coefs"]
    rng = np.random.default_rng(0)
    for name in trained:
        offset, shape = places[name][0]
        for i in offset + rng.choice(int(np.prod(shape)), 4, replace=False):
            values = []
            for step in (1e-6, -1e-6):
                moved = params.copy()
                moved[i] += step
                values.append(_kernel.loss_grad(net, data, moved, np.empty_like(grads), work))
            assert_allclose(grads[i], (values[0] - values[1]) / 2e-6, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_ensemble_trains_with_it(kind):
    X, y = _data()
    model = MLPRegressor(**_estimator_params(kind, max_iter=5, ensemble_size=3,
                                             ensemble="batch")).fit(X, y)
    assert model.embedding_coefs_[0].shape == (F, 2 * Q if kind == "periodic" else B, D)
    assert np.isfinite(model.predict(X)).all()


@pytest.mark.parametrize("k", [None, K])
@pytest.mark.parametrize("kind", list(KINDS))
def test_blocks_on_threads_train_as_one_piece_to_rounding(kind, k):
    X, y = _data()
    whole = MLPRegressor(**_estimator_params(kind, max_iter=4, embedded_features=k)).fit(X, y)
    blocks = MLPRegressor(**_estimator_params(kind, max_iter=4, block_rows=8,
                                              embedded_features=k)).fit(X, y)
    for name in ("embedding_coefs_", "embedding_intercepts_"):
        assert_allclose(getattr(blocks, name)[0], getattr(whole, name)[0], rtol=1e-12,
                        atol=1e-15)
    assert_allclose(blocks.predict(X), whole.predict(X), rtol=1e-12)


@pytest.mark.parametrize("k", [F, K])
@pytest.mark.parametrize("kind", list(KINDS))
def test_chunks_sum_as_one_piece_to_rounding(kind, k):
    """A batch larger than a chunk sums its chunks' gradients (the
    embedding's too): the full-batch gradient, in chunks of 7 rows."""
    X, y = _data()
    units = (F * D, *HIDDEN, 1)
    params, arrays = _start(kind, units, k=k)
    _randomise_piecewise_coefs(kind, arrays)
    architecture = _architecture(kind, units, k=k)
    data = _kernel.Data(X, y.reshape(-1, 1).copy())
    results = []
    for rows in (N, 7):
        net = _kernel.Network(np.array(architecture.units, dtype=np.intp), "tanh",
                              "squared_error", 0.0, False, rows,
                              **architecture.kernel_arguments())
        grads = np.empty(net.n_params)
        work = np.empty(net.workspace_size(_kernel.BACKWARD_PART))
        _kernel.loss_grad(net, data, params, grads, work)
        results.append(grads)
    assert_allclose(results[1], results[0], rtol=1e-12, atol=1e-15)


PARTS_OF = {"periodic": ("embedding_frequencies_", "embedding_coefs_", "embedding_intercepts_"),
            "piecewise_linear": ("embedding_slopes_", "embedding_coefs_",
                                 "embedding_intercepts_", "embedding_bin_weights_",
                                 "embedding_bin_biases_", "embedding_bin_counts_")}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_save_load_and_pickle_give_the_same_model(Estimator, kind, tmp_path):
    X, y = _data()
    if Estimator is MLPClassifier:
        y = (y > 0).astype(int)
    model = Estimator(**_estimator_params(kind, max_iter=3, solver="adam")).fit(X, y)
    model.save(tmp_path / "m.npz")
    copies = [cbp.load(tmp_path / "m.npz"), pickle.loads(pickle.dumps(model))]
    for copy in copies:
        for name in PARTS_OF[kind]:
            assert_array_equal(getattr(copy, name)[0], getattr(model, name)[0])
        assert_array_equal(copy.predict(X), model.predict(X))
    model.partial_fit(X, y)
    for copy in copies:
        copy.partial_fit(X, y)
        assert_array_equal(copy.embedding_coefs_[0], model.embedding_coefs_[0])


def _edited_archive(kind, tmp_path, edit):
    """(X, a model fitted on it, the path of the model's archive after
    edit(arrays) changed the saved arrays in place)."""
    X, y = _data()
    model = MLPRegressor(**_estimator_params(kind, max_iter=2)).fit(X, y)
    model.save(tmp_path / "m.npz")
    arrays = dict(np.load(tmp_path / "m.npz"))
    edit(arrays)
    np.savez(tmp_path / "edited.npz", **arrays)
    return X, model, tmp_path / "edited.npz"


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_archive_without_its_embedding_is_refused(kind, tmp_path):
    name = PARTS_OF[kind][-1]

    def drop_the_part(arrays):
        del arrays[f"{name}/0"]
        arrays["__manifest__"] = np.array(sorted(arrays))

    _, _, path = _edited_archive(kind, tmp_path, drop_the_part)
    with pytest.raises(ValueError, match=f"{name} is missing"):
        cbp.load(path)


def test_an_archive_with_bad_bin_counts_is_refused(tmp_path):
    def shift_the_counts(arrays):
        arrays["embedding_bin_counts_/0"] = arrays["embedding_bin_counts_/0"] - 0.5

    _, _, path = _edited_archive("piecewise_linear", tmp_path, shift_the_counts)
    with pytest.raises(ValueError, match="bin counts"):
        cbp.load(path)


@pytest.mark.parametrize("change", [dict(n_frequencies=Q + 1), dict(embedding_size=D + 1),
                                    dict(numeric_embedding="piecewise_linear"),
                                    dict(embedded_features=K)])
def test_warm_start_refuses_a_changed_embedding(change):
    X, y = _data()
    model = MLPRegressor(**_estimator_params(max_iter=2, warm_start=True)).fit(X, y)
    model.set_params(**change)
    with pytest.raises(ValueError, match="numeric_embedding or its size"):
        model.fit(X, y)
    model.predict(X)  # still usable


def test_default_has_no_embedding():
    X, y = _data()
    model = MLPRegressor(**_estimator_params(max_iter=2, numeric_embedding=None)).fit(X, y)
    for name in {name for names in PARTS_OF.values() for name in names}:
        assert not hasattr(model, name)
    assert MLPRegressor().numeric_embedding is None


def test_the_registry_names_the_kernel_s_embeddings():
    from cbp._options import EMBEDDINGS

    assert set(EMBEDDINGS) == set(_kernel.EMBEDDINGS)


@pytest.mark.parametrize("params, match", [
    (dict(numeric_embedding="fourier"), "numeric_embedding"),
    (dict(embedding_size=0), "embedding_size"),
    (dict(n_frequencies=0), "n_frequencies"),
    (dict(frequency_scale=0.0), "frequency_scale"),
    (dict(frequency_scale=-1.0), "frequency_scale"),
    (dict(numeric_embedding="piecewise_linear", n_bins=1), "n_bins"),
    (dict(embedded_features=0), "embedded_features"),
    (dict(embedded_features=1.5), "embedded_features"),
    (dict(embedded_features=F + 1), "embedded_features"),
])
def test_bad_parameters_are_refused_by_name(params, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        MLPRegressor(**_estimator_params(**params)).fit(X, y)


@pytest.mark.parametrize("kind", list(KINDS))
def test_sparse_input_is_refused_by_name(kind):
    X, y = _data()
    with pytest.raises(ValueError, match=f"numeric_embedding='{kind}'.*dense"):
        MLPRegressor(**_estimator_params(kind)).fit(scipy.sparse.csr_matrix(X), y)


@pytest.mark.parametrize("kind", list(KINDS))
def test_onnx_export_is_refused_by_name(kind):
    optional("skl2onnx")
    import cbp.onnx

    X, y = _data()
    model = MLPRegressor(**_estimator_params(kind, max_iter=2)).fit(X, y)
    with pytest.raises(ValueError, match=f"numeric_embedding='{kind}'"):
        cbp.onnx.to_onnx(model, X[:1])


@pytest.mark.parametrize("kind", list(KINDS))
def test_batch_norm_and_dropout_train_with_it(kind):
    X, y = _data()
    model = MLPRegressor(**_estimator_params(kind, max_iter=3, batch_norm=True,
                                             dropout=0.1)).fit(X, y)
    _, start = _start(kind, (F * D, *HIDDEN, 1))
    assert np.isfinite(model.predict(X)).all()
    # (not its intercepts: batch normalisation cancels constant shifts of z)
    assert not np.allclose(model.embedding_coefs_[0], start["embedding_coefs"][0])
    assert len(model.batch_norm_gammas_) == 2


def test_a_batch_norm_network_s_gradient_is_its_central_differences():
    """Batch normalisation's parts come after the embedding's in the flat
    vector: both gradients in place."""
    X, y = _data()
    units = (F * D, 5, 1)
    architecture = Architecture((F * D, 5, 1), None, batch_norm=True,
                                embedding=("periodic", F, Q, F))
    params = initial_parameters(architecture, "tanh", check_random_state(0), np.float64,
                                embedding_start=dict(KINDS["periodic"][0], X=X))
    net = _kernel.Network(np.array(units, dtype=np.intp), "tanh", "squared_error", 0.0,
                          False, N, **architecture.kernel_arguments())
    data = _kernel.Data(X, y.reshape(-1, 1).copy())
    grads = np.empty(net.n_params)
    work = np.empty(net.workspace_size(_kernel.BACKWARD_PART))
    _kernel.loss_grad(net, data, params, grads, work)
    places = net.layout()
    for name in ("embedding_frequencies", "embedding_coefs", "gammas", "betas"):
        offset, shape = places[name][0]
        for i in offset + np.arange(min(3, int(np.prod(shape)))):
            values = []
            for step in (1e-6, -1e-6):
                moved = params.copy()
                moved[i] += step
                values.append(_kernel.loss_grad(net, data, moved, np.empty_like(grads), work))
            assert_allclose(grads[i], (values[0] - values[1]) / 2e-6, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", list(KINDS))
def test_the_first_k_columns_embed_and_the_rest_pass_through(kind, dtype):
    """The network's output is torch's MLP on cat([rtdl(X[:, :K]).flatten(1),
    X[:, K:]], 1), with the same weights."""
    torch = optional("torch")
    rtdl = optional("rtdl_num_embeddings")
    X = np.vstack([_data()[0], 1.5 * _data(1)[0]])
    units = (K * D + F - K, *HIDDEN, 1)
    params, arrays = _start(kind, units, dtype, k=K)
    _randomise_piecewise_coefs(kind, arrays)
    net = _kernel.Network(np.array(units, dtype=np.intp), "tanh", None, output="identity",
                          chunk_rows=7, **_architecture(kind, units, k=K).kernel_arguments())
    out = np.empty((len(X), 1), dtype=dtype)
    work = np.empty(net.workspace_size(_kernel.FORWARD_PART), dtype=dtype)
    _kernel.forward(net, _kernel.Data(np.ascontiguousarray(X, dtype=dtype)), params, out, work)
    module, linears = _rtdl_embedding(torch, rtdl, kind, arrays, k=K), _linears(torch, arrays)
    X_t = torch.from_numpy(X.astype(dtype).astype(np.float64))
    theirs = _torch_forward(torch, module, linears, X_t, K).detach().numpy()
    assert _max_relative(out, theirs) < RTOL[dtype]


@pytest.mark.parametrize("kind", list(KINDS))
def test_embedding_every_column_by_number_is_the_default(kind):
    X, y = _data()
    ours = MLPRegressor(**_estimator_params(kind, max_iter=3, embedded_features=F)).fit(X, y)
    default = MLPRegressor(**_estimator_params(kind, max_iter=3)).fit(X, y)
    for name in ("coefs_", *PARTS_OF[kind]):
        for mine, theirs in zip(getattr(ours, name), getattr(default, name)):
            assert_array_equal(mine, theirs)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_model_embedding_the_first_k_columns_saves_and_loads(kind, tmp_path):
    X, y = _data()
    model = MLPRegressor(**_estimator_params(kind, max_iter=3, solver="adam",
                                             embedded_features=K)).fit(X, y)
    assert model.coefs_[0].shape[0] == K * D + F - K
    model.save(tmp_path / "m.npz")
    for copy in (cbp.load(tmp_path / "m.npz"), pickle.loads(pickle.dumps(model))):
        assert copy.embedded_features == K
        assert_array_equal(copy.predict(X), model.predict(X))


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_archive_from_before_embedded_features_loads_as_every_column(kind, tmp_path):
    def forget_embedded_features(arrays):
        params = json.loads(str(arrays["__params__"]))
        del params["embedded_features"]
        arrays["__params__"] = np.array(json.dumps(params))

    X, model, path = _edited_archive(kind, tmp_path, forget_embedded_features)
    loaded = cbp.load(path)
    assert loaded.embedded_features is None
    assert_array_equal(loaded.predict(X), model.predict(X))
