"""The training state as an object (cbp._state.TrainingState): its
state_dict is plain copies that round-trip, rollback and the callbacks'
snapshots go through it, and a state rebuilt from its dict trains on exactly
as the original."""

import copy
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_equal
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import cbp
from cbp import MLPClassifier, MLPRegressor
from cbp._options import SOLVERS, STOCHASTIC
from cbp._state import ATTRIBUTES, RECORDS, TrainingState

X, Y = make_classification(150, 6, n_informative=4, n_classes=3, n_clusters_per_class=1,
                           random_state=0)
X = StandardScaler().fit_transform(X)


def _fitted(solver="adam", **params):
    """A model a few epochs into training, with every record in use: dropout
    (its stream), the cosine schedule (the optimizer's epochs), early
    stopping (best parameters, validation records) unless told otherwise."""
    params = dict(dict(hidden_layer_sizes=(7,), solver=solver, max_iter=4, dropout=0.2,
                       learning_rate="cosine", early_stopping=True, random_state=0),
                  **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(**params).fit(X, Y)


def test_every_record_is_an_attribute_of_its_own():
    assert len({r.name for r in RECORDS}) == len({r.attribute for r in RECORDS}) \
        == len(RECORDS) == len(ATTRIBUTES)


@pytest.mark.parametrize("solver", STOCHASTIC)
def test_state_dict_round_trips_to_an_equal_state(solver):
    state_dict = TrainingState.of(_fitted(solver)).state_dict()
    assert_equal(TrainingState.from_state_dict(state_dict).state_dict(), state_dict)


def test_state_dict_is_copies_that_share_nothing_with_the_model():
    model = _fitted()
    state_dict = TrainingState.of(model).state_dict()
    before = copy.deepcopy(state_dict)
    state_dict["loss_curve"].append(1.0)
    state_dict["best_params"][:] = 0
    for vector in state_dict["optimizer"]["state"].values():
        vector[:] = 0
    assert_equal(TrainingState.of(model).state_dict(), before)


def test_fields_are_the_estimators_attributes():
    model = _fitted()
    state = TrainingState.of(model)
    assert state.n_iter == model.n_iter_ == 4
    assert state.loss_curve is model.loss_curve_
    assert state.optimizer is model._optimizer
    assert state.dropout_stream == model._dropout_stream
    state.no_improvement_count = 3
    assert model._no_improvement_count == 3


def test_a_failing_fit_leaves_the_state_equal():
    model = _fitted(early_stopping=False)
    before = TrainingState.of(model).state_dict()
    bad = X.copy()
    bad[-1, 0] = np.nan  # (read by the kernel in the epoch's last batch)
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(bad, Y)
    assert_equal(TrainingState.of(model).state_dict(), before)


def test_a_diverging_fit_leaves_the_state_equal():
    model = MLPRegressor(hidden_layer_sizes=(7,), solver="sgd", max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, X[:, 0])
    before = TrainingState.of(model).state_dict()
    model.set_params(learning_rate_init=1e300, warm_start=True)
    with pytest.raises(ValueError, match="diverged"):
        model.fit(X * 1e150, X[:, 0] * 1e150)
    assert_equal(TrainingState.of(model).state_dict(), before)


class _StateRecorder:
    """A FitCallback keeping, at every epoch's end, the model's state and the
    fitted estimator the callbacks are shown."""

    def __init__(self):
        self.states, self.fitted = [], []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if context.task_name == "epoch":
            self.states.append(TrainingState.of(estimator).state_dict())
            self.fitted.append(fitted_estimator)
        return False


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_snapshots_records_are_the_models_at_that_epoch(early_stopping):
    recorder = _StateRecorder()
    model = MLPClassifier(hidden_layer_sizes=(7,), max_iter=4, random_state=0,
                          early_stopping=early_stopping).set_callbacks(recorder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, Y)
    assert len(recorder.states) == 4
    for epoch, (state, fitted) in enumerate(zip(recorder.states, recorder.fitted)):
        assert state["n_iter"] == epoch + 1
        for record in RECORDS:
            if record.shown:
                assert_equal(getattr(fitted, record.attribute), state.get(record.name))


@pytest.mark.parametrize("solver", STOCHASTIC)
@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_a_state_from_its_dict_trains_on_exactly_as_the_original(solver, how):
    original = _fitted(solver, early_stopping=how == "warm_start")
    state_dict = TrainingState.of(original).state_dict()
    rebuilt = copy.deepcopy(original)
    for attribute in ATTRIBUTES:  # (the state alone carries the training on)
        rebuilt.__dict__.pop(attribute, None)
    TrainingState.from_state_dict(state_dict, store=rebuilt.__dict__)
    for model in (original, rebuilt):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if how == "partial_fit":
                model.partial_fit(X, Y)
            else:
                model.set_params(warm_start=True, max_iter=3).fit(X, Y)
    for a, b in zip(original.coefs_ + original.intercepts_,
                    rebuilt.coefs_ + rebuilt.intercepts_):
        assert_equal(a, b)
    assert_equal(TrainingState.of(rebuilt).state_dict(),
                 TrainingState.of(original).state_dict())


@pytest.mark.parametrize("solver", STOCHASTIC)
def test_pickling_keeps_the_state_equal(solver):
    model = _fitted(solver)
    assert_equal(TrainingState.of(pickle.loads(pickle.dumps(model))).state_dict(),
                 TrainingState.of(model).state_dict())


@pytest.mark.parametrize("solver", STOCHASTIC)
@pytest.mark.parametrize("early_stopping", [False, True])
def test_save_and_load_keep_the_state_equal(solver, early_stopping, tmp_path):
    # (the optimizer: the entries the archive saves for its solver, which are
    # what training on reads; sgd's kernel also counts updates it never uses)
    model = _fitted(solver, early_stopping=early_stopping)
    model.save(tmp_path / "model.npz")
    loaded = cbp.load(tmp_path / "model.npz")
    saved, read = (TrainingState.of(m).state_dict() for m in (model, loaded))
    assert_equal({k: v for k, v in read.items() if k != "optimizer"},
                 {k: v for k, v in saved.items() if k != "optimizer"})
    for entry in SOLVERS[solver].state_names(model.learning_rate):
        assert_equal(getattr(loaded._optimizer, entry.name),
                     getattr(model._optimizer, entry.name))
