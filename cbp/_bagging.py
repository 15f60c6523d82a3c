"""Bagging over all the rows: k networks, each trained on k - 1 folds and
early-stopped on its own fold, their predictions averaged (TabArena's
protocol for every model's defaults; RealMLP's Table B.4).

    folds(n_rows, y, n_folds, stratify, seed)
        the (train, validation) row indices of each fold
    fit_folds(networks, Z, y, sample_weight, folds, n_jobs)
        the networks fitted, fold i's on its training rows and stopped on
        its validation rows; on joblib's threads (the kernel releases the
        GIL for its epochs), or on any joblib backend (Dask, Ray)
    out_of_fold(predict, networks, Z, folds)
        each row's prediction by the network that did not train on it

A fold's result does not depend on where or beside what it runs: its split,
its network's seed and its data are fixed before any is fitted, and BLAS
runs on one thread (the caller's ``blas_limit(1)`` around ``fit_folds``).
"""

import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.model_selection import KFold, StratifiedKFold


def folds(n_rows, y, n_folds, stratify, seed):
    """The folds of n_rows rows: a list of n_folds (train, validation)
    pairs of sorted int64 index arrays; every row is in one validation part.

    stratify: y's classes in equal shares in every fold (StratifiedKFold).
    A class with one row keeps it in every training part (none of the
    networks could learn it otherwise, and its own fold could not score
    it); a class of c >= 2 rows has at most ceil(c / n_folds) in any fold,
    so every training part holds each class.
    """
    rows = np.arange(n_rows)
    always = np.zeros(0, dtype=np.int64)
    if stratify:
        _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        single = counts[inverse] == 1
        always, rows = rows[single], rows[~single]
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            # (a class of fewer than n_folds rows: it is in fewer folds)
            warnings.filterwarnings("ignore", "The least populated class", UserWarning)
            parts = list(splitter.split(rows, np.asarray(y)[rows]))
    else:
        parts = list(KFold(n_folds, shuffle=True, random_state=seed).split(rows))
    return [(np.sort(np.concatenate([rows[train], always])), rows[validation])
            for train, validation in parts]


def _take(values, rows):
    return None if values is None else np.asarray(values)[rows]


def _fit_fold(network, Z, y, sample_weight, train, validation):
    network.fit(Z[train], y[train], sample_weight=_take(sample_weight, train),
                X_val=Z[validation], y_val=y[validation],
                sample_weight_val=_take(sample_weight, validation))
    return network


def fit_folds(networks, Z, y, sample_weight, fold_rows, n_jobs):
    """The networks, fold i's fitted on fold_rows[i] (list, in fold order).

    Z: (n_rows, n_features) encoded rows; y: (n_rows,) or (n_rows,
    n_outputs) targets; sample_weight: (n_rows,) or None. n_jobs: joblib's
    (None: one, unless a ``joblib.parallel_config`` says otherwise; -1:
    every core); threads unless a configured backend says otherwise.
    """
    return Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_fit_fold)(network, Z, y, sample_weight, train, validation)
        for network, (train, validation) in zip(networks, fold_rows, strict=True))


def out_of_fold(predict, networks, Z, fold_rows):
    """(n_rows, the outputs' width) float64: row r predicted by predict(network, Z)
    of the network whose validation part holds r; NaN for rows in every
    training part (see ``folds``)."""
    predictions = None
    for network, (_, validation) in zip(networks, fold_rows, strict=True):
        output = np.reshape(predict(network, Z[validation]), (len(validation), -1))
        if predictions is None:
            predictions = np.full((Z.shape[0], output.shape[1]), np.nan)
        predictions[validation] = output
    return predictions


__all__ = ["folds", "fit_folds", "out_of_fold"]
