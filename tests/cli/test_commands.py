from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pertspectra.cli import app
from pertspectra.model import load_model

runner = CliRunner()


@pytest.fixture(scope="module")
def toy_h5ad(tmp_path_factory, toy_adata):
    path = tmp_path_factory.mktemp("data") / "toy.h5ad"
    toy_adata.write_h5ad(path)
    return path


def _fit(path, out, *extra):
    return runner.invoke(
        app,
        [
            "fit",
            str(path),
            "--perturbation-key",
            "perturbation",
            "--factors",
            "4",
            "--epochs",
            "40",
            "--no-progress",
            "--out",
            str(out),
            *extra,
        ],
    )


def test_fit_predict_info(toy_h5ad, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "model")
    assert res.exit_code == 0, res.output
    assert "model written to" in res.output
    model = load_model(tmp_path / "model")
    res = runner.invoke(
        app, ["predict", str(tmp_path / "model"), "G0+G3", "G2", "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(tmp_path / "p.csv", index_col=0)
    assert list(pred.index) == ["G0+G3", "G2"]
    assert list(pred.columns) == model.genes
    np.testing.assert_allclose(
        pred.to_numpy(), model.predict(["G0+G3", "G2"]).to_numpy(), rtol=1e-12
    )
    res = runner.invoke(app, ["info", str(tmp_path / "model")])
    assert res.exit_code == 0
    assert "4 factors" in res.output


def test_user_errors_are_one_line(toy_h5ad, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "m", "--perturbation-key", "nope")
    assert res.exit_code == 1
    assert "obs column 'nope' not found" in res.output
    assert "Traceback" not in res.output
    res = _fit(tmp_path / "missing.h5ad", tmp_path / "m")
    assert res.exit_code == 1
    assert "not found" in res.output
    assert _fit(toy_h5ad, tmp_path / "m").exit_code == 0
    res = runner.invoke(
        app, ["predict", str(tmp_path / "m"), "G0+UNKNOWN", "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 1
    assert "UNKNOWN" in res.output
    assert not (tmp_path / "p.csv").exists()
    res = _fit(toy_h5ad, tmp_path / "m")
    assert res.exit_code == 1
    assert "--overwrite" in res.output
    res = runner.invoke(app, ["info", str(tmp_path)])
    assert res.exit_code == 1
    assert "not a pertspectra model" in res.output


def test_counts_need_normalize(tmp_path, toy_adata):
    counts = toy_adata.copy()
    counts.X = counts.layers["counts"]
    path = tmp_path / "counts.h5ad"
    counts.write_h5ad(path)
    res = _fit(path, tmp_path / "m")
    assert res.exit_code == 1
    assert "--normalize log1p" in res.output
    res = _fit(path, tmp_path / "m", "--normalize", "log1p")
    assert res.exit_code == 0, res.output


def test_dry_run(toy_h5ad, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "m", "--dry-run")
    assert res.exit_code == 0, res.output
    assert "per epoch" in res.output.lower()
    assert not (tmp_path / "m").exists()


def test_matmul_precision_reaches_the_fit_and_the_forecast(toy_h5ad, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "m", "--matmul-precision", "medium", "--max-epochs", "300")
    assert res.exit_code == 0, res.output
    assert load_model(tmp_path / "m").training["matmul_precision"] == "medium"
    res = _fit(toy_h5ad, tmp_path / "d", "--matmul-precision", "medium", "--dry-run")
    assert res.exit_code == 0, res.output


def test_w_rate_scale_reaches_the_fit(toy_h5ad, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "m", "--w-rate-scale", "0.3", "--max-epochs", "300")
    assert res.exit_code == 0, res.output
    assert load_model(tmp_path / "m").training["w_rate_scale"] == 0.3


def test_delta_reaches_the_model(toy_h5ad, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "m", "--delta", "1e-05", "--max-epochs", "60")
    assert res.exit_code == 0, res.output
    assert load_model(tmp_path / "m").config.delta == 1e-5
    res = _fit(toy_h5ad, tmp_path / "d", "--max-epochs", "60")
    assert load_model(tmp_path / "d").config.delta == 0.001


def test_init_reaches_the_fit(toy_h5ad, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "m", "--init", "random", "--max-epochs", "60")
    assert res.exit_code == 0, res.output
    assert load_model(tmp_path / "m").training["init"] == "random"
    res = _fit(toy_h5ad, tmp_path / "n", "--init", "means", "--factors", "3")
    assert res.exit_code != 0
    assert "init='means' cannot be used here" in res.output
    res = _fit(toy_h5ad, tmp_path / "c", "--init", "communities")
    assert res.exit_code != 0
    assert "init='communities' needs a prior graph" in res.output


def test_papalexi_end_to_end(shared_data_dir, tmp_path):
    path = shared_data_dir / "screens" / "papalexi2021_thp1_eccite_299genes.h5ad"
    res = runner.invoke(
        app,
        [
            "fit",
            str(path),
            "--perturbation-key",
            "target",
            "--normalize",
            "log1p",
            "--factors",
            "10",
            "--epochs",
            "60",
            "--no-progress",
            "--out",
            str(tmp_path / "papalexi"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "dropped 1 label(s) below min_cells" in res.output
    assert "SPI1 (" in res.output
    model = load_model(tmp_path / "papalexi")
    assert len(model.genes) == 299
    assert "ctrl" in model.labels
    assert "IFNGR2" in model.labels
    res = runner.invoke(
        app, ["predict", str(tmp_path / "papalexi"), "JAK2+STAT1", "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 0, res.output


def test_effects_option_and_bad_choice(toy_h5ad, tmp_path):
    res = _fit(
        toy_h5ad, tmp_path / "e", "--parametrization", "effects", "--no-graph", "--threads", "1"
    )
    assert res.exit_code == 0, res.output
    assert "effects parametrization" in runner.invoke(app, ["info", str(tmp_path / "e")]).output
    res = _fit(toy_h5ad, tmp_path / "x", "--parametrization", "nonsense")
    assert res.exit_code == 1
    assert "parametrization must be" in res.output


def test_logging_options_after_the_subcommand(toy_h5ad, tmp_path):
    loud = _fit(toy_h5ad, tmp_path / "a", "-v")
    assert loud.exit_code == 0, loud.output
    assert "fitting 11 labels" in loud.output  # an INFO record of the library
    quiet = _fit(toy_h5ad, tmp_path / "b", "-q")
    assert quiet.exit_code == 0, quiet.output
    assert "fitting 11 labels" not in quiet.output
    res = runner.invoke(app, ["info", str(tmp_path / "b"), "--quiet"])
    assert res.exit_code == 0, res.output


def test_corrupt_model_folder_is_one_line(toy_h5ad, tmp_path):
    assert _fit(toy_h5ad, tmp_path / "m").exit_code == 0
    tensors = tmp_path / "m" / "model.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:100])
    for cmd in (
        ["info", str(tmp_path / "m")],
        ["predict", str(tmp_path / "m"), "G1", "-o", str(tmp_path / "p.csv")],
    ):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 1, res.output
        assert res.output.startswith("error: ")
        assert "truncated or corrupt" in res.output
        assert "Traceback" not in res.output
    meta = tmp_path / "m" / "model.json"
    meta.write_text("{not json")
    res = runner.invoke(app, ["info", str(tmp_path / "m")])
    assert res.exit_code == 1
    assert "not valid JSON" in res.output


def test_diverging_fit_is_a_user_error(toy_h5ad, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "m", "--lam", "1e38")
    assert res.exit_code == 1, res.output
    assert "diverged" in res.output
    assert "lam" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "m").exists()


def test_control_means_controls(toy_h5ad, toy_adata, tmp_path):
    res = _fit(toy_h5ad, tmp_path / "m", "--control", "nosuchlabel")
    assert res.exit_code == 1
    assert "nosuchlabel" in res.output
    assert "match no label" in res.output
    # --control X is controls=[X]: the built-in names no longer apply
    adata = toy_adata.copy()
    adata.obs["perturbation"] = adata.obs["perturbation"].cat.rename_categories({"ctrl": "NTC"})
    path = tmp_path / "ntc.h5ad"
    adata.write_h5ad(path)
    res = _fit(path, tmp_path / "n", "--control", "NTC")
    assert res.exit_code == 0, res.output
    import pertspectra as ps

    stats = ps.stats.compute_group_stats(
        adata, perturbation_key="perturbation", controls=["NTC"], progress=False
    )
    assert load_model(tmp_path / "n").labels == list(stats.obs_names)
    with pytest.raises(ValueError, match="match no label"):
        ps.stats.compute_group_stats(
            adata, perturbation_key="perturbation", controls=["ctrl"], progress=False
        )


def test_threads_leave_the_process_alone(toy_h5ad, tmp_path):
    import torch

    before = torch.get_num_threads()
    res = _fit(toy_h5ad, tmp_path / "m", "--threads", "1")
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == before
    assert load_model(tmp_path / "m").training["threads"] == 1


def test_dry_run_honours_the_separator(tmp_path, toy_adata):
    adata = toy_adata.copy()
    adata.obs["perturbation"] = adata.obs["perturbation"].cat.rename_categories(
        lambda c: c.replace("+", "_")
    )
    path = tmp_path / "sep.h5ad"
    adata.write_h5ad(path)
    res = _fit(path, tmp_path / "m", "--dry-run", "--separator", "_")
    assert res.exit_code == 0, res.output
    assert "8 design columns" in res.output  # 6 genes + ctrl + basal, not one per label


def test_a_bug_prints_a_traceback_and_says_so(toy_h5ad, tmp_path, monkeypatch):
    import pertspectra as ps

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ps.train, "fit", broken)
    res = _fit(toy_h5ad, tmp_path / "m")
    assert res.exit_code == 70
    assert "Traceback" in res.output
    assert "this is a bug in pertspectra" in res.output
    assert "boom" in res.output


def test_cli_imports_only_public_library_names():
    """The CLI calls the library's public API: no private module or name of another stage."""
    import ast
    from pathlib import Path

    import pertspectra.cli

    folder = Path(pertspectra.cli.__file__).parent
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                parts = node.module.split(".")
                if parts[0] == "pertspectra":
                    assert not any(p.startswith("_") for p in parts), (path.name, node.module)
                    assert not any(a.name.startswith("_") for a in node.names), (
                        path.name,
                        node.module,
                    )
            if (  # ps.<stage>._private
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "ps"
            ):
                assert not node.attr.startswith("_"), (path.name, node.attr)


def test_fit_pseudobulk_wessels(shared, tmp_path):
    path = shared("combinatorial/wessels2023_carpool_substrate.h5ad")
    res = runner.invoke(
        app,
        ["fit", str(path), "--perturbation-key", "label", "--control", "NT_NT", "--pseudobulk",
         "--factors", "4", "--epochs", "20", "--no-progress", "--out", str(tmp_path / "m")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "187 labels, cell counts unknown, 2000 genes" in res.output
    model = load_model(tmp_path / "m")
    assert model.training["n_cells"] is None
    assert len(model.labels) == 187
    res = runner.invoke(
        app,
        ["fit", str(path), "--perturbation-key", "label", "--pseudobulk", "--out", str(tmp_path / "x")],
    )  # fmt: skip
    assert res.exit_code == 1
    assert "no control" in res.output


def test_predict_refuses_to_overwrite(toy_h5ad, tmp_path):
    assert _fit(toy_h5ad, tmp_path / "m").exit_code == 0
    out = tmp_path / "p.csv"
    args = ["predict", str(tmp_path / "m"), "G1", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    before = out.read_bytes()
    res = runner.invoke(app, [*args[:2], "G2", "--out", str(out)])
    assert res.exit_code == 1
    assert "--overwrite" in res.output
    assert out.read_bytes() == before
    res = runner.invoke(app, [*args[:2], "G2", "--out", str(out), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() != before


def test_library_warnings_print_as_plain_lines_once(toy_h5ad, tmp_path):
    # evaluate's folds each warn that their short fit did not converge: one plain line
    args = ["evaluate", str(toy_h5ad), "--perturbation-key", "perturbation", "--factors", "2",
            "--epochs", "5", "--folds", "2", "--no-progress", "--out", str(tmp_path / "ev")]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = [x for x in res.output.splitlines() if "did not converge" in x]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("warning: the fit did not converge")
    assert "UserWarning" not in res.output


def test_n_factors_signal(toy_h5ad, tmp_path):
    args = ["fit", str(toy_h5ad), "--perturbation-key", "perturbation", "--epochs", "30"]
    res = runner.invoke(
        app, [*args, "--no-progress", "--n-factors", "signal", "-o", str(tmp_path / "s")]
    )
    assert res.exit_code == 0, res.output
    info = runner.invoke(app, ["info", str(tmp_path / "s")]).output
    assert f"{load_model(tmp_path / 's').config.n_factors} factors" in info
    res = runner.invoke(app, [*args, "--n-factors", "many", "-o", str(tmp_path / "x")])
    assert res.exit_code == 1
    assert "--n-factors must be an integer or 'signal', got 'many'" in res.output
    assert not (tmp_path / "x").exists()


def test_seed_agreement_compares_saved_fits(toy_h5ad, tmp_path):
    for seed in (0, 1):
        res = _fit(toy_h5ad, tmp_path / f"m{seed}", "--seed", str(seed))
        assert res.exit_code == 0, res.output
    dirs = [str(tmp_path / "m0"), str(tmp_path / "m1")]
    out = tmp_path / "programs.csv"
    res = runner.invoke(app, ["seed-agreement", *dirs, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 fits, 4 factors" in res.output
    assert "predicted changes: Pearson between fits" in res.output
    table = pd.read_csv(out, index_col=0)
    assert list(table.columns[:1]) in (["r_0"], ["r_1"])
    assert len(table) == 4
    assert {"median", "min", "reproduced", "top_genes"} <= set(table.columns)
    res = runner.invoke(app, ["seed-agreement", *dirs, "--out", str(out)])
    assert res.exit_code == 1
    assert "--overwrite" in res.output
    res = runner.invoke(app, ["seed-agreement", dirs[0]])
    assert res.exit_code == 1
    assert "at least two" in res.output
