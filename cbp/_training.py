"""The solvers' training loops: L-BFGS, and the stochastic solvers' epochs.

What the loops compute follows scikit-learn 1.9's
``sklearn/neural_network/_multilayer_perceptron.py`` step for step (the same
random draws in the same order: the validation split, then the dropout seed,
then each epoch's shuffle), so that the same ``random_state`` gives the same
weights. Each epoch is one call to the kernel.

The functions take explicit objects: a ``Fit`` (the data, the weights and
what only the estimator knows, as callables) and the estimator as the record
of the fitted attributes they update (``n_iter_``, ``t_``, ``loss_curve_``,
``best_loss_``, ``validation_scores_``, ... and the state a later fit
continues: ``_no_improvement_count``, ``_best_params``, ``_dropout_stream``,
``_optimizer``). They call none of its methods.
"""

import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import scipy.optimize
import scipy.sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ._callbacks import snapshot
from ._dispatch import kernel as _kernel
from ._network import kernel_input
from ._sklearn_compat import _check_optimize_result, _get_additional_lbfgs_options_dict
from ._threads import blas_limit, openmp_threads

# scikit-learn's message when training produces non-finite weights (its users
# and tests match it); cbp adds what happened and what to do.
NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large"
    " values and need to be preprocessed."
)


@dataclass
class Fit:
    """One call of fit or partial_fit, as the loops see it.

    network(n_rows, sparse_input, **options): the kernel's Network for
    training on batches of n_rows (continuing the model's dropout stream);
    evaluation_network(n_rows, sparse_input): the Network of the loss without
    L2 in evaluation mode (the validation loss); score(X, y, sample_weight):
    the estimator's score; target_for_scoring(Y): y as score expects it;
    raise_if_not_finite(X): validate_data's error for non-finite X;
    make_optimizer(params): a new optimizer of the solver;
    training_targets(Y): the targets the loss is minimised for, from the
    targets of the rows trained on (not of the validation rows).
    """

    X: object
    Y: np.ndarray
    sample_weight: Optional[np.ndarray]
    params: np.ndarray
    units: list
    network: Callable
    tasks: object = None
    incremental: bool = False
    validation: Optional[tuple] = None  # (X_val, Y_val, y_val, sample_weight_val)
    check_finite: bool = False
    evaluation_network: Optional[Callable] = None
    score: Optional[Callable] = None
    target_for_scoring: Optional[Callable] = None
    raise_if_not_finite: Optional[Callable] = None
    make_optimizer: Optional[Callable] = None
    training_targets: Callable = lambda Y: Y
    stratify: bool = False  # whether the early-stopping split is stratified


def batch_size(model, n_samples):
    """Rows per mini-batch: 'auto' is min(200, n), others clipped to [1, n]."""
    if model.batch_size == "auto":
        return min(200, n_samples)
    return int(np.clip(model.batch_size, 1, n_samples))


# --------------------------------------------------------------------------
# L-BFGS


def fit_lbfgs(model, fit):
    """Minimise the full-batch loss with scipy's L-BFGS-B; sets n_iter_, loss_."""
    X, params = fit.X, fit.params
    net = fit.network(X.shape[0], scipy.sparse.issparse(X))
    data = _kernel.Data(X, fit.training_targets(fit.Y), fit.sample_weight)
    trained = params[:net.n_params]  # (batch normalisation's running
    grads = np.empty_like(trained)   # statistics come after: not trained)
    work = np.empty(net.workspace_size(_kernel.BACKWARD_PART), dtype=params.dtype)

    def loss_grad(packed):
        trained[:] = packed
        loss = _kernel.loss_grad(net, data, params, grads, work)
        return loss, grads.astype(np.float64)

    iprint = 1 if model.verbose is True or model.verbose >= 1 else -1
    options = {
        "maxfun": model.max_fun,
        "maxiter": model.max_iter,
        "gtol": model.tol,
        **_get_additional_lbfgs_options_dict("iprint", iprint),
    }
    opt_res = scipy.optimize.minimize(
        loss_grad, trained.astype(np.float64), method="L-BFGS-B", jac=True,
        options=options, callback=_lbfgs_callback(model, fit, net.n_params),
    )
    if not np.isfinite(opt_res.fun):
        raise ValueError(
            f"{NON_FINITE} Training diverged: the loss is {opt_res.fun} after "
            "L-BFGS. Scale the input data (e.g. with StandardScaler)."
        )
    model.n_iter_ = _check_optimize_result("lbfgs", opt_res, model.max_iter)
    model.loss_ = float(opt_res.fun)
    trained[:] = opt_res.x
    if model.batch_norm:
        _final_batch_statistics(fit)


