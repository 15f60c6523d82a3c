"""Training you can watch and steer: scikit-learn's callbacks, explicit
validation data, and LossCurveDisplay."""

import warnings

import numpy as np
import pytest
from sklearn.callback import ProgressBar, ScoringMonitor
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cbp
from cbp import LossCurveDisplay, MLPClassifier, MLPRegressor
from cbp._options import STOCHASTIC
from optional import optional

X, Y = make_classification(120, 6, n_informative=4, n_classes=3, n_clusters_per_class=1,
                           random_state=0)
X = StandardScaler().fit_transform(X)
X_TRAIN, Y_TRAIN, X_VAL, Y_VAL = X[:90], Y[:90], X[90:], Y[90:]
XR, YR = make_regression(120, 6, noise=5.0, random_state=0)
XR = StandardScaler().fit_transform(XR)
YR = YR / YR.std()

SOLVERS = STOCHASTIC  # every stochastic solver cbp has (its registry)


def _quiet(fit, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


class Recorder:
    """A FitCallback that records every hook call and can stop training."""

    def __init__(self, stop_at=None, task_name="epoch"):
        self.calls, self.stop_at, self.task_name = [], stop_at, task_name
        self.fitted = {}

    def setup(self, estimator, context):
        self.calls.append(("setup",))

    def teardown(self, estimator, context):
        self.calls.append(("teardown",))

    def on_fit_task_begin(self, estimator, context):
        self.calls.append(("begin", context.task_name, context.task_id))

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        self.calls.append(("end", context.task_name, context.task_id))
        if context.task_name == self.task_name and fitted_estimator is not None:
            self.fitted[context.task_id] = fitted_estimator
        return context.task_name == self.task_name and context.task_id == self.stop_at


# ---------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("solver", SOLVERS)
def test_every_epoch_is_a_subtask_of_the_fit(solver):
    recorder = Recorder()
    model = _quiet(MLPClassifier(hidden_layer_sizes=(5,), solver=solver, max_iter=4,
                                 random_state=0).set_callbacks(recorder).fit, X, Y)
    assert recorder.calls == (
        [("setup",), ("begin", "fit", 0)]
        + [c for e in range(4) for c in (("begin", "epoch", e), ("end", "epoch", e))]
        + [("end", "fit", 0), ("teardown",)])
    assert model.n_iter_ == 4


def test_partial_fit_is_a_task_with_one_epoch():
    recorder = Recorder()
    model = MLPClassifier(hidden_layer_sizes=(5,), random_state=0).set_callbacks(recorder)
    model.partial_fit(X, Y, classes=[0, 1, 2])
    assert recorder.calls == [("setup",), ("begin", "partial_fit", 0), ("begin", "epoch", 0),
                              ("end", "epoch", 0), ("end", "partial_fit", 0), ("teardown",)]


@pytest.mark.parametrize("solver", SOLVERS)
def test_fitted_estimator_of_an_epoch_is_the_model_after_that_epoch(solver):
    recorder = Recorder()
    params = dict(hidden_layer_sizes=(5,), solver=solver, random_state=0)
    _quiet(MLPClassifier(max_iter=4, **params).set_callbacks(recorder).fit, X, Y)
    for epoch in (0, 2):
        after = _quiet(MLPClassifier(max_iter=epoch + 1, **params).fit, X, Y)
        snapshot = recorder.fitted[epoch]
        for a, b in zip(snapshot.coefs_, after.coefs_):
            np.testing.assert_array_equal(a, b)
        assert snapshot.n_iter_ == epoch + 1
        np.testing.assert_array_equal(snapshot.predict_proba(X), after.predict_proba(X))


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_callback_returning_true_stops_after_that_epoch(solver):
    params = dict(hidden_layer_sizes=(5,), solver=solver, random_state=0)
    stopped = _quiet(MLPClassifier(max_iter=50, **params).set_callbacks(Recorder(stop_at=2)).fit,
                     X, Y)
    three = _quiet(MLPClassifier(max_iter=3, **params).fit, X, Y)
    assert stopped.n_iter_ == 3 and len(stopped.loss_curve_) == 3
    for a, b in zip(stopped.coefs_, three.coefs_):
        np.testing.assert_array_equal(a, b)


def test_lbfgs_iterations_are_subtasks_and_can_stop_training():
    recorder = Recorder(stop_at=3, task_name="lbfgs-iter")
    model = _quiet(MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=100,
                                 random_state=0).set_callbacks(recorder).fit, X, Y)
    iterations = [c for c in recorder.calls if c[0] == "end" and c[1] == "lbfgs-iter"]
    assert iterations[-1] == ("end", "lbfgs-iter", 3)
    assert model.n_iter_ == 4
    np.testing.assert_array_equal(recorder.fitted[3].coefs_[0], model.coefs_[0])


