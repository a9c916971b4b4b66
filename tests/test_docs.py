"""The documentation site's inputs: docstrings of the public API, the gallery's demos, the citation
metadata; and (slow) the site itself, built as CI builds it (``make docs``)."""

import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import fem_ms

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "docs" / "_ext"))
import fem_ms_docs  # noqa: E402  (docs/_ext is not a package on the path)

PACKAGES = ["fem_ms", pytest.param("fem_ms_torch", marks=pytest.mark.torch)]


def _own_docstring(cls) -> str:
    """``cls``'s own docstring: not a base's, not the signature dataclasses write for a class without one."""
    doc = cls.__dict__.get("__doc__") or ""
    if dataclasses.is_dataclass(cls) and doc.startswith(f"{cls.__name__}("):
        return ""
    return doc.strip()


def undocumented(modname: str) -> list[str]:
    """The public names of module ``modname`` that the API reference would show without a docstring:
    the module itself, its classes and functions (:func:`fem_ms_docs.public_names`), and their
    public methods and properties, whose docstring may be that of the method they override."""
    module = importlib.import_module(modname)
    missing = [] if (module.__doc__ or "").strip() else [modname]
    for name in fem_ms_docs.public_names(module)[0]:
        obj = getattr(module, name)
        if inspect.isfunction(obj) and not (obj.__doc__ or "").strip():
            missing.append(f"{modname}.{name}")
        elif inspect.isclass(obj):
            if not _own_docstring(obj):
                missing.append(f"{modname}.{name}")
            for attr, value in vars(obj).items():
                if attr.startswith("_") or not (callable(value) or isinstance(value, (property, classmethod,
                                                                                        staticmethod))):
                    continue
                if inspect.isclass(value):
                    continue  # a nested class is checked where it is defined, if public
                if not inspect.getdoc(getattr(obj, attr)):
                    missing.append(f"{modname}.{name}.{attr}")
    return missing


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_has_a_docstring(package):
    missing = [name for modname in fem_ms_docs.public_modules(package) for name in undocumented(modname)]
    assert not missing, f"public names without a docstring: {missing}"


def test_the_docstring_check_finds_a_missing_docstring(tmp_path, monkeypatch):
    """The check above can fail: a module with an undocumented function, class and method."""
    (tmp_path / "undocumented_example.py").write_text(
        '"""A module."""\n__all__ = ["f", "C", "D"]\n\n\ndef f():\n    pass\n\n\nclass C:\n    def m(self):\n'
        '        pass\n\n\n@__import__("dataclasses").dataclass\nclass D:\n    x: int = 0\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert undocumented("undocumented_example") == ["undocumented_example.f", "undocumented_example.C",
                                                    "undocumented_example.C.m", "undocumented_example.D"]


@pytest.mark.parametrize("package", PACKAGES)
def test_api_pages_document_every_module_and_link_every_reexport(package):
    """One page per public module; a name that a module re-exports is linked to the page of the
    module that defines it (``api_page`` raises if no public module does)."""
    # fem_ms re-exports only its own names; fem_ms_torch may re-export fem_ms's
    tops = fem_ms_docs.PACKAGES[:fem_ms_docs.PACKAGES.index(package) + 1]
    modules = {name: importlib.import_module(name) for top in tops for name in fem_ms_docs.public_modules(top)}
    pages = {name: fem_ms_docs.api_page(name, modules) for name in modules if name.split(".")[0] == package}
    assert len(pages) > 10 and package in pages
    if package == "fem_ms":
        assert ".. autoclass:: fem_ms.problems.Diffusion" in pages["fem_ms.problems"]
        assert "- :py:obj:`Diffusion <fem_ms.problems.Diffusion>`" in pages["fem_ms"]
        assert sorted(fem_ms.__all__) == sorted(fem_ms_docs.public_names(fem_ms)[1])


def test_gallery_covers_every_demo_and_shows_a_figure_of_each():
    """Each demo is in the gallery's order; those the build does not run have a committed figure,
    and each has the titled top docstring sphinx-gallery makes its page from."""
    demos = sorted(p.stem for p in (REPO / "demos").glob("*.py"))
    assert sorted(fem_ms_docs.DEMOS) == demos
    assert set(fem_ms_docs.EXECUTED_DEMOS) <= set(demos)
    for stem in demos:
        source = (REPO / "demos" / f"{stem}.py").read_text()
        title, underline = inspect.cleandoc(source.split('"""')[1]).splitlines()[:2]
        assert source.startswith('"""') and title.strip(), stem
        assert set(underline) == {"="} and len(underline) >= len(title), f"demos/{stem}.py: no title underline"
        figure = fem_ms_docs.demo_figure(stem)
        if stem not in fem_ms_docs.EXECUTED_DEMOS:
            assert figure is not None and figure.stat().st_size > 10_000, f"no committed figure of demos/{stem}.py"


def test_citation_metadata():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["title"] == "fem-ms" and cff["version"] == fem_ms.__version__
    assert cff["license"] == "MIT" and "MIT License" in (REPO / "LICENSE").read_text()
    assert cff["authors"] and cff["message"]
    # the four papers of the methods fem-ms implements
    assert len(cff["references"]) == 4
    for ref in cff["references"]:
        assert ref["type"] and ref["title"] and ref["authors"] and ref["year"], ref


@pytest.mark.slow
@pytest.mark.torch  # the API reference imports fem_ms_torch
def test_the_site_builds_without_warnings(tmp_path):
    """The site as ``make docs`` builds it: warnings are errors, every reference resolves."""
    out = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
                          "-d", str(tmp_path / "doctrees"), str(REPO / "docs"), str(tmp_path / "html")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-5000:]
    html = tmp_path / "html"
    for page in ("index", "cli_reference", "api/generated/fem_ms.gmsfem.providers", "gallery/fine_solve",
                 "gallery/learned_basis"):
        assert (html / f"{page}.html").is_file(), page
    assert "--n-basis" in (html / "cli_reference.html").read_text()
    assert "SpectralBasisProvider" in (html / "api/generated/fem_ms.gmsfem.providers.html").read_text()
    # a run demo's figure, and the committed one of a demo the build does not run
    assert list((html / "_images").glob("sphx_glr_fine_solve_*.png"))
    assert (html / "_images" / "learned_basis.png").is_file()
    assert "_images/learned_basis.png" in (html / "gallery" / "learned_basis.html").read_text()
