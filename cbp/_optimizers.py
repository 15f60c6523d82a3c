"""Optimizer state and learning-rate schedules, kept between epochs.

The per-batch update itself is the kernel's (src/_optimizers.pxd), described
by a ``_kernel.Optimizer`` built once per fit, which holds the kind, the
hyper-parameters and the state vectors (the parameters' length and dtype).
These classes own one and do what scikit-learn's ``_stochastic_optimizers``
do between epochs.

Each class serves the kernel's optimizers of one family: ``kind`` names the
kernel's (``_kernel.OPTIMIZER_CODES``), and keywords beyond the class's own
hyper-parameters go to the kernel's Optimizer (AdamOptimizer with
``kind="adamw", weight_decay=...`` is AdamW). A new optimizer is an entry in
``_options.SOLVERS`` naming its class here, and a class only when no family
here fits it.
"""

import math

import numpy as np

from ._dispatch import kernel as _kernel


def cosine_learning_rate(learning_rate_init, epoch, max_iter):
    """lr_init * (1 + cos(pi * epoch / max_iter)) / 2, epoch counting from 0
    (PyTorch's CosineAnnealingLR in closed form, eta_min = 0, T_max =
    max_iter; periodic past max_iter)."""
    return learning_rate_init * 0.5 * (1.0 + math.cos(math.pi * epoch / max_iter))


def _compiled(name, writable=True):
    """A property reading (and writing) the compiled optimizer's ``name``: the
    state lives once, in the kernel's Optimizer that train_epoch updates."""

    def get(self):
        return getattr(self.compiled, name)

    def put(self, value):
        setattr(self.compiled, name, value)

    return property(get, put if writable else None)


class _Optimizer:
    """What every stochastic optimizer shares: the compiled description, and
    the cosine schedule.

    epoch: the epochs this optimizer has started (fit starts a new optimizer,
    partial_fit carries it on).
    """

    def __init__(self, compiled, learning_rate_init, lr_schedule="constant", max_iter=200):
        self.compiled = compiled  # the kernel's Optimizer, passed to train_epoch
        self.learning_rate_init = learning_rate_init
        self.lr_schedule = lr_schedule
        self.max_iter = max_iter
        self.epoch = 0

    def __getstate__(self):
        # the compiled optimizer as plain values, rebuilt by the kernel build
        # that unpickles it (a kernel object would name the build that wrote
        # it, which another CPU or CBP_KERNEL may not run)
        state = self.__dict__.copy()
        compiled = state.pop("compiled")
        state["compiled_state"] = (compiled.kind, compiled.hyper_parameters, compiled.t,
                                   compiled.velocities, compiled.ms, compiled.vs)
        return state

    def __setstate__(self, state):
        state = dict(state)
        compiled = state.pop("compiled", None)
        if compiled is not None:  # pickled by cbp before it pickled plain values
            saved = (compiled.kind, compiled.hyper_parameters, compiled.t,
                     compiled.velocities, compiled.ms, compiled.vs)
        else:
            saved = state.pop("compiled_state")
        self.__dict__.update(state)
        self.compiled = _kernel._rebuild_optimizer(*saved)

    def epoch_starts(self):
        """Set the coming epoch's learning rate (the cosine schedule)."""
        if self.lr_schedule == "cosine":
            self.compiled.learning_rate = cosine_learning_rate(
                float(self.learning_rate_init), self.epoch, self.max_iter
            )
        self.epoch += 1

    def state(self):
        """Settings and state as plain values: Python numbers and the state
        vectors (for comparing two optimizers)."""
        compiled = self.compiled
        return {
            **{k: v for k, v in vars(self).items() if k != "compiled"},
            **compiled.hyper_parameters,
            "kind": compiled.kind,
            "t": compiled.t,
            "velocities": compiled.velocities,
            "ms": compiled.ms,
            "vs": compiled.vs,
        }

    def epoch_done(self):
        """Bookkeeping after a kernel epoch (the kernel has advanced t)."""

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True


class SGDOptimizer(_Optimizer):
    """Stochastic gradient descent with (Nesterov) momentum.

    velocities: (n_params,), starting at zero.
    learning_rate: 'constant', 'invscaling' (lr_init / (t + 1) ** power_t at
    the end of each epoch, t = samples seen), 'adaptive' (divided by 5 when
    training stalls, stopping once it is <= 1e-6) or 'cosine'.
    """

    def __init__(self, params, learning_rate_init, lr_schedule, momentum, nesterov,
                 power_t, max_iter=200, kind="sgd"):
        super().__init__(_kernel.Optimizer(
            kind, params, learning_rate=float(learning_rate_init),
            momentum=momentum, nesterov=nesterov), learning_rate_init, lr_schedule,
            max_iter)
        self.power_t = power_t

    velocities = _compiled("velocities")
    learning_rate = _compiled("learning_rate")

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = (
                float(self.learning_rate_init) / (time_step + 1) ** self.power_t
            )

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            return super().trigger_stopping(msg, verbose)
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class AdamOptimizer(_Optimizer):
    """Adam (Kingma & Ba), with epsilon added before the bias correction;
    with kind='adamw' and weight_decay, AdamW as torch.optim.AdamW (every
    trained value decays by lr * weight_decay before the step; epsilon after
    the bias correction, PyTorch's placement).

    ms, vs: first and second moment estimates, (n_params,), starting at zero;
    t: the number of updates made so far; learning_rate: the last step size,
    lr_init sqrt(1 - beta_2^t) / (1 - beta_1^t) (scikit-learn's attribute).
    """

    def __init__(self, params, learning_rate_init, beta_1, beta_2, epsilon,
                 lr_schedule="constant", max_iter=200, kind="adam", **hyper_parameters):
        super().__init__(_kernel.Optimizer(
            kind, params, learning_rate=float(learning_rate_init),
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **hyper_parameters),
            learning_rate_init, lr_schedule, max_iter)
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2

    ms = _compiled("ms")
    vs = _compiled("vs")

    @property
    def t(self):
        return self.compiled.t

    @t.setter
    def t(self, t):
        self.steps_done(t)

    def steps_done(self, t):
        """Set the update count (a loaded model's), and the last step size."""
        self.compiled.t = t
        self.epoch_done()

    def epoch_done(self):
        t = self.compiled.t
        if t > 0:
            self.learning_rate = (
                self.compiled.learning_rate
                * np.sqrt(1 - self.beta_2**t)
                / (1 - self.beta_1**t)
            )


class RMSpropOptimizer(_Optimizer):
    """RMSprop, as torch.optim.RMSprop(lr, alpha=rho, eps=epsilon): no
    momentum, not centred.

    vs: the running average of squared gradients, (n_params,), starting at
    zero; learning_rate: the current rate.
    """

    def __init__(self, params, learning_rate_init, rho, epsilon, lr_schedule="constant",
                 max_iter=200, kind="rmsprop"):
        super().__init__(_kernel.Optimizer(
            kind, params, learning_rate=float(learning_rate_init), rho=rho,
            epsilon=epsilon), learning_rate_init, lr_schedule, max_iter)

    vs = _compiled("vs")
    learning_rate = _compiled("learning_rate", writable=False)