def test_scoring_monitor_logs_one_score_per_epoch():
    monitor = ScoringMonitor(scoring="accuracy")
    _quiet(MLPClassifier(hidden_layer_sizes=(5,), max_iter=6, random_state=0)
           .set_callbacks(monitor).fit, X, Y)
    rows = monitor.get_logs().data
    epochs = [r for r in rows if r["task_name"] == "epoch"]
    assert [r["task_id"] for r in epochs] == list(range(6))
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in epochs)


@pytest.mark.parametrize("outer", ["pipeline", "grid_search"])
def test_progress_bar_on_an_outer_estimator_reaches_the_mlp(outer, capsys, monkeypatch):
    optional("rich")
    monkeypatch.setenv("COLUMNS", "250")  # (rich cuts lines to the terminal's width)
    mlp = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    estimator = make_pipeline(StandardScaler(), mlp)
    depth = 1
    if outer == "grid_search":
        estimator = GridSearchCV(estimator, {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2)
        depth = 2  # GridSearchCV -> Pipeline -> MLPClassifier
    estimator.set_callbacks(ProgressBar(max_propagation_depth=depth))
    _quiet(estimator.fit, X, Y)
    assert "MLPClassifier - fit" in capsys.readouterr().out


def test_progress_bar_on_the_mlp(capsys):
    optional("rich")
    _quiet(MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
           .set_callbacks(ProgressBar()).fit, XR, YR)
    assert "MLPRegressor - fit" in capsys.readouterr().out


def test_a_failed_fit_tears_callbacks_down_and_keeps_the_model():
    model = _quiet(MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit,
                   XR, YR)
    before = [c.copy() for c in model.coefs_]
    recorder = Recorder()
    model.set_callbacks(recorder)
    with pytest.raises(ValueError, match="non-finite"):
        # diverges during the first epoch: a task had begun
        model.set_params(learning_rate_init=1e300).fit(XR * 1e150, YR * 1e150)
    assert recorder.calls[1] == ("begin", "fit", 0)
    assert recorder.calls[-1] == ("teardown",)
    for a, b in zip(model.coefs_, before):
        np.testing.assert_array_equal(a, b)
    assert model._skl_callbacks == [recorder], "the callbacks were lost"


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_without_callbacks_no_task_is_made(solver, monkeypatch):
    import sklearn.callback._callback_context as context

    def forbidden(*args, **kwargs):
        raise AssertionError("a callback context was made without callbacks")

    monkeypatch.setattr(context.CallbackContext, "_from_estimator", forbidden)
    _quiet(MLPClassifier(hidden_layer_sizes=(5,), solver=solver, max_iter=3,
                         random_state=0).fit, X, Y)


# ---------------------------------------------------------------------------
# Explicit validation data
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("solver", SOLVERS)
def test_validation_data_is_scored_every_epoch_without_changing_training(solver):
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=6, random_state=0)
    plain = _quiet(MLPClassifier(**params).fit, X_TRAIN, Y_TRAIN)
    watched = _quiet(MLPClassifier(**params).fit, X_TRAIN, Y_TRAIN, X_val=X_VAL, y_val=Y_VAL)
    for a, b in zip(plain.coefs_, watched.coefs_):
        np.testing.assert_array_equal(a, b)
    assert len(watched.validation_scores_) == len(watched.validation_loss_curve_) == 6
    assert watched.validation_scores_[-1] == watched.score(X_VAL, Y_VAL)
    assert plain.validation_scores_ is None and plain.validation_loss_curve_ is None


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_validation_loss_is_the_training_loss_without_l2_on_the_validation_data(weighted):
    sample_weight_val = np.linspace(0.5, 2.0, 30) if weighted else None
    model = _quiet(MLPRegressor(hidden_layer_sizes=(5,), alpha=0.5, max_iter=5,
                                random_state=0).fit, XR[:90], YR[:90], X_val=XR[90:],
                   y_val=YR[90:], sample_weight_val=sample_weight_val)
    residual = YR[90:] - model.predict(XR[90:])
    w = np.ones(30) if sample_weight_val is None else sample_weight_val
    expected = 0.5 * np.sum(w * residual ** 2) / np.sum(w)
    np.testing.assert_allclose(model.validation_loss_curve_[-1], expected, rtol=1e-12)


def test_validation_log_loss_by_hand():
    model = _quiet(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit,
                   X_TRAIN, Y_TRAIN, X_val=X_VAL, y_val=Y_VAL)
    proba = model.predict_proba(X_VAL)
    expected = -np.mean(np.log(proba[np.arange(len(Y_VAL)), Y_VAL]))
    np.testing.assert_allclose(model.validation_loss_curve_[-1], expected, rtol=1e-10)


