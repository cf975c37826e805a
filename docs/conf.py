"""Sphinx configuration of the pertspectra documentation (cookiecutter-scverse style).

Build with ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``).
Before the pages are read, the build runs ``docs/tutorial.py``, which executes the tutorial on
the shared real screens and writes Markdown, figures and the HTML reports into
``docs/_generated/`` (git-ignored), and writes each command's ``--help`` there. Environment:

- ``PERTSPECTRA_SHARED_DATA``: the shared data folder (default ``../shared/data``);
- ``PERTSPECTRA_DOCS_TUTORIAL=0``: do not execute the tutorial (the page says so);
- ``PERTSPECTRA_DOCS_RUNS``: where the tutorial keeps its results folders (default
  ``docs/_generated/runs``; a rerun skips the stages whose inputs and settings are unchanged).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from importlib.metadata import metadata
from pathlib import Path

HERE = Path(__file__).parent
GENERATED = HERE / "_generated"

# -- Project ----------------------------------------------------------------------------------

info = metadata("pertspectra")
project = info["Name"]
author = "the pertspectra developers"
copyright = f"{datetime.now():%Y}, {author}"
version = info["Version"]
release = version

# -- General ----------------------------------------------------------------------------------

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinxcontrib.bibtex",
    "sphinx_autodoc_typehints",  # after napoleon, as the extension asks
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "_generated"]  # included, not pages
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
master_doc = "index"
default_role = "literal"
pygments_style = "default"

# autodoc / autosummary (pages under api/generated, from the numpy docstrings)
autosummary_generate = True
autosummary_imported_members = False
autodoc_member_order = "groupwise"
autoclass_content = "class"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_include_init_with_doc = False
napoleon_use_rtype = True
napoleon_use_param = True
typehints_defaults = "braces"
typehints_document_rtype = True
always_document_param_types = False

# Markdown
myst_enable_extensions = ["amsmath", "colon_fence", "deflist", "dollarmath", "html_image"]
myst_heading_anchors = 6
myst_url_schemes = ("http", "https", "mailto")

# bibliography
bibtex_bibfiles = ["references.bib"]
bibtex_reference_style = "author_year"
bibtex_default_style = "alpha"

# Cross-references. Offline machines: no intersphinx (its inventories would be fetched from the
# web). Without intersphinx, every reference to numpy, pandas, anndata, torch or matplotlib in a
# signature is unresolvable, so nitpicky mode stays off: a broken reference to one of our own
# objects renders as plain code, it does not fail the build.
nitpicky = False
# One documented class of warnings is suppressed: sphinx_autodoc_typehints.forward_reference,
# an annotation that names a type imported only under TYPE_CHECKING cannot be evaluated when
# documenting (today: ``DeviceLike = Union[str, "torch.device", None]`` in
# src/pertspectra/_types.py, in the signatures of train.fit, train.fit_conditions and
# train.forecast); such a type is shown as written in the signature.
suppress_warnings = ["sphinx_autodoc_typehints.forward_reference"]

# -- HTML -------------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"pertspectra {version}"
html_static_path: list[str] = []
html_show_sphinx = False


#: The public namespaces documented under api/ (the test tests/test_docs.py checks the pages).
API_MODULES = (
    "design", "io", "stats", "priors", "model", "train", "predict", "evaluate", "enrich",
    "similarity", "get", "pl", "report", "datasets", "testing",
)  # fmt: skip


def _docstring_attributes() -> dict[str, list[str]]:
    """Per public class, the attributes its numpy docstring lists under ``Attributes``.

    napoleon documents those (with an index entry); the class template documents only the
    *other* attributes (properties, undocumented fields), so none is described twice.
    """
    import importlib
    import inspect

    out: dict[str, list[str]] = {}
    for short in API_MODULES:
        module = importlib.import_module(f"pertspectra.{short}")
        for name in getattr(module, "__all__", dir(module)):
            obj = getattr(module, name, None)
            if not inspect.isclass(obj) or not obj.__doc__:
                continue
            lines = inspect.cleandoc(obj.__doc__).splitlines()
            names: list[str] = []
            inside = False
            for i, line in enumerate(lines):
                header = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
                if header:
                    inside = line.strip() == "Attributes"
                    continue
                if inside and line and not line[0].isspace() and set(line) != {"-"}:
                    names += [n.strip() for n in line.split(":")[0].split(",")]
            out[f"pertspectra.{short}.{name}"] = names
    return out


autosummary_context = {"docstring_attributes": _docstring_attributes()}


def _data_docstring(
    app: object, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """A re-exported constant's doc comment, read from the module that defines it.

    autodoc looks for a constant's ``#:`` comment (or the string after it) in the module it is
    documented under; our constants are defined in private modules and re-exported by their
    stage's ``__init__``, so autodoc would fall back to the docstring of the value's *type*
    (``dict``, ``str``, ...). This finds the comment in the stage's own modules instead, and
    leaves the entry empty rather than show the type's docstring.
    """
    if what != "data" or not name.startswith("pertspectra."):
        return
    import importlib
    import inspect
    import pkgutil

    from sphinx.pycode import ModuleAnalyzer

    modname, attr = name.rsplit(".", 1)
    package = importlib.import_module(modname)
    candidates = [modname]
    if hasattr(package, "__path__"):
        candidates += [f"{modname}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    for candidate in candidates:
        try:
            module = importlib.import_module(candidate)
            docs = ModuleAnalyzer.for_module(candidate).find_attr_docs()
        except Exception:  # a module that cannot be analysed has no comment
            continue
        if ("", attr) in docs and getattr(module, attr, None) is obj:
            lines[:] = [*docs[("", attr)]]
            return
    type_doc = inspect.getdoc(type(obj)) or ""
    if lines and type_doc and lines[0].strip() == type_doc.splitlines()[0].strip():
        lines[:] = []


def _prose_returns(
    app: object, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """Render a ``Returns`` section written as prose (the house style) as one paragraph.

    napoleon reads every unindented line of a numpy ``Returns`` section as a separate
    ``type`` entry (and splits at a colon), which mangles a section written as sentences
    (``The FittedModel. With store, also writes ...``). A section whose lines are all
    unindented is rewritten, before napoleon sees it, into the reST field
    ``:returns: <the text>`` after two blank lines (which end napoleon's previous section, so
    the field passes through unchanged); a structured section (``name : type`` lines with indented
    descriptions) is left to napoleon.
    """
    i = 0
    while i + 1 < len(lines):
        if lines[i].strip() != "Returns" or set(lines[i + 1].strip()) != {"-"}:
            i += 1
            continue
        end = i + 2
        while end < len(lines) and not (
            end + 1 < len(lines)
            and lines[end].strip()
            and not lines[end][0].isspace()
            and set(lines[end + 1].strip()) == {"-"}
        ):
            end += 1
        body = lines[i + 2 : end]
        while body and not body[-1].strip():
            body.pop()
        if body and all(not ln or not ln[0].isspace() for ln in body):
            # two blank lines end napoleon's previous section; the field then passes through
            field = [
                "",
                "",
                f":returns: {body[0]}",
                *[f"    {ln}" if ln else "" for ln in body[1:]],
                "",
            ]
            lines[i:end] = field
            i += len(field)
        else:
            i = end


def _generate(app: object) -> None:
    """Run ``docs/tutorial.py`` (tutorial pages, CLI help) before the pages are read."""
    cmd = [sys.executable, str(HERE / "tutorial.py"), "--out", str(GENERATED)]
    if os.environ.get("PERTSPECTRA_DOCS_TUTORIAL", "1") == "0":
        cmd.append("--help-only")
    runs = os.environ.get("PERTSPECTRA_DOCS_RUNS")
    if runs:
        cmd += ["--runs", runs]
    done = subprocess.run(cmd, cwd=HERE.parent, check=False)
    if done.returncode != 0:
        from sphinx.errors import ExtensionError

        msg = f"docs/tutorial.py failed (exit {done.returncode}): {' '.join(cmd)}"
        raise ExtensionError(msg)


def setup(app: object) -> None:
    """Execute the tutorial at the start of every build; fix re-exported constants' docs."""
    app.connect("builder-inited", _generate)  # type: ignore[attr-defined]
    app.connect("autodoc-process-docstring", _data_docstring)  # type: ignore[attr-defined]
    # before napoleon (priority 500), which would split a prose Returns section into entries
    app.connect("autodoc-process-docstring", _prose_returns, priority=400)  # type: ignore[attr-defined]
