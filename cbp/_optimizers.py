"""Optimizer state and learning-rate schedules, kept between epochs.

The per-batch update itself is the kernel's (src/_optimizers.pxd), described
by a ``_kernel.Optimizer`` built once per fit, which holds the kind, the
hyper-parameters, the learning-rate factors and the named state vectors
(``state``: the parameters' length and dtype) with the update count ``t``.
These classes own one and a schedule (cbp._schedules), and do what
scikit-learn's ``_stochastic_optimizers`` do between epochs; their
``state_dict()`` / ``load_state_dict()`` give and take all of it as plain
values, in the sense of torch.optim.Optimizer's.

Each class serves the kernel's optimizers of one family: ``kind`` names the
kernel's (``_kernel.OPTIMIZER_CODES``), and keywords beyond the class's own
hyper-parameters go to the kernel's Optimizer (AdamOptimizer with
``kind="adamw", weight_decay=...`` is AdamW; ``lr_factors=[(start, stop,
factor), ...]`` gives ranges of the parameter vector their own rate, for
every kind). A new optimizer is an entry in ``_options.SOLVERS`` naming its
class here, and a class only when no family here fits it.
"""

import numpy as np

from . import _schedules
from ._dispatch import kernel as _kernel


class _Optimizer:
    """What every stochastic optimizer shares: the compiled description, the
    schedule, their state.

    params: the flat parameter vector (n_params,), float32 or float64;
    learning_rate_init: the initial rate; schedule: a cbp._schedules object
    (default ConstantSchedule()); kind: the kernel's optimizer;
    hyper_parameters: the kernel Optimizer's keywords (its hyper-parameters,
    lr_factors).

    The kernel's state vectors read by name as attributes (sgd:
    velocities; adam, adamw: ms, vs; rmsprop: vs), as scikit-learn's
    optimizers expose theirs; epoch: the epochs the schedule has started
    (fit starts a new optimizer, partial_fit carries it on).
    """

    def __init__(self, params, learning_rate_init, schedule=None, kind="sgd",
                 **hyper_parameters):
        # the kernel's Optimizer, passed to train_epoch
        self.compiled = _kernel.Optimizer(kind, params,
                                          learning_rate=float(learning_rate_init),
                                          **hyper_parameters)
        self.learning_rate_init = learning_rate_init
        self.schedule = _schedules.ConstantSchedule() if schedule is None else schedule

    def __getstate__(self):
        # the compiled optimizer as plain values, rebuilt by the kernel build
        # that unpickles it (a kernel object would name the build that wrote
        # it, which another CPU or CBP_KERNEL may not run)
        state = self.__dict__.copy()
        compiled = state.pop("compiled")
        state["compiled_state"] = (compiled.kind, compiled.hyper_parameters, compiled.t,
                                   dict(compiled.state))
        return state

    def __setstate__(self, state):
        state = dict(state)
        compiled = state.pop("compiled", None)
        if compiled is not None:  # pickled by cbp before it pickled plain values
            saved = (compiled.kind, compiled.hyper_parameters, compiled.t, compiled.state)
        else:
            # (kind, hyper_parameters, t, state); pickled before the state was
            # named, (kind, hyper_parameters, t, velocities, ms, vs)
            saved = state.pop("compiled_state")
        if "schedule" not in state:  # pickled before schedules were objects
            state["schedule"] = _legacy_schedule(state)
        self.__dict__.update(state)
        self.compiled = _kernel._rebuild_optimizer(*saved)

    @property
    def epoch(self):
        return self.schedule.epoch

    @epoch.setter
    def epoch(self, epoch):
        self.schedule.epoch = epoch

    def state_dict(self):
        """Settings and state as plain values, the vectors copied:

        kind, learning_rate_init, learning_rate (the kernel's rate of the
        coming epoch), t (the updates made), hyper_parameters (the kernel
        Optimizer's keywords but learning_rate: momentum, ..., lr_factors),
        state (name -> a copy of the kernel's vector), schedule (its
        state_dict(): name, settings, epoch).
        """
        compiled = self.compiled
        hyper_parameters = compiled.hyper_parameters
        return {
            "kind": compiled.kind,
            "learning_rate_init": self.learning_rate_init,
            "learning_rate": hyper_parameters.pop("learning_rate"),
            "t": compiled.t,
            "hyper_parameters": hyper_parameters,
            "state": {name: vector.copy() for name, vector in compiled.state.items()},
            "schedule": self.schedule.state_dict(),
        }

    def load_state_dict(self, state_dict):
        """Take what state_dict() gave (an optimizer of the same kind, its
        vectors of this one's length and dtype, copied): the kernel's
        optimizer is built again from it, and the schedule."""
        d = state_dict
        if d["kind"] != self.compiled.kind:
            raise ValueError(f"a {d['kind']!r} optimizer's state cannot be loaded "
                             f"into a {self.compiled.kind!r} one")
        # (the new state must fit this optimizer's parameters)
        like = next(iter(self.compiled.state.values()))
        self.compiled = _kernel.Optimizer(
            d["kind"], like, learning_rate=float(d["learning_rate"]), t=int(d["t"]),
            state={name: np.array(vector) for name, vector in d["state"].items()},
            **d["hyper_parameters"])
        self.learning_rate_init = d["learning_rate_init"]
        self.schedule = _schedules.from_state_dict(d["schedule"])
        self.state_loaded()

    def state_loaded(self):
        """Bookkeeping after load_state_dict (Adam's step size)."""

    def state(self):
        """Settings and state as one flat dict of plain values (state_dict's
        entries, the kernel's hyper-parameters and vectors, the schedule's
        and this object's attributes: for comparing two optimizers)."""
        d = self.state_dict()
        return {
            **{f"attribute {k}": v for k, v in vars(self).items()
               if k not in ("compiled", "schedule")},
            **{k: v for k, v in d.items() if k not in ("hyper_parameters", "state",
                                                       "schedule")},
            **d["hyper_parameters"],
            **d["state"],
            **{f"schedule {k}": v for k, v in d["schedule"].items()},
        }

    def epoch_starts(self):
        """Set the coming epoch's learning rate (the schedule's)."""
        self.schedule.epoch_starts(self.compiled)

    def epoch_done(self):
        """Bookkeeping after a kernel epoch (the kernel has advanced t)."""

    def iteration_ends(self, time_step):
        self.schedule.iteration_ends(self.compiled, time_step)

    def trigger_stopping(self, msg, verbose):
        return self.schedule.training_stalled(self.compiled, msg, verbose)


