"""The parts of the documentation site that are code: API pages, the CLI parser, the gallery's hooks.

A Sphinx extension (docs/conf.py loads it) and a module that sphinx-gallery and sphinx-argparse
import by name (their settings take "module.function" strings, which Sphinx can pickle).

- :func:`write_api_pages` writes one page per public module of fem_ms and fem_ms_torch under
  docs/api/generated/: the module's docstring, then one autodoc directive per public name (its
  ``__all__``, or the classes and functions it defines when it has none). A directive per name,
  unlike ``automodule :members:``, documents a name that lacks a docstring too, so numpydoc's
  validation (GL08) fails the build on it. Names that a module imports and re-exports are linked
  to the one page that documents them.
- :func:`cli_parser` is the ``fem-ms`` parser for sphinx-argparse.
- :func:`gallery_argv` and :class:`DemoOrder` configure sphinx-gallery over demos/*.py;
  :func:`add_demo_figures` shows the committed figure of each demo the build does not run.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent
PACKAGES = ("fem_ms", "fem_ms_torch")
API_DIR = DOCS / "api" / "generated"

# The demos in the order the README tells their story; the gallery follows it.
DEMOS = ("fine_solve", "gmsfem_basics", "learned_basis", "mlmc_training", "gpo_surrogate")
# Demos that run in seconds: the gallery runs them and shows the figure they draw. The others train
# networks for minutes; the gallery shows their code and the figure they wrote when last run
# (docs/demo_figures/, refreshed by `make docs-figures`).
EXECUTED_DEMOS = ("fine_solve", "gmsfem_basics")
DEMO_FIGURES = DOCS / "demo_figures"
GALLERY = "gallery"


# ---------------------------------------------------------------------------------------------------
# API pages

def public_modules(package: str) -> list[str]:
    """``package`` and its modules and subpackages, none of whose name parts starts with ``_``."""
    top = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(top.__path__, package + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _bound_here(module) -> list[str]:
    """Names that the top level of ``module``'s source binds other than by import, in source order."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):  # no source (an empty package): it defines nothing
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        names.append(leaf.id)
    return list(dict.fromkeys(names))


def public_names(module) -> tuple[list[str], list[str]]:
    """(names ``module`` defines and documents, names it re-exports from another module).

    With ``__all__``: its names, split by whether the module's own source binds them. Without:
    the public classes and functions whose ``__module__`` is this module (constants and loggers
    of such modules are implementation details).
    """
    exported = getattr(module, "__all__", None)
    if exported is None:
        own = [name for name in _bound_here(module) if not name.startswith("_")
               and (inspect.isclass(obj := getattr(module, name, None)) or inspect.isfunction(obj))
               and obj.__module__ == module.__name__]
        return own, []
    here = set(_bound_here(module))
    return [n for n in exported if n in here], [n for n in exported if n not in here]


def _directive(obj) -> str:
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "autofunction"
    return "autodata"


def _where_defined(name: str, obj, modules: dict[str, object]) -> str | None:
    """The full name under which the API pages document ``obj`` (re-exported as ``name``)."""
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    for modname, module in modules.items():
        if name in public_names(module)[0] and getattr(module, name, None) is obj:
            return f"{modname}.{name}"
    return None


def api_page(modname: str, modules: dict[str, object]) -> str:
    """The reStructuredText of the API page of the module ``modname``."""
    module = modules[modname]
    own, reexported = public_names(module)
    lines = [f"``{modname}``", "=" * (len(modname) + 4), "", f".. automodule:: {modname}", ""]
    for name in own:
        lines += [f".. {_directive(getattr(module, name))}:: {modname}.{name}"]
        if inspect.isclass(getattr(module, name)):
            lines += ["   :members:", "   :show-inheritance:"]
        lines.append("")
    links = []
    for name in reexported:
        target = _where_defined(name, getattr(module, name), modules)
        if target is None:
            raise RuntimeError(f"{modname}.__all__ names {name!r}, which no public module of "
                               f"{', '.join(PACKAGES)} defines")
        links.append(f"- :py:obj:`{name} <{target}>`")
    if links:
        lines += [".. rubric:: Also importable from here", "", *links, ""]
    # named relative to the package, the current module after automodule (autosummary's rule)
    submodules = [m.rpartition(".")[2] for m in modules if m.rpartition(".")[0] == modname]
    if submodules:
        lines += [".. rubric:: Modules", "", ".. autosummary::", "", *(f"   {m}" for m in submodules), ""]
    return "\n".join(lines)


