"""The benchmark workloads: network shapes, batch sizes and synthetic data.

Every data set is drawn from a fixed random "teacher" network, so it is
learnable (a student of the same or larger size can fit it) and a second
sample from the same teacher serves as held-out data.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    """One training benchmark: data shape, network and mini-batch size."""

    name: str
    n_samples: int
    n_features: int
    n_outputs: int  # classes for a classifier, targets for a regressor
    hidden: tuple
    activation: str
    batch_size: int
    regression: bool = False

    def units(self):
        """Layer widths from input to output, as the kernel and GEMMs see them."""
        return (self.n_features, *self.hidden, self.n_outputs)

    def shrunk(self, factor):
        """The same workload with n_samples divided by factor (for --quick)."""
        n = max(self.batch_size * 4, self.n_samples // factor)
        return Workload(**{**self.__dict__, "n_samples": n})


WORKLOADS = {
    w.name: w
    for w in [
        Workload("mnist", 60000, 784, 10, (100,), "relu", 200),
        Workload("deep", 20000, 64, 10, (64, 64, 64, 64), "relu", 32),
        Workload("online", 10000, 10, 2, (16,), "tanh", 1),
        Workload("wide", 16000, 1024, 10, (1024, 1024), "relu", 256),
        Workload("regress", 50000, 32, 1, (64, 32), "relu", 64, regression=True),
    ]
}

SOLVER_PARAMS = {
    "sgd": dict(learning_rate_init=0.01, momentum=0.9, nesterovs_momentum=True),
    "adam": dict(learning_rate_init=0.001),
}
ALPHA = 1e-4


def training_flops(units, n_samples):
    """Floating-point operations of the GEMMs in one training epoch.

    Per sample and layer (fan-in a, fan-out b): forward 2ab, weight gradient
    2ab, input gradient 2ab -- except for the first layer, whose input
    gradient no candidate computes. Element-wise work (activations, biases,
    loss, optimizer update) is not counted.
    """
    products = [a * b for a, b in zip(units[:-1], units[1:])]
    return 2 * n_samples * (3 * sum(products) - products[0])


def forward_flops(units, n_samples):
    """Floating-point operations of the GEMMs in one forward pass."""
    return 2 * n_samples * sum(a * b for a, b in zip(units[:-1], units[1:]))


def make_data(workload, n_samples=None, dtype=np.float32, seed=0):
    """(X, y) drawn from the workload's teacher, like real data of low intrinsic dimension.

    A latent Z (at most 16 dimensions, standard normal) is projected to the
    n_features columns of X plus noise, and X is scaled to unit variance (so
    it is standardised). The teacher -- a linear part plus a small tanh
    network on Z -- is fixed per workload; seed only changes the sample.
    Classes are the arg-max of the teacher's centred outputs (roughly
    balanced); a regression target is the teacher's output plus 10 % noise,
    standardised.
    """
    n = workload.n_samples if n_samples is None else n_samples
    d, k = workload.n_features, workload.n_outputs
    teacher = _Teacher(np.random.default_rng(1000 + sum(map(ord, workload.name))), d, k)
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, teacher.latent))
    X = teacher.features(Z, rng).astype(dtype)
    out = teacher.outputs(Z)
    if workload.regression:
        target = out[:, 0] + 0.1 * out[:, 0].std() * rng.standard_normal(n)
        y = ((target - target.mean()) / target.std()).astype(dtype)
    else:
        y = np.argmax(out - teacher.centre, axis=1)
    return np.ascontiguousarray(X), y


class _Teacher:
    """The fixed random functions behind one workload's data."""

    def __init__(self, rng, n_features, n_outputs, width=32, noise=0.5):
        self.latent = min(n_features, 16)
        self.noise = noise
        self.projection = rng.standard_normal((self.latent, n_features))
        self.w_linear = rng.standard_normal((self.latent, n_outputs))
        self.w_in = rng.standard_normal((self.latent, width)) / np.sqrt(self.latent)
        self.w_out = rng.standard_normal((width, n_outputs)) / np.sqrt(width)
        self.shift = rng.standard_normal(width)
        # Centre the outputs on their population mean (not the sample's), so
        # that train and test labels come from the same function.
        self.centre = self.outputs(rng.standard_normal((20000, self.latent))).mean(axis=0)

    def features(self, Z, rng):
        """X = Z projected plus noise, scaled to unit variance per column."""
        noise = rng.standard_normal((len(Z), self.projection.shape[1]))
        X = Z @ self.projection + self.noise * noise
        scale = np.sqrt((self.projection**2).sum(axis=0) + self.noise**2)
        return X / scale

    def outputs(self, Z):
        return 0.5 * Z @ self.w_linear + 2 * np.tanh(2 * Z @ self.w_in + self.shift) @ self.w_out


@dataclass(frozen=True)
class SparseWorkload:
    """A text-like training benchmark: a CSR matrix with few non-zeros a row."""

    name: str
    n_samples: int
    n_features: int
    nnz_per_row: int
    n_classes: int
    hidden: tuple
    batch_size: int

    def shrunk(self, factor):
        """n_samples divided by factor (for --quick)."""
        n = max(self.batch_size * 4, self.n_samples // factor)
        return SparseWorkload(**{**self.__dict__, "n_samples": n})


TEXT = SparseWorkload("text", 20000, 100000, 50, 10, (64,), 200)


def make_sparse_data(workload, dtype=np.float32, seed=0):
    """(X, y): X a CSR matrix like a tf-idf matrix of short documents.

    Each row has about nnz_per_row distinct columns, drawn with Zipf-like
    frequencies (a few columns are common, most are rare), with tf-idf-like
    values normalised per row; classes are the arg-max of a fixed random
    linear function of X (so they can be learned).
    """
    import scipy.sparse

    rng = np.random.default_rng(seed)
    n, d, k = workload.n_samples, workload.n_features, workload.nnz_per_row
    column_weights = 1.0 / np.arange(1, d + 1) ** 0.8
    column_weights /= column_weights.sum()
    columns = rng.choice(d, size=(n, k), p=rng.permutation(column_weights))
    rows = np.repeat(np.arange(n), k)
    values = rng.exponential(1.0, size=n * k)
    X = scipy.sparse.csr_matrix((values, (rows, columns.ravel())), shape=(n, d))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = scipy.sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ X
    teacher = np.random.default_rng(2000).standard_normal((d, workload.n_classes))
    y = np.asarray(X @ teacher).argmax(axis=1)
    return X.astype(dtype).tocsr(), y
