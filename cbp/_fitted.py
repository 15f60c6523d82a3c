"""The fitted state of an estimator: the flat parameter vector behind
``coefs_`` and ``intercepts_`` (and batch normalisation's arrays), its
pickling, and the undoing of a failed fit (``restored_on_error``).

``FlatParameters`` is a mixin of BaseMultilayerPerceptron: its methods keep
the estimator's arrays as views of one vector (cbp._network's layout), which
is what the kernel trains and predicts from.
"""

import contextlib
import copy
import functools
import inspect

from ._network import (
    BATCH_NORM_PARTS,
    SCALING_PARTS,
    as_units,
    batch_norm_arrays,
    is_packed,
    pack,
    scaling_arrays,
    unpack,
    unpack_batch_norm,
    unpack_scalings,
)
from ._state import ATTRIBUTES as TRAINING_STATE
from ._state import TrainingState


class FlatParameters:
    """The flat parameter vector of a fitted estimator, and its pickling."""

    @property
    def _units(self):
        # (an ensemble's per-member coefs are (k, n_in, n_out))
        return as_units(
            [self.coefs_[0].shape[-2]] + [c.shape[-1] for c in self.coefs_]
        )

    def _fitted_ensemble(self):
        """The fitted ensemble (members, form), or None: a plain network."""
        return self.__dict__.get("_ensemble")

    def _fitted_scalings(self):
        """The fitted ensemble's scalings (a dict of the input_scalings_ and
        output_scalings_ lists, None where a layer has none), or None."""
        state = self.__dict__
        if "input_scalings_" not in state:
            return None
        return {name: state[name + "_"] for name in SCALING_PARTS}

    def _fitted_batch_norm(self):
        """The fitted batch normalisation (a dict of the four lists of
        batch_norm_*_ arrays), or None for a model without it."""
        state = self.__dict__
        if "batch_norm_gammas_" not in state:
            return None
        return {name: state["batch_norm_" + name + "_"] for name in BATCH_NORM_PARTS}

    def _packed_or_none(self, dtype=None):
        """(params, units, batch_norm, ensemble) if coefs_, intercepts_ (and
        an ensemble's scalings, the batch_norm_*_ arrays) are still the views
        of the flat vector cbp made (and of ``dtype``), else None; batch_norm:
        whether the vector holds batch normalisation's values; ensemble: the
        fitted (members, form) or None."""
        state = self.__dict__
        # one read: (params, units, views, batch_norm, ensemble)
        packed = state.get("_packed")
        if packed is None or not is_packed(
            packed[0], packed[2], state.get("coefs_"), state.get("intercepts_"),
            self._fitted_batch_norm() if packed[3] else None,
            self._fitted_scalings() if packed[4] is not None else None,
        ):
            return None
        if dtype is not None and packed[0].dtype != dtype:
            return None
        return packed[0], packed[1], packed[3], packed[4]

    def _params(self, dtype=None):
        """The flat parameter vector; coefs_ and intercepts_ become its views.

        Packs again when coefs_ or intercepts_ were replaced (a user may assign
        them, as in scikit-learn) or are not of ``dtype``. For training: it
        rebinds coefs_ and intercepts_.
        """
        packed = self._packed_or_none(dtype)
        if packed is not None:
            return packed[0]
        if dtype is None:
            dtype = self.coefs_[0].dtype
        params = pack(self.coefs_, self.intercepts_, dtype, self._fitted_batch_norm(),
                      self._fitted_scalings())
        self._set_params_vector(params, self._units)
        return params

    def _params_for_prediction(self):
        """(params, units, batch_norm, ensemble) without changing the estimator: the
        flat vector, or a packed copy of coefs_ and intercepts_ if the user
        replaced them (so that their arrays stay theirs, as in scikit-learn,
        and concurrent predictions never write to the model)."""
        packed = self._packed_or_none()
        if packed is not None:
            return packed
        batch_norm = self._fitted_batch_norm()
        return (pack(self.coefs_, self.intercepts_, self.coefs_[0].dtype, batch_norm,
                     self._fitted_scalings()),
                self._units, batch_norm is not None, self._fitted_ensemble())

    def _set_params_vector(self, params, units):
        ensemble = self._fitted_ensemble()
        coefs, intercepts = unpack(params, list(units), ensemble)
        batch_norm = unpack_batch_norm(params, list(units), ensemble)
        scalings = unpack_scalings(params, list(units), ensemble)
        attributes = dict(
            # (units as a tuple: the key of the cached one-sample network)
            _packed=(params, tuple(int(u) for u in units),
                     tuple(coefs + intercepts + scaling_arrays(scalings)
                           + batch_norm_arrays(batch_norm)),
                     batch_norm is not None, ensemble),
            coefs_=coefs,
            intercepts_=intercepts,
        )
        if scalings is not None:
            attributes.update({name + "_": arrays for name, arrays in scalings.items()})
        if batch_norm is not None:
            attributes.update({"batch_norm_" + name + "_": arrays
                               for name, arrays in batch_norm.items()})
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
    views = {"coefs_", "intercepts_", "_packed",
             *("batch_norm_" + name + "_" for name in BATCH_NORM_PARTS),
             *(name + "_" for name in SCALING_PARTS)}
    state = estimator.__dict__
    fitted = "coefs_" in state
    if fitted:
        params = estimator._params()  # (coefs_ and intercepts_: its views)
        units = state["_packed"][1]
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
            estimator._set_params_vector(saved_params, units)
        raise
