"""The optimizers' named state and state_dict, the learning-rate schedules as
objects, and the kernel's per-range learning-rate factors (lr_factors).

lr_factors against PyTorch (CPU, float64, when torch is importable): five
full-batch steps of one linear layer (50 inputs, 90 outputs, the squared
error and scikit-learn's L2 term) whose flat parameter vector is split into
torch.optim parameter groups of rates lr and lr * factor, for SGD with
Nesterov momentum, AdamW and RMSprop (relative 1e-12). Adam as cbp's 'adam'
computes it (scikit-learn's epsilon, added before the bias correction, where
torch.optim.Adam adds it after) against tests/reference.py's NumPy step, at
each group's rate. The vector (4590 values: 4500 coefs, then 90 intercepts)
spans two of the update's tiles (4096 values), and the ranges cross both
the tile boundary and the coefs' end.
"""

import copy
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification

import reference as ref
from cbp import MLPClassifier
from cbp import _options, _schedules
from cbp._dispatch import kernel
from optional import optional

# (the short fits below stop at max_iter)
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

D, K, N = 50, 90, 30
UNITS = np.array([D, K], dtype=np.intp)
N_PARAMS = D * K + K
ALPHA = 0.3
STEPS = 5
KINDS = list(kernel.OPTIMIZER_CODES)
LR = {"sgd": 0.01, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.005}
HYPER = {"sgd": dict(momentum=0.9, nesterov=True),
         "adam": dict(beta_1=0.9, beta_2=0.999, epsilon=1e-8),
         "adamw": dict(beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.1),
         "rmsprop": dict(rho=0.9, epsilon=1e-8)}
RANGES = {
    "one-range-in-a-tile": [(10, 300, 3.0)],
    "across-a-tile-and-the-coefs-end": [(4000, 4520, 0.25)],
    "two-ranges": [(4000, 4520, 0.25), (10, 300, 3.0)],
    "a-frozen-range": [(0, D, 0.0)],
}
RTOL, ATOL = 1e-12, 1e-13

_rng = np.random.default_rng(0)
X = _rng.normal(size=(N, D))
Y = _rng.normal(size=(N, K))
START = 0.1 * _rng.normal(size=N_PARAMS)


def kernel_steps(kind, lr_factors=(), learning_rate=None, steps=STEPS, block_rows=0):
    """(params, optimizer) after ``steps`` full-batch train_epoch calls."""
    net = kernel.Network(UNITS, "relu", "squared_error", ALPHA, False, N,
                         block_rows=block_rows)
    params = START.copy()
    opt = kernel.Optimizer(kind, params, lr_factors=lr_factors,
                           learning_rate=LR[kind] if learning_rate is None else learning_rate,
                           **HYPER[kind])
    work = np.empty(net.workspace_size(kernel.EPOCH_PART))
    for _ in range(steps):
        kernel.train_epoch(net, opt, kernel.Data(X, Y), np.empty(0, np.intp), N, params,
                           np.empty_like(params), work, False, 2)
    return params, opt


def groups(lr_factors, lr):
    """[(start, stop, rate)]: the parameter groups covering the flat vector."""
    out, done = [], 0
    for start, stop, factor in sorted(lr_factors):
        if done < start:
            out.append((done, start, lr))
        out.append((start, stop, lr * factor))
        done = stop
    if done < N_PARAMS:
        out.append((done, N_PARAMS, lr))
    return out


def linear_gradient(params):
    """The gradient of 0.5 sum (X W + b - Y)^2 / N + 0.5 alpha ||W||^2 / N."""
    W, b = params[:D * K].reshape(D, K), params[D * K:]
    residual = X @ W + b - Y
    return np.concatenate([((X.T @ residual + ALPHA * W) / N).ravel(),
                           residual.sum(axis=0) / N])


