"""Perturbation -> programs, and what each program looks like (diagnostics)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..model import FittedModel, default_n_factors
from ._loadings import program_activity, program_loadings, program_sizes

#: a program is a single-gene program when one gene holds at least this share of it
SINGLE_GENE_SHARE = 0.9
#: Relative spread of the starts' objectives (``n_init > 1``) above which a fit is flagged.
STARTS_SPREAD = 0.005


def perturbation_programs(
    model: FittedModel,
    *,
    labels: Iterable[object] | None = None,
    names: pd.Series | None = None,
    n_top: int | None = None,
) -> pd.DataFrame:
    """Each perturbation's signed effect on each program, ranked by size of effect.

    Parameters
    ----------
    model
        A fitted model.
    labels
        Labels to describe; default every single perturbation.
    names
        Program -> name (:func:`program_names`), added as a ``name`` column.
    n_top
        Keep each label's ``n_top`` programs; default all.

    Returns
    -------
    Tidy DataFrame ``label``, ``program``, ``effect``, ``rank`` (1 = largest ``|effect|``) and
    ``name`` when ``names`` is given. ``effect`` is :func:`program_activity`: the expression,
    summed over genes, the label adds to (positive) or removes from the program, relative to
    control.
    """
    act = program_activity(model, labels)
    tidy = act.stack().rename("effect").reset_index()
    tidy["rank"] = (
        (-tidy["effect"].abs()).groupby(tidy["label"], sort=False).rank(method="first").astype(int)
    )
    tidy = tidy.sort_values(["label", "rank"], key=_label_order(act.index), kind="stable")
    if n_top is not None:
        tidy = tidy[tidy["rank"] <= n_top]
    if names is not None:
        tidy["name"] = tidy["program"].map(names).fillna(tidy["program"])
    return tidy.reset_index(drop=True)


def _label_order(index: pd.Index):
    order = {lab: i for i, lab in enumerate(index)}

    def key(s: pd.Series) -> pd.Series:
        return s.map(order) if s.name == "label" else s

    return key


def _pair_edges(edges: pd.DataFrame) -> set[tuple[str, str]]:
    a = edges["source"].astype(str).to_numpy()
    b = edges["target"].astype(str).to_numpy()
    return {(x, y) if x <= y else (y, x) for x, y in zip(a, b, strict=True) if x != y}


def program_diagnostics(
    model: FittedModel, *, prior: pd.DataFrame | None = None, n_top: int = 20
) -> pd.DataFrame:
    """One row per program: how big, how many genes, how far it follows the prior graph.

    Parameters
    ----------
    model
        A fitted model.
    prior
        Prior edges (``source``, ``target``, as :func:`pertspectra.priors.read_string`
        gives), to measure how many of a program's top-gene pairs are prior edges.
    n_top
        Top genes per program whose pairs are checked against the prior.

    Returns
    -------
    DataFrame indexed by program: ``size`` (:func:`program_sizes`), ``effective_genes``
    (``exp`` of the entropy of the program's renormalized loadings: 1 for a single gene, ``G``
    for a uniform program), ``top_gene``, ``top_share`` (its share of the program),
    ``single_gene`` (``top_share >= 0.9``), ``mean_abs_effect`` (mean over the single
    perturbations of ``|effect|``, see :func:`perturbation_programs`) and, with ``prior``,
    ``prior_edge_share`` (share of the top genes' pairs that are prior edges),
    ``prior_density`` (the same share over all pairs of the model's genes: what chance gives)
    and ``prior_enrichment`` (their ratio).
    """
    loadings = program_loadings(model)
    values = loadings.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(values > 0, values * np.log(values), 0.0)
    out = pd.DataFrame(index=loadings.index)
    out["size"] = program_sizes(model)
    out["effective_genes"] = np.exp(-plogp.sum(axis=1))
    top = values.argmax(axis=1)
    out["top_gene"] = loadings.columns.to_numpy()[top]
    out["top_share"] = values[np.arange(len(values)), top]
    out["single_gene"] = out["top_share"] >= SINGLE_GENE_SHARE
    act = program_activity(model)
    out["mean_abs_effect"] = act.abs().mean(axis=0).reindex(out.index).to_numpy()
    if prior is not None:
        genes = set(loadings.columns)
        pairs = {(a, b) for a, b in _pair_edges(prior) if a in genes and b in genes}
        G = len(genes)
        n = min(n_top, G)
        order = np.argsort(-values, axis=1, kind="stable")[:, :n]
        names = loadings.columns.to_numpy()
        shares = []
        for row in order:
            tops = sorted(names[row])
            total = n * (n - 1) // 2
            hits = sum(
                (tops[i], tops[j]) in pairs for i in range(len(tops)) for j in range(i + 1, n)
            )
            shares.append(hits / total if total else np.nan)
        out["prior_edge_share"] = shares
        density = len(pairs) / (G * (G - 1) / 2) if G > 1 else np.nan
        out["prior_density"] = density
        out["prior_enrichment"] = out["prior_edge_share"] / density if density else np.nan
    return out


def fit_warnings(model: FittedModel) -> list[str]:
    """What a reader must know before trusting a fit: one sentence per problem.

    Checks that the fit converged (``training["converged"]``, see
    :mod:`pertspectra.train._loop`), that the starts of ``n_init > 1`` ended within 0.5% of
    each other in objective (:data:`STARTS_SPREAD`, relative to the best), that there are fewer
    factors than genes, and that at most half of the programs are single genes
    (``top_share >= 0.9`` in :func:`program_diagnostics`). ``pertspectra fit`` prints these and
    the report shows them.
    """
    out = []
    t = model.training
    if t and not t.get("converged", False):
        out.append(
            f"The fit did not converge ({t.get('stop_reason', 'no convergence record')}): raise "
            "--max-epochs (or --cycle-epochs) before reading the programs."
        )
    ends = [float(x) for x in (t.get("init_final_losses") or [])] if t else []
    gap = (max(ends) - min(ends)) / max(abs(min(ends)), 1e-12) if len(ends) > 1 else 0.0
    if gap > STARTS_SPREAD:
        out.append(
            f"The {len(ends)} starts ended {gap:.1%} apart "
            f"in objective ({min(ends):.6g} to {max(ends):.6g}): the objective has several optima "
            "here (typical with a prior graph); the best is kept, but another seed may arrange "
            "the programs differently: compare seeds before reading single programs."
        )
    L, g = int(model.W.shape[0]), len(model.genes)
    if g <= L:
        out.append(
            f"{L} factors for {g} genes: with at least as many factors as genes a program can "
            "be a single gene; choose fewer factors (--n-factors; the default rule picks "
            f"{default_n_factors(g, n_perturbations=model.design.n_perturbations)})."
        )
    loadings = program_loadings(model).to_numpy()
    share = float((loadings.max(axis=1) >= SINGLE_GENE_SHARE).mean()) if len(loadings) else 0.0
    if share >= 0.5:
        out.append(
            f"{share:.0%} of the {L} programs are single genes (one gene holds >= 90% of the "
            "program): they describe genes, not programs; choose fewer factors (--n-factors)."
        )
    return out
