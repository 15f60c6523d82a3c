"""MLPClassifier and MLPRegressor: scikit-learn's API on cbp's compiled kernel.

The training loop is cbp's own: Python runs once per epoch (shuffling,
schedules, stopping, early stopping, bookkeeping) and each epoch is one call
to the kernel, which gathers, propagates, back-propagates and updates every
mini-batch without returning. What the loop computes follows scikit-learn
1.9's ``sklearn/neural_network/_multilayer_perceptron.py`` step for step, so
that the same ``random_state`` gives the same weights; the few places where
cbp differs on purpose are listed in the user guide's drop-in page
(docs/user_guide/drop_in.rst).
"""

import functools
from numbers import Integral, Real

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_array, check_random_state, column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from . import _persistence
from ._callbacks import FitTasks
from ._fitted import FlatParameters, restored_on_error
from ._labels import LabelTargets
from ._network import (
    check_fits_in_memory,
    initial_parameters,
    kernel_input,
    make_network,
    predict_raw,
)
from ._parts import PARTS, architecture_of, layout
from ._options import (
    LOSSES,
    SOLVERS,
    STOCHASTIC,
    check_combinations,
    classifier_loss,
    classifier_output,
    dropout_rates,
    ensemble_of,
    loss_parameter_constraints,
    losses_of,
    parameter_constraints,
    quoted,
)
from ._sklearn_compat import (
    CallbackSupportMixin,
    Interval,
    Options,
    StrOptions,
    _check_partial_fit_first_call,
    _check_sample_weight,
    _fit_context,
    validate_data,
)
from ._training import NON_FINITE, Fit, batch_size, fit_lbfgs, fit_stochastic
from ._training import shuffled as _shuffled  # noqa: F401 (tests use it here)

_restored_on_error = restored_on_error  # (its name before cbp._fitted)


