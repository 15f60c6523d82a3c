"""The things that are timed: one training epoch of each candidate.

Each candidate has ``epoch()`` (one pass over the data, the thing timed) and
``score()`` (training accuracy or R^2, to show that it learns). The GEMM
bound is a candidate too: the same epoch's matrix products and nothing else.
"""

import gc
import time
import warnings

import numpy as np

try:
    import torch
except ImportError:  # the runner prints a note and skips the torch candidate
    torch = None

from workloads import ALPHA, SOLVER_PARAMS


def sklearn_api_params(workload, solver):
    """Constructor parameters shared by cbp's and scikit-learn's estimators."""
    return dict(
        hidden_layer_sizes=workload.hidden,
        activation=workload.activation,
        solver=solver,
        alpha=ALPHA,
        batch_size=workload.batch_size,
        shuffle=True,
        random_state=0,
        **SOLVER_PARAMS[solver],
    )


class SklearnAPICandidate:
    """cbp or scikit-learn: one epoch is one ``partial_fit(X, y)`` call.

    partial_fit validates its input on every call; that cost is part of what
    a user pays, so it stays in the timing.
    """

    def __init__(self, estimator_class, workload, solver, X, y, **extra_params):
        self.model = estimator_class(**sklearn_api_params(workload, solver), **extra_params)
        self.X, self.y = X, y
        self.classes = None if workload.regression else np.unique(y)

    def epoch(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.classes is not None and not hasattr(self.model, "coefs_"):
                self.model.partial_fit(self.X, self.y, classes=self.classes)
            else:
                self.model.partial_fit(self.X, self.y)

    def score(self):
        return float(self.model.score(self.X, self.y))

    def predict(self, X):
        return self.model.predict(X)


class BlasProductsCandidate(SklearnAPICandidate):
    """cbp with every matrix product in BLAS, none in its micro-kernels
    (src/_small_gemm.h): their contribution, side by side in one run."""

    def epoch(self):
        from cbp._dispatch import kernel

        previous = kernel.set_small_gemm_work(0)
        try:
            super().epoch()
        finally:
            kernel.set_small_gemm_work(*previous)


class TorchCandidate:
    """A plain PyTorch CPU training loop over shuffled index batches."""

    def __init__(self, workload, solver, X, y, dtype, batch_norm=False, dropout=0.0):
        self.torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
        self.model = _torch_mlp(workload, batch_norm, dropout).to(self.torch_dtype)
        self.X = torch.from_numpy(np.ascontiguousarray(X, dtype=dtype))
        if workload.regression:
            self.y = torch.from_numpy(np.asarray(y, dtype=dtype).reshape(-1, 1))
            self.loss = torch.nn.MSELoss()
        else:
            self.y = torch.from_numpy(np.asarray(y, dtype=np.int64))
            self.loss = torch.nn.CrossEntropyLoss()
        self.regression = workload.regression
        self.batch_size = workload.batch_size
        lr = SOLVER_PARAMS[solver]["learning_rate_init"]
        params = self.model.parameters()
        if solver == "sgd":
            self.optimizer = torch.optim.SGD(
                params, lr=lr, momentum=0.9, nesterov=True, weight_decay=ALPHA
            )
        else:
            self.optimizer = torch.optim.Adam(params, lr=lr, weight_decay=ALPHA)
        self.generator = torch.Generator().manual_seed(0)

    def epoch(self):
        n, b = self.X.shape[0], self.batch_size
        order = torch.randperm(n, generator=self.generator)
        model, loss_fn, optimizer = self.model, self.loss, self.optimizer
        for start in range(0, n, b):
            idx = order[start:start + b]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(self.X[idx]), self.y[idx])
            loss.backward()
            optimizer.step()

    def score(self):
        self.model.eval()
        with torch.no_grad():
            out = self.model(self.X)
        self.model.train()
        if self.regression:
            residual = ((out - self.y) ** 2).sum()
            total = ((self.y - self.y.mean()) ** 2).sum()
            return float(1 - residual / total)
        return float((out.argmax(dim=1) == self.y).double().mean())

    def predict(self, X):
        """Labels for a NumPy X, the way a user would call a torch model."""
        self.model.eval()
        with torch.no_grad():
            labels = self.model(torch.from_numpy(X)).argmax(dim=1).numpy()
        self.model.train()
        return labels