def _lbfgs_callback(model, fit, n_params):
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
        if tasks.end_subtask(snapshot(model, x)):
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


def fit_stochastic(model, fit):
    """Train with the model's stochastic solver: one epoch per kernel call,
    max_iter epochs (one for partial_fit) or fewer by the stopping rules."""
    if not fit.incremental or getattr(model, "_optimizer", None) is None:
        model._optimizer = fit.make_optimizer(fit.params)
    if model.early_stopping and fit.incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    if model.early_stopping and getattr(model, "validation_scores_", None) is None:
        # early stopping switched on since the first fit (warm_start)
        model._best_params = fit.params.copy()
        model.validation_scores_ = []
        model.best_validation_score_ = -np.inf
        model.best_loss_ = None
    epochs = _set_up_epochs(model, fit, *_training_and_validation(model, fit))
    try:
        _run_epochs(model, fit, epochs)
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.")
    if model.early_stopping:
        fit.params[:] = model._best_params


def _training_and_validation(model, fit):
    """(X, Y, sample_weight) to train on, and (X_val, Y_val, y_val,
    sample_weight_val) or None: the explicit validation data, or early
    stopping's split of the training data (scikit-learn's, drawn from the
    model's _random_state), or none."""
    if fit.validation is not None:
        return (fit.X, fit.training_targets(fit.Y), fit.sample_weight), fit.validation
    if not model.early_stopping:
        return (fit.X, fit.training_targets(fit.Y), fit.sample_weight), None
    Y = fit.Y
    # (0/1 targets held as bytes are stratified as the bools they are, so
    # that scikit-learn's error names the classes True and False)
    stratify = (Y.view(bool) if Y.dtype == np.uint8 else Y) if fit.stratify else None
    arrays = (fit.X, Y) if fit.sample_weight is None else (fit.X, Y, fit.sample_weight)
    split = train_test_split(*arrays, random_state=model._random_state,
                             test_size=model.validation_fraction, stratify=stratify)
    X_train, X_val, Y_train, Y_val = split[:4]
    sw_train, sw_val = split[4:] if fit.sample_weight is not None else (None, None)
    if X_val.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction'"
            " or the size of your dataset."
        )
    dtype = fit.params.dtype
    X_train = kernel_input(X_train, dtype)
    Y_train = np.ascontiguousarray(fit.training_targets(Y_train))
    if sw_train is not None:
        sw_train = np.ascontiguousarray(sw_train)
    y_val = fit.target_for_scoring(Y_val)
    X_val = kernel_input(X_val, dtype)
    if fit.check_finite:  # (these rows never pass through the training kernel)
        fit.raise_if_not_finite(X_val)
    Y_val = np.ascontiguousarray(Y_val, dtype=dtype)
    if sw_val is not None:
        sw_val = np.ascontiguousarray(sw_val)
    return (X_train, Y_train, sw_train), (X_val, Y_val, y_val, sw_val)


