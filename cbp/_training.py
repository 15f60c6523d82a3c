"""The solvers' training loops: L-BFGS, and the stochastic solvers' epochs.

What the loops compute follows scikit-learn 1.9's
``sklearn/neural_network/_multilayer_perceptron.py`` step for step (the same
random draws in the same order: the validation split, then the dropout seed,
then each epoch's shuffle), so that the same ``random_state`` gives the same
weights. Each epoch is one call to the kernel.

The functions take one explicit object, a ``Fit``: the data and the weights,
the ``Problem`` (what is minimised, the networks that compute it, how an
epoch is scored), the ``Settings`` (the estimator's parameters the loops
read), and the ``TrainingState`` they update (cbp._state: the records
``n_iter``, ``t``, ``loss_curve``, ..., and what a later fit continues: the
no-improvement count, the best parameters, the optimizer, the dropout
stream). They never see the estimator.
"""

import warnings
from dataclasses import dataclass, fields
from typing import Callable, Optional

import numpy as np
import scipy.optimize
import scipy.sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_array

from ._callbacks import snapshot
from ._dispatch import kernel as _kernel
from ._network import kernel_input, make_network
from ._options import Loss
from ._parts import Architecture
from ._sklearn_compat import _check_optimize_result, _get_additional_lbfgs_options_dict
from ._state import TrainingState
from ._threads import blas_limit, openmp_threads

# scikit-learn's message when training produces non-finite weights (its users
# and tests match it); cbp adds what happened and what to do.
NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large"
    " values and need to be preprocessed."
)


