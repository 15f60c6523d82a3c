"""Specification of saving and loading models without pickle (cbp/_persistence.py).

``model.save(path)`` writes a NumPy .npz archive of plain arrays;
``cbp.load(path)`` reads it with ``allow_pickle=False`` and checks every array
before it builds a model. What that promises, one behaviour per test:

* Round trip. For every kind of model (classifier: binary, multiclass,
  multilabel, string labels, pandas input with feature names; regressor:
  single and multi-output, Poisson), every solver and both dtypes, the loaded
  model predicts exactly as the saved one, has the same fitted attributes and
  parameters, and (sgd, adam) continues training exactly as the original does,
  because the optimizer state is saved too.
* The file is plain data: np.load(allow_pickle=False) reads every array, and
  loading never unpickles anything.
* Anything that is not an intact cbp file raises a ValueError that says so,
  and never crashes the process (these tests run the load in a forked child,
  see isolation.py): truncated files, flipped bytes, archives rewritten with
  one array changed (every check of the loader), files of other kinds. A
  missing path raises FileNotFoundError; saving an unfitted model raises
  NotFittedError.
* pickle and joblib keep working, and agree with save/load.
* A random_state given as a RandomState instance is saved as None.

(The defects these tests found at first — non-ValueError exceptions from a
damaged zip directory, hidden or missing entries, unchecked optimizer
scalars, non-integer layer sizes, a reset no-improvement count, tuples
coming back as lists — are fixed; the tests stay as their specification.)
"""
import io
import json
import pickle
import struct
import warnings
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import cbp
from cbp import MLPClassifier, MLPRegressor
from isolation import assert_raises_isolated, run_isolated

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# ---------------------------------------------------------------------------
# Data and models
# ---------------------------------------------------------------------------

_rng = np.random.default_rng(0)
X = _rng.normal(size=(30, 4))
Y_BINARY = (X[:, 0] + X[:, 1] > 0).astype(int)
Y_MULTICLASS = np.digitize(X[:, 0], [-0.5, 0.5])  # 0, 1, 2
Y_MULTILABEL = (X[:, :3] > 0).astype(int)
Y_STRINGS = np.array(["bird", "cat", "dog"])[Y_MULTICLASS]
Y_REGRESSION = X @ np.array([0.5, -1.0, 0.2, 0.3])
Y_TWO_OUTPUTS = np.c_[Y_REGRESSION, X[:, 2] - X[:, 3]]
Y_COUNTS = _rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
FEATURE_NAMES = ["height", "width", "depth", "weight"]

# name: (estimator, extra parameters, y, pandas input)
TASKS = {
    "classifier-binary": (MLPClassifier, {}, Y_BINARY, False),
    "classifier-multiclass": (MLPClassifier, {}, Y_MULTICLASS, False),
    "classifier-multilabel": (MLPClassifier, {}, Y_MULTILABEL, False),
    "classifier-string-labels": (MLPClassifier, {}, Y_STRINGS, False),
    "classifier-pandas-feature-names": (MLPClassifier, {}, Y_BINARY, True),
    "regressor-single-output": (MLPRegressor, {}, Y_REGRESSION, False),
    "regressor-multi-output": (MLPRegressor, {}, Y_TWO_OUTPUTS, False),
    "regressor-poisson": (MLPRegressor, {"loss": "poisson"}, Y_COUNTS, False),
}
SOLVERS = ["sgd", "adam", "lbfgs"]
DTYPES = {"float32": np.float32, "float64": np.float64}

CASES = [pytest.param(task, solver, dtype, id=f"{task}-{solver}-{dtype}")
         for task in TASKS for solver in SOLVERS for dtype in DTYPES]
STOCHASTIC_CASES = [case for case in CASES if case.values[1] != "lbfgs"]


def task_data(task, dtype):
    """(X, y) of a task, X in the dtype (a DataFrame for the pandas task)."""
    _, _, y, pandas = TASKS[task]
    Xd = X.astype(DTYPES[dtype])
    return (pd.DataFrame(Xd, columns=FEATURE_NAMES) if pandas else Xd), y


def fit(task, solver, dtype, **params):
    Estimator, extra, _, _ = TASKS[task]
    Xd, y = task_data(task, dtype)
    params = {"hidden_layer_sizes": (5, 3), "solver": solver, "max_iter": 5,
              "learning_rate_init": 0.01, "random_state": 0, **extra, **params}
    return Estimator(**params).fit(Xd, y)


def save_and_load(model, tmp_path, name="model.npz"):
    path = tmp_path / name
    model.save(path)
    return cbp.load(path)


FITTED_ATTRIBUTES = ["n_iter_", "t_", "loss_", "loss_curve_", "best_loss_",
                     "validation_scores_", "best_validation_score_", "classes_",
                     "n_features_in_", "feature_names_in_", "out_activation_",
                     "n_layers_", "n_outputs_"]


