"""Every option of cbp's estimators, described once.

One registry per kind of option; the estimators' ``_parameter_constraints``,
their checks and error messages, the training loop, persistence and the ONNX
export read them, and nothing else lists the names. The kernel's tables
(``_kernel.HIDDEN_ACTIVATIONS``, ``LOSS_CODES``, ``LOSS_OUTPUT``,
``OPTIMIZER_CODES``) stay the source of the kernel's codes: an entry here
names a kernel option and says what Python does with it (tests/test_options.py
checks that the names are exactly each kernel build's).

    HIDDEN_ACTIVATIONS  name -> HiddenActivation(init scheme)
    OUTPUT_ACTIVATIONS  name -> OutputActivation
    LOSSES              name -> Loss(estimators, parameters, target check);
                        its output activation is the kernel's LOSS_OUTPUT
    SOLVERS             name -> Solver(stochastic, optimizer class, the
                        estimator parameters it reads, state it saves,
                        schedules it applies)
    SCHEDULES           name -> Schedule(its class in _schedules.py, state
                        it needs saved)
    ENSEMBLES           name -> Ensemble(what each layer holds per member:
                        the kernel's layer_kinds; the tabm package's name)
    LAYER_OPTIONS       name -> LayerOption(constraints, the rule that
                        refuses it with some solver or input)
    EMBEDDINGS          name -> NumericEmbedding(the estimator parameters it
                        reads, its initialisation); the kernel's EMBEDDINGS

How to add
----------
* A hidden activation (once the kernel has it in HIDDEN_ACTIVATIONS): one
  ``HiddenActivation`` in HIDDEN_ACTIVATIONS, with its initialisation
  (``GlorotUniform(6.0)``, scikit-learn's; ``LeCunNormal()`` for selu), and
  its ONNX form under the same name in _onnx_forms.HIDDEN_FORMS. Nothing
  else in cbp/ changes (the estimators' docstrings list the names for
  readers).
* An optimizer (once the kernel has its kind): one ``Solver`` in SOLVERS,
  naming the class of _optimizers.py of its family (AdamOptimizer serves
  'adam' and 'adamw'; the entry's name is the kernel's kind), the estimator
  parameters it reads (``reads``: optimizer keyword -> estimator parameter),
  the constraints of any new parameter (``constraints``), the state it saves
  and which schedules it applies; a new hyper-parameter is also a
  constructor parameter of the estimators (the base class's ``__init__`` and
  MLPClassifier's and MLPRegressor's, which list every parameter).
* A learning-rate schedule: one class in _schedules.py (its hooks, the
  estimator parameters its constructor reads) and one ``Schedule`` in
  SCHEDULES naming it (with the state it needs saved, and
  ``refused_elsewhere`` for an addition of cbp's), its name in the
  ``schedules`` of the solvers that apply it.
* A loss (once the kernel has it): one ``Loss`` in LOSSES (its estimators,
  the constraints of its parameters, its target check); a parameter also
  becomes a constructor argument of the estimator.
* An ensemble form: one ``Ensemble`` in ENSEMBLES, saying per layer which
  of the kernel's four per-member arrays it holds (weights, intercepts,
  input scaling r, output scaling s); the kernel, the initialisation, save
  and load and the ONNX export read the layout from it.
* A layer option: one ``LayerOption`` (its constraints and the combinations
  it refuses), the constructor parameter, and where the network is built
  (the estimator's ``_network``, _network.make_network).
"""

from dataclasses import dataclass, field, replace
from numbers import Integral, Real
from typing import Callable, Optional

import numpy as np
import scipy.sparse
from scipy.special import ndtr, ndtri

from ._dispatch import kernel as _kernel
from ._optimizers import AdamOptimizer, RMSpropOptimizer, SGDOptimizer
from ._schedules import (AdaptiveSchedule, ConstantSchedule, Coslog4Schedule,
                         CosineSchedule, InvScalingSchedule)
from ._sklearn_compat import Interval, StrOptions


def quoted(names, last=", "):
    """'a', 'b', 'c' (or 'a', 'b' or 'c' with last=" or ")."""
    names = [repr(n) for n in names]
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + last + names[-1]


# --------------------------------------------------------------------------
# Initialisation of the weights


