"""The command line under several conditions: fit, info, predict, resume (issue #13).

On the real mcfaline23 screen (9 knockouts + control in the glioma lines A172, T98G, U87MG;
PLK4 has 46 < 50 cells in A172, so it is not fitted there).
"""

from __future__ import annotations

import hashlib
import signal

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import pertspectra as ps
from pertspectra.cli import app
from pertspectra.train import _loop

runner = CliRunner()
CONDITIONS = ["A172", "T98G", "U87MG"]
SMALL = ["--n-factors", "6", "--condition-factors", "2", "--max-epochs", "150", "--threads", "1"]


@pytest.fixture(scope="module")
def mc_h5ad(shared, tmp_path_factory):
    import anndata as ad

    full = ad.read_h5ad(shared("combinatorial/perturbench_devel.h5ad"))
    path = tmp_path_factory.mktemp("data") / "mcfaline23.h5ad"
    full[(full.obs["dataset"] == "mcfaline23").to_numpy()].copy().write_h5ad(path)
    return path


def _args(path, *extra):
    return [
        "fit", str(path), "--perturbation-key", "condition", "--condition-key", "cell_type",
        *SMALL, "--no-progress", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def fitted(mc_h5ad, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "model"
    res = runner.invoke(app, [*_args(mc_h5ad), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def _predict(model_dir, out, *args):
    return runner.invoke(app, ["predict", str(model_dir), *args, "--out", str(out)])


def _one_error(res, *words):
    """Exit 1, one ``error:`` line naming ``words``, no traceback."""
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.output
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def test_fit_saves_a_condition_model_with_provenance(fitted, mc_h5ad):
    out, output = fitted
    assert "10 labels in 3 conditions" in output
    assert "model written to" in output
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
    assert ps.model.is_condition_model(out)
    model = ps.model.ConditionModel.load(out)
    assert model.conditions == CONDITIONS
    assert model.W.shape[0] == 6
    assert model.condition_factors == 2
    assert "PLK4" not in model.condition_labels["A172"]
    assert "PLK4" in model.condition_labels["T98G"]
    sha = hashlib.sha256(mc_h5ad.read_bytes()).hexdigest()
    assert model.training["inputs"] == {str(mc_h5ad): sha}
    assert model.training["max_epochs"] == 150
    # a second fit into the folder needs --overwrite, as for a plain model
    res = runner.invoke(app, [*_args(mc_h5ad), "--out", str(out)])
    _one_error(res, "--overwrite")


def test_info_lists_conditions_and_blocks(fitted):
    out, _ = fitted
    res = runner.invoke(app, ["info", str(out)])
    assert res.exit_code == 0, res.output
    assert "under 3 conditions (obs['cell_type'])" in res.output
    assert "6 shared programs + 2 per condition" in res.output
    assert "condition A172: 9 labels, 8 factors (6 shared, 2 own), 804 cells" in res.output
    assert "condition T98G: 10 labels, 8 factors (6 shared, 2 own), 871 cells" in res.output
    assert "condition U87MG: 10 labels, 8 factors (6 shared, 2 own), 865 cells" in res.output
    assert "not fitted in A172 (too few cells): PLK4" in res.output


def test_predict_every_condition_equals_the_loaded_model(fitted, tmp_path):
    out, _ = fitted
    model = ps.model.ConditionModel.load(out)
    labels = ["MAPK1+SGK1", "MAPK1", "control"]
    res = _predict(out, tmp_path / "p.csv", *labels)
    assert res.exit_code == 0, res.output
    assert "9 (condition, label) row(s) in 3 condition(s) x 500 genes" in res.output
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns[:2]) == ["condition", "label"]
    assert list(table["condition"]) == [c for c in CONDITIONS for _ in labels]
    assert list(table["label"]) == labels * 3
    expected = model.predict(labels)
    assert list(table.columns[2:]) == model.genes
    np.testing.assert_allclose(table.iloc[:, 2:].to_numpy(), expected.to_numpy(), rtol=1e-12)
    # the combination differs between the conditions (loadings per condition)
    combo = table[table["label"] == "MAPK1+SGK1"].iloc[:, 2:].to_numpy()
    assert np.abs(combo[0] - combo[1]).max() > 1e-3
    assert np.abs(combo[1] - combo[2]).max() > 1e-3
    # parquet keeps the same (condition, label) rows
    res = _predict(out, tmp_path / "p.parquet", *labels)
    assert res.exit_code == 0, res.output
    pq = pd.read_parquet(tmp_path / "p.parquet")
    assert list(pq.index.names) == ["condition", "label"]
    np.testing.assert_allclose(pq.to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_predict_chosen_conditions(fitted, tmp_path):
    out, _ = fitted
    model = ps.model.ConditionModel.load(out)
    res = _predict(out, tmp_path / "t.csv", "MAPK1+SGK1", "--condition", "T98G")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "t.csv", index_col=[0, 1])
    assert list(table.index) == [("T98G", "MAPK1+SGK1")]
    np.testing.assert_allclose(
        table.to_numpy(), model.predict(["MAPK1+SGK1"], condition="T98G").to_numpy(), rtol=1e-12
    )
    # repeated and comma-separated; PLK4 where it was fitted
    for extra in (["--condition", "U87MG,T98G"], ["--condition", "U87MG", "--condition", "T98G"]):
        res = _predict(out, tmp_path / "u.csv", "PLK4", *extra, "--overwrite")
        assert res.exit_code == 0, res.output
        table = pd.read_csv(tmp_path / "u.csv", index_col=[0, 1])
        assert list(table.index) == [("U87MG", "PLK4"), ("T98G", "PLK4")]


def test_predict_errors_name_condition_and_perturbation(fitted, tmp_path):
    out, _ = fitted
    target = tmp_path / "p.csv"
    line = _one_error(_predict(out, target, "PLK4", "--condition", "A172"), "PLK4", "A172")
    assert "T98G, U87MG" in line  # where it can be predicted instead
    _one_error(_predict(out, target, "PLK4+SGK1", "--condition", "A172"), "PLK4", "A172")
    _one_error(_predict(out, target, "MAPK1", "--condition", "HeLa"), "HeLa", "A172, T98G, U87MG")
    line = _one_error(_predict(out, target, "NOPE+MAPK1", "--condition", "T98G"), "'NOPE'")
    assert "not seen in any condition" in line
    line = _one_error(_predict(out, target, "NOPE"), "'NOPE'")
    assert "not seen in any condition" in line
    assert not target.exists()
    # without --condition: every condition where it was fitted, a warning names the others
    res = _predict(out, target, "PLK4", "MAPK1")
    assert res.exit_code == 0, res.output
    assert "warning: not predicted where a perturbation was never seen: PLK4 in A172" in res.output
    table = pd.read_csv(target, index_col=[0, 1])
    assert ("A172", "PLK4") not in table.index
    assert {("A172", "MAPK1"), ("T98G", "PLK4"), ("U87MG", "PLK4")} <= set(table.index)


def test_condition_options_on_a_plain_model_and_bad_fit_options(mc_h5ad, tmp_path):
    plain = tmp_path / "plain"
    args = ["fit", str(mc_h5ad), "--perturbation-key", "condition", "--n-factors", "4"]
    res = runner.invoke(app, [*args, "--max-epochs", "20", "--no-progress", "--out", str(plain)])
    assert res.exit_code == 0, res.output
    assert not ps.model.is_condition_model(plain)
    res = _predict(plain, tmp_path / "p.csv", "MAPK1", "--condition", "A172")
    _one_error(res, "--condition", "--condition-key")
    assert not (tmp_path / "p.csv").exists()
    bad = tmp_path / "bad"
    _one_error(
        runner.invoke(app, [*args, "--condition-key", "condition", "--out", str(bad)]),
        "--condition-key and --perturbation-key are the same column",
    )
    _one_error(
        runner.invoke(app, [*args, "--condition-factors", "2", "--out", str(bad)]),
        "--condition-factors",
        "--condition-key",
    )
    _one_error(
        runner.invoke(
            app,
            [*args, "--condition-key", "cell_type", "--condition-factors", "-1", "--out", str(bad)],
        ),
        "--condition-factors must be >= 0",
    )
    _one_error(
        runner.invoke(app, [*args, "--condition-key", "cell_typo", "--out", str(bad)]),
        "cell_typo",
    )
    assert not bad.exists()


def test_dry_run_under_conditions(mc_h5ad, tmp_path):
    res = runner.invoke(app, [*_args(mc_h5ad), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "per epoch" in res.output
    assert "under 3 conditions: 29 (label, condition) groups" in res.output
    assert "(3 x 11 design columns), 6 shared + 2 own factors" in res.output


def test_interrupted_condition_fit_resumes_bit_identical(fitted, mc_h5ad, tmp_path, monkeypatch):
    out = tmp_path / "model"
    original = _loop._Stepper.step

    def step(self, lr):
        value = original(self, lr)
        if self.hist.epochs == 70:
            signal.raise_signal(signal.SIGINT)
        return value

    monkeypatch.setattr(_loop._Stepper, "step", step)
    res = runner.invoke(app, [*_args(mc_h5ad), "--out", str(out)])
    monkeypatch.undo()
    assert res.exit_code == 130, res.output
    assert f"--resume {out}" in res.output
    # the checkpoint is of a condition fit: resuming it as a plain fit is refused
    plain = [a for a in _args(mc_h5ad) if a not in ("--condition-key", "cell_type")]
    plain = [a for i, a in enumerate(plain) if "--condition-factors" not in plain[i - 1 : i + 1]]
    _one_error(runner.invoke(app, [*plain, "--resume", str(out)]), "condition")
    res = runner.invoke(app, [*_args(mc_h5ad), "--resume", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
    a = ps.model.ConditionModel.load(fitted[0])
    b = ps.model.ConditionModel.load(out)
    for name in ("P", "W", "B", "kappa", "gene_scale", "W_own", "B_own", "kappa_own"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.training["loss_history"] == b.training["loss_history"]
