"""RobustScaleSmoothClip: RealMLP's numeric preprocessing (Holzmüller et
al., NeurIPS 2024, "Better by default: strong pre-tuned MLPs and boosted
trees on tabular data"; pytabkit's tfms ``['median_center', 'robust_scale',
'smooth_clip']``).

Column j with training median m_j is centred, x - m_j, and of the centred
training values' quantiles q_25, q_75, maximum and minimum the spread is

    s_j = q_75 - q_25,   or (max - min) / 2 when that is 0,

(quantiles by linear interpolation, numpy's default) and the factor f_j =
1 / (s_j + 1e-30), f_j = 0 when s_j = 0 (a constant column encodes as
zeros). A value becomes

    z = (x - m_j) f_j,   then   z / sqrt(1 + z^2 / c^2)

with c = ``max_abs_value`` (3): the smooth clip, the identity near 0, tending
to +-c. pytabkit's MedianCenterFactory, RobustScaleFactory and
smooth_clip_func, operation for operation.
"""

import warnings
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._sklearn_compat import Interval, _fit_context, validate_data

_EPS = 1e-30  # pytabkit's robust_scale_eps


def robust_statistics(X):
    """(center, spread, factor), each float64 (n_features,), of the float64
    array X (n_samples, n_features), NaN ignored: the medians, the spreads
    s_j and the factors f_j of the module doc (a column without a number:
    center 0, spread 0, factor 0)."""
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        center = np.nanquantile(X, 0.5, axis=0)
        center = np.where(np.isnan(center), 0.0, center)
        centred = X + (-center)  # pytabkit's BiasLayer: x + bias, bias = -median
        spread = np.nanquantile(centred, 0.75, axis=0) - np.nanquantile(centred, 0.25, axis=0)
        half_range = 0.5 * (np.nanmax(centred, axis=0, initial=-np.inf)
                            - np.nanmin(centred, axis=0, initial=np.inf))
        spread = np.where(spread == 0.0, half_range, spread)
    spread = np.where(np.isfinite(spread), spread, 0.0)
    return center, spread, robust_factor(spread)


def robust_factor(spread):
    """1 / (spread + 1e-30), 0 where spread is 0: float64, spread's shape."""
    spread = np.asarray(spread, dtype=np.float64)
    factor = 1.0 / (spread + _EPS)
    factor[spread == 0.0] = 0.0
    return factor


def smooth_clip(z, max_abs_value=3.0):
    """z / sqrt(1 + z^2 / max_abs_value^2), elementwise (pytabkit's
    smooth_clip_func, its operations in its order); NaN stays NaN."""
    return z / np.sqrt(1 + (1 / (max_abs_value**2)) * z**2)


class RobustScaleSmoothClip(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Centre numeric columns on their median, scale them by their
    interquartile range and clip them smoothly (RealMLP's preprocessing).

    ``z = (x - median) / IQR`` (half the range when the IQR is 0; a constant
    column becomes 0), then ``z / sqrt(1 + (z / max_abs_value)^2)``: nearly
    the identity within the bulk of a column, outliers squashed below
    ``max_abs_value``. pytabkit's ``median_center``, ``robust_scale`` and
    ``smooth_clip`` transformations exactly (see the module
    ``cbp._robust_scaling``).

    Parameters
    ----------
    max_abs_value : float > 0, default=3.0
        The bound c of the smooth clip ``z / sqrt(1 + z^2 / c^2)``
        (pytabkit's ``smooth_clip_max_abs_value``).

    Attributes
    ----------
    center_ : ndarray of float64, shape (``n_features_in_``,)
        Each column's training median.
    spread_ : ndarray of float64, shape (``n_features_in_``,)
        Its interquartile range, or half its range where that is 0 (0 for a
        constant column).
    factor_ : ndarray of float64, shape (``n_features_in_``,)
        ``1 / (spread_ + 1e-30)``, 0 where ``spread_`` is 0.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (``n_features_in_``,)

    Notes
    -----
    NaN is ignored in ``fit`` and kept in ``transform`` (as scikit-learn's
    RobustScaler does; a column with no number gets center 0 and factor 0).
    Infinite values are refused. Output: the input's dtype (float64 or
    float32; others become float64), shape (n_samples, ``n_features_in_``);
    the statistics are computed in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from cbp import RobustScaleSmoothClip
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [100.0]])
    >>> scaler = RobustScaleSmoothClip().fit(X)
    >>> scaler.center_, scaler.spread_
    (array([2.]), array([2.]))
    >>> scaler.transform(X).round(3)
    array([[-0.949],
           [-0.493],
           [ 0.   ],
           [ 0.493],
           [ 2.994]])
    """

    _parameter_constraints: dict = {
        "max_abs_value": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, max_abs_value=3.0):
        self.max_abs_value = max_abs_value

    def _validated(self, X, reset):
        return validate_data(self, X, reset=reset, dtype=(np.float64, np.float32),
                             ensure_all_finite="allow-nan")  # (refuses infinity)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn each column's median, spread and factor from X (n_samples,
        n_features)."""
        X = self._validated(X, reset=True)
        self.center_, self.spread_, self.factor_ = robust_statistics(X)
        return self

    def transform(self, X):
        """The scaled and clipped values: X's dtype, (n_samples,
        ``n_features_in_``)."""
        check_is_fitted(self)
        X = self._validated(X, reset=False)
        z = (X.astype(np.float64) + (-self.center_)) * self.factor_
        return smooth_clip(z, self.max_abs_value).astype(X.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