class BaseMultilayerPerceptron(FlatParameters, CallbackSupportMixin, BaseEstimator):
    """Base class for cbp's MLP classifier and regressor.

    Parameters, fitted attributes and their meaning are scikit-learn's
    ``BaseMultilayerPerceptron``'s; see MLPClassifier and MLPRegressor.
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        # activation, solver, learning_rate, the solvers' hyper-parameters,
        # dropout, batch_norm, block_rows, weight_tol: from cbp._options
        **parameter_constraints(),
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
    }

    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        loss,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        rho=0.9,
        weight_decay=0.01,
        weight_tol=None,
        dropout=0.0,
        batch_norm=False,
        block_rows=None,
        ensemble_size=1,
        ensemble="batch",
        input_scaling=False,
        input_scaling_lr_factor=6.0,
    ):
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.rho = rho
        self.weight_decay = weight_decay
        self.weight_tol = weight_tol
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.block_rows = block_rows
        self.ensemble_size = ensemble_size
        self.ensemble = ensemble
        self.input_scaling = input_scaling
        self.input_scaling_lr_factor = input_scaling_lr_factor

    def _hidden_sizes(self):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        return list(hidden_layer_sizes)

    def save(self, path):
        """Save the fitted model to ``path`` without pickle.

        Writes a NumPy .npz archive of plain arrays (weights, fitted
        attributes, optimizer state, parameters as JSON, a format version);
        ``cbp.load(path)`` reads it back and predicts exactly as this model.
        A ``random_state`` given as a RandomState instance is saved as None.
        """
        _persistence.save(self, path)

    # ------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------

    def _validate_X_predict(self, X):
        return validate_data(
            self,
            X,
            accept_sparse=["csr", "csc"],
            dtype=(np.float64, np.float32),
            reset=False,
        )

    def _forward_pass_fast(self, X, check_input=True, members=False):
        """The output layer's activations for X: (n_samples, n_outputs_); for
        an ensemble, the mean of its members' (their probabilities, for a
        classifier), or with members=True every member's: (n_samples,
        ensemble_size, n_outputs_) (for any model)."""
        out = self._members_output(X, check_input)
        if out.ndim == 3 and not members:
            return out.mean(axis=1)
        if out.ndim == 2 and members:
            return out[:, None, :]
        return out

    def _members_output(self, X, check_input):
        """The output layer's activations: (n_samples, n_outputs_), or
        (n_samples, k, n_outputs_) for an ensemble of k members."""
        params, architecture = self._params_for_prediction()
        if check_input and (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype == params.dtype
            and X.flags.c_contiguous
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and "feature_names_in_" not in self.__dict__
        ):
            # Fast path: what validate_data would accept and return unchanged,
            # if every value is finite -- which the kernel checks as it reads;
            # otherwise validate_data raises its own error.
            out = predict_raw(X, params, architecture, self.activation,
                              self.out_activation_, check_finite=True, sparse_input=False)
            if out is not None:
                return out
        if check_input:
            X = self._validate_X_predict(X)
        X = kernel_input(X, params.dtype)
        return predict_raw(X, params, architecture, self.activation, self.out_activation_)

    def _validate_X_y(self, X, y, reset, ensure_all_finite=True, y_numeric=False):
        """validate_data for training: X dense or sparse, float64 or float32;
        y 1-d, or 2-d with several outputs (a column becomes 1-d, with
        scikit-learn's warning)."""
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            ensure_all_finite=ensure_all_finite,
            y_numeric=y_numeric,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _check_is_fitted(self):
        if "coefs_" not in self.__dict__:
            check_is_fitted(self)

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. float32 is kept; anything else becomes float64.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers
            in regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (non-negative, not all zero).
        X_val, y_val : array-like, default=None
            Validation data (as in HistGradientBoosting*; the stochastic
            solvers): the validation score (``validation_scores_``) and the
            loss without the L2 term (``validation_loss_curve_``) are recorded
            after every epoch. With ``early_stopping=True`` they replace the
            ``validation_fraction`` split, and the model with the best score
            on them is kept. (cbp addition)
        sample_weight_val : array-like of shape (n_val_samples,), default=None
            Weights of the validation samples.

        Returns
        -------
        self : object
            The fitted model.
        """
        return self._fit_keeping_state_on_error(
            X, y, sample_weight, incremental=False,
            validation=(X_val, y_val, sample_weight_val),
        )

    def _fit_keeping_state_on_error(self, X, y, sample_weight, incremental,
                                    validation=(None, None, None)):
        """_fit, but a fit that raises leaves the estimator as it was."""
        with restored_on_error(self):
            return self._fit(X, y, sample_weight=sample_weight, incremental=incremental,
                             validation=validation)

    def _fit(self, X, y, sample_weight=None, incremental=False,
             validation=(None, None, None)):
        hidden_layer_sizes = self._checked_hidden_sizes()
        check_combinations(self, X, len(hidden_layer_sizes))
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )
        stochastic = SOLVERS[self.solver].stochastic
        # Dense X for the stochastic solvers is checked for NaN and infinity
        # by the kernel as it reads the first epoch's rows, not in a pass of
        # its own (8 ms of every partial_fit on 60000 x 784 float32 here)
        finite_in_kernel = stochastic and not scipy.sparse.issparse(X)
        X_given, y_given = X, y  # (what callbacks score on)
        X, Y, sample_weight = self._training_data(X, y, sample_weight, incremental,
                                                  first_pass, finite_in_kernel)
        layer_units = [X.shape[1]] + hidden_layer_sizes + [self.n_outputs_]
        if not first_pass:
            self._check_same_network(hidden_layer_sizes)
        max_rows = batch_size(self, X.shape[0]) if stochastic else X.shape[0]
        check_fits_in_memory(architecture_of(self, layer_units), max_rows, X.dtype,
                             self.solver, scipy.sparse.issparse(X))

        self._random_state = check_random_state(self.random_state)
        validation = self._validation_data(*validation, dtype=X.dtype)
        if first_pass:
            self._initialize(layer_units, X.dtype)
        fit = self._fit_description(X, Y, sample_weight, layer_units, incremental,
                                    validation, finite_in_kernel)
        fit.tasks = FitTasks.start(
            self, X_given, y_given, sample_weight,
            task_name="partial_fit" if incremental else "fit",
            max_subtasks=(1 if incremental else self.max_iter)
            if stochastic else self.max_iter + 1,
            subtask_name="epoch" if stochastic else "lbfgs-iter",
        )
        (fit_stochastic if stochastic else fit_lbfgs)(self, fit)
        if fit.tasks is not None:
            fit.tasks.end()

        if not np.isfinite(self._params()).all():
            raise ValueError(NON_FINITE)
        return self

    def _checked_hidden_sizes(self):
        hidden_layer_sizes = self._hidden_sizes()
        if not all(
            isinstance(size, Integral) and not isinstance(size, bool)
            for size in hidden_layer_sizes
        ):
            raise ValueError(
                f"hidden_layer_sizes must be integers, got {hidden_layer_sizes}."
            )
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(
                "hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes
            )
        return hidden_layer_sizes

    def _training_data(self, X, y, sample_weight, incremental, first_pass,
                       finite_in_kernel):
        """(X, Y, sample_weight) as the kernel reads them, validated; sets
        n_outputs_ on a first pass. Later calls train the existing weights,
        in their dtype."""
        class_sample_weight = self._class_sample_weight(y, incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass,
                                    ensure_all_finite=not finite_in_kernel)
        dtype = X.dtype if first_pass else self.coefs_[0].dtype
        X = kernel_input(X, dtype)  # dense, or CSR: never densified
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=dtype, ensure_non_negative=True
            )
        if class_sample_weight is not None:
            # exactly sample_weight=compute_sample_weight(class_weight, y) * sample_weight
            sample_weight = (class_sample_weight if sample_weight is None
                             else class_sample_weight * sample_weight)
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=dtype)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        if first_pass:
            self.n_outputs_ = y.shape[1]
        elif y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {y.shape[1]} outputs, the fitted model has {self.n_outputs_}."
            )
        if y.dtype == bool and SOLVERS[self.solver].stochastic:
            # 0/1 targets stay bytes; the kernel converts each batch's rows
            Y = np.ascontiguousarray(y).view(np.uint8)
        else:
            Y = np.ascontiguousarray(y, dtype=dtype)
        self._check_targets(Y)
        return X, Y, sample_weight

    def _check_same_network(self, hidden_layer_sizes):
        """warm_start and partial_fit train the fitted network: its layers
        and batch normalisation must not have changed."""
        fitted_hidden = [c.shape[-1] for c in self.coefs_[:-1]]
        if fitted_hidden != hidden_layer_sizes:
            raise ValueError(
                "hidden_layer_sizes changed since the model was fitted: "
                f"{fitted_hidden} -> {hidden_layer_sizes}."
                " Fit again with warm_start=False."
            )
        fitted = self._fitted_architecture()
        for option in ("batch_norm", "input_scaling"):
            if getattr(fitted, option) != bool(getattr(self, option)):
                raise ValueError(
                    f"{option} changed since the model was fitted: "
                    f"{getattr(fitted, option)} -> {bool(getattr(self, option))}. "
                    "Fit again with warm_start=False."
                )
        if self._fitted_ensemble() != ensemble_of(self):
            fitted = self._fitted_ensemble() or (1, self.ensemble)
            raise ValueError(
                "ensemble_size or ensemble changed since the model was fitted: "
                f"{fitted[0]} {fitted[1]!r} -> {self.ensemble_size} "
                f"{self.ensemble!r}. Fit again with warm_start=False."
            )

    def _fit_description(self, X, Y, sample_weight, layer_units, incremental,
                         validation, check_finite):
        """The training loops' view of this fit (cbp._training.Fit)."""
        return Fit(
            X=X, Y=Y, sample_weight=sample_weight, params=self._params(X.dtype),
            units=layer_units, network=functools.partial(self._network, layer_units),
            incremental=incremental, validation=validation, check_finite=check_finite,
            evaluation_network=functools.partial(self._evaluation_network, layer_units),
            score=lambda X, y, sw: self._score(X, y, sample_weight=sw),
            target_for_scoring=self._target_for_scoring,
            raise_if_not_finite=self._raise_if_not_finite,
            make_optimizer=self._make_optimizer,
            training_targets=self._training_targets,
            stratify=is_classifier(self) and self.n_outputs_ == 1,
        )

    def _validation_data(self, X_val, y_val, sample_weight_val, dtype):
        """fit's X_val, y_val and sample_weight_val, validated like X, y and
        sample_weight: (X_val as the kernel reads it, Y_val (n, n_outputs)
        float, y_val for scoring, sample_weight_val), or None."""
        if (X_val is None) != (y_val is None):
            raise ValueError("X_val and y_val must be given together.")
        if X_val is None:
            if sample_weight_val is not None:
                raise ValueError("sample_weight_val needs X_val and y_val.")
            return None
        if not SOLVERS[self.solver].stochastic:
            raise ValueError(
                "X_val and y_val are scored after every epoch of the stochastic "
                f"solvers ({quoted(STOCHASTIC)}); solver={self.solver!r} has none."
            )
        X_val, y_val = validate_data(
            self, X_val, y_val, accept_sparse=["csr", "csc"], multi_output=True,
            dtype=(np.float64, np.float32), reset=False,
            y_numeric=not is_classifier(self),
        )
        X_val = kernel_input(X_val, dtype)
        Y_val = np.ascontiguousarray(self._encode_validation_targets(y_val), dtype=dtype)
        if Y_val.ndim == 1:
            Y_val = Y_val.reshape(-1, 1)
        if Y_val.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y_val has {Y_val.shape[1]} outputs, the model has {self.n_outputs_}."
            )
        self._check_targets(Y_val)
        if sample_weight_val is not None:
            sample_weight_val = np.ascontiguousarray(_check_sample_weight(
                sample_weight_val, X_val, dtype=dtype, ensure_non_negative=True))
        return X_val, Y_val, self._target_for_scoring(Y_val), sample_weight_val

    def _encode_validation_targets(self, y_val):
        """y_val as the network's targets (the regressor's are y_val itself)."""
        return y_val

    def _check_targets(self, Y):
        """The loss's check of the targets beyond validate_data's (Poisson)."""
        check = LOSSES[self.loss].check_targets
        if check is not None:
            check(Y)

    def _class_sample_weight(self, y, incremental):
        """Hook: the sample weights class_weight gives y's rows, or None."""
        return None

    def _training_targets(self, Y):
        """Hook: the targets the loss is minimised for, from the targets Y
        (n, n_outputs) of the rows trained on (the classifier's label
        smoothing); Y itself by default."""
        return Y

    def _dropout_key(self, n_hidden):
        """(rates, seed) of this fit's dropout, or (None, 0) without it. The
        seed is drawn from random_state the first time dropout trains this
        model, after the initial weights, and kept: later fits (warm_start,
        partial_fit) continue the same stream of masks."""
        rates = dropout_rates(self.dropout, n_hidden)
        if not any(rates):
            return None, 0
        if getattr(self, "_dropout_seed", None) is None:
            self._dropout_seed = int(self._random_state.randint(0, 2**63 - 1, dtype=np.int64))
            self._dropout_stream = 0
        return rates, self._dropout_seed

    def _initialize(self, layer_units, dtype):
        # (n_outputs_ is set by _fit before this is called)
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(layer_units)
        if is_classifier(self):
            self.out_activation_ = classifier_output(self._label_binarizer.y_type_)
        else:
            self.out_activation_ = LOSSES[self.loss].output

        architecture = architecture_of(self, layer_units)
        params = initial_parameters(architecture, self.activation, self._random_state,
                                    dtype)
        for part in PARTS.values():
            self.__dict__.pop(part.attribute, None)
        self._ensemble = architecture.ensemble
        # (a new model: a new dropout stream, drawn when dropout first trains it)
        self.__dict__.pop("_dropout_seed", None)
        self.__dict__.pop("_dropout_stream", None)
        self._set_params_vector(params, architecture)
        # the weights early stopping falls back to (scikit-learn's _best_coefs)
        self._best_params = params.copy() if self.early_stopping else None
        self._optimizer = None
        if SOLVERS[self.solver].stochastic:
            self._initial_records()

    def _initial_records(self):
        """The stochastic solvers' per-epoch records and stopping state."""
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None

    def _network(self, layer_units, n_rows, sparse_input, **options):
        """The kernel's description of this network for training on batches
        of n_rows, with its dropout (whose stream it continues); options: of
        make_network (e.g. block_rows)."""
        rates, seed = self._dropout_key(len(layer_units) - 2)
        net = make_network(
            self._fitted_architecture(), self.activation, self._training_loss(),
            self.out_activation_, self.alpha, n_rows, sparse_input, dropout=rates,
            dropout_seed=seed, **self._loss_parameters(), **options,
        )
        if rates is not None:
            net.stream_position = self._dropout_stream
        return net

    def _evaluation_network(self, layer_units, n_rows, sparse_input):
        """The network of the loss without L2, in evaluation mode (no
        dropout; batch normalisation by the running statistics)."""
        return make_network(
            self._fitted_architecture(), self.activation, self._training_loss(),
            self.out_activation_, 0.0, n_rows, sparse_input, training=False,
            **self._loss_parameters(),
        )

    def _loss_parameters(self):
        """The loss's parameters, as keyword arguments of _kernel.Network."""
        return LOSSES[self._training_loss()].kernel_parameters(self)

    def _training_loss(self):
        """The kernel's name of the loss this estimator minimises."""
        raise NotImplementedError

    def _make_optimizer(self, params):
        """A new optimizer of this solver for the flat vector params (the
        state of the trained values; the running statistics come after)."""
        params = params[:layout(self._fitted_architecture()).n_trained]
        return SOLVERS[self.solver].make_optimizer(params, self)

    def _raise_if_not_finite(self, X):
        """validate_data's error for an X holding NaN or infinity."""
        check_array(X, accept_sparse=["csr", "csc"], dtype=None, estimator=self,
                    input_name="X")

    def _check_solver(self):
        if not SOLVERS[self.solver].stochastic:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                "%s is not stochastic." % self.solver
            )
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