@dataclass(frozen=True)
class GlorotUniform:
    """scikit-learn's: coef then intercept ~ U(-b, b), b = sqrt(factor /
    (fan_in + fan_out)), drawn in float64 from the legacy RandomState."""

    factor: float

    def draw(self, random_state, fan_in, fan_out):
        bound = np.sqrt(self.factor / (fan_in + fan_out))
        coef = random_state.uniform(-bound, bound, (fan_in, fan_out))
        return coef, random_state.uniform(-bound, bound, fan_out)


@dataclass(frozen=True)
class LeCunNormal:
    """LeCun normal (selu's): coef ~ N(0, 1 / fan_in), intercept 0."""

    def draw(self, random_state, fan_in, fan_out):
        coef = random_state.normal(0.0, np.sqrt(1.0 / fan_in), (fan_in, fan_out))
        return coef, np.zeros(fan_out)


# --------------------------------------------------------------------------
# Activations (their ONNX forms: _onnx_forms, keyed by these names)


@dataclass(frozen=True)
class HiddenActivation:
    """A hidden activation and its initialisation; the kernel takes it by
    name (its code is the kernel's own, HIDDEN_ACTIVATIONS)."""

    name: str
    init: object  # GlorotUniform(...) or LeCunNormal(): .draw(rs, fan_in, fan_out)


@dataclass(frozen=True)
class OutputActivation:
    """An output activation; the kernel takes it by name (its code is the
    kernel's own, OUTPUT_ACTIVATIONS)."""

    name: str


def _registry(*entries):
    return {entry.name: entry for entry in entries}


HIDDEN_ACTIVATIONS = _registry(
    HiddenActivation("identity", GlorotUniform(6.0)),
    HiddenActivation("logistic", GlorotUniform(2.0)),
    HiddenActivation("tanh", GlorotUniform(6.0)),
    HiddenActivation("relu", GlorotUniform(6.0)),
    HiddenActivation("leaky_relu", GlorotUniform(6.0)),
    HiddenActivation("gelu", GlorotUniform(6.0)),
    HiddenActivation("silu", GlorotUniform(6.0)),
    # LeCun normal, what self-normalisation needs (torch.nn.SELU's docs:
    # kaiming_normal_ with nonlinearity='linear')
    HiddenActivation("selu", LeCunNormal()),
    HiddenActivation("mish", GlorotUniform(6.0)),
)

OUTPUT_ACTIVATIONS = _registry(
    OutputActivation("identity"),
    OutputActivation("logistic"),
    OutputActivation("softmax"),
    OutputActivation("exp"),
)


# --------------------------------------------------------------------------
# Losses


def _non_negative_targets(loss):
    def check(Y):
        if (Y < 0).any():
            raise ValueError(
                f"loss={loss!r} requires non-negative targets y; got min(y) = "
                f"{Y.min()}."
            )
    return check


@dataclass(frozen=True)
class Loss:
    """A loss of the kernel's, as scikit-learn's ``_loss/loss.py`` keeps one:
    the registry's entry describes it (``values`` empty); ``of(estimator)``
    gives the loss a fit minimises, carrying its parameters' values."""

    name: str
    estimator: str  # 'classifier' or 'regressor'
    # constructor parameters of the loss -> their constraints (passed to the
    # kernel's Network as keyword arguments of the same name, as floats)
    parameters: dict = field(default_factory=dict)
    check_targets: Optional[Callable] = None  # (Y) -> None, or ValueError
    values: tuple = ()  # ((parameter, float), ...): this loss's

    @property
    def output(self):
        """Its output activation: the kernel's LOSS_OUTPUT."""
        return _kernel.LOSS_OUTPUT[self.name]

    def of(self, estimator):
        """This loss with the estimator's values of its parameters."""
        return replace(self, values=tuple(
            (name, float(getattr(estimator, name))) for name in self.parameters))

    def kernel_arguments(self):
        """Its parameters' values, as keyword arguments of _kernel.Network."""
        return dict(self.values)