def _set_up_epochs(model, fit, training, validation):
    """The records of the validation data, the network (which draws the
    dropout seed), the kernel's data and scratch memory: an Epochs."""
    X_train, Y_train, sample_weight_train = training
    validation_loss = None
    if validation is not None:
        if getattr(model, "validation_scores_", None) is None:
            model.validation_scores_ = []
        if getattr(model, "validation_loss_curve_", None) is None:
            model.validation_loss_curve_ = []
        validation_loss = _validation_loss(fit, *validation[:2], validation[3])
    n_samples = X_train.shape[0]
    if model.batch_size != "auto" and model.batch_size > n_samples:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. It is"
            " going to be clipped"
        )
    rows = batch_size(model, n_samples)
    net = fit.network(rows, scipy.sparse.issparse(X_train),
                      block_rows=model.block_rows or 0)
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
        n_threads=openmp_threads() if model.block_rows else 1,
        X_train=X_train,
        sample_idx=np.arange(n_samples, dtype=int),
        epoch_start_params=params.copy(),
        validation=None if validation is None else (validation[0], *validation[2:]),
        validation_loss=validation_loss,
    )


def _validation_loss(fit, X_val, Y_val, sample_weight_val):
    """A function giving the loss (without L2) on the validation data at the
    current weights."""
    net = fit.evaluation_network(X_val.shape[0], scipy.sparse.issparse(X_val))
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


def _run_epochs(model, fit, epochs):
    """The epoch loop; Ctrl-C inside an epoch puts the model back as it was
    after the last whole one (and is raised on to the caller)."""
    optimizer = model._optimizer
    params = fit.params
    in_order = np.empty(0, dtype=np.intp)
    model.n_iter_ = 0
    start = (model.n_iter_, model.t_, len(model.loss_curve_), optimizer.epoch)
    try:
        for it in range(model.max_iter):
            if model.shuffle:
                epochs.sample_idx = shuffled(epochs.sample_idx, model._random_state)
                order = epochs.sample_idx.astype(np.intp, copy=False)
            else:
                order = in_order
            epochs.epoch_start_params[:] = params
            start = (model.n_iter_, model.t_, len(model.loss_curve_), optimizer.epoch)
            optimizer.epoch_starts()
            if fit.tasks is not None:
                fit.tasks.begin_subtask()
            loss = _train_epoch(model, fit, epochs, order, first=it == 0)
            if loss is None:  # diverged, with early stopping: stop here
                break
            stop_requested = _record_epoch(model, fit, epochs, loss)
            if _stops(model, fit, epochs, stop_requested):
                break
    except KeyboardInterrupt:
        if model.n_iter_ == start[0]:
            # interrupted inside an epoch: back to the last whole one
            params[:] = epochs.epoch_start_params
            model.t_ = start[1]
            del model.loss_curve_[start[2]:]
            optimizer.epoch = start[3]
        raise


def _train_epoch(model, fit, epochs, order, first):
    """One kernel epoch; its mean loss, or None if it diverged with early
    stopping (recorded: scikit-learn #29504). Raises if it diverged without."""
    params = fit.params
    try:
        with blas_limit(1 if model.block_rows else None):
            accumulated_loss = _kernel.train_epoch(
                epochs.net, model._optimizer.compiled, epochs.data, order,
                epochs.batch_size, params, epochs.grads, epochs.work,
                fit.check_finite and first, epochs.n_threads,
            )
    except _kernel.NonFiniteInput:
        # scikit-learn's own error (the caller restores the model)
        fit.raise_if_not_finite(epochs.X_train)
        raise
    if getattr(model, "_dropout_seed", None) is not None:
        model._dropout_stream = epochs.net.stream_position
    loss = accumulated_loss / epochs.n_samples
    if np.isfinite(loss) and np.isfinite(params).all():
        return loss
    advice = (
        f"Training diverged: the loss or the weights became "
        f"non-finite in epoch {model.n_iter_ + 1} (loss {loss}). "
        "Lower learning_rate_init, or scale the input data (e.g. "
        "with StandardScaler)."
    )
    if not model.early_stopping:
        # (the caller puts the whole model back as it was)
        raise ValueError(f"{NON_FINITE} {advice}")
    # With early stopping, as scikit-learn's users rely on (its #29504): the
    # epoch is recorded with a NaN validation score, training stops at once,
    # and the best model on the validation data is kept.
    _record_diverged_epoch(model, loss, advice)
    return None


