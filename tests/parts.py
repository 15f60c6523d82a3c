"""cbp's starting arrays of a network, for tests that start PyTorch or the
NumPy reference from them."""

from sklearn.utils import check_random_state

from cbp._network import initial_parameters
from cbp._parts import Architecture, views


def initial_arrays(units, activation, random_state, dtype, ensemble=None):
    """{part name: list of arrays}: what an estimator with these units (and
    ensemble (members, form)) starts from for random_state."""
    architecture = Architecture(tuple(units), ensemble)
    params = initial_parameters(architecture, activation, check_random_state(random_state),
                                dtype)
    return views(params, architecture)
