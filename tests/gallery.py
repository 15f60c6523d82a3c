"""The documentation's gallery examples (docs/examples/plot_*.py), loaded as
modules by the tests that check their claims.

The examples keep their run under ``if __name__ == "__main__":`` (which
sphinx-gallery executes when the site is built), so loading one defines its
functions and runs nothing: a test calls them on a smaller problem.
"""

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def load_example(name):
    """The module of ``docs/examples/<name>.py``, its main block not run."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"cbp_gallery_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