def _record_diverged_epoch(model, loss, advice):
    model.loss_ = float(loss)
    model.loss_curve_.append(float(loss))
    model.validation_scores_.append(float("nan"))
    if getattr(model, "validation_loss_curve_", None) is not None:
        model.validation_loss_curve_.append(float("nan"))
    model.n_iter_ += 1
    warnings.warn(
        f"{advice} Early stopping keeps the model with the best validation "
        f"score ({model.best_validation_score_}).",
        ConvergenceWarning,
    )


def _record_epoch(model, fit, epochs, loss):
    """The bookkeeping of a finished epoch: loss, t_, the validation score
    and loss, the no-improvement count, the schedule, the callbacks' subtask.
    Whether a callback asks to stop."""
    optimizer = model._optimizer
    optimizer.epoch_done()
    model.loss_ = loss
    model.t_ += epochs.n_samples
    model.loss_curve_.append(loss)
    model.n_iter_ += 1  # last: the epoch counts once this is done
    if model.verbose:
        print("Iteration %d, loss = %.8f" % (model.n_iter_, model.loss_))
    if epochs.validation is not None:
        model.validation_scores_.append(fit.score(*epochs.validation))
        model.validation_loss_curve_.append(epochs.validation_loss())
        if model.verbose:
            print("Validation score: %f" % model.validation_scores_[-1])
    update_no_improvement_count(model, fit.params)
    optimizer.iteration_ends(model.t_)
    return fit.tasks is not None and fit.tasks.end_subtask(
        snapshot(model, fit.params))


def update_no_improvement_count(model, params):
    """scikit-learn's rule: an epoch that does not improve the best
    validation score (early stopping) or the best loss by tol counts."""
    if model.early_stopping:
        last_valid_score = model.validation_scores_[-1]
        if last_valid_score < model.best_validation_score_ + model.tol:
            model._no_improvement_count += 1
        else:
            model._no_improvement_count = 0
        if last_valid_score > model.best_validation_score_:
            model.best_validation_score_ = last_valid_score
            model._best_params = params.copy()
    else:
        if model.loss_curve_[-1] > model.best_loss_ - model.tol:
            model._no_improvement_count += 1
        else:
            model._no_improvement_count = 0
        if model.loss_curve_[-1] < model.best_loss_:
            model.best_loss_ = model.loss_curve_[-1]


def _stops(model, fit, epochs, stop_requested):
    """The stopping rules after an epoch, in scikit-learn's order, then
    cbp's: whether to stop (with the rule's verbose message)."""
    if model._no_improvement_count > model.n_iter_no_change:
        what = "Validation score" if model.early_stopping else "Training loss"
        msg = ("%s did not improve more than tol=%f for %d consecutive epochs."
               % (what, model.tol, model.n_iter_no_change))
        if model._optimizer.trigger_stopping(msg, model.verbose):
            return True
        model._no_improvement_count = 0
    n_params = epochs.net.n_params
    if model.weight_tol is not None and weights_settled(
        model, fit.params[:n_params], epochs.epoch_start_params[:n_params]
    ):
        return True
    if stop_requested:
        if model.verbose:
            print("A callback asked to stop. Stopping.")
        return True
    if fit.incremental:
        return True
    if model.n_iter_ == model.max_iter:
        warnings.warn(
            "Stochastic Optimizer: Maximum iterations (%d) reached and "
            "the optimization hasn't converged yet." % model.max_iter,
            ConvergenceWarning,
        )
    return False


def weights_settled(model, params, epoch_start_params):
    """The weight-change rule: whether no weight or intercept moved by more
    than weight_tol during the epoch that just ended."""
    moved = float(np.max(np.abs(params - epoch_start_params)))
    settled = moved <= model.weight_tol
    if settled and model.verbose:
        print(
            "No weight or intercept moved by more than weight_tol=%g in the last "
            "epoch (largest change %g). Stopping." % (model.weight_tol, moved)
        )
    return settled