TORCH_OPTIMIZERS = {
    "sgd": lambda torch, g: torch.optim.SGD(g, lr=LR["sgd"], momentum=0.9, nesterov=True),
    "adamw": lambda torch, g: torch.optim.AdamW(g, lr=LR["adamw"], betas=(0.9, 0.999),
                                                eps=1e-8, weight_decay=0.1),
    "rmsprop": lambda torch, g: torch.optim.RMSprop(g, lr=LR["rmsprop"], alpha=0.9,
                                                    eps=1e-8),
}


def torch_steps(kind, lr_factors):
    """PyTorch's flat vector after STEPS steps, one parameter group per piece."""
    torch = optional("torch")
    pieces = [torch.tensor(START[start:stop], requires_grad=True)
              for start, stop, _ in groups(lr_factors, LR[kind])]
    opt = TORCH_OPTIMIZERS[kind](torch, [
        {"params": [piece], "lr": rate}
        for piece, (_, _, rate) in zip(pieces, groups(lr_factors, LR[kind]))])
    X_t, Y_t = torch.from_numpy(X), torch.from_numpy(Y)
    for _ in range(STEPS):
        opt.zero_grad()
        flat = torch.cat(pieces)
        W, b = flat[:D * K].view(D, K), flat[D * K:]
        J = (0.5 * ((X_t @ W + b - Y_t) ** 2).sum() / N
             + 0.5 * ALPHA * (W ** 2).sum() / N)
        J.backward()
        opt.step()
    return torch.cat(pieces).detach().numpy()


