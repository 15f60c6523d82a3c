"""TableEncoder: a table (DataFrame or array; numeric, categorical and
missing values) as the float matrix a network reads.

Numeric column j (missing values: NaN, None, pd.NA):
    x <- x, with a missing value replaced by the training median m_j
    (and a 0/1 indicator column added when the training data missed some)
    then one of
    'quantile': Phi^-1(F_j(x)), F_j the training values' empirical
        distribution at ``n_quantiles`` levels -- scikit-learn's
        QuantileTransformer(output_distribution="normal", subsample=None):
        interpolated both ways and averaged, so tied values share one level;
        clipped to Phi^-1(1e-7) ... Phi^-1(1 - 1e-7) = +-5.2;
    'robust': RealMLP's (Holzmueller et al. 2024), RobustScaleSmoothClip
        of the imputed values: z = (x - m_j) / s_j, s_j the interquartile
        range (half the range when it is 0; z = 0 for a constant column),
        then the smooth clip z / sqrt(1 + (z / 3)^2);
    and, with ``n_bins``, also its piecewise-linear encoding by quantile bins
    of the imputed values (PiecewiseLinearEncoder).
Categorical column: its values as strings; a missing value is the category
    '<missing>'. Categories seen at least ``min_frequency`` times in training
    (at most ``max_categories`` of them, the most frequent) get a 0/1
    column each; the rest, and categories first seen in transform, share
    one 'infrequent' column (present when the training data had such
    values, else they encode as all zeros).
"""

from numbers import Integral

import numpy as np
from scipy.special import ndtri
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from ._preprocessing import PiecewiseLinearEncoder
from ._robust_scaling import robust_factor, robust_statistics, smooth_clip
from ._sklearn_compat import Interval, StrOptions, _fit_context

MISSING = "<missing>"
_BOUND = 1e-7  # scikit-learn's QuantileTransformer BOUNDS_THRESHOLD
_CLIP = 3.0  # the smooth clip's scale


def _pandas():
    """pandas, imported when a table is first read: cbp does not require
    it (nor does scikit-learn), so ``import cbp`` works without it."""
    try:
        import pandas
    except ImportError:
        raise ImportError("TableEncoder and the tabular estimators read tables with "
                          "pandas, which is not installed: pip install pandas") from None
    return pandas


