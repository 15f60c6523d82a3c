"""Archives written by an earlier cbp still load, predict and train on.

tests/data/archives/ holds models saved by the code of the commit that added
them (see make.py there): a classifier with adam, the cosine schedule and
batch normalisation in float32; a regressor with sgd, invscaling and the
Huber loss in float64; an lbfgs classifier; an rmsprop classifier with
dropout; an early-stopping regressor. Each must load with ``cbp.load``, give
exactly the recorded predictions, and continue training (partial_fit, or a
warm-started fit) exactly as recorded. Exact results are recorded per
platform (kernel build and OpenBLAS core type); on a platform without a
record the predictions are compared with a tolerance only.
"""

import json
import os
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

import cbp

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "archives")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard"))

import make  # noqa: E402
from fits import platform_key  # noqa: E402

with open(os.path.join(HERE, "expected.json")) as _f:
    EXPECTED = json.load(_f).get(platform_key())


@pytest.mark.parametrize("name", sorted(make.ARCHIVES))
def test_archive_loads_and_predicts_as_when_it_was_written(name):
    _, task, dtype, params, _ = make.ARCHIVES[name]
    model = cbp.load(os.path.join(HERE, name + ".npz"))
    assert type(model).__name__ == make.ARCHIVES[name][0]
    assert {k: model.get_params()[k] for k in params} == params
    predicted = make.predictions(model, task, dtype)
    recorded = np.load(os.path.join(HERE, name + ".predict.npy"))
    assert predicted["predict"].dtype == recorded.dtype
    assert_allclose(predicted["predict"], recorded, rtol=1e-5, atol=1e-6)
    if EXPECTED is None:
        pytest.skip(f"no exact results recorded for {platform_key()}; record them "
                    "with python tests/data/archives/make.py")
    for label, value in predicted.items():
        assert make.sha(value) == EXPECTED[name][label], label


@pytest.mark.parametrize("name", sorted(make.ARCHIVES))
def test_archive_continues_training_as_when_it_was_written(name):
    from fits import digest

    _, task, dtype, _, _ = make.ARCHIVES[name]
    model = cbp.load(os.path.join(HERE, name + ".npz"))
    continued = make.continue_training(model, name)
    assert continued is model and continued.n_iter_ >= 1
    if EXPECTED is None:
        pytest.skip(f"no exact results recorded for {platform_key()}")
    X, _ = make.data(task, dtype)
    assert digest(continued, X) == EXPECTED[name]["continued"]
