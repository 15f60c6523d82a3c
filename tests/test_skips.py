"""The tests' own rules on skipping: an optional package skips a test only
when it is absent (tests/optional.py), and ``--strict-skips`` fails a session
whose skips are not all listed in tests/expected_skips.py (tests/conftest.py)."""

import os
import shutil
import subprocess
import sys

import pytest

from optional import optional

HERE = os.path.dirname(os.path.abspath(__file__))


def test_an_absent_optional_package_skips_naming_it():
    with pytest.raises(pytest.skip.Exception, match="'no_such_package_cbp' is not installed"):
        optional("no_such_package_cbp.sub")


def test_an_installed_package_that_fails_to_import_fails(tmp_path, monkeypatch):
    (tmp_path / "broken_package_cbp").mkdir()
    (tmp_path / "broken_package_cbp" / "__init__.py").write_text(
        "raise ImportError('cannot import name _safe_tags')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="_safe_tags"):
        optional("broken_package_cbp")


def test_an_installed_package_is_returned():
    assert optional("numpy.linalg").__name__ == "numpy.linalg"


def _session(tmp_path, reason, *options):
    """Run pytest, with this suite's conftest and list of expected skips, on
    one test that skips for ``reason``; return (exit code, output)."""
    for name in ("conftest.py", "expected_skips.py"):
        shutil.copy(os.path.join(HERE, name), tmp_path)
    (tmp_path / "test_one.py").write_text(
        "import pytest\n\n\ndef test_it():\n    pytest.skip(%r)\n" % reason)
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "-q", "-rs", *options, str(tmp_path / "test_one.py")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def test_strict_skips_fails_on_a_skip_not_listed(tmp_path):
    code, out = _session(tmp_path, "the optional package 'torch' is not installed",
                         "--strict-skips")
    assert code == pytest.ExitCode.TESTS_FAILED, out
    assert "test_one.py::test_it: the optional package 'torch' is not installed" in out


def test_strict_skips_accepts_a_listed_skip(tmp_path):
    code, out = _session(tmp_path, "this CPU does not run the avx512 build", "--strict-skips")
    assert code == pytest.ExitCode.OK, out


def test_without_strict_skips_any_skip_passes(tmp_path):
    code, out = _session(tmp_path, "the optional package 'torch' is not installed")
    assert code == pytest.ExitCode.OK, out
