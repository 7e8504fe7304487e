"""Check the internal links of a built HTML documentation: every local ``href``/``src``
names a file that exists and, with a ``#fragment``, an element with that ``id`` (or
``name``) in it.

``sphinx-build -W -n`` catches references that do not resolve, but not a link that
resolves to an anchor no page defines (a module anchor in the API page, a label moved).

Usage: ``python .ci/check_links.py doc/_build/html``. Prints the number of links checked
and every broken one; exits 1 if there is any.
"""

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


#: Folders of the build that hold no pages: theme templates (``_static`` has the theme's
#: unrendered ``webpack-macros.html``), sources and images.
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads"}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None and not (tag == "link" and key == "href"
                                                   and "canonical" in (attrs.get("rel") or "")):
                self.links.append((tag, attrs[key]))


def _parse(path, cache):
    if path not in cache:
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = page
    return cache[path]


def check(root):
    """``(n_checked, broken)``: broken is a list of ``"page: link (why)"``."""
    root = Path(root).resolve()
    cache, broken, checked = {}, [], 0
    for page_path in sorted(root.rglob("*.html")):
        if page_path.relative_to(root).parts[0] in SKIP_DIRS:
            continue
        page = _parse(page_path, cache)
        for tag, link in page.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//") or not link.strip():
                continue   # external (http, mailto, data, javascript): not ours to check
            checked += 1
            where = f"{page_path.relative_to(root)}: {link}"
            target = page_path if not parts.path else (
                page_path.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{where} (no file {target.relative_to(root) if target.is_relative_to(root) else target})")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in _parse(target, cache).ids:
                broken.append(f"{where} (no id {fragment!r} in {target.relative_to(root)})")
    return checked, broken


def main(argv):
    root = argv[1] if len(argv) > 1 else "doc/_build/html"
    if not Path(root, "index.html").is_file():
        print(f"{root}: no built documentation (index.html) to check", file=sys.stderr)
        return 2
    checked, broken = check(root)
    for line in broken:
        print(f"broken link: {line}")
    print(f"{checked} internal links checked, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
