"""The training state of a fitted estimator: what a later fit continues.

Every value a fit records or carries on to the next fit (``warm_start``,
``partial_fit``, a loaded or unpickled model) is a ``Record`` of ``RECORDS``,
described once, with its kind and where it is set up, saved and shown; the
estimator's set-up (``TrainingState.start``), persistence (the ``attr/``
entries of an archive, ``loaded``), the callbacks' snapshots
(``snapshot_attributes``) and the rollback of a failed fit (``state_dict`` /
``from_state_dict``) all read that one list. A new record is one line here.

A ``TrainingState`` writes through to a store, a dict holding each record
under its estimator attribute (scikit-learn's names: ``n_iter_``,
``loss_curve_``, ..., cbp's ``_no_improvement_count``, ``_best_params``,
``_optimizer``, ``_dropout_seed``, ``_dropout_stream``): built on an
estimator's ``__dict__`` (``TrainingState.of(estimator)``) its fields are the
estimator's fitted attributes, present or absent in the same cases as
scikit-learn's, and pickled with it as they always were.
"""

import copy
import math
from dataclasses import dataclass

import numpy as np

from ._options import SOLVERS

# initial values that are not values: the record is removed, left as it is,
# or a copy of the new model's parameter vector
class _Initial:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


ABSENT, KEPT, PARAMETERS = _Initial("ABSENT"), _Initial("KEPT"), _Initial("PARAMETERS")


@dataclass(frozen=True)
class Record:
    """One value of the training state.

    name: the state's field; attribute: the estimator's attribute.
    kind: 'scalar' (a Python int or float, or None), 'list' (a list of
    floats, one per epoch, or None), 'vector' (a 1-d ndarray of the
    parameters' dtype, or None) or 'optimizer' (a cbp._optimizers object, or
    None). type: a scalar's type (a list's items are floats).
    stochastic: set up by the stochastic solvers only (else by every solver).
    initial: its value when a new model is set up, (without early stopping,
    with it); or ABSENT (removed), KEPT (left as it is), PARAMETERS (a copy
    of the new parameter vector).
    loaded: a stochastic model's value when its archive has none.
    archived: saved as the archive's ``attr/<attribute>`` (the optimizer is
    saved by its own entries, the best parameters rebuilt from the weights).
    shown: in the callbacks' reconstruction attributes.
    validation: a list a fit with validation data starts if it has none.
    """

    name: str
    attribute: str
    kind: str
    type: type = float
    stochastic: bool = True
    initial: tuple = (KEPT, KEPT)
    loaded: object = None
    archived: bool = True
    shown: bool = False
    validation: bool = False


RECORDS = (
    Record("n_iter", "n_iter_", "scalar", int, stochastic=False, initial=(0, 0),
           shown=True),
    Record("t", "t_", "scalar", int, stochastic=False, initial=(0, 0), shown=True),
    Record("loss", "loss_", "scalar", stochastic=False, shown=True),
    Record("loss_curve", "loss_curve_", "list", initial=([], []), loaded=[], shown=True),
    Record("validation_scores", "validation_scores_", "list", initial=(None, []),
           shown=True, validation=True),
    Record("validation_loss_curve", "validation_loss_curve_", "list",
           initial=(None, []), shown=True, validation=True),
    Record("best_loss", "best_loss_", "scalar", initial=(math.inf, None), shown=True),
    Record("best_validation_score", "best_validation_score_", "scalar",
           initial=(None, -math.inf), shown=True),
    Record("no_improvement_count", "_no_improvement_count", "scalar", int,
           initial=(0, 0), loaded=0),
    # the weights early stopping falls back to (scikit-learn's _best_coefs)
    Record("best_params", "_best_params", "vector", stochastic=False,
           initial=(None, PARAMETERS), archived=False),
    # the optimizer's vectors and its schedule (learning rate, epochs started)
    Record("optimizer", "_optimizer", "optimizer", stochastic=False,
           initial=(None, None), archived=False),
    # the dropout stream: its key, drawn when dropout first trains the
    # model, and the rows trained on so far
    Record("dropout_seed", "_dropout_seed", "scalar", int, stochastic=False,
           initial=(ABSENT, ABSENT)),
    Record("dropout_stream", "_dropout_stream", "scalar", int, stochastic=False,
           initial=(ABSENT, ABSENT)),
)

NAMES = tuple(record.name for record in RECORDS)
ATTRIBUTES = frozenset(record.attribute for record in RECORDS)


def _copied(record, value):
    """A copy of a record's value that shares nothing with it."""
    if value is None:
        return None
    if record.kind == "list":
        return list(value)
    if record.kind == "vector":
        return np.array(value)
    if record.kind == "optimizer":
        return copy.deepcopy(value)
    return value


def optimizer_state(optimizer):
    """An optimizer as plain values: its own ``state_dict()`` (kind,
    rates, the update count, hyper-parameters, the state vectors copied, the
    schedule's state)."""
    return optimizer.state_dict()


