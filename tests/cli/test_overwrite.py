"""Nothing lost: every command but ``run`` refuses to replace its output without --overwrite.

Each command runs twice into the same output: the second run exits 1 naming ``--overwrite``
and leaves the first output byte-identical; with ``--overwrite`` it succeeds. Outputs are
written through a temporary path and get the mode of a normal file or folder under the umask.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pertspectra as ps
from pertspectra.cli import app

runner = CliRunner()


def _digest(path: Path) -> str:
    """Checksum of a file, or of a folder's names and bytes."""
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(path.rglob("*")):
            h.update(str(p.relative_to(path)).encode())
            if p.is_file():
                h.update(p.read_bytes())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def inputs(toy_inputs):
    return toy_inputs


FAST_FIT = ["--perturbation-key", "perturbation", "--factors", "2", "--epochs", "5"]


def _commands(i: dict[str, Path], out: Path) -> dict[str, list[str]]:
    """Every command that writes, with the output it writes (``info`` writes nothing)."""
    d, m = str(i["data"]), str(i["model"])
    return {
        "fit": ["fit", d, *FAST_FIT, "--no-progress", "--out", str(out / "model")],
        "predict": ["predict", m, "G0+G1", "G2", "--out", str(out / "pred.csv")],
        "prior": ["prior", d, "--string", str(i["net"]), "--out", str(out / "prior.h5ad")],
        "evaluate": [
            "evaluate",
            d,
            *FAST_FIT,
            "--folds",
            "2",
            "--no-progress",
            "--out",
            str(out / "eval"),
        ],
        "programs": ["programs", m, "--gene-sets", str(i["gmt"]), "--out", str(out / "prog")],
        "similarity": [
            "similarity",
            m,
            "--pairs",
            str(i["pairs"]),
            "--permutations",
            "10",
            "--out",
            str(out / "sim"),
        ],
        "report": ["report", str(i["model"].parent), "--out", str(out / "report.html")],
    }


def _output(args: list[str]) -> Path:
    return Path(args[args.index("--out") + 1])


@pytest.mark.parametrize(
    "name", ["fit", "predict", "prior", "evaluate", "programs", "similarity", "report"]
)
def test_second_run_refuses_without_overwrite(inputs, tmp_path, name):
    args = _commands(inputs, tmp_path)[name]
    out = _output(args)
    sources = {p: _digest(p) for p in inputs.values()}
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert out.exists()
    before = _digest(out)
    again = runner.invoke(app, args)
    assert again.exit_code == 1, again.output
    last = again.output.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert "--overwrite" in last
    assert str(out) in last
    assert _digest(out) == before
    forced = runner.invoke(app, [*args, "--overwrite"])
    assert forced.exit_code == 0, forced.output
    assert {p: _digest(p) for p in inputs.values()} == sources  # inputs never touched
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporaries


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it after."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_outputs_get_the_umask_mode(inputs, tmp_path, umask, mask):
    umask(mask)
    commands = _commands(inputs, tmp_path)
    for name in ("fit", "predict", "prior", "similarity", "report"):
        res = runner.invoke(app, commands[name])
        assert res.exit_code == 0, res.output
        out = _output(commands[name])
        paths = [out, *out.rglob("*")] if out.is_dir() else [out]
        for path in paths:
            want = (0o777 if path.is_dir() else 0o666) & ~mask
            got = stat.S_IMODE(path.stat().st_mode)
            assert got == want, f"{name}: {path} has mode {oct(got)}, expected {oct(want)}"


@pytest.mark.parametrize("name", ["fit", "evaluate", "programs", "similarity"])
def test_overwrite_never_replaces_a_folder_holding_other_files(inputs, tmp_path, name):
    # --overwrite replaces a command's own output folder only: notes (or data) beside it stay
    args = _commands(inputs, tmp_path)[name]
    out = _output(args)
    out.mkdir()
    notes = out / "notes.txt"
    notes.write_text("months of lab work")
    res = runner.invoke(app, [*args, "--overwrite"])
    assert res.exit_code == 1, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert "notes.txt" in last
    assert "choose another --out" in last
    assert notes.read_text() == "months of lab work"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_an_input_inside_the_output_folder_is_refused(inputs, tmp_path):
    # similarity into the folder that holds the data it reads: refused before any work
    folder = tmp_path / "work"
    folder.mkdir()
    data = folder / "toy.h5ad"
    data.write_bytes(inputs["data"].read_bytes())
    before = _digest(folder)
    args = ["similarity", str(inputs["model"]), "--data", str(data), "--perturbation-key",
            "perturbation", "--permutations", "10", "--out", str(folder), "--overwrite"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "lies inside the output folder" in res.output
    assert _digest(folder) == before


@pytest.mark.parametrize(
    ("name", "settings"),
    [("evaluate", "settings.json"), ("programs", "settings.json"), ("similarity", "settings.json")],
)
def test_outputs_record_versions_seed_and_input_checksums(inputs, tmp_path, name, settings):
    import json

    args = _commands(inputs, tmp_path)[name]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    got = json.loads((_output(args) / settings).read_text())
    assert got["versions"]["pertspectra"] == ps.__version__
    assert got["seed"] == 0
    first = Path(args[1])  # the data (evaluate) or the model folder (programs, similarity)
    expected = _digest(first) if first.is_file() else None
    recorded = got["inputs"][str(first)]
    assert recorded == expected if expected else len(recorded) == 64