# ---------------------------------------------------------------------------
# lr_factors: the update at each range's rate
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("ranges", RANGES.values(), ids=RANGES.keys())
@pytest.mark.parametrize("kind", list(TORCH_OPTIMIZERS))
def test_lr_factors_train_as_torch_parameter_groups(kind, ranges):
    optional("torch")
    params, _ = kernel_steps(kind, ranges)
    assert_allclose(params, torch_steps(kind, ranges), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("ranges", RANGES.values(), ids=RANGES.keys())
def test_lr_factors_train_adam_as_scikit_learn_s_step_at_each_group_s_rate(ranges):
    params, _ = kernel_steps("adam", ranges)
    p, m, v = START.copy(), np.zeros(N_PARAMS), np.zeros(N_PARAMS)
    for t in range(1, STEPS + 1):
        g = linear_gradient(p)
        for start, stop, rate in groups(ranges, LR["adam"]):
            piece = slice(start, stop)
            p[piece], m[piece], v[piece] = ref.adam_step(
                p[piece], g[piece], m[piece], v[piece], rate, 0.9, 0.999, 1e-8, t)
    assert_allclose(params, p, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", KINDS)
def test_a_range_s_first_step_is_the_step_at_its_rate(kind):
    """Each value's update is its own: after one step, a range's values (and
    state) are those of the optimizer at lr * factor, the others those at lr."""
    start, stop, factor = 4000, 4520, 0.25
    got, opt = kernel_steps(kind, [(start, stop, factor)], steps=1)
    at_lr, opt_lr = kernel_steps(kind, steps=1)
    at_scaled, opt_scaled = kernel_steps(kind, learning_rate=LR[kind] * factor, steps=1)
    inside = np.zeros(N_PARAMS, bool)
    inside[start:stop] = True
    assert_array_equal(got[inside], at_scaled[inside])
    assert_array_equal(got[~inside], at_lr[~inside])
    for name in opt.state:
        assert_array_equal(opt.state[name][inside], opt_scaled.state[name][inside], name)
        assert_array_equal(opt.state[name][~inside], opt_lr.state[name][~inside], name)


@pytest.mark.parametrize("ranges", [[(0, N_PARAMS, 1.0)], [(10, 300, 1.0)]],
                         ids=["everything", "one-range"])
@pytest.mark.parametrize("kind", KINDS)
def test_factors_of_one_train_exactly_as_no_factors(kind, ranges):
    assert_array_equal(kernel_steps(kind, ranges)[0], kernel_steps(kind)[0])


@pytest.mark.parametrize("kind", KINDS)
def test_lr_factors_in_a_block_train_exactly_as_in_one_piece(kind):
    """A batch in one block (block_rows: the update tile by tile, in
    _train_batch_in_blocks) is the batch in one chunk, bit for bit."""
    ranges = RANGES["two-ranges"]
    assert_array_equal(kernel_steps(kind, ranges, block_rows=N)[0],
                       kernel_steps(kind, ranges)[0])


@pytest.mark.parametrize("lr_factors", [
    [(10, 5, 2.0)], [(-1, 5, 2.0)], [(0, N_PARAMS + 1, 2.0)], [(0, 10, 1.0), (5, 20, 1.0)],
    [(0, 10, -1.0)], [(0, 10, float("nan"))], [(0, 10, float("inf"))]],
    ids=["stop-before-start", "negative-start", "past-the-end", "overlapping",
         "negative-factor", "nan-factor", "infinite-factor"])
def test_bad_lr_factors_are_refused(lr_factors):
    with pytest.raises(ValueError, match="lr_factors"):
        kernel.Optimizer("sgd", START, learning_rate=0.1, lr_factors=lr_factors)


def test_lr_factors_past_the_network_s_parameters_are_refused_by_train_epoch():
    longer = np.zeros(N_PARAMS + 10)
    opt = kernel.Optimizer("sgd", longer, learning_rate=0.1,
                           lr_factors=[(N_PARAMS, N_PARAMS + 10, 2.0)])
    opt.state["velocities"] = np.zeros(N_PARAMS)
    net = kernel.Network(UNITS, "relu", "squared_error", ALPHA, False, N)
    params = START.copy()
    with pytest.raises(ValueError, match="lr_factors"):
        kernel.train_epoch(net, opt, kernel.Data(X, Y), np.empty(0, np.intp), N, params,
                           np.empty_like(params),
                           np.empty(net.workspace_size(kernel.EPOCH_PART)))


def test_lr_factors_are_kept_sorted_and_in_the_hyper_parameters():
    opt = kernel.Optimizer("adamw", START, learning_rate=0.1,
                           lr_factors=RANGES["two-ranges"])
    assert opt.lr_factors == ((10, 300, 3.0), (4000, 4520, 0.25))
    assert opt.hyper_parameters["lr_factors"] == opt.lr_factors
    assert kernel.Optimizer("sgd", START, learning_rate=0.1).lr_factors == ()


@pytest.mark.parametrize("kind", KINDS)
def test_a_pickled_optimizer_keeps_its_lr_factors_and_trains_on_exactly(kind):
    ranges = RANGES["two-ranges"]
    params, opt = kernel_steps(kind, ranges, steps=2)
    copied = pickle.loads(pickle.dumps(opt))
    assert copied.lr_factors == opt.lr_factors
    net = kernel.Network(UNITS, "relu", "squared_error", ALPHA, False, N)
    results = []
    for optimizer in (opt, copied):
        p = params.copy()
        kernel.train_epoch(net, optimizer, kernel.Data(X, Y), np.empty(0, np.intp), N, p,
                           np.empty_like(p), np.empty(net.workspace_size(kernel.EPOCH_PART)))
        results.append(p)
    assert_array_equal(*results)


# ---------------------------------------------------------------------------
# The kernel's named state
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_the_kernel_state_is_the_kind_s_named_vectors_at_zero(kind, dtype):
    params = START.astype(dtype)
    opt = kernel.Optimizer(kind, params, learning_rate=0.1)
    assert list(opt.state) == list(kernel.OPTIMIZER_STATE[kind])
    for name, vector in opt.state.items():
        assert vector.dtype == dtype and vector.shape == params.shape, name
        assert not np.any(vector), name


@pytest.mark.parametrize("kind", KINDS)
def test_a_given_state_is_taken_as_it_is(kind):
    state = {name: np.ones(N_PARAMS) for name in kernel.OPTIMIZER_STATE[kind]}
    opt = kernel.Optimizer(kind, START, learning_rate=0.1, state=state)
    assert all(opt.state[name] is state[name] for name in state)


def test_a_given_read_only_state_is_taken():
    """(A model unpickled from a read-only memory map predicts; train_epoch
    refuses such vectors: tests/test_kernel.py's bad calls.)"""
    vs = np.zeros(N_PARAMS)
    vs.setflags(write=False)
    assert kernel.Optimizer("rmsprop", START, learning_rate=0.1,
                            state={"vs": vs}).state["vs"] is vs


def _with(kind, **changes):
    state = {name: np.zeros(N_PARAMS) for name in kernel.OPTIMIZER_STATE[kind]}
    return {**state, **changes}


@pytest.mark.parametrize("kind, state, word", [
    ("sgd", {}, "exactly"),
    ("adam", {"ms": np.zeros(N_PARAMS)}, "exactly"),
    ("rmsprop", _with("rmsprop", ms=np.zeros(N_PARAMS)), "exactly"),
    ("sgd", _with("sgd", velocities=np.zeros(N_PARAMS - 1)), "velocities"),
    ("adam", _with("adam", vs=np.zeros(N_PARAMS, np.float32)), "vs"),
    ("adamw", _with("adamw", ms=np.zeros((N_PARAMS, 1))), "ms"),
], ids=["sgd-none", "adam-without-vs", "rmsprop-with-ms", "sgd-velocities-one-short",
        "adam-vs-float32", "adamw-ms-2d"])
def test_a_given_state_is_checked(kind, state, word):
    with pytest.raises(ValueError, match=word):
        kernel.Optimizer(kind, START, learning_rate=0.1, state=state)


# ---------------------------------------------------------------------------
# The Python optimizers: attributes, state_dict, pickles of earlier layouts
# ---------------------------------------------------------------------------

_Xc, _yc = make_classification(80, 6, n_informative=4, n_classes=3, random_state=0)
SCHEDULED = [(solver, schedule) for solver in _options.STOCHASTIC
             for schedule in _options.SOLVERS[solver].schedules]


def fitted(solver, learning_rate="constant", max_iter=3):
    return MLPClassifier(hidden_layer_sizes=(7,), solver=solver, learning_rate=learning_rate,
                         learning_rate_init=0.01, max_iter=max_iter, batch_size=16,
                         n_iter_no_change=1, tol=10.0, random_state=0).fit(_Xc, _yc)


def trained_on(model, epochs=2):
    for _ in range(epochs):
        model.partial_fit(_Xc, _yc)
    return model


def assert_trained_alike(a, b):
    for l, (x, y) in enumerate(zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)):
        assert_array_equal(x, y, err_msg=f"part {l}")
    assert a._optimizer.state().keys() == b._optimizer.state().keys()
    for key, value in a._optimizer.state().items():
        assert np.array_equal(value, b._optimizer.state()[key]), key


@pytest.mark.parametrize("solver", _options.STOCHASTIC)
def test_the_optimizer_s_vectors_are_the_kernel_state_by_name(solver):
    optimizer = fitted(solver)._optimizer
    names = set(kernel.OPTIMIZER_STATE[solver])
    for name in {n for kind in kernel.OPTIMIZER_STATE.values() for n in kind}:
        if name in names:
            assert getattr(optimizer, name) is optimizer.compiled.state[name], name
        else:
            assert not hasattr(optimizer, name), name


@pytest.mark.parametrize("solver", ["adam", "adamw"])
def test_adam_s_t_and_step_size_are_scikit_learn_s(solver):
    optimizer = fitted(solver)._optimizer
    t = optimizer.compiled.t
    assert optimizer.t == t > 0
    assert optimizer.learning_rate == (0.01 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t))


