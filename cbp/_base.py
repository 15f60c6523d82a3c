"""BaseMultilayerPerceptron: the estimators' parameters, fit / partial_fit
orchestration and prediction, shared by MLPClassifier and MLPRegressor.

The training loop is cbp's own: Python runs once per epoch (shuffling,
schedules, stopping, early stopping, bookkeeping) and each epoch is one call
to the kernel, which gathers, propagates, back-propagates and updates every
mini-batch without returning. What the loop computes follows scikit-learn
1.9's ``sklearn/neural_network/_multilayer_perceptron.py`` step for step, so
that the same ``random_state`` gives the same weights; the few places where
cbp differs on purpose are listed in the user guide's drop-in page
(docs/user_guide/drop_in.rst).
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, is_classifier
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.validation import check_is_fitted

from . import _persistence
from ._callbacks import FitTasks
from ._fitted import FlatParameters, restored_on_error
from ._network import check_fits_in_memory, initial_parameters, kernel_input, predict_raw
from ._options import (
    LOSSES,
    SOLVERS,
    STOCHASTIC,
    check_combinations,
    classifier_output,
    dropout_rates,
    embedded_width,
    embedding_of,
    embedding_start,
    ensemble_of,
    parameter_constraints,
    quoted,
)
from ._parts import PARTS, architecture_of, layout, lr_factors
from ._sklearn_compat import (
    CallbackSupportMixin,
    Interval,
    Options,
    StrOptions,
    _check_sample_weight,
    _fit_context,
    validate_data,
)
from ._state import TrainingState
from ._training import (
    NON_FINITE,
    Fit,
    Problem,
    Settings,
    batch_size,
    fit_lbfgs,
    fit_stochastic,
)


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
        numeric_embedding=None,
        embedding_size=24,
        n_frequencies=48,
        frequency_scale=0.01,
        n_bins=48,
        embedded_features=None,
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
        self.numeric_embedding = numeric_embedding
        self.embedding_size = embedding_size
        self.n_frequencies = n_frequencies
        self.frequency_scale = frequency_scale
        self.n_bins = n_bins
        self.embedded_features = embedded_features

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
            self._initialize(layer_units, X.dtype, X)
        fit = self._fit_description(X, Y, sample_weight, layer_units, incremental,
                                    validation, finite_in_kernel)
        if stochastic and (not incremental or fit.state.optimizer is None):
            fit.state.optimizer = self._make_optimizer(fit.params)
        fit.tasks = FitTasks.start(
            self, X_given, y_given, sample_weight,
            task_name="partial_fit" if incremental else "fit",
            max_subtasks=(1 if incremental else self.max_iter)
            if stochastic else self.max_iter + 1,
            subtask_name="epoch" if stochastic else "lbfgs-iter",
        )
        (fit_stochastic if stochastic else fit_lbfgs)(fit)
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
        wanted = embedding_of(self, self.n_features_in_)
        if fitted.embedding != wanted or (
                wanted is not None
                and fitted.units[0] != embedded_width(wanted, self.embedding_size)):
            raise ValueError(
                "numeric_embedding or its size (embedding_size, n_frequencies or "
                "n_bins, embedded_features) changed since the model was fitted. Fit again with "
                "warm_start=False.")
        if self._fitted_ensemble() != ensemble_of(self):
            fitted = self._fitted_ensemble() or (1, self.ensemble)
            raise ValueError(
                "ensemble_size or ensemble changed since the model was fitted: "
                f"{fitted[0]} {fitted[1]!r} -> {self.ensemble_size} "
                f"{self.ensemble!r}. Fit again with warm_start=False."
            )

    def _fit_description(self, X, Y, sample_weight, layer_units, incremental,
                         validation, check_finite):
        """The training loops' view of this fit (cbp._training.Fit): the data,
        the problem, the settings and the training state (this estimator's)."""
        return Fit(
            X=X, Y=Y, sample_weight=sample_weight, params=self._params(X.dtype),
            problem=self._problem(layer_units), settings=Settings.of(self),
            state=TrainingState.of(self), random_state=self._random_state,
            incremental=incremental, validation=validation, check_finite=check_finite,
            stratify=is_classifier(self) and self.n_outputs_ == 1,
        )

    def _problem(self, layer_units):
        """What this fit minimises (cbp._training.Problem): the network and its
        loss as values, and this estimator's scoring of an epoch."""
        loss = self._training_loss()
        rates = dropout_rates(self.dropout, len(layer_units) - 2)
        return Problem(
            architecture=self._fitted_architecture(), activation=self.activation,
            loss=LOSSES[loss].of(self), out_activation=self.out_activation_,
            alpha=self.alpha, dropout=tuple(rates) if any(rates) else None,
            estimator_name=type(self).__name__,
            score=lambda X, y, sw: self._score(X, y, sample_weight=sw),
            scoring_targets=self._target_for_scoring,
            training_targets=self._training_targets,
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

    def _initialize(self, layer_units, dtype, X=None):
        # (n_outputs_ is set by _fit before this is called)
        self.n_layers_ = len(layer_units)
        if is_classifier(self):
            self.out_activation_ = classifier_output(self._label_binarizer.y_type_)
        else:
            self.out_activation_ = LOSSES[self.loss].output

        architecture = architecture_of(self, layer_units)
        embedding = architecture.embedding
        params = initial_parameters(
            architecture, self.activation, self._random_state, dtype,
            embedding_start=None if embedding is None else embedding_start(self, X))
        for part in PARTS.values():
            self.__dict__.pop(part.attribute, None)
        self._ensemble = architecture.ensemble
        self._embedding = embedding
        self._set_params_vector(params, architecture)
        # the records of a new model (a new dropout stream among them, drawn
        # when dropout first trains it)
        TrainingState.of(self).start(SOLVERS[self.solver].stochastic,
                                     self.early_stopping, params)

    def _training_loss(self):
        """The kernel's name of the loss this estimator minimises."""
        raise NotImplementedError

    def _make_optimizer(self, params):
        """A new optimizer of this solver for the flat vector params (the
        state of the trained values; the running statistics come after)."""
        architecture = self._fitted_architecture()
        return SOLVERS[self.solver].make_optimizer(
            params[:layout(architecture).n_trained], self,
            lr_factors=lr_factors(architecture, self))

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
