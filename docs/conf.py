"""Sphinx configuration of cbp's documentation site.

    pip install ".[docs]"
    sphinx-build -W -b html docs docs/_build/html

Builds the user guide, the API reference (from the numpydoc docstrings) and
the gallery (docs/examples/, executed at build time by sphinx-gallery).
"""

import os
import sys
from pathlib import Path

import cbp

project = "cbp"
author = "the cbp developers"
copyright = "2026, the cbp developers"
release = version = cbp.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    # the benchmarks' Markdown results, included in the Benchmarks page
    "myst_parser",
]

# the docs' own sources, not the checkout's cbp/ (which has no compiled kernel)
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))]

exclude_patterns = ["_build", "examples/*.py", "*.py"]
templates_path = ["_templates"]
nitpicky = True
# labels of scikit-learn's user guide, in the docstrings of the methods the
# estimators inherit from it (score); no intersphinx offline
nitpick_ignore = [("std:ref", "accuracy_score"), ("std:ref", "r2_score")]
# references to what this site does not document (other projects' types)
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|scipy|sklearn|pandas|torch|onnx|dask|ray)\..*"),
    (r"py:.*", r"(array-like|ndarray|sparse matrix|estimator|callable|optional|default.*"
               r"|of shape.*|int|float|bool|str|dict|list|tuple|None|object|path-like"
               r"|file-like|\{.*\}|'.*'|\".*\")"),
]

# the included results skip heading levels (### under the page's sections)
suppress_warnings = ["myst.header"]

autosummary_generate = True
# (no "inherited-members" here: a default that is not a string overrides the
# class template's own :inherited-members:)
autodoc_default_options = {"members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = f"cbp {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # the pages of wide result tables give the right-hand column to them
    "secondary_sidebar_items": {
        "**": ["page-toc", "sourcelink"],
        "benchmarks": [],
        "user_guide/tabular": [],
        "user_guide/ensembles": [],
        "user_guide/options": [],
        # the examples' code and printed tables are up to 95 columns wide (by
        # name: a second wildcard pattern beside "**" is a warning)
        **{f"auto_examples/{example.stem}": [] for example in
           Path(__file__).parent.glob("examples/plot_*.py")},
    },
}
# the pages of the widest tables give the left-hand column to them as well
html_sidebars = {"user_guide/tabular": [], "benchmarks": []}
# wide tables (the benchmark results) use the page's whole width
html_static_path = ["_static"]
html_css_files = ["cbp.css"]