def test_early_stopping_on_validation_data_keeps_the_best_model_and_splits_nothing():
    params = dict(hidden_layer_sizes=(16,), learning_rate_init=0.05, max_iter=60,
                  n_iter_no_change=5, early_stopping=True, random_state=0)
    model = _quiet(MLPClassifier(**params).fit, X_TRAIN, Y_TRAIN, X_val=X_VAL, y_val=Y_VAL)
    assert model.n_iter_ < 60, "early stopping did not stop"
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.score(X_VAL, Y_VAL) == model.best_validation_score_
    # no split: the first epoch sees all 90 rows
    assert model.t_ == 90 * model.n_iter_


@pytest.mark.parametrize("make_call, match", [
    (lambda m: m.fit(X_TRAIN, Y_TRAIN, X_val=X_VAL), "together"),
    (lambda m: m.fit(X_TRAIN, Y_TRAIN, sample_weight_val=np.ones(30)), "sample_weight_val"),
    (lambda m: m.fit(X_TRAIN, Y_TRAIN, X_val=X_VAL[:, :4], y_val=Y_VAL), "features"),
    (lambda m: m.fit(X_TRAIN, Y_TRAIN, X_val=X_VAL, y_val=Y_VAL + 5), "not seen"),
    (lambda m: m.fit(X_TRAIN, Y_TRAIN, X_val=X_VAL, y_val=Y_VAL[:10]), "samples"),
    (lambda m: m.set_params(solver="lbfgs").fit(X_TRAIN, Y_TRAIN, X_val=X_VAL, y_val=Y_VAL),
     "lbfgs"),
    (lambda m: m.fit(X_TRAIN, Y_TRAIN, X_val=np.where(X_VAL > 1, np.nan, X_VAL), y_val=Y_VAL),
     "NaN"),
], ids=["X_val-alone", "weights-alone", "features", "unseen-labels", "lengths", "lbfgs", "nan"])
def test_bad_validation_data_raises_and_leaves_the_model_unfitted(make_call, match):
    model = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3)
    with pytest.raises(ValueError, match=match):
        make_call(model)
    assert not hasattr(model, "coefs_")


def test_validation_curves_are_saved_and_loaded(tmp_path):
    model = _quiet(MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, random_state=0).fit,
                   X_TRAIN, Y_TRAIN, X_val=X_VAL, y_val=Y_VAL)
    model.save(tmp_path / "m.npz")
    loaded = cbp.load(tmp_path / "m.npz")
    assert loaded.validation_loss_curve_ == model.validation_loss_curve_
    assert loaded.validation_scores_ == model.validation_scores_


# ---------------------------------------------------------------------------
# LossCurveDisplay
# ---------------------------------------------------------------------------

def test_loss_curve_display_draws_the_recorded_curves():
    optional("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    model = _quiet(MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.05,
                                 early_stopping=True, n_iter_no_change=3, max_iter=40,
                                 random_state=0).fit, X_TRAIN, Y_TRAIN, X_val=X_VAL,
                   y_val=Y_VAL)
    display = LossCurveDisplay.from_estimator(model)
    np.testing.assert_array_equal(display.lines_["training loss"].get_ydata(),
                                  model.loss_curve_)
    np.testing.assert_array_equal(display.lines_["validation loss"].get_ydata(),
                                  model.validation_loss_curve_)
    np.testing.assert_array_equal(display.lines_["validation score"].get_ydata(),
                                  model.validation_scores_)
    kept = int(np.argmax(model.validation_scores_)) + 1
    assert display.lines_["kept epoch"].get_xdata()[0] == kept
    assert display.figure_ is display.ax_.figure


def test_loss_curve_display_draws_on_a_given_axes():
    optional("matplotlib")
    import matplotlib.pyplot as plt

    model = _quiet(MLPRegressor(hidden_layer_sizes=(5,), max_iter=4, random_state=0).fit,
                   XR, YR)
    fig, ax = plt.subplots()
    display = LossCurveDisplay.from_estimator(model, ax=ax, name="mine")
    assert display.ax_ is ax and display.ax_score_ is None
    assert "validation loss" not in display.lines_
    assert "mine" in ax.get_title()
    plt.close(fig)


def test_loss_curve_display_needs_a_stochastic_fit():
    optional("matplotlib")
    model = _quiet(MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=4).fit,
                   XR, YR)
    with pytest.raises(ValueError, match="loss_curve_"):
        LossCurveDisplay.from_estimator(model)


def test_loss_curve_display_without_matplotlib_says_so(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    model = _quiet(MLPRegressor(hidden_layer_sizes=(5,), max_iter=2).fit, XR, YR)
    with pytest.raises(ImportError, match="matplotlib"):
        LossCurveDisplay.from_estimator(model)