def write_api_pages(app=None) -> list[Path]:
    """Write the API pages (unchanged files are left alone, so that Sphinx rereads only the pages
    whose module changed) and delete those of modules that no longer exist."""
    modules = {name: importlib.import_module(name) for package in PACKAGES for name in public_modules(package)}
    API_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for modname in modules:
        path = API_DIR / f"{modname}.rst"
        text = api_page(modname, modules)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    for stale in set(API_DIR.glob("*.rst")) - set(written):
        stale.unlink()
    return written


def _import_object(fullname: str):
    """The object documented as ``fullname`` (module, then attributes), or None."""
    parts = fullname.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        return obj
    return None


def _attributes_section(cls) -> set[str]:
    """The names in the numpydoc ``Attributes`` section of class ``cls``'s docstring."""
    from numpydoc.docscrape import NumpyDocString

    doc = NumpyDocString(inspect.getdoc(cls) or "")
    return {name.strip() for entry in doc["Attributes"] for name in entry.name.split(",")}


def _find(domain, target: str, types: set[str], module: str, cls: str) -> str | None:
    """The documented full name that ``target`` denotes as a suffix, searched from the current
    class outwards (class, module, each enclosing package, anywhere): the first scope with exactly
    one match; None when none matches or several match at the same distance."""
    suffix = "." + target
    found = sorted(name for name, entry in domain.objects.items()
                   if entry.objtype in types and not entry.aliased and (name == target or name.endswith(suffix)))
    parts = module.split(".") if module else []
    scopes = ([f"{module}.{cls}"] if cls else []) + [".".join(parts[:n]) for n in range(len(parts), 0, -1)] + [""]
    for scope in scopes:
        near = [name for name in found if not scope or name.startswith(scope + ".")]
        if len(near) == 1:
            return near[0]
        if len(near) > 1:
            return None
    return None


def resolve_short_reference(app, env, node, contnode):
    """Resolve a Python reference that Sphinx's exact lookup missed (``missing-reference``).

    The docstrings name objects as a reader of the source sees them: ``:class:`MultiscaleSpace```
    in the docstring of the package that re-exports it, ``:meth:`LoGoSGPO.optimal_variational```
    from another module, ``:mod:`.registry```. Such a name is looked up as a suffix of the
    documented full names, nearest first (:func:`_find`). An attribute that a class describes in
    the ``Attributes`` section of its docstring (a dataclass field, an instance attribute) has no
    entry of its own: a reference to it links to that class. Anything else, a name that matches
    nothing or several objects at the same distance, stays a warning (an error in ``make docs``).
    """
    from sphinx.util.nodes import make_refnode

    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"].lstrip(".~")
    module, cls = node.get("py:module") or "", node.get("py:class") or ""
    name = _find(domain, target, set(domain.objtypes_for_role(node["reftype"]) or ()), module, cls)
    if name is None and node["reftype"] == "attr":
        owner, _, attr = target.rpartition(".")
        owner = _find(domain, owner or cls, {"class", "exception"}, module, cls) if (owner or cls) else None
        if owner is not None and attr in _attributes_section(_import_object(owner)):
            name = owner
    if name is None:
        return None
    entry = domain.objects[name]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def dataclass_factory_defaults(app, what, name, obj, options, signature, return_annotation):
    """Show a dataclass field's ``default_factory`` as a call (``dict()``) in its class's signature
    (``autodoc-process-signature``).

    ``inspect.signature`` shows such defaults as ``<factory>``, which is not Python: Sphinx then
    cannot parse the signature and splits it at every comma, ``tuple[str, ...]`` included.
    """
    if what != "class" or not signature or "<factory>" not in signature or not dataclasses.is_dataclass(obj):
        return None
    for f in dataclasses.fields(obj):
        if f.init and f.default_factory is not dataclasses.MISSING:
            factory = getattr(f.default_factory, "__qualname__", "")
            shown = f"{factory}()" if factory.isidentifier() else "..."
            signature = signature.replace("<factory>", shown, 1)
    return signature, return_annotation


