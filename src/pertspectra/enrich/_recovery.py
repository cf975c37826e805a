"""The paper's interpretability test (Fig. 5): do a perturbation's programs recover its biology?

Exactly as ``protocol.md`` states the authors' protocol:

1. each program's GSEA prerank terms (:func:`score_programs` with ``method="gsea"``) kept when
   ``fdr <= 0.05`` and ``|NES| > 1``;
2. per perturbation, the ``k = 10`` programs with the largest ``|log P[pert] - log P[ctrl]|``
   (:func:`log_ratio_scores`); ``B`` = the union of their kept terms;
3. ``A`` = the terms containing the perturbed gene and at least one of its STRING neighbours
   with score > 0.8;
4. hypergeometric test with population ``M`` = the number of terms tested, ``n = |A|``,
   ``k = |B|`` draws and ``x = |A n B|`` successes, ``p = P[X >= x]``; perturbations with
   ``n < 5`` skipped; Benjamini-Hochberg across perturbations;
5. the fraction of tested perturbations with adjusted p < 0.001.

Beside it, the same test with the perturbations' programs shuffled among the perturbations (a
model whose labels were permuted): what chance gives. ``A`` uses every gene of a term (the
perturbed gene need not be measured); ``M``, ``A`` and ``B`` are counted among the terms tested.
With fewer than 500 testable terms the test has little room and the result is marked
uninformative.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..model import FittedModel
from ._loadings import log_ratio_scores, single_labels
from ._ora import bh, hypergeometric_sf

#: below this many testable terms the recovery test is marked uninformative
MIN_TERMS = 500
RECOVERY_COLUMNS = [
    "model", "shuffle", "label", "n_known", "n_model", "overlap", "p", "p_adj", "recovered"
]  # fmt: skip


@dataclass
class Recovery:
    """Result of :func:`recovery_test`.

    Attributes
    ----------
    table
        One row per perturbation and model (``"pertspectra"``, then ``"shuffled"`` with the
        shuffle number): ``n_known`` (``|A|``), ``n_model`` (``|B|``), ``overlap``, ``p``,
        ``p_adj``, ``recovered`` (``p_adj < alpha``); perturbations with ``n_known <
        min_known`` are listed with NaN p-values.
    fraction
        Share of tested perturbations recovered by the model.
    shuffled_fraction
        Mean of that share over the shuffles.
    n_terms
        Terms tested (the population ``M``).
    informative
        ``n_terms >= 500``.
    settings
        The test's parameters.
    """

    table: pd.DataFrame
    fraction: float
    shuffled_fraction: float
    n_terms: int
    informative: bool
    settings: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """One row per model: tested and recovered perturbations and the fraction."""
        t = self.table[self.table["p"].notna()]
        g = t.groupby(["model", "shuffle"], sort=False)
        per = g.agg(tested=("label", "size"), recovered=("recovered", "sum")).reset_index()
        per["fraction"] = per["recovered"] / per["tested"]
        out = per.groupby("model", sort=False).agg(
            tested=("tested", "mean"),
            recovered=("recovered", "mean"),
            fraction=("fraction", "mean"),
        )
        out["n_terms"] = self.n_terms
        out["informative"] = self.informative
        return out.reset_index()

    def __repr__(self) -> str:
        flag = "" if self.informative else f", UNINFORMATIVE (< {MIN_TERMS} terms)"
        return (
            f"Recovery(fraction={self.fraction:.3f}, shuffled={self.shuffled_fraction:.3f}, "
            f"n_terms={self.n_terms}{flag})"
        )


def known_terms(
    gene: str, term_genes: Mapping[str, set[str]], neighbours: Mapping[str, set[str]]
) -> set[str]:
    """Terms containing ``gene`` and at least one of its neighbours."""
    nb = neighbours.get(gene, set())
    return {t for t, genes in term_genes.items() if gene in genes and genes & nb}


def _neighbours(edges: pd.DataFrame, min_score: float) -> dict[str, set[str]]:
    kept = edges[edges["weight"] > min_score] if "weight" in edges else edges
    out: dict[str, set[str]] = {}
    for a, b in zip(kept["source"].astype(str), kept["target"].astype(str), strict=True):
        if a != b:
            out.setdefault(a, set()).add(b)
            out.setdefault(b, set()).add(a)
    return out


def _test(
    order: list[str],
    known: dict[str, set[str]],
    drawn: dict[str, set[str]],
    *,
    M: int,
    min_known: int,
    alpha: float,
) -> pd.DataFrame:
    rows = []
    for label in order:
        a, b = known[label], drawn[label]
        rows.append((label, len(a), len(b), len(a & b)))
    t = pd.DataFrame(rows, columns=["label", "n_known", "n_model", "overlap"])
    ok = (t["n_known"] >= min_known).to_numpy()
    p = np.full(len(t), np.nan)
    p[ok] = hypergeometric_sf(
        t.loc[ok, "overlap"].to_numpy(), M, t.loc[ok, "n_known"].to_numpy(),
        t.loc[ok, "n_model"].to_numpy(),
    )  # fmt: skip
    t["p"] = p
    t["p_adj"] = bh(p)
    t["recovered"] = t["p_adj"] < alpha
    return t


def recovery_test(
    model: FittedModel,
    terms: pd.DataFrame,
    gene_sets: Mapping[str, Iterable[str]],
    *,
    string: pd.DataFrame,
    k: int = 10,
    fdr: float = 0.05,
    min_abs_score: float = 1.0,
    string_score: float = 0.8,
    min_known: int = 5,
    alpha: float = 0.001,
    n_shuffles: int = 10,
    seed: int = 0,
) -> Recovery:
    """The paper's recovery test, with a shuffled-label baseline.

    Parameters
    ----------
    model
        A fitted model.
    terms
        :func:`score_programs` output for the GO biological-process sets (the paper uses
        ``method="gsea"``); every ``gene_set`` in it counts as tested.
    gene_sets
        The same library, whole (name -> genes, unmeasured genes included): ``A`` is built
        from it.
    string
        STRING edges (``source``, ``target``, ``weight`` on 0-1, from
        :func:`pertspectra.priors.read_string` with ``min_score <= string_score``).
    k
        Programs per perturbation.
    fdr, min_abs_score
        A program's term is kept when ``fdr <= fdr`` and ``|score| > min_abs_score``.
    string_score
        Neighbours are STRING partners with score above this.
    min_known
        Perturbations with fewer known terms are skipped.
    alpha
        Adjusted p-value below which a perturbation counts as recovered.
    n_shuffles, seed
        Shuffled-label baselines and their seed.

    Returns
    -------
    A :class:`Recovery`.
    """
    tested = list(dict.fromkeys(terms["gene_set"].astype(str)))
    if not tested:
        msg = "no terms were tested: run score_programs on the gene sets first"
        raise ValueError(msg)
    library = {str(n): set(map(str, g)) for n, g in gene_sets.items()}
    missing = [t for t in tested if t not in library]
    if missing:
        msg = f"{len(missing)} scored term(s) are not in gene_sets, e.g. {missing[0]!r}"
        raise ValueError(msg)
    term_genes = {t: library[t] for t in tested}
    kept = terms[(terms["fdr"] <= fdr) & (terms["score"].abs() > min_abs_score)]
    program_terms = {p: set(g["gene_set"].astype(str)) for p, g in kept.groupby("program")}
    labels = single_labels(model)
    scores = log_ratio_scores(model, labels)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores.to_numpy(), axis=1, kind="stable")[:, :k]
    programs = scores.columns.to_numpy()
    drawn_rows = [set().union(*(program_terms.get(p, set()) for p in programs[row])) for row in top]
    nb = _neighbours(string, string_score)
    known = {lab: known_terms(lab, term_genes, nb) for lab in labels}
    M = len(tested)
    settings = {
        "k": k, "fdr": fdr, "min_abs_score": min_abs_score, "string_score": string_score,
        "min_known": min_known, "alpha": alpha, "n_shuffles": n_shuffles, "seed": seed,
    }  # fmt: skip
    frames = []
    drawn = dict(zip(labels, drawn_rows, strict=True))
    real = _test(labels, known, drawn, M=M, min_known=min_known, alpha=alpha)
    frames.append(real.assign(model="pertspectra", shuffle=0))
    rng = np.random.default_rng(seed)
    fractions = []
    for s in range(1, n_shuffles + 1):
        perm = rng.permutation(len(labels))
        shuffled = {lab: drawn_rows[perm[i]] for i, lab in enumerate(labels)}
        t = _test(labels, known, shuffled, M=M, min_known=min_known, alpha=alpha)
        frames.append(t.assign(model="shuffled", shuffle=s))
        fractions.append(_fraction(t))
    table = pd.concat(frames, ignore_index=True)[RECOVERY_COLUMNS]
    return Recovery(
        table=table,
        fraction=_fraction(real),
        shuffled_fraction=float(np.mean(fractions)) if fractions else float("nan"),
        n_terms=M,
        informative=M >= MIN_TERMS,
        settings=settings,
    )


def _fraction(t: pd.DataFrame) -> float:
    tested = t["p"].notna()
    return float(t.loc[tested, "recovered"].mean()) if tested.any() else float("nan")