LOSSES = _registry(
    Loss("log_loss", "classifier"),
    Loss("binary_log_loss", "classifier"),
    Loss("squared_error", "regressor"),
    Loss("poisson", "regressor", check_targets=_non_negative_targets("poisson")),
    Loss("absolute_error", "regressor"),
    Loss("huber", "regressor",
         parameters={"huber_delta": [Interval(Real, 0, None, closed="neither")]}),
)


def losses_of(estimator):
    """The names of the losses of 'classifier' or 'regressor'."""
    return [name for name, loss in LOSSES.items() if loss.estimator == estimator]


def loss_parameter_constraints(estimator):
    return {name: constraints for loss in LOSSES.values()
            if loss.estimator == estimator
            for name, constraints in loss.parameters.items()}


def classifier_output(y_type):
    """The classifier's output activation for its target type."""
    return "softmax" if y_type == "multiclass" else "logistic"


def classifier_loss(out_activation):
    """The classifier's loss for its output activation: the classifier's loss
    whose output it is (softmax: log_loss; logistic: binary_log_loss)."""
    for name in losses_of("classifier"):
        if LOSSES[name].output == out_activation:
            return name
    raise ValueError(f"no classifier loss has the output {out_activation!r}")


# --------------------------------------------------------------------------
# Learning-rate schedules and solvers


@dataclass(frozen=True)
class State:
    """An entry of an optimizer's saved state: a 'vector' of the trained
    values' length, a 'count' (non-negative integer) or a 'rate' (in (0,
    learning_rate_init]). Its place in the optimizer's state_dict(): a
    vector in its 'state', a schedule's entry (schedule=True) in its
    'schedule', else at the top level (t, learning_rate)."""

    name: str
    kind: str
    non_negative: bool = False
    schedule: bool = False

    def _part(self, state_dict):
        if self.schedule:
            return state_dict["schedule"]
        return state_dict["state"] if self.kind == "vector" else state_dict

    def find(self, state_dict):
        """This entry's value in an optimizer's state_dict(), or None."""
        return self._part(state_dict).get(self.name)

    def put(self, state_dict, value):
        """Set this entry's value in an optimizer's state_dict()."""
        self._part(state_dict)[self.name] = value


@dataclass(frozen=True)
class Schedule:
    name: str
    schedule: type  # its class in _schedules.py (hooks, settings, state)
    state: tuple = ()  # State entries the optimizer saves under it
    # cbp's additions are refused by a solver that does not apply them;
    # scikit-learn's are ignored, as scikit-learn does
    refused_elsewhere: bool = False

    def make(self, estimator):
        """A new schedule object, of the estimator parameters its class reads."""
        return self.schedule(**{name: getattr(estimator, name)
                                for name in self.schedule.reads})


SCHEDULES = _registry(
    Schedule("constant", ConstantSchedule),
    Schedule("invscaling", InvScalingSchedule),
    Schedule("adaptive", AdaptiveSchedule),
    Schedule("cosine", CosineSchedule, state=(State("epoch", "count", schedule=True),),
             refused_elsewhere=True),
    Schedule("coslog4", Coslog4Schedule, state=(State("epoch", "count", schedule=True),),
             refused_elsewhere=True),
)


@dataclass(frozen=True)
class Solver:
    name: str
    stochastic: bool
    optimizer: Optional[type] = None  # a class of _optimizers.py
    # optimizer keyword -> the estimator parameter it takes its value from
    reads: dict = field(default_factory=dict)
    # constraints of estimator parameters this solver introduces
    constraints: dict = field(default_factory=dict)
    state: tuple = ()  # State entries saved with the model
    schedules: tuple = ()  # the learning_rate values it applies

    def make_optimizer(self, params, estimator, **hyper_parameters):
        """The optimizer of the trained values ``params``, from the estimator's
        parameters, with the schedule of its learning_rate ('constant' for a
        schedule this solver does not apply); hyper_parameters: more keywords
        of the kernel's Optimizer (lr_factors: (start, stop, factor) ranges
        of params with their own rate)."""
        schedule = estimator.learning_rate
        if schedule not in self.schedules:
            schedule = "constant"
        return self.optimizer(
            params, kind=self.name, learning_rate_init=estimator.learning_rate_init,
            schedule=SCHEDULES[schedule].make(estimator),
            **{key: getattr(estimator, name) for key, name in self.reads.items()},
            **hyper_parameters,
        )

    def state_names(self, learning_rate):
        """The State entries saved for this solver under this schedule."""
        if not self.state:
            return ()
        extra = SCHEDULES[learning_rate].state if learning_rate in self.schedules else ()
        return self.state + extra


