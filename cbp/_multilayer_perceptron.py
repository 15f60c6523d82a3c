"""MLPClassifier and MLPRegressor: scikit-learn's API on cbp's compiled kernel.

What they share (parameters, fit / partial_fit orchestration, prediction) is
cbp._base.BaseMultilayerPerceptron; here are what each adds: the
classifier's labels, probabilities and accuracy, the regressor's losses and
R^2. Pickles name these classes in this module
(``cbp._multilayer_perceptron.MLPClassifier``).
"""

from numbers import Real

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target

from . import _persistence
from ._base import BaseMultilayerPerceptron
from ._fitted import restored_on_error
from ._labels import LabelTargets
from ._options import classifier_loss, loss_parameter_constraints, losses_of
from ._sklearn_compat import (
    Interval,
    StrOptions,
    _check_partial_fit_first_call,
    _fit_context,
)
from ._training import shuffled as _shuffled  # noqa: F401 (tests use it here)

_restored_on_error = restored_on_error  # (its name before cbp._fitted)


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
    learning_rate : {'constant', 'invscaling', 'adaptive', 'cosine', 'coslog4'}, default='constant'
        Learning rate schedule for ``solver='sgd'``. 'cosine' (cbp addition;
        also for 'adam', 'adamw' and 'rmsprop') uses ``learning_rate_init * (1 +
        cos(pi * epoch / max_iter)) / 2`` in each epoch, counting from 0 (and
        on through ``partial_fit`` calls). 'coslog4' (cbp addition, RealMLP's
        schedule; the same solvers) uses in epoch ``e`` the mean over
        ``e / max_iter <= t <= (e + 1) / max_iter`` of ``learning_rate_init *
        (1 - cos(2 pi log2(1 + 15 t))) / 2``: four cycles up from 0 and back
        down to 0 over ``max_iter`` epochs.
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
        at 1, has no L2 penalty and is ``input_scalings_[0]`` once
        fitted. A plain network only (``ensemble_size=1``; an ensemble's
        'batch' and 'mini' forms scale the input per member already).
        (cbp addition)
    input_scaling_lr_factor : float > 0, default=6.0
        The stochastic solvers train s with ``learning_rate_init`` times
        this (RealMLP-TD's ``scale_lr_factor``: 6). (cbp addition)
    numeric_embedding : {None, 'periodic', 'piecewise_linear'}, default=None
        A trained embedding of each input feature into ``embedding_size``
        values before the first layer (Gorishniy et al., "On Embeddings for
        Numerical Features in Tabular Deep Learning", NeurIPS 2022), which
        then reads k * ``embedding_size`` values, feature by feature, for
        the k embedded features (the first ``embedded_features``, by
        default all ``n_features_in_``), then the columns passed through.
        'periodic' is their PLR embedding,
        ``rtdl_num_embeddings.PeriodicEmbeddings(n_features, embedding_size,
        n_frequencies=n_frequencies, frequency_init_scale=frequency_scale,
        lite=False)``: per feature j, v = 2 pi c_j x_j (``n_frequencies``
        trained frequencies c_j, ``embedding_frequencies_[0]``), then
        ``relu([cos v, sin v] @ W_j + b_j)``, one linear map per feature
        (``embedding_coefs_[0]`` (k, 2 n_frequencies,
        embedding_size), ``embedding_intercepts_[0]`` (k,
        embedding_size)). 'piecewise_linear' is
        ``rtdl_num_embeddings.PiecewiseLinearEmbeddings(bins, embedding_size,
        activation=False, version="B")``, bins ``n_bins`` quantile bins of
        each feature of the X given to the first fit (as
        :class:`PiecewiseLinearEncoder`): per feature, x_j a_j + b_j (a_j:
        ``embedding_slopes_[0]``) plus its piecewise-linear encoding times
        W_j (``embedding_coefs_[0]``, (k, n_bins,
        embedding_size), starting at 0); the bins' maps are
        ``embedding_bin_weights_``, ``embedding_bin_biases_`` and
        ``embedding_bin_counts_`` (not trained). Drawn as rtdl's from
        ``random_state`` after the weights; no L2 penalty (``alpha``); an
        ensemble's members share it. Dense X only; not exported to ONNX.
        (cbp addition)
    embedding_size : int >= 1, default=24
        d, the values each feature is embedded into (rtdl's
        ``d_embedding``). (cbp addition)
    n_frequencies : int >= 1, default=48
        The periodic embedding's frequencies per feature (rtdl's
        ``n_frequencies``, k in the paper). (cbp addition)
    frequency_scale : float > 0, default=0.01
        The periodic embedding's starting frequencies are normal(0,
        frequency_scale) truncated at 3 frequency_scale (rtdl's
        ``frequency_init_scale``, sigma in the paper: the hyper-parameter
        that matters most). (cbp addition)
    n_bins : int >= 2, default=48
        The piecewise-linear embedding's bins per feature (fewer for a
        feature of few distinct values; rtdl's ``compute_bins``'
        ``n_bins``). (cbp addition)
    embedded_features : int >= 1 or None, default=None
        With ``numeric_embedding``, embed only the first k columns (k <=
        ``n_features_in_``; None: every column); the others reach the first
        layer unchanged, after the embeddings, which then reads
        ``k * embedding_size + n_features_in_ - k`` values per row (torch's
        ``cat([emb(X[:, :k]).flatten(1), X[:, k:]], 1)``). (cbp addition)
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
        or None where the layer has none (ensemble_size > 1); with
        ``input_scaling=True``, ``input_scalings_[0]`` is s, of shape
        ``(n_features_in_,)``, and every other entry None.
    embedding_coefs_, embedding_intercepts_ : list of one ndarray
        The numeric embedding's per-feature linear map (``numeric_embedding``).
    embedding_frequencies_, embedding_slopes_ : list of one ndarray
        The periodic embedding's frequencies, the piecewise-linear one's
        slopes (trained; the other one is absent).
    embedding_bin_weights_, embedding_bin_biases_ : list of one ndarray
        The piecewise-linear embedding's bins: each feature's affine maps,
        (k, n_bins), from the X of the first fit.
    embedding_bin_counts_ : list of one ndarray
        The piecewise-linear embedding's number of bins of each feature,
        (k,).
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
        numeric_embedding=None,
        embedding_size=24,
        n_frequencies=48,
        frequency_scale=0.01,
        n_bins=48,
        embedded_features=None,
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
            numeric_embedding=numeric_embedding,
            embedding_size=embedding_size,
            n_frequencies=n_frequencies,
            frequency_scale=frequency_scale,
            n_bins=n_bins,
            embedded_features=embedded_features,
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
        numeric_embedding=None,
        embedding_size=24,
        n_frequencies=48,
        frequency_scale=0.01,
        n_bins=48,
        embedded_features=None,
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
            numeric_embedding=numeric_embedding,
            embedding_size=embedding_size,
            n_frequencies=n_frequencies,
            frequency_scale=frequency_scale,
            n_bins=n_bins,
            embedded_features=embedded_features,
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
