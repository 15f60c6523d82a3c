"""TabularMLPClassifier and TabularMLPRegressor: a table in, a tuned network
out -- the recipe of the strong tabular MLPs (Gorishniy et al. 2022 and
2025, TabM; Holzmueller et al. 2024, RealMLP) on cbp's kernel.

fit(X, y):
    1. TableEncoder: numeric columns robust-scaled with smooth clipping
       (RealMLP's; missing values: median plus an indicator column) and
       piecewise-linear encoded in 16 quantile bins; categorical columns
       one-hot (rare and unseen categories share a column); float32.
    2. A cbp network (MLPClassifier / MLPRegressor) trained on it with the
       settings of ``size`` (SIZES), batches scaled with the rows: an ensemble of
       ``ensemble_size`` members, AdamW, dropout, label smoothing (classes),
       a cosine learning-rate decay, and early stopping that restores the
       best epoch: with ``n_folds`` (5) one network per fold, each trained on
       the other folds and stopped on its own, predictions averaged; with
       one fold, on a stratified ``validation_fraction`` of the rows.
       Regression targets are standardised for training.
"""

import json
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from . import _bagging, _persistence
from ._multilayer_perceptron import MLPClassifier, MLPRegressor
from ._options import EMBEDDINGS
from ._sklearn_compat import CallbackSupportMixin, Interval, StrOptions, _fit_context
from ._preprocessing import PiecewiseLinearEncoder
from ._table_encoder import TableEncoder
from ._threads import blas_limit


@dataclass(frozen=True)
class Size:
    """A network size: its hidden layers."""

    name: str
    hidden_layer_sizes: tuple


def _registry(*entries):
    return {entry.name: entry for entry in entries}


# Measured on benchmarks/tabular.py's development suite (user guide, "Tables";
# 19 tables, 8 members, one thread): "small" scored as high as the larger
# ones (mean score over HistGradientBoosting's on 3 splits: +0.0107, "medium"
# +0.0110; on one split +0.0131, "medium" +0.0116, "large" +0.0102) in 0.57x
# "medium"'s median fit time and 0.15x "large"'s -- it is the default; the
# larger ones are there for larger data
SIZES = _registry(
    Size("small", (64, 64)),
    Size("medium", (128, 128)),
    Size("large", (256, 256, 256)),
)

# The encoding every size shares (TableEncoder parameters): RealMLP's robust
# scaling with smooth clipping plus a 16-bin piecewise-linear encoding of each
# numeric column. The bins: on the suite, 19 sets x 2 splits, (128, 128),
# k = 8, +0.007 mean score over the quantile transformation alone, in 0.8x the
# median time (it stops earlier); robust instead of quantile, with 5 folds and
# 60 epochs: +0.0017 mean score (19 sets x 3 splits, one thread)
ENCODING = dict(numeric="robust", n_bins=16)

# The training settings every size shares (cbp network parameters)
NETWORK = dict(
    activation="relu",
    solver="adamw",
    learning_rate="cosine",
    learning_rate_init=4e-3,
    weight_decay=3e-4,
    alpha=0.0,
    dropout=0.1,
    ensemble="batch",
    early_stopping=True,
    n_iter_no_change=16,
    tol=1e-4,
)

# The numeric embedding's settings (its entries' estimator parameters,
# _options.EMBEDDINGS), passed to the network as they are
EMBEDDING_SETTINGS = {name: constraints for embedding in EMBEDDINGS.values()
                      for name, constraints in embedding.parameters.items()}

# Fewer rows than this train without a validation split (too few to score)
MIN_VALIDATION_ROWS = 20


def batch_size_for(n_rows):
    """Rows per mini-batch: about n/32, a power of two in [32, 256]."""
    return int(2 ** np.clip(np.round(np.log2(max(n_rows, 1) / 32)), 5, 8))


