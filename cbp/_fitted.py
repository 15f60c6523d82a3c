"""The fitted state of an estimator: the flat parameter vector behind
``coefs_``, ``intercepts_`` and every other part's arrays (cbp/_parts.py),
its pickling, and the undoing of a failed fit (``restored_on_error``).

``FlatParameters`` is a mixin of BaseMultilayerPerceptron: its methods keep
the estimator's arrays as views of one vector (the kernel's layout), which
is what the kernel trains and predicts from.
"""

import contextlib
import copy
import functools
import inspect

from ._parts import PARTS, Architecture, arrays_in_order, pack, parts_of, views
from ._state import ATTRIBUTES as TRAINING_STATE
from ._state import TrainingState


class FlatParameters:
    """The flat parameter vector of a fitted estimator, and its pickling."""

    @property
    def _units(self):
        # (an ensemble's per-member coefs are (k, n_in, n_out))
        return tuple([self.coefs_[0].shape[-2]] + [c.shape[-1] for c in self.coefs_])

    def _fitted_ensemble(self):
        """The fitted ensemble (members, form), or None: a plain network."""
        return self.__dict__.get("_ensemble")

    def _fitted_architecture(self):
        """The fitted network's Architecture: its units, and the parts its
        attributes hold (batch_norm_gammas_: batch normalisation; an array
        in input_scalings_[0] without an ensemble: the input scaling -- a
        part sharing its presence rule with another is there as a list of
        None; the numeric embedding fitted, _embedding, as the ensemble)."""
        state = self.__dict__
        ensemble = state.get("_ensemble")

        def holds(name, layer):
            arrays = state.get(PARTS[name].attribute)
            return arrays is not None and arrays[layer] is not None

        return Architecture(
            self._units, ensemble, batch_norm=PARTS["gammas"].attribute in state,
            input_scaling=ensemble is None and holds("input_scalings", 0),
            embedding=state.get("_embedding"))

    def _fitted_arrays(self, architecture):
        """{part name: the estimator's list of arrays} for every part of the
        architecture."""
        state = self.__dict__
        return {part.name: state[part.attribute] for part in parts_of(architecture)}

    def _packed_or_none(self, dtype=None):
        """(params, architecture) if every part's arrays are still the views
        of the flat vector cbp made (and of ``dtype``), else None.

        O(parts x layers), no array is read: a deep copy or pickle gives new
        arrays with their own memory, an assignment other objects."""
        state = self.__dict__
        packed = state.get("_packed")  # one read: (params, architecture, views)
        if packed is None:
            return None
        params, architecture, made = packed
        i, n = 0, len(made)
        for part in parts_of(architecture):
            for array in state.get(part.attribute) or ():
                if array is None:
                    continue
                if i == n or array is not made[i] or array.base is not params:
                    return None
                i += 1
        if i != n or (dtype is not None and params.dtype != dtype):
            return None
        return params, architecture

    def _params(self, dtype=None):
        """The flat parameter vector; every part's arrays become its views.

        Packs again when an array was replaced (a user may assign coefs_ or
        intercepts_, as in scikit-learn) or is not of ``dtype``. For
        training: it rebinds the arrays.
        """
        packed = self._packed_or_none(dtype)
        if packed is not None:
            return packed[0]
        if dtype is None:
            dtype = self.coefs_[0].dtype
        architecture = self._fitted_architecture()
        params = pack(self._fitted_arrays(architecture), architecture, dtype)
        self._set_params_vector(params, architecture)
        return params

    def _params_for_prediction(self):
        """(params, architecture) without changing the estimator: the flat
        vector, or a packed copy of the arrays if the user replaced them (so
        that their arrays stay theirs, as in scikit-learn, and concurrent
        predictions never write to the model)."""
        packed = self._packed_or_none()
        if packed is not None:
            return packed
        architecture = self._fitted_architecture()
        return (pack(self._fitted_arrays(architecture), architecture, self.coefs_[0].dtype),
                architecture)

    def _set_params_vector(self, params, architecture):
        """Make every part's attribute a list of views of params."""
        arrays = views(params, architecture)
        attributes = {PARTS[name].attribute: value for name, value in arrays.items()}
        attributes["_packed"] = (params, architecture, tuple(arrays_in_order(arrays)))
        # one dict update: other threads see the old state or the new, whole
        self.__dict__.update(attributes)

    def __getstate__(self):
        state = super().__getstate__()
        # coefs_ and intercepts_ pickle as arrays of their own; the flat
        # vector is rebuilt from them when unpickled
        state.pop("_packed", None)
        return state

    def __setstate__(self, state):
        # a model pickled before a constructor parameter existed (weight_decay,
        # say) has the parameter's default, as the model it was behaves
        for name, parameter in _init_signature(type(self)).parameters.items():
            if name not in state and parameter.default is not inspect.Parameter.empty:
                state[name] = parameter.default
        super().__setstate__(state)
        if "coefs_" in self.__dict__:
            self._params()  # now, not lazily under concurrent predictions



_CALLBACK_KEYS = frozenset(
    {"_skl_callbacks", "_callback_fit_ctx", "_skl_callbacks_to_teardown",
     "_parent_callback_ctx"}
)


@functools.lru_cache(maxsize=None)
def _init_signature(cls):
    """The constructor's signature of an estimator class (inspect is slow)."""
    return inspect.signature(cls.__init__)


@functools.lru_cache(maxsize=None)
def _param_names(cls):
    """The constructor parameters of an estimator class (inspect is slow)."""
    return frozenset(cls._get_param_names())


@contextlib.contextmanager
def restored_on_error(estimator):
    """Undo every change to estimator's fitted state if the block raises.

    The constructor parameters are left alone (they are the user's objects,
    a RandomState instance among them); the training state (cbp._state:
    records, best parameters, optimizer, dropout stream) is saved as its
    ``state_dict()`` and everything else in the instance's __dict__ (the
    other fitted attributes) is deep-copied, and both are put back after a
    failure, so a fitted model stays exactly as it was and an unfitted one
    stays unfitted. coefs_ and intercepts_ are views of the flat parameter
    vector: only the vector is copied, and they are made again from its copy.
    """
    # the constructor parameters, and scikit-learn's callback bookkeeping
    # (the callbacks, their contexts: callback_management_context ends them)
    kept = _param_names(type(estimator)) | _CALLBACK_KEYS
    views = {"_packed", *(part.attribute for part in PARTS.values())}
    state = estimator.__dict__
    fitted = "coefs_" in state
    if fitted:
        params = estimator._params()  # (coefs_ and intercepts_: its views)
        architecture = state["_packed"][1]
    training = TrainingState.of(estimator).state_dict()
    saved = copy.deepcopy(
        {k: v for k, v in state.items()
         if k not in kept and k not in TRAINING_STATE and k != "_random_state"
         and not (fitted and k in views)}
    )
    if fitted:
        saved_params = params.copy()
    # _fit makes _random_state anew from random_state on every call; it is
    # kept by reference (a deep copy of a RandomState costs ~0.35 ms)
    if "_random_state" in state:
        saved["_random_state"] = state["_random_state"]
    try:
        yield
    except BaseException:
        for key in [k for k in state if k not in kept]:
            del state[key]
        state.update(saved)
        TrainingState.from_state_dict(training, store=state)
        if fitted:
            estimator._set_params_vector(saved_params, architecture)
        raise