@_persistence.register
class MLPClassifier(ClassifierMixin, LabelTargets, BaseMultilayerPerceptron):
    """Multi-layer Perceptron classifier, trained by cbp's compiled kernel.

    A drop-in for ``sklearn.neural_network.MLPClassifier``: the same
    parameters, attributes and methods, and for the same ``random_state`` the
    same weights, to rounding (L-BFGS run long can magnify the last bits: see
    the user guide's drop-in page). It optimizes the log-loss with LBFGS,
    stochastic gradient descent or Adam.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', \
            'gelu', 'silu', 'selu', 'mish'}, default='relu'
        Activation function of the hidden layers. cbp additions, each as
        PyTorch's: 'leaky_relu' is z for z > 0, 0.01 z otherwise
        (``torch.nn.LeakyReLU()``); 'gelu' z Phi(z), the exact erf form
        (``torch.nn.GELU()``); 'silu' z sigmoid(z) (``torch.nn.SiLU``);
        'selu' ``torch.nn.SELU``, with LeCun-normal initial weights (coefs
        ~ N(0, 1 / fan_in), intercepts 0), which self-normalisation needs;
        'mish' z tanh(softplus(z)) (``torch.nn.Mish``).
    solver : {'lbfgs', 'sgd', 'adam', 'adamw', 'rmsprop'}, default='adam'
        The solver for weight optimization; 'rmsprop' is
        ``torch.optim.RMSprop(lr=learning_rate_init, alpha=rho, eps=epsilon)``
        (no momentum, not centred); 'adamw' is ``torch.optim.AdamW(
        lr=learning_rate_init, betas=(beta_1, beta_2), eps=epsilon,
        weight_decay=weight_decay)`` (decoupled weight decay of every trained
        value, epsilon after the bias correction; ``alpha``'s L2 term stays
        in the loss beside it). (cbp additions)
    alpha : float, default=0.0001
        Strength of the L2 penalty on the weights (not the intercepts),
        divided by the (weighted) size of each batch.
    batch_size : int or 'auto', default='auto'
        Size of minibatches for the stochastic solvers; 'auto' is
        ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive', 'cosine'}, default='constant'
        Learning rate schedule for ``solver='sgd'``. 'cosine' (cbp addition;
        also for 'adam', 'adamw' and 'rmsprop') uses ``learning_rate_init * (1 +
        cos(pi * epoch / max_iter)) / 2`` in each epoch, counting from 0 (and
        on through ``partial_fit`` calls).
    learning_rate_init : float, default=0.001
        Initial learning rate (sgd, adam).
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum number of epochs (sgd, adam) or iterations (lbfgs).
    shuffle : bool, default=True
        Whether to shuffle the samples in each epoch (sgd, adam).
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialization, the shuffling and the validation
        split, exactly as scikit-learn's MLPClassifier does.
    tol : float, default=1e-4
        Tolerance of the optimization.
    verbose : bool, default=False
        Print one line of progress per epoch.
    warm_start : bool, default=False
        Reuse the previous solution as initialization of ``fit``.
    momentum : float, default=0.9
        Momentum of the sgd updates.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum (sgd, momentum > 0).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when the
        validation score stops improving; the best weights are kept.
    validation_fraction : float, default=0.1
        Proportion of the training data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's (and AdamW's) exponential decay rates of the moment estimates.
    epsilon : float, default=1e-8
        The numerical stability term of Adam, AdamW and RMSprop.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping (sgd, adam).
    max_fun : int, default=15000
        Maximum number of loss evaluations (lbfgs).
    rho : float in [0, 1), default=0.9
        RMSprop's decay of the running average of squared gradients.
        (cbp addition)
    weight_decay : float >= 0, default=0.01
        AdamW's decoupled weight decay (``solver='adamw'`` only; PyTorch's
        default). (cbp addition)
    weight_tol : float > 0 or None, default=None
        Stop after an epoch in which no weight or intercept changed by more
        than ``weight_tol`` (the largest absolute change over all parameters);
        beside ``tol``/``n_iter_no_change``, for the stochastic solvers.
        (cbp addition)
    dropout : float in [0, 1) or array-like of those, default=0.0
        Inverted dropout on the hidden activations in training: one rate for
        every hidden layer, or one per hidden layer (the stochastic solvers;
        0 changes nothing). (cbp addition)
    batch_norm : bool, default=False
        Normalise every hidden layer's z by its batch statistics before the
        activation, as ``torch.nn.BatchNorm1d`` (momentum 0.1, eps 1e-5);
        prediction uses the running statistics. (cbp addition)
    block_rows : int >= 1 or None, default=None
        Every core for one fit (the stochastic solvers; dense input, no
        batch_norm): each mini-batch is split into fixed blocks of this many
        rows, whose gradients are computed in parallel on OpenMP threads
        (``OMP_NUM_THREADS``, or threadpoolctl's limit on "openmp") and summed
        in block order, with BLAS on one thread. The result is the same for
        any number of threads, and differs from None's by rounding only.
        None: a batch in one piece, scikit-learn's arithmetic (the threads
        are BLAS's own). A block of ``batch_size / n_threads`` rows suits
        most networks (user guide, "Threads"); an ensemble whose layers share
        weights ('batch', 'mini') about ``1024 / ensemble_size`` rows, its
        members' rows being stacked. (cbp addition)
    ensemble_size : int >= 1, default=1
        Train this many networks as one, on the same mini-batches, and
        predict with the mean of their probabilities (classifier) or
        outputs (regressor): TabM's parameter-efficient ensembles (Gorishniy
        et al., ICLR 2025; the ``tabm`` package). The loss minimised is the
        mean of the members' losses, plus ``alpha``'s L2 term on every
        weight matrix once (a shared one once). ``predict(X, members=True)``
        gives every member's prediction. 1: a plain network. (cbp addition)
    ensemble : {'batch', 'mini', 'packed'}, default='batch'
        How the members share weights (``ensemble_size > 1``), as the
        ``tabm`` package's ``arch_type`` 'tabm', 'tabm-mini' and
        'tabm-packed': 'batch', every hidden layer y_i = ((x_i * r_i) W) *
        s_i + b_i with W shared and r_i, s_i, b_i per member (the first
        layer's r_i start at random signs, the others and s_i at 1); 'mini',
        one per-member scaling r_i of the input (random signs), then shared
        hidden layers; 'packed', k independent networks. Each member has its
        own output layer. Weights a layer holds per member start from
        draws of their own (``random_state``), a shared layer's intercepts
        from one draw. (cbp addition)
    input_scaling : bool, default=False
        Learn a scale per input feature, x -> x * s before the first layer
        (RealMLP's scaling layer, Holzmueller et al., NeurIPS 2024): s starts
        at 1, has no L2 penalty and is ``input_scaling_`` ``[0]`` once
        fitted. A plain network only (``ensemble_size=1``; an ensemble's
        'batch' and 'mini' forms scale the input per member already).
        (cbp addition)
    input_scaling_lr_factor : float > 0, default=6.0
        The stochastic solvers train s with ``learning_rate_init`` times
        this (RealMLP-TD's ``scale_lr_factor``: 6). (cbp addition)
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, as in scikit-learn's other classifiers:
        fitting with it is fitting with ``sample_weight =
        compute_sample_weight(class_weight, y)`` (times any sample_weight
        given). Not for multilabel targets (ValueError); 'balanced' is
        refused by ``partial_fit``, whose single call does not see the class
        frequencies of the data (pass a dict). (cbp addition)
    label_smoothing : float in [0, 1), default=0.0
        Train on smoothed targets: y (1 - label_smoothing) + label_smoothing
        / n_classes for multiclass targets (the loss is then
        ``torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)``'s),
        y (1 - label_smoothing) + label_smoothing / 2 for binary and
        multilabel ones (each output's 0/1 target). ``loss_`` and
        ``loss_curve_`` are the smoothed loss (the one minimised),
        ``validation_loss_curve_`` the log-loss of the true labels.
        (cbp addition)

    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels for each output.
    loss_ : float
        The current loss computed with the loss function.
    best_loss_ : float or None
        Minimum loss reached by the solver (None with early stopping).
    loss_curve_ : list of shape (``n_iter_``,)
        The loss at the end of each epoch (sgd, adam).
    validation_scores_ : list of shape (``n_iter_``,) or None
        Accuracy on the validation set per epoch (early stopping only).
    best_validation_score_ : float or None
        Best validation accuracy (early stopping only).
    t_ : int
        Number of training samples seen by the solver.
    coefs_ : list of shape (n_layers - 1,)
        ``coefs_[i]`` is the (units[i], units[i + 1]) weight matrix of layer i,
        of dtype float32 for float32 input, float64 otherwise; an ensemble's
        layer with one per member holds (ensemble_size, units[i], units[i + 1]).
    intercepts_ : list of shape (n_layers - 1,)
        ``intercepts_[i]`` is the (units[i + 1],) bias vector of layer i
        ((ensemble_size, units[i + 1]) for one per member).
    input_scalings_, output_scalings_ : list of shape (n_layers - 1,)
        An ensemble's per-member scalings r and s of each layer's input and
        output, (ensemble_size, units[i]) and (ensemble_size, units[i + 1]),
        or None where the layer has none (ensemble_size > 1 only).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of features seen during fit, for input with string column names.
    n_iter_ : int
        Number of epochs (sgd, adam) or iterations (lbfgs) run.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Name of the output activation function.

    Examples
    --------
    The same model as scikit-learn's for the same ``random_state``:

    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklearn import neural_network
    >>> from cbp import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16  # pixel intensities in [0, 1]
    >>> params = dict(hidden_layer_sizes=(32,), early_stopping=True,
    ...               random_state=0)
    >>> model = MLPClassifier(**params).fit(X, y)
    >>> model.classes_
    array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> model.score(X, y) > 0.9
    True
    >>> reference = neural_network.MLPClassifier(**params).fit(X, y)
    >>> np.array_equal(model.predict(X), reference.predict(X))
    True
    """

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        rho=0.9,
        weight_decay=0.01,
        weight_tol=None,
        dropout=0.0,
        batch_norm=False,
        block_rows=None,
        ensemble_size=1,
        ensemble="batch",
        input_scaling=False,
        input_scaling_lr_factor=6.0,
        class_weight=None,
        label_smoothing=0.0,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss="log_loss",
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            rho=rho,
            weight_decay=weight_decay,
            weight_tol=weight_tol,
            dropout=dropout,
            batch_norm=batch_norm,
            block_rows=block_rows,
            ensemble_size=ensemble_size,
            ensemble=ensemble,
            input_scaling=input_scaling,
            input_scaling_lr_factor=input_scaling_lr_factor,
        )
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing

    def _target_for_scoring(self, Y_val):
        return self._label_binarizer.inverse_transform(Y_val)

    def _training_loss(self):
        return classifier_loss(self.out_activation_)

    def predict(self, X, *, members=False):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        members : bool, default=False
            Give each ensemble member's own prediction (from its
            probabilities alone) instead of the ensemble's (from the mean of
            the members' probabilities). (cbp addition)

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
            The predicted classes; with members=True, shape (n_samples,
            ensemble_size) or (n_samples, ensemble_size, n_classes).

        Examples
        --------
        An ensemble's prediction, and each of its members':

        >>> from sklearn.datasets import load_iris
        >>> from cbp import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> model = MLPClassifier(hidden_layer_sizes=(16,),
        ...                       ensemble_size=4, learning_rate_init=0.01,
        ...                       max_iter=500, random_state=0).fit(X, y)
        >>> model.predict(X[[0, 50, 100]])
        array([0, 1, 2])
        >>> model.predict(X[[0, 50, 100]], members=True)
        array([[0, 0, 0, 0],
               [1, 1, 1, 1],
               [2, 2, 2, 2]])
        """
        self._check_is_fitted()
        if members:
            y_prob = self._forward_pass_fast(X, members=True)
            n, k = y_prob.shape[:2]
            y_pred = self._labels(y_prob.reshape(n * k, -1))
            return y_pred.reshape((n, k) + y_pred.shape[1:])
        return self._predict(X)

    def _predict(self, X, check_input=True):
        return self._labels(self._forward_pass_fast(X, check_input=check_input))

    def _labels(self, y_pred):
        """The classes of the output layer's activations y_pred (n, n_outputs_)."""
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        # LabelBinarizer.inverse_transform's arithmetic, without its checks
        y_type = self._label_binarizer.y_type_
        if y_type == "multiclass":
            return self.classes_.take(y_pred.argmax(axis=1), mode="clip")
        if y_type == "binary" and len(self.classes_) == 2:
            return self.classes_.take((y_pred > 0.5).astype(np.intp))
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return super()._score_with_function(
            X, y, sample_weight=sample_weight, score_function=accuracy_score
        )

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first
            call, may be omitted afterwards.

        Returns
        -------
        self : object
            Trained MLP model.

        Examples
        --------
        Training on data that arrives in chunks (``classes`` lists every
        class, as a chunk may lack some):

        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from cbp import MLPClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> model = MLPClassifier(batch_size=50, learning_rate_init=0.01,
        ...                       random_state=0)
        >>> chunks = zip(np.array_split(X / 16, 4), np.array_split(y, 4))
        >>> for X_chunk, y_chunk in chunks:
        ...     _ = model.partial_fit(X_chunk, y_chunk,
        ...                           classes=np.arange(10))
        >>> model.t_  # the samples trained on
        1797
        >>> model.score(X / 16, y) > 0.8
        True
        """
        with restored_on_error(self):
            if _check_partial_fit_first_call(self, classes):
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
            return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X):
        """Return the log of probability estimates.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            The predicted log-probability of each class, in the order of
            ``classes_``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X, *, members=False):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        members : bool, default=False
            Give each ensemble member's probabilities instead of their mean
            (the ensemble's). (cbp addition)

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The predicted probability of each class, in the order of
            ``classes_``; with members=True, shape (n_samples,
            ensemble_size, n_classes).
        """
        self._check_is_fitted()
        y_pred = self._forward_pass_fast(X, members=members)
        if self.n_outputs_ == 1:
            y_pred = y_pred[..., 0]
            return np.stack([1 - y_pred, y_pred], axis=-1)
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


@_persistence.register
class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    """Multi-layer Perceptron regressor, trained by cbp's compiled kernel.

    A drop-in for ``sklearn.neural_network.MLPRegressor``: the same
    parameters, attributes and methods, and for the same ``random_state`` the
    same weights, to rounding (single output; the user guide's drop-in page
    says what differs for multi-output squared error, and when L-BFGS run long
    magnifies the last bits). It optimizes the squared error or the Poisson deviance with
    LBFGS, stochastic gradient descent or Adam.

    The parameters and attributes are MLPClassifier's (without ``classes_``
    and ``class_weight``; ``validation_scores_`` hold R^2 scores), and the
    two parameters below.

    Parameters
    ----------
    loss : {'squared_error', 'poisson', 'absolute_error', 'huber'}, default='squared_error'
        The loss to minimize; 'poisson' uses an exp output and needs y >= 0.
        'absolute_error' (cbp addition): ``J = (1/n) sum_i sum_outputs |y - y_pred|``
        (+ the L2 term), subgradient 0 at a zero residual, as torch.nn.L1Loss.
        'huber' (cbp addition): ``J = (1/n) sum_i sum_outputs h(y - y_pred)``,
        ``h(r) = r^2 / 2`` for ``|r| <= huber_delta``,
        ``huber_delta (|r| - huber_delta / 2)`` beyond, as
        torch.nn.HuberLoss(delta=huber_delta); with delta 1 it is the smooth
        L1 loss.
    huber_delta : float > 0, default=1.0
        Where the Huber loss turns from quadratic to linear. (cbp addition)

    Examples
    --------
    The same model as scikit-learn's for the same ``random_state``:

    >>> import numpy as np
    >>> from sklearn.datasets import make_regression
    >>> from sklearn import neural_network
    >>> from cbp import MLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=10, noise=1.0,
    ...                        random_state=0)
    >>> y = y / y.std()  # targets of unit scale
    >>> model = MLPRegressor(random_state=0).fit(X, y)
    >>> model.score(X, y) > 0.99
    True
    >>> reference = neural_network.MLPRegressor(random_state=0).fit(X, y)
    >>> np.allclose(model.predict(X), reference.predict(X))
    True
    """

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "loss": [StrOptions(set(losses_of("regressor")))],
        **loss_parameter_constraints("regressor"),
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        rho=0.9,
        weight_decay=0.01,
        weight_tol=None,
        dropout=0.0,
        batch_norm=False,
        block_rows=None,
        ensemble_size=1,
        ensemble="batch",
        input_scaling=False,
        input_scaling_lr_factor=6.0,
        huber_delta=1.0,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss=loss,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            rho=rho,
            weight_decay=weight_decay,
            weight_tol=weight_tol,
            dropout=dropout,
            batch_norm=batch_norm,
            block_rows=block_rows,
            ensemble_size=ensemble_size,
            ensemble=ensemble,
            input_scaling=input_scaling,
            input_scaling_lr_factor=input_scaling_lr_factor,
        )
        self.huber_delta = huber_delta

    def predict(self, X, *, members=False):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        members : bool, default=False
            Give each ensemble member's prediction instead of their mean (the
            ensemble's). (cbp addition)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values; with members=True, shape (n_samples,
            ensemble_size) or (n_samples, ensemble_size, n_outputs).
        """
        self._check_is_fitted()
        if members:
            y_pred = self._forward_pass_fast(X, members=True)
            return y_pred[..., 0] if y_pred.shape[2] == 1 else y_pred
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return super()._score_with_function(
            X, y, sample_weight=sample_weight, score_function=r2_score
        )

    def _target_for_scoring(self, Y_val):
        return Y_val.ravel() if Y_val.shape[1] == 1 else Y_val

    def _training_loss(self):
        return self.loss

    def _validate_input(self, X, y, incremental, reset, ensure_all_finite=True):
        return self._validate_X_y(X, y, reset, ensure_all_finite, y_numeric=True)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            Trained MLP model.
        """
        return self._fit_keeping_state_on_error(X, y, sample_weight, incremental=True)
