"""The tree is the architecture: one-way stages, advertised names, scanpy's signature rules."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from inspect import Parameter
from pathlib import Path

import pytest
from anndata import AnnData

import pertspectra as ps

SRC = Path(ps.__file__).parent

#: Pipeline order: a module may import only from its own stage or earlier ones.
STAGES = [
    ("_keys", "_types", "_utils"),
    ("design", "_label_checks"),
    ("io",),
    ("stats",),
    ("priors",),
    ("model",),
    ("train",),
    ("predict",),
    ("evaluate",),
    ("enrich",),
    ("similarity",),
    ("get",),
    ("pl",),
    ("report",),
    ("cli",),
]
RANK = {name: i for i, names in enumerate(STAGES) for name in names}
#: Free to import any stage.
FREE = {"datasets", "testing", "demo", "__init__", "py"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    """Every ``pertspectra`` module imported anywhere in ``path`` (deferred imports too)."""
    tree = ast.parse(path.read_text())
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "pertspectra")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module.split(".")[0] != "pertspectra":
                continue
            found.add(module)
            for alias in node.names:  # ``from . import io`` imports the submodule
                candidate = f"{module}.{alias.name}"
                try:
                    if importlib.util.find_spec(candidate) is not None:
                        found.add(candidate)
                except ModuleNotFoundError:  # ``module`` is a module, not a package
                    pass
    return found - {_module_name(path)}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in SRC.rglob("*.py")}


def test_no_upward_import_between_stages():
    bad = []
    for module, deps in _graph().items():
        stage = _stage(module)
        if stage in FREE:
            continue
        assert stage in RANK, f"{module}: stage {stage!r} has no place in the pipeline order"
        for dep in deps:
            dstage = _stage(dep)
            if dstage == "__init__":
                # ``import pertspectra as ps`` is allowed only where anything is (cli, free)
                if stage != "cli":
                    bad.append(f"{module} -> {dep}")
                continue
            if dstage in FREE:
                bad.append(f"{module} -> {dep} (a free module)")
            elif RANK[dstage] > RANK[stage]:
                bad.append(f"{module} ({stage}) -> {dep} ({dstage})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, ()):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    # a package's __init__ re-exporting its modules is not a cycle with them
    graph = {
        m: {d for d in deps if not (m.startswith(d + ".") and d != "pertspectra")}
        for m, deps in graph.items()
    }
    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_star_import():
    code = "import pertspectra; from pertspectra import *; print(sorted(pertspectra.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def _public_modules() -> list[str]:
    names = ["pertspectra"]
    names += [f"pertspectra.{n}" for n in ps.__all__ if not n.startswith("_") and n != "fit"]
    return [n for n in names if importlib.util.find_spec(n) is not None]


@pytest.mark.parametrize("module", _public_modules())
def test_every_name_in_all_exists(module):
    mod = importlib.import_module(module)
    for name in getattr(mod, "__all__", []):
        assert getattr(mod, name, None) is not None or name == "__version__", (module, name)


def _param_is_pos(p: Parameter) -> bool:
    return p.kind in {Parameter.POSITIONAL_ONLY, Parameter.POSITIONAL_OR_KEYWORD}


def _api_functions() -> list:
    out = []
    for module in _public_modules():
        mod = importlib.import_module(module)
        for name in sorted(getattr(mod, "__all__", [])):
            obj = getattr(mod, name, None)
            if inspect.isfunction(obj) and obj.__module__.startswith("pertspectra"):
                out.append(pytest.param(obj, id=f"{module}.{name}"))
    return out


@pytest.mark.parametrize("func", _api_functions())
def test_sig_conventions(func):
    """Scanpy's rules: <= 3 positional parameters, AnnData first, ``copy`` keyword-only."""
    sig = inspect.signature(func)
    n_pos = sum(1 for p in sig.parameters.values() if _param_is_pos(p))
    assert n_pos <= 3, "public functions take at most 3 positional parameters"
    params = list(sig.parameters.values())
    if not params:
        return
    first = params[0]
    hints = inspect.get_annotations(func, eval_str=False)
    ann = str(hints.get(first.name, ""))
    if first.name == "adata":
        assert ann in {"AnnData", "AnnData | None"} or first.annotation is AnnData, ann
    if "AnnData" in ann.split("|")[0]:
        assert first.name == "adata", "an AnnData argument comes first and is called adata"
    for p in params[1:]:
        assert "AnnData" not in str(hints.get(p.name, "")) or not _param_is_pos(p), (
            f"{p.name}: a second AnnData is keyword-only"
        )
    if (copy := sig.parameters.get("copy")) is not None:
        assert not _param_is_pos(copy)
        assert copy.default is False
        assert str(sig.return_annotation) in {"AnnData | None", "'AnnData | None'"}
    if (key := sig.parameters.get("key_added")) is not None:
        assert not _param_is_pos(key)


@pytest.mark.parametrize("func", _api_functions())
def test_return_type_does_not_depend_on_the_data(func):
    """A return annotation is one type (``X | None`` only together with ``copy``)."""
    ret = str(inspect.get_annotations(func, eval_str=False).get("return", ""))
    if " | " not in ret:
        return
    parts = {p.strip() for p in ret.split("|")}
    if "copy" in inspect.signature(func).parameters:
        assert parts == {"AnnData", "None"}, ret
    else:
        assert "None" in parts, f"return type {ret} depends on the input"
        assert len(parts) == 2, f"return type {ret} depends on the input"


def test_small_rooms():
    """No module in src/ over ~400 lines."""
    big = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 420
    }
    assert not big, big


def test_typer_only_in_the_cli():
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts:
            continue
        assert "typer" not in _imports_of(path), path


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_stats_is_numpy_and_scipy_only():
    for path in (SRC / "stats").rglob("*.py"):
        assert "torch" not in _imports_of(path), path
