"""The documentation: every public name has an API page, every command a how-to, links resolve.

The fast tests read the Markdown sources only. The full build (``sphinx-build -W``, which also
executes the tutorial on the shared real screens) is ``slow``: ``pytest -m slow tests/test_docs.py``
(``make docs`` runs the same build into ``docs/_build/html``).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pertspectra as ps

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
API = DOCS / "api"
#: Namespaces without ``__all__``: their public functions and classes are their API.
NO_ALL = ("design", "datasets", "testing")
#: Not documented as an API namespace (a thin layer with its own how-to pages / a script).
NOT_API = {"cli", "demo"}


def _autosummary_entries(text: str) -> set[str]:
    """Full names listed by the ``autosummary`` directives of a page (``currentmodule`` aware)."""
    names: set[str] = set()
    current = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith(".. currentmodule::"):
            current = line.split("::", 1)[1].strip()
        if line.startswith(".. autosummary::"):
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("   ")):
                entry = lines[i].strip()
                if entry and not entry.startswith(":"):
                    entry = entry.lstrip("~")
                    names.add(entry if entry.startswith("pertspectra.") else f"{current}.{entry}")
                i += 1
            continue
        i += 1
    return names


def _documented() -> dict[str, set[str]]:
    """Page stem -> full names its autosummary lists."""
    return {p.stem: _autosummary_entries(p.read_text()) for p in sorted(API.glob("*.md"))}


def _public_names(short: str) -> set[str]:
    module = importlib.import_module(f"pertspectra.{short}")
    if hasattr(module, "__all__"):
        return set(module.__all__)
    return {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    }


def _api_modules() -> list[str]:
    return [name for name in ps._SUBMODULES if name not in NOT_API]


def test_every_namespace_has_an_api_page_in_the_index():
    index = (API / "index.md").read_text()
    toctree = re.search(r"```\{toctree\}\n(.*?)```", index, re.S)
    assert toctree is not None
    listed = {ln.strip() for ln in toctree.group(1).splitlines() if ln.strip() and ":" not in ln}
    pages = {p.stem for p in API.glob("*.md")} - {"index"}
    assert set(_api_modules()) == pages, "one docs/api/<namespace>.md per public namespace"
    assert listed == pages, "every API page is in the toctree of docs/api/index.md"


@pytest.mark.parametrize("short", _api_modules())
def test_every_public_name_has_an_api_page(short):
    entries = _documented().get(short, set())
    want = {f"pertspectra.{short}.{name}" for name in _public_names(short)}
    missing = sorted(want - entries)
    assert not missing, f"add to the autosummary of docs/api/{short}.md: {missing}"
    if short not in NO_ALL:
        stale = sorted(entries - want)
        assert not stale, f"docs/api/{short}.md lists names not in __all__: {stale}"
    module = importlib.import_module(f"pertspectra.{short}")
    for full in entries:
        assert hasattr(module, full.rsplit(".", 1)[1]), f"{full} does not exist"


def test_top_level_names_are_documented():
    index = (API / "index.md").read_text()
    rows = dict(re.findall(r"\| `ps\.(\w+)` \| \{\w+\}`([\w.]+)` \|", index))
    documented = set().union(*_documented().values())
    for name in ps.__all__:
        if name == "__version__":
            continue
        if name in ps._SUBMODULES:
            assert name in NOT_API or (API / f"{name}.md").is_file(), name
            continue
        assert name in rows, f"add `ps.{name}` to the table in docs/api/index.md"
        target = rows[name]
        assert target in documented, f"{target} has no API page"
        module, attr = target.rsplit(".", 1)
        assert getattr(importlib.import_module(module), attr) is getattr(ps, name)


def test_every_command_has_a_howto_page():
    from pertspectra.cli import app

    sys.path.insert(0, str(DOCS))
    try:
        tutorial = importlib.import_module("tutorial")
    finally:
        sys.path.remove(str(DOCS))
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    pages = {p.stem for p in (DOCS / "cli").glob("*.md")} - {"index"}
    assert commands == pages, "one docs/cli/<command>.md per command"
    assert commands == set(tutorial.COMMANDS), "docs/tutorial.py writes each command's --help"
    toctree = (DOCS / "cli" / "index.md").read_text()
    for command in commands:
        assert f"\n{command}\n" in toctree, f"{command} missing from docs/cli/index.md"
        page = (DOCS / "cli" / f"{command}.md").read_text()
        assert f"/_generated/cli/{command}.txt" in page, f"{command}.md includes its --help"
        assert "```bash\npertspectra " + command in page, f"{command}.md has an example"


def test_tutorial_script_writes_the_help_pages(tmp_path):
    out = tmp_path / "gen"
    done = subprocess.run(
        [sys.executable, str(DOCS / "tutorial.py"), "--out", str(out), "--help-only"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    fit_help = (out / "cli" / "fit.txt").read_text()
    assert "Usage: pertspectra fit" in fit_help
    assert "--perturbation-key" in fit_help
    assert "not executed" in (out / "tutorial.md").read_text()
    for name in ("papalexi", "wessels"):
        assert (out / "reports" / f"{name}_report.html").is_file()


def test_readme_links_resolve():
    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links, "the README links to the documentation pages"
    for link in links:
        assert not link.startswith(("http:", "https:", "/")), f"relative links only: {link}"
        assert (REPO / link).is_file(), f"README links to a missing file: {link}"


def test_readme_python_example_is_short():
    text = (REPO / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None
    assert len(block.group(1).splitlines()) <= 10


@pytest.mark.slow
@pytest.mark.docs
@pytest.mark.skipif(shutil.which("sphinx-build", path=str(Path(sys.executable).parent)) is None,
                    reason="the docs extra is not installed (pip install -e '.[docs]')")  # fmt: skip
def test_docs_build_with_warnings_as_errors(tmp_path):
    """``make docs`` without the install step: the tutorial runs afresh, then Sphinx with -W."""
    from pertspectra.testing import shared_data_dir

    env = {**os.environ, "PERTSPECTRA_DOCS_RUNS": str(tmp_path / "runs")}
    sphinx = Path(sys.executable).parent / "sphinx-build"
    cmd = [str(sphinx), "-W", "--keep-going", "-b", "html", "-d", str(tmp_path / "doctrees"),
           "docs", str(tmp_path / "html")]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    html = tmp_path / "html"
    assert (html / "api" / "generated" / "pertspectra.train.fit.html").is_file()
    if shared_data_dir(required="screens/papalexi2021_thp1_eccite_299genes.h5ad") is None:
        pytest.skip("shared data absent: the tutorial was not executed (the build passed)")
    page = (DOCS / "_generated" / "tutorial.md").read_text()
    for expected in ("pearson_delta", "pertspectra run", "ps.report.collect", "Most alike"):
        assert expected in page
    tutorial = (html / "tutorial.html").read_text()
    assert "papalexi_report.html" in tutorial
    assert "wessels_report.html" in tutorial
    assert len(list((DOCS / "_generated" / "figures").glob("*.png"))) >= 6
