import importlib.util

import pytest


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
