"""Optional packages in the tests: skipped only when they are not installed.

``pytest.importorskip`` skips on any ImportError, so an optional package that
is installed but broken (a release that no longer imports beside the
scikit-learn cbp needs, say) would look like a pass. ``optional`` skips only
when the package is absent; an installed package that fails to import fails
the test with its own error. ``.ci/run`` installs every optional package and
runs ``pytest --strict-skips``, so there even an absent one fails
(tests/expected_skips.py).
"""

import importlib
import importlib.util

import pytest


def is_installed(module):
    """Whether the top-level package of the dotted name ``module`` is installed
    (found on sys.path), without importing it."""
    return importlib.util.find_spec(module.partition(".")[0]) is not None


def optional(module):
    """Import and return ``module`` (a dotted name); skip the calling test (or,
    called at a test module's top, the whole module), with a reason naming the
    package, when its top-level package is not installed. An installed package
    whose import fails raises, failing the test."""
    if not is_installed(module):
        pytest.skip(f"the optional package {module.partition('.')[0]!r} is not installed",
                    allow_module_level=True)
    return importlib.import_module(module)