class NumpyForward:
    """A plain NumPy forward pass with a fitted cbp classifier's weights (ReLU
    hidden layers): what one would write by hand, for prediction latency."""

    def __init__(self, model):
        self.coefs = [c.copy() for c in model.coefs_]
        self.intercepts = [b.copy() for b in model.intercepts_]
        self.classes = model.classes_

    def predict(self, X):
        a = X
        for coef, intercept in zip(self.coefs[:-1], self.intercepts[:-1]):
            a = a @ coef + intercept
            np.maximum(a, 0, out=a)
        out = a @ self.coefs[-1] + self.intercepts[-1]
        return self.classes[out.argmax(axis=1)]


def _torch_mlp(workload, batch_norm=False, dropout=0.0):
    """nn.Sequential of Linear + activation (Linear + BatchNorm1d +
    activation + Dropout with those options), with a linear output layer.

    Weights and biases are drawn like scikit-learn's (Glorot uniform,
    bound sqrt(6 / (fan_in + fan_out))) -- not the same values, but the same
    scale: torch's default init is ~1.7x smaller per layer, which makes the
    5-layer "deep" network learn visibly slower in a few epochs.
    """
    activation = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[workload.activation]
    units = workload.units()
    generator = torch.Generator().manual_seed(0)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(units[:-1], units[1:])):
        linear = torch.nn.Linear(fan_in, fan_out)
        bound = (6 / (fan_in + fan_out)) ** 0.5
        with torch.no_grad():
            for tensor in (linear.weight, linear.bias):
                tensor.uniform_(-bound, bound, generator=generator)
        layers.append(linear)
        if i < len(units) - 2:
            if batch_norm:
                layers.append(torch.nn.BatchNorm1d(fan_out))
            layers.append(activation())
            if dropout:
                layers.append(torch.nn.Dropout(dropout))
    return torch.nn.Sequential(*layers)


class GemmBound:
    """The epoch's matrix products alone, with ``numpy.matmul``.

    For every mini-batch (the last one may be short): forward A_l @ W_l for
    each layer, weight gradient A_l.T @ D_l for each layer, and input
    gradient D_l @ W_l.T for every layer but the first. Inputs are fixed
    random arrays and results go to separate preallocated outputs, so no
    values feed back (no overflow, no denormals) and nothing is allocated.
    """

    def __init__(self, units, n_samples, batch_size, dtype, forward_only=False):
        rng = np.random.default_rng(0)
        full, rest = divmod(n_samples, batch_size)
        self.batches = [batch_size] * full + ([rest] if rest else [])
        self.calls = {
            b: _gemm_calls(units, b, dtype, rng, forward_only) for b in set(self.batches)
        }

    def epoch(self):
        matmul, calls = np.matmul, self.calls
        for b in self.batches:
            for left, right, out in calls[b]:
                matmul(left, right, out=out)

    def score(self):
        return None


def large_product_rate(dtype, size=2048, rounds=5):
    """The machine's large-product rate: GFLOP/s of one size^3 ``numpy.matmul``
    (best of ``rounds``, after one warm-up), on the threads BLAS is allowed
    (the callers limit it to one) -- the most a matrix product reaches here,
    the bar every workload's GFLOP/s is a fraction of."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    out = np.empty((size, size), dtype)
    np.matmul(a, b, out=out)
    return 2 * size**3 / best_seconds(lambda: np.matmul(a, b, out=out), rounds) / 1e9


def best_seconds(fn, rounds=5):
    """The shortest wall time of ``rounds`` calls of fn()."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _gemm_calls(units, batch, dtype, rng, forward_only):
    """(left, right, out) triples of one mini-batch's GEMMs."""

    def rand(*shape):
        return (0.1 * rng.standard_normal(shape)).astype(dtype)

    calls = []
    layers = list(zip(units[:-1], units[1:]))
    for a, b in layers:
        calls.append((rand(batch, a), rand(a, b), np.empty((batch, b), dtype)))
    if forward_only:
        return calls
    for a, b in layers:
        calls.append((rand(batch, a).T, rand(batch, b), np.empty((a, b), dtype)))
    for a, b in layers[1:]:
        calls.append((rand(batch, b), rand(a, b).T, np.empty((batch, a), dtype)))
    return calls


def interleaved_times(tasks, warmup, repeats):
    """Time callables round-robin: one call of each, then again, and so on.

    Each round starts one candidate later than the previous one, so no
    candidate always runs right after the same neighbour. Garbage is
    collected between calls, outside the timing, so one candidate's garbage
    is not collected on another's clock.

    Returns {name: {"warmup": [seconds...], "timed": [seconds...]}}.
    """
    names = list(tasks)
    times = {name: {"warmup": [], "timed": []} for name in names}
    for round_ in range(warmup + repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            start = time.perf_counter()
            tasks[name]()
            elapsed = time.perf_counter() - start
            times[name]["warmup" if round_ < warmup else "timed"].append(elapsed)
    return times
