"""Every bad screen a user can hand ``pertspectra fit``: one clear line, status 1, inputs intact."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData
from typer.testing import CliRunner

from pertspectra.cli import app

runner = CliRunner()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fit(path: Path, out: Path, *extra: str):
    args = ["fit", str(path), "--perturbation-key", "perturbation", "--factors", "4"]
    return runner.invoke(app, [*args, "--epochs", "20", "--no-progress", "--out", str(out), *extra])


def _labels(a: AnnData) -> AnnData:
    a.obs["perturbation"] = a.obs["perturbation"].astype(str)
    return a


def _relabel(old: str, new: object, n: int | None = None) -> Callable[[AnnData], AnnData]:
    def build(a: AnnData) -> AnnData:
        a = _labels(a)
        rows = np.flatnonzero(a.obs["perturbation"] == old)[:n]
        a.obs["perturbation"] = a.obs["perturbation"].astype(object)
        a.obs.iloc[rows, a.obs.columns.get_loc("perturbation")] = new
        return a

    return build


def _value(v: float) -> Callable[[AnnData], AnnData]:
    def build(a: AnnData) -> AnnData:
        x = a.X.toarray()
        x[7, 3] = v
        x[9, 1] = v
        a.X = sp.csr_matrix(x)
        return a

    return build


def _genes(names: Callable[[list[str]], list[str]]) -> Callable[[AnnData], AnnData]:
    def build(a: AnnData) -> AnnData:
        a.var_names = names(list(a.var_names))
        return a

    return build


def _counts(a: AnnData) -> AnnData:
    a.X = a.layers["counts"]
    return a


def _no_control(a: AnnData) -> AnnData:
    return a[a.obs["perturbation"] != "ctrl"].copy()


def _same(a: AnnData) -> AnnData:
    return a


# name: (build the file, extra options, words the one error line must hold)
ERRORS: dict[str, tuple[Callable[[AnnData], AnnData], tuple[str, ...], tuple[str, ...]]] = {
    "missing obs column": (
        _same,
        ("--perturbation-key", "pertubation"),
        ("obs column 'pertubation' not found", "did you mean 'perturbation'", "--perturbation-key"),
    ),
    "missing layer": (_same, ("--layer", "raw"), ("layer 'raw' not found", "'counts'", "--layer")),
    "NaN label": (
        _relabel("G1", np.nan, 3),
        (),
        ("3 cell(s)", "missing (NaN)", "obs['perturbation']"),
    ),
    "empty label": (_relabel("G1", "", 4), (), ("4 cell(s)", "empty perturbation label")),
    "whitespace-only label": (_relabel("G1", "  ", 4), (), ("4 cell(s)", "empty")),
    "whitespace variant": (
        _relabel("G1", " G1", 10),
        (),
        ("' G1' (10 cells)", "'G1' (57 cells)", "whitespace", "one spelling"),
    ),
    "empty target": (_relabel("G1", "G1+", None), (), ("'G1+'", "empty target")),
    "named control matches no cell": (
        _same,
        ("--control", "NTC"),
        ("['NTC']", "match no label", "obs['perturbation']"),
    ),
    "no control cells": (_no_control, (), ("no control cells", "--control NAME", "G0")),
    "control below min_cells": (
        _relabel("ctrl", "G9", 180),
        (),
        ("no control cells", "20 cell(s)", "min_cells=50", "--min-cells"),
    ),
    "no label with min_cells": (
        _same,
        ("--min-cells", "5000"),
        ("no label has at least min_cells=5000", "'ctrl', has 200"),
    ),
    "every label excluded": (
        _same,
        ("--exclude-labels", "ctrl,G0,G1,G2,G3,G4,G5,G0+G2,G2+G4,G3+G4,G4+G5"),
        ("every cell's label in obs['perturbation'] is excluded",),
    ),
    "NaN values": (
        _value(np.nan),
        (),
        ("NaN or infinite", "2 NaN", "cell 7 'cell7'", "gene 'gene3'"),
    ),
    "infinite values": (_value(np.inf), (), ("2 infinite", "cell 7 'cell7'", "gene 'gene3'")),
    "negative values": (
        _value(-1.0),
        (),
        ("negative values: 2", "cell 7 'cell7'", "gene 'gene3'", "--normalize log1p"),
    ),
    "raw counts": (_counts, (), ("looks like raw counts", "--normalize log1p")),
    "duplicated gene names": (
        _genes(lambda g: ["gene1", *g[1:]]),
        (),
        ("duplicated gene names", "'gene1'", "var_names_make_unique()"),
    ),
    "empty gene name": (
        _genes(lambda g: [*g[:4], "", *g[5:]]),
        (),
        ("1 gene name(s)", "empty", "positions [4]"),
    ),
    "min_cells out of range": (_same, ("--min-cells", "0"), ("min_cells must be an integer >= 1",)),
    "w rate scale not positive": (
        _same,
        ("--w-rate-scale", "0"),
        ("w_rate_scale must be a positive finite number", "got 0.0"),
    ),
    "unknown start": (_same, ("--init", "nmf"), ("init must be", "got 'nmf'")),
    "negative delta": (
        _same,
        ("--delta", "-1"),
        ("delta must be a finite number >= 0", "got -1.0"),
    ),
    "unknown matmul precision": (
        _same,
        ("--matmul-precision", "low"),
        ("matmul_precision must be one of", "'medium'"),
    ),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad_inputs")


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_input_is_one_clear_line(case, toy_adata, folder):
    build, extra, words = ERRORS[case]
    path = folder / f"{case.replace(' ', '_')}.h5ad"
    build(toy_adata.copy()).write_h5ad(path)
    before = _sha(path)
    out = folder / f"model_{path.stem}"
    res = _fit(path, out, *extra)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, res.output
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert _sha(path) == before
    assert not out.exists()


def test_missing_file(folder):
    res = _fit(folder / "nope.h5ad", folder / "m")
    assert res.exit_code == 1
    assert "nope.h5ad not found" in res.output


def _warning_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("warning: ")]


@pytest.fixture(scope="module")
def no_guide_h5ad(toy_adata, folder) -> Path:
    path = folder / "no_guide.h5ad"
    _relabel("G1", "None_Detected")(toy_adata.copy()).write_h5ad(path)
    return path


def test_no_guide_labels_warn_naming_the_flag(no_guide_h5ad, folder):
    before = _sha(no_guide_h5ad)
    res = _fit(no_guide_h5ad, folder / "m", "--dry-run")
    assert res.exit_code == 0, res.output
    (line,) = [w for w in _warning_lines(res.output) if "None_Detected" in w]
    assert "67 cells" in line
    assert "--exclude-labels None_Detected" in line
    res = _fit(no_guide_h5ad, folder / "m", "--dry-run", "--exclude-labels", "None_Detected")
    assert res.exit_code == 0, res.output
    assert not [w for w in _warning_lines(res.output) if "guide" in w]
    assert _sha(no_guide_h5ad) == before


def test_misspelt_exclude_label_warns(no_guide_h5ad, folder):
    res = _fit(no_guide_h5ad, folder / "m", "--dry-run", "--exclude-labels", "none_detectd")
    assert res.exit_code == 0, res.output
    lines = _warning_lines(res.output)
    assert any("['none_detectd'] match no label" in w for w in lines), res.output
    assert any("None_Detected" in w and "--exclude-labels" in w for w in lines), res.output


def test_combinations_without_singles_warn_before_fitting(toy_adata, folder):
    path = folder / "no_singles.h5ad"
    toy_adata[~toy_adata.obs["perturbation"].isin(["G2", "G4"])].copy().write_h5ad(path)
    res = _fit(path, folder / "m", "--dry-run")
    assert res.exit_code == 0, res.output
    (line,) = [w for w in _warning_lines(res.output) if "never seen alone" in w]
    assert "G2+G4 (never alone: G2, G4)" in line
    assert "G4+G5 (never alone: G4)" in line
    assert "--encoding label" in line
    assert res.output.index("never seen alone") < res.output.index("fit forecast")


def test_inseparable_targets_named(toy_adata, folder):
    path = folder / "tied.h5ad"
    keep = ~toy_adata.obs["perturbation"].isin(["G2", "G4", "G0+G2", "G4+G5", "G3+G4"])
    toy_adata[keep].copy().write_h5ad(path)
    res = _fit(path, folder / "m", "--dry-run")
    assert res.exit_code == 0, res.output
    (line,) = [w for w in _warning_lines(res.output) if "never seen alone" in w]
    assert "G2 and G4 only ever occur together and cannot be told apart" in line


def test_case_variants_warn(toy_adata, folder):
    path = folder / "case.h5ad"
    _relabel("G1", "g1", 60)(toy_adata.copy()).write_h5ad(path)
    res = _fit(path, folder / "m", "--dry-run", "--min-cells", "5")
    assert res.exit_code == 0, res.output
    assert any("'G1' and 'g1'" in w and "letter case" in w for w in _warning_lines(res.output))


def test_labels_below_min_cells_reported_with_counts(toy_adata, folder):
    path = folder / "small.h5ad"
    toy_adata.write_h5ad(path)
    res = _fit(path, folder / "m", "--dry-run", "--min-cells", "70")
    assert res.exit_code == 0, res.output
    (line,) = [x for x in res.output.splitlines() if "below min_cells" in x]
    assert "dropped 3 label(s)" in line
    assert "G1 (67)" in line
    assert "G3 (68)" in line
    assert "G5 (60)" in line


def test_evaluate_gets_the_same_checks(toy_adata, folder):
    path = folder / "nan_eval.h5ad"
    _relabel("G1", np.nan, 2)(toy_adata.copy()).write_h5ad(path)
    before = _sha(path)
    res = runner.invoke(
        app,
        ["evaluate", str(path), "--perturbation-key", "perturbation", "--out", str(folder / "e")],
    )
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert "2 cell(s) have a missing (NaN) perturbation label in obs['perturbation']" in res.output
    assert _sha(path) == before


@pytest.mark.slow
def test_evaluate_warns_once_not_per_fold(toy_adata, folder):
    path = folder / "no_singles_eval.h5ad"
    toy_adata[~toy_adata.obs["perturbation"].isin(["G2", "G4"])].copy().write_h5ad(path)
    args = ["evaluate", str(path), "--perturbation-key", "perturbation", "--folds", "2"]
    res = runner.invoke(
        app,
        [*args, "--epochs", "30", "--factors", "4", "--no-progress", "--out", str(folder / "e2")],
    )
    assert res.exit_code == 0, res.output
    assert res.output.count("never seen alone") == 1, res.output
