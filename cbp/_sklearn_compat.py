"""Every private scikit-learn helper cbp uses, in one place, each with a fallback.

cbp reproduces scikit-learn 1.9's MLP arithmetic and is tested against it,
but it must keep working when a user upgrades scikit-learn: a later release
may move or rename these private helpers. Each import below falls back to
cbp's own version of what the helper does (or, for callbacks, to a mixin that
says they need scikit-learn >= 1.9). The public API cbp uses (BaseEstimator,
the mixins, LabelBinarizer, train_test_split, the metrics, validation
helpers with public names) is imported where it is used.

The parameter-constraint classes (Interval, StrOptions, Options) are
scikit-learn's, imported from their module of 1.2 onwards: estimators'
``_parameter_constraints`` are checked by BaseEstimator._validate_params,
which uses exactly those classes.
"""

import functools
import warnings

import numpy as np
import scipy

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import (  # noqa: F401 (re-exported)
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
)

# --- cbp's own versions, used where scikit-learn no longer has the helper ---

def _fallback_fit_context(*, prefer_skip_nested_validation):
    """Validate the parameters before fit (not before a partial_fit of a
    fitted model), as scikit-learn's _fit_context does."""

    def decorator(fit_method):
        @functools.wraps(fit_method)
        def wrapper(estimator, *args, **kwargs):
            fitted = hasattr(estimator, "coefs_")
            if not (fit_method.__name__ == "partial_fit" and fitted):
                estimator._validate_params()
            return fit_method(estimator, *args, **kwargs)

        return wrapper

    return decorator


def _fallback_validate_data(estimator, /, X="no_validation", y="no_validation", **kwargs):
    """validate_data became a function in 1.6; it was a method before."""
    return estimator._validate_data(X, y, **kwargs)


def _fallback_check_sample_weight(sample_weight, X, *, dtype=None,
                                  ensure_non_negative=False, **_):
    """sample_weight as a validated (n_samples,) vector of dtype."""
    n = X.shape[0]
    dtype = dtype or np.float64
    if sample_weight is None:
        return np.ones(n, dtype=dtype)
    sample_weight = np.asarray(sample_weight, dtype=dtype)
    if sample_weight.ndim == 0:
        return np.full(n, sample_weight, dtype=dtype)
    if sample_weight.shape != (n,):
        raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected {(n,)}!")
    if not np.isfinite(sample_weight).all():
        raise ValueError("Input sample_weight contains NaN or infinity.")
    if ensure_non_negative and np.any(sample_weight < 0):
        raise ValueError("Negative values in data passed to `sample_weight`")
    return sample_weight


def _fallback_check_partial_fit_first_call(clf, classes=None):
    """Set classes_ on the first partial_fit call (True); check them later."""
    if getattr(clf, "classes_", None) is None and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if classes is not None:
        if getattr(clf, "classes_", None) is not None:
            if not np.array_equal(clf.classes_, np.unique(classes)):
                raise ValueError(
                    "`classes=%r` is not the same as on last call to partial_fit, "
                    "was: %r" % (classes, clf.classes_)
                )
            return False
        clf.classes_ = np.unique(classes)
        return True
    return False


def _fallback_check_optimize_result(solver, result, max_iter=None, extra_warning_msg=None):
    """Warn when L-BFGS did not converge; the number of iterations run."""
    if result.status != 0:
        message = result.message
        message = message.decode("latin1") if isinstance(message, bytes) else message
        warnings.warn(
            f"{solver} failed to converge after {result.nit} iteration(s) "
            f"(status={result.status}):\n{message}\n" + (extra_warning_msg or ""),
            ConvergenceWarning,
            stacklevel=2,
        )
    n_iter = result.nit
    return n_iter if max_iter is None else min(n_iter, max_iter)


def _fallback_get_additional_lbfgs_options_dict(key, value):
    """L-BFGS-B's verbosity option; SciPy 1.15 deprecated iprint."""
    major, minor = (int(v) for v in scipy.__version__.split(".")[:2])
    return {} if (major, minor) >= (1, 15) else {key: value}


def _fallback_check_matplotlib_support(caller_name):
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller_name} requires matplotlib. You can install matplotlib with "
            "`pip install matplotlib`"
        ) from exc


class _FallbackCallbackSupportMixin:
    """Stands in for scikit-learn's mixin when sklearn.callback is absent."""

    def set_callbacks(self, *callbacks):
        raise RuntimeError(
            "callbacks need scikit-learn's sklearn.callback (scikit-learn >= 1.9)"
        )


# --- scikit-learn's own, where it has them ----------------------------------
# (each: the helper, and where it lives in the scikit-learn cbp is tested with)

try:
    from sklearn.base import _fit_context
except ImportError:  # pragma: no cover - depends on the installed scikit-learn
    _fit_context = _fallback_fit_context

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover
    validate_data = _fallback_validate_data

try:
    from sklearn.utils.validation import _check_sample_weight
except ImportError:  # pragma: no cover
    _check_sample_weight = _fallback_check_sample_weight

try:
    from sklearn.utils.multiclass import _check_partial_fit_first_call
except ImportError:  # pragma: no cover
    _check_partial_fit_first_call = _fallback_check_partial_fit_first_call

try:
    from sklearn.utils.optimize import _check_optimize_result
except ImportError:  # pragma: no cover
    _check_optimize_result = _fallback_check_optimize_result

try:
    from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
except ImportError:  # pragma: no cover
    _get_additional_lbfgs_options_dict = _fallback_get_additional_lbfgs_options_dict

try:
    from sklearn.utils._optional_dependencies import check_matplotlib_support
except ImportError:  # pragma: no cover
    check_matplotlib_support = _fallback_check_matplotlib_support

try:
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # pragma: no cover
    CallbackSupportMixin = _FallbackCallbackSupportMixin