def _same(*names):
    return {name: name for name in names}


_UNIT = Interval(Real, 0, 1, closed="left")

SOLVERS = _registry(
    Solver("lbfgs", stochastic=False,
           constraints={"max_fun": [Interval(Integral, 1, None, closed="left")]}),
    Solver("sgd", stochastic=True, optimizer=SGDOptimizer,
           reads={"momentum": "momentum", "nesterov": "nesterovs_momentum"},
           constraints={"momentum": [Interval(Real, 0, 1, closed="both")],
                        "nesterovs_momentum": ["boolean"],
                        "power_t": [Interval(Real, 0, None, closed="left")]},
           state=(State("velocities", "vector"), State("learning_rate", "rate")),
           schedules=("constant", "invscaling", "adaptive", "cosine", "coslog4")),
    Solver("adam", stochastic=True, optimizer=AdamOptimizer,
           reads=_same("beta_1", "beta_2", "epsilon"),
           constraints={"beta_1": [_UNIT], "beta_2": [_UNIT],
                        "epsilon": [Interval(Real, 0, None, closed="neither")]},
           state=(State("ms", "vector"), State("vs", "vector", non_negative=True),
                  State("t", "count")),
           schedules=("constant", "cosine", "coslog4")),
    Solver("adamw", stochastic=True, optimizer=AdamOptimizer,
           reads=_same("beta_1", "beta_2", "epsilon", "weight_decay"),
           constraints={"weight_decay": [Interval(Real, 0, None, closed="left")]},
           state=(State("ms", "vector"), State("vs", "vector", non_negative=True),
                  State("t", "count")),
           schedules=("constant", "cosine", "coslog4")),
    Solver("rmsprop", stochastic=True, optimizer=RMSpropOptimizer,
           reads=_same("rho", "epsilon"),
           constraints={"rho": [_UNIT]},
           state=(State("vs", "vector", non_negative=True),),
           schedules=("constant", "cosine", "coslog4")),
)

STOCHASTIC = [name for name, solver in SOLVERS.items() if solver.stochastic]


def solver_parameter_constraints():
    out = {}
    for solver in SOLVERS.values():
        out.update(solver.constraints)
    return out


def schedule_error(solver, learning_rate):
    """The error of a schedule a solver refuses, or None."""
    schedule = SCHEDULES[learning_rate]
    if schedule.refused_elsewhere and learning_rate not in SOLVERS[solver].schedules:
        return (f"learning_rate={learning_rate!r} schedules the stochastic solvers; "
                f"solver={solver!r} has no learning rate.")
    return None


# --------------------------------------------------------------------------
# Ensembles: k networks trained as one (TabM, Gorishniy et al., ICLR 2025)


@dataclass(frozen=True)
class Ensemble:
    """How an ensemble's members share a network's layers.

    ``hidden`` and ``output`` are what a hidden layer and the output layer
    hold per member, as the kernel's layer_kinds rows: (weights, intercepts,
    input scaling r, output scaling s), 1 = one per member. ``first`` is
    the first layer's row when it differs from the other hidden layers'. A
    network without hidden layers is k linear models in every form."""

    name: str
    tabm_arch_type: str  # the tabm package's name of the form
    hidden: tuple
    output: tuple = (1, 1, 0, 0)
    first: Optional[tuple] = None

    def layer_kinds(self, n_layers):
        """(n_layers, 4) rows: what each layer holds per member."""
        if n_layers == 1:
            return [list(self.output)]
        first = self.first if self.first is not None else self.hidden
        return ([list(first)] + [list(self.hidden)] * (n_layers - 2)
                + [list(self.output)])


ENSEMBLES = _registry(
    # BatchEnsemble layers: y_i = ((x_i * r_i) W) * s_i + b_i, W shared
    Ensemble("batch", "tabm", hidden=(0, 1, 1, 1)),
    # one per-member scaling of the input, then shared hidden layers
    Ensemble("mini", "tabm-mini", hidden=(0, 0, 0, 0), first=(0, 0, 1, 0)),
    # k independent networks side by side
    Ensemble("packed", "tabm-packed", hidden=(1, 1, 0, 0)),
)