@dataclass(frozen=True)
class Settings:
    """The estimator's parameters the loops read, as values (scikit-learn's
    names and meanings; ``Settings.of(estimator)``)."""

    max_iter: int
    max_fun: int
    tol: float
    n_iter_no_change: float
    early_stopping: bool
    validation_fraction: float
    shuffle: bool
    batch_size: object  # 'auto' or an int
    block_rows: Optional[int]
    weight_tol: Optional[float]
    verbose: object

    @classmethod
    def of(cls, estimator):
        return cls(**{f.name: getattr(estimator, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Problem:
    """What one fit minimises, as values, and how its epochs are scored.

    architecture: the network's parts (cbp._parts.Architecture); activation,
    loss (an _options.Loss carrying its parameters), out_activation, alpha:
    the network and its loss J; dropout: the
    rate of each hidden layer, or None without dropout; estimator_name: for
    scikit-learn's error on non-finite input.
    score(X, y, sample_weight): the estimator's score at the current weights;
    scoring_targets(Y): y as score reads it, from targets Y (n, n_outputs);
    training_targets(Y): the targets the loss is minimised for, from the
    targets of the rows trained on (the classifier's label smoothing).
    """

    architecture: Architecture
    activation: str
    loss: Loss
    out_activation: str
    alpha: float
    dropout: Optional[tuple] = None
    estimator_name: str = "MLP"
    score: Optional[Callable] = None
    scoring_targets: Optional[Callable] = None
    training_targets: Callable = lambda Y: Y

    def network(self, state, random_state, n_rows, sparse_input, **options):
        """The kernel's Network for training on batches of n_rows; with
        dropout, its stream continues the state's (whose seed is drawn from
        random_state the first time dropout trains the model, after the
        initial weights, and kept: warm_start and partial_fit continue the
        same stream of masks). options: of make_network (block_rows, say)."""
        if self.dropout is not None and state.dropout_seed is None:
            state.dropout_seed = int(random_state.randint(0, 2**63 - 1, dtype=np.int64))
            state.dropout_stream = 0
        net = make_network(
            self.architecture, self.activation, self.loss, self.out_activation, self.alpha,
            n_rows, sparse_input, dropout=self.dropout,
            dropout_seed=0 if self.dropout is None else state.dropout_seed, **options,
        )
        if self.dropout is not None:
            net.stream_position = state.dropout_stream
        return net

    def evaluation_network(self, n_rows, sparse_input):
        """The network of the loss without L2, in evaluation mode (no
        dropout; batch normalisation by the running statistics)."""
        return make_network(
            self.architecture, self.activation, self.loss, self.out_activation, 0.0,
            n_rows, sparse_input, training=False,
        )

    def raise_if_not_finite(self, X):
        """validate_data's error for an X holding NaN or infinity."""
        check_array(X, accept_sparse=["csr", "csc"], dtype=None,
                    estimator=self.estimator_name, input_name="X")


@dataclass
class Fit:
    """One call of fit or partial_fit, as the loops see it.

    X (n, n_features) dense or CSR, Y (n, n_outputs) float or 0/1 bytes,
    sample_weight (n,) or None: the data; params: the flat parameter vector,
    trained in place; validation: (X_val, Y_val, y_val, sample_weight_val) or
    None; check_finite: whether the kernel checks X as it reads it (the
    first epoch); stratify: whether early stopping's split is stratified;
    random_state: the fit's RandomState (the split, dropout's seed, the
    shuffles); tasks: the callbacks' FitTasks, or None.
    """

    X: object
    Y: np.ndarray
    sample_weight: Optional[np.ndarray]
    params: np.ndarray
    problem: Problem
    settings: Settings
    state: TrainingState
    random_state: object = None
    tasks: object = None
    incremental: bool = False
    validation: Optional[tuple] = None  # (X_val, Y_val, y_val, sample_weight_val)
    check_finite: bool = False
    stratify: bool = False

    def network(self, n_rows, sparse_input, **options):
        """The problem's training Network, continuing this fit's dropout stream."""
        return self.problem.network(self.state, self.random_state, n_rows, sparse_input,
                                    **options)


def batch_size(settings, n_samples):
    """Rows per mini-batch of settings.batch_size (Settings, or the estimator
    itself before its fit is described): 'auto' is min(200, n), others
    clipped to [1, n]."""
    if settings.batch_size == "auto":
        return min(200, n_samples)
    return int(np.clip(settings.batch_size, 1, n_samples))


# --------------------------------------------------------------------------
# L-BFGS


def fit_lbfgs(fit):
    """Minimise the full-batch loss with scipy's L-BFGS-B; sets the state's
    n_iter and loss."""
    X, params, settings, state = fit.X, fit.params, fit.settings, fit.state
    net = fit.network(X.shape[0], scipy.sparse.issparse(X))
    data = _kernel.Data(X, fit.problem.training_targets(fit.Y), fit.sample_weight)
    trained = params[:net.n_params]  # (batch normalisation's running
    grads = np.empty_like(trained)   # statistics come after: not trained)
    work = np.empty(net.workspace_size(_kernel.BACKWARD_PART), dtype=params.dtype)

    def loss_grad(packed):
        trained[:] = packed
        loss = _kernel.loss_grad(net, data, params, grads, work)
        return loss, grads.astype(np.float64)

    iprint = 1 if settings.verbose is True or settings.verbose >= 1 else -1
    options = {
        "maxfun": settings.max_fun,
        "maxiter": settings.max_iter,
        "gtol": settings.tol,
        **_get_additional_lbfgs_options_dict("iprint", iprint),
    }
    opt_res = scipy.optimize.minimize(
        loss_grad, trained.astype(np.float64), method="L-BFGS-B", jac=True,
        options=options, callback=_lbfgs_callback(fit, net.n_params),
    )
    if not np.isfinite(opt_res.fun):
        raise ValueError(
            f"{NON_FINITE} Training diverged: the loss is {opt_res.fun} after "
            "L-BFGS. Scale the input data (e.g. with StandardScaler)."
        )
    state.n_iter = _check_optimize_result("lbfgs", opt_res, settings.max_iter)
    state.loss = float(opt_res.fun)
    trained[:] = opt_res.x
    if fit.problem.architecture.batch_norm:
        _final_batch_statistics(fit)


def _lbfgs_callback(fit, n_params):
    """With callbacks, each L-BFGS iteration is a subtask; a callback that
    asks to stop ends the run after that iteration (scipy honours
    StopIteration). None without callbacks."""
    tasks = fit.tasks
    if tasks is None:
        return None
    tasks.begin_subtask()

    def callback(intermediate_result):
        x = fit.params.copy()
        x[:n_params] = intermediate_result.x
        if tasks.end_subtask(snapshot(fit.state, x, fit.problem.architecture)):
            raise StopIteration
        tasks.begin_subtask()

    return callback


def _final_batch_statistics(fit):
    """Batch normalisation's running statistics, once: the data's mean and
    unbiased variance at the final weights (a momentum of 1)."""
    X, params = fit.X, fit.params
    final = fit.network(X.shape[0], scipy.sparse.issparse(X), batch_norm_momentum=1.0)
    _kernel.batch_statistics(
        final, _kernel.Data(X), params,
        np.empty(final.workspace_size(_kernel.FORWARD_PART), dtype=params.dtype))


# --------------------------------------------------------------------------
# The stochastic solvers: set-up


@dataclass
class Epochs:
    """What every epoch of one stochastic fit uses."""

    net: object
    data: object
    grads: np.ndarray
    work: np.ndarray
    batch_size: int
    n_samples: int
    n_threads: int
    X_train: object
    sample_idx: np.ndarray
    # the weights at the start of the running epoch, put back if Ctrl-C
    # interrupts it (the optimizer's vectors are not copied: that would cost
    # memory on every fit for the rare interrupt; they keep the interrupted
    # epoch's last whole batch)
    epoch_start_params: np.ndarray
    validation: Optional[tuple] = None  # (X_val, y_val, sample_weight_val)
    validation_loss: Optional[Callable] = None


def fit_stochastic(fit):
    """Train with the state's optimizer (fit.state.optimizer, made by the
    estimator): one epoch per kernel call, max_iter epochs (one for
    partial_fit) or fewer by the stopping rules."""
    settings, state = fit.settings, fit.state
    if settings.early_stopping and fit.incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    if settings.early_stopping and state.validation_scores is None:
        # early stopping switched on since the first fit (warm_start)
        state.start_early_stopping(fit.params)
    epochs = _set_up_epochs(fit, *_training_and_validation(fit))
    try:
        _run_epochs(fit, epochs)
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.")
    if settings.early_stopping:
        fit.params[:] = state.best_params


def _training_and_validation(fit):
    """(X, Y, sample_weight) to train on, and (X_val, Y_val, y_val,
    sample_weight_val) or None: the explicit validation data, or early
    stopping's split of the training data (scikit-learn's, drawn from the
    fit's random_state), or none."""
    problem = fit.problem
    if fit.validation is not None:
        return (fit.X, problem.training_targets(fit.Y), fit.sample_weight), fit.validation
    if not fit.settings.early_stopping:
        return (fit.X, problem.training_targets(fit.Y), fit.sample_weight), None
    Y = fit.Y
    # (0/1 targets held as bytes are stratified as the bools they are, so
    # that scikit-learn's error names the classes True and False)
    stratify = (Y.view(bool) if Y.dtype == np.uint8 else Y) if fit.stratify else None
    arrays = (fit.X, Y) if fit.sample_weight is None else (fit.X, Y, fit.sample_weight)
    split = train_test_split(*arrays, random_state=fit.random_state,
                             test_size=fit.settings.validation_fraction, stratify=stratify)
    X_train, X_val, Y_train, Y_val = split[:4]
    sw_train, sw_val = split[4:] if fit.sample_weight is not None else (None, None)
    if X_val.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction'"
            " or the size of your dataset."
        )
    dtype = fit.params.dtype
    X_train = kernel_input(X_train, dtype)
    Y_train = np.ascontiguousarray(problem.training_targets(Y_train))
    if sw_train is not None:
        sw_train = np.ascontiguousarray(sw_train)
    y_val = problem.scoring_targets(Y_val)
    X_val = kernel_input(X_val, dtype)
    if fit.check_finite:  # (these rows never pass through the training kernel)
        problem.raise_if_not_finite(X_val)
    Y_val = np.ascontiguousarray(Y_val, dtype=dtype)
    if sw_val is not None:
        sw_val = np.ascontiguousarray(sw_val)
    return (X_train, Y_train, sw_train), (X_val, Y_val, y_val, sw_val)


def _set_up_epochs(fit, training, validation):
    """The records of the validation data, the network (which draws the
    dropout seed), the kernel's data and scratch memory: an Epochs."""
    X_train, Y_train, sample_weight_train = training
    settings = fit.settings
    validation_loss = None
    if validation is not None:
        fit.state.start_validation()
        validation_loss = _validation_loss(fit, *validation[:2], validation[3])
    n_samples = X_train.shape[0]
    if settings.batch_size != "auto" and settings.batch_size > n_samples:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. It is"
            " going to be clipped"
        )
    rows = batch_size(settings, n_samples)
    net = fit.network(rows, scipy.sparse.issparse(X_train),
                      block_rows=settings.block_rows or 0)
    params = fit.params
    return Epochs(
        net=net,
        # (uint8 Y_train: a classifier's 0/1 targets, converted per batch)
        data=_kernel.Data(X_train, Y_train, sample_weight_train),
        grads=np.empty(net.n_params, dtype=params.dtype),
        work=np.empty(net.workspace_size(_kernel.EPOCH_PART), dtype=params.dtype),
        batch_size=rows,
        n_samples=n_samples,
        # with blocks, their threads: OpenMP's, BLAS on one inside them
        n_threads=openmp_threads() if settings.block_rows else 1,
        X_train=X_train,
        sample_idx=np.arange(n_samples, dtype=int),
        epoch_start_params=params.copy(),
        validation=None if validation is None else (validation[0], *validation[2:]),
        validation_loss=validation_loss,
    )


def _validation_loss(fit, X_val, Y_val, sample_weight_val):
    """A function giving the loss (without L2) on the validation data at the
    current weights."""
    net = fit.problem.evaluation_network(X_val.shape[0], scipy.sparse.issparse(X_val))
    data = _kernel.Data(X_val, Y_val, sample_weight_val)
    work = np.empty(net.workspace_size(_kernel.BACKWARD_PART), dtype=fit.params.dtype)
    return lambda: float(_kernel.data_loss(net, data, fit.params, work))


def shuffled(sample_idx, random_state):
    """sklearn.utils.shuffle(sample_idx, random_state=random_state), without its
    per-call validation (0.7 ms an epoch on 20000 samples): the same draws from
    the same RandomState, so the same order (tests/test_estimators.py checks)."""
    indices = np.arange(sample_idx.shape[0])
    random_state.shuffle(indices)
    return sample_idx[indices]


# --------------------------------------------------------------------------
# The stochastic solvers: the epochs


def _run_epochs(fit, epochs):
    """The epoch loop; Ctrl-C inside an epoch puts the state back as it was
    after the last whole one (and is raised on to the caller)."""
    settings, state = fit.settings, fit.state
    optimizer = state.optimizer
    params = fit.params
    in_order = np.empty(0, dtype=np.intp)
    state.n_iter = 0
    start = (state.n_iter, state.t, len(state.loss_curve), optimizer.epoch)
    try:
        for it in range(settings.max_iter):
            if settings.shuffle:
                epochs.sample_idx = shuffled(epochs.sample_idx, fit.random_state)
                order = epochs.sample_idx.astype(np.intp, copy=False)
            else:
                order = in_order
            epochs.epoch_start_params[:] = params
            start = (state.n_iter, state.t, len(state.loss_curve), optimizer.epoch)
            optimizer.epoch_starts()
            if fit.tasks is not None:
                fit.tasks.begin_subtask()
            loss = _train_epoch(fit, epochs, order, first=it == 0)
            if loss is None:  # diverged, with early stopping: stop here
                break
            stop_requested = _record_epoch(fit, epochs, loss)
            if _stops(fit, epochs, stop_requested):
                break
    except KeyboardInterrupt:
        if state.n_iter == start[0]:
            # interrupted inside an epoch: back to the last whole one
            params[:] = epochs.epoch_start_params
            state.t = start[1]
            del state.loss_curve[start[2]:]
            optimizer.epoch = start[3]
        raise


def _train_epoch(fit, epochs, order, first):
    """One kernel epoch; its mean loss, or None if it diverged with early
    stopping (recorded: scikit-learn #29504). Raises if it diverged without."""
    params, settings, state = fit.params, fit.settings, fit.state
    try:
        with blas_limit(1 if settings.block_rows else None):
            accumulated_loss = _kernel.train_epoch(
                epochs.net, state.optimizer.compiled, epochs.data, order,
                epochs.batch_size, params, epochs.grads, epochs.work,
                fit.check_finite and first, epochs.n_threads,
            )
    except _kernel.NonFiniteInput:
        # scikit-learn's own error (the caller restores the model)
        fit.problem.raise_if_not_finite(epochs.X_train)
        raise
    if state.dropout_seed is not None:
        state.dropout_stream = epochs.net.stream_position
    loss = accumulated_loss / epochs.n_samples
    if np.isfinite(loss) and np.isfinite(params).all():
        return loss
    advice = (
        f"Training diverged: the loss or the weights became "
        f"non-finite in epoch {state.n_iter + 1} (loss {loss}). "
        "Lower learning_rate_init, or scale the input data (e.g. "
        "with StandardScaler)."
    )
    if not settings.early_stopping:
        # (the caller puts the whole model back as it was)
        raise ValueError(f"{NON_FINITE} {advice}")
    # With early stopping, as scikit-learn's users rely on (its #29504): the
    # epoch is recorded with a NaN validation score, training stops at once,
    # and the best model on the validation data is kept.
    _record_diverged_epoch(state, loss, advice)
    return None


def _record_diverged_epoch(state, loss, advice):
    state.loss = float(loss)
    state.loss_curve.append(float(loss))
    state.validation_scores.append(float("nan"))
    if state.validation_loss_curve is not None:
        state.validation_loss_curve.append(float("nan"))
    state.n_iter += 1
    warnings.warn(
        f"{advice} Early stopping keeps the model with the best validation "
        f"score ({state.best_validation_score}).",
        ConvergenceWarning,
    )


def _record_epoch(fit, epochs, loss):
    """The bookkeeping of a finished epoch: loss, t, the validation score
    and loss, the no-improvement count, the schedule, the callbacks' subtask.
    Whether a callback asks to stop."""
    settings, state = fit.settings, fit.state
    optimizer = state.optimizer
    optimizer.epoch_done()
    state.loss = loss
    state.t += epochs.n_samples
    state.loss_curve.append(loss)
    state.n_iter += 1  # last: the epoch counts once this is done
    if settings.verbose:
        print("Iteration %d, loss = %.8f" % (state.n_iter, state.loss))
    if epochs.validation is not None:
        state.validation_scores.append(fit.problem.score(*epochs.validation))
        state.validation_loss_curve.append(epochs.validation_loss())
        if settings.verbose:
            print("Validation score: %f" % state.validation_scores[-1])
    update_no_improvement_count(state, settings, fit.params)
    optimizer.iteration_ends(state.t)
    return fit.tasks is not None and fit.tasks.end_subtask(
        snapshot(state, fit.params, fit.problem.architecture))


def update_no_improvement_count(state, settings, params):
    """scikit-learn's rule: an epoch that does not improve the best
    validation score (early stopping) or the best loss by tol counts."""
    if settings.early_stopping:
        last_valid_score = state.validation_scores[-1]
        if last_valid_score < state.best_validation_score + settings.tol:
            state.no_improvement_count += 1
        else:
            state.no_improvement_count = 0
        if last_valid_score > state.best_validation_score:
            state.best_validation_score = last_valid_score
            state.best_params = params.copy()
    else:
        if state.loss_curve[-1] > state.best_loss - settings.tol:
            state.no_improvement_count += 1
        else:
            state.no_improvement_count = 0
        if state.loss_curve[-1] < state.best_loss:
            state.best_loss = state.loss_curve[-1]


def _stops(fit, epochs, stop_requested):
    """The stopping rules after an epoch, in scikit-learn's order, then
    cbp's: whether to stop (with the rule's verbose message)."""
    settings, state = fit.settings, fit.state
    if state.no_improvement_count > settings.n_iter_no_change:
        what = "Validation score" if settings.early_stopping else "Training loss"
        msg = ("%s did not improve more than tol=%f for %d consecutive epochs."
               % (what, settings.tol, settings.n_iter_no_change))
        if state.optimizer.trigger_stopping(msg, settings.verbose):
            return True
        state.no_improvement_count = 0
    n_params = epochs.net.n_params
    if settings.weight_tol is not None and weights_settled(
        settings, fit.params[:n_params], epochs.epoch_start_params[:n_params]
    ):
        return True
    if stop_requested:
        if settings.verbose:
            print("A callback asked to stop. Stopping.")
        return True
    if fit.incremental:
        return True
    if state.n_iter == settings.max_iter:
        warnings.warn(
            "Stochastic Optimizer: Maximum iterations (%d) reached and "
            "the optimization hasn't converged yet." % settings.max_iter,
            ConvergenceWarning,
        )
    return False


def weights_settled(settings, params, epoch_start_params):
    """The weight-change rule: whether no weight or intercept moved by more
    than weight_tol during the epoch that just ended."""
    moved = float(np.max(np.abs(params - epoch_start_params)))
    settled = moved <= settings.weight_tol
    if settled and settings.verbose:
        print(
            "No weight or intercept moved by more than weight_tol=%g in the last "
            "epoch (largest change %g). Stopping." % (settings.weight_tol, moved)
        )
    return settled
