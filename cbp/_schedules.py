"""Learning-rate schedules, one class each (torch.optim.lr_scheduler's model).

A schedule changes the rate of a kernel optimizer (``_kernel.Optimizer``,
its ``learning_rate``: the rate of the coming epoch) at the hooks the
training loop calls through cbp._optimizers:

    epoch_starts(optimizer)                    before each epoch
    iteration_ends(optimizer, time_step)       after it; time_step: the
                                               samples seen so far (t_)
    training_stalled(optimizer, msg, verbose)  after n_iter_no_change epochs
                                               without improvement: whether
                                               to stop (printing msg and why
                                               when verbose)

and counts the epochs it has started (``epoch``; fit starts a new schedule,
partial_fit carries it on). ``state_dict()`` / ``load_state_dict()`` give
and take its settings and state as plain values.

A new schedule is one class here, its constructor's parameters the
estimator parameters it reads (``reads``), and one entry of
``_options.SCHEDULES`` naming it.
"""

import math


def cosine_learning_rate(learning_rate_init, epoch, max_iter):
    """lr_init * (1 + cos(pi * epoch / max_iter)) / 2, epoch counting from 0
    (PyTorch's CosineAnnealingLR in closed form, eta_min = 0, T_max =
    max_iter; periodic past max_iter)."""
    return learning_rate_init * 0.5 * (1.0 + math.cos(math.pi * epoch / max_iter))


def coslog_factor(t, n_cycles):
    """RealMLP's 'coslog' factor at the fraction t of training (Holzmüller
    et al., 2024; pytabkit's CoslogFunc):

        f(t) = (1 - cos(2 pi log2(1 + (2^n_cycles - 1) t))) / 2,

    0 at t = 0 and at t = 1, rising to 1 and falling back to 0 n_cycles
    times between, each cycle twice as long as the one before (the formula as
    written past t = 1)."""
    a = 2.0**n_cycles - 1.0
    return 0.5 * (1.0 - math.cos(2.0 * math.pi * math.log2(1.0 + a * t)))


def coslog_mean_factor(t0, t1, n_cycles):
    """The mean of coslog_factor over [t0, t1] (t0 < t1), in closed form:
    with a = 2^n_cycles - 1, b = 2 pi / ln 2 and u = ln(1 + a t),

        integral of cos(b u) dt = (1 + a t)(cos(b u) + b sin(b u)) / (a (1 + b^2))."""
    a = 2.0**n_cycles - 1.0
    b = 2.0 * math.pi / math.log(2.0)

    def integral(t):  # of coslog_factor from 0 to t, less the constant
        u = math.log1p(a * t)
        cosine = (1.0 + a * t) * (math.cos(b * u) + b * math.sin(b * u)) / (a * (1.0 + b * b))
        return 0.5 * (t - cosine)

    return (integral(t1) - integral(t0)) / (t1 - t0)


class ConstantSchedule:
    """The rate stays the optimizer's own (learning_rate_init); stalled
    training stops. Every schedule's base: the epoch count, the hooks as
    no-ops, the saved state."""

    name = "constant"  # its _options.SCHEDULES entry (the estimator's learning_rate)
    reads = ()  # the estimator parameters its constructor takes

    def __init__(self):
        self.epoch = 0  # the epochs started

    def epoch_starts(self, optimizer):
        self.epoch += 1

    def iteration_ends(self, optimizer, time_step):
        pass

    def training_stalled(self, optimizer, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True

    def state_dict(self):
        """{'name': the schedule's name, its settings and its state (epoch)}."""
        return {"name": self.name, **vars(self)}

    def load_state_dict(self, state_dict):
        """Take the settings and state a schedule of this name gave."""
        state = dict(state_dict)
        name = state.pop("name")
        if name != self.name:
            raise ValueError(f"a {name!r} schedule's state cannot be loaded "
                             f"into a {self.name!r} one")
        vars(self).update(state)

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({settings})"


class InvScalingSchedule(ConstantSchedule):
    """scikit-learn's 'invscaling': lr_init / (t + 1) ** power_t at the end
    of each epoch, t the samples seen."""

    name = "invscaling"
    reads = ("learning_rate_init", "power_t")

    def __init__(self, learning_rate_init, power_t):
        super().__init__()
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t

    def iteration_ends(self, optimizer, time_step):
        optimizer.learning_rate = (
            float(self.learning_rate_init) / (time_step + 1) ** self.power_t
        )


class AdaptiveSchedule(ConstantSchedule):
    """scikit-learn's 'adaptive': stalled training divides the rate by 5,
    and stops once it is <= 1e-6."""

    name = "adaptive"

    def training_stalled(self, optimizer, msg, verbose):
        if optimizer.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        optimizer.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % optimizer.learning_rate)
        return False


class CosineSchedule(ConstantSchedule):
    """Cosine annealing to 0 over max_iter epochs (cosine_learning_rate),
    set at the start of each epoch."""

    name = "cosine"
    reads = ("learning_rate_init", "max_iter")

    def __init__(self, learning_rate_init, max_iter):
        super().__init__()
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter

    def epoch_starts(self, optimizer):
        optimizer.learning_rate = cosine_learning_rate(
            float(self.learning_rate_init), self.epoch, self.max_iter
        )
        super().epoch_starts(optimizer)


class Coslog4Schedule(ConstantSchedule):
    """RealMLP's 'coslog4' (pytabkit's lr_sched='coslog4'): four cycles
    of coslog_factor over max_iter epochs, each starting and ending at 0.

    pytabkit sets the rate before every step, lr_init * f(t) with t the
    fraction of the training samples seen (samples before the step over
    max_iter times the epoch's samples). cbp's kernel takes one rate per
    epoch, so this sets, at the start of epoch e (counting from 0), that
    rate's mean over the epoch: lr_init * coslog_mean_factor(e / max_iter,
    (e + 1) / max_iter, 4), the mean over the epoch's samples of
    pytabkit's per-step rates as the batches get small. (A rate per step
    needs the epoch loop of the kernel to tell the optimizer the samples
    seen before each step.) The rate at t = 0 is 0: an epoch's mean is not,
    so no epoch is wasted.
    """

    name = "coslog4"
    reads = ("learning_rate_init", "max_iter")
    n_cycles = 4

    def __init__(self, learning_rate_init, max_iter):
        super().__init__()
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter

    def epoch_starts(self, optimizer):
        optimizer.learning_rate = float(self.learning_rate_init) * coslog_mean_factor(
            self.epoch / self.max_iter, (self.epoch + 1) / self.max_iter, self.n_cycles
        )
        super().epoch_starts(optimizer)


def schedule_class(name):
    """The schedule class of that name (ConstantSchedule's and its
    subclasses'; for state that names its schedule)."""
    classes, found = [ConstantSchedule], {}
    while classes:
        cls = classes.pop()
        found[cls.name] = cls
        classes.extend(cls.__subclasses__())
    if name not in found:
        raise ValueError(f"unknown learning-rate schedule {name!r}")
    return found[name]


def from_state_dict(state_dict):
    """A new schedule, as state_dict() described it."""
    cls = schedule_class(state_dict["name"])
    schedule = cls(**{name: state_dict[name] for name in cls.reads})
    schedule.load_state_dict(state_dict)
    return schedule
