"""The examples in cbp's public docstrings run and show what they say.

The API reference (docs/api.rst) is built from the numpydoc docstrings of the
names in ``cbp.__all__``. Every such name has an ``Examples`` section, and
each section runs here as a doctest against the installed package: one test
per public name, and one per public method whose docstring has examples
(ids such as "MLPClassifier" and "MLPClassifier.predict"), taken from
``cbp.__all__`` so that a new public name is covered without editing this
file. A failing test prints doctest's report of the examples that failed.

An example that imports an optional package (pandas, matplotlib) is skipped
when that package is absent; matplotlib draws on its Agg backend.
"""

import ast
import doctest
import inspect
import io
import re
import sys

import pytest

import cbp
from optional import optional

OPTIONFLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS

# a numpydoc Examples section: the heading, underlined, then a >>> line
EXAMPLES_SECTION = re.compile(r"^Examples\n-{8,}\n(.*\n)*?>>> ", re.MULTILINE)

_FINDER = doctest.DocTestFinder(recurse=False)


def _doctests(name, obj):
    """The doctests in obj's own docstring (none, or one), named ``name``;
    each starts with empty globals, so an example imports what it uses."""
    # (unwrapped: the function a decorator wraps has the source lines)
    return [test for test in _FINDER.find(inspect.unwrap(obj), name, globs={})
            if test.examples]


def _methods(cls):
    """(name, method) for the public methods that cls or a cbp base class
    defines (not those it inherits from scikit-learn)."""
    for attr in sorted(dir(cls)):
        if attr.startswith("_"):
            continue
        owner = next((base for base in cls.__mro__ if attr in vars(base)), None)
        if owner is None or not owner.__module__.startswith("cbp."):
            continue
        method = getattr(cls, attr)  # (resolves available_if and classmethods)
        if callable(method) and not inspect.isclass(method):
            yield attr, method


def _documented():
    """(id, object): every public name, and each public method of a public
    class whose docstring has examples (a method two classes share: once)."""
    seen = set()
    for name in sorted(cbp.__all__):
        obj = getattr(cbp, name)
        yield name, obj
        if not inspect.isclass(obj):
            continue
        for attr, method in _methods(obj):
            function = getattr(inspect.unwrap(method), "__func__", inspect.unwrap(method))
            if function in seen or not _doctests(f"{name}.{attr}", method):
                continue
            seen.add(function)
            yield f"{name}.{attr}", method


DOCUMENTED = list(_documented())


def _imported_packages(test):
    """The top-level packages the examples of ``test`` import."""
    packages = set()
    for example in test.examples:
        try:
            tree = ast.parse(example.source)
        except SyntaxError:  # (doctest reports it when the example runs)
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                packages.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                packages.add(node.module.split(".")[0])
    return packages


def test_every_public_name_has_an_examples_section():
    missing = [name for name in cbp.__all__
               if not EXAMPLES_SECTION.search(inspect.getdoc(getattr(cbp, name)) or "")]
    assert not missing, (f"public names without a numpydoc Examples section (with a >>> "
                         f"example) in their docstring: {missing}")


@pytest.mark.parametrize("name, obj", DOCUMENTED, ids=[name for name, _ in DOCUMENTED])
def test_docstring_examples_run(name, obj):
    tests = _doctests(name, obj)
    if not tests:
        pytest.skip(f"{name} has no examples (test_every_public_name_has_an_examples_"
                    "section names it)")
    packages = set().union(*map(_imported_packages, tests))
    for package in sorted(packages - {"cbp"}):
        optional(package)
    if "matplotlib" in packages:
        import matplotlib

        matplotlib.use("Agg")  # (no window)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    failed = attempted = 0
    try:
        for test in tests:
            results = runner.run(test, out=report.write)
            failed += results.failed
            attempted += results.attempted
    finally:
        if "matplotlib.pyplot" in sys.modules:  # (a failed example's figures)
            sys.modules["matplotlib.pyplot"].close("all")
    assert failed == 0, (f"{failed} of {attempted} examples in {name}'s docstring "
                         f"failed:\n{report.getvalue()}")
