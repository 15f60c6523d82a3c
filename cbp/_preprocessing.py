"""PiecewiseLinearEncoder: numeric columns as piecewise-linear encodings
(Gorishniy et al., NeurIPS 2022, "On embeddings for numerical features in
tabular deep learning"; the ``rtdl-num-embeddings`` package's
``PiecewiseLinearEncoding``).

A column with bin edges e_0 < e_1 < ... < e_T (T bins) becomes T columns,

    v_t = (x - e_t) / (e_(t+1) - e_t),   clipped to [0, 1],

except that the first is not clipped below and the last not clipped above
(values beyond the training range extrapolate linearly), and a column of one
bin is not clipped at all (it is min-max scaling). So for x in bin t the
encoding reads [1, ..., 1, (x - e_t) / width_t, 0, ..., 0].
"""

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._sklearn_compat import Interval, _fit_context, validate_data


class PiecewiseLinearEncoder(TransformerMixin, BaseEstimator):
    """Encode numeric columns piecewise-linearly, by quantile bins.

    Parameters
    ----------
    n_bins : int >= 2, default=48
        Bins per column, at the quantiles 0, 1/n_bins, ..., 1 of the
        training values (linear interpolation; equal quantiles merged, so a
        column with few distinct values gets fewer bins): the
        ``rtdl_num_embeddings.compute_bins(X, n_bins)`` edges.
    bins : list of array-like or None, default=None
        The bin edges of each column (strictly increasing, at least two
        each), used instead of quantiles; ``fit`` then only checks them.

    Attributes
    ----------
    bin_edges_ : list of ndarray
        The edges of each column; a column constant in the training data
        has one edge (its value).
    n_bins_ : ndarray of shape (``n_features_in_``,)
        The columns each input column becomes (1 for a constant column,
        which encodes as zeros: it carries no information).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (``n_features_in_``,)

    Notes
    -----
    NaN is refused with a ValueError naming the columns (impute first, e.g.
    with ``sklearn.impute.SimpleImputer``). Output: float64, or float32 for
    float32 input, (n_samples, ``n_bins_``.sum()), each column's encodings
    side by side in column order.

    Examples
    --------
    >>> import numpy as np
    >>> from cbp import PiecewiseLinearEncoder
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    >>> encoder = PiecewiseLinearEncoder(n_bins=2).fit(X)
    >>> encoder.bin_edges_[0]
    array([0., 2., 4.])
    >>> encoder.transform([[1.0], [3.0], [5.0]])
    array([[0.5, 0. ],
           [1. , 0.5],
           [1. , 1.5]])
    """

    _parameter_constraints: dict = {
        "n_bins": [Interval(Integral, 2, None, closed="left")],
        "bins": ["array-like", None],
    }

    def __init__(self, n_bins=48, bins=None):
        self.n_bins = n_bins
        self.bins = bins

    def _validated(self, X, reset):
        X = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32),
                          ensure_all_finite="allow-nan")
        missing = np.isnan(X).any(axis=0)
        if missing.any():
            names = getattr(self, "feature_names_in_", None)
            where = (names[missing] if names is not None
                     else np.flatnonzero(missing)).tolist()
            raise ValueError(
                f"PiecewiseLinearEncoder got NaN in column(s) {where}: impute them "
                "first (e.g. sklearn.impute.SimpleImputer, with add_indicator=True "
                "to keep where they were)."
            )
        if not np.isfinite(X).all():
            raise ValueError("PiecewiseLinearEncoder got infinite values in X.")
        return X

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Find each column's bin edges (quantiles of X, or ``bins``)."""
        X = self._validated(X, reset=True)
        if self.bins is not None:
            return self._set_edges(self._given_bins(X.shape[1]))
        quantiles = np.quantile(X.astype(np.float64), np.linspace(0.0, 1.0, self.n_bins + 1),
                                axis=0)
        return self._set_edges([np.unique(q) for q in quantiles.T])

    def _set_edges(self, bin_edges):
        """Fitted from each column's increasing edges (one for a constant
        column): what fit finds, and what a loaded archive holds."""
        self.bin_edges_ = list(bin_edges)
        self.n_bins_ = np.array([max(len(e) - 1, 1) for e in self.bin_edges_])
        self.n_features_in_ = len(self.bin_edges_)
        return self

    def _given_bins(self, n_features):
        if len(self.bins) != n_features:
            raise ValueError(f"bins has edges for {len(self.bins)} columns, X has "
                             f"{n_features}.")
        edges = []
        for j, column in enumerate(self.bins):
            column = np.asarray(column, dtype=np.float64)
            if column.ndim != 1 or len(column) < 2 or not np.isfinite(column).all() \
                    or (np.diff(column) <= 0).any():
                raise ValueError(
                    f"bins[{j}] must hold at least two finite, strictly increasing "
                    f"edges, got {column.tolist()}."
                )
            edges.append(column)
        return edges

    def transform(self, X):
        """The encodings: (n_samples, ``n_bins_``.sum())."""
        check_is_fitted(self)
        X = self._validated(X, reset=False)
        out = np.zeros((X.shape[0], int(self.n_bins_.sum())), dtype=X.dtype)
        start = 0
        for j, edges in enumerate(self.bin_edges_):
            if len(edges) < 2:  # a constant column: zeros
                start += 1
                continue
            width = np.diff(edges)
            # v_t = w_t x + b_t, w = 1 / width, b = -e_t / width (rtdl's arithmetic)
            w, b = 1.0 / width, -edges[:-1] / width
            v = X[:, j, None].astype(np.float64) * w + b
            if len(width) > 1:
                v[:, 0] = np.minimum(v[:, 0], 1.0)
                v[:, 1:-1] = np.clip(v[:, 1:-1], 0.0, 1.0)
                v[:, -1] = np.maximum(v[:, -1], 0.0)
            out[:, start:start + len(width)] = v
            start += len(width)
        return out

    def get_feature_names_out(self, input_features=None):
        """'<column>_bin<t>' for each column's encodings."""
        check_is_fitted(self)
        names = OneToOneFeatureMixin.get_feature_names_out(self, input_features)
        return np.array([f"{name}_bin{t}" for name, n in zip(names, self.n_bins_)
                         for t in range(n)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