# --------------------------------------------------------------------------
# Layer and stopping options: valid alone, refused with some solvers or inputs


def dropout_rates(dropout, n_hidden):
    """The dropout rate of each of the n_hidden hidden layers (floats in
    [0, 1)), from ``dropout``: one rate for all, or one per layer."""
    if isinstance(dropout, Real) and not isinstance(dropout, bool):
        rates = [float(dropout)] * n_hidden
    else:
        rates = np.asarray(dropout, dtype=object).ravel().tolist()
        if len(rates) != n_hidden:
            raise ValueError(
                f"dropout has {len(rates)} rates, the network has {n_hidden} "
                "hidden layers: give one rate, or one per hidden layer."
            )
        if not all(isinstance(r, Real) and not isinstance(r, bool) for r in rates):
            raise ValueError(f"dropout rates must be numbers, got {dropout!r}.")
        rates = [float(r) for r in rates]
    if not all(0 <= r < 1 for r in rates):
        raise ValueError(f"dropout rates must be in [0, 1), got {rates}.")
    return rates


def _block_rows_refused(estimator, X, n_hidden):
    if estimator.block_rows is None or not SOLVERS[estimator.solver].stochastic:
        return None
    if estimator.batch_norm:
        return ("block_rows splits each batch into blocks computed apart, and "
                "batch_norm needs the statistics of the whole batch: use one "
                "or the other.")
    if scipy.sparse.issparse(X):
        return ("block_rows is for dense X: with sparse X the first layer is "
                "trained from the non-zeros of each batch, in one piece. Use "
                "block_rows=None, or pass X.toarray().")
    return None


def _dropout_refused(estimator, X, n_hidden):
    """Bad rates raise dropout_rates' ValueError (the one check of them in
    Python, before any work; the kernel's Network checks them again)."""
    rates = dropout_rates(estimator.dropout, n_hidden)
    if SOLVERS[estimator.solver].stochastic or not any(rates):
        return None
    return ("dropout makes the loss random, and L-BFGS's line search needs a "
            f"deterministic one: use solver={quoted(STOCHASTIC, ' or ')} with "
            f"dropout, or dropout=0 with {estimator.solver!r}.")


def _weight_tol_refused(estimator, X, n_hidden):
    if estimator.weight_tol is None or SOLVERS[estimator.solver].stochastic:
        return None
    return (f"weight_tol stops the stochastic solvers ({quoted(STOCHASTIC)}) after "
            f"an epoch; solver={estimator.solver!r} stops by tol, max_iter and "
            "max_fun.")


def _input_scaling_refused(estimator, X, n_hidden):
    if not estimator.input_scaling or estimator.ensemble_size == 1:
        return None
    return ("input_scaling learns one scale per input feature of a plain network; "
            f"with ensemble_size={estimator.ensemble_size} use ensemble='batch' or "
            "'mini', whose members scale their input each (r), or input_scaling=False.")


def _truncated_normal(random_state, scale, shape):
    """normal(0, scale) truncated to [-3 scale, 3 scale] (torch's
    trunc_normal_, rtdl's frequencies), by the inverse of the normal's CDF
    at uniform draws between its values at -3 and 3."""
    u = random_state.uniform(ndtr(-3.0), ndtr(3.0), size=shape)
    return scale * np.clip(ndtri(u), -3.0, 3.0)


def _draw_periodic(random_state, arrays, frequency_scale, **unused):
    """rtdl's PeriodicEmbeddings(lite=False) start, into arrays (views's):
    the frequencies c ~ normal(0, frequency_scale) truncated at 3
    frequency_scale, then the per-feature coefs (F, 2q, d) and intercepts
    (F, d) ~ U(-b, b), b = 1 / sqrt(2q) (_NLinear's)."""
    c = arrays["embedding_frequencies"][0]
    W = arrays["embedding_coefs"][0]
    b = arrays["embedding_intercepts"][0]
    c[...] = _truncated_normal(random_state, frequency_scale, c.shape)
    bound = W.shape[1] ** -0.5
    W[...] = random_state.uniform(-bound, bound, W.shape)
    b[...] = random_state.uniform(-bound, bound, b.shape)