@pytest.mark.parametrize("solver", _options.STOCHASTIC)
def test_the_state_dict_is_plain_copies(solver):
    optimizer = fitted(solver)._optimizer
    d = optimizer.state_dict()
    assert set(d) == {"kind", "learning_rate_init", "learning_rate", "t",
                      "hyper_parameters", "state", "schedule"}
    assert d["kind"] == solver and d["t"] == optimizer.compiled.t
    assert d["hyper_parameters"]["lr_factors"] == ()
    for name, vector in optimizer.compiled.state.items():
        assert d["state"][name] is not vector
        assert_array_equal(d["state"][name], vector)


@pytest.mark.parametrize("solver, schedule", SCHEDULED)
def test_a_loaded_state_dict_trains_on_exactly_as_the_original(solver, schedule):
    model = fitted(solver, schedule)
    other = copy.deepcopy(model)
    fresh = other._make_optimizer(other._params())
    fresh.load_state_dict(model._optimizer.state_dict())
    other._optimizer = fresh
    assert_trained_alike(trained_on(other), trained_on(model))


def test_a_state_dict_of_another_kind_is_refused():
    adam = fitted("adam")._optimizer
    with pytest.raises(ValueError, match="'sgd'"):
        adam.load_state_dict(fitted("sgd")._optimizer.state_dict())


