"""Combinations under the effects parametrization: no double counting, knockdowns kept."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

import pertspectra as ps
from pertspectra.design import build_design
from pertspectra.model import FittedModel, ModelConfig, PertSpectraModule, load_model


def _hand_model(parametrization: str, *, on_target: bool = False) -> FittedModel:
    """Two perturbations A, B on three genes; two factors; hand-set rows."""
    design = build_design(["ctrl", "A", "B", "A+B"], encoding="gene")
    assert design.columns == ["A", "B", "ctrl", "basal"]
    if parametrization == "paper":
        # positive rows: ctrl carries what control cells have beyond basal
        P = np.array([[2.0, 1.0], [1.0, 3.0], [1.0, 1.0], [1.0, 1.0]])
    else:
        P = np.array([[0.5, -0.2], [-0.3, 0.4], [0.0, 0.0], [2.0, 2.0]])
    W = np.array([[0.7, 0.2, 0.5], [0.3, 0.8, 0.5]])
    return FittedModel(
        P=P,
        W=W,
        B=np.eye(2),
        kappa=np.array([0.1]),
        gene_scale=np.ones(3),
        genes=["A", "B", "C"],
        design=design,
        config=ModelConfig(n_factors=2, parametrization=parametrization, delta=0.0,
                           on_target=on_target if parametrization == "effects" else None),
        on_target=np.array([-1.0, -0.5, 0.0, 0.0]) if on_target else None,
        on_target_genes={"A": "A", "B": "B"} if on_target else {},
    )  # fmt: skip


def _changes(model: FittedModel) -> pd.DataFrame:
    pred = model.predict(["ctrl", "A", "B", "A+B"])
    return pred - pred.loc["ctrl"]


def test_effects_combination_adds_the_singles_changes():
    d = _changes(_hand_model("effects"))
    np.testing.assert_allclose(d.loc["A+B"], d.loc["A"] + d.loc["B"], atol=1e-12)


def test_paper_combination_counts_the_control_row_twice():
    """basal + A + B - (basal + ctrl) = (A - ctrl) + (B - ctrl) + ctrl: one ctrl row too many."""
    model = _hand_model("paper")
    d = _changes(model)
    extra = model.P[2] @ model.W  # the ctrl row's expression
    np.testing.assert_allclose(d.loc["A+B"], d.loc["A"] + d.loc["B"] + extra, atol=1e-12)
    assert np.all(extra > 0)  # so a shared knockdown is pushed up in every combination


def test_on_target_term_multiplies_only_the_target_and_is_kept_in_combinations(tmp_path):
    model = _hand_model("effects", on_target=True)
    base = _hand_model("effects")
    pred, ref = model.predict(["A", "B", "A+B"]), base.predict(["A", "B", "A+B"])
    ratio = pred / ref
    np.testing.assert_allclose(ratio.loc["A"], [np.exp(-1.0), 1.0, 1.0])
    np.testing.assert_allclose(ratio.loc["B"], [1.0, np.exp(-0.5), 1.0])
    np.testing.assert_allclose(ratio.loc["A+B"], [np.exp(-1.0), np.exp(-0.5), 1.0])
    loaded = load_model(model.save(tmp_path / "m"))
    assert loaded.on_target_genes == {"A": "A", "B": "B"}
    np.testing.assert_array_equal(loaded.predict(["A+B"]).to_numpy(), pred.loc[["A+B"]].to_numpy())


def test_torch_mean_matches_the_numpy_formula():
    cfg = ModelConfig(n_factors=3, parametrization="effects")
    module = PertSpectraModule(
        4, 5, cfg, generator=torch.Generator().manual_seed(0), dtype=torch.float64,
        on_target_gene=[2, 4, -1, -1],
    )  # fmt: skip
    with torch.no_grad():
        module.t_free.copy_(torch.tensor([-0.7, 0.3], dtype=torch.float64))
    h = torch.tensor([[1.0, 0, 0, 1], [1, 1, 0, 1], [0, 0, 1, 1]], dtype=torch.float64)
    want = ps.predict.expected_expression(
        h.numpy(), module.P.detach().numpy(), module.W.detach().numpy(),
        gene_scale=module.gene_scale.detach().numpy(), parametrization="effects",
        on_target=module.on_target.detach().numpy(), on_target_gene=np.array([2, 4, -1, -1]),
    )  # fmt: skip
    np.testing.assert_allclose(module.mean(h).detach().numpy(), want, rtol=1e-12)


def test_on_target_only_under_effects():
    with pytest.raises(ValueError, match="on_target applies to parametrization='effects'"):
        ModelConfig(parametrization="paper", on_target=True)
    assert ModelConfig(parametrization="effects").on_target is True
    assert ModelConfig().on_target is (ModelConfig().parametrization == "effects")


def test_loading_rejects_a_wrong_on_target_shape(tmp_path):
    from safetensors.numpy import load_file, save_file

    path = _hand_model("effects", on_target=True).save(tmp_path / "m")
    tensors = load_file(str(path / "model.safetensors"))
    tensors["on_target"] = np.zeros(7)
    save_file(tensors, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match="'on_target' has shape"):
        load_model(path)


def _knockdown_screen(seed: int = 0) -> ad.AnnData:
    """Pseudobulk means: six CRISPRi perturbations, each knocking its own gene down by 1.5 log
    units and moving one shared program; doubles knock both targets down."""
    rng = np.random.default_rng(seed)
    targets = [f"T{k}" for k in range(6)]
    genes = targets + [f"g{j}" for j in range(54)]
    base = rng.uniform(0.5, 2.0, len(genes))
    programs = rng.random((3, len(genes))) < 0.3
    effect = {t: 0.6 * rng.choice([-1, 1]) * programs[k % 3] for k, t in enumerate(targets)}

    def mean(label: str) -> np.ndarray:
        log = np.log(base).copy()
        for t in label.split("+") if label != "ctrl" else []:
            log += effect[t]
            log[genes.index(t)] -= 1.5
        return np.exp(log) + rng.normal(0, 0.01, len(genes))

    labels = ["ctrl", *targets, "T0+T1", "T2+T3", "T4+T5", "T0+T2", "T1+T3", "T3+T4", "T1+T5"]
    X = np.clip(np.array([mean(lab) for lab in labels]), 0.01, None)
    obs = pd.DataFrame({"label": labels}, index=labels)
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))


def test_simulated_knockdown_kept_in_an_unseen_combination():
    adata = _knockdown_screen()
    train = adata[adata.obs["label"] != "T0+T1"].copy()
    stats = ps.stats.from_pseudobulk(train, perturbation_key="label")
    model = ps.train.fit(
        stats, parametrization="effects", n_factors=4, graph=False, seed=0, progress=False
    )
    assert model.training["converged"]
    assert set(model.on_target_genes) == {f"T{k}" for k in range(6)}
    truth = np.log(adata.X[list(adata.obs_names).index("T0+T1")] / adata.X[0])
    pred = model.predict(["ctrl", "T0+T1"])
    change = np.log(pred.loc["T0+T1"] / pred.loc["ctrl"])
    for gene in ("T0", "T1"):
        j = model.genes.index(gene)
        assert change.iloc[j] < -0.5, (gene, change.iloc[j], truth[j])
        assert abs(change.iloc[j] - truth[j]) < 0.3
