"""Models pickled before the reorganisation still unpickle, predict and train on.

tests/data/pickles/ holds models pickled with ``pickle.dumps`` by the code of
commit df30b2f, before the Python package was reorganised (see make.py
there): an adam classifier in float32, an sgd regressor with the Huber loss
in float64, an lbfgs classifier, an rmsprop classifier with dropout and batch
normalisation, an adam classifier with early stopping, and a multilabel sgd
classifier with block_rows. Each kernel build has its own pickles (a pickle
names the kernel module that built its optimizer).

Today's code must unpickle each as the same class at the same import path,
predict exactly what was recorded, and train it on (one partial_fit, or a
warm-started fit for lbfgs and early stopping) to exactly the recorded
weights. The records were the old code's results until the small products'
micro-kernels (issue 21) changed the order of sums on purpose; they were
recorded again then, from the same pickles (make.py without --pickles).
Exact results depend on the kernel build and the OpenBLAS kernels, so they
are compared bit for bit on a platform the results were recorded on
(tests/guard/fits.py's ``platform_key``), and
elsewhere to rtol 1e-6 (float32) or 1e-12 (float64) of the results of the
platform that wrote the pickles.
"""

import importlib.util
import io
import json
import os
import pickle
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import cbp

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "pickles")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard"))

from fits import platform_key  # noqa: E402

# tests/data/pickles/make.py, under a name of its own (tests/data/archives
# has a make.py too)
_spec = importlib.util.spec_from_file_location("pickles_make", os.path.join(HERE, "make.py"))
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)

with open(os.path.join(HERE, "platforms.json")) as _f:
    PLATFORMS = json.load(_f)

NAMES = sorted(make.MODELS)
CONTINUED_BY = {how: [n for n in NAMES if make.continues_with(n) == how]
                for how in ("partial_fit", "warm_start")}


@pytest.fixture
def pickled(request):
    """(model name, the pickle's bytes) of the kernel build in use."""
    name = request.param
    if not os.path.exists(make.pickle_path(name)):
        pytest.skip(f"no pickles written by the kernel build {make.build()}")
    with open(make.pickle_path(name), "rb") as f:
        return name, f.read()


def assert_as_recorded(value, name, label):
    """``value`` equals the old code's ``<name>.<label>.npy``: exactly on a
    recorded platform, else to rtol 1e-6 (float32) or 1e-12 (float64) of the
    platform that wrote the pickles, with an absolute tolerance of rtol times
    the largest magnitude for the entries near zero."""
    key = platform_key()
    exact = key in PLATFORMS["recorded"]
    folder = PLATFORMS["recorded"][key if exact else PLATFORMS["written_on"][make.build()]]
    expected = np.load(os.path.join(HERE, "expected", folder, f"{name}.{label}.npy"))
    assert value.dtype == expected.dtype
    if exact:
        assert_array_equal(value, expected)
    elif expected.dtype.kind == "f":
        rtol = 1e-6 if expected.dtype == np.float32 else 1e-12
        assert_allclose(value, expected, rtol=rtol, atol=rtol * np.max(np.abs(expected)))
    else:  # labels
        assert_array_equal(value, expected)


def named_globals(data):
    """(module, name) of every class or function a pickle names."""
    found = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module, name):
            found.add((module, name))
            return super().find_class(module, name)

    Recording(io.BytesIO(data)).load()
    return found


@pytest.mark.parametrize("pickled", NAMES, indirect=True)
def test_unpickles_as_the_public_class_at_its_old_import_path(pickled):
    name, data = pickled
    estimator = make.MODELS[name][0]
    model = pickle.loads(data)
    assert type(model) is getattr(cbp, estimator)
    assert ("cbp._multilayer_perceptron", estimator) in named_globals(data)
    assert type(model).__module__ == "cbp._multilayer_perceptron"


@pytest.mark.parametrize("pickled", NAMES, indirect=True)
def test_unpickled_model_keeps_its_parameters(pickled):
    name, data = pickled
    model = pickle.loads(data)
    params = make.MODELS[name][3]
    assert {key: model.get_params()[key] for key in params} == params


@pytest.mark.parametrize("pickled", NAMES, indirect=True)
def test_predict_is_as_before_the_reorganisation(pickled):
    name, data = pickled
    model = pickle.loads(data)
    assert_as_recorded(make.predictions(model, name)["predict"], name, "predict")


@pytest.mark.parametrize("pickled", [n for n in NAMES if make.MODELS[n][0] == "MLPClassifier"],
                         indirect=True)
def test_predict_proba_is_as_before_the_reorganisation(pickled):
    name, data = pickled
    model = pickle.loads(data)
    assert_as_recorded(make.predictions(model, name)["proba"], name, "proba")


@pytest.mark.parametrize("pickled", CONTINUED_BY["partial_fit"], indirect=True)
def test_partial_fit_continues_to_the_weights_of_before_the_reorganisation(pickled):
    name, data = pickled
    model = make.continue_training(pickle.loads(data), name)
    assert_as_recorded(make.trained_arrays(model), name, "continued")


@pytest.mark.parametrize("pickled", CONTINUED_BY["warm_start"], indirect=True)
def test_warm_started_fit_continues_to_the_weights_of_before_the_reorganisation(pickled):
    name, data = pickled
    model = make.continue_training(pickle.loads(data), name)
    assert_as_recorded(make.trained_arrays(model), name, "continued")


def test_a_model_pickled_now_trains_on_under_the_other_kernel_build(tmp_path):
    # the optimizer pickles as plain values, not as an object of the kernel
    # build that wrote it: a pickle trains on whichever build unpickles it
    import subprocess

    from cbp._dispatch import kernel
    from sklearn.datasets import make_classification

    X, y = make_classification(80, 5, random_state=0)
    model = cbp.MLPClassifier((6,), solver="adamw", max_iter=2, random_state=0)
    with pytest.warns(Warning):
        model.fit(X, y)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    other = "baseline" if kernel.__name__ != "cbp._kernel" else ""  # "": the widest
    code = (
        "import pickle, sys, numpy as np\n"
        f"model = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        f"X, y = np.load({str(tmp_path / 'X.npy')!r}), np.load({str(tmp_path / 'y.npy')!r})\n"
        "model.partial_fit(X, y)\n"
        f"np.save({str(tmp_path / 'coef.npy')!r}, model.coefs_[0])\n"
        "from cbp._dispatch import kernel\n"
        "print(kernel.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "CBP_KERNEL": other})
    assert done.returncode == 0, done.stderr
    if other == "baseline":
        assert done.stdout.strip() == "cbp._kernel"
    here = pickle.loads(path.read_bytes())
    here.partial_fit(X, y)
    # the same epoch, by another build: equal to rounding (FMA or not)
    assert_allclose(np.load(tmp_path / "coef.npy"), here.coefs_[0], rtol=1e-10)
