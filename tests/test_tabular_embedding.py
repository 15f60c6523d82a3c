"""TabularMLPClassifier / TabularMLPRegressor with numeric_embedding: the
network embeds the encoder's numeric columns (its first outputs) and passes
the others (missing-value indicators, bin codes, categories) through
(MLPClassifier's embedded_features); without it, the default, nothing
changes."""

import pickle

import numpy as np
import pytest

import cbp
from cbp import TabularMLPClassifier, TabularMLPRegressor
from optional import optional
from test_tabular import FAST, _quiet_fit, _table

KINDS = ["periodic", "piecewise_linear"]
# a small embedding, two folds
SMALL = dict(FAST, n_folds=2, embedding_size=3, n_frequencies=4, n_bins=5)
N_NUMERIC = 2  # _table's age and income


def test_the_default_has_no_embedding():
    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(**SMALL), X, y)
    assert all(network.numeric_embedding is None for network in model.networks_)


@pytest.mark.parametrize("kind", KINDS)
def test_every_fold_embeds_the_numeric_columns_only(kind):
    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(**SMALL, numeric_embedding=kind), X, y)
    assert len(model.networks_) == 2
    n_out = model.encoder_.n_features_out_
    for network in model.networks_:
        assert network.numeric_embedding == kind
        assert network.embedded_features == N_NUMERIC
        assert network.coefs_[0].shape[-2] == N_NUMERIC * 3 + n_out - N_NUMERIC
    probabilities = model.predict_proba(X)
    assert probabilities.shape == (len(X), 2) and np.isfinite(probabilities).all()
    assert model.score(X, y) > 0.7


@pytest.mark.parametrize("kind", KINDS)
def test_a_regressor_trains_with_it(kind):
    X, _, y = _table()
    model = _quiet_fit(TabularMLPRegressor(**SMALL, numeric_embedding=kind), X, y)
    assert model.network_.embedded_features == N_NUMERIC
    assert model.score(X, y) > 0.5


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_and_pickle_predict_the_same(kind, tmp_path):
    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(**SMALL, numeric_embedding=kind), X, y)
    model.save(tmp_path / "m.npz")
    for copy in (cbp.load(tmp_path / "m.npz"), pickle.loads(pickle.dumps(model))):
        assert copy.get_params() == model.get_params()
        np.testing.assert_array_equal(copy.predict_proba(X), model.predict_proba(X))


def test_a_table_without_numeric_columns_trains_without_an_embedding():
    X, y, _ = _table()
    X = X.drop(columns=["age", "income"])
    model = _quiet_fit(TabularMLPClassifier(**SMALL, numeric_embedding="periodic"), X, y)
    assert all(network.numeric_embedding is None for network in model.networks_)
    assert np.isfinite(model.predict_proba(X)).all()


def test_a_bad_embedding_is_refused_by_name():
    X, y, _ = _table()
    with pytest.raises(ValueError, match="numeric_embedding"):
        TabularMLPClassifier(**SMALL, numeric_embedding="fourier").fit(X, y)


def test_onnx_export_is_refused_by_name():
    optional("skl2onnx")
    import cbp.onnx

    X, y, _ = _table()
    model = _quiet_fit(TabularMLPClassifier(**SMALL, numeric_embedding="periodic"), X, y)
    with pytest.raises(ValueError, match="numeric_embedding"):
        cbp.onnx.to_onnx(model, X[:1])
