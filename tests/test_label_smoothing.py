"""MLPClassifier(label_smoothing=epsilon), specified against PyTorch.

Multiclass: ``torch.nn.CrossEntropyLoss(label_smoothing=epsilon)``. Binary
and multilabel: the logistic loss of the smoothed 0/1 targets y (1 -
epsilon) + epsilon / 2 (``binary_cross_entropy_with_logits``). The same
starting weights (cbp's for random_state=0), five full-batch steps, the
same weights after (relative 1e-9, float64). The validation loss stays the
log-loss of the true labels.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

import cbp
from cbp import MLPClassifier
from parts import initial_arrays
from optional import optional
from torch_layers import full_batch_steps

N = 60
RTOL = 1e-9
EPSILONS = [0.1, 0.3]


def _fit(model, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **fit_params)


def _data(task):
    if task == "multilabel":
        X, Y = make_multilabel_classification(N, 5, n_classes=3, random_state=0)
        return StandardScaler().fit_transform(X), Y
    X, y = make_classification(N, 5, n_informative=4, n_redundant=0,
                               n_classes=3 if task == "multiclass" else 2,
                               n_clusters_per_class=1, random_state=0)
    return StandardScaler().fit_transform(X), y


def _torch_loss(torch, task, epsilon):
    """The summed loss of logits ``out`` for targets as full_batch_steps
    passes them (float, (n, n_outputs))."""
    F = torch.nn.functional
    if task == "multiclass":
        return lambda out, target: F.cross_entropy(
            out, target[:, 0].long(), label_smoothing=epsilon, reduction="sum")
    return lambda out, target: F.binary_cross_entropy_with_logits(
        out, target * (1 - epsilon) + epsilon / 2, reduction="sum")


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("epsilon", EPSILONS)
@pytest.mark.parametrize("solver", ["sgd", "adamw"])
def test_five_steps_equal_pytorch(task, epsilon, solver):
    torch = optional("torch")
    X, y = _data(task)
    params = dict(hidden_layer_sizes=(7,), solver=solver, learning_rate_init=0.05,
                  momentum=0.0, batch_size=N, shuffle=False, alpha=0.0, random_state=0,
                  tol=0.0, n_iter_no_change=10**6, max_iter=5, label_smoothing=epsilon)
    ours = _fit(MLPClassifier(**params), X, y)
    n_out = ours.n_outputs_
    units = [5, 7, n_out]
    arrays = initial_arrays(units, "relu", 0, np.float64)
    coefs, intercepts = arrays["coefs"], arrays["intercepts"]
    if solver == "sgd":
        make = lambda p: torch.optim.SGD(p, lr=0.05)  # noqa: E731
    else:
        make = lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.01)  # noqa: E731
    target = y if task != "multiclass" else y.reshape(-1, 1)
    theirs_coefs, theirs_intercepts = full_batch_steps(
        torch, "relu", coefs, intercepts, X, target, _torch_loss(torch, task, epsilon), 5,
        make)
    for l in range(2):
        assert_allclose(ours.coefs_[l], theirs_coefs[l], rtol=RTOL, atol=1e-12,
                        err_msg=f"coefs_[{l}]")
        assert_allclose(ours.intercepts_[l], theirs_intercepts[l], rtol=RTOL, atol=1e-12,
                        err_msg=f"intercepts_[{l}]")


def test_zero_is_no_smoothing_bit_for_bit():
    X, y = _data("multiclass")
    plain = _fit(MLPClassifier(hidden_layer_sizes=(7,), max_iter=5, random_state=0), X, y)
    zero = _fit(MLPClassifier(hidden_layer_sizes=(7,), max_iter=5, random_state=0,
                              label_smoothing=0.0), X, y)
    assert_array_equal(zero.coefs_[0], plain.coefs_[0])
    assert zero.loss_curve_ == plain.loss_curve_


@pytest.mark.parametrize("early_stopping", [False, True])
def test_the_validation_loss_is_the_true_labels_log_loss(early_stopping):
    X, y = make_classification(300, 5, n_informative=4, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    model = _fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                               label_smoothing=0.2, early_stopping=early_stopping),
                 X[:240], y[:240], X_val=X[240:], y_val=y[240:])
    expected = log_loss(y[240:], model.predict_proba(X[240:]), labels=model.classes_)
    if not early_stopping:  # (early stopping keeps the best epoch's weights)
        assert_allclose(model.validation_loss_curve_[-1], expected, rtol=1e-9)
    assert model.validation_loss_curve_[-1] < model.loss_curve_[-1]


def test_early_stopping_splits_true_labels_and_trains_on_smoothed_ones():
    X, y = make_classification(300, 5, n_informative=4, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    model = _fit(MLPClassifier(hidden_layer_sizes=(16,), max_iter=60, random_state=0,
                               learning_rate_init=0.01, label_smoothing=0.2,
                               early_stopping=True), X, y)
    assert model.best_validation_score_ > 0.8
    # the smoothed log-loss has a floor: the entropy of the smoothed targets
    floor = -(0.8 + 0.2 / 3) * np.log(0.8 + 0.2 / 3) - 2 * (0.2 / 3) * np.log(0.2 / 3)
    assert min(model.loss_curve_) > floor


@pytest.mark.parametrize("value", [1.0, -0.1, 1.5])
def test_bad_label_smoothing_raises_naming_it(value):
    X, y = _data("binary")
    with pytest.raises(InvalidParameterError, match="label_smoothing"):
        MLPClassifier(label_smoothing=value).fit(X, y)


def test_save_load_and_partial_fit_keep_label_smoothing(tmp_path):
    X, y = _data("multiclass")
    model = _fit(MLPClassifier(hidden_layer_sizes=(7,), max_iter=3, random_state=0,
                               label_smoothing=0.1), X, y)
    model.save(tmp_path / "m.npz")
    loaded = cbp.load(tmp_path / "m.npz")
    assert loaded.label_smoothing == 0.1
    loaded.partial_fit(X, y)
    model.partial_fit(X, y)
    assert_array_equal(loaded.coefs_[0], model.coefs_[0])
