"""Ensembles: ``ensemble_size=k`` members trained as one, in the forms of
``ensemble`` (TabM's 'batch', 'mini' and 'packed').

Specified against the ``tabm`` package (PyTorch, float64: five full-batch
AdamW steps from the same starting values give the same weights, scalings
and predictions to relative 1e-9), against tests/reference.py's ensemble
equations (the kernel's loss, gradient and forward pass), by central
differences (every r, s and intercept), and by rule: a packed member is a
single network, k = 1 is the plain network, threads and sparse input change
nothing, and what a fitted model offers (save/load, pickle, ONNX, callbacks,
LossCurveDisplay) holds for ensembles too.
"""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import threadpool_limits

import cbp
import reference as ref
from cbp import MLPClassifier, MLPRegressor
from cbp._dispatch import kernel
from cbp._network import initial_parameters, make_network
from cbp._parts import PARTS, Architecture, layout
from cbp._options import ENSEMBLES, STOCHASTIC
from cbp._options import LOSSES as LOSS_ENTRIES
from docs_scripts import load_example
from kernel_paths import blocks_on_threads
from optional import optional
from parts import initial_arrays

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FORMS = list(ENSEMBLES)  # every form cbp has (its registry)
K = 4
N = 60
RTOL = 1e-9  # against PyTorch, float64
ESTIMATORS = [pytest.param(MLPClassifier, id="classifier"),
              pytest.param(MLPRegressor, id="regressor")]
DTYPES = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]


def _classification(n=N, seed=0):
    X, y = make_classification(n, 6, n_informative=4, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=seed)
    return StandardScaler().fit_transform(X), y


def _regression(n=N, seed=0):
    X, y = make_regression(n, 6, noise=5.0, random_state=seed)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _data(estimator, n=N):
    return _classification(n) if estimator is MLPClassifier else _regression(n)


def _fit(model, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **fit_params)


def _full_batch(**params):
    """Full-batch training: one update per epoch, in sample order."""
    base = dict(batch_size=N, shuffle=False, alpha=0.0, random_state=0, tol=0.0,
                n_iter_no_change=10**6)
    return {**base, **params}


def _weights(model):
    """Every trained array of a fitted model, flattened into one vector."""
    arrays = model.coefs_ + model.intercepts_
    for name in ("input_scalings_", "output_scalings_"):
        arrays += [a for a in getattr(model, name, []) if a is not None]
    return np.concatenate([np.ravel(a) for a in arrays])


# ---------------------------------------------------------------------------
# The layout: one description, read by Python and the kernel alike
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("units", [(5, 3), (5, 7, 3), (5, 7, 6, 3)], ids=str)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_layout_tiles_the_vector_part_by_part_trained_values_first(form, units,
                                                                   batch_norm):
    architecture = Architecture(units, (K, form), batch_norm)
    places = layout(architecture)
    entries = [(name, place) for name, layers in places.places.items()
               for place in layers if place is not None]
    offsets = [place[0] for _, place in entries]
    assert offsets == sorted(offsets)
    ends = [place[0] + int(np.prod(place[1])) for _, place in entries]
    assert offsets[0] == 0 and offsets[1:] == ends[:-1] and ends[-1] == places.n_values
    trained = [end for (name, _), end in zip(entries, ends) if PARTS[name].trained]
    assert places.n_trained == trained[-1] == (ends[-1] if not batch_norm else
                                               places.n_values - 2 * K * sum(units[1:-1]))
    net = make_network(architecture, "relu", LOSS_ENTRIES["log_loss"], "softmax", 0.0, 10,
                       False)
    assert net.layout() == {**{"input_scalings": [None] * (len(units) - 1),
                               "output_scalings": [None] * (len(units) - 1)},
                            **places.places}
    assert net.n_params == places.n_trained


@pytest.mark.parametrize("form", FORMS)
def test_reference_layout_is_cbps(form):
    units = (5, 7, 6, 3)
    architecture = Architecture(units, (K, form))
    params = np.arange(layout(architecture).n_trained, dtype=np.float64)
    parts = ref.ensemble_split(params, units, K, layer_kinds(3, (K, form)))
    places = layout(architecture).places
    for ours, theirs in (("coefs", "coefs"), ("intercepts", "intercepts"),
                         ("input_scalings", "r"), ("output_scalings", "s")):
        for entry, view in zip(places[ours], parts[theirs]):
            assert (entry is None) == (view is None)
            if entry is not None:
                assert view.shape == entry[1] and view.ravel()[0] == entry[0]