def is_categorical_dtype(dtype):
    """Whether a pandas column of this dtype is categorical: category,
    object, string or bool."""
    pd = _pandas()
    return (isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


class TableEncoder(TransformerMixin, BaseEstimator):
    """Encode a table's numeric and categorical columns for a network.

    Parameters
    ----------
    categorical_features : 'from_dtype', array-like of str or int, or None, default='from_dtype'
        The categorical columns: 'from_dtype' takes a DataFrame's category,
        object, string and bool columns (an array has none); names or
        indices list them; None: every column is numeric.
    numeric : {'quantile', 'robust'}, default='quantile'
        How numeric columns are transformed (see the module doc).
    n_quantiles : int >= 2, default=1000
        Levels of the quantile transformation (at most the training rows).
    n_bins : int >= 2 or None, default=None
        With an int, numeric columns are also piecewise-linearly encoded in
        (at most) that many quantile bins.
    min_frequency : int >= 1, default=10
        Categories seen fewer times in training share the infrequent column.
    max_categories : int >= 1, default=64
        The most columns one categorical column gets, besides the
        infrequent one.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when fitted on a DataFrame
    is_categorical_ : ndarray of bool, shape (``n_features_in_``,)
    medians_ : ndarray of float64, shape (n_numeric,)
        The imputed value of each numeric column.
    has_indicator_ : ndarray of bool, shape (n_numeric,)
        The numeric columns that get a missing-value indicator.
    quantiles_ : ndarray of float64, shape (``n_quantiles_``, n_numeric)
        ('quantile') each column's training quantiles at the levels
        ``references_``.
    references_ : ndarray of float64, shape (``n_quantiles_``,)
    centers_, scales_ : ndarray of float64, shape (n_numeric,)
        ('robust') the medians and spreads (RobustScaleSmoothClip's
        ``center_`` and ``spread_``; 0 for a constant column).
    bin_encoder_ : PiecewiseLinearEncoder or None
    categories_ : list of ndarray of str
        Each categorical column's categories with a column of their own.
    has_infrequent_ : ndarray of bool, shape (n_categorical,)
    n_features_out_ : int

    Notes
    -----
    Output: float32 (n_samples, ``n_features_out_``), the numeric columns'
    values first, then their indicators, then the piecewise-linear
    encodings, then each categorical column's one-hot columns
    (``get_feature_names_out`` names them).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cbp import TableEncoder
    >>> X = pd.DataFrame({
    ...     "age": [25.0, 32.0, np.nan, 51.0, 46.0, 38.0],
    ...     "city": ["Paris", "Lyon", "Paris", None, "Lyon", "Paris"]})
    >>> encoder = TableEncoder(min_frequency=2).fit(X)
    >>> print(*encoder.get_feature_names_out())
    age age_missing city=Lyon city=Paris city=<infrequent>
    >>> encoder.transform(X).shape
    (6, 5)

    A missing age becomes the median (0 after the quantile transformation)
    and its indicator; an unseen city, the infrequent column:

    >>> new = pd.DataFrame({"age": [np.nan], "city": ["Nice"]})
    >>> encoder.transform(new)
    array([[0., 1., 0., 0., 1.]], dtype=float32)
    """

    _parameter_constraints: dict = {
        "categorical_features": [StrOptions({"from_dtype"}), "array-like", None],
        "numeric": [StrOptions({"quantile", "robust"})],
        "n_quantiles": [Interval(Integral, 2, None, closed="left")],
        "n_bins": [Interval(Integral, 2, None, closed="left"), None],
        "min_frequency": [Interval(Integral, 1, None, closed="left")],
        "max_categories": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, categorical_features="from_dtype", numeric="quantile",
                 n_quantiles=1000, n_bins=None, min_frequency=10, max_categories=64):
        self.categorical_features = categorical_features
        self.numeric = numeric
        self.n_quantiles = n_quantiles
        self.n_bins = n_bins
        self.min_frequency = min_frequency
        self.max_categories = max_categories

    # ------------------------------------------------------------ columns

    def _frame(self, X, reset):
        """X as a DataFrame with string column names; checks the columns
        against the fitted ones."""
        pd = _pandas()
        if not isinstance(X, pd.DataFrame) and hasattr(X, "to_pandas"):
            X = X.to_pandas()  # (polars, pyarrow tables)
        if isinstance(X, pd.DataFrame):
            names = np.asarray([str(c) for c in X.columns], dtype=object)
            if len(set(names)) != len(names):
                raise ValueError("X has duplicate column names.")
            frame = X.set_axis(list(names), axis=1)
        else:
            # (scikit-learn's checks and messages: sparse, 1D, complex, empty)
            array = check_array(X, dtype=None, ensure_all_finite=False, accept_sparse=False)
            frame = pd.DataFrame(array, columns=[str(j) for j in range(array.shape[1])])
            names = None
        if any(pd.api.types.is_complex_dtype(dtype) for dtype in frame.dtypes):
            raise ValueError("Complex data not supported.")
        if frame.shape[0] == 0:
            raise ValueError(f"Found array with 0 sample(s) (shape={frame.shape}) while a "
                             "minimum of 1 is required.")
        if reset:
            if frame.shape[1] == 0:
                raise ValueError(f"Found array with 0 feature(s) (shape={frame.shape}) while "
                                 "a minimum of 1 is required.")
            self.n_features_in_ = frame.shape[1]
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            if frame.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {frame.shape[1]} features, but {type(self).__name__} "
                                 f"is expecting {self.n_features_in_} features as input.")
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and names is not None and list(names) != list(fitted):
                raise ValueError("The feature names should match those that were passed "
                                 f"during fit: {list(fitted)}, got {list(names)}.")
            if fitted is not None:
                frame = frame.set_axis(list(fitted), axis=1)
        return frame

    def _categorical_mask(self, frame):
        spec = self.categorical_features
        n = frame.shape[1]
        if spec is None:
            return np.zeros(n, dtype=bool)
        if isinstance(spec, str):  # 'from_dtype'
            return np.array([is_categorical_dtype(frame[c].dtype) for c in frame.columns])
        spec = np.asarray(spec)
        mask = np.zeros(n, dtype=bool)
        if spec.dtype.kind == "b":
            if spec.shape != (n,):
                raise ValueError(f"categorical_features has {spec.size} flags for {n} columns.")
            return spec.copy()
        for item in spec.ravel():
            if isinstance(item, (Integral, np.integer)) and not isinstance(item, bool):
                if not 0 <= item < n:
                    raise ValueError(f"categorical_features: column {item} is not in 0..{n - 1}.")
                mask[item] = True
            else:
                names = list(getattr(self, "feature_names_in_", []))
                if str(item) not in names:
                    raise ValueError(f"categorical_features names {item!r}, which is not a "
                                     "column of X" + ("" if names else " (X has no names)") + ".")
                mask[names.index(str(item))] = True
        return mask

    def _numeric_values(self, frame, mask):
        """The numeric columns as a float64 array, NaN where missing."""
        columns = [c for c, cat in zip(frame.columns, mask) if not cat]
        if not columns:
            return np.zeros((frame.shape[0], 0))
        try:
            values = frame[columns].astype("float64").to_numpy(dtype=np.float64,
                                                               na_value=np.nan)
        except (TypeError, ValueError) as exc:
            bad = [c for c in columns if not _is_numeric_column(frame[c])]
            raise ValueError(
                f"numeric column(s) {bad or columns} hold values that are not numbers ({exc}); "
                "mark them categorical (categorical_features) or give them a category dtype."
            ) from None
        if np.isinf(values).any():
            bad = [c for c, inf in zip(columns, np.isinf(values).any(axis=0)) if inf]
            raise ValueError(f"numeric column(s) {bad} hold infinite values.")
        return values

    @staticmethod
    def _category_values(frame, mask):
        """Each categorical column's values as an array of str."""
        out = []
        for c, cat in zip(frame.columns, mask):
            if cat:
                column = frame[c]
                missing = column.isna().to_numpy()
                out.append(np.where(missing, MISSING, column.astype(object).to_numpy().astype(str)))
        return out

    # ------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the columns' medians, quantiles and categories from X."""
        frame = self._frame(X, reset=True)
        self.is_categorical_ = self._categorical_mask(frame)
        numeric = self._numeric_values(frame, self.is_categorical_)
        missing = np.isnan(numeric)
        with np.errstate(all="ignore"):
            medians = np.nanmedian(numeric, axis=0) if numeric.shape[1] else np.zeros(0)
        self.medians_ = np.where(np.isnan(medians), 0.0, medians)  # all missing: 0
        self.has_indicator_ = missing.any(axis=0)
        imputed = np.where(missing, self.medians_, numeric)
        if self.numeric == "quantile":
            n_quantiles = min(self.n_quantiles, imputed.shape[0])
            self.references_ = np.linspace(0.0, 1.0, n_quantiles)
            quantiles = np.percentile(imputed, 100 * self.references_, axis=0)
            # (as scikit-learn: rounding can make percentiles decrease)
            self.quantiles_ = np.maximum.accumulate(quantiles.reshape(n_quantiles, -1), axis=0)
        else:
            self.centers_, self.scales_, _ = robust_statistics(imputed)
        self.bin_encoder_ = None
        if self.n_bins is not None and imputed.shape[1]:
            self.bin_encoder_ = PiecewiseLinearEncoder(n_bins=self.n_bins).fit(imputed)
        self.categories_, self.has_infrequent_ = [], []
        for values in self._category_values(frame, self.is_categorical_):
            kept, counts = np.unique(values, return_counts=True)
            order = np.argsort(-counts, kind="stable")[:self.max_categories]
            order = order[counts[order] >= self.min_frequency]
            self.categories_.append(np.sort(kept[order]).astype(str))
            self.has_infrequent_.append(len(order) < len(kept))
        self.has_infrequent_ = np.array(self.has_infrequent_, dtype=bool)
        self.n_features_out_ = len(self.get_feature_names_out())
        return self

    # ------------------------------------------------------------ transform

    def transform(self, X):
        """The encoded table: float32 (n_samples, ``n_features_out_``)."""
        check_is_fitted(self)
        frame = self._frame(X, reset=False)
        numeric = self._numeric_values(frame, self.is_categorical_)
        missing = np.isnan(numeric)
        imputed = np.where(missing, self.medians_, numeric)
        parts = [self._transform_numeric(imputed), missing[:, self.has_indicator_]]
        if self.bin_encoder_ is not None:
            parts.append(self.bin_encoder_.transform(imputed))
        for values, categories, infrequent in zip(
                self._category_values(frame, self.is_categorical_), self.categories_,
                self.has_infrequent_):
            index = np.searchsorted(categories, values)
            index = np.minimum(index, len(categories) - 1) if len(categories) else index
            known = (categories[index] == values) if len(categories) else np.zeros(
                len(values), dtype=bool)
            onehot = np.zeros((len(values), len(categories) + infrequent))
            onehot[np.flatnonzero(known), index[known]] = 1.0
            if infrequent:
                onehot[~known, -1] = 1.0
            parts.append(onehot)
        return np.ascontiguousarray(np.hstack(parts), dtype=np.float32)

    def _transform_numeric(self, values):
        if self.numeric == "robust":
            return smooth_clip((values + (-self.centers_)) * robust_factor(self.scales_), _CLIP)
        out = np.empty_like(values)
        for j in range(values.shape[1]):
            q, r = self.quantiles_[:, j], self.references_
            x = values[:, j]
            # scikit-learn's QuantileTransformer._transform_col: interpolated
            # upwards and downwards and averaged (tied quantiles share a level)
            level = 0.5 * (np.interp(x, q, r) - np.interp(-x, -q[::-1], -r[::-1]))
            level[x + _BOUND > q[-1]] = r[-1]
            level[x - _BOUND < q[0]] = r[0]  # (last: a constant column is at the bottom)
            out[:, j] = ndtri(np.clip(level, _BOUND, 1 - _BOUND))
        return out

    def get_feature_names_out(self, input_features=None):
        """The output columns' names: '<col>', '<col>_missing',
        '<col>_bin<t>', '<col>=<category>', '<col>=<infrequent>'."""
        check_is_fitted(self, "is_categorical_")
        names = (list(self.feature_names_in_) if hasattr(self, "feature_names_in_")
                 else [f"x{j}" for j in range(self.n_features_in_)])
        numeric = [n for n, cat in zip(names, self.is_categorical_) if not cat]
        out = list(numeric) + [f"{n}_missing" for n, ind in zip(numeric, self.has_indicator_)
                               if ind]
        if self.bin_encoder_ is not None:
            out += list(self.bin_encoder_.get_feature_names_out(numeric))
        categorical = [n for n, cat in zip(names, self.is_categorical_) if cat]
        for name, categories, infrequent in zip(categorical, self.categories_,
                                                self.has_infrequent_):
            out += [f"{name}={c}" for c in categories]
            if infrequent:
                out.append(f"{name}=<infrequent>")
        return np.asarray(out, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = ["float32"]  # (float32 for any input)
        return tags


def _is_numeric_column(column):
    try:
        column.astype("float64")
        return True
    except (TypeError, ValueError):
        return False

