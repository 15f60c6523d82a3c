"""LossCurveDisplay: a fitted MLP's training curves, in scikit-learn's Display style."""

import numpy as np

from ._options import STOCHASTIC, quoted
from ._sklearn_compat import check_matplotlib_support


class LossCurveDisplay:
    """The loss per epoch of a fitted MLP, with its validation curves.

    Build it with :meth:`from_estimator`; the constructor takes the curves
    themselves. Like scikit-learn's displays, ``plot`` stores the matplotlib
    objects it draws: ``ax_``, ``figure_``, ``lines_`` (a dict of the drawn
    curves by name) and ``ax_score_`` (the second y axis of the validation
    score, or None).

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
        The training loss after each epoch (``loss_curve_``).
    validation_loss_curve : array-like of shape (n_epochs,), default=None
        The loss (without the L2 term) on the validation data after each epoch
        (``validation_loss_curve_``).
    validation_scores : array-like of shape (n_epochs,), default=None
        The validation score after each epoch (``validation_scores_``).
    best_epoch : int, default=None
        The epoch (counting from 1) whose model early stopping kept; marked.
    estimator_name : str, default=None
        Shown in the title.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from cbp import LossCurveDisplay, MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> model = MLPClassifier(hidden_layer_sizes=(32,),
    ...                       early_stopping=True, random_state=0)
    >>> model = model.fit(X / 16, y)
    >>> display = LossCurveDisplay.from_estimator(model)
    >>> sorted(display.lines_)
    ['kept epoch', 'training loss', 'validation loss', 'validation score']
    >>> display.ax_.get_title()
    'MLPClassifier: loss per epoch'
    >>> plt.close(display.figure_)
    """

    def __init__(self, *, loss_curve, validation_loss_curve=None, validation_scores=None,
                 best_epoch=None, estimator_name=None):
        self.loss_curve = loss_curve
        self.validation_loss_curve = validation_loss_curve
        self.validation_scores = validation_scores
        self.best_epoch = best_epoch
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None):
        """Plot the curves a fitted cbp (or scikit-learn) MLP recorded.

        Parameters
        ----------
        estimator : fitted MLPClassifier or MLPRegressor
            Trained by a stochastic solver (any but 'lbfgs'): L-BFGS records
            no curve.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.
        name : str, default=None
            The title's name of the estimator (its class name when None).

        Returns
        -------
        display : LossCurveDisplay
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        loss_curve = getattr(estimator, "loss_curve_", None)
        if loss_curve is None:
            raise ValueError(
                f"{type(estimator).__name__} has no loss_curve_: fit it first, with a "
                f"stochastic solver ({quoted(STOCHASTIC, ' or ')}; L-BFGS records none)."
            )
        scores = getattr(estimator, "validation_scores_", None)
        best_epoch = None
        if getattr(estimator, "early_stopping", False) and scores:
            finite = np.where(np.isfinite(scores), scores, -np.inf)
            best_epoch = int(np.argmax(finite)) + 1
        display = cls(
            loss_curve=loss_curve,
            validation_loss_curve=getattr(estimator, "validation_loss_curve_", None),
            validation_scores=scores,
            best_epoch=best_epoch,
            estimator_name=name or type(estimator).__name__,
        )
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the curves on ``ax`` (a new figure when None); returns self."""
        check_matplotlib_support(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        epochs = np.arange(1, len(self.loss_curve) + 1)
        self.lines_ = {}
        (self.lines_["training loss"],) = ax.plot(epochs, self.loss_curve,
                                                  label="training loss")
        if self.validation_loss_curve is not None and len(self.validation_loss_curve):
            (self.lines_["validation loss"],) = ax.plot(
                epochs, self.validation_loss_curve, label="validation loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        self.ax_score_ = None
        if self.validation_scores is not None and len(self.validation_scores):
            self.ax_score_ = ax.twinx()
            (self.lines_["validation score"],) = self.ax_score_.plot(
                epochs, self.validation_scores, color="tab:green", linestyle="--",
                label="validation score")
            self.ax_score_.set_ylabel("validation score")
        if self.best_epoch is not None:
            self.lines_["kept epoch"] = ax.axvline(
                self.best_epoch, color="grey", linestyle=":",
                label=f"kept (epoch {self.best_epoch})")
        handles = list(self.lines_.values())
        # (on the upper axes, so that no curve is drawn over it)
        (self.ax_score_ or ax).legend(handles, [h.get_label() for h in handles],
                                      loc="center right")
        if self.estimator_name:
            ax.set_title(f"{self.estimator_name}: loss per epoch")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