@pytest.mark.parametrize("solver", _options.STOCHASTIC)
def test_lr_factors_go_through_the_python_optimizer_and_its_state(solver):
    model = fitted(solver)
    ranges = ((0, 6, 0.5),)
    optimizer = _options.SOLVERS[solver].make_optimizer(model._params(), model,
                                                        lr_factors=ranges)
    assert optimizer.compiled.lr_factors == ranges
    assert optimizer.state_dict()["hyper_parameters"]["lr_factors"] == ranges
    assert pickle.loads(pickle.dumps(optimizer)).compiled.lr_factors == ranges
    fresh = _options.SOLVERS[solver].make_optimizer(model._params(), model)
    fresh.load_state_dict(optimizer.state_dict())
    assert fresh.compiled.lr_factors == ranges


def _pickled_before_named_state(optimizer, schedule):
    """optimizer.__getstate__() as cbp wrote it before the state was named
    and schedules were objects: the kernel's (kind, hyper_parameters, t,
    velocities, ms, vs), the schedule's name, epoch and settings as the
    optimizer's own attributes."""
    compiled = optimizer.compiled
    empty = np.zeros(0, dtype=optimizer.compiled.state[kernel.OPTIMIZER_STATE[
        compiled.kind][0]].dtype)
    hyper_parameters = {k: v for k, v in compiled.hyper_parameters.items()
                        if k != "lr_factors"}
    state = {k: v for k, v in vars(optimizer).items() if k not in ("compiled", "schedule")}
    state.update(lr_schedule=schedule.name, max_iter=getattr(schedule, "max_iter", 3),
                 epoch=schedule.epoch)
    if compiled.kind == "sgd":
        state["power_t"] = getattr(schedule, "power_t", 0.5)
    state["compiled_state"] = (
        compiled.kind, hyper_parameters, compiled.t,
        *[compiled.state.get(name, empty).copy() for name in ("velocities", "ms", "vs")])
    return copy.deepcopy(state)


@pytest.mark.parametrize("solver, schedule", SCHEDULED)
def test_a_pickle_of_the_positional_layout_loads_and_trains_on_exactly(solver, schedule):
    model = fitted(solver, schedule)
    other = copy.deepcopy(model)
    optimizer = model._optimizer
    old = object.__new__(type(optimizer))
    old.__setstate__(_pickled_before_named_state(optimizer, optimizer.schedule))
    assert old.schedule == optimizer.schedule
    other._optimizer = old
    assert_trained_alike(trained_on(other), trained_on(model))


# ---------------------------------------------------------------------------
# The schedules
# ---------------------------------------------------------------------------

def test_each_schedule_entry_names_its_class_under_its_name():
    for name, entry in _options.SCHEDULES.items():
        assert entry.schedule.name == name
        assert _schedules.schedule_class(name) is entry.schedule


def _rate_holder(learning_rate):
    return kernel.Optimizer("sgd", START, learning_rate=learning_rate)


