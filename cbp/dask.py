"""Train and predict on data larger than memory, partition by partition, with Dask.

    from cbp.dask import Incremental

    model = Incremental(MLPClassifier(), max_epochs=10, random_state=0)
    model.fit(X, y)                  # X, y: a Dask DataFrame/Series or Array
    model.predict(X).compute()       # lazy: a Dask Array until computed

``Incremental`` wraps any estimator with ``partial_fit`` (cbp's
``MLPClassifier`` and ``MLPRegressor`` with a stochastic solver) and trains
it over the partitions of Dask collections: each epoch visits every
partition once, in an order shuffled from ``random_state``, and calls
``partial_fit`` on it. Only Dask's public API is used (``partitions[i]``
and ``blocks[i]``, ``dask.compute``, ``map_blocks``, ``map_partitions``,
``dask.delayed``, ``from_delayed``), so whichever scheduler is active
computes the partitions: a ``distributed.Client``'s workers, or the local
threads.

This is the only cbp module that imports dask; ``import cbp`` does not.
"""

import copy
import uuid
import warnings
from numbers import Integral

import dask
import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier, is_regressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

__all__ = ["Incremental"]


# ---------------------------------------------------------------------------
# Collections as lists of partitions


def _is_frame_like(collection):
    """A Dask DataFrame or Series (told apart from an Array without
    importing dask.dataframe, which needs pandas and pyarrow)."""
    return dask.is_dask_collection(collection) and hasattr(collection, "npartitions") \
        and hasattr(collection, "map_partitions")


def _check_collection(collection, name, ndims):
    """collection, its columns gathered into one block if it is a Dask Array
    split across columns; a TypeError or ValueError for anything else."""
    if isinstance(collection, da.Array):
        if collection.ndim not in ndims:
            raise ValueError(f"{name} must be a Dask Array of {' or '.join(map(str, ndims))} "
                             f"dimension(s); it has {collection.ndim} (shape "
                             f"{collection.shape}).")
        if collection.ndim == 2 and collection.numblocks[1] > 1:
            collection = collection.rechunk({1: -1})  # (one row block at a time)
        return collection
    if _is_frame_like(collection):
        if collection.ndim not in ndims:
            raise ValueError(f"{name} must be a Dask DataFrame, not a Series." if ndims == (2,)
                             else f"{name} has {collection.ndim} dimensions.")
        return collection
    what = type(collection).__module__.split(".")[0] + "." + type(collection).__qualname__
    raise TypeError(
        f"{name} must be a Dask DataFrame, Series or Array (dask.dataframe or "
        f"dask.array), not {what}. For data in memory, call the estimator's own "
        f"fit, partial_fit or predict; dask.array.from_array(x, chunks=...) or "
        f"dask.dataframe.from_pandas(frame, npartitions=...) split one into partitions.")


def _lengths(collection):
    """The rows of each partition: a tuple of int, NaN where Dask does not
    know them (a DataFrame's, an Array's of unknown chunk sizes)."""
    if isinstance(collection, da.Array):
        return tuple(collection.chunks[0])
    return (np.nan,) * collection.npartitions


def _n_rows(part):
    return part.shape[0]


def _partition(collection, i):
    """Partition i of a Dask collection, as a collection of its own: a
    DataFrame's ``partitions[i]``, an Array's ``blocks[i]`` (its row block).

    By the index of the collection as written, not of its optimised graph:
    Dask may merge small Parquet files into fewer partitions when it reads
    only some columns (y = frame["label"]), and ``to_delayed`` would then
    split X and y differently."""
    i = int(i)  # (dask-expr takes no NumPy integer)
    return collection.partitions[i] if _is_frame_like(collection) else collection.blocks[i]


