"""Check the built site's internal links: every page, image, script and
stylesheet a page refers to exists, and so does every ``#fragment`` in the
page it points into.

    python docs/check_links.py docs/_build/html

Exits 1 and lists each broken link (page, target) if any is broken. External
links (http, https, mailto) are listed by count, not followed: the machines
that build the site have no network. Sphinx's own ``linkcheck`` builder does
not follow a raw ``href`` between pages or check their fragments, which is
what this checks.
"""

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    """The ids a page defines and the links it makes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("id", "name"):
            if attrs.get(name):
                self.ids.add(attrs[name])
        for name in ("href", "src"):
            if attrs.get(name) and not (tag == "link" and attrs.get("rel") == "preconnect"):
                self.links.append(attrs[name])


def _parse(path, cache):
    if path not in cache:
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = page
    return cache[path]


def broken_links(root):
    """(page, link) for every internal link of the site's pages under
    ``root`` (the theme's templates in ``_static`` aside) whose target file
    or fragment does not exist; the number of pages; the number of external
    links."""
    root = Path(root).resolve()
    cache, broken, external = {}, [], 0
    pages = [path for path in sorted(root.rglob("*.html"))
             if path.relative_to(root).parts[0] not in ("_static", "_sources")]
    for page_path in pages:
        for link in _parse(page_path, cache).links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                external += parts.scheme in ("http", "https", "mailto") or link.startswith("//")
                continue
            target = (page_path.parent / unquote(parts.path)).resolve() if parts.path \
                else page_path
            if target.is_dir():
                target = target / "index.html"
            found = target.is_file() and root in (target, *target.parents) and not (
                parts.fragment and target.suffix == ".html"
                and unquote(parts.fragment) not in _parse(target, cache).ids)
            if not found:
                broken.append((page_path.relative_to(root), link))
    return broken, len(pages), external


def main(argv):
    if len(argv) != 2:
        sys.exit(f"usage: python {argv[0]} BUILT_HTML_FOLDER")
    root = Path(argv[1])
    if not (root / "index.html").is_file():
        sys.exit(f"{root} holds no index.html: build the site first")
    broken, pages, external = broken_links(root)
    for page, link in broken:
        print(f"{page}: broken link {link}")
    print(f"{pages} pages: {len(broken)} broken internal links; "
          f"{external} external links (not followed offline)")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