@pytest.mark.parametrize("time_step", [0, 7, 12345])
def test_invscaling_sets_lr_init_over_the_samples_seen_to_power_t(time_step):
    holder = _rate_holder(0.1)
    _schedules.InvScalingSchedule(0.1, 0.3).iteration_ends(holder, time_step)
    assert holder.learning_rate == 0.1 / (time_step + 1) ** 0.3


@pytest.mark.parametrize("epoch", [0, 1, 5, 9])
def test_cosine_sets_the_closed_form_and_counts_the_epoch(epoch):
    holder = _rate_holder(0.1)
    schedule = _schedules.CosineSchedule(0.1, 10)
    schedule.epoch = epoch
    schedule.epoch_starts(holder)
    assert holder.learning_rate == 0.1 * 0.5 * (1.0 + np.cos(np.pi * epoch / 10))
    assert schedule.epoch == epoch + 1


@pytest.mark.parametrize("epoch", [0, 1, 7, 100, 255])
def test_coslog4_sets_the_epochs_mean_of_realmlps_factor_and_counts_the_epoch(epoch):
    holder = _rate_holder(0.1)
    schedule = _schedules.Coslog4Schedule(0.04, 256)
    schedule.epoch = epoch
    schedule.epoch_starts(holder)
    assert_allclose(holder.learning_rate, 0.04 * ref.coslog4_epoch_mean(epoch, 256), rtol=1e-8)
    assert schedule.epoch == epoch + 1


def test_coslog4_epoch_rates_are_the_means_of_realmlps_rates_per_step():
    """pytabkit sets lr * f(samples seen / (max_iter * n)) before each step;
    an epoch of many small batches averages to the epoch's rate."""
    max_iter, steps = 8, 20000
    holder = _rate_holder(0.1)
    schedule = _schedules.Coslog4Schedule(1.0, max_iter)
    for epoch in range(max_iter):
        schedule.epoch_starts(holder)
        per_step = ref.coslog4((epoch + (np.arange(steps) + 0.5) / steps) / max_iter)
        assert_allclose(holder.learning_rate, per_step.mean(), rtol=1e-6)


def test_coslog4_factor_is_pytabkits():
    scheduling = optional("pytabkit.models.training.scheduling")
    theirs = scheduling.get_schedule("coslog4")
    for t in np.linspace(0.0, 1.0, 101):
        assert _schedules.coslog_factor(t, 4) == theirs.call_time_(t) == ref.coslog4(t)


def test_adaptive_divides_the_rate_by_five_when_training_stalls(capsys):
    holder = _rate_holder(0.1)
    assert not _schedules.AdaptiveSchedule().training_stalled(holder, "Stalled.", True)
    assert holder.learning_rate == 0.1 / 5.0
    assert capsys.readouterr().out == "Stalled. Setting learning rate to 0.020000\n"


def test_adaptive_stops_once_the_rate_is_at_most_1e_6(capsys):
    holder = _rate_holder(1e-6)
    assert _schedules.AdaptiveSchedule().training_stalled(holder, "Stalled.", True)
    assert holder.learning_rate == 1e-6
    assert capsys.readouterr().out == "Stalled. Learning rate too small. Stopping.\n"


@pytest.mark.parametrize("name", ["constant", "invscaling", "cosine", "coslog4"])
def test_other_schedules_stop_when_training_stalls(name, capsys):
    schedule = _options.SCHEDULES[name].make(MLPClassifier(learning_rate=name))
    holder = _rate_holder(0.1)
    assert schedule.training_stalled(holder, "Stalled.", True)
    assert holder.learning_rate == 0.1
    assert capsys.readouterr().out == "Stalled. Stopping.\n"


@pytest.mark.parametrize("name", list(_options.SCHEDULES))
def test_a_schedule_rebuilt_from_its_state_dict_is_equal(name):
    schedule = _options.SCHEDULES[name].make(MLPClassifier(learning_rate=name))
    schedule.epoch = 4
    assert _schedules.from_state_dict(schedule.state_dict()) == schedule
