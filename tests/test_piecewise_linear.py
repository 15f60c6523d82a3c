"""cbp.PiecewiseLinearEncoder, specified against the rtdl-num-embeddings
package's PiecewiseLinearEncoding (given the same bin edges, the same
encoding; its compute_bins' quantile edges), by its definition, and as a
scikit-learn transformer."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from cbp import MLPClassifier, PiecewiseLinearEncoder
from optional import optional

RNG = np.random.RandomState(0)
# columns of different kinds: continuous, skewed, few distinct values, binary
X_TRAIN = np.c_[RNG.normal(size=300), RNG.exponential(size=300),
                RNG.randint(0, 5, 300), RNG.randint(0, 2, 300)].astype(np.float64)
# beyond the training range too
X_TEST = np.r_[X_TRAIN[:50], X_TRAIN[:50] * 3 - 1]


def _rtdl():
    optional("torch")
    return optional("rtdl_num_embeddings")


@pytest.fixture
def torch_float64():
    """rtdl-num-embeddings computes in torch's default dtype (its encoding's
    weights, compute_bins' quantile levels): float64 for the comparisons."""
    torch = optional("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("n_bins", [2, 8, 48])
def test_equals_rtdl_given_the_same_edges(n_bins, torch_float64):
    import torch

    rtdl = _rtdl()
    bins = rtdl.compute_bins(torch.from_numpy(X_TRAIN), n_bins=n_bins)
    theirs = rtdl.PiecewiseLinearEncoding(bins)(torch.from_numpy(X_TEST)).numpy()
    ours = PiecewiseLinearEncoder(bins=[b.numpy() for b in bins]).fit(X_TRAIN)
    assert_allclose(ours.transform(X_TEST), theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_bins", [2, 8, 48])
def test_quantile_edges_equal_rtdls_compute_bins(n_bins, torch_float64):
    import torch

    rtdl = _rtdl()
    bins = rtdl.compute_bins(torch.from_numpy(X_TRAIN), n_bins=n_bins)
    ours = PiecewiseLinearEncoder(n_bins=n_bins).fit(X_TRAIN)
    for j, (a, b) in enumerate(zip(ours.bin_edges_, bins)):
        assert_allclose(a, b.numpy(), rtol=1e-12, atol=1e-12, err_msg=f"column {j}")
    assert ours.n_bins_.tolist() == [len(b) - 1 for b in bins]


def test_the_encoding_is_its_definition():
    """[1, ..., 1, (x - e_t) / width_t, 0, ..., 0] inside the edges; the
    first and last components extrapolate outside."""
    encoder = PiecewiseLinearEncoder(bins=[[0.0, 1.0, 3.0, 4.0]]).fit(np.c_[[0.0, 4.0]])
    out = encoder.transform(np.c_[[-1.0, 0.5, 2.0, 3.5, 6.0]])
    assert_allclose(out, [[-1.0, 0.0, 0.0],
                          [0.5, 0.0, 0.0],
                          [1.0, 0.5, 0.0],
                          [1.0, 1.0, 0.5],
                          [1.0, 1.0, 3.0]])


def test_one_bin_is_min_max_scaling_unclipped():
    encoder = PiecewiseLinearEncoder(n_bins=2).fit(np.c_[[0.0, 2.0, 0.0, 2.0, 0.0]])
    assert encoder.bin_edges_[0].tolist() == [0.0, 2.0]
    assert_allclose(encoder.transform(np.c_[[-2.0, 1.0, 4.0]]), np.c_[[-1.0, 0.5, 2.0]])


def test_a_constant_column_encodes_as_zeros():
    X = np.c_[np.full(20, 7.0), np.arange(20.0)]
    encoder = PiecewiseLinearEncoder(n_bins=4).fit(X)
    assert encoder.n_bins_.tolist() == [1, 4]
    out = encoder.transform(np.c_[[7.0, 100.0], [3.0, 3.0]])
    assert_array_equal(out[:, 0], 0.0)
    assert out.shape == (2, 5)


def test_nan_raises_naming_the_column():
    pd = optional("pandas")
    X = pd.DataFrame({"age": [1.0, 2.0, np.nan], "income": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"NaN in column\(s\) \['age'\].*impute"):
        PiecewiseLinearEncoder().fit(X)
    fitted = PiecewiseLinearEncoder(n_bins=2).fit(X.fillna(0.0))
    with pytest.raises(ValueError, match=r"\['age'\]"):
        fitted.transform(X)


@pytest.mark.parametrize("bins, match", [
    ([[0.0, 1.0]], "edges for 1 columns"),
    ([[0.0, 1.0], [1.0, 1.0]], r"bins\[1\]"),
    ([[0.0, 1.0], [2.0]], r"bins\[1\]"),
    ([[0.0, np.inf], [0.0, 1.0]], r"bins\[0\]"),
])
def test_bad_bins_raise_naming_the_column(bins, match):
    with pytest.raises(ValueError, match=match):
        PiecewiseLinearEncoder(bins=bins).fit(np.zeros((3, 2)))


def test_bad_n_bins_raises():
    with pytest.raises(InvalidParameterError, match="n_bins"):
        PiecewiseLinearEncoder(n_bins=1).fit(X_TRAIN)


def test_feature_names_and_float32():
    pd = optional("pandas")
    X = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) ** 2})
    encoder = PiecewiseLinearEncoder(n_bins=2).fit(X)
    assert encoder.get_feature_names_out().tolist() == ["a_bin0", "a_bin1", "b_bin0",
                                                        "b_bin1"]
    assert encoder.transform(X.to_numpy(np.float32)).dtype == np.float32


def test_in_a_pipeline_before_an_mlp():
    y = (X_TRAIN[:, 0] * X_TRAIN[:, 1] > 0).astype(int)
    model = make_pipeline(PiecewiseLinearEncoder(n_bins=8),
                          MLPClassifier((32,), max_iter=300, random_state=0)).fit(X_TRAIN, y)
    assert model.score(X_TRAIN, y) > 0.9


@parametrize_with_checks([PiecewiseLinearEncoder(n_bins=4)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
