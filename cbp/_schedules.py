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