def bin_maps(bin_edges, n_bins):
    """rtdl's _PiecewiseLinearEncodingImpl buffers for these edges (a list
    of each feature's increasing edges, at most n_bins + 1 of them): (bin
    weights (F, n_bins), bin biases (F, n_bins), bin counts (F,)) -- a
    feature's last bin in the last column, its others first, zeros between
    (a feature with one edge, constant in the data, encodes as zeros)."""
    F = len(bin_edges)
    weights, biases = np.zeros((F, n_bins)), np.zeros((F, n_bins))
    counts = np.zeros(F)
    for j, edges in enumerate(bin_edges):
        edges = np.asarray(edges, dtype=np.float64)
        if len(edges) < 2:
            continue
        width = np.diff(edges)
        w, b = 1.0 / width, -edges[:-1] / width
        count = len(width)
        weights[j, -1], biases[j, -1] = w[-1], b[-1]
        weights[j, :count - 1], biases[j, :count - 1] = w[:-1], b[:-1]
        counts[j] = count
    return weights, biases, counts


def _draw_piecewise_linear(random_state, arrays, X, n_bins, **unused):
    """rtdl's PiecewiseLinearEmbeddings(version="B") start, into arrays:
    the linear embedding's slopes and intercepts (F, d) ~ U(-b, b), b = 1 /
    sqrt(d) (LinearEmbeddings'), the per-feature coefs 0; the bins' maps
    from the quantile bins of X (PiecewiseLinearEncoder's, rtdl's
    compute_bins')."""
    from ._preprocessing import PiecewiseLinearEncoder

    a = arrays["embedding_slopes"][0]
    b = arrays["embedding_intercepts"][0]
    bound = a.shape[1] ** -0.5
    a[...] = random_state.uniform(-bound, bound, a.shape)
    b[...] = random_state.uniform(-bound, bound, b.shape)
    arrays["embedding_coefs"][0][...] = 0.0
    edges = PiecewiseLinearEncoder(n_bins=n_bins).fit(X).bin_edges_
    maps = bin_maps(edges, n_bins)
    for name, values in zip(("bin_weights", "bin_biases", "bin_counts"), maps):
        arrays[name][0][...] = values


@dataclass(frozen=True)
class NumericEmbedding:
    """A trained embedding of each numeric input feature into d values
    before the first layer (the kernel's EMBEDDINGS, src/_embeddings.pxd).
    ``size``: the estimator parameter (and the kernel Network's keyword)
    of each feature's encoding size; ``parameters``: the estimator
    parameters it reads, with their constraints; ``draw(random_state,
    arrays, X=..., **parameters)``: its starting values (views's arrays),
    from the training X and those parameters' values."""

    name: str
    size: str
    parameters: dict
    draw: Callable


_EMBEDDING_SIZE = {"embedding_size": [Interval(Integral, 1, None, closed="left")]}

EMBEDDINGS = _registry(
    # rtdl_num_embeddings.PeriodicEmbeddings(n_features, embedding_size,
    # n_frequencies=..., frequency_init_scale=frequency_scale, lite=False)
    NumericEmbedding(
        "periodic", "n_frequencies",
        {**_EMBEDDING_SIZE,
         "n_frequencies": [Interval(Integral, 1, None, closed="left")],
         "frequency_scale": [Interval(Real, 0, None, closed="neither")]},
        _draw_periodic),
    # rtdl_num_embeddings.PiecewiseLinearEmbeddings(compute_bins(X, n_bins),
    # embedding_size, activation=False, version="B")
    NumericEmbedding(
        "piecewise_linear", "n_bins",
        {**_EMBEDDING_SIZE, "n_bins": [Interval(Integral, 2, None, closed="left")]},
        _draw_piecewise_linear),
)


def _embedded_count(estimator, n_features):
    """k, the embedded columns (the first k of n_features; None: all)."""
    k = getattr(estimator, "embedded_features", None)
    return int(n_features) if k is None else int(k)


