"""Sphinx configuration for skabi's documentation.

Build it with ``pip install -e ".[doc]"`` and then
``sphinx-build -W -n -b html doc doc/_build/html``, which runs every gallery example with
its full training budget, two at a time (``SKABI_DOCS_JOBS`` sets how many; CI builds it
so). ``SKABI_DOCS_FAST=1`` trains them for seconds instead, for a quick local check: the
example pages then say that their results are not converged.
"""

import os
import re
import sys
import warnings

import skabi

project = "skabi"
author = "skabi developers"
copyright = "skabi developers"  # noqa: A001 (the name Sphinx reads)
version = release = skabi.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",   # the source of every module, linked from the API reference
    "numpydoc",
    "myst_parser",           # benchmarks/README.md, included in benchmarks.rst
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
root_doc = "index"
default_role = "literal"

# -- API reference ---------------------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"          # types are in the numpydoc sections
numpydoc_show_class_members = False  # the class template lists the methods
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- Nitpicky references ---------------------------------------------------------------
# No intersphinx (the build runs without network), so references to other projects
# cannot resolve. Ignore exactly those; every reference to skabi itself must resolve.
nitpicky = True
_EXTERNAL = ("numpy", "torch", "xarray", "arviz", "sklearn", "scipy", "pandas", "matplotlib",
             "dask", "zarr")
nitpick_ignore_regex = [(r"py:.*", r"(%s)\..+" % "|".join(_EXTERNAL))]

# -- Gallery ---------------------------------------------------------------------------
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, os.path.abspath("sphinxext"))
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py$",        # run every script, render its figures
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "gallery_order.ExampleOrder",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "abort_on_example_error": True,
    "min_reported_time": 1,
    # the examples' progress bars (verbose=True) stay on the terminal, not on the pages
    "reset_modules": ("matplotlib", "gallery_quiet.quiet_progress"),
    # two examples at a time (each on one thread): the converged gallery in half the time
    "parallel": int(os.environ.get("SKABI_DOCS_JOBS", "2")),
}
warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")
warnings.filterwarnings("ignore", message="ArviZ is undergoing", category=FutureWarning)

# -- HTML ------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skabi {version}"
html_static_path = ["_static"]
html_css_files = ["skabi.css"]   # wide tables wrap instead of being clipped
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_show_sourcelink = False
html_context = {"default_mode": "light"}


# -- Members that are not skabi's API --------------------------------------------------
# Methods inherited from torch.nn.Module, from builtin types (Batch is a dict) and
# scikit-learn's metadata-routing setters are documented by their own projects.
_SKLEARN_ROUTING = re.compile(r"^(set_\w+_request|get_metadata_routing|set_output)$")


def _defined_in(obj):
    owner = getattr(obj, "__objclass__", None)
    module = getattr(obj, "__module__", None) or getattr(owner, "__module__", None)
    if module is None and isinstance(obj, property):
        module = getattr(obj.fget, "__module__", None)
    return module or ""


def skip_foreign_members(app, what, name, obj, skip, options):
    module = _defined_in(obj)
    builtin = type(obj).__name__ in ("builtin_function_or_method", "method_descriptor",
                                     "wrapper_descriptor", "classmethod_descriptor")
    if builtin or module.startswith(("torch", "builtins")) or _SKLEARN_ROUTING.match(name):
        return True
    return None


# scikit-learn's docstrings (get_params, set_params, score) use roles that point into
# scikit-learn's own site; without intersphinx they render as literal text.
_ROLE = re.compile(r":(?:ref|term|func|class|meth|attr|mod|obj):`(?:[^`<]*<)?~?([^`>]+)>?`")


def plain_foreign_roles(app, what, name, obj, options, lines):
    if _defined_in(obj).startswith("sklearn"):
        lines[:] = [_ROLE.sub(r"``\1``", line) for line in lines]


# A build with SKABI_DOCS_FAST=1 (a quick local check) trains the gallery's examples for
# seconds: say so at the top of each example page, whose text describes converged runs.
FAST = os.environ.get("SKABI_DOCS_FAST") == "1"
_TITLE = re.compile(r"^[^\n]+\n=+\n", re.MULTILINE)
_FAST_NOTICE = """
.. warning::

   This copy of the page was built with ``SKABI_DOCS_FAST=1``: the example trained for
   a few seconds only, so its figures and printed numbers are not converged and may
   contradict the text. A build without ``SKABI_DOCS_FAST`` (what CI runs) shows the
   converged results.

"""


def fast_build_notice(app, docname, source):
    if not FAST or not docname.startswith("auto_examples/") or docname.endswith("index"):
        return
    title = _TITLE.search(source[0])
    if title is not None:
        source[0] = source[0][:title.end()] + _FAST_NOTICE + source[0][title.end():]


def setup(app):
    app.connect("source-read", fast_build_notice)
    app.connect("autodoc-skip-member", skip_foreign_members)
    app.connect("autodoc-process-docstring", plain_foreign_roles, priority=400)
