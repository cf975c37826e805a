"""The default number of factors follows the genes; warnings when factors cannot be programs."""

from __future__ import annotations

import numpy as np
import pytest

import pertspectra as ps
from pertspectra.design import build_design
from pertspectra.model import FittedModel, ModelConfig, default_n_factors


@pytest.mark.parametrize(
    ("n_genes", "expected"),
    [(1, 2), (19, 2), (20, 2), (29, 2), (30, 3), (74, 7), (299, 29), (366, 36), (1999, 199),
     (2000, 200), (5000, 200), (10**6, 200)],
)  # fmt: skip
def test_default_rule(n_genes, expected):
    assert default_n_factors(n_genes) == expected


@pytest.mark.parametrize(
    ("n_genes", "n_perturbations", "expected"),
    [(74, 14, 15), (74, 6, 7), (74, 0, 7), (299, 24, 29), (366, 27, 36), (20, 50, 10),
     (30, 4, 5), (3, 5, 2), (1, 1, 2), (5000, 105, 200), (5000, 400, 200), (1000, 250, 200),
     (600, 150, 151)],
)  # fmt: skip
def test_rule_gives_small_panels_a_factor_per_design_row(n_genes, n_perturbations, expected):
    # one factor per free design row (perturbations + basal) when ten genes per program gives
    # fewer, but never fewer than two genes per program on average, nor more than 200
    assert default_n_factors(n_genes, n_perturbations=n_perturbations) == expected


def test_rule_rejects_no_genes():
    with pytest.raises(ValueError, match="n_genes must be >= 1"):
        default_n_factors(0)
    with pytest.raises(ValueError, match="n_perturbations must be >= 0"):
        default_n_factors(10, n_perturbations=-1)


def test_fit_resolves_the_rule_and_warns_at_factors_ge_genes(toy_stats):
    model = ps.train.fit(toy_stats, max_epochs=60, cycle_epochs=40, progress=False)
    design = build_design([str(x) for x in toy_stats.obs_names])
    rule = default_n_factors(toy_stats.n_vars, n_perturbations=design.n_perturbations)
    assert model.config.n_factors == rule == model.W.shape[0]
    assert ModelConfig().n_factors is None
    with pytest.warns(UserWarning, match=f"60 factors for {toy_stats.n_vars} genes"):
        ps.train.fit(toy_stats, n_factors=60, max_epochs=30, cycle_epochs=20, progress=False)


def _model(W: np.ndarray) -> FittedModel:
    L, g = W.shape
    design = build_design(["ctrl", "A"], encoding="gene")
    return FittedModel(
        P=np.ones((len(design.columns), L)),
        W=W,
        B=np.eye(L),
        kappa=np.array([0.1]),
        gene_scale=np.ones(g),
        genes=[f"g{j}" for j in range(g)],
        design=design,
        config=ModelConfig(n_factors=L),
        training={"converged": True},
    )


def test_single_gene_programs_warn_and_spread_programs_do_not():
    g, L = 12, 4
    single = np.full((L, g), 1e-6)
    single[np.arange(L), np.arange(L)] = 1.0  # each factor is one gene (rest spread thinly)
    single[0, L:] = 1.0  # the remaining genes sit on factor 0, which is then not single-gene
    single /= single.sum(axis=0, keepdims=True)
    texts = ps.enrich.fit_warnings(_model(single))
    assert len(texts) == 1
    assert texts[0].startswith("75% of the 4 programs are single genes")
    spread = np.random.default_rng(0).dirichlet(np.ones(L), size=g).T
    assert ps.enrich.fit_warnings(_model(spread)) == []
    many = np.random.default_rng(0).dirichlet(np.ones(g + 1), size=g).T
    assert any("13 factors for 12 genes" in t for t in ps.enrich.fit_warnings(_model(many)))


def test_starts_that_end_apart_warn_and_the_summary_says_best_of():
    spread = np.random.default_rng(0).dirichlet(np.ones(4), size=12).T
    model = _model(spread)
    model.training["init_final_losses"] = [-687.5, -668.1, -680.0]  # 2.8% apart
    texts = ps.enrich.fit_warnings(model)
    assert len(texts) == 1
    assert texts[0].startswith("The 3 starts ended 2.8% apart in objective (-687.5 to -668.1)")
    assert "best of 3 starts, ended -687.5 to -668.1" in model.summary()
    model.training["init_final_losses"] = [-687.5, -685.0]  # 0.36%: within 0.5%
    assert ps.enrich.fit_warnings(model) == []
    model.training["init_final_losses"] = [2300.0]
    assert ps.enrich.fit_warnings(model) == []
    assert "starts" not in model.summary()
    model.training["init_final_losses"] = [0.0, 0.5]  # a best objective of 0 does not divide by 0
    assert ps.enrich.fit_warnings(model)[0].startswith("The 2 starts ended")
