"""scikit-learn's callbacks (``sklearn.callback``) around cbp's training loops.

A fit (or a partial_fit call) is the root task; each epoch of a stochastic
solver, or each L-BFGS iteration, is a subtask whose begin and end hooks run
between kernel calls. A callback whose ``on_fit_task_end`` returns True stops
training after that epoch. Without callbacks -- none set on the estimator and
none propagated from a meta-estimator -- nothing here runs beyond one
attribute look-up per fit and a None check per epoch.
"""

from ._parts import PARTS, views


def has_callbacks(estimator):
    """Whether the estimator has callbacks of its own or from a meta-estimator."""
    return bool(getattr(estimator, "_skl_callbacks", None)) or hasattr(
        estimator, "_parent_callback_ctx"
    )


class FitTasks:
    """The task tree of one fit, for the callbacks (or None without them).

    Use ``FitTasks.start(...)``, which returns None when there is nothing to
    call; then ``begin_subtask()`` / ``end_subtask(reconstruction)`` around
    each epoch or iteration and ``end()`` once training is over.
    """

    def __init__(self, estimator, X, y, sample_weight, task_name, max_subtasks, subtask_name):
        self.estimator, self.X, self.y = estimator, X, y
        self.subtask_name = subtask_name
        self.metadata = {"sample_weight": sample_weight} if sample_weight is not None else None
        self.root = estimator._init_callback_context(
            task_name=task_name, max_subtasks=max_subtasks
        )
        self.root.call_on_fit_task_begin(estimator=estimator, X=X, y=y, metadata=self.metadata)
        self.current = None

    @classmethod
    def start(cls, estimator, X, y, sample_weight, *, task_name, max_subtasks,
              subtask_name="epoch"):
        if not has_callbacks(estimator):
            return None
        return cls(estimator, X, y, sample_weight, task_name, max_subtasks, subtask_name)

    def begin_subtask(self):
        self.current = self.root.subcontext(task_name=self.subtask_name)
        self.current.call_on_fit_task_begin(
            estimator=self.estimator, X=self.X, y=self.y, metadata=self.metadata
        )

    def end_subtask(self, reconstruction_attributes):
        """End the running subtask; whether a callback asks to stop.

        reconstruction_attributes: a callable giving the fitted attributes of
        the model as it stands (evaluated only if a callback wants it).
        """
        stop = self.current.call_on_fit_task_end(
            estimator=self.estimator, X=self.X, y=self.y, metadata=self.metadata,
            reconstruction_attributes=reconstruction_attributes,
        )
        self.current = None
        return bool(stop)

    def end(self):
        """End a subtask left open (an interrupted epoch, L-BFGS's last
        begun iteration) as an empty task, then the root task."""
        if self.current is not None:
            self.current.call_on_fit_task_end(estimator=self.estimator)
            self.current = None
        self.root.call_on_fit_task_end(
            estimator=self.estimator, X=self.X, y=self.y, metadata=self.metadata,
            reconstruction_attributes={},
        )


def snapshot(state, params, architecture):
    """A callable giving the reconstruction attributes of the model as it
    stands now: copies of every part's arrays (of the flat vector params,
    laid out for the Architecture) and of the records of its training state
    (cbp._state.TrainingState) that callbacks are shown."""

    def attributes():
        attrs = {PARTS[name].attribute: arrays
                 for name, arrays in views(params.copy(), architecture).items()}
        attrs.update(state.snapshot_attributes())
        return attrs

    return attributes


__all__ = ["FitTasks", "has_callbacks", "snapshot"]
