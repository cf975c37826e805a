"""Programs scored against gene sets: ``ulm`` (default), GSEA prerank and over-representation.

Every method scores the programs' gene loadings of :func:`program_loadings` (``W`` scaled by
the gene scaling and renormalized over genes, as the authors score them):

- ``"ulm"`` (default; decoupler's univariate linear model, :func:`ulm`; deterministic): per
  program and set, the t-value of the slope of ``log1p(G * loading)`` on set membership
  (``G`` genes, so ``G * loading`` is the fold over a uniform program; the log keeps one
  dominant gene from deciding the t-value); p two-sided from the t-distribution;
- ``"gsea"``: GSEA prerank of the loadings with the paper's settings (unweighted statistic,
  1000 permutations, seed 0; :func:`prerank_unweighted`, whose enrichment scores equal
  gseapy's); score = NES, p = ``(p_nom * n + 1) / (n + 1)`` as the authors adjust it;
- ``"ora"``: hypergeometric over-representation of the program's ``n_top`` genes;
  score = overlap / expected overlap.

Sets are cut to the model's genes before the size filter (10-300 genes, the paper's range).
``fdr`` is Benjamini-Hochberg over the sets tested for one program.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..model import FittedModel
from ._gsea import prerank_unweighted
from ._loadings import program_loadings
from ._ora import bh, overrepresentation

logger = logging.getLogger(__name__)

Method = Literal["ulm", "gsea", "ora"]
METHODS: tuple[str, ...] = ("ulm", "gsea", "ora")
TERM_COLUMNS = ["program", "gene_set", "method", "score", "p", "fdr", "set_size"]


def _as_loadings(model: FittedModel | pd.DataFrame) -> pd.DataFrame:
    if isinstance(model, FittedModel):
        return program_loadings(model)
    if not isinstance(model, pd.DataFrame):
        msg = f"expected a FittedModel or a programs x genes DataFrame, got {type(model).__name__}"
        raise TypeError(msg)
    return model


def cut_gene_sets(
    gene_sets: Mapping[str, Iterable[str]],
    genes: Iterable[str],
    *,
    min_size: int = 10,
    max_size: int | None = 300,
) -> dict[str, list[str]]:
    """Gene sets cut to ``genes``, keeping those with ``min_size``-``max_size`` genes left."""
    keep = set(map(str, genes))
    out = {}
    for name, members in gene_sets.items():
        cut = sorted(set(map(str, members)) & keep)
        if len(cut) >= min_size and (max_size is None or len(cut) <= max_size):
            out[str(name)] = cut
    return out


def top_genes(model: FittedModel | pd.DataFrame, *, n_top: int = 20) -> pd.DataFrame:
    """Each program's ``n_top`` genes by loading: tidy ``program``, ``rank``, ``gene``, ``weight``.

    ``weight`` is the gene's share of the program (see :func:`program_loadings`); ranks start
    at 1.
    """
    loadings = _as_loadings(model)
    values = loadings.to_numpy()
    n = min(n_top, values.shape[1])
    order = np.argsort(-values, axis=1, kind="stable")[:, :n]
    genes = loadings.columns.to_numpy()
    return pd.DataFrame(
        {
            "program": np.repeat(loadings.index.to_numpy(), n),
            "rank": np.tile(np.arange(1, n + 1), len(loadings)),
            "gene": genes[order].ravel(),
            "weight": np.take_along_axis(values, order, axis=1).ravel(),
        }
    )


def ulm(values: pd.DataFrame, sets: Mapping[str, Iterable[str]]) -> pd.DataFrame:
    """Univariate linear model (decoupler's ``ulm``) of every row of ``values`` on every set.

    For row ``y`` (one value per gene) and set membership ``x`` (0/1), the t-value of the
    slope of ``y ~ 1 + x`` over all genes, from the correlation ``r``:
    ``t = r sqrt((G - 2) / (1 - r^2))``, and the two-sided p-value (``G - 2`` degrees of
    freedom). One matrix product for all rows and sets. Written here rather than called from
    decoupler (2.2) because decoupler returns NaN when a set separates the values perfectly
    (``r = 1``; here ``t = inf``, ``p = 0``) and only BH-adjusted p-values; the two agree
    otherwise (tested).

    Returns
    -------
    Tidy DataFrame ``program`` (the row), ``gene_set``, ``score`` (t), ``p``.
    """
    genes = {g: i for i, g in enumerate(values.columns)}
    names = list(sets)
    member = np.zeros((len(genes), len(names)))
    for k, name in enumerate(names):
        idx = [genes[g] for g in sets[name] if g in genes]
        member[idx, k] = 1.0
    G = len(genes)
    y = values.to_numpy(dtype=np.float64)
    yc = y - y.mean(axis=1, keepdims=True)
    xc = member - member.mean(axis=0, keepdims=True)
    denom = np.sqrt((yc**2).sum(axis=1))[:, None] * np.sqrt((xc**2).sum(axis=0))[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.clip((yc @ xc) / denom, -1.0, 1.0)
        t = r * np.sqrt((G - 2) / np.maximum(1.0 - r**2, 0.0))
    t = np.where(denom > 0, t, np.nan)
    return pd.DataFrame(
        {
            "program": np.repeat(values.index.to_numpy(), len(names)),
            "gene_set": np.tile(np.array(names, dtype=object), len(values)),
            "score": t.ravel(),
            "p": 2 * sps.t.sf(np.abs(t.ravel()), G - 2),
        }
    )


def _ulm(loadings: pd.DataFrame, sets: dict[str, list[str]]) -> pd.DataFrame:
    G = loadings.shape[1]
    data = pd.DataFrame(
        np.log1p(G * loadings.to_numpy()), index=loadings.index, columns=loadings.columns
    )
    return ulm(data, sets)


def _gsea(
    loadings: pd.DataFrame, sets: dict[str, list[str]], *, permutations: int, seed: int
) -> pd.DataFrame:
    res = prerank_unweighted(loadings, sets, permutations=permutations, seed=seed)
    return pd.DataFrame(
        {
            "program": res["program"],
            "gene_set": res["gene_set"],
            "score": res["nes"],
            "p": (res["p_nominal"] * permutations + 1) / (permutations + 1),
        }
    )


def _ora(loadings: pd.DataFrame, sets: dict[str, list[str]], *, n_top: int) -> pd.DataFrame:
    top = top_genes(loadings, n_top=n_top)
    queries = {p: g["gene"].tolist() for p, g in top.groupby("program", sort=False)}
    res = overrepresentation(queries, sets, universe=loadings.columns)
    expected = res["query_size"] * res["set_size"] / res["universe_size"]
    return pd.DataFrame(
        {
            "program": res["query"],
            "gene_set": res["gene_set"],
            "score": res["overlap"] / expected,
            "p": res["p"],
        }
    )


def score_programs(
    model: FittedModel | pd.DataFrame,
    gene_sets: Mapping[str, Iterable[str]],
    *,
    method: Method = "ulm",
    min_size: int = 10,
    max_size: int | None = 300,
    n_top: int = 50,
    permutations: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Score every program's gene loadings against gene sets.

    Parameters
    ----------
    model
        A fitted model, or a programs x genes table of loadings (e.g. :func:`program_loadings`).
    gene_sets
        Name -> genes (:func:`pertspectra.priors.read_gmt`,
        :func:`pertspectra.priors.go_gene_sets_from_orgdb`).
    method
        ``"ulm"``, ``"gsea"`` or ``"ora"`` (see the module docstring).
    min_size, max_size
        Keep sets with this many of the model's genes (the paper: 10-300).
    n_top
        Top genes per program tested by ``"ora"``.
    permutations, seed
        GSEA permutations and their seed (``"gsea"`` only).

    Returns
    -------
    Tidy DataFrame ``program``, ``gene_set``, ``method``, ``score`` (positive = the set's genes
    carry the program), ``p``, ``fdr`` (BH per program), ``set_size`` (genes of the set among
    the model's), sorted by program (model order), then ``fdr`` and decreasing ``score``.
    ``"ora"`` lists only sets sharing a top gene (the others have p = 1 and are counted in the
    correction).
    """
    if method not in METHODS:
        msg = f"method must be one of {', '.join(METHODS)}; got {method!r}"
        raise ValueError(msg)
    loadings = _as_loadings(model)
    sets = cut_gene_sets(gene_sets, loadings.columns, min_size=min_size, max_size=max_size)
    if not sets:
        msg = (
            f"no gene set has {min_size}-{max_size} of the model's {loadings.shape[1]} genes "
            "(check that the gene sets use the same gene names, e.g. symbols)"
        )
        raise ValueError(msg)
    logger.info("scoring %d programs against %d gene sets (%s)", len(loadings), len(sets), method)
    if method == "ulm":
        tidy = _ulm(loadings, sets)
    elif method == "gsea":
        tidy = _gsea(loadings, sets, permutations=permutations, seed=seed)
    else:
        tidy = _ora(loadings, sets, n_top=n_top)
    tidy["fdr"] = np.nan
    for _, idx in tidy.groupby("program", sort=False).groups.items():
        p = tidy.loc[idx, "p"].to_numpy()
        n_tested = len(sets) if method == "ora" else len(p)
        tidy.loc[idx, "fdr"] = bh(np.concatenate([p, np.ones(n_tested - len(p))]))[: len(p)]
    tidy["method"] = method
    tidy["set_size"] = tidy["gene_set"].map({k: len(v) for k, v in sets.items()}).astype(int)
    order = {p: i for i, p in enumerate(loadings.index)}
    tidy["_o"] = tidy["program"].map(order)
    tidy = tidy.sort_values(["_o", "fdr", "score"], ascending=[True, True, False], kind="stable")
    return tidy[TERM_COLUMNS].reset_index(drop=True)


def best_terms(
    terms: pd.DataFrame, *, n_top: int = 3, fdr: float = 0.05, min_score: float = 0.0
) -> pd.DataFrame:
    """Each program's top terms: positive score, ``fdr`` at most ``fdr``, best first.

    Returns
    -------
    The rows of ``terms`` kept, at most ``n_top`` per program, with a ``rank`` column.
    """
    kept = terms[(terms["score"] > min_score) & (terms["fdr"] <= fdr)]
    kept = kept.sort_values(["fdr", "score"], ascending=[True, False], kind="stable")
    kept = kept.groupby("program", sort=False).head(n_top).copy()
    kept["rank"] = kept.groupby("program", sort=False).cumcount() + 1
    order = {p: i for i, p in enumerate(terms["program"].drop_duplicates())}
    kept = kept.sort_values(
        ["program", "rank"], key=lambda s: s.map(order) if s.name == "program" else s
    )
    return kept.reset_index(drop=True)


def _short(term: str) -> str:
    """``"ribosome biogenesis (GO:0042254)"`` -> ``"ribosome biogenesis"``."""
    text = str(term)
    if text.endswith(")") and " (" in text:
        text = text[: text.rindex(" (")]
    return text


def program_names(programs: Iterable[str], terms: pd.DataFrame, *, fdr: float = 0.05) -> pd.Series:
    """A name per program from its best term: ``"factor_3: ribosome biogenesis"``.

    Programs without a term at ``fdr`` keep their plain name.
    """
    best = best_terms(terms, n_top=1, fdr=fdr).set_index("program")["gene_set"]
    programs = [str(p) for p in programs]
    names = [f"{p}: {_short(best[p])}" if p in best.index else p for p in programs]
    return pd.Series(names, index=pd.Index(programs, name="program"), name="name")