class _Partitions:
    """X, y and sample_weight, checked to have the same partitions;
    ``compute(i)`` materialises partition i of each (on the client: one
    partition's data).

    Parameters
    ----------
    X : Dask DataFrame, or Dask Array of shape (n_samples, n_features)
    y, sample_weight : Dask Series, DataFrame or Array, or None
        Of shape (n_samples,) or (n_samples, n_outputs); (n_samples,).
    """

    def __init__(self, X, y=None, sample_weight=None):
        named = [("X", _check_collection(X, "X", (2,)))]
        if y is not None:
            named.append(("y", _check_collection(y, "y", (1, 2))))
        if sample_weight is not None:
            named.append(("sample_weight",
                          _check_collection(sample_weight, "sample_weight", (1,))))
        self.names = [name for name, _ in named]
        self.collections = [collection for _, collection in named]
        lengths = [_lengths(collection) for collection in self.collections]
        for (name, _), these in zip(named[1:], lengths[1:]):
            if len(these) != len(lengths[0]):
                raise ValueError(
                    f"X has {len(lengths[0])} partitions and {name} {len(these)}: they must "
                    f"be split alike (take both from one table, e.g. X = frame[features], "
                    f"y = frame[target]).")
            for i, (a, b) in enumerate(zip(lengths[0], these)):
                if a == a and b == b and a != b:  # (both known)
                    raise ValueError(f"Partition {i} of X has {a} rows and of {name} {b}: "
                                     f"X and {name} must be split alike.")
        self.lengths = lengths[0]

    def __len__(self):
        return len(self.lengths)

    def parts(self, i):
        """Partition i of each collection, lazy (Dask collections)."""
        return [_partition(collection, i) for collection in self.collections]

    def compute(self, i):
        """Partition i of each collection, computed by the active scheduler:
        the DataFrames' together, the Arrays' together (what they share is
        computed once; Dask would materialise the DataFrames' expressions to
        compute both kinds in one call). A tuple of in-memory arrays or
        pandas objects, their rows checked to agree."""
        parts, values = self.parts(i), [None] * len(self.collections)
        for kind in (True, False):
            group = [k for k, c in enumerate(self.collections) if _is_frame_like(c) == kind]
            for k, value in zip(group, dask.compute(*(parts[k] for k in group))):
                values[k] = value
        del parts
        rows = [_n_rows(value) for value in values]
        for name, n in zip(self.names[1:], rows[1:]):
            if n != rows[0]:
                raise ValueError(f"Partition {i} of X has {rows[0]} rows and of {name} "
                                 f"{n}: X and {name} must be split alike.")
        return values


# ---------------------------------------------------------------------------
# What the tasks of prediction and scoring run (on the workers)


def _apply(part, model, method, empty):
    """model.method(part), or ``empty`` (the output's zero rows) for an empty
    partition, which estimators refuse."""
    if _n_rows(part) == 0:
        return empty.copy()
    return getattr(model, method)(part)


def _score_terms(model, X, y, classifier):
    """One partition's share of the score: (rows, correct) for accuracy, or
    (rows, mean of y, squared deviations of y, squared residuals) per output
    for R^2."""
    y = np.asarray(y)
    n = y.shape[0]
    if n == 0:
        return (0, 0) if classifier else (0, 0.0, 0.0, 0.0)
    y_pred = np.asarray(model.predict(X))
    if classifier:
        equal = y_pred == y
        return n, int((equal.all(axis=1) if equal.ndim == 2 else equal).sum())
    y = y.astype(np.float64).reshape(n, -1)
    residuals = (y - y_pred.astype(np.float64).reshape(n, -1)) ** 2
    mean = y.mean(axis=0)
    return n, mean, ((y - mean) ** 2).sum(axis=0), residuals.sum(axis=0)


def _combine_scores(terms, classifier):
    """The score of the whole data from each partition's terms: accuracy
    (correct over rows, as accuracy_score), or R^2 averaged over outputs with
    r2_score's conventions for a constant target (the deviations combined
    pairwise, as Chan et al.'s parallel variance)."""
    terms = [t for t in terms if t[0]]
    if classifier:
        return np.float64(sum(t[1] for t in terms) / sum(t[0] for t in terms))
    n, mean, m2, ssr = terms[0]
    for n_b, mean_b, m2_b, ssr_b in terms[1:]:
        delta = mean_b - mean
        m2 = m2 + m2_b + delta ** 2 * n * n_b / (n + n_b)
        mean = mean + delta * n_b / (n + n_b)
        ssr = ssr + ssr_b
        n = n + n_b
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(m2 > 0, 1 - ssr / m2, np.where(ssr == 0, 1.0, 0.0))
    return np.float64(np.mean(r2))


def _has(method):
    return lambda wrapper: hasattr(wrapper.estimator, method)


# ---------------------------------------------------------------------------
# The estimator