def assert_same_fitted_model(loaded, original):
    """Same class, weights (values and dtype), fitted attributes and parameters."""
    assert type(loaded) is type(original)
    assert len(loaded.coefs_) == len(original.coefs_)
    for name in ("coefs_", "intercepts_"):
        for l, (got, want) in enumerate(zip(getattr(loaded, name), getattr(original, name))):
            assert got.dtype == want.dtype, f"{name}[{l}] dtype"
            assert_array_equal(got, want, err_msg=f"{name}[{l}]")
    for name in FITTED_ATTRIBUTES:
        assert hasattr(loaded, name) == hasattr(original, name), f"{name} present"
        if hasattr(original, name):
            got, want = getattr(loaded, name), getattr(original, name)
            if want is None:
                assert got is None, name
            else:
                assert_array_equal(got, want, err_msg=name)
    assert loaded.get_params() == original.get_params()


def optimizer_state(model):
    """The stochastic optimizer's state (a private object: used only to tell an
    intact load from one that silently lost part of the file)."""
    optimizer = getattr(model, "_optimizer", None)
    if optimizer is None:
        return None
    return type(optimizer).__name__, optimizer.state()


def same_model(a, b):
    """Whether two models are the same in every saved respect (a bool)."""
    try:
        assert_same_fitted_model(a, b)
    except AssertionError:
        return False
    sa, sb = optimizer_state(a), optimizer_state(b)
    if sa is None or sb is None:
        return sa is sb
    return sa[0] == sb[0] and sa[1].keys() == sb[1].keys() and all(
        np.array_equal(sa[1][k], sb[1][k]) for k in sa[1])


# ---------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("task, solver, dtype", CASES)
def test_loaded_model_predicts_exactly_as_the_saved_one(task, solver, dtype, tmp_path):
    model = fit(task, solver, dtype)
    loaded = save_and_load(model, tmp_path)
    Xd, _ = task_data(task, dtype)
    assert_array_equal(loaded.predict(Xd), model.predict(Xd))
    if isinstance(model, MLPClassifier):
        assert_array_equal(loaded.predict_proba(Xd), model.predict_proba(Xd))


@pytest.mark.parametrize("task, solver, dtype", CASES)
def test_loaded_model_has_the_same_fitted_attributes_and_parameters(task, solver, dtype,
                                                                    tmp_path):
    model = fit(task, solver, dtype)
    assert_same_fitted_model(save_and_load(model, tmp_path), model)


def test_loaded_model_keeps_the_feature_names(tmp_path):
    """(The pandas case of the round trip, spelled out.)"""
    model = fit("classifier-pandas-feature-names", "adam", "float64")
    assert_array_equal(save_and_load(model, tmp_path).feature_names_in_, FEATURE_NAMES)


def test_loaded_model_checks_feature_names_like_the_original(tmp_path):
    model = fit("classifier-pandas-feature-names", "adam", "float64")
    loaded = save_and_load(model, tmp_path)
    renamed = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="feature names"):
        model.predict(renamed)
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(renamed)


@pytest.mark.parametrize("task, solver, dtype", STOCHASTIC_CASES)
def test_loaded_model_continues_training_exactly_as_the_original(task, solver, dtype,
                                                                 tmp_path):
    """The optimizer state (velocities; Adam's moments and step count) is saved,
    so partial_fit after loading makes the same updates as without saving."""
    model = fit(task, solver, dtype)
    loaded = save_and_load(model, tmp_path)
    Xd, y = task_data(task, dtype)
    for _ in range(3):
        model.partial_fit(Xd, y)
        loaded.partial_fit(Xd, y)
    assert_same_fitted_model(loaded, model)
    assert_array_equal(loaded.predict(Xd), model.predict(Xd))


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", pytest.param(
    "adaptive")])
def test_loaded_model_continues_a_stalled_learning_rate_schedule(learning_rate, tmp_path):
    """Saved after epochs that did not improve the loss by tol: the count of
    such epochs is part of the training state (adaptive divides the learning
    rate by 5 when it exceeds n_iter_no_change)."""
    model = fit("classifier-binary", "sgd", "float64", learning_rate=learning_rate,
                tol=10.0, n_iter_no_change=2, max_iter=3)
    loaded = save_and_load(model, tmp_path)
    for _ in range(3):
        model.partial_fit(X, Y_BINARY)
        loaded.partial_fit(X, Y_BINARY)
    assert_same_fitted_model(loaded, model)


@pytest.mark.parametrize("Estimator, y", [
    pytest.param(MLPClassifier, Y_BINARY, id="classifier"),
    pytest.param(MLPRegressor, Y_REGRESSION, id="regressor")])
def test_early_stopping_model_round_trips(Estimator, y, tmp_path):
    """validation_scores_ and best_validation_score_ are kept (best_loss_ is None)."""
    model = Estimator(hidden_layer_sizes=(5,), early_stopping=True, max_iter=15,
                      random_state=0).fit(X, y)
    loaded = save_and_load(model, tmp_path)
    assert_same_fitted_model(loaded, model)
    assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("hidden_layer_sizes", [
    pytest.param(4, id="int"), pytest.param((4, 3), id="tuple")])
