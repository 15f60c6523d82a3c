"""Bagging over all the rows (the tabular estimators' ``n_folds``): what each
fold's network trains on, what the model predicts, its out-of-fold score,
and that none of it depends on the threads the folds run on.

Specified against the parts it is made of: each fold's network is the
network ``MLPClassifier`` / ``MLPRegressor`` trains by hand on that fold's
rows (the same parameters, seed and validation rows), and every prediction
is the mean of those networks'.
"""

import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score

import cbp
from cbp import TabularMLPClassifier, TabularMLPRegressor
from cbp._bagging import folds
from optional import optional

FAST = dict(size="small", ensemble_size=2, max_iter=6, random_state=0,
            network_params={"hidden_layer_sizes": (16,)})
TASKS = [(TabularMLPClassifier, "classes"), (TabularMLPRegressor, "values")]


def _table(n=300, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    signal = X[:, 0] - X[:, 1] ** 2 + 0.5 * X[:, 2]
    return X, np.digitize(signal, [-1.0, 0.0]), signal + 0.1 * rng.normal(size=n)


def _fit(model, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **kwargs)


def _data(target):
    X, classes, values = _table()
    return X, (classes if target == "classes" else values)


def _output(model, X):
    return model.predict_proba(X) if hasattr(model, "predict_proba") else model.predict(X)


# ------------------------------------------------------------------- folds


@pytest.mark.parametrize("stratify", [False, True])
def test_every_row_is_in_exactly_one_validation_part(stratify):
    y = np.repeat([0, 1, 2], [50, 30, 20])
    parts = folds(len(y), y, 5, stratify, seed=0)
    assert len(parts) == 5
    validation = np.concatenate([v for _, v in parts])
    np.testing.assert_array_equal(np.sort(validation), np.arange(len(y)))
    for train, v in parts:
        np.testing.assert_array_equal(np.sort(np.concatenate([train, v])), np.arange(len(y)))


def test_stratified_folds_hold_each_class_in_equal_shares():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    for _, validation in folds(len(y), y, 5, True, seed=0):
        np.testing.assert_array_equal(np.bincount(y[validation]), [10, 6, 4])


def test_a_class_of_one_row_is_in_every_training_part():
    y = np.array([0] * 40 + [1] * 40 + [2] + [3] * 2)
    for train, validation in folds(len(y), y, 4, True, seed=0):
        assert 80 in train and 80 not in validation
        assert set(y[train]) == {0, 1, 2, 3}


def test_the_seed_chooses_the_folds():
    y = np.zeros(100)
    a, b, c = (folds(100, y, 4, False, seed) for seed in (0, 0, 1))
    assert all(np.array_equal(x[1], y_[1]) for x, y_ in zip(a, b))
    assert not all(np.array_equal(x[1], y_[1]) for x, y_ in zip(a, c))


# ---------------------------------------------------------------- networks


@pytest.mark.parametrize("Model, target", TASKS)
def test_n_folds_trains_one_network_per_fold(Model, target):
    X, y = _data(target)
    model = _fit(Model(**FAST, n_folds=3), X, y)
    assert len(model.networks_) == 3 and model.network_ is model.networks_[0]
    assert len({id(network) for network in model.networks_}) == 3


@pytest.mark.parametrize("Model, target", TASKS)
def test_each_fold_s_network_is_the_network_trained_on_its_rows(Model, target):
    """Fold i's network equals the network fitted by hand on the fold's
    training rows, early-stopped on its validation rows, with the fold's seed."""
    X, y = _data(target)
    model = _fit(Model(**FAST, n_folds=3), X, y)
    Z = model.encoder_.transform(X)
    if target == "values":
        y = (y - model.y_mean_[0]) / model.y_scale_[0]
    random_state = np.random.RandomState(FAST["random_state"])
    split_seed, *seeds = random_state.randint(np.iinfo(np.int32).max, size=4)
    parts = folds(len(y), y, 3, target == "classes", split_seed)
    for network, (train, validation), seed in zip(model.networks_, parts, seeds, strict=True):
        by_hand = clone(network).set_params(random_state=seed)
        _fit(by_hand, Z[train], y[train], X_val=Z[validation], y_val=y[validation])
        for a, b in zip(network.coefs_ + network.intercepts_,
                        by_hand.coefs_ + by_hand.intercepts_, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("Model, target", TASKS)
def test_prediction_is_the_mean_of_the_folds_networks(Model, target):
    X, y = _data(target)
    model = _fit(Model(**FAST, n_folds=3), X, y)
    Z = model.encoder_.transform(X)
    mean = np.mean([_output(network, Z) for network in model.networks_], axis=0)
    if target == "values":
        mean = mean * model.y_scale_[0] + model.y_mean_[0]
    np.testing.assert_array_equal(_output(model, X), mean)


def test_classifier_predicts_the_class_of_the_mean_probability():
    X, y = _data("classes")
    model = _fit(TabularMLPClassifier(**FAST, n_folds=3), X, y)
    proba = model.predict_proba(X)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(proba))


@pytest.mark.parametrize("Model, target", TASKS)
def test_oof_score_scores_each_row_by_the_network_that_did_not_train_on_it(Model, target):
    X, y = _data(target)
    model = _fit(Model(**FAST, n_folds=3), X, y)
    Z = model.encoder_.transform(X)
    random_state = np.random.RandomState(FAST["random_state"])
    split_seed = random_state.randint(np.iinfo(np.int32).max, size=4)[0]
    parts = folds(len(y), y, 3, target == "classes", split_seed)
    predicted = np.empty(len(y), dtype=object if target == "classes" else float)
    for network, (_, validation) in zip(model.networks_, parts, strict=True):
        if target == "classes":
            predicted[validation] = network.predict(Z[validation])
        else:
            predicted[validation] = (network.predict(Z[validation]) * model.y_scale_[0]
                                     + model.y_mean_[0])
    expected = (accuracy_score(y, predicted.astype(y.dtype)) if target == "classes"
                else r2_score(y, predicted))
    assert model.oof_score_ == pytest.approx(expected, rel=1e-6)


def test_oof_score_weighs_rows_by_their_sample_weight():
    X, y = _data("classes")
    weight = np.random.RandomState(1).uniform(0, 2, len(y))
    model = _fit(TabularMLPClassifier(**FAST, n_folds=3), X, y, sample_weight=weight)
    unweighted = _fit(TabularMLPClassifier(**FAST, n_folds=3), X, y,
                      sample_weight=np.ones(len(y)))
    assert model.oof_score_ != unweighted.oof_score_


def test_too_few_rows_per_fold_train_one_network_without_a_split():
    X, y = _data("classes")
    model = _fit(TabularMLPClassifier(**FAST, n_folds=5), X[:90], y[:90])
    assert len(model.networks_) == 1 and not hasattr(model, "oof_score_")
    assert model.network_.early_stopping is False


def test_one_fold_is_the_model_without_bagging():
    X, y = _data("classes")
    model = _fit(TabularMLPClassifier(**FAST, n_folds=1), X, y)
    assert len(model.networks_) == 1 and not hasattr(model, "oof_score_")
    assert model.network_.early_stopping and model.network_.validation_fraction == 0.2


def test_the_default_is_five_folds():
    X, y = _data("classes")
    assert len(_fit(TabularMLPClassifier(**FAST), X, y).networks_) == 5


def test_a_refit_without_folds_drops_the_out_of_fold_score():
    X, y = _data("classes")
    model = _fit(TabularMLPClassifier(**FAST, n_folds=3), X, y)
    _fit(model.set_params(n_folds=1), X, y)
    assert not hasattr(model, "oof_score_") and len(model.networks_) == 1


def test_a_class_of_one_row_is_learned_by_every_fold():
    X, y = _data("classes")
    y = y.copy()
    y[0] = 7
    model = _fit(TabularMLPClassifier(**FAST, n_folds=3), X, y)
    np.testing.assert_array_equal(model.classes_, [0, 1, 2, 7])
    for network in model.networks_:
        np.testing.assert_array_equal(network.classes_, model.classes_)
    assert model.predict_proba(X).shape == (len(y), 4)


@pytest.mark.parametrize("n_folds", [0, 1.5, "3"])
def test_bad_n_folds_is_refused_naming_it(n_folds):
    X, y = _data("classes")
    with pytest.raises((ValueError, TypeError), match="n_folds"):
        TabularMLPClassifier(n_folds=n_folds).fit(X, y)


# ----------------------------------------------------------------- threads


@pytest.mark.parametrize("Model, target", TASKS)
def test_the_same_model_on_any_number_of_threads(Model, target):
    X, y = _data(target)
    models = [_fit(Model(**FAST, n_folds=3, n_jobs=n_jobs), X, y) for n_jobs in (1, 2, -1)]
    outputs = [_output(model, X) for model in models]
    for other in outputs[1:]:
        np.testing.assert_array_equal(outputs[0], other)


def test_a_joblib_backend_trains_the_same_folds():
    """parallel_config's backend spreads the folds (here: processes, so
    the networks really are sent away and back)."""
    X, y = _data("classes")
    local = _fit(TabularMLPClassifier(**FAST, n_folds=3, n_jobs=1), X, y)
    with joblib.parallel_config(backend="loky", n_jobs=2):
        spread = _fit(TabularMLPClassifier(**FAST, n_folds=3, n_jobs=None), X, y)
    np.testing.assert_array_equal(local.predict_proba(X), spread.predict_proba(X))


# -------------------------------------------------------------- persistence


@pytest.mark.parametrize("Model, target", TASKS)
def test_save_load_and_pickle_predict_the_same_with_folds(Model, target, tmp_path):
    X, y = _data(target)
    model = _fit(Model(**FAST, n_folds=3), X, y)
    model.save(tmp_path / "m.npz")
    loaded = cbp.load(tmp_path / "m.npz")
    assert len(loaded.networks_) == 3 and loaded.oof_score_ == model.oof_score_
    np.testing.assert_array_equal(_output(loaded, X), _output(model, X))
    unpickled = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(_output(unpickled, X), _output(model, X))


def test_load_refuses_an_archive_missing_a_fold_s_network(tmp_path):
    X, y = _data("classes")
    model = _fit(TabularMLPClassifier(**FAST, n_folds=3), X, y)
    model.save(tmp_path / "m.npz")
    arrays = {key: value for key, value in np.load(tmp_path / "m.npz").items()
              if not key.startswith("network2/")}
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="2 fold networks for n_folds=3"):
        cbp.load(tmp_path / "bad.npz")


def test_onnx_export_averages_the_folds_networks():
    ort = optional("onnxruntime")
    optional("skl2onnx")
    import cbp.onnx

    X, y = _data("classes")
    model = _fit(TabularMLPClassifier(**FAST, n_folds=3), X, y)
    onx = cbp.onnx.to_onnx(model, options={"zipmap": False})
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {graph_input.name: X[:, [j]].astype(np.float64)
            for j, graph_input in enumerate(session.get_inputs())}
    labels, proba = session.run(None, feed)
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(labels, model.predict(X))


def test_sample_weight_as_a_list_is_the_array():
    X, y = _data("classes")
    weight = np.random.RandomState(1).uniform(0, 2, len(y))
    a = _fit(TabularMLPClassifier(**FAST, n_folds=3), X, y, sample_weight=weight)
    b = _fit(TabularMLPClassifier(**FAST, n_folds=3), X, y, sample_weight=list(weight))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