def test_what_each_form_holds_per_member():
    """(weights, intercepts, r, s) per member: TabM, TabM-mini, TabM-packed."""
    assert layer_kinds(3, (K, "batch")).tolist() == [[0, 1, 1, 1]] * 2 + [[1, 1, 0, 0]]
    assert layer_kinds(3, (K, "mini")).tolist() == [[0, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]]
    assert layer_kinds(3, (K, "packed")).tolist() == [[1, 1, 0, 0]] * 3
    for form in FORMS:  # no hidden layer: k linear models
        assert layer_kinds(1, (K, form)).tolist() == [[1, 1, 0, 0]]


# ---------------------------------------------------------------------------
# The kernel against the NumPy reference
# ---------------------------------------------------------------------------

LOSSES = [("log_loss", "softmax", 3), ("binary_log_loss", "logistic", 2),
          ("squared_error", "identity", 2)]


def layer_kinds(n_layers, ensemble):
    """The kernel's layer_kinds of an ensemble (members, form)."""
    return np.array(ENSEMBLES[ensemble[1]].layer_kinds(n_layers), dtype=np.intp)


def _problem(form, dtype, loss, output, n_out, units=(5, 7, 6), n=23, seed=0,
             weighted=True):
    rng = np.random.default_rng(seed)
    units = list(units) + [n_out]
    ensemble = (K, form)
    params = rng.normal(0, 0.5, layout(Architecture(units, ensemble)).n_trained).astype(dtype)
    X = rng.normal(size=(n, units[0])).astype(dtype)
    Y = ref.random_targets(rng, loss, n, n_out, dtype)
    w = rng.uniform(0.5, 2.0, n).astype(dtype) if weighted else None
    return units, ensemble, params, X, Y, w


def _kernel_loss_grad(units, ensemble, params, X, Y, w, loss, output, alpha,
                      activation="tanh"):
    net = make_network(Architecture(units, ensemble), activation, LOSS_ENTRIES[loss], output,
                       alpha, X.shape[0], scipy.sparse.issparse(X))
    grads = np.empty_like(params)
    work = np.empty(net.workspace_size(kernel.BACKWARD_PART), dtype=params.dtype)
    J = kernel.loss_grad(net, kernel.Data(X, Y, w), params, grads, work)
    return J, grads


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, output, n_out", LOSSES, ids=[c[0] for c in LOSSES])
def test_kernel_loss_and_gradient_equal_the_reference(form, dtype, loss, output, n_out):
    units, ensemble, params, X, Y, w = _problem(form, dtype, loss, output, n_out)
    J, grads = _kernel_loss_grad(units, ensemble, params, X, Y, w, loss, output, 0.1)
    J_ref, grads_ref = ref.ensemble_loss_grad(X, Y, w, units, params, K,
                                              layer_kinds(3, ensemble), "tanh", output,
                                              loss, 0.1)
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    assert_allclose(J, J_ref, rtol=rtol)
    assert_allclose(grads, grads_ref, rtol=rtol, atol=rtol * np.abs(grads_ref).max())


