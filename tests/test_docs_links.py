"""The documentation's links: docs/check_links.py finds a built page's broken
internal links (CI runs it on the built site), and every relative link of the
README, the repository's front page, names a file of the repository."""

import re
from pathlib import Path

import pytest

from docs_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    return load_script(ROOT / "docs" / "check_links.py")


def _site(tmp_path, pages):
    for name, html in pages.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"<html><body>{html}</body></html>")
    return tmp_path


GOOD = {
    "index.html": '<a href="guide/page.html#usage">x</a><img src="_images/a.png">'
                  '<a href="https://example.org/">external</a><a href="#top" id="top">t</a>',
    "guide/page.html": '<h2 id="usage">Usage</h2><a href="../index.html">back</a>'
                       '<a href="./">folder</a>',
    "guide/index.html": "",
    "_images/a.png": "",
    "_static/template.html": '<a href="{{ pathto(1) }}">theme template, skipped</a>',
}


def test_a_site_whose_links_all_resolve_has_none_broken(tmp_path):
    broken, pages, external = _checker().broken_links(_site(tmp_path, GOOD))
    assert broken == []
    assert (pages, external) == (3, 1)


@pytest.mark.parametrize("link", ["guide/missing.html", "guide/page.html#nowhere",
                                  "_images/missing.png", "#nowhere", "../outside.html"])
def test_a_missing_page_image_or_fragment_is_reported(tmp_path, link):
    site = _site(tmp_path / "html", {**GOOD, "index.html": f'<a href="{link}">x</a>'})
    broken, _, _ = _checker().broken_links(site)
    assert broken == [(Path("index.html"), link)]


def test_the_command_line_exits_1_naming_the_broken_link(tmp_path, capsys):
    site = _site(tmp_path, {**GOOD, "index.html": '<a href="gone.html">x</a>'})
    assert _checker().main(["check_links.py", str(site)]) == 1
    assert "index.html: broken link gone.html" in capsys.readouterr().out


def test_every_relative_link_of_the_readme_names_a_file_of_the_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    relative = [t for t in targets if not re.match(r"[a-z]+:|#", t)]
    assert relative, "the README links into the documentation's sources"
    missing = [t for t in relative if not (ROOT / t).exists()]
    assert missing == []
