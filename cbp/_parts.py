"""The parts of a network: every array its flat parameter vector holds,
described once.

A network is an ``Architecture`` (its units and the named options that add
parts: an ensemble, batch normalisation, a learned input scaling). Where
each part lies in the flat vector is the kernel's layout
(``_kernel.Network.layout()``, src/_network.pxd's ``lay_out``), read here
once per architecture: Python computes no layout of its own.

    PARTS  name -> Part(the estimator's attribute, trained or a buffer,
           starting value, when an architecture holds it)

Everything that handles a fitted network's arrays -- the estimator's views
(cbp/_fitted.py), initialisation, persistence, pickling, the ONNX export,
callbacks' snapshots, rollback -- iterates ``parts_of(architecture)``.

How to add a part: one ``Part`` here (its attribute, ``trained``, its
starting value, the ``Architecture`` field that makes it present), the
field on ``Architecture`` and what it sets in ``layer_kinds`` or the
kernel's arguments, and the kernel's branches (src/_network.pxd's lay_out
places it; forward and backward use it). CONTRIBUTING.md walks through one.
"""

import functools
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ._dispatch import kernel as _kernel
from ._options import EMBEDDINGS, ENSEMBLES, embedded_width, embedding_of, ensemble_of


@dataclass(frozen=True, eq=False)
class Architecture:
    """What a network is made of, by name: its units (the layers' widths,
    units[0] the first layer's input: n_features, or n_features * d after a
    numeric embedding; *hidden_layer_sizes, n_outputs), an ensemble
    (members, form) or None, batch normalisation of the hidden layers, a
    learned per-feature scaling of its input (RealMLP's scaling layer, x ->
    x * s), a numeric embedding of its input (name, n_features, size: its
    entry's ``size`` parameter, n_frequencies or n_bins; k: its first k
    columns embedded, units[0] = k d + n_features - k) or None
    (_options.EMBEDDINGS)."""

    units: tuple
    ensemble: Optional[tuple] = None
    batch_norm: bool = False
    input_scaling: bool = False
    embedding: Optional[tuple] = None

    def __post_init__(self):
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))
        if self.ensemble is not None:
            object.__setattr__(self, "ensemble",
                               (int(self.ensemble[0]), str(self.ensemble[1])))
        if self.embedding is not None:
            name, n_features, size, k = self.embedding
            object.__setattr__(self, "embedding",
                               (str(name), int(n_features), int(size), int(k)))
        # the key of the layout's and the prediction networks' caches, which
        # every predict looks up: hashed once (a dataclass's generated
        # __hash__ runs Python code on each lookup, ~0.4 us of a 6 us
        # one-sample predict)
        key = (self.units, self.ensemble, self.batch_norm, self.input_scaling,
               self.embedding)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_hash", hash(key))

    def __eq__(self, other):
        return self is other or (type(other) is Architecture and self._key == other._key)

    def __hash__(self):
        return self._hash

    @property
    def n_layers(self):
        return len(self.units) - 1

    @property
    def members(self):
        return 1 if self.ensemble is None else self.ensemble[0]

    @property
    def n_features(self):
        """The input's columns (what an embedding reads, else units[0])."""
        return self.units[0] if self.embedding is None else self.embedding[1]

    def layer_kinds(self):
        """The kernel's layer_kinds, (L, 4) intp -- per layer: weights per
        member, intercepts per member, an input scaling, an output scaling
        (an ensemble's from _options.ENSEMBLES; the input scaling makes layer
        0 scale its input) -- or None when every entry is 0."""
        kinds = np.zeros((self.n_layers, 4), dtype=np.intp)
        if self.ensemble is not None:
            kinds[...] = ENSEMBLES[self.ensemble[1]].layer_kinds(self.n_layers)
        if self.input_scaling:
            kinds[0, 2] = 1
        return kinds if self.ensemble is not None or kinds.any() else None

    def kernel_arguments(self):
        """The keyword arguments of _kernel.Network that give it these parts."""
        kinds = self.layer_kinds()
        arguments = {"batch_norm": self.batch_norm}
        if kinds is not None:
            arguments.update(members=self.members, layer_kinds=kinds)
        if self.embedding is not None:
            name, n_features, size, k = self.embedding
            arguments.update({"embedding": name, "n_features": n_features,
                              EMBEDDINGS[name].size: size, "embedded_features": k})
        return arguments


@dataclass(frozen=True)
class Part:
    """One kind of array in the flat vector, per layer (``hidden``: per
    hidden layer). ``attribute``: the estimator's list of arrays (None
    where a layer has none), and the archive's keys ``attribute/<layer>``.
    ``trained``: the optimizers update it (else a buffer, kept after every
    trained value). ``start``: its starting value (None: drawn with the
    weights, _network.initial_parameters). ``present(architecture)``: whether
    a network holds it. ``valid(array)``: what a loaded array must satisfy
    beyond being finite and of its shape."""

    name: str
    attribute: str
    trained: bool
    start: Optional[float]
    present: Callable
    valid: Callable = lambda value: True
    requirement: str = ""


def _always(architecture):
    return True


def _scaled(architecture):
    return architecture.ensemble is not None or architecture.input_scaling


def _normalised(architecture):
    return architecture.batch_norm


def _embedded(architecture):
    return architecture.embedding is not None


def _periodic(architecture):
    return _embedded(architecture) and architecture.embedding[0] == "periodic"


def _piecewise_linear(architecture):
    return _embedded(architecture) and architecture.embedding[0] == "piecewise_linear"


def _bin_counts(value):
    return bool(np.all((value >= 0) & (value == np.round(value))))