class _TabularBase(CallbackSupportMixin, BaseEstimator):
    """What the two estimators share: parameters, encoding, the network."""

    _parameter_constraints: dict = {
        "size": [StrOptions(set(SIZES))],
        "ensemble_size": [Interval(Integral, 1, None, closed="left")],
        "n_folds": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "categorical_features": [StrOptions({"from_dtype"}), "array-like", None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "encoder_params": [dict, None],
        "network_params": [dict, None],
        "numeric_embedding": [None, StrOptions(set(EMBEDDINGS))],
        **EMBEDDING_SETTINGS,
    }

    # (TabularMLPRegressor's parameters; the classifier adds label_smoothing)
    def __init__(self, size="small", *, ensemble_size=4, n_folds=5, max_iter=60,
                 validation_fraction=0.2, categorical_features="from_dtype", n_jobs=-1,
                 random_state=None, verbose=False, encoder_params=None, network_params=None,
                 numeric_embedding=None, embedding_size=24, n_frequencies=48,
                 frequency_scale=0.01, n_bins=48):
        self.size = size
        self.ensemble_size = ensemble_size
        self.n_folds = n_folds
        self.n_jobs = n_jobs
        self.max_iter = max_iter
        self.validation_fraction = validation_fraction
        self.categorical_features = categorical_features
        self.random_state = random_state
        self.verbose = verbose
        self.encoder_params = encoder_params
        self.network_params = network_params
        self.numeric_embedding = numeric_embedding
        self.embedding_size = embedding_size
        self.n_frequencies = n_frequencies
        self.frequency_scale = frequency_scale
        self.n_bins = n_bins

    def _encoder(self):
        params = dict(ENCODING, categorical_features=self.categorical_features)
        params.update(self.encoder_params or {})
        return TableEncoder(**params)

    def _network(self, n_train, validation, random_state):
        """The unfitted network for n_train training rows, early-stopped on
        validation rows when there are (validation: bool)."""
        size = SIZES[self.size]
        batch_size = min(batch_size_for(n_train), max(n_train, 1))
        params = dict(NETWORK, hidden_layer_sizes=size.hidden_layer_sizes,
                      ensemble_size=self.ensemble_size, max_iter=self.max_iter,
                      batch_size=batch_size,
                      validation_fraction=self.validation_fraction,
                      random_state=random_state, verbose=self.verbose)
        if not validation:
            params["early_stopping"] = False
        params.update(self._embedding_params())
        params.update(self._task_network_params())
        params.update(self.network_params or {})
        network = self._Network()
        unknown = set(params) - set(network.get_params())
        if unknown:
            raise ValueError(f"network_params has unknown parameter(s) {sorted(unknown)}; "
                             f"see {self._Network.__name__}'s parameters.")
        return network.set_params(**params)

    def _embedding_params(self):
        """The network's numeric embedding (none by default): of the fitted
        encoder's numeric columns, the first ``len(encoder_.medians_)`` of
        its output (numeric values first, then missing-value indicators,
        bin codes and categories), the others passed through. A table
        without numeric columns has nothing to embed: no embedding."""
        n_numeric = len(self.encoder_.medians_)
        if self.numeric_embedding is None or n_numeric == 0:
            return {}
        return dict(numeric_embedding=self.numeric_embedding, embedded_features=n_numeric,
                    **{name: getattr(self, name) for name in EMBEDDING_SETTINGS})

    def _one_network(self, n_rows):
        """The network of a fit without folds: it splits off its own
        validation_fraction of the n_rows rows (when that is at least
        MIN_VALIDATION_ROWS rows)."""
        validation = n_rows * self.validation_fraction >= MIN_VALIDATION_ROWS
        n_train = n_rows - int(np.ceil(n_rows * self.validation_fraction)) * validation
        return self._network(n_train, validation, self.random_state)

    def _bagged(self, n_rows):
        """Whether a fit of n_rows rows trains n_folds networks: n_folds > 1
        and every fold at least MIN_VALIDATION_ROWS rows."""
        return self.n_folds > 1 and n_rows // self.n_folds >= MIN_VALIDATION_ROWS

    def _task_network_params(self):
        return {}

    def _fit_network(self, X, y, sample_weight):
        self.encoder_ = self._encoder().fit(X)
        self.n_features_in_ = self.encoder_.n_features_in_
        if hasattr(self.encoder_, "feature_names_in_"):
            self.feature_names_in_ = self.encoder_.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        Z = self.encoder_.transform(X)
        # (the folds index y and the weights by row: their lengths first)
        check_consistent_length(Z, y, sample_weight)
        n_rows = Z.shape[0]
        callbacks = getattr(self, "_skl_callbacks", None)
        if self._bagged(n_rows):
            random_state = check_random_state(self.random_state)
            split_seed, *seeds = random_state.randint(np.iinfo(np.int32).max,
                                                      size=self.n_folds + 1)
            fold_rows = _bagging.folds(n_rows, y, self.n_folds, is_classifier(self),
                                       split_seed)
            networks = [self._network(len(train), True, seed)
                        for (train, _), seed in zip(fold_rows, seeds, strict=True)]
        else:
            fold_rows = None
            networks = [self._one_network(n_rows)]
        if callbacks:
            for network in networks:
                network.set_callbacks(*callbacks)
        # BLAS on one thread (unless network_params asks for blocks on
        # threads): these products are small, BLAS's threads gained 5-12 % on an
        # idle 2-core machine and can cost many times that on a busy one,
        # and its results may depend on its thread count. (Blocks on two
        # OpenMP threads cost 1.5x here: the synchronisation per batch
        # outweighs products this small.) The folds run on threads of their
        # own (n_jobs), one after the other when callbacks watch them.
        with blas_limit(1 if networks[0].block_rows is None else None):
            if fold_rows is None:
                networks[0].fit(Z, y, sample_weight=sample_weight)
            else:
                networks = _bagging.fit_folds(networks, Z, y, sample_weight, fold_rows,
                                              1 if callbacks else self.n_jobs)
        self.networks_ = networks
        self.network_ = networks[0]
        if fold_rows is None:
            self.__dict__.pop("oof_score_", None)
        else:
            self.oof_score_ = self._out_of_fold_score(Z, y, sample_weight, fold_rows)
        return self

    def _out_of_fold_score(self, Z, y, sample_weight, fold_rows):
        """The score (accuracy, or R^2) of the out-of-fold predictions on the
        rows of the validation parts (every row but a lone class's)."""
        networks = self.networks_
        outputs = _bagging.out_of_fold(self._network_output, networks, Z, fold_rows)
        rows = np.sort(np.concatenate([validation for _, validation in fold_rows]))
        weights = None if sample_weight is None else np.asarray(sample_weight)[rows]
        return float(self._score_outputs(y[rows], outputs[rows], weights))

    def _predicted_outputs(self, Z):
        """The networks' mean output on encoded rows Z (one network: its own)."""
        networks = self._fitted_networks()
        if len(networks) == 1:
            return self._network_output(networks[0], Z)
        return np.mean([self._network_output(network, Z) for network in networks], axis=0)

    def _fitted_networks(self):
        check_is_fitted(self, "network_")
        # (a model pickled before bagging has no networks_)
        return self.__dict__.get("networks_") or [self.network_]

    def _encoded(self, X):
        check_is_fitted(self, "network_")
        return self.encoder_.transform(X)

    # attributes of the training, from the network
    @property
    def n_iter_(self):
        return self.network_.n_iter_

    @property
    def loss_curve_(self):
        return self.network_.loss_curve_

    @property
    def validation_scores_(self):
        return self.network_.validation_scores_

    @property
    def best_validation_score_(self):
        return self.network_.best_validation_score_

    def save(self, path):
        """Save the fitted model (encoder and network) to ``path`` without
        pickle; ``cbp.load(path)`` reads it back and predicts exactly as
        this model."""
        _persistence.save(self, path)

    # ---------------------------------------------------------- archives

    def _archive_arrays(self, network_arrays):
        """The archive entries of this model (see _persistence.save): the
        network's under network/ (with folds: fold i's under network<i>/),
        the encoder's under encoder/, the fitted attributes under attr/."""
        networks = self._fitted_networks()
        arrays = {}
        for i, network in enumerate(networks):
            prefix = "network/" if len(networks) == 1 else f"network{i}/"
            arrays.update({prefix + key: value for key, value in network_arrays(network).items()})
        for key, value in _encoder_arrays(self.encoder_).items():
            arrays[f"encoder/{key}"] = value
        for name in self._ARCHIVED + ("oof_score_",) * hasattr(self, "oof_score_"):
            arrays[f"attr/{name}"] = np.asarray(getattr(self, name))
        return arrays

    @classmethod
    def _from_archive(cls, arrays, build_network, require):
        params = json.loads(str(arrays["__params__"]))
        require(isinstance(params, dict) and set(params) <= set(cls().get_params()),
                "unknown parameters")
        for name in ("encoder_params", "network_params"):
            if isinstance(params.get(name), dict):
                params[name] = {k: tuple(v) if isinstance(v, list) else v
                                for k, v in params[name].items()}
        model = cls(**params)
        try:
            model._validate_params()
        except (ValueError, TypeError) as exc:
            require(False, f"invalid parameters: {exc}")
        n_folds = 0
        while any(key.startswith(f"network{n_folds}/") for key in arrays):
            n_folds += 1
        prefixes = [f"network{i}/" for i in range(n_folds)] or ["network/"]
        require(n_folds in (0, model.n_folds), f"{n_folds} fold networks for n_folds="
                f"{model.n_folds}")
        networks = []
        for prefix in prefixes:
            network = build_network(_sub(arrays, prefix))
            require(isinstance(network, cls._Network), "the network is not a "
                    + cls._Network.__name__)
            networks.append(network)
        model.networks_ = networks
        model.network_ = networks[0]
        model.encoder_ = _encoder_from_arrays(_sub(arrays, "encoder/"), require)
        require(all(model.encoder_.n_features_out_ == network.n_features_in_
                    for network in networks),
                "the encoder's columns do not match the network's inputs")
        model.n_features_in_ = model.encoder_.n_features_in_
        if hasattr(model.encoder_, "feature_names_in_"):
            model.feature_names_in_ = model.encoder_.feature_names_in_
        for name in cls._ARCHIVED + ("oof_score_",) * (n_folds > 0):
            require(f"attr/{name}" in arrays, f"missing attr/{name}")
            setattr(model, name, np.array(arrays[f"attr/{name}"]))
        if n_folds:
            model.oof_score_ = float(model.oof_score_)
        return model

    def _json_params(self):
        def plain(value):
            if isinstance(value, np.generic):
                return value.item()
            if isinstance(value, (tuple, list, np.ndarray)):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if value is None or isinstance(value, (bool, Integral, Real, str)):
                return value
            raise ValueError(f"cannot save the parameter value {value!r}: not plain data")
        params = self.get_params(deep=False)
        if not (params["random_state"] is None or isinstance(params["random_state"], Integral)):
            params["random_state"] = None
        return {name: plain(value) for name, value in params.items()}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags


def _require_y(estimator, y):
    """``y`` as an array, refused with a message naming the problem when it
    is missing or holds no sample (checked before anything reads its shape)."""
    if y is None:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the "
                         "target y is None.")
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(f"y must hold one target per row, got a scalar: {y!r}.")
    if len(y) == 0:
        raise ValueError(f"{type(estimator).__name__} needs at least one sample to fit: "
                         f"y has 0 rows (shape={y.shape}).")
    return y