# ---------------------------------------------------------------------------------------------------
# CLI reference

def cli_parser():
    """The ``fem-ms`` argument parser with every command, the plugins' included."""
    from fem_ms.cli import build_parser

    parser, _broken = build_parser()
    return parser


# ---------------------------------------------------------------------------------------------------
# Gallery

_demo_output: tempfile.TemporaryDirectory | None = None


def gallery_argv(gallery_conf, script_vars) -> list[str]:
    """The command line of a demo the gallery runs: its defaults, with its files written to a
    scratch directory instead of demos/output.

    sphinx-gallery runs a demo without ``__file__`` and with an empty ``__doc__`` (it wants
    examples that also work as notebooks, and shows the docstring as text); our demos are scripts
    that locate demos/output from the one and describe their command line with the other, so both
    are set here, in the globals the demo runs in, as ``python demos/NAME.py`` would set them.
    """
    global _demo_output
    if _demo_output is None:
        _demo_output = tempfile.TemporaryDirectory(prefix="fem-ms-gallery-")
    source = Path(script_vars["src_file"])
    script_vars["example_globals"]["__file__"] = str(source)
    script_vars["example_globals"]["__doc__"] = ast.get_docstring(ast.parse(source.read_text()), clean=False)
    return ["--out-dir", _demo_output.name]


def _cleanup(app, exception) -> None:
    global _demo_output
    if _demo_output is not None:
        _demo_output.cleanup()
        _demo_output = None


class DemoOrder:
    """sphinx-gallery's ``within_subsection_order``: the order of :data:`DEMOS`."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename) -> int:
        """The rank of ``filename`` (a demo not in :data:`DEMOS` goes last)."""
        stem = Path(filename).stem
        return DEMOS.index(stem) if stem in DEMOS else len(DEMOS)

    def __repr__(self) -> str:  # sphinx-gallery hashes its config by repr
        return f"<{type(self).__name__}>"


def demo_figure(stem: str) -> Path | None:
    """The committed figure of a demo the gallery does not run, if there is one."""
    paths = sorted(DEMO_FIGURES.glob(f"{stem}*.png"))
    return paths[0] if paths else None


def add_demo_figures(app, docname: str, source: list[str]) -> None:
    """Put the committed figure of a demo that is not run above its code (``source-read``).

    sphinx-gallery writes the page of a demo as the docstring's text, then the code; the figure
    goes between them, where a run demo's figure follows its code.
    """
    gallery, _, stem = docname.partition("/")
    if gallery != GALLERY or stem not in DEMOS or stem in EXECUTED_DEMOS:
        return
    figure = demo_figure(stem)
    if figure is None:
        raise FileNotFoundError(f"no figure of demos/{stem}.py in {DEMO_FIGURES} (make docs-figures writes them)")
    text = source[0]
    # the docstring's text, then this marker and the code
    code = text.find(".. GENERATED FROM PYTHON SOURCE LINES")
    if code < 0:
        raise RuntimeError(f"sphinx-gallery's page of demos/{stem}.py no longer has the layout this hook expects")
    block = (f".. figure:: /{figure.relative_to(DOCS).as_posix()}\n"
             f"   :alt: the figure demos/{stem}.py writes\n\n"
             f"   The figure ``demos/{stem}.py`` writes with its defaults (not run when the site is built: "
             f"it trains for minutes).\n\n")
    source[0] = text[:code] + block + text[code:]


def setup(app):
    app.connect("builder-inited", write_api_pages)
    app.connect("source-read", add_demo_figures)
    app.connect("missing-reference", resolve_short_reference)
    app.connect("autodoc-process-signature", dataclass_factory_defaults)
    app.connect("build-finished", _cleanup)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
