"""Sphinx configuration of the fem-ms documentation site (`make docs` builds it).

The Markdown pages of docs/ (myst-parser), an API reference of fem_ms and fem_ms_torch (autodoc
with numpydoc; pages written by docs/_ext/fem_ms_docs.py), the demos as a gallery
(sphinx-gallery) and the ``fem-ms`` command reference (sphinx-argparse). Built with warnings as
errors and nitpicky references.
"""

import sys
from pathlib import Path

# PETSc reads sys.argv when it is initialised, on the first Firedrake import (autodoc, the gallery):
# sphinx-build's options are not PETSc's.
import petsc4py

petsc4py.init(["sphinx-build"])

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
# the checkout's code, as scripts/env puts it on PYTHONPATH, also when sphinx-build runs elsewhere
for path in (REPO / "plugins", REPO, DOCS / "_ext"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import fem_ms_docs  # noqa: E402

import fem_ms  # noqa: E402

project = "fem-ms"
author = "the fem-ms developers"
copyright = f"2026, {author}"
release = version = fem_ms.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
    "fem_ms_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "demo_figures"]
templates_path = []

# -- warnings as errors: every reference must resolve -----------------------------------------------
nitpicky = True
# Types of the libraries fem-ms builds on: the site has no inventories of theirs (the build runs
# offline), so references to them are left as text instead of links.
_EXTERNAL = (r"(firedrake|ufl|finat|pyop2|petsc4py|slepc4py|PETSc|SLEPc|mpi4py|MPI|numpy|np|scipy|h5py|meshio|"
             r"torch|nn|torch_geometric|gpytorch|linear_operator|neuralop|ptwt|pywt|matplotlib|tqdm|argparse|"
             r"pathlib|collections|concurrent|logging|os|typing|enum|dataclasses|tomllib|abc|io|numbers|types|"
             r"contextlib|functools|multiprocessing|importlib|inspect)")
nitpick_ignore_regex = [
    (r"py:.*", _EXTERNAL + r"(\..*)?"),
    # private classes are not documented, but show as the bases of public ones
    (r"py:class", r".*\._[A-Za-z]\w*"),
]

# -- Markdown ----------------------------------------------------------------------------------------
myst_heading_anchors = 3

# -- API reference -----------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
# An override without a docstring of its own is documented by the method it overrides (on the
# base class's page); repeating that docstring under every subclass would only add noise.
autodoc_inherit_docstrings = False
autosummary_generate = False  # the module pages are fem_ms_docs's; autosummary only lists modules
numpydoc_show_class_members = False  # autodoc lists the members; numpydoc's tables would repeat them
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# GL08: a public name without a docstring; GL06/GL07: unknown or misordered numpydoc sections;
# PR02: a documented parameter the signature does not have.
numpydoc_validation_checks = {"GL06", "GL07", "GL08", "PR02"}
numpydoc_validation_exclude = {
    r"\.__init__$",  # the class docstring documents construction
}

# -- CLI reference: docs/cli_reference.rst has sphinx-argparse import fem_ms_docs.cli_parser ---------

# -- gallery -----------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(REPO / "demos"),
    "gallery_dirs": fem_ms_docs.GALLERY,
    "filename_pattern": "/(" + "|".join(fem_ms_docs.EXECUTED_DEMOS) + r")\.py$",
    "within_subsection_order": "fem_ms_docs.DemoOrder",
    "reset_argv": "fem_ms_docs.gallery_argv",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    # its page loads scripts from CDNs; the site is meant to work offline
    "write_computation_times": False,
    "capture_repr": (),
    "only_warn_on_example_error": False,
    "abort_on_example_error": True,
}

# -- HTML --------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"fem-ms {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
# option names (--n-basis) and quoted values stay as typed, not en dashes and curly quotes
smartquotes = False
