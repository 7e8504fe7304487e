"""Sphinx configuration for skabi's documentation (``pip install -e ".[doc]"``, then
``sphinx-build doc doc/_build``)."""

project = "skabi"
author = "skabi developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "numpydoc"]
autosummary_generate = True
numpydoc_show_class_members = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