def test_hidden_layer_sizes_come_back_as_given(hidden_layer_sizes, tmp_path):
    model = MLPRegressor(hidden_layer_sizes=hidden_layer_sizes, max_iter=3, random_state=0)
    model.fit(X, Y_REGRESSION)
    assert save_and_load(model, tmp_path).hidden_layer_sizes == hidden_layer_sizes


def test_hidden_layer_sizes_given_as_a_list_come_back_as_a_list(tmp_path):
    model = MLPRegressor(hidden_layer_sizes=[4, 3], max_iter=3, random_state=0)
    model.fit(X, Y_REGRESSION)
    assert save_and_load(model, tmp_path).get_params() == model.get_params()


@pytest.mark.parametrize("task, solver, dtype", [
    pytest.param("classifier-string-labels", "adam", "float32", id="adam"),
    pytest.param("regressor-multi-output", "sgd", "float64", id="sgd"),
    pytest.param("classifier-pandas-feature-names", "lbfgs", "float64", id="lbfgs")])
def test_loaded_model_saves_the_same_arrays_again(task, solver, dtype, tmp_path):
    model = fit(task, solver, dtype)
    model.save(tmp_path / "first.npz")
    cbp.load(tmp_path / "first.npz").save(tmp_path / "second.npz")
    with np.load(tmp_path / "first.npz") as first, np.load(tmp_path / "second.npz") as second:
        assert first.files == second.files
        for key in first.files:
            assert first[key].dtype == second[key].dtype, key
            assert_array_equal(first[key], second[key], err_msg=key)


def test_a_random_state_instance_is_saved_as_none(tmp_path):
    random_state = np.random.RandomState(0)
    model = MLPClassifier((5,), max_iter=5, random_state=random_state).fit(X, Y_BINARY)
    loaded = save_and_load(model, tmp_path)
    assert loaded.random_state is None
    assert model.random_state is random_state, "save must not change the model"
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    params = model.get_params()
    params["random_state"] = None
    assert loaded.get_params() == params


# ---------------------------------------------------------------------------
# The file itself
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("task, solver, dtype", [
    pytest.param("classifier-string-labels", "adam", "float32", id="strings-adam"),
    pytest.param("classifier-pandas-feature-names", "sgd", "float64", id="pandas-sgd"),
    pytest.param("regressor-poisson", "lbfgs", "float64", id="poisson-lbfgs")])
