import importlib.util
import re

import pytest

from expected_skips import EXPECTED_SKIPS


def pytest_addoption(parser):
    parser.addoption(
        "--strict-skips", action="store_true",
        help="fail the session when a test skips for a reason that is not in "
             "tests/expected_skips.py (what .ci/run runs, every optional package "
             "installed)")


def pytest_sessionstart(session):
    """Stop at once, with instructions, unless the compiled kernel imports.

    The tests exercise the installed package. The source folder cbp/ holds no
    compiled module, so if it shadows the installed package (``python -m
    pytest`` puts the current directory first on sys.path), or if the package
    was never built, ``cbp._kernel`` cannot be imported.
    """
    try:
        import cbp._kernel  # noqa: F401
    except ImportError as exc:
        spec = importlib.util.find_spec("cbp")
        where = ("cbp is not installed" if spec is None else
                 f"cbp is found at {spec.submodule_search_locations[0]!r}")
        pytest.exit(
            f"cannot import the compiled kernel cbp._kernel ({exc}); {where}.\n"
            "Build and install the package first, from the repository root:\n"
            '    pip install ".[test]"\n'
            "(see README), then run `pytest tests` from the repository root "
            "rather than `python -m pytest`, which puts the source tree, "
            "without the compiled module, first on sys.path.",
            returncode=4,
        )


@pytest.fixture
def global_random_seed():
    """scikit-learn's fixture of the same name (its tests, run against cbp in
    tests/sklearn_suite/, use it): the seed 42 unless
    SKLEARN_TESTS_GLOBAL_RANDOM_SEED names one."""
    import os

    value = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED", "42")
    return int(value) if value.isdigit() else 42


def _skip_reason(report):
    """The reason a skipped test report gives (pytest keeps it as the last
    item of ``longrepr``, a (path, line, "Skipped: reason") triple)."""
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


_unexpected_skips = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if not any(re.search(pattern, reason) for pattern in EXPECTED_SKIPS):
            _unexpected_skips.append((report.nodeid, reason))


def pytest_collectreport(report):
    # a module skipped as a whole (pytest.skip(..., allow_module_level=True))
    pytest_runtest_logreport(report)


def pytest_sessionfinish(session, exitstatus):
    if session.config.getoption("--strict-skips") and _unexpected_skips:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if config.getoption("--strict-skips") and _unexpected_skips:
        terminalreporter.section("skips not in tests/expected_skips.py", red=True)
        for nodeid, reason in _unexpected_skips:
            terminalreporter.line(f"{nodeid}: {reason}")
        terminalreporter.line(f"{len(_unexpected_skips)} unexpected skips: --strict-skips "
                              "fails the session")
