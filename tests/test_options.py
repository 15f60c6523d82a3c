"""cbp/_options.py is the one description of every option.

The registries name exactly what each kernel build has (its tables give the codes),
and the estimators' constraints, the messages, persistence and the ONNX
export take the names from them.
"""

import importlib

import numpy as np
import pytest

from cbp import MLPClassifier, MLPRegressor
from cbp import _options as options
from kernel_paths import kernel_builds


# What each kind of option is named in the registries and in a kernel build:
# kind -> (registry names, the build's names)
KINDS = {
    "hidden activation": (lambda: options.HIDDEN_ACTIVATIONS,
                          lambda build: build.HIDDEN_ACTIVATIONS),
    "output activation": (lambda: options.OUTPUT_ACTIVATIONS,
                          lambda build: build.OUTPUT_ACTIVATIONS),
    "loss": (lambda: options.LOSSES, lambda build: build.LOSS_CODES),
    # a stochastic solver's name is the kernel's kind of optimizer
    "optimizer": (lambda: options.STOCHASTIC, lambda build: build.OPTIMIZER_CODES),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("module", kernel_builds())
def test_the_registries_name_exactly_the_kernel_s_options(module, kind):
    """Every registry entry is a name the kernel build knows, and the build
    knows no name the registry lacks."""
    build = importlib.import_module(f"cbp.{module}")
    registry, kernel_names = KINDS[kind]
    assert set(registry()) == set(kernel_names(build))


@pytest.mark.parametrize("module", kernel_builds())
def test_each_loss_s_output_activation_is_the_kernel_build_s(module):
    build = importlib.import_module(f"cbp.{module}")
    assert {name: loss.output for name, loss in options.LOSSES.items()} == build.LOSS_OUTPUT
    assert set(build.LOSS_OUTPUT.values()) <= set(options.OUTPUT_ACTIVATIONS)


@pytest.mark.parametrize("module", kernel_builds())
def test_each_solver_saves_the_kernel_build_s_state_vectors(module):
    build = importlib.import_module(f"cbp.{module}")
    for name in options.STOCHASTIC:
        vectors = [s.name for s in options.SOLVERS[name].state if s.kind == "vector"]
        assert set(vectors) == set(build.OPTIMIZER_STATE[name]), name


def test_the_options_are_scikit_learn_s_and_cbp_s_additions():
    """The registries hold scikit-learn's options, each under its own name,
    and exactly cbp's documented additions (a registry entry lost, renamed or
    added without its documentation fails here)."""
    import sklearn.neural_network as sk

    def options_of(Estimator, name):
        return Estimator._parameter_constraints[name][0].options

    additions = {
        "activation": {"leaky_relu", "gelu", "silu", "selu", "mish"},
        "solver": {"adamw", "rmsprop"},
        "learning_rate": {"cosine", "coslog4"},
    }
    for name, added in additions.items():
        for ours, theirs in ((MLPClassifier, sk.MLPClassifier), (MLPRegressor, sk.MLPRegressor)):
            assert options_of(ours, name) == options_of(theirs, name) | added, name
    assert options_of(MLPRegressor, "loss") == (options_of(sk.MLPRegressor, "loss")
                                               | {"absolute_error", "huber"})


def test_constraints_are_the_registries():
    for Estimator in (MLPClassifier, MLPRegressor):
        constraints = Estimator._parameter_constraints
        assert constraints["activation"][0].options == set(options.HIDDEN_ACTIVATIONS)
        assert constraints["solver"][0].options == set(options.SOLVERS)
        assert constraints["learning_rate"][0].options == set(options.SCHEDULES)
        for name in options.LAYER_OPTIONS:
            assert constraints[name] == options.LAYER_OPTIONS[name].constraints
    assert MLPRegressor._parameter_constraints["loss"][0].options == set(
        options.losses_of("regressor"))
    assert "huber_delta" in MLPRegressor._parameter_constraints


def test_every_parameter_a_solver_reads_is_a_constructor_parameter():
    for Estimator in (MLPClassifier, MLPRegressor):
        params = Estimator().get_params()
        for solver in options.SOLVERS.values():
            assert set(solver.reads.values()) <= set(params)
            assert set(solver.constraints) <= set(params)


def test_the_classifier_loss_rule():
    assert options.classifier_loss("softmax") == "log_loss"
    assert options.classifier_loss("logistic") == "binary_log_loss"
    assert options.classifier_output("multiclass") == "softmax"
    assert options.classifier_output("binary") == "logistic"
    assert options.classifier_output("multilabel-indicator") == "logistic"


def test_messages_name_the_stochastic_solvers_from_the_registry():
    assert options.quoted(["a", "b", "c"]) == "'a', 'b', 'c'"
    assert options.quoted(["a", "b", "c"], " or ") == "'a', 'b' or 'c'"
    X, y = np.random.RandomState(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError) as error:
        MLPClassifier(solver="lbfgs", weight_tol=1e-3).fit(X, y)
    assert options.quoted(options.STOCHASTIC) in str(error.value)


@pytest.mark.parametrize("activation,factor", [("logistic", 2.0), ("relu", 6.0)])
def test_initialisation_is_scikit_learns_glorot_uniform(activation, factor):
    init = options.HIDDEN_ACTIVATIONS[activation].init
    coef, intercept = init.draw(np.random.RandomState(0), 4, 3)
    rs = np.random.RandomState(0)
    bound = np.sqrt(factor / 7)
    np.testing.assert_array_equal(coef, rs.uniform(-bound, bound, (4, 3)))
    np.testing.assert_array_equal(intercept, rs.uniform(-bound, bound, 3))


def test_lecun_normal_draws_coefs_of_variance_one_over_fan_in_and_zero_intercepts():
    coef, intercept = options.LeCunNormal().draw(np.random.RandomState(0), 400, 300)
    assert coef.shape == (400, 300) and not intercept.any()
    assert abs(coef.std() - np.sqrt(1 / 400)) < 1e-3


@pytest.mark.parametrize("name", ["LEAKY_SLOPE", "SELU_ALPHA", "SELU_SCALE"])
@pytest.mark.parametrize("module", kernel_builds())
def test_the_activations_constants_are_the_kernel_build_s(module, name):
    """Written once, in src/_activations.pxd: each build exposes it, equal to
    the reference's (PyTorch's); the ONNX forms read it from the kernel."""
    import reference

    build = importlib.import_module(f"cbp.{module}")
    assert getattr(build, name) == getattr(reference, name)


def _classification(n=40):
    return np.random.RandomState(0).normal(size=(n, 3)), np.arange(n) % 2


@pytest.mark.parametrize("name, params, sparse", [
    ("block_rows", dict(block_rows=8, batch_norm=True), False),
    ("block_rows", dict(block_rows=8), True),
    ("dropout", dict(solver="lbfgs", dropout=0.2), False),
    ("weight_tol", dict(solver="lbfgs", weight_tol=1e-3), False),
    ("input_scaling", dict(input_scaling=True, ensemble_size=2), False),
    ("numeric_embedding", dict(numeric_embedding="periodic"), True),
    ("numeric_embedding", dict(numeric_embedding="piecewise_linear"), True),
])
def test_the_estimator_refuses_with_the_registry_entry_s_message(name, params, sparse):
    """A combination is refused in one place in Python, its LayerOption; the
    estimator raises that entry's message."""
    import re

    import scipy.sparse

    X, y = _classification()
    if sparse:
        X = scipy.sparse.csr_matrix(X)
    model = MLPClassifier((4,), max_iter=2, **params)
    message = options.LAYER_OPTIONS[name].refused(model, X, 1)
    assert message
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        model.fit(X, y)


@pytest.mark.parametrize("dropout, match", [
    ([0.1, 0.2], "dropout has 2 rates, the network has 1 hidden layers"),
    (1.0, r"in \[0, 1\)"),
    (["a"], "must be numbers"),
])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_the_dropout_entry_checks_the_rates_for_every_solver(dropout, match, solver):
    model = MLPClassifier((4,), solver=solver, dropout=dropout)
    with pytest.raises(ValueError, match=match):
        options.LAYER_OPTIONS["dropout"].refused(model, None, 1)
