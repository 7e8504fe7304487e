"""Every public name has a page in the API reference (``doc/api.rst``).

Reads the reStructuredText sources only, so it runs without Sphinx: a name added to an
``__all__`` without an entry in an ``autosummary`` list fails here, not at the next
documentation build.
"""

import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "doc"

#: Packages whose ``__all__`` is the public API, and the names that need no page.
PUBLIC_MODULES = ["skabi", "skabi.adapters", "skabi.networks", "skabi.diagnostics",
                  "skabi.diagnostics.plots", "skabi.storage", "skabi.bank",
                  "skabi.model_selection", "skabi.model_comparison", "skabi.exceptions"]
NO_PAGE = {("skabi", "__version__")}   # a string, described in prose on the API page

_MODULE = re.compile(r"^\.\.\s+(?:py:)?(?:current)?module::\s*(\S+)\s*$")
_AUTOSUMMARY = re.compile(r"^(\s*)\.\.\s+autosummary::")


def documented_names(paths):
    """Fully qualified names listed in ``autosummary`` directives of ``paths``."""
    names = set()
    for path in paths:
        module, block_indent = None, None
        for line in path.read_text(encoding="utf-8").splitlines():
            if (match := _MODULE.match(line)):
                module, block_indent = match.group(1), None
                continue
            if (match := _AUTOSUMMARY.match(line)):
                block_indent = len(match.group(1))
                continue
            if block_indent is None or not line.strip():
                continue
            indent = len(line) - len(line.lstrip())
            if indent <= block_indent:
                block_indent = None
            elif not line.lstrip().startswith(":"):
                entry = line.strip().lstrip("~")
                names.add(entry if module is None or entry.startswith("skabi.")
                          else f"{module}.{entry}")
    return names


def resolve(name):
    """The object a dotted name refers to (a module, or an attribute of one)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


API_FILES = sorted(DOC.glob("*.rst"))
DOCUMENTED = documented_names(API_FILES)


def test_parser_reads_the_api_page():
    assert "skabi.AmortizedPosterior" in DOCUMENTED
    assert "skabi.adapters.AsSet" in DOCUMENTED


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_an_api_page(module_name):
    module = importlib.import_module(module_name)
    # a name re-exported from another public package may be documented there once
    documented_objects = set()
    for name in DOCUMENTED:
        try:
            documented_objects.add(id(resolve(name)))
        except (ImportError, AttributeError):
            pass   # reported by test_every_api_entry_exists
    missing = [name for name in module.__all__
               if (module_name, name) not in NO_PAGE
               and f"{module_name}.{name}" not in DOCUMENTED
               and id(getattr(module, name)) not in documented_objects]
    assert not missing, (f"public names of {module_name} without an entry in an autosummary "
                         f"list of doc/*.rst: {missing}")


def test_every_api_entry_exists():
    unknown = []
    for name in sorted(DOCUMENTED):
        try:
            resolve(name)
        except (ImportError, AttributeError):
            unknown.append(name)
    assert not unknown, f"doc/*.rst lists names that skabi does not have: {unknown}"


def test_dir_lists_public_names_only():
    import skabi

    names = dir(skabi)
    assert "importlib" not in names and "_import_module" not in names
    assert [n for n in names if n.startswith("_") and n not in ("__version__", "__all__")] == []
    assert set(skabi.__all__) <= set(names)


def test_arviz_converters_are_public():
    import skabi
    from skabi import _arviz

    assert skabi.to_arviz is _arviz.to_arviz and skabi.from_arviz is _arviz.from_arviz
