"""cbp's fallbacks for scikit-learn's private helpers do what the helpers do.

cbp/_sklearn_compat.py imports each private helper from scikit-learn and
falls back to its own version when a scikit-learn release no longer has it;
each fallback is specified here against the helper it replaces.
"""

import numbers
import warnings

import numpy as np
import pytest
import scipy.optimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.multiclass import _check_partial_fit_first_call
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight

from cbp import _sklearn_compat as compat

X = np.zeros((4, 2))


@pytest.mark.parametrize("sample_weight", [None, 2.0, [1, 2, 3, 4]],
                         ids=["none", "scalar", "vector"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_sample_weight_fallback_gives_the_helper_s_weights(sample_weight, dtype):
    ours = compat._fallback_check_sample_weight(sample_weight, X, dtype=dtype)
    theirs = _check_sample_weight(sample_weight, X, dtype=dtype)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("sample_weight, match", [
    ([1, 2, 3], "shape"), ([1, np.nan, 1, 1], "NaN"), ([1, -1, 1, 1], "Negative")])
def test_check_sample_weight_fallback_rejects_what_the_helper_rejects(sample_weight, match):
    with pytest.raises(ValueError):
        _check_sample_weight(sample_weight, X, ensure_non_negative=True)
    with pytest.raises(ValueError, match=match):
        compat._fallback_check_sample_weight(sample_weight, X, ensure_non_negative=True)


class _Classifier:
    pass


def test_partial_fit_first_call_fallback_follows_the_helper():
    for check in (_check_partial_fit_first_call,
                  compat._fallback_check_partial_fit_first_call):
        clf = _Classifier()
        with pytest.raises(ValueError):
            check(clf)
        assert check(clf, classes=[2, 0, 1]) is True
        np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
        assert check(clf) is False
        assert check(clf, classes=[0, 1, 2]) is False
        with pytest.raises(ValueError):
            check(clf, classes=[0, 1])


@pytest.mark.parametrize("maxiter", [2, 50])
def test_check_optimize_result_fallback_counts_and_warns_as_the_helper(maxiter):
    result = scipy.optimize.minimize(lambda x: ((x - 3) ** 2).sum(), np.zeros(3),
                                     method="L-BFGS-B", options={"maxiter": maxiter})
    outcomes = []
    for check in (_check_optimize_result, compat._fallback_check_optimize_result):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            n_iter = check("lbfgs", result, max_iter=maxiter)
        outcomes.append((n_iter, any(issubclass(w.category, ConvergenceWarning)
                                     for w in caught)))
    assert outcomes[0] == outcomes[1]


def test_lbfgs_options_fallback_matches_the_helper():
    assert (compat._fallback_get_additional_lbfgs_options_dict("iprint", -1)
            == _get_additional_lbfgs_options_dict("iprint", -1))


def test_fit_context_fallback_validates_parameters_once():
    class Estimator(BaseEstimator):
        _parameter_constraints = {"alpha": [compat.Interval(numbers.Real, 0, None, closed="left")]}

        def __init__(self, alpha=1.0):
            self.alpha = alpha

        @compat._fallback_fit_context(prefer_skip_nested_validation=True)
        def fit(self):
            self.coefs_ = 1
            return self

    Estimator(alpha=1.0).fit()
    with pytest.raises(compat.InvalidParameterError):
        Estimator(alpha=-1.0).fit()


def test_callback_mixin_fallback_says_what_is_needed():
    with pytest.raises(RuntimeError, match="scikit-learn >= 1.9"):
        compat._FallbackCallbackSupportMixin().set_callbacks(object())


def test_matplotlib_fallback_names_the_caller(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="LossCurveDisplay requires matplotlib"):
        compat._fallback_check_matplotlib_support("LossCurveDisplay")


def test_every_private_helper_comes_through_the_compat_module():
    """No module of cbp's but _sklearn_compat imports a private scikit-learn name."""
    import pathlib
    import re

    import cbp

    private = re.compile(r"from sklearn[\w.]* import[^\n]*\b_[a-z]|sklearn\.utils\._|"
                         r"sklearn\.\w+\._")
    offenders = [path.name for path in pathlib.Path(cbp.__file__).parent.glob("*.py")
                 if path.name != "_sklearn_compat.py" and private.search(path.read_text())]
    assert not offenders, offenders