def optimizer_from_state(state_dict):
    """A new optimizer of the state optimizer_state gave: one of its kind's
    class (cbp._options.SOLVERS) for vectors of the saved ones' length and
    dtype, which then loads the state."""
    like = next(iter(state_dict["state"].values()))
    optimizer = SOLVERS[state_dict["kind"]].optimizer(
        np.zeros_like(like), state_dict["learning_rate_init"], kind=state_dict["kind"],
        **state_dict["hyper_parameters"])
    optimizer.load_state_dict(copy.deepcopy(state_dict))
    return optimizer


class _Field:
    """A TrainingState field: the store's value under the record's
    attribute (None when absent)."""

    def __init__(self, record):
        self.attribute = record.attribute

    def __get__(self, state, owner=None):
        if state is None:
            return self
        return state.store.get(self.attribute)

    def __set__(self, state, value):
        state.store[self.attribute] = value

    def __delete__(self, state):
        state.store.pop(self.attribute, None)


class TrainingState:
    """The records of RECORDS, read and written in ``store`` (a dict; an
    estimator's ``__dict__`` with ``TrainingState.of``). Each record is a
    field of its name (``state.n_iter``, ``state.loss_curve``,
    ``state.optimizer``, ...): None when the store lacks it."""

    __slots__ = ("store",)

    def __init__(self, store=None):
        self.store = {} if store is None else store

    @classmethod
    def of(cls, estimator):
        """The state of ``estimator``, written through to its attributes."""
        return cls(estimator.__dict__)

    def state_dict(self):
        """{record name: value} of the records present, as plain copies: Python
        numbers, lists of floats, ndarrays, the optimizer as
        ``optimizer_state`` gives it."""
        out = {}
        for record in RECORDS:
            if record.attribute in self.store:
                value = self.store[record.attribute]
                out[record.name] = (optimizer_state(value)
                                    if record.kind == "optimizer" and value is not None
                                    else _copied(record, value))
        return out

    @classmethod
    def from_state_dict(cls, state_dict, store=None):
        """The state ``state_dict`` describes, in ``store`` (a new dict by
        default): its records are copies of the dict's, and a record the dict
        lacks is removed from the store."""
        unknown = set(state_dict) - set(NAMES)
        if unknown:
            raise ValueError(f"unknown training state {sorted(unknown)}")
        state = cls(store)
        for record in RECORDS:
            if record.name not in state_dict:
                state.store.pop(record.attribute, None)
                continue
            value = state_dict[record.name]
            state.store[record.attribute] = (
                optimizer_from_state(value)
                if record.kind == "optimizer" and isinstance(value, dict)
                else _copied(record, value))
        return state

    def start(self, stochastic, early_stopping, params):
        """Set a new model's records up: every solver's, and the stochastic
        solvers' own if ``stochastic``; params: the new parameter vector
        (1-d ndarray), which early stopping's best parameters copy."""
        for record in RECORDS:
            if record.stochastic and not stochastic:
                continue
            self._set_initial(record, record.initial[bool(early_stopping)], params)

    def start_early_stopping(self, params):
        """Early stopping switched on since the model was set up (warm_start):
        the records early stopping keeps start, from the parameters params."""
        for record in RECORDS:
            without, with_early_stopping = record.initial
            if without != with_early_stopping:
                self._set_initial(record, with_early_stopping, params)

    def start_validation(self):
        """A fit scored on validation data: its lists start if absent."""
        for record in RECORDS:
            if record.validation and self.store.get(record.attribute) is None:
                self.store[record.attribute] = []

    def _set_initial(self, record, initial, params):
        if initial is KEPT:
            return
        if initial is ABSENT:
            self.store.pop(record.attribute, None)
        elif initial is PARAMETERS:
            self.store[record.attribute] = params.copy()
        else:
            self.store[record.attribute] = _copied(record, initial)

    def loaded(self, archived, stochastic, early_stopping, params):
        """Set a loaded model's records: ``archived`` ({attribute: value} of
        the archive's records), the stochastic records it lacks at their
        ``loaded`` value (a stochastic model), the best parameters a copy of
        params (early stopping) or None."""
        for record in RECORDS:
            if record.attribute in archived:
                self.store[record.attribute] = archived[record.attribute]
            elif record.stochastic and stochastic:
                self.store[record.attribute] = _copied(record, record.loaded)
        self.best_params = params.copy() if early_stopping else None

    def snapshot_attributes(self):
        """{attribute: a copy} of the records the callbacks are shown (None
        for one absent)."""
        return {record.attribute: _copied(record, self.store.get(record.attribute))
                for record in RECORDS if record.shown}


for _record in RECORDS:
    setattr(TrainingState, _record.name, _Field(_record))
del _record


def archived_records(kind):
    """The records an archive holds as ``attr/<attribute>`` of this kind
    ('scalar': {attribute: type}; 'list': their attributes)."""
    if kind == "scalar":
        return {r.attribute: r.type for r in RECORDS if r.archived and r.kind == "scalar"}
    return tuple(r.attribute for r in RECORDS if r.archived and r.kind == kind)


__all__ = ["RECORDS", "Record", "TrainingState", "archived_records"]
