r"""Simulated Perturb-seq screens with a known ground truth.

:func:`simulate_screen` draws gene programs (sparse non-negative gene loadings), gives each
single perturbation a signed effect on one or two programs, builds doubles from pairs of singles
(effects add in log space, optionally plus a genetic interaction), then draws counts per cell
(negative binomial around a library-size-scaled mean) and log-normalizes them
(``normalize_total`` to 1e4, ``log1p``), as a real screen is processed:

.. math::

    \log p_{cj} = \log a_j + \sum_k e_{ck} U_{kj} - \text{(normalisation)},\qquad
    x_{ij} \sim \mathrm{NB}(\ell_i\,p_{c(i)j},\ \theta).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._utils import default_rng

if TYPE_CHECKING:
    from anndata import AnnData

    from ._types import SeedLike


def simulate_screen(
    *,
    n_genes: int = 1000,
    n_programs: int = 10,
    n_single: int = 30,
    n_double: int = 60,
    cells_per_label: int = 100,
    n_control_cells: int = 1000,
    effect_size: tuple[float, float] = (0.7, 1.5),
    interaction_fraction: float = 0.0,
    interaction_size: float = 0.5,
    library_size: float = 8000.0,
    dispersion: float = 20.0,
    control_label: str = "ctrl",
    truth: Literal["log_additive", "pertspectra"] = "log_additive",
    seed: SeedLike = 0,
) -> AnnData:
    """Simulate a combinatorial CRISPR screen with known programs, singles and doubles.

    Parameters
    ----------
    n_genes
        Genes measured.
    n_programs
        Gene programs (each covers about ``1.5 * n_genes / n_programs`` genes).
    n_single
        Single perturbations (named ``G0``, ``G1``, ...).
    n_double
        Doubles, drawn as distinct pairs of singles (labelled ``"Ga+Gb"``).
    cells_per_label
        Mean cells per perturbation label (Poisson-distributed, at least 60).
    n_control_cells
        Control cells (label ``control_label``).
    effect_size
        Range of absolute log-scale effects of a single on a program (sign random).
    interaction_fraction
        Fraction of doubles with a genetic interaction (an extra effect on a random program).
    interaction_size
        Absolute log-scale size of such an interaction.
    library_size
        Mean total counts per cell.
    dispersion
        Negative binomial dispersion ``theta`` (variance ``mu + mu^2/theta``).
    control_label
        Label of control cells.
    truth
        ``"log_additive"`` (default): signed program effects that add in log space (the
        model is misspecified, as on real data). ``"pertspectra"``: the model's own generative
        form, for recovery tests: genes split into disjoint programs, each gene's loading on the
        simplex over a basal factor and its program (``W``), every perturbation activating one
        or two programs (CRISPRa-like, ``P >= 0``), doubles exactly ``basal + A + B``, and the
        expected log-normalized value ``nu_j * (h P) W_j``; counts are drawn so that the
        log-normalized values match it (the measured genes are part of a larger transcriptome).
    seed
        Seed or generator.

    Returns
    -------
    AnnData with log-normalized ``X`` (CSR, float32), raw counts in ``layers["counts"]``,
    ``obs["perturbation"]``, and the truth in ``uns["simulation"]``: ``programs`` (programs x
    genes), ``effects`` (labels x programs, DataFrame), ``true_mean`` (labels x genes: the
    expected log-normalized profile, DataFrame), ``interactions`` (labels of doubles with one).
    With ``truth="pertspectra"`` also ``W`` (factors x genes, basal factor first), ``P`` (design
    rows of the labels x factors) and ``gene_scale``.
    """
    gen = default_rng(seed)
    if truth == "pertspectra":
        return _simulate_model_truth(
            n_genes=n_genes,
            n_programs=n_programs,
            n_single=n_single,
            n_double=n_double,
            cells_per_label=cells_per_label,
            n_control_cells=n_control_cells,
            effect_size=effect_size,
            library_size=library_size,
            dispersion=dispersion,
            control_label=control_label,
            gen=gen,
        )
    if truth != "log_additive":
        msg = f"truth must be 'log_additive' or 'pertspectra', got {truth!r}"
        raise ValueError(msg)
    if n_double > n_single * (n_single - 1) // 2:
        msg = f"n_double={n_double} exceeds the {n_single * (n_single - 1) // 2} possible pairs"
        raise ValueError(msg)
    genes = [f"gene{j}" for j in range(n_genes)]
    log_abund = gen.normal(0.0, 1.2, n_genes)
    programs = np.zeros((n_programs, n_genes))
    size = max(3, int(1.5 * n_genes / n_programs))
    for k in range(n_programs):
        members = gen.choice(n_genes, size=size, replace=False)
        programs[k, members] = gen.uniform(0.5, 1.5, size)

    singles = [f"G{i}" for i in range(n_single)]
    eff = {}
    for name in singles:
        e = np.zeros(n_programs)
        hit = gen.choice(n_programs, size=gen.integers(1, 3), replace=False)
        e[hit] = gen.uniform(*effect_size, hit.size) * gen.choice([-1.0, 1.0], hit.size)
        eff[name] = e
    doubles = _draw_pairs(singles, n_double, gen)
    n_inter = round(interaction_fraction * n_double)
    inter_idx = (
        set(gen.choice(n_double, size=n_inter, replace=False).tolist()) if n_inter else set()
    )
    interactions = []
    for i, (a, b) in enumerate(doubles):
        e = eff[a] + eff[b]
        lab = f"{a}+{b}"
        if i in inter_idx:
            e = e.copy()
            e[gen.integers(n_programs)] += interaction_size * gen.choice([-1.0, 1.0])
            interactions.append(lab)
        eff[lab] = e
    labels = [control_label, *singles, *(f"{a}+{b}" for a, b in doubles)]
    effects = np.vstack([np.zeros(n_programs), *(eff[lab] for lab in labels[1:])])

    logits = log_abund[None, :] + effects @ programs
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)

    adata, _ = _draw_cells(
        probs,
        labels,
        genes,
        cells_per_label,
        n_control_cells,
        library_size,
        dispersion,
        gen,
        totals_from_counts=True,
    )
    true_mean = _expected_lognorm(probs, library_size, dispersion, gen)
    adata.uns["simulation"] = {
        "programs": programs,
        "effects": pd.DataFrame(
            effects, index=labels, columns=[f"program{k}" for k in range(n_programs)]
        ),
        "true_mean": pd.DataFrame(true_mean, index=labels, columns=genes),
        "interactions": np.asarray(interactions, dtype=str),
        "control_label": control_label,
    }
    return adata


def _draw_pairs(
    singles: list[str], n_double: int, gen: np.random.Generator
) -> list[tuple[str, str]]:
    pairs = list(itertools.combinations(range(len(singles)), 2))
    chosen = gen.choice(len(pairs), size=n_double, replace=False)
    # canonical order (sorted names), so labels equal pertspectra's canonical labels
    return [tuple(sorted((singles[pairs[i][0]], singles[pairs[i][1]]))) for i in chosen]


def _draw_cells(
    probs: np.ndarray,
    labels: list[str],
    genes: list[str],
    cells_per_label: int,
    n_control_cells: int,
    library_size: float,
    dispersion: float,
    gen: np.random.Generator,
    *,
    totals_from_counts: bool,
) -> tuple[AnnData, np.ndarray]:
    """Negative binomial counts per cell and their log-normalization (1e4, log1p)."""
    from anndata import AnnData

    n_cells = np.maximum(gen.poisson(cells_per_label, len(labels)), 60)
    n_cells[0] = n_control_cells
    cell_label = gen.permutation(np.repeat(np.arange(len(labels)), n_cells))
    lib = library_size * gen.lognormal(0.0, 0.3, cell_label.size)
    mu = lib[:, None] * probs[cell_label]
    counts = gen.poisson(gen.gamma(dispersion, mu / dispersion)).astype(np.float32)
    totals = counts.sum(axis=1) if totals_from_counts else lib
    lognorm = np.log1p(1e4 * counts / np.maximum(totals, 1.0)[:, None]).astype(np.float32)
    obs = pd.DataFrame(
        {
            "perturbation": pd.Categorical(
                np.asarray(labels, dtype=object)[cell_label], categories=labels
            )
        },
        index=[f"cell{i}" for i in range(cell_label.size)],
    )
    adata = AnnData(
        X=sp.csr_matrix(lognorm),
        obs=obs,
        var=pd.DataFrame(index=genes),
        layers={"counts": sp.csr_matrix(counts)},
    )
    return adata, cell_label


def _simulate_model_truth(
    *,
    n_genes: int,
    n_programs: int,
    n_single: int,
    n_double: int,
    cells_per_label: int,
    n_control_cells: int,
    effect_size: tuple[float, float],
    library_size: float,
    dispersion: float,
    control_label: str,
    gen: np.random.Generator,
) -> AnnData:
    genes = [f"gene{j}" for j in range(n_genes)]
    member = gen.integers(0, n_programs + 1, n_genes) - 1  # -1: basal factor only
    W = np.zeros((n_programs + 1, n_genes))
    frac = gen.uniform(0.4, 0.8, n_genes)
    W[0] = 1.0
    for j in np.flatnonzero(member >= 0):
        W[0, j], W[1 + member[j], j] = 1 - frac[j], frac[j]
    nu = gen.uniform(1.0, 2.5, n_genes)
    singles = [f"G{i}" for i in range(n_single)]
    rows = {}
    for name in singles:
        r = np.zeros(n_programs + 1)
        hit = gen.choice(n_programs, size=gen.integers(1, 3), replace=False)
        r[1 + hit] = gen.uniform(*effect_size, hit.size)
        rows[name] = r
    basal = np.ones(n_programs + 1)
    doubles = _draw_pairs(singles, n_double, gen)
    labels = [control_label, *singles, *(f"{a}+{b}" for a, b in doubles)]
    hp = np.vstack(
        [
            basal,
            *(basal + rows[s] for s in singles),
            *(basal + rows[a] + rows[b] for a, b in doubles),
        ]
    )
    true_mean = nu * (hp @ W)
    probs = np.expm1(true_mean) / 1e4
    if probs.sum(axis=1).max() >= 1:
        msg = "simulated genes exceed the transcriptome; use fewer genes or smaller effects"
        raise ValueError(msg)
    adata, _ = _draw_cells(
        probs,
        labels,
        genes,
        cells_per_label,
        n_control_cells,
        library_size,
        dispersion,
        gen,
        totals_from_counts=False,
    )
    adata.uns["simulation"] = {
        "programs": W[1:],
        "W": W,
        "P": pd.DataFrame(
            hp, index=labels, columns=["basal", *(f"program{k}" for k in range(n_programs))]
        ),
        "gene_scale": nu,
        "effects": pd.DataFrame(
            hp[:, 1:] - 1.0, index=labels, columns=[f"program{k}" for k in range(n_programs)]
        ),
        "true_mean": pd.DataFrame(true_mean, index=labels, columns=genes),
        "interactions": np.asarray([], dtype=str),
        "control_label": control_label,
    }
    return adata


def _expected_lognorm(
    probs: np.ndarray,
    library_size: float,
    dispersion: float,
    gen: np.random.Generator,
    n_draws: int = 400,
) -> np.ndarray:
    """Monte-Carlo expectation of the log-normalized value per label and gene."""
    lib = library_size * gen.lognormal(0.0, 0.3, n_draws)
    out = np.empty_like(probs)
    for c in range(probs.shape[0]):
        mu = lib[:, None] * probs[c][None, :]
        x = gen.poisson(gen.gamma(dispersion, mu / dispersion))
        out[c] = np.log1p(1e4 * x / np.maximum(x.sum(axis=1, keepdims=True), 1)).mean(axis=0)
    return out


def toy(*, n_genes: int = 60, n_single: int = 6, n_double: int = 4, seed: SeedLike = 0) -> AnnData:
    """A small simulated screen for examples and tests (seconds to fit).

    Parameters
    ----------
    n_genes, n_single, n_double
        Genes, single perturbations and double perturbations.
    seed
        Seed or generator.

    Returns
    -------
    As :func:`simulate_screen`, with 70 cells per label and 200 control cells.

    Examples
    --------
    >>> import pertspectra as ps
    >>> adata = ps.datasets.toy(seed=0)
    >>> adata.n_vars, adata.obs["perturbation"].nunique()
    (60, 11)
    """
    return simulate_screen(
        n_genes=n_genes,
        n_programs=4,
        n_single=n_single,
        n_double=n_double,
        cells_per_label=70,
        n_control_cells=200,
        seed=seed,
    )
