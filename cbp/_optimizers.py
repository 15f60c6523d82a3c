"""Optimizer state and learning-rate schedules, kept between epochs.

The per-batch update itself is the kernel's (src/_optimizers.pxd); these
objects hold its state as flat vectors (the parameters' length and dtype) and
do what scikit-learn's ``_stochastic_optimizers`` do between epochs.
"""

import numpy as np

from ._dispatch import kernel as _kernel


class SGDOptimizer:
    """Stochastic gradient descent with (Nesterov) momentum.

    velocities: (n_params,), starting at zero.
    learning_rate: 'constant', 'invscaling' (lr_init / (t + 1) ** power_t at
    the end of each epoch, t = samples seen) or 'adaptive' (divided by 5 when
    training stalls, stopping once it is <= 1e-6).
    """

    def __init__(self, n_params, dtype, learning_rate_init, lr_schedule,
                 momentum, nesterov, power_t):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.velocities = np.zeros(n_params, dtype=dtype)

    def kernel_args(self):
        """The solver arguments of _kernel.train_epoch."""
        return dict(
            solver=_kernel.SOLVER_CODES["sgd"],
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            nesterov=self.nesterov,
            beta_1=0.0,
            beta_2=0.0,
            epsilon=0.0,
            t=0,
            state_1=self.velocities,
            state_2=self.velocities[:0],
        )

    def steps_done(self, t):
        """Record the update count the kernel reached (unused by SGD)."""

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = (
                float(self.learning_rate_init) / (time_step + 1) ** self.power_t
            )

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class AdamOptimizer:
    """Adam (Kingma & Ba), with epsilon added before the bias correction.

    ms, vs: first and second moment estimates, (n_params,), starting at zero;
    t: the number of updates made so far.
    """

    def __init__(self, n_params, dtype, learning_rate_init, beta_1, beta_2, epsilon):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.ms = np.zeros(n_params, dtype=dtype)
        self.vs = np.zeros(n_params, dtype=dtype)

    def kernel_args(self):
        """The solver arguments of _kernel.train_epoch."""
        return dict(
            solver=_kernel.SOLVER_CODES["adam"],
            learning_rate=self.learning_rate_init,
            momentum=0.0,
            nesterov=False,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
            t=self.t,
            state_1=self.ms,
            state_2=self.vs,
        )

    def steps_done(self, t):
        """Record the update count the kernel reached, and the last step size."""
        self.t = t
        if t > 0:
            self.learning_rate = (
                self.learning_rate_init
                * np.sqrt(1 - self.beta_2**t)
                / (1 - self.beta_1**t)
            )

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True