class Incremental(MetaEstimatorMixin, BaseEstimator):
    """Train an estimator by ``partial_fit`` over the partitions of Dask
    collections, epoch by epoch; predict and score through Dask.

    ``fit`` runs up to ``max_epochs`` epochs. An epoch calls the estimator's
    ``partial_fit`` once on each partition, in an order shuffled from
    ``random_state`` (the same seed, the same orders). Training stops by the
    estimator's own rule on its ``tol`` and ``n_iter_no_change``, applied to
    whole epochs: the training loss (the epoch's mean of its ``loss_``), or,
    with ``early_stopping``, the score on a held-out partition, keeping the
    epoch that scored best. ``predict``, ``predict_proba`` and ``score``
    return lazy Dask collections, computed partition by partition by the
    active scheduler.

    What is in memory: on the client (the process calling ``fit``), one
    partition at a time -- computed by the active scheduler (a
    ``distributed.Client``'s workers, or Dask's threads), handed to
    ``partial_fit`` and released before the next is asked for -- plus the
    estimator and, with early stopping, a copy of the best epoch's
    estimator. Nothing is read ahead. The partition passes through a few
    copies on its way (decoding, pandas, ``partial_fit``'s C-ordered float
    array): measured from Parquet, the peak is about 5 partitions' worth
    when Dask's threads read them in the process, 2 on a distributed
    client, whatever the number of partitions (user guide, "Scaling out").
    Prediction and scoring run on the workers, each task holding one
    partition and its output. Empty partitions are skipped in training and
    predicted as empty.

    Parameters
    ----------
    estimator : estimator with ``partial_fit``
        What is trained, e.g. ``cbp.MLPClassifier(solver="adam")``; cloned
        by ``fit``. Its ``early_stopping`` must be False (``partial_fit``
        refuses it): ask for this wrapper's ``early_stopping`` instead.
    max_epochs : int >= 1 or None, default=None
        Most epochs ``fit`` runs; None: the estimator's ``max_iter`` (200
        for cbp's MLPs).
    shuffle : bool, default=True
        Visit the partitions in a new random order every epoch (rows within
        a partition are shuffled by the estimator's own ``shuffle``).
    random_state : int, RandomState instance or None, default=None
        Draws the partitions' orders: epoch e's order is the e-th
        ``permutation`` of the training partitions' indices by
        ``check_random_state(random_state)``, drawn once per epoch, kept in
        ``partition_orders_``; ``partial_fit`` continues the same stream.
    early_stopping : bool, default=False
        Hold out the partition ``validation_partition`` from training, score
        the estimator on it (its ``score``: accuracy, R^2) after every epoch,
        stop when the score has not improved by the estimator's ``tol`` for
        more than its ``n_iter_no_change`` epochs, and keep the best epoch's
        estimator. The held-out partition is computed again for each score
        (one partition in memory at a time).
    validation_partition : int, default=-1
        The held-out partition's index among X's partitions (negative counts
        from the end: -1 is the last).

    Attributes
    ----------
    estimator_ : estimator
        The trained estimator (with early stopping, the best epoch's).
    n_epochs_ : int
        Epochs run.
    partition_orders_ : list of ndarray of int, each of shape (n_training_partitions,)
        Each epoch's order of the partitions, by their index in X.
    loss_curve_ : list of float, or None
        Each epoch's training loss: the mean over its partitions of the
        estimator's ``loss_`` after each, weighted by their rows (None for
        an estimator without ``loss_``).
    best_loss_ : float or None
        The lowest ``loss_curve_`` value (None with early stopping).
    validation_scores_ : list of float, or None
        With early stopping, the score on the held-out partition after
        each epoch.
    best_validation_score_ : float or None
        With early stopping, the best of ``validation_scores_``.
    classes_ : ndarray of shape (n_classes,)
        The classifier's classes (``estimator_.classes_``).
    n_features_in_ : int
        Columns of X (``estimator_.n_features_in_``).

    See Also
    --------
    cbp.MLPClassifier.partial_fit : The one-partition step ``fit`` repeats.

    Notes
    -----
    For the same ``random_state``, ``fit`` gives the same weights as calling
    ``partial_fit`` of the estimator by hand on the computed partitions in
    the orders of ``partition_orders_``; ``fit`` with ``max_epochs=n`` and no
    stopping rule met equals ``n`` calls of ``partial_fit`` (each is one
    epoch).

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import make_classification
    >>> from cbp import MLPClassifier
    >>> from cbp.dask import Incremental
    >>> X, y = make_classification(2000, 10, random_state=0)
    >>> X, y = da.from_array(X, chunks=500), da.from_array(y, chunks=500)
    >>> mlp = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01,
    ...                     random_state=0)
    >>> model = Incremental(mlp, max_epochs=10, random_state=0).fit(X, y)
    >>> model.n_epochs_, model.partition_orders_[:2]
    (10, [array([2, 3, 1, 0]), array([0, 2, 1, 3])])
    >>> model.predict(X)
    dask.array<_apply, shape=(2000,), dtype=int64, chunksize=(500,), ...>
    >>> float(model.score(X, y).compute()) > 0.95
    True
    """

    def __init__(self, estimator, *, max_epochs=None, shuffle=True, random_state=None,
                 early_stopping=False, validation_partition=-1):
        self.estimator = estimator
        self.max_epochs = max_epochs
        self.shuffle = shuffle
        self.random_state = random_state
        self.early_stopping = early_stopping
        self.validation_partition = validation_partition

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.target_tags.required = True
        return tags

    # -- training ----------------------------------------------------------

    def fit(self, X, y, sample_weight=None, classes=None):
        """Train a clone of the estimator for up to ``max_epochs`` epochs.

        Parameters
        ----------
        X : Dask DataFrame, or Dask Array of shape (n_samples, n_features)
            The input, in partitions (an Array's row blocks; an Array split
            across columns too is rechunked to whole rows).
        y : Dask Series, DataFrame or Array of shape (n_samples,) or (n_samples, n_outputs)
            The targets, split into the same partitions as X.
        sample_weight : Dask Series or Array of shape (n_samples,), default=None
            Weights of the rows, split as X (passed to ``partial_fit``).
        classes : array-like of shape (n_classes,), default=None
            A classifier's classes; None: the distinct values of y, found
            by Dask in one pass over y before training.

        Returns
        -------
        self : Incremental
            The trained wrapper.
        """
        data = self._checked_data(X, y, sample_weight)
        max_epochs = self._checked_max_epochs()
        n = len(data)
        held_out = self._held_out_partition(n) if self.early_stopping else None
        training = np.array([i for i in range(n) if i != held_out], dtype=np.intp)
        self._start()
        classes = self._classes(y, classes)
        for _ in range(max_epochs):
            self._epoch(data, training, classes)
            if self._stops(data, held_out):
                break
        else:
            if self._rule() is not None:
                warnings.warn(f"Maximum epochs ({max_epochs}) reached and the training has "
                              "not converged yet.", ConvergenceWarning)
        if self.early_stopping:
            self.estimator_ = self._best_estimator
            del self._best_estimator
        return self

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Train the estimator for one epoch: ``partial_fit`` on every
        partition once, in the next order of the ``random_state`` stream.

        The first call starts from a clone of the estimator; the next ones
        continue it. Early stopping needs ``fit`` (as the estimators'
        ``partial_fit``, this refuses ``early_stopping=True``).

        Parameters
        ----------
        X : Dask DataFrame, or Dask Array of shape (n_samples, n_features)
            The input, in partitions.
        y : Dask Series, DataFrame or Array of shape (n_samples,) or (n_samples, n_outputs)
            The targets, split into the same partitions as X.
        sample_weight : Dask Series or Array of shape (n_samples,), default=None
            Weights of the rows, split as X.
        classes : array-like of shape (n_classes,), default=None
            A classifier's classes; None: the distinct values of y on the
            first call (one pass over y), the fitted ``classes_`` after.

        Returns
        -------
        self : Incremental
            The wrapper, trained one epoch more.
        """
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True: call fit, "
                             "which holds out a partition and scores it after each epoch.")
        data = self._checked_data(X, y, sample_weight)
        if not hasattr(self, "estimator_"):
            self._start()
        classes = self._classes(y, classes)
        self._epoch(data, np.arange(len(data), dtype=np.intp), classes)
        return self

    def _checked_data(self, X, y, sample_weight):
        if not hasattr(self.estimator, "partial_fit"):
            raise TypeError(
                f"{self.estimator!r} has no partial_fit: Incremental trains by partial_fit, "
                "one partition at a time (cbp's MLPs have it with every solver but "
                "'lbfgs').")
        if getattr(self.estimator, "early_stopping", False):
            raise ValueError(
                "The estimator's early_stopping=True: its partial_fit refuses it. Set it "
                "to False and ask for Incremental(early_stopping=True), which holds out "
                "a partition.")
        return _Partitions(X, y, sample_weight)

    def _checked_max_epochs(self):
        max_epochs = self.max_epochs
        if max_epochs is None:
            max_epochs = getattr(self.estimator, "max_iter", None)
        if not isinstance(max_epochs, Integral) or isinstance(max_epochs, bool) \
                or max_epochs < 1:
            raise ValueError(f"max_epochs must be an int >= 1 (or None: the estimator's "
                             f"max_iter); got {max_epochs!r}.")
        return int(max_epochs)

    def _held_out_partition(self, n):
        i = self.validation_partition
        if not isinstance(i, Integral) or isinstance(i, bool) or not -n <= i < n:
            raise ValueError(f"validation_partition={i!r} is not the index of one of X's "
                             f"{n} partitions.")
        if n < 2:
            raise ValueError("early_stopping=True holds out one partition: X needs 2 or "
                             f"more partitions, it has {n}.")
        return int(i) % n

    def _start(self):
        """A fresh clone, random stream and records."""
        self.estimator_ = clone(self.estimator)
        self._random_state = check_random_state(self.random_state)
        self.n_epochs_ = 0
        self.partition_orders_ = []
        self.loss_curve_ = []
        self.best_loss_ = None if self.early_stopping else np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        self._no_improvement_count = 0

    def _classes(self, y, classes):
        """The classes to give partial_fit: those given, the fitted ones, or
        y's distinct values (computed by Dask: y's partitions only)."""
        if not is_classifier(self.estimator):
            return None
        if classes is not None:
            return np.asarray(classes)
        if hasattr(self.estimator_, "classes_"):
            return self.estimator_.classes_
        y = _check_collection(y, "y", (1, 2))
        if isinstance(y, da.Array):
            return np.unique(da.unique(y).compute())
        values = y.unique() if y.ndim == 1 else y.to_dask_array().ravel()
        return np.unique(np.asarray(dask.compute(values)[0]))

    def _epoch(self, data, training, classes):
        """One partial_fit per training partition, in this epoch's order;
        records the order and the epoch's loss."""
        order = self._random_state.permutation(training) if self.shuffle else training
        estimator = self.estimator_
        extra = {} if classes is None else {"classes": classes}
        rows = loss = 0.0
        for i in order:
            X, y, *weight = data.compute(i)
            n = _n_rows(X)
            if n:  # (an empty partition, as filtering leaves, teaches nothing)
                kwargs = dict(extra, sample_weight=weight[0]) if weight else extra
                estimator.partial_fit(X, y, **kwargs)
                del kwargs
            del X, y, weight  # (before the next partition is computed)
            rows += n
            loss = loss + getattr(estimator, "loss_", np.nan) * n
        self.partition_orders_.append(np.array(order))
        self.n_epochs_ += 1
        self.loss_curve_.append(float(loss / rows) if rows else np.nan)

    def _rule(self):
        """The estimator's (tol, n_iter_no_change), or None if it has no such
        rule, or (without early stopping) no ``loss_`` to apply it to."""
        tol = getattr(self.estimator_, "tol", None)
        patience = getattr(self.estimator_, "n_iter_no_change", None)
        if tol is None or patience is None:
            return None
        if not self.early_stopping and not np.isfinite(self.loss_curve_[-1]):
            return None
        return tol, patience

    def _stops(self, data, held_out):
        """scikit-learn's rule on whole epochs: an epoch that does not beat
        the best validation score (or loss) by tol counts; more than
        n_iter_no_change in a row stop. Keeps the best epoch's estimator."""
        estimator = self.estimator_
        if self.early_stopping:
            X, y, *weight = data.compute(held_out)
            if not _n_rows(X):
                raise ValueError(f"The held-out partition {held_out} is empty: choose "
                                 "another with validation_partition.")
            score = float(estimator.score(X, y, sample_weight=weight[0] if weight else None))
            del X, y, weight
            self.validation_scores_.append(score)
            last_best = self.best_validation_score_
            if score > last_best or not hasattr(self, "_best_estimator"):
                self._best_estimator = copy.deepcopy(estimator)
            self.best_validation_score_ = max(last_best, score)
        else:
            loss = self.loss_curve_[-1]
            last_best = self.best_loss_
            self.best_loss_ = min(last_best, loss)
        rule = self._rule()
        if rule is None:
            return False
        tol, patience = rule
        if self.early_stopping:
            worse = score < last_best + tol
        else:
            worse = loss > last_best - tol
        self._no_improvement_count = self._no_improvement_count + 1 if worse else 0
        return self._no_improvement_count > patience

    # -- prediction ----------------------------------------------------------

    def _map(self, X, method):
        """estimator_.method on each partition of X, as a lazy Dask Array
        (one row per row of X; a DataFrame's partitions' lengths unknown)."""
        check_is_fitted(self, "estimator_")
        X = _check_collection(X, "X", (2,))
        # the output's dtype and columns, from one row of zeros
        model = self.estimator_
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = np.asarray(getattr(model, method)(
                np.zeros((1, model.n_features_in_))))
        tail, dtype = probe.shape[1:], probe.dtype
        # a copy of the model in the graph: later training does not change
        # what the collection computes
        snapshot = dask.delayed(copy.deepcopy(model), name=f"cbp-model-{uuid.uuid4().hex}",
                                traverse=False)
        meta = np.empty((0, *tail), dtype=dtype)
        if isinstance(X, da.Array):
            return X.map_blocks(_apply, snapshot, method, meta, dtype=dtype, meta=meta,
                                chunks=(X.chunks[0], *((n,) for n in tail)),
                                drop_axis=None if tail else 1)
        return X.map_partitions(_apply, snapshot, method, meta, meta=meta)

    def predict(self, X):
        """Predict each partition of X with ``estimator_.predict``.

        Parameters
        ----------
        X : Dask DataFrame, or Dask Array of shape (n_samples, n_features)
            The input.

        Returns
        -------
        y_pred : Dask Array of shape (n_samples,) or (n_samples, n_outputs)
            Lazy, of the estimator's output dtype (a classifier's labels'
            dtype; a regressor's float); computed, it equals the estimator's
            predict on each partition. From a DataFrame its chunk sizes are
            unknown (NaN) until computed.
        """
        return self._map(X, "predict")

    @available_if(_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of each partition of X (``estimator_.predict_proba``).

        Parameters
        ----------
        X : Dask DataFrame, or Dask Array of shape (n_samples, n_features)
            The input.

        Returns
        -------
        proba : Dask Array of shape (n_samples, n_classes)
            Lazy, float (the estimator's dtype), columns in the order of
            ``classes_``.
        """
        return self._map(X, "predict_proba")

    def score(self, X, y):
        """Accuracy (a classifier) or R^2 (a regressor) on all of X, y.

        Each partition's task predicts it and keeps a few numbers (rows and
        correct ones; or the target's mean, squared deviations and squared
        residuals per output); one task combines them. The accuracy equals
        ``accuracy_score`` on the whole data; R^2 equals ``r2_score``
        (outputs averaged uniformly) to rounding.

        Parameters
        ----------
        X : Dask DataFrame, or Dask Array of shape (n_samples, n_features)
            The input.
        y : Dask Series, DataFrame or Array of shape (n_samples,) or (n_samples, n_outputs)
            The true targets, split into the same partitions as X.

        Returns
        -------
        score : Dask Array of shape ()
            Lazy, float64: ``.compute()`` gives the number.
        """
        check_is_fitted(self, "estimator_")
        classifier = is_classifier(self.estimator_)
        if not classifier and not is_regressor(self.estimator_):
            raise TypeError("score is accuracy for a classifier and R^2 for a regressor; "
                            f"{self.estimator_!r} is neither.")
        data = _Partitions(X, y)
        model = dask.delayed(copy.deepcopy(self.estimator_),
                             name=f"cbp-model-{uuid.uuid4().hex}", traverse=False)
        terms = [dask.delayed(_score_terms)(model, *data.parts(i), classifier)
                 for i in range(len(data))]
        total = dask.delayed(_combine_scores)(terms, classifier)
        return da.from_delayed(total, shape=(), dtype=np.float64)

    @property
    def classes_(self):
        check_is_fitted(self, "estimator_")
        return self.estimator_.classes_

    @property
    def n_features_in_(self):
        check_is_fitted(self, "estimator_")
        return self.estimator_.n_features_in_