def test_file_is_plain_arrays_read_without_pickle(task, solver, dtype, tmp_path):
    fit(task, solver, dtype).save(tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz", allow_pickle=False) as archive:
        assert archive.files, "no arrays"
        for key in archive.files:
            array = archive[key]  # raises for an object array
            assert array.dtype.kind in "biufU", f"{key} has dtype {array.dtype}"


@pytest.mark.parametrize("name", ["model.npz", "model.cbp", "model"])
def test_save_writes_exactly_the_given_path(name, tmp_path):
    """No suffix is added (np.savez would add .npz to a file name)."""
    model = fit("classifier-binary", "adam", "float64")
    model.save(tmp_path / name)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert_array_equal(cbp.load(str(tmp_path / name)).predict(X), model.predict(X))


def test_saving_an_unfitted_model_raises_not_fitted_error(tmp_path):
    with pytest.raises(NotFittedError):
        MLPClassifier().save(tmp_path / "model.npz")
    assert not (tmp_path / "model.npz").exists()


def test_loading_a_missing_path_raises_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        cbp.load(tmp_path / "missing.npz")


def test_a_model_loads_from_an_open_binary_file(tmp_path):
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    X, y = np.arange(40.0).reshape(20, 2) / 40, np.arange(20) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    model.save(tmp_path / "model.npz")
    loaded = cbp.load(io.BytesIO((tmp_path / "model.npz").read_bytes()))
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_an_open_file_that_is_no_model_raises_value_error():
    with pytest.raises(ValueError, match="BytesIO.*is not a readable cbp model file"):
        cbp.load(io.BytesIO(b"not an archive"))


# ---------------------------------------------------------------------------
# pickle and joblib
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("task, solver, dtype", [
    pytest.param("classifier-multiclass", "adam", "float32", id="multiclass-adam"),
    pytest.param("classifier-pandas-feature-names", "sgd", "float64", id="pandas-sgd"),
    pytest.param("regressor-multi-output", "lbfgs", "float64", id="regressor-lbfgs")])
def test_pickle_joblib_and_save_load_restore_the_same_model(task, solver, dtype, tmp_path):
    model = fit(task, solver, dtype)
    joblib.dump(model, tmp_path / "model.joblib")
    restored = {
        "pickle": pickle.loads(pickle.dumps(model)),
        "joblib": joblib.load(tmp_path / "model.joblib"),
        "save/load": save_and_load(model, tmp_path),
    }
    Xd, y = task_data(task, dtype)
    for how, other in restored.items():
        assert_same_fitted_model(other, model)
        assert_array_equal(other.predict(Xd), model.predict(Xd), err_msg=how)
    if solver != "lbfgs":
        for other in [model, *restored.values()]:
            other.partial_fit(Xd, y)
        for how, other in restored.items():
            assert_same_fitted_model(other, model)


def test_loaded_model_pickles(tmp_path):
    model = fit("classifier-string-labels", "adam", "float64")
    loaded = save_and_load(model, tmp_path)
    again = pickle.loads(pickle.dumps(loaded))
    assert_same_fitted_model(again, model)
    again.partial_fit(X, Y_STRINGS)
    model.partial_fit(X, Y_STRINGS)
    assert_same_fitted_model(again, model)


# ---------------------------------------------------------------------------
# Files that are not intact cbp models: ValueError, never a crash
# ---------------------------------------------------------------------------

NOT_READABLE = r"is not a readable cbp model file"
NOT_VALID = r"is not a valid cbp model file"


def _load(path):
    cbp.load(path)


@pytest.fixture(scope="module")
def saved_file(tmp_path_factory):
    """A small saved model (adam, so the optimizer state is in the file)."""
    path = tmp_path_factory.mktemp("saved") / "model.npz"
    MLPClassifier((2,), max_iter=3, random_state=0).fit(X[:, :2], Y_BINARY).save(path)
    return path


@pytest.mark.parametrize("cut", [
    pytest.param(0, id="empty"), pytest.param(1, id="1-byte"),
    pytest.param(30, id="inside-the-first-zip-header"),
    pytest.param(0.5, id="half"),
    pytest.param(-22, id="without-the-end-record"),
    pytest.param(-1, id="last-byte-missing")])
def test_truncated_file_is_rejected(cut, saved_file, tmp_path):
    data = saved_file.read_bytes()
    if isinstance(cut, float):
        n = int(len(data) * cut)
    else:
        n = cut if cut >= 0 else len(data) + cut
    path = tmp_path / "truncated.npz"
    path.write_bytes(data[:n])
    assert_raises_isolated(ValueError, NOT_READABLE, _load, path)


def _zip_regions(data):
    """{region: byte positions} of an .npz written by np.savez (stored, not
    compressed): each member's local zip header, .npy header and array data,
    then the central directory and the end-of-central-directory record."""
    regions = {"local zip headers": [], "npy headers": [], "array data": []}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        central_directory = archive.start_dir
    for info in infos:
        start = info.header_offset
        name_length, extra_length = struct.unpack("<HH", data[start + 26:start + 30])
        npy = start + 30 + name_length + extra_length
        header_length = struct.unpack("<H", data[npy + 8:npy + 10])[0]  # .npy 1.0
        regions["local zip headers"] += range(start, npy)
        regions["npy headers"] += range(npy, npy + 10 + header_length)
        regions["array data"] += range(npy + 10 + header_length, npy + info.compress_size)
    regions["central directory"] = list(range(central_directory, len(data) - 22))
    regions["end record"] = list(range(len(data) - 22, len(data)))
    return regions


def _flip_each_byte(data, positions, path):
    """Flip every position (XOR 0xFF, then XOR 0x01) and load: a list of the
    outcomes that are neither a ValueError nor the intact model."""
    path.write_bytes(data)
    intact = cbp.load(path)
    failures = []
    for position in positions:
        for mask in (0xFF, 0x01):
            corrupted = bytearray(data)
            corrupted[position] ^= mask
            path.write_bytes(bytes(corrupted))
            try:
                loaded = cbp.load(path)
            except ValueError:
                continue
            except Exception as exc:  # noqa: BLE001 - the outcome under test
                failures.append(f"byte {position} ^ {mask:#04x}: {exc!r}")
                continue
            if not same_model(loaded, intact):
                failures.append(f"byte {position} ^ {mask:#04x}: loaded a different model")
    return failures


def _sample(positions, first=64, spread=120):
    """The first positions of a region, and others spread over the rest."""
    rest = positions[first:]
    picked = [rest[i] for i in np.linspace(0, len(rest) - 1, min(spread, len(rest)),
                                           dtype=int)] if rest else []
    return sorted(set(positions[:first]) | set(picked))


@pytest.mark.parametrize("region", [
    "local zip headers", "npy headers", "array data", "end record",
    pytest.param("central directory")])
def test_flipped_byte_is_rejected_or_harmless(region, saved_file, tmp_path):
    """Every byte of a region flipped in turn (sampled in long regions): the
    load raises ValueError, or (in fields numpy does not use, such as zip
    timestamps) returns the intact model; nothing else."""
    data = saved_file.read_bytes()
    positions = _sample(_zip_regions(data)[region])
    kind, failures = run_isolated(_flip_each_byte, data, positions, tmp_path / "f.npz")
    assert kind == "returned", f"the sweep itself failed: {failures!r}"
    assert not failures, (f"{len(failures)} of {2 * len(positions)} flips: "
                          + "; ".join(failures[:8]))


# Offsets inside a central directory entry (APPNOTE 4.3.12)
_CENTRAL_FIELDS = {"version needed to extract": 6, "general purpose flags": 8,
                   "compression method": 10}


@pytest.mark.parametrize("field, mask, got", [
    pytest.param("version needed to extract", 0xFF, "NotImplementedError",
                 id="version-needed"),
    pytest.param("general purpose flags", 0x01, "RuntimeError (encrypted)",
                 id="encrypted-flag"),
    pytest.param("compression method", 0xFF, "NotImplementedError",
                 id="compression-method")])
def test_corrupted_zip_directory_field_is_rejected_with_value_error(field, mask, got,
                                                                   saved_file, tmp_path):
    data = bytearray(saved_file.read_bytes())
    with zipfile.ZipFile(saved_file) as archive:
        entry = archive.start_dir
    data[entry + _CENTRAL_FIELDS[field]] ^= mask
    path = tmp_path / "corrupted.npz"
    path.write_bytes(bytes(data))
    assert_raises_isolated(ValueError, NOT_READABLE, _load, path)


class _Payload:
    """Unpickling this touches a file: proof that something was unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


def test_object_array_in_a_cbp_file_is_rejected_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.npz"
    with open(path, "wb") as f:
        np.savez(f, __cbp_format__=np.array(1), __class__=np.array("MLPClassifier"),
                 __params__=np.array([_Payload(marker)], dtype=object))
    assert_raises_isolated(ValueError, NOT_READABLE, _load, path)
    assert not marker.exists(), "load() unpickled an object array"
    with np.load(path, allow_pickle=True) as archive:  # (the control: it would)
        archive["__params__"]
    assert marker.exists()


def _write_empty(path):
    path.write_bytes(b"")


def _write_text(path):
    path.write_text("coefs_ = [[1.0, 2.0]]\n")


def _write_pickle(path):
    path.write_bytes(pickle.dumps(fit("classifier-binary", "adam", "float64")))


def _write_joblib(path):
    joblib.dump(fit("classifier-binary", "adam", "float64"), path)


def _write_unrelated_npz(path):
    with open(path, "wb") as f:
        np.savez(f, weights=np.ones((3, 2)), bias=np.zeros(2))


def _write_plain_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README.txt", "not arrays")


def _write_npy(path):
    with open(path, "wb") as f:
        np.save(f, np.ones((3, 2)))


@pytest.mark.parametrize("write, match", [
    pytest.param(_write_empty, NOT_READABLE, id="empty-file"),
    pytest.param(_write_text, NOT_READABLE, id="text-file"),
    pytest.param(_write_pickle, NOT_READABLE, id="pickle-of-a-model"),
    pytest.param(_write_joblib, NOT_READABLE, id="joblib-of-a-model"),
    pytest.param(_write_unrelated_npz, "no cbp format marker", id="unrelated-npz"),
    pytest.param(_write_plain_zip, "no cbp format marker", id="zip-without-arrays"),
    pytest.param(_write_npy, NOT_READABLE, id="npy-file"),
])
def test_file_that_is_not_a_cbp_model_is_rejected(write, match, tmp_path):
    path = tmp_path / "model.npz"
    write(path)
    assert_raises_isolated(ValueError, match, _load, path)


# ---------------------------------------------------------------------------
# Tampered archives: the file rewritten with one array changed
# ---------------------------------------------------------------------------

DROP = object()


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """{kind: the arrays of a saved model} for the tampering tests."""
    folder = tmp_path_factory.mktemp("tamper")
    models = {
        "binary-adam": MLPClassifier((4, 3), max_iter=3, random_state=0).fit(X, Y_BINARY),
        "multiclass-sgd": MLPClassifier((4, 3), solver="sgd", max_iter=3,
                                        random_state=0).fit(X, Y_MULTICLASS),
        "regressor-adam": MLPRegressor(hidden_layer_sizes=(4, 3), max_iter=3,
                                       random_state=0).fit(X, Y_REGRESSION),
        "poisson-lbfgs": MLPRegressor("poisson", (4, 3), solver="lbfgs", max_iter=3,
                                      random_state=0).fit(X, Y_COUNTS),
    }
    arrays = {}
    for kind, model in models.items():
        model.save(folder / f"{kind}.npz")
        with np.load(folder / f"{kind}.npz", allow_pickle=False) as archive:
            arrays[kind] = {key: archive[key] for key in archive.files}
    return arrays


def _tampered(saved_models, kind, change, path):
    """Write the arrays of ``kind`` with ``change(arrays)`` ({key: new array or
    DROP}) applied; returns the path."""
    arrays = dict(saved_models[kind])
    for key, value in change(arrays).items():
        if value is DROP:
            arrays.pop(key)
        else:
            arrays[key] = value
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _params(**changes):
    """A change of the __params__ JSON."""
    def change(arrays):
        params = json.loads(str(arrays["__params__"]))
        params.update(changes)
        return {"__params__": np.array(json.dumps(params))}
    return change


def _set(key, value):
    """A change setting key to a fixed array."""
    return lambda arrays: {key: value}


def _weights(transform):
    """A change applying transform to every coefs_/l and intercepts_/l."""
    return lambda arrays: {k: transform(v) for k, v in arrays.items()
                           if k.startswith(("coefs_/", "intercepts_/"))}


def _one(key, transform):
    return lambda arrays: {key: transform(arrays[key])}


def _drop(*keys):
    return lambda arrays: dict.fromkeys(keys, DROP)


def _with_nan(a):
    a = a.copy()
    a.flat[0] = np.nan
    return a


def _with_inf(a):
    a = a.copy()
    a.flat[-1] = np.inf
    return a


def _case(kind, change, match, id):
    return pytest.param(kind, change, match, id=id)


HEADER_CASES = [
    _case("binary-adam", lambda a: {"__cbp_format__": np.array(2)},
          "format version 2", "format-version-2"),
    _case("binary-adam", lambda a: {"__cbp_format__": np.array(0)},
          "format version 0", "format-version-0"),
    _case("binary-adam", lambda a: {"__cbp_format__": np.array("1")},
          "__cbp_format__ must be a number", "format-version-as-text"),
    _case("binary-adam", lambda a: {"__cbp_format__": np.array([1])},
          "__cbp_format__ must be a scalar", "format-version-as-vector"),
    _case("binary-adam", _drop("__cbp_format__"), "no cbp format marker",
          "format-version-missing"),
    _case("binary-adam", lambda a: {"__class__": np.array("SVC")},
          "unknown estimator 'SVC'", "unknown-class-name"),
    _case("binary-adam", lambda a: {"__class__": np.array(1)},
          "__class__ must be a string", "class-name-not-text"),
    _case("binary-adam", lambda a: {"__params__": np.array("{'solver': 'adam'")},
          "unreadable parameters", "params-invalid-json"),
    _case("binary-adam", lambda a: {"__params__": np.array("[1, 2]")},
          "parameters must be a mapping", "params-json-not-an-object"),
    _case("binary-adam", _params(activation="swish"), "invalid parameters.*activation",
          "params-activation-swish"),
    _case("binary-adam", _params(alpha=-1.0), "invalid parameters.*alpha",
          "params-negative-alpha"),
    _case("binary-adam", _params(solver="newton"), "invalid parameters.*solver",
          "params-unknown-solver"),
    _case("binary-adam", _params(colour="blue"), r"unknown parameters \['colour'\]",
          "params-unknown-key"),
    _case("binary-adam", _params(loss="poisson"), r"unknown parameters \['loss'\]",
          "params-regressor-key-on-classifier"),
    _case("binary-adam", _params(hidden_layer_sizes=[4]),
          r"weights for hidden layers \(4, 3\), parameters say \(4,\)",
          "params-hidden-layers-disagree-with-weights"),
    *[pytest.param("binary-adam", _drop(key), key, id=f"{key.strip('_')}-missing")
      for key in ("__class__", "__params__")],
]


def test_params_with_non_integer_hidden_layer_sizes_are_rejected(saved_models, tmp_path):
    path = _tampered(saved_models, "binary-adam", _params(hidden_layer_sizes=[4.0, 3.0]),
                     tmp_path / "model.npz")
    assert_raises_isolated(ValueError, NOT_VALID, _load, path)


WEIGHT_CASES = [
    _case("binary-adam", _set("coefs_/1", np.zeros((5, 3))),
          r"coefs_\[1\] has 5 rows, the layer before has 4 units", "coefs-do-not-chain"),
    _case("binary-adam", _one("coefs_/0", lambda c: c[:, 0]), r"coefs_\[0\] is not a matrix",
          "coef-not-a-matrix"),
    _case("binary-adam", _set("intercepts_/0", np.zeros(5)),
          r"intercepts_\[0\] has shape \(5,\), expected \(4,\)", "intercept-wrong-length"),
    _case("binary-adam", _set("intercepts_/0", np.zeros((1, 4))),
          r"intercepts_\[0\] has shape \(1, 4\)", "intercept-not-a-vector"),
    _case("binary-adam", _weights(lambda w: np.round(w).astype(np.int64)),
          "weights of dtype int64", "int-weights"),
    _case("binary-adam", _weights(lambda w: w.astype(np.float16)),
          "weights of dtype float16", "float16-weights"),
    _case("binary-adam", _weights(lambda w: w.astype(np.complex128)),
          "weights of dtype complex128", "complex-weights"),
    _case("binary-adam", _one("coefs_/1", lambda c: c.astype(np.float32)),
          "weights of mixed dtypes", "mixed-dtypes-coef"),
    _case("binary-adam", _one("intercepts_/2", lambda b: b.astype(np.float32)),
          "weights of mixed dtypes", "mixed-dtypes-intercept"),
    _case("binary-adam", _one("coefs_/1", _with_nan), "non-finite weights in layer 1",
          "nan-coef"),
    _case("binary-adam", _one("intercepts_/0", _with_inf), "non-finite weights in layer 0",
          "inf-intercept"),
    _case("binary-adam", _drop("coefs_/2"), "weights are missing or numbered wrongly",
          "missing-coef"),
    _case("binary-adam", _drop("intercepts_/1"), "weights are missing or numbered wrongly",
          "missing-intercept"),
    _case("binary-adam", lambda a: {k: DROP for k in a if k.startswith(("coefs_", "inter"))},
          "no weights", "no-weights-at-all"),
    _case("binary-adam", lambda a: {"coefs_/3": np.zeros((1, 1)), "intercepts_/3": np.zeros(1)},
          r"weights for hidden layers \(4, 3, 1\)", "extra-layer"),
    _case("binary-adam", _weights(lambda w: w.astype(np.float32)),
          "optimizer state 'ms' does not match the weights",
          "float32-weights-with-float64-optimizer-state"),
]

ATTRIBUTE_CASES = [
    *[_case("binary-adam", _drop(f"attr/{name}"), f"missing {name}", f"missing-{name}")
      for name in ("n_layers_", "n_outputs_", "n_iter_", "t_", "n_features_in_",
                   "out_activation_", "classes_")],
    _case("binary-adam", _drop("attr/y_type_"), "missing classes_", "missing-y_type_"),
    _case("binary-adam", _set("attr/n_features_in_", np.array(7)),
          "n_features_in_ does not match the weights", "n_features_in_-mismatch"),
    _case("binary-adam", _one("coefs_/0", lambda c: np.vstack([c, c[:1]])),
          "n_features_in_ does not match the weights", "first-layer-of-another-width"),
    _case("binary-adam", _set("attr/n_outputs_", np.array(2)),
          "n_outputs_ does not match the weights", "n_outputs_-mismatch"),
    _case("binary-adam", _set("attr/n_layers_", np.array(5)),
          "n_layers_ does not match the weights", "n_layers_-mismatch"),
    _case("binary-adam", _set("attr/n_iter_", np.array(-1)), "non-negative integer",
          "negative-n_iter_"),
    _case("binary-adam", _set("attr/t_", np.array(2.5)), "non-negative integer",
          "fractional-t_"),
    _case("binary-adam", _set("attr/n_iter_", np.array([3, 4])), "must be a scalar",
          "n_iter_-as-vector"),
    _case("binary-adam", _set("attr/loss_", np.array("low")), "must be a number",
          "loss_-as-text"),
    _case("binary-adam", _set("attr/loss_curve_", np.array(["a", "b"])),
          "loss_curve_ must hold floats", "loss_curve_-of-text"),
    _case("binary-adam", _set("attr/loss_curve_", np.zeros((2, 2))),
          "loss_curve_ is not a plain vector", "loss_curve_-2d"),
    _case("binary-adam", _set("attr/feature_names_in_", np.array(["a", "b"])),
          "feature_names_in_ does not match the weights", "feature_names_in_-too-short"),
    _case("binary-adam", _set("attr/classes_", np.array([0, 1, 2])),
          "classes_ do not match the output layer", "three-classes-on-a-binary-output"),
    _case("multiclass-sgd", _set("attr/classes_", np.array([0, 1])),
          "classes_ do not match the output layer", "two-classes-on-three-outputs"),
    _case("multiclass-sgd", _set("attr/classes_", np.array([0, 1, 2, 3])),
          "classes_ do not match the output layer", "four-classes-on-three-outputs"),
    _case("binary-adam", _set("attr/classes_", np.array([[0, 1]])),
          "classes_ is not a plain vector", "classes_-2d"),
    _case("binary-adam", _set("attr/y_type_", np.array("multiclass")),
          "classes_ do not match the output layer", "binary-output-called-multiclass"),
    _case("binary-adam", _set("attr/y_type_", np.array("continuous")),
          "unknown target type 'continuous'", "unknown-target-type"),
    _case("binary-adam", _set("attr/out_activation_", np.array("swish")),
          "unknown output activation 'swish'", "unknown-out_activation_"),
    _case("binary-adam", _set("attr/out_activation_", np.array("softmax")),
          "classes_ do not match the output layer", "softmax-on-a-binary-classifier"),
    _case("multiclass-sgd", _set("attr/out_activation_", np.array("logistic")),
          "classes_ do not match the output layer", "logistic-on-a-multiclass-classifier"),
    _case("binary-adam", _set("attr/out_activation_", np.array("identity")),
          "classes_ do not match the output layer", "identity-on-a-classifier"),
    _case("regressor-adam", _set("attr/out_activation_", np.array("exp")),
          "output activation 'exp' for loss 'squared_error'", "exp-on-squared-error"),
    _case("regressor-adam", _set("attr/out_activation_", np.array("softmax")),
          "output activation 'softmax' for loss 'squared_error'",
          "softmax-on-a-regressor"),
    _case("poisson-lbfgs", _set("attr/out_activation_", np.array("identity")),
          "output activation 'identity' for loss 'poisson'", "identity-on-poisson"),
]


OPTIMIZER_CASES = [
    _case("binary-adam", _one("optimizer/ms", lambda v: v[:-1]),
          "optimizer state 'ms' does not match the weights", "adam-ms-one-short"),
    _case("binary-adam", _one("optimizer/vs", lambda v: np.r_[v, v[:1]]),
          "optimizer state 'vs' does not match the weights", "adam-vs-one-long"),
    _case("binary-adam", _one("optimizer/ms", lambda v: v.astype(np.float32)),
          "optimizer state 'ms' does not match the weights", "adam-ms-float32"),
    _case("binary-adam", _one("optimizer/ms", lambda v: v[None, :]),
          "optimizer state 'ms' does not match the weights", "adam-ms-2d"),
    _case("binary-adam", _one("optimizer/ms", _with_nan),
          "non-finite optimizer state 'ms'", "adam-ms-nan"),
    _case("binary-adam", _one("optimizer/vs", _with_inf),
          "non-finite optimizer state 'vs'", "adam-vs-inf"),
    _case("multiclass-sgd", _one("optimizer/velocities", lambda v: v[:-1]),
          "optimizer state 'velocities' does not match the weights",
          "sgd-velocities-one-short"),
    _case("multiclass-sgd", _one("optimizer/velocities", _with_nan),
          "non-finite optimizer state 'velocities'", "sgd-velocities-nan"),
    _case("binary-adam", _set("optimizer/t", np.array([1, 2])),
          "optimizer state 't' is not a scalar", "adam-t-as-vector"),
    _case("binary-adam", _set("optimizer/colour", np.array(1.0)),
          "unknown optimizer state 'colour'", "unknown-optimizer-entry"),
    _case("binary-adam", lambda a: {"optimizer/velocities": a["optimizer/ms"]},
          "unknown optimizer state 'velocities'", "sgd-state-in-an-adam-model"),
    pytest.param("binary-adam", _drop("optimizer/ms"), NOT_VALID,
                 id="adam-ms-missing"),
    pytest.param("binary-adam", _drop("optimizer/t"), NOT_VALID,
                 id="adam-t-missing"),
    pytest.param("multiclass-sgd", _drop("optimizer/velocities"), NOT_VALID,
                 id="sgd-velocities-missing"),
    pytest.param("binary-adam", _set("optimizer/learning_rate", np.array(np.nan)), NOT_VALID,
                 id="adam-learning_rate-nan"),
    pytest.param("binary-adam", _set("optimizer/beta_1", np.array(np.nan)), NOT_VALID,
                 id="adam-beta_1-nan"),
    pytest.param("binary-adam", _set("optimizer/epsilon", np.array(np.nan)), NOT_VALID,
                 id="adam-epsilon-nan"),
    pytest.param("binary-adam", _set("optimizer/t", np.array(-3)), NOT_VALID,
                 id="adam-t-negative"),
    pytest.param("binary-adam", _set("optimizer/t", np.array(np.inf)), NOT_VALID,
                 id="adam-t-inf"),
    pytest.param("multiclass-sgd", _set("optimizer/momentum", np.array(np.inf)), NOT_VALID,
                 id="sgd-momentum-inf"),
    pytest.param("multiclass-sgd", _set("optimizer/learning_rate", np.array(np.nan)),
                 NOT_VALID, id="sgd-learning_rate-nan"),
    pytest.param("multiclass-sgd", _set("optimizer/lr_schedule", np.array("cosine")),
                 NOT_VALID, id="sgd-unknown-lr_schedule"),
]


@pytest.mark.parametrize("kind, change, match",
                         HEADER_CASES + WEIGHT_CASES + ATTRIBUTE_CASES + OPTIMIZER_CASES)
def test_tampered_archive_is_rejected(kind, change, match, saved_models, tmp_path):
    """The archive of a saved model, rewritten with one entry changed, added or
    removed: ValueError naming the problem, and no crash."""
    path = _tampered(saved_models, kind, change, tmp_path / "model.npz")
    error = assert_raises_isolated(ValueError, match, _load, path)
    assert str(tmp_path / "model.npz") in str(error), "the message names the file"


@pytest.mark.parametrize("kind", ["binary-adam", "multiclass-sgd", "regressor-adam",
                                  "poisson-lbfgs"])
def test_archive_rewritten_unchanged_still_loads(kind, saved_models, tmp_path):
    """(The control of the tampering tests: rewriting alone breaks nothing.)"""
    path = _tampered(saved_models, kind, lambda arrays: {}, tmp_path / "model.npz")
    outcome, predictions = run_isolated(_load_and_predict, path)
    assert outcome == "returned", predictions
    assert predictions.shape[0] == X.shape[0]


def _load_and_predict(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cbp.load(path).predict(X)


def test_save_after_changing_the_solver_writes_a_loadable_model(tmp_path):
    """set_params(solver=...) after a fit: the old optimizer's state is not the
    new solver's, so it is left out, and the file loads."""
    model = MLPClassifier((4,), solver="adam", max_iter=3, random_state=0).fit(X, Y_BINARY)
    for solver in ("lbfgs", "sgd"):
        model.set_params(solver=solver)
        loaded = save_and_load(model, tmp_path)
        assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_save_refuses_parameters_that_no_longer_match_the_weights(tmp_path):
    model = MLPClassifier((4,), max_iter=3, random_state=0).fit(X, Y_BINARY)
    model.set_params(hidden_layer_sizes=(7,))
    with pytest.raises(ValueError, match="cannot save this model.*hidden"):
        model.save(tmp_path / "model.npz")
    assert not (tmp_path / "model.npz").exists()