def embedding_of(estimator, n_features):
    """The estimator's numeric embedding as an Architecture holds it, (name,
    n_features, its size parameter's value, k: the embedded first columns),
    or None."""
    name = getattr(estimator, "numeric_embedding", None)
    if name is None:
        return None
    return (name, int(n_features), int(getattr(estimator, EMBEDDINGS[name].size)),
            _embedded_count(estimator, n_features))


def embedded_width(embedding, embedding_size):
    """units[0] after an embedding (embedding_of's tuple) of embedding_size
    values per embedded column: k * d + (n_features - k)."""
    n_features, k = embedding[1], embedding[3]
    return k * int(embedding_size) + n_features - k


def embedding_start(estimator, X):
    """The keywords of the estimator's embedding's draw: the embedded
    columns X[:, :k] of the training X and the parameters its entry reads."""
    entry = EMBEDDINGS[estimator.numeric_embedding]
    k = _embedded_count(estimator, X.shape[1])
    return {"X": X[:, :k], **{name: getattr(estimator, name) for name in entry.parameters}}


def _numeric_embedding_refused(estimator, X, n_hidden):
    if estimator.numeric_embedding is None:
        return None
    if scipy.sparse.issparse(X):
        return (f"numeric_embedding={estimator.numeric_embedding!r} embeds every "
                "column of a dense X: pass X.toarray(), or numeric_embedding=None.")
    return None


def _embedded_features_refused(estimator, X, n_hidden):
    k = getattr(estimator, "embedded_features", None)
    if estimator.numeric_embedding is None or k is None or k <= X.shape[1]:
        return None
    return (f"embedded_features={k} must be at most the {X.shape[1]} columns "
            "of X (the first k columns are embedded), or None for all.")


def ensemble_of(estimator):
    """The estimator's ensemble as the network functions take it: (members,
    form), or None for ensemble_size=1 (a plain network)."""
    if estimator.ensemble_size == 1:
        return None
    return (int(estimator.ensemble_size), estimator.ensemble)


@dataclass(frozen=True)
class LayerOption:
    name: str
    constraints: list
    # (estimator, X, n_hidden) -> the error of a combination it refuses, or
    # None; the estimator's only check of it (check_combinations), the kernel
    # keeping its own for a direct call
    refused: Optional[Callable] = None


LAYER_OPTIONS = _registry(
    LayerOption("block_rows", [None, Interval(Integral, 1, None, closed="left")],
                _block_rows_refused),
    LayerOption("dropout", [Interval(Real, 0, 1, closed="left"), "array-like"],
                _dropout_refused),
    LayerOption("batch_norm", ["boolean"]),
    LayerOption("weight_tol", [None, Interval(Real, 0, None, closed="neither")],
                _weight_tol_refused),
    LayerOption("ensemble_size", [Interval(Integral, 1, None, closed="left")]),
    LayerOption("ensemble", [StrOptions(set(ENSEMBLES))]),
    LayerOption("input_scaling", ["boolean"], _input_scaling_refused),
    LayerOption("input_scaling_lr_factor", [Interval(Real, 0, None, closed="neither")]),
    LayerOption("numeric_embedding", [None, StrOptions(set(EMBEDDINGS))],
                _numeric_embedding_refused),
    LayerOption("embedded_features", [None, Interval(Integral, 1, None, closed="left")],
                _embedded_features_refused),
    *(LayerOption(name, constraints) for name, constraints in
      {name: constraints for embedding in EMBEDDINGS.values()
       for name, constraints in embedding.parameters.items()}.items()),
)


def check_combinations(estimator, X, n_hidden):
    """Raise the ValueError of options valid alone (or with input X) but not
    together."""
    for option in LAYER_OPTIONS.values():
        message = option.refused and option.refused(estimator, X, n_hidden)
        if message:
            raise ValueError(message)
    message = schedule_error(estimator.solver, estimator.learning_rate)
    if message:
        raise ValueError(message)


def parameter_constraints():
    """The option parameters' constraints of both estimators (the rest of
    _parameter_constraints is the estimator's own)."""
    return {
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "solver": [StrOptions(set(SOLVERS))],
        "learning_rate": [StrOptions(set(SCHEDULES))],
        **solver_parameter_constraints(),
        **{name: option.constraints for name, option in LAYER_OPTIONS.items()},
    }
