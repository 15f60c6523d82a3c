"""The documentation's scripts -- the gallery examples (docs/examples/plot_*.py)
and docs/check_links.py -- loaded as modules by the tests that check them.

The examples keep their run under ``if __name__ == "__main__":`` (which
sphinx-gallery executes when the site is built), so loading one defines its
functions and runs nothing: a test calls them on a smaller problem.
"""

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def load_script(path):
    """The module of the script at ``path`` (not a package's: docs/ has none),
    its ``__main__`` block not run."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"cbp_docs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_example(name):
    """The module of ``docs/examples/<name>.py``, its main block not run."""
    return load_script(EXAMPLES / f"{name}.py")