@pytest.mark.parametrize("form", FORMS)
def test_sparse_input_gives_the_dense_gradient(form):
    units, ensemble, params, X, Y, w = _problem(form, np.float64, "log_loss", "softmax", 3)
    X[X < 0.3] = 0.0
    dense = _kernel_loss_grad(units, ensemble, params, X, Y, w, "log_loss", "softmax", 0.1)
    sparse = _kernel_loss_grad(units, ensemble, params, scipy.sparse.csr_matrix(X), Y, w,
                               "log_loss", "softmax", 0.1)
    assert_allclose(sparse[0], dense[0], rtol=1e-12)
    assert_allclose(sparse[1], dense[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("part", ["input_scalings", "output_scalings", "intercepts"])
def test_gradient_of_every_scaling_and_intercept_is_the_central_difference(form, part):
    """dJ/dr, dJ/ds, dJ/db from the kernel against (J(v + h) - J(v - h)) / 2h
    of the kernel's own loss, for every value of each such array."""
    units, ensemble, params, X, Y, w = _problem(form, np.float64, "log_loss", "softmax", 3)
    _, grads = _kernel_loss_grad(units, ensemble, params, X, Y, w, "log_loss", "softmax",
                                 0.1)
    entries = [e for e in layout(Architecture(units, ensemble)).places[part] if e is not None]
    assert entries or part != "intercepts"
    h = 1e-6
    for offset, shape in entries:
        for i in range(offset, offset + int(np.prod(shape))):
            up, down = params.copy(), params.copy()
            up[i] += h
            down[i] -= h
            numeric = (_kernel_loss_grad(units, ensemble, up, X, Y, w, "log_loss",
                                         "softmax", 0.1)[0]
                       - _kernel_loss_grad(units, ensemble, down, X, Y, w, "log_loss",
                                           "softmax", 0.1)[0]) / (2 * h)
            assert_allclose(grads[i], numeric, rtol=1e-6, atol=1e-9,
                            err_msg=f"{part} value {i - offset} of {shape}")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_members_predictions_equal_the_reference(form, estimator):
    X, y = _data(estimator)
    model = _fit(estimator(hidden_layer_sizes=(7, 6), activation="tanh", ensemble_size=K,
                           ensemble=form, max_iter=3, random_state=0), X, y)
    output = model.out_activation_
    units = list(model._units)
    expected = ref.ensemble_predict(X, units, model._params(), K,
                                    layer_kinds(3, (K, form)), "tanh", output)
    members = model._forward_pass_fast(X, members=True)
    assert_allclose(members, expected, rtol=1e-12, atol=1e-14)
    assert_allclose(model._forward_pass_fast(X), expected.mean(axis=1), rtol=1e-12)
    sparse = model._forward_pass_fast(scipy.sparse.csr_matrix(X), members=True)
    assert_allclose(sparse, members, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# Against the tabm package (PyTorch)
# ---------------------------------------------------------------------------

def _start(units, form, k=K):
    """cbp's starting values for random_state=0: (coefs, intercepts,
    scalings) as the estimator holds them."""
    arrays = initial_arrays(units, "relu", 0, np.float64, (k, form))
    return arrays["coefs"], arrays["intercepts"], {
        name: arrays[name] for name in ("input_scalings", "output_scalings")}


def _tabm_model(torch, tabm, form, units, start, k=K, batch_norm=False):
    """The tabm package's model of a cbp ensemble of these units, holding
    the values ``start`` (_start's): EnsembleView, the backbone's blocks
    (Linear, [BatchNorm1dEnsemble,] ReLU), a LinearEnsemble head."""
    coefs, intercepts, scalings = start
    hidden = list(units[1:-1])
    d_in = units[0]
    arch = ENSEMBLES[form].tabm_arch_type
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (start_scaling_init_chunks not given)
        backbone = tabm.make_tabm_backbone(
            d_in=d_in, n_blocks=len(hidden), d_block=hidden[0], dropout=0.0,
            activation="ReLU", k=k, arch_type=arch,
            start_scaling_init=None if form == "packed" else "random-signs",
            start_scaling_init_chunks=None).to(torch.float64)
    head = tabm.LinearEnsemble(hidden[-1], units[-1], k=k, dtype=torch.float64)
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float64))  # noqa: E731
    with torch.no_grad():
        for l, block in enumerate(backbone.blocks):
            linear = block[0]
            coef, intercept = coefs[l], intercepts[l]
            if form == "batch":
                linear.weight.copy_(t(coef.T))
                linear.r.copy_(t(scalings["input_scalings"][l]))
                linear.s.copy_(t(scalings["output_scalings"][l]))
                linear.bias.copy_(t(intercept))
            elif form == "mini":
                linear.weight.copy_(t(coef.T))
                linear.bias.copy_(t(intercept))
            else:
                linear.weight.copy_(t(coef))
                linear.bias.copy_(t(intercept))
        if form == "mini":
            backbone.affine.weight.copy_(t(scalings["input_scalings"][0]))
        head.weight.copy_(t(coefs[-1]))
        head.bias.copy_(t(intercepts[-1]))
    modules = [tabm.EnsembleView(k=k)]
    if form == "mini":
        modules.append(backbone.affine)
    norms = []
    for l, block in enumerate(backbone.blocks):
        modules.append(block[0])
        if batch_norm:
            norm = tabm.BatchNorm1dEnsemble(hidden[l], k=k, dtype=torch.float64)
            norms.append(norm)
            modules.append(norm)
        modules.append(block[1])
    modules.append(head)
    return torch.nn.Sequential(*modules), backbone, head, norms


def _tabm_steps(torch, net, X, y, classifier, steps, lr, weight_decay):
    """Five full-batch AdamW steps of the mean of the members' losses."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    X_t = torch.from_numpy(X)
    for _ in range(steps):
        opt.zero_grad()
        out = net(X_t)  # (n, k, n_out)
        if classifier:
            loss = torch.nn.functional.cross_entropy(
                out.flatten(0, 1), torch.from_numpy(y).repeat_interleave(out.shape[1]))
        else:
            target = torch.from_numpy(y.reshape(len(y), 1, -1))
            loss = 0.5 * ((out - target) ** 2).sum(dim=2).mean()
        loss.backward()
        opt.step()
    return net


def _tabm_arrays(form, backbone, head):
    """(coefs, intercepts, input_scalings, output_scalings) of the tabm
    model, in cbp's shapes."""
    n = lambda p: p.detach().numpy()  # noqa: E731
    coefs, intercepts, r, s = [], [], [], []
    for block in backbone.blocks:
        linear = block[0]
        coefs.append(n(linear.weight) if form == "packed" else n(linear.weight).T)
        intercepts.append(n(linear.bias))
        r.append(n(linear.r) if form == "batch" else None)
        s.append(n(linear.s) if form == "batch" else None)
    if form == "mini":
        r[0] = n(backbone.affine.weight)
    return (coefs + [n(head.weight)], intercepts + [n(head.bias)],
            r + [None], s + [None])


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_five_adamw_steps_equal_the_tabm_package(form, estimator):
    torch = optional("torch")
    tabm = optional("tabm")
    X, y = _data(estimator)
    params = _full_batch(hidden_layer_sizes=(8, 8), ensemble_size=K, ensemble=form,
                         solver="adamw", learning_rate_init=0.01, weight_decay=0.05)
    ours = _fit(estimator(**params, max_iter=5), X, y)
    units = list(ours._units)
    net, backbone, head = _tabm_model(torch, tabm, form, units, _start(units, form))[:3]
    _tabm_steps(torch, net, X, y, estimator is MLPClassifier, 5, 0.01, 0.05)
    coefs, intercepts, r, s = _tabm_arrays(form, backbone, head)
    for l in range(3):
        assert_allclose(ours.coefs_[l], coefs[l], rtol=RTOL, atol=1e-12, err_msg=f"coefs_[{l}]")
        assert_allclose(ours.intercepts_[l], intercepts[l], rtol=RTOL, atol=1e-12,
                        err_msg=f"intercepts_[{l}]")
        for name, theirs in (("input_scalings_", r), ("output_scalings_", s)):
            if theirs[l] is None:
                assert getattr(ours, name)[l] is None
            else:
                assert_allclose(getattr(ours, name)[l], theirs[l], rtol=RTOL, atol=1e-12,
                                err_msg=f"{name}[{l}]")
    with torch.no_grad():
        out = net(torch.from_numpy(X))
        if estimator is MLPClassifier:
            out = torch.softmax(out, dim=2)
    assert_allclose(ours._forward_pass_fast(X, members=True), out.numpy(), rtol=RTOL,
                    atol=1e-12)


def test_batch_norm_per_member_equals_tabms_batchnorm1densemble():
    """batch_norm=True: each member normalised by its own batch statistics,
    its own gamma and beta, its own running statistics -- tabm's
    BatchNorm1dEnsemble after each hidden linear layer."""
    torch = optional("torch")
    tabm = optional("tabm")
    X, y = _classification()
    params = _full_batch(hidden_layer_sizes=(8, 8), ensemble_size=K, ensemble="batch",
                         solver="adamw", learning_rate_init=0.01, batch_norm=True)
    ours = _fit(MLPClassifier(**params, max_iter=5), X, y)
    units = list(ours._units)
    net, backbone, head, norms = _tabm_model(torch, tabm, "batch", units,
                                             _start(units, "batch"), batch_norm=True)
    net.train()
    _tabm_steps(torch, net, X, y, True, 5, 0.01, 0.01)
    coefs, intercepts, r, s = _tabm_arrays("batch", backbone, head)
    for l in range(3):
        assert_allclose(ours.coefs_[l], coefs[l], rtol=RTOL, atol=1e-12)
        # (an intercept before batch normalisation has gradient 0 but for
        # rounding, which Adam scales up: absolute agreement only)
        assert_allclose(ours.intercepts_[l], intercepts[l], rtol=RTOL,
                        atol=1e-9 if l < 2 else 1e-12)
    for l, norm in enumerate(norms):
        for ours_name, theirs in (
                ("gammas", norm.affine.weight), ("betas", norm.affine.bias),
                ("running_means", norm.impl.running_mean.reshape(K, -1)),
                ("running_vars", norm.impl.running_var.reshape(K, -1))):
            assert_allclose(getattr(ours, f"batch_norm_{ours_name}_")[l],
                            theirs.detach().numpy(), rtol=RTOL, atol=1e-12,
                            err_msg=f"batch_norm_{ours_name}_[{l}]")
    net.eval()
    with torch.no_grad():
        out = torch.softmax(net(torch.from_numpy(X)), dim=2)
    assert_allclose(ours.predict_proba(X, members=True), out.numpy(), rtol=RTOL, atol=1e-12)


def test_initial_values_are_tabms_scheme():
    """The first layer's r: random signs; every other scaling 1; a shared
    layer's per-member intercepts one draw, repeated."""
    units = [6, 8, 8, 3]
    architecture = Architecture(units, (K, "batch"))
    params = initial_parameters(architecture, "relu", check_random_state(0), np.float64)
    places = layout(architecture).places
    view = lambda e: params[e[0]:e[0] + int(np.prod(e[1]))].reshape(e[1])  # noqa: E731
    r0 = view(places["input_scalings"][0])
    assert set(np.unique(r0)) == {-1.0, 1.0}
    assert (view(places["input_scalings"][1]) == 1).all()
    assert all((view(e) == 1).all() for e in places["output_scalings"] if e is not None)
    for l in (0, 1):
        b = view(places["intercepts"][l])
        assert (b == b[0]).all() and np.ptp(b[0]) > 0
    heads = view(places["coefs"][2])
    assert not np.array_equal(heads[0], heads[1])


# ---------------------------------------------------------------------------
# By rule
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("solver", ["adam", "adamw", "sgd"])
def test_a_packed_member_is_a_single_network(estimator, solver):
    """Member i of 'packed', trained on the same mini-batches, is the single
    network started from its weights. The ensemble's loss is the mean of the
    members' losses, so a member's gradient is 1/k of its own: the single
    network gets learning_rate_init / k (sgd), or epsilon * k and alpha * k
    (Adam and AdamW are otherwise invariant to the scale)."""
    X, y = _data(estimator)
    common = dict(hidden_layer_sizes=(7, 5), solver=solver, batch_size=16, shuffle=False,
                  max_iter=4, random_state=0, tol=0.0, n_iter_no_change=10**6,
                  learning_rate_init=0.01)
    k = 3
    packed = _fit(estimator(**common, ensemble_size=k, ensemble="packed", alpha=1e-3), X, y)
    coefs, intercepts, _ = _start(list(packed._units), "packed", k)
    for member in range(k):
        scaled = (dict(learning_rate_init=0.01 / k, alpha=1e-3 * k) if solver == "sgd"
                  else dict(epsilon=1e-8 * k, alpha=1e-3 * k))
        single = estimator(**{**common, **scaled})
        _fit(single.set_params(max_iter=1), X, y)
        single.coefs_ = [c[member].copy() for c in coefs]
        single.intercepts_ = [b[member].copy() for b in intercepts]
        _fit(single.set_params(warm_start=True, max_iter=4), X, y)
        for l in range(3):
            assert_allclose(packed.coefs_[l][member], single.coefs_[l], rtol=1e-9,
                            atol=1e-12, err_msg=f"member {member}, coefs_[{l}]")
            assert_allclose(packed.intercepts_[l][member], single.intercepts_[l],
                            rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_ensemble_size_one_is_the_plain_network_bit_for_bit(form, estimator):
    X, y = _data(estimator)
    params = dict(hidden_layer_sizes=(7,), max_iter=3, random_state=0)
    plain = _fit(estimator(**params), X, y)
    one = _fit(estimator(**params, ensemble_size=1, ensemble=form), X, y)
    assert_array_equal(_weights(one), _weights(plain))
    assert not hasattr(one, "input_scalings_")


@pytest.mark.parametrize("form", FORMS)
def test_prediction_averages_the_members(form):
    X, y = _classification()
    model = _fit(MLPClassifier(hidden_layer_sizes=(8,), ensemble_size=K, ensemble=form,
                               max_iter=5, random_state=0), X, y)
    members = model.predict_proba(X, members=True)
    assert members.shape == (N, K, 3)
    assert_allclose(model.predict_proba(X), members.mean(axis=1), rtol=1e-15)
    assert_array_equal(model.predict(X), model.classes_[members.mean(axis=1).argmax(1)])
    labels = model.predict(X, members=True)
    assert labels.shape == (N, K)
    assert_array_equal(labels, model.classes_[members.argmax(axis=2)])
    Xr, yr = _regression()
    regressor = _fit(MLPRegressor(hidden_layer_sizes=(8,), ensemble_size=K, ensemble=form,
                                  max_iter=5, random_state=0), Xr, yr)
    values = regressor.predict(Xr, members=True)
    assert values.shape == (N, K)
    assert_allclose(regressor.predict(Xr), values.mean(axis=1), rtol=1e-14)


def test_binary_and_multi_output_members_have_a_members_axis():
    X, y = _classification()
    binary = _fit(MLPClassifier(hidden_layer_sizes=(5,), ensemble_size=3, max_iter=2,
                                random_state=0), X, y > 0)
    assert binary.predict_proba(X, members=True).shape == (N, 3, 2)
    assert binary.predict(X, members=True).shape == (N, 3)
    Xr, yr = _regression()
    two = _fit(MLPRegressor(hidden_layer_sizes=(5,), ensemble_size=3, max_iter=2,
                            random_state=0), Xr, np.c_[yr, -yr])
    assert two.predict(Xr, members=True).shape == (N, 3, 2)
    plain = _fit(MLPRegressor(hidden_layer_sizes=(5,), max_iter=2, random_state=0), Xr, yr)
    assert_array_equal(plain.predict(Xr, members=True)[:, 0], plain.predict(Xr))


@pytest.mark.parametrize("form", FORMS)
def test_validation_scores_are_the_averaged_models(form):
    X, y = _classification(200)
    model = _fit(MLPClassifier(hidden_layer_sizes=(8,), ensemble_size=K, ensemble=form,
                               max_iter=4, random_state=0),
                 X[:150], y[:150], X_val=X[150:], y_val=y[150:])
    assert model.validation_scores_[-1] == model.score(X[150:], y[150:])
    early = _fit(MLPClassifier(hidden_layer_sizes=(8,), ensemble_size=K, ensemble=form,
                               max_iter=30, early_stopping=True, n_iter_no_change=3,
                               random_state=0), X, y)
    assert len(early.validation_scores_) == early.n_iter_
    assert early.best_validation_score_ == max(early.validation_scores_)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_two_threads_give_the_same_bits(form, estimator, dtype):
    X, y = _data(estimator, 200)
    params = dict(hidden_layer_sizes=(16, 8), ensemble_size=K, ensemble=form, batch_size=64,
                  block_rows=16, max_iter=3, random_state=0, dropout=0.2, solver="adamw")
    fitted = []
    with blocks_on_threads():
        for threads in (1, 2):
            with threadpool_limits(limits=threads, user_api="openmp"):
                fitted.append(_fit(estimator(**params), X.astype(dtype), y))
    assert_array_equal(_weights(fitted[0]), _weights(fitted[1]))
    assert _weights(fitted[0]).dtype == dtype


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_input_trains_as_dense(form, dtype):
    X, y = _classification()
    X[np.abs(X) < 0.5] = 0.0
    params = dict(hidden_layer_sizes=(8,), ensemble_size=K, ensemble=form, max_iter=3,
                  random_state=0, solver="adamw")
    dense = _fit(MLPClassifier(**params), X.astype(dtype), y)
    sparse = _fit(MLPClassifier(**params), scipy.sparse.csr_matrix(X.astype(dtype)), y)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert_allclose(_weights(sparse), _weights(dense), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("solver", STOCHASTIC)
def test_every_stochastic_solver_trains_an_ensemble(form, solver):
    X, y = _classification(200)
    model = _fit(MLPClassifier(hidden_layer_sizes=(16,), ensemble_size=K, ensemble=form,
                               solver=solver, max_iter=40, random_state=0,
                               learning_rate_init=0.01), X, y)
    assert model.loss_curve_[-1] < 0.8 * model.loss_curve_[0]
    assert model.score(X, y) > 0.6  # (chance: 1/3)


def test_lbfgs_minimises_the_members_mean_loss():
    X, y = _classification(200)
    model = _fit(MLPClassifier(hidden_layer_sizes=(8,), ensemble_size=3, solver="lbfgs",
                               max_iter=50, random_state=0), X, y)
    J = ref.ensemble_loss(X, np.eye(3)[y], None, list(model._units), model._params(), 3,
                          layer_kinds(2, (3, "batch")), "relu", "softmax", "log_loss",
                          model.alpha)
    assert_allclose(model.loss_, J, rtol=1e-9)
    assert model.score(X, y) > 0.9


@pytest.mark.parametrize("form", FORMS)
def test_partial_fit_continues_as_fit(form):
    X, y = _classification()
    params = dict(hidden_layer_sizes=(8,), ensemble_size=K, ensemble=form, shuffle=False,
                  random_state=0, solver="adamw", tol=0.0, n_iter_no_change=10**6)
    fitted = _fit(MLPClassifier(**params, max_iter=3), X, y)
    partial = MLPClassifier(**params)
    for _ in range(3):
        partial.partial_fit(X, y, classes=[0, 1, 2])
    assert_array_equal(_weights(partial), _weights(fitted))


def test_sample_weights_weigh_every_members_loss():
    X, y = _regression()
    w = np.random.RandomState(0).randint(0, 3, N)
    # (batch_size 'auto': one batch of all the rows in both)
    params = dict(hidden_layer_sizes=(6,), ensemble_size=3, max_iter=3, random_state=0,
                  shuffle=False)
    weighted = _fit(MLPRegressor(**params), X, y, sample_weight=w)
    repeated = _fit(MLPRegressor(**params), np.repeat(X, w, axis=0), np.repeat(y, w))
    assert_allclose(_weights(weighted), _weights(repeated), rtol=1e-10)


@pytest.mark.parametrize("form", FORMS)
def test_dropout_and_batch_norm_train_an_ensemble(form):
    X, y = _classification(200)
    model = _fit(MLPClassifier(hidden_layer_sizes=(16, 16), ensemble_size=K, ensemble=form,
                               dropout=0.1, batch_norm=True, max_iter=30, random_state=0,
                               learning_rate_init=0.01), X, y)
    assert model.batch_norm_gammas_[0].shape == (K, 16)
    assert model.score(X, y) > 0.8
    again = _fit(MLPClassifier(**model.get_params()), X, y)
    assert_array_equal(_weights(again), _weights(model))


# ---------------------------------------------------------------------------
# What a fitted ensemble offers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_save_and_load_keep_an_ensemble(form, batch_norm, tmp_path):
    X, y = _classification()
    params = dict(hidden_layer_sizes=(8, 8), ensemble_size=K, ensemble=form,
                  batch_norm=batch_norm, max_iter=3, random_state=0, solver="adamw")
    model = _fit(MLPClassifier(**params), X, y)
    model.save(tmp_path / "m.npz")
    loaded = cbp.load(tmp_path / "m.npz")
    assert_array_equal(loaded.predict_proba(X, members=True),
                       model.predict_proba(X, members=True))
    assert_array_equal(_weights(loaded), _weights(model))
    # and it trains on as the model would have
    loaded.partial_fit(X, y)
    model.partial_fit(X, y)
    assert_array_equal(_weights(loaded), _weights(model))


def test_load_refuses_an_ensemble_whose_shapes_do_not_match(tmp_path):
    X, y = _classification()
    model = _fit(MLPClassifier(hidden_layer_sizes=(8,), ensemble_size=K, max_iter=2,
                               random_state=0), X, y)
    model.save(tmp_path / "m.npz")
    arrays = dict(np.load(tmp_path / "m.npz"))
    arrays["input_scalings_/0"] = arrays["input_scalings_/0"][:2]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="input_scalings_/0 does not match"):
        cbp.load(tmp_path / "bad.npz")
    model.set_params(ensemble_size=2)
    with pytest.raises(ValueError, match="cannot save this model"):
        model.save(tmp_path / "changed.npz")


@pytest.mark.parametrize("form", FORMS)
def test_pickle_keeps_an_ensemble(form):
    X, y = _regression()
    model = _fit(MLPRegressor(hidden_layer_sizes=(8,), ensemble_size=K, ensemble=form,
                              max_iter=3, random_state=0), X, y)
    copy = pickle.loads(pickle.dumps(model))
    assert_array_equal(copy.predict(X, members=True), model.predict(X, members=True))
    copy.partial_fit(X, y)
    model.partial_fit(X, y)
    assert_array_equal(_weights(copy), _weights(model))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_onnx_export_computes_the_averaged_prediction(form, estimator, dtype):
    skl2onnx = optional("skl2onnx")
    onnxruntime = optional("onnxruntime")
    import cbp.onnx  # noqa: F401 (registers cbp's converters)
    X, y = _data(estimator)
    X = X.astype(dtype)
    model = _fit(estimator(hidden_layer_sizes=(8, 8), ensemble_size=K, ensemble=form,
                           batch_norm=form == "batch", max_iter=3, random_state=0), X, y)
    onx = skl2onnx.to_onnx(model, X[:1], options={id(model): {"zipmap": False}}
                           if estimator is MLPClassifier else None)
    session = onnxruntime.InferenceSession(onx.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: X})
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    if estimator is MLPClassifier:
        assert_array_equal(outputs[0], model.predict(X))
        assert_allclose(outputs[1], model.predict_proba(X), rtol=rtol, atol=rtol)
    else:
        assert_allclose(outputs[0].ravel(), model.predict(X), rtol=rtol, atol=rtol)


def test_callbacks_see_every_epochs_ensemble():
    from test_watch import Recorder

    X, y = _classification()
    params = dict(hidden_layer_sizes=(8,), ensemble_size=K, max_iter=3, random_state=0)
    recorder = Recorder()
    _fit(MLPClassifier(**params).set_callbacks(recorder), X, y)
    after_two = _fit(MLPClassifier(**{**params, "max_iter": 2}), X, y)
    snapshot = recorder.fitted[1]
    assert_array_equal(_weights(snapshot), _weights(after_two))
    assert_array_equal(snapshot.predict_proba(X), after_two.predict_proba(X))


def test_loss_curve_display_draws_an_ensembles_curves():
    optional("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    X, y = _classification(200)
    model = _fit(MLPClassifier(hidden_layer_sizes=(8,), ensemble_size=K, max_iter=10,
                               random_state=0), X[:150], y[:150], X_val=X[150:],
                 y_val=y[150:])
    display = cbp.LossCurveDisplay.from_estimator(model)
    assert_array_equal(display.lines_["training loss"].get_ydata(), model.loss_curve_)
    assert_array_equal(display.lines_["validation score"].get_ydata(),
                       model.validation_scores_)


# ---------------------------------------------------------------------------
# Bad values
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("params, match", [
    (dict(ensemble_size=0), "ensemble_size"),
    (dict(ensemble_size=2.5), "ensemble_size"),
    (dict(ensemble="bagging"), "ensemble"),
])
def test_bad_ensemble_parameters_raise_naming_them(estimator, params, match):
    X, y = _data(estimator)
    with pytest.raises(InvalidParameterError, match=match):
        estimator(**params).fit(X, y)


@pytest.mark.parametrize("change", [dict(ensemble_size=3), dict(ensemble="packed"),
                                    dict(ensemble_size=1)])
def test_changing_the_ensemble_under_warm_start_raises_and_keeps_the_model(change):
    X, y = _classification()
    model = _fit(MLPClassifier(hidden_layer_sizes=(8,), ensemble_size=K, max_iter=2,
                               random_state=0, warm_start=True), X, y)
    before = _weights(model).copy()
    with pytest.raises(ValueError, match="ensemble_size or ensemble changed"):
        model.set_params(**change).fit(X, y)
    assert_array_equal(_weights(model), before)
    model.set_params(ensemble_size=K, ensemble="batch")
    assert model.predict(X).shape == (N,)


def test_the_gallery_example_runs_and_every_ensemble_learns(capsys):
    """docs/examples/plot_ensembles.py, whose figures the user guide gives
    (Ensembles), on one split with ensembles of 4."""
    example = load_example("plot_ensembles")
    example.print_table(example.compare(splits=1, k=4))
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and "±" in line]
    assert [row.split(" | ")[0][2:] for row in rows] == list(example.options(4))
    for row in rows:
        accuracy = float(row.split(" | ")[1].split(" ± ")[0])
        assert accuracy > 0.93, row