def _state_vector(name):
    """The read-only attribute ``name``: the kernel's state vector of that
    name (AttributeError when the optimizer's kind has none)."""

    def get(self):
        try:
            return self.compiled.state[name]
        except (AttributeError, KeyError):
            raise AttributeError(f"{type(self).__name__} has no state vector "
                                 f"{name!r}") from None

    return property(get, doc=f"The kernel's state vector {name!r} (n_params,).")


for _name in sorted({name for names in _kernel.OPTIMIZER_STATE.values() for name in names}):
    setattr(_Optimizer, _name, _state_vector(_name))
del _name


def _legacy_schedule(state):
    """The schedule of an optimizer pickled with lr_schedule, max_iter,
    epoch (and sgd's power_t) as its own attributes, taken out of state."""
    settings = {"learning_rate_init": state.get("learning_rate_init"),
                "max_iter": state.pop("max_iter", 200),
                "power_t": state.pop("power_t", 0.5)}
    cls = _schedules.schedule_class(state.pop("lr_schedule", "constant"))
    schedule = cls(**{name: settings[name] for name in cls.reads})
    schedule.epoch = state.pop("epoch", 0)
    return schedule


class SGDOptimizer(_Optimizer):
    """Stochastic gradient descent with (Nesterov) momentum.

    velocities: (n_params,), starting at zero; learning_rate: the kernel's
    current rate (the schedule sets it: invscaling, adaptive, cosine).
    """

    def __init__(self, params, learning_rate_init, momentum, nesterov, schedule=None,
                 kind="sgd", **hyper_parameters):
        super().__init__(params, learning_rate_init, schedule, kind, momentum=momentum,
                         nesterov=nesterov, **hyper_parameters)

    @property
    def learning_rate(self):
        return self.compiled.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.compiled.learning_rate = value


class AdamOptimizer(_Optimizer):
    """Adam (Kingma & Ba), with epsilon added before the bias correction;
    with kind='adamw' and weight_decay, AdamW as torch.optim.AdamW (every
    trained value decays by lr * weight_decay before the step; epsilon after
    the bias correction, PyTorch's placement).

    ms, vs: first and second moment estimates, (n_params,), starting at zero;
    t: the number of updates made so far; learning_rate: the last step size,
    lr sqrt(1 - beta_2^t) / (1 - beta_1^t) (scikit-learn's attribute).
    """

    def __init__(self, params, learning_rate_init, beta_1, beta_2, epsilon, schedule=None,
                 kind="adam", **hyper_parameters):
        super().__init__(params, learning_rate_init, schedule, kind, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, **hyper_parameters)
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2

    @property
    def t(self):
        return self.compiled.t

    def epoch_done(self):
        t = self.compiled.t
        if t > 0:
            self.learning_rate = (
                self.compiled.learning_rate
                * np.sqrt(1 - self.beta_2**t)
                / (1 - self.beta_1**t)
            )

    def state_loaded(self):
        self.learning_rate = float(self.learning_rate_init)
        self.epoch_done()


class RMSpropOptimizer(_Optimizer):
    """RMSprop, as torch.optim.RMSprop(lr, alpha=rho, eps=epsilon): no
    momentum, not centred.

    vs: the running average of squared gradients, (n_params,), starting at
    zero; learning_rate: the current rate.
    """

    def __init__(self, params, learning_rate_init, rho, epsilon, schedule=None,
                 kind="rmsprop", **hyper_parameters):
        super().__init__(params, learning_rate_init, schedule, kind, rho=rho,
                         epsilon=epsilon, **hyper_parameters)

    @property
    def learning_rate(self):
        return self.compiled.learning_rate