def _non_negative(value):
    return bool(np.all(value >= 0))


PARTS = {part.name: part for part in (
    Part("coefs", "coefs_", True, None, _always),
    Part("intercepts", "intercepts_", True, None, _always),
    # an ensemble's per-member scalings (TabM's r and s), and the input
    # scaling of a plain network (layer 0's r); 1 to start with (an
    # ensemble's first r: random signs, initial_parameters)
    Part("input_scalings", "input_scalings_", True, 1.0, _scaled),
    Part("output_scalings", "output_scalings_", True, 1.0, _scaled),
    # a numeric embedding of the input (one entry each, before layer 0):
    # drawn after the weights, as rtdl_num_embeddings (initial_parameters);
    # the piecewise-linear bins' affine maps from the training X
    Part("embedding_frequencies", "embedding_frequencies_", True, None, _periodic),
    Part("embedding_slopes", "embedding_slopes_", True, None, _piecewise_linear),
    Part("embedding_coefs", "embedding_coefs_", True, None, _embedded),
    Part("embedding_intercepts", "embedding_intercepts_", True, None, _embedded),
    # batch normalisation of every hidden layer, torch.nn.BatchNorm1d's
    # starting values
    Part("gammas", "batch_norm_gammas_", True, 1.0, _normalised),
    Part("betas", "batch_norm_betas_", True, 0.0, _normalised),
    Part("running_means", "batch_norm_running_means_", False, 0.0, _normalised),
    Part("running_vars", "batch_norm_running_vars_", False, 1.0, _normalised,
         _non_negative, "negative running variances"),
    Part("bin_weights", "embedding_bin_weights_", False, None, _piecewise_linear),
    Part("bin_biases", "embedding_bin_biases_", False, None, _piecewise_linear),
    Part("bin_counts", "embedding_bin_counts_", False, None, _piecewise_linear,
         _bin_counts, "bin counts that are not whole numbers >= 0"),
)}

WEIGHTS = ("coefs", "intercepts")


@functools.lru_cache(maxsize=256)
def parts_of(architecture):
    """The parts a network of this architecture holds, in PARTS's order (a
    tuple)."""
    return tuple(part for part in PARTS.values() if part.present(architecture))


def architecture_of(estimator, units):
    """The Architecture an estimator's parameters ask for, with these units
    (n_features, *hidden_layer_sizes, n_outputs): a numeric embedding widens
    units[0] to k * embedding_size + n_features - k (k: the embedded
    first columns, embedded_features)."""
    embedding = embedding_of(estimator, units[0])
    if embedding is not None:
        units = [embedded_width(embedding, estimator.embedding_size)] + list(units[1:])
    return Architecture(units, ensemble_of(estimator), bool(estimator.batch_norm),
                        bool(estimator.input_scaling), embedding)


def lr_factors(architecture, estimator):
    """The ranges of the flat vector the stochastic solvers train at a rate
    of their own, ((start, stop, factor), ...): the input scaling's, at
    input_scaling_lr_factor (the kernel Optimizer's lr_factors)."""
    if not architecture.input_scaling:
        return ()
    offset, shape = layout(architecture).places["input_scalings"][0]
    return ((offset, offset + int(np.prod(shape)), float(estimator.input_scaling_lr_factor)),)


@dataclass(frozen=True)
class Layout:
    """Where each part lies in the flat vector: ``places[name]``, per layer,
    (offset, shape) or None; an array a layer holds per member has the
    members first (coefs (k, units[l], units[l + 1])). ``n_trained``: the
    values the optimizers update (the first ones); ``n_values``: the
    vector's length."""

    places: dict
    n_trained: int
    n_values: int


@functools.lru_cache(maxsize=256)
def layout(architecture):
    """The kernel's layout of this architecture (a Layout), read once."""
    net = _kernel.Network(np.array(architecture.units, dtype=np.intp), "identity", None,
                          0.0, False, 1, output="identity",
                          **architecture.kernel_arguments())
    places = net.layout()
    return Layout({part.name: places[part.name] for part in parts_of(architecture)},
                  int(net.n_params), int(net.n_values))


def views(params, architecture):
    """{part name: [view of params (None where a layer has none)]} for
    every part of the architecture."""
    return {name: [None if place is None else
                   params[place[0]:place[0] + int(np.prod(place[1]))].reshape(place[1])
                   for place in places]
            for name, places in layout(architecture).places.items()}


def pack(arrays, architecture, dtype):
    """A new flat vector of dtype holding arrays ({part name: list, None
    where a layer has none}, as views gives); every part of the
    architecture must be there, of its place's size."""
    places = layout(architecture)
    params = np.empty(places.n_values, dtype=dtype)
    for name, entries in places.places.items():
        given = arrays[name]
        shapes = [None if place is None else place[1] for place in entries]
        if len(given) != len(entries) or any(
                (shape is None) != (array is None)
                or (shape is not None and np.shape(array) != shape)
                for shape, array in zip(shapes, given)):
            raise ValueError(
                f"{PARTS[name].attribute} must hold arrays of shapes {shapes}, one per "
                f"layer (None where a layer has none), got "
                f"{[None if a is None else np.shape(a) for a in given]}")
        for place, array in zip(entries, given):
            if place is not None:
                params[place[0]:place[0] + int(np.prod(place[1]))] = np.ravel(array)
    return params


def arrays_in_order(arrays):
    """The arrays of a dict as views gives, part by part, layer by layer,
    without the Nones."""
    return [a for part in arrays.values() for a in part if a is not None]