def _sub(arrays, prefix):
    return {key[len(prefix):]: value for key, value in arrays.items()
            if key.startswith(prefix)}


_ENCODER_ARRAYS = ("is_categorical_", "medians_", "has_indicator_", "has_infrequent_",
                   "quantiles_", "references_", "centers_", "scales_", "feature_names_in_")


def _encoder_arrays(encoder):
    arrays = {"params": np.array(json.dumps(
        {k: (list(v) if isinstance(v, (tuple, np.ndarray)) else v)
         for k, v in encoder.get_params().items()}, default=str))}
    for name in _ENCODER_ARRAYS:
        if hasattr(encoder, name):
            value = np.asarray(getattr(encoder, name))
            arrays[name] = value.astype(str) if value.dtype == object else value
    for j, categories in enumerate(encoder.categories_):
        arrays[f"categories_/{j}"] = np.asarray(categories, dtype=str)
    if encoder.bin_encoder_ is not None:
        for j, edges in enumerate(encoder.bin_encoder_.bin_edges_):
            arrays[f"bin_edges_/{j}"] = np.asarray(edges, dtype=np.float64)
    return arrays


def _encoder_from_arrays(arrays, require):
    """A fitted TableEncoder from _encoder_arrays' entries, checked."""
    require("params" in arrays and "is_categorical_" in arrays, "no encoder")
    encoder = TableEncoder(**json.loads(str(arrays["params"])))
    try:
        encoder._validate_params()
    except (ValueError, TypeError) as exc:
        require(False, f"invalid encoder parameters: {exc}")
    for name in _ENCODER_ARRAYS:
        if name in arrays:
            setattr(encoder, name, np.array(arrays[name]))
    if hasattr(encoder, "feature_names_in_"):
        encoder.feature_names_in_ = encoder.feature_names_in_.astype(object)
    mask = encoder.is_categorical_
    require(mask.dtype == bool and mask.ndim == 1, "is_categorical_ must be a bool vector")
    n_numeric, n_categorical = int((~mask).sum()), int(mask.sum())
    encoder.n_features_in_ = len(mask)
    require(encoder.medians_.shape == (n_numeric,) and np.isfinite(encoder.medians_).all(),
            "medians_ does not match the numeric columns")
    require(encoder.has_indicator_.shape == (n_numeric,), "has_indicator_ has a wrong shape")
    if encoder.numeric == "quantile":
        require(encoder.quantiles_.ndim == 2 and encoder.quantiles_.shape[1] == n_numeric
                and encoder.references_.shape == (encoder.quantiles_.shape[0],)
                and (np.diff(encoder.quantiles_, axis=0) >= 0).all(),
                "quantiles_ are not each column's increasing quantiles")
    else:
        require(encoder.centers_.shape == (n_numeric,) and np.isfinite(encoder.centers_).all()
                and encoder.scales_.shape == (n_numeric,) and np.isfinite(encoder.scales_).all()
                and (encoder.scales_ >= 0).all(),
                "centers_ and scales_ must be finite, one per numeric column, "
                "scales_ non-negative")
    encoder.categories_ = []
    for j in range(n_categorical):
        require(f"categories_/{j}" in arrays, f"missing encoder categories_/{j}")
        encoder.categories_.append(np.array(arrays[f"categories_/{j}"], dtype=str))
    require(encoder.has_infrequent_.shape == (n_categorical,), "has_infrequent_ has a wrong shape")
    encoder.bin_encoder_ = None
    if "bin_edges_/0" in arrays:
        edges = [np.array(arrays[f"bin_edges_/{j}"]) for j in range(n_numeric)
                 if f"bin_edges_/{j}" in arrays]
        require(len(edges) == n_numeric, "bin_edges_ do not match the numeric columns")
        require(all(e.ndim == 1 and len(e) >= 1 and np.isfinite(e).all()
                    and (np.diff(e) > 0).all() for e in edges),
                "bin_edges_ must be finite and strictly increasing")
        encoder.bin_encoder_ = PiecewiseLinearEncoder(n_bins=encoder.n_bins)._set_edges(edges)
    encoder.n_features_out_ = len(encoder.get_feature_names_out())
    return encoder


