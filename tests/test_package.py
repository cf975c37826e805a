"""Package structure: cheap import, scanpy-style signature conventions."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pertspectra as ps


def test_import_is_cheap():
    code = "import sys, pertspectra; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_adata_first_keyword_only():
    """Public functions taking an AnnData take it first and at most 3 positional parameters."""
    funcs = [
        ps.stats.compute_group_stats,
        ps.stats.normalize_log1p,
        ps.train.fit,
        ps.train.store_results,
        ps.io.read_screen,
        ps.priors.add_prior,
    ]
    for func in funcs:
        params = list(inspect.signature(func).parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        assert len(positional) <= 3, func.__qualname__
        assert params[0].name in ("adata", "data"), func.__qualname__


def test_no_pickle_in_package():
    import pathlib

    src = pathlib.Path(ps.__file__).parent
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text, path
        assert "torch.load(" not in text, path
