"""cbp.RobustScaleSmoothClip, specified against pytabkit's RealMLP
preprocessing (tfms ['median_center', 'robust_scale', 'smooth_clip']: the
same statistics, the same values), by its definition, and as a
scikit-learn transformer."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from cbp import RobustScaleSmoothClip
from optional import optional

RNG = np.random.RandomState(0)
# columns of different kinds: heavy-tailed with outliers, constant, mostly one
# value (interquartile range 0: the half range instead), few distinct values
X_TRAIN = np.c_[RNG.standard_t(2, size=301), np.full(301, 4.0),
                np.where(RNG.uniform(size=301) < 0.8, 2.0, RNG.normal(size=301)),
                RNG.randint(0, 4, 301).astype(np.float64)]
X_TRAIN[:3, 0] = [1e6, -1e5, 3e3]
# beyond the training range too
X_TEST = np.r_[X_TRAIN[:60], X_TRAIN[:60] * 7 - 3]


def _pytabkit(X_fit, X_apply, **config):
    """pytabkit's own transform of X_apply, fitted on X_fit (float64)."""
    torch = optional("torch")
    models = optional("pytabkit.models.nn_models.models")
    data = optional("pytabkit.models.data.data")

    def dataset(X):
        return data.DictDataset({"x_cont": torch.from_numpy(X)},
                                {"x_cont": data.TensorInfo(feat_shape=[X.shape[1]])})

    factory = models.PreprocessingFactory(
        tfms=["median_center", "robust_scale", "smooth_clip"], **config)
    layer = factory.create(dataset(X_fit).tensor_infos).fit(dataset(X_fit))
    return layer(dataset(X_apply)).tensors["x_cont"].numpy()


@pytest.mark.parametrize("max_abs_value", [3.0, 1.5])
def test_equals_pytabkits_realmlp_preprocessing(max_abs_value):
    theirs = _pytabkit(X_TRAIN, X_TEST, smooth_clip_max_abs_value=max_abs_value)
    ours = RobustScaleSmoothClip(max_abs_value=max_abs_value).fit(X_TRAIN).transform(X_TEST)
    assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_statistics_are_the_median_and_the_interquartile_range():
    scaler = RobustScaleSmoothClip().fit(X_TRAIN)
    q25, q50, q75 = np.quantile(X_TRAIN[:, 0], [0.25, 0.5, 0.75])
    assert scaler.center_[0] == q50
    assert_allclose(scaler.spread_[0], q75 - q25, rtol=1e-15)
    assert scaler.factor_[0] == 1.0 / (scaler.spread_[0] + 1e-30)


def test_a_zero_interquartile_range_falls_back_to_half_the_range():
    column = X_TRAIN[:, 2]
    scaler = RobustScaleSmoothClip().fit(column[:, None])
    assert np.subtract(*np.quantile(column, [0.75, 0.25])) == 0.0
    assert_allclose(scaler.spread_, [0.5 * np.ptp(column)], rtol=1e-15)


def test_a_constant_column_becomes_zeros():
    scaler = RobustScaleSmoothClip().fit(X_TRAIN)
    assert scaler.spread_[1] == 0.0 and scaler.factor_[1] == 0.0
    assert_array_equal(scaler.transform(X_TEST)[:, 1], 0.0)


def test_values_are_centred_scaled_then_smoothly_clipped():
    scaler = RobustScaleSmoothClip(max_abs_value=2.0).fit(X_TRAIN)
    z = (X_TEST - scaler.center_) * scaler.factor_
    assert_allclose(scaler.transform(X_TEST), z / np.sqrt(1 + (z / 2.0) ** 2), rtol=1e-14)
    assert np.abs(scaler.transform(X_TEST)).max() < 2.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_keeps_the_input_dtype(dtype):
    scaler = RobustScaleSmoothClip().fit(X_TRAIN.astype(dtype))
    out = scaler.transform(X_TEST.astype(dtype))
    assert out.dtype == dtype
    assert_allclose(out, scaler.transform(X_TEST.astype(dtype).astype(np.float64)),
                    rtol=1e-6 if dtype == np.float32 else 0)


def test_nan_is_ignored_in_fit_and_kept_in_transform():
    X = X_TRAIN.copy()
    X[::5, 0] = np.nan
    scaler = RobustScaleSmoothClip().fit(X)
    expected = RobustScaleSmoothClip().fit(X[~np.isnan(X[:, 0]), :1])
    assert scaler.center_[0] == expected.center_[0]
    assert scaler.spread_[0] == expected.spread_[0]
    out = scaler.transform(X)
    assert_array_equal(np.isnan(out), np.isnan(X))


def test_a_column_without_numbers_gets_center_and_factor_zero():
    X = np.c_[np.full(5, np.nan), np.arange(5.0)]
    scaler = RobustScaleSmoothClip().fit(X)
    assert scaler.center_[0] == 0.0 and scaler.factor_[0] == 0.0


def test_infinite_values_are_refused():
    with pytest.raises(ValueError, match="infinity"):
        RobustScaleSmoothClip().fit(np.c_[[0.0, np.inf, 1.0]])


def test_max_abs_value_must_be_positive():
    with pytest.raises(InvalidParameterError, match="max_abs_value"):
        RobustScaleSmoothClip(max_abs_value=0.0).fit(X_TRAIN)


def test_feature_names_are_the_inputs():
    pd = optional("pandas")
    frame = pd.DataFrame(X_TRAIN[:, :2], columns=["a", "b"])
    scaler = RobustScaleSmoothClip().fit(frame)
    assert list(scaler.get_feature_names_out()) == ["a", "b"]


@parametrize_with_checks([RobustScaleSmoothClip()])
def test_sklearn_compatible(estimator, check):
    check(estimator)