@_persistence.register
class TabularMLPClassifier(ClassifierMixin, _TabularBase):
    """A network for a table's classes: encoding, ensemble and training
    chosen for tabular data.

    Takes what ``HistGradientBoostingClassifier`` takes -- a DataFrame with
    numeric and categorical (category, object, string, bool) columns and
    missing values, or an array -- and needs nothing else.

    Parameters
    ----------
    size : {'small', 'medium', 'large'}, default='small'
        The network: two hidden layers of 64 / two of 128 / three of 256
        units (``SIZES``); 'medium' takes about 1.7 times the time of
        'small', 'large' about 7 times (they scored no higher on the
        development suite).
    ensemble_size : int >= 1, default=4
        Members trained as one (TabM's BatchEnsemble: shared weights,
        per-member scalings); predictions average their probabilities.
        Time grows about linearly with it (8: +0.0003 mean score on the
        development suite, in 2.1 times the time).
    n_folds : int >= 1, default=5
        Bagging over all the rows: n_folds networks, each trained on the
        other folds and early-stopped on its own (stratified, for classes),
        predictions averaged; ``oof_score_`` scores each row by the network
        that did not train on it. 1: one network, early-stopped on a
        ``validation_fraction`` of the rows. Folds of fewer than 20 rows:
        one network, without a split.
    label_smoothing : float in [0, 1), default=0.1
        Training targets y(1 - eps) + eps / n_classes (MLPClassifier's).
    max_iter : int, default=60
        At most this many epochs; the learning rate decays from 4e-3 to 0
        along a cosine over them, and training stops after 16 epochs
        without a better validation score, keeping the best epoch's weights.
    validation_fraction : float in (0, 1), default=0.2
        Without folds, the rows (stratified) held out to choose the epoch. Fewer than
        20 held-out rows: no split, all ``max_iter`` epochs are trained.
    categorical_features : 'from_dtype', array-like or None, default='from_dtype'
        The categorical columns (TableEncoder's parameter).
    n_jobs : int or None, default=-1
        The folds' threads (joblib's ``n_jobs``: -1, every core; None, one
        unless a ``joblib.parallel_config`` says otherwise, whose backend --
        Dask, Ray -- can also spread them). Each network runs BLAS on one
        thread; the model is the same on any number of threads. With
        callbacks the folds run one after the other.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the initial weights, shuffling and dropout.
    verbose : bool, default=False
        Print the network's progress.
    encoder_params : dict or None, default=None
        For experts: TableEncoder parameters that override the defaults
        (``ENCODING``: ``{"numeric": "robust", "n_bins": 16}``; e.g.
        ``{"numeric": "quantile", "n_bins": None}``).
    network_params : dict or None, default=None
        For experts: MLPClassifier parameters that override the settings
        chosen here (``NETWORK``, the size's layers, and the batch size:
        about n/32 rows, a power of two in [32, 256]; e.g.
        ``{"hidden_layer_sizes": (64,), "dropout": 0.2}``).
    numeric_embedding : {'periodic', 'piecewise_linear'} or None, default=None
        A trained embedding (MLPClassifier's ``numeric_embedding``) of the
        encoded numeric columns only (the network's ``embedded_features``:
        the encoder puts them first); indicators, bin codes and categories
        reach the first layer unchanged. A table without numeric columns
        trains without one.
    embedding_size, n_frequencies, frequency_scale, n_bins
        The embedding's settings (MLPClassifier's; ``n_bins`` is the
        piecewise-linear embedding's bins, not the encoder's).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    encoder_ : TableEncoder
        The fitted column encoder.
    network_ : MLPClassifier
        The fitted network, reading ``encoder_``'s output (with folds: the
        first fold's).
    networks_ : list of MLPClassifier
        Every fold's network (one without folds).
    oof_score_ : float, with folds
        The accuracy of the out-of-fold predictions.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when fitted on a DataFrame
    n_iter_, loss_curve_, validation_scores_, best_validation_score_
        The network's (``network_``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cbp import TabularMLPClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({
    ...     "x": rng.normal(size=300),
    ...     "colour": rng.choice(["red", "blue", None], size=300)})
    >>> y = (X["x"] > 0) ^ (X["colour"] == "red")
    >>> model = TabularMLPClassifier(size="small", ensemble_size=4,
    ...                              random_state=0).fit(X, y)
    >>> model.score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = {
        **_TabularBase._parameter_constraints,
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }
    _Network = MLPClassifier
    _ARCHIVED = ("classes_",)

    def __init__(self, size="small", *, ensemble_size=4, n_folds=5, label_smoothing=0.1,
                 max_iter=60, validation_fraction=0.2, categorical_features="from_dtype",
                 n_jobs=-1, random_state=None, verbose=False, encoder_params=None,
                 network_params=None, numeric_embedding=None, embedding_size=24,
                 n_frequencies=48, frequency_scale=0.01, n_bins=48):
        super().__init__(size, ensemble_size=ensemble_size, n_folds=n_folds, max_iter=max_iter,
                         validation_fraction=validation_fraction,
                         categorical_features=categorical_features, n_jobs=n_jobs,
                         random_state=random_state,
                         verbose=verbose, encoder_params=encoder_params,
                         network_params=network_params, numeric_embedding=numeric_embedding,
                         embedding_size=embedding_size, n_frequencies=n_frequencies,
                         frequency_scale=frequency_scale, n_bins=n_bins)
        self.label_smoothing = label_smoothing

    def _task_network_params(self):
        return {"label_smoothing": self.label_smoothing}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Encode X's columns and train the network on them.

        X : DataFrame or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), class labels
        sample_weight : array-like of shape (n_samples,) or None
        """
        y = _require_y(self, y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim != 1:
            raise ValueError(f"y must be one column of class labels, got shape {y.shape}.")
        check_classification_targets(y)
        self._fit_network(X, y, sample_weight)
        self.classes_ = self.network_.classes_
        return self

    @staticmethod
    def _network_output(network, Z):
        return network.predict_proba(Z)

    def _score_outputs(self, y, probabilities, sample_weight):
        return accuracy_score(y, self.networks_[0].classes_[np.argmax(probabilities, axis=1)],
                              sample_weight=sample_weight)

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes), in ``classes_`` order
        (with folds: the mean of the folds' networks')."""
        return self._predicted_outputs(self._encoded(X))

    def predict_log_proba(self, X):
        """Logarithms of ``predict_proba``."""
        Z = self._encoded(X)
        if len(self._fitted_networks()) == 1:
            return self.network_.predict_log_proba(Z)
        with np.errstate(divide="ignore"):
            return np.log(self._predicted_outputs(Z))

    def predict(self, X):
        """The most probable class of each row, (n_samples,)."""
        Z = self._encoded(X)
        if len(self._fitted_networks()) == 1:
            return self.network_.predict(Z)
        return self.classes_[np.argmax(self._predicted_outputs(Z), axis=1)]


@_persistence.register
class TabularMLPRegressor(RegressorMixin, _TabularBase):
    """A network for a table's real targets: encoding, ensemble and training
    chosen for tabular data.

    Takes what ``HistGradientBoostingRegressor`` takes -- a DataFrame with
    numeric and categorical (category, object, string, bool) columns and
    missing values, or an array -- and needs nothing else. The targets are
    standardised for training; predictions are on their scale.

    Parameters
    ----------
    size : {'small', 'medium', 'large'}, default='small'
        The network: two hidden layers of 64 / two of 128 / three of 256
        units (``SIZES``); 'medium' takes about 1.7 times the time of
        'small', 'large' about 7 times (they scored no higher on the
        development suite).
    ensemble_size : int >= 1, default=4
        Members trained as one (TabM's BatchEnsemble); predictions average
        their outputs. Time grows about linearly with it.
    n_folds : int >= 1, default=5
        Bagging over all the rows: n_folds networks, each trained on the
        other folds and early-stopped on its own (stratified, for classes),
        predictions averaged; ``oof_score_`` scores each row by the network
        that did not train on it. 1: one network, early-stopped on a
        ``validation_fraction`` of the rows. Folds of fewer than 20 rows:
        one network, without a split.
    max_iter : int, default=60
        At most this many epochs; the learning rate decays from 4e-3 to 0
        along a cosine over them, and training stops after 16 epochs
        without a better validation R^2, keeping the best epoch's weights.
    validation_fraction : float in (0, 1), default=0.2
        Without folds, the rows held out to choose the epoch. Fewer than 20 held-out
        rows: no split, all ``max_iter`` epochs are trained.
    categorical_features : 'from_dtype', array-like or None, default='from_dtype'
        The categorical columns (TableEncoder's parameter).
    n_jobs : int or None, default=-1
        The folds' threads (joblib's ``n_jobs``: -1, every core; None, one
        unless a ``joblib.parallel_config`` says otherwise, whose backend --
        Dask, Ray -- can also spread them). Each network runs BLAS on one
        thread; the model is the same on any number of threads. With
        callbacks the folds run one after the other.
    random_state : int, RandomState instance or None, default=None
    verbose : bool, default=False
    encoder_params : dict or None, default=None
        For experts: TableEncoder parameters that override the defaults.
    network_params : dict or None, default=None
        For experts: MLPRegressor parameters that override the settings
        chosen here.
    numeric_embedding : {'periodic', 'piecewise_linear'} or None, default=None
        A trained embedding (MLPRegressor's ``numeric_embedding``) of the
        encoded numeric columns only (the network's ``embedded_features``:
        the encoder puts them first); indicators, bin codes and categories
        reach the first layer unchanged. A table without numeric columns
        trains without one.
    embedding_size, n_frequencies, frequency_scale, n_bins
        The embedding's settings (MLPRegressor's; ``n_bins`` is the
        piecewise-linear embedding's bins, not the encoder's).

    Attributes
    ----------
    encoder_ : TableEncoder
    network_ : MLPRegressor
        Trained on the standardised targets (y - ``y_mean_``) / ``y_scale_``
        (with folds: the first fold's).
    networks_ : list of MLPRegressor
        Every fold's network (one without folds).
    oof_score_ : float, with folds
        The R^2 of the out-of-fold predictions.
    y_mean_, y_scale_ : ndarray of shape (n_outputs,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when fitted on a DataFrame
    n_iter_, loss_curve_, validation_scores_, best_validation_score_
        The network's (``network_``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cbp import TabularMLPRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({
    ...     "x": rng.normal(size=300),
    ...     "colour": rng.choice(["red", "blue"], size=300)})
    >>> y = np.sin(X["x"]) + (X["colour"] == "red")
    >>> model = TabularMLPRegressor(size="small", ensemble_size=4,
    ...                             random_state=0).fit(X, y)
    >>> model.score(X, y) > 0.9
    True
    """

    _Network = MLPRegressor
    _ARCHIVED = ("y_mean_", "y_scale_")

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Encode X's columns and train the network on the standardised y.

        X : DataFrame or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,) or None
        """
        y = _require_y(self, y)
        if y.dtype.kind == "c":
            raise ValueError("Complex data not supported.")
        if y.dtype.kind not in "biuf":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError("y must hold numbers for a regressor.") from None
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise ValueError("y holds NaN or infinite values.")
        y2 = y.reshape(len(y), -1)
        self.y_mean_ = y2.mean(axis=0)
        scale = y2.std(axis=0)
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        target = (y2 - self.y_mean_) / self.y_scale_
        self._fit_network(X, target if y.ndim == 2 else target.ravel(), sample_weight)
        return self

    @staticmethod
    def _network_output(network, Z):
        return network.predict(Z)

    def _score_outputs(self, y, outputs, sample_weight):
        # (R^2 of the standardised targets: that of the targets)
        return r2_score(y, outputs.reshape(y.shape), sample_weight=sample_weight)

    def predict(self, X):
        """Predicted targets, (n_samples,) or (n_samples, n_outputs) (with
        folds: the mean of the folds' networks')."""
        out = self._predicted_outputs(self._encoded(X))
        shape = (-1,) if out.ndim == 1 else (-1, out.shape[1])
        return (out.reshape(len(out), -1) * self.y_scale_ + self.y_mean_).reshape(shape)
