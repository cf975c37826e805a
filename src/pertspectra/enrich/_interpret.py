"""Everything a person reads about a fit's programs, in one call and one folder."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from .._utils import atomic_path, check_output_folder
from ..model import FittedModel
from ._perturbations import perturbation_programs, program_diagnostics
from ._programs import Method, best_terms, program_names, score_programs, top_genes
from ._recovery import Recovery, recovery_test

if TYPE_CHECKING:
    from anndata import AnnData

#: files written by :meth:`Programs.write`
FILES = {
    "genes": "programs.csv",
    "terms": "program_terms.csv",
    "perturbations": "perturbation_programs.csv",
    "diagnostics": "diagnostics.csv",
    "recovery": "recovery.csv",
    "recovery_summary": "recovery_summary.csv",
    "settings": "settings.json",
}


@dataclass
class Programs:
    """A fit's programs explained: top genes, terms, what each perturbation moves, diagnostics.

    Attributes
    ----------
    genes
        ``program``, ``rank``, ``gene``, ``weight`` (share of the program), ``name``: each
        program's top genes.
    terms
        :func:`score_programs` output (``program``, ``gene_set``, ``method``, ``score``, ``p``,
        ``fdr``, ``set_size``).
    perturbations
        :func:`perturbation_programs` output with program names.
    diagnostics
        :func:`program_diagnostics` output with ``name`` and the best terms.
    names
        Program -> name.
    recovery
        The paper's recovery test, when STRING edges were given.
    settings
        Options and timings.
    """

    #: The names a programs folder holds (see :meth:`write`).
    FILES: ClassVar[tuple[str, ...]] = tuple(FILES.values())

    genes: pd.DataFrame
    terms: pd.DataFrame
    perturbations: pd.DataFrame
    diagnostics: pd.DataFrame
    names: pd.Series
    recovery: Recovery | None = None
    settings: dict = field(default_factory=dict)

    def top_programs(self, label: str, *, n_top: int = 5) -> pd.DataFrame:
        """The ``n_top`` programs a perturbation moves most, with their best terms."""
        rows = self.perturbations[self.perturbations["label"] == str(label)]
        if rows.empty:
            msg = f"no perturbation {label!r} (known: {sorted(self.perturbations['label'].unique())[:10]})"
            raise KeyError(msg)
        rows = rows.nsmallest(n_top, "rank")
        out = rows.copy()
        if "top_terms" in self.diagnostics:
            out["top_terms"] = out["program"].map(self.diagnostics["top_terms"])
        return out.reset_index(drop=True)

    def write(self, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the tables into the folder ``out`` (atomically; see :data:`FILES`)."""
        out = Path(out)
        check_output_folder(out, overwrite=overwrite, allowed=self.FILES, what="a programs folder")
        with atomic_path(out, directory=True) as tmp:
            self.genes.to_csv(tmp / FILES["genes"], index=False)
            self.terms.to_csv(tmp / FILES["terms"], index=False)
            self.perturbations.to_csv(tmp / FILES["perturbations"], index=False)
            self.diagnostics.to_csv(tmp / FILES["diagnostics"])
            if self.recovery is not None:
                self.recovery.table.to_csv(tmp / FILES["recovery"], index=False)
                self.recovery.summary().to_csv(tmp / FILES["recovery_summary"], index=False)
            (tmp / FILES["settings"]).write_text(json.dumps(self.settings, indent=1, default=str))
        return out


def _top_term_text(terms: pd.DataFrame, *, n_top: int, fdr: float) -> pd.Series:
    best = best_terms(terms, n_top=n_top, fdr=fdr)
    return best.groupby("program", sort=False)["gene_set"].agg("; ".join)


def interpret_programs(
    model: FittedModel,
    gene_sets: Mapping[str, Iterable[str]],
    *,
    method: Method = "ulm",
    min_size: int = 10,
    max_size: int | None = 300,
    n_genes: int = 20,
    n_terms: int = 3,
    fdr: float = 0.05,
    prior: pd.DataFrame | None = None,
    string: pd.DataFrame | None = None,
    permutations: int = 1000,
    n_shuffles: int = 10,
    seed: int = 0,
) -> Programs:
    """Name a fit's programs by gene sets and say what each perturbation moves.

    Parameters
    ----------
    model
        A fitted model.
    gene_sets
        Name -> genes (GMT or OrgDb; for the recovery test, GO biological process).
    method
        ``"ulm"`` (default), ``"gsea"`` (the paper's protocol) or ``"ora"``; see
        :func:`score_programs`.
    min_size, max_size
        Gene-set sizes among the model's genes.
    n_genes
        Top genes listed per program.
    n_terms
        Best terms listed per program (``diagnostics["top_terms"]``).
    fdr
        Terms at most this FDR name programs.
    prior
        Prior edges for :func:`program_diagnostics`; default ``string`` when given.
    string
        STRING edges (``source``, ``target``, ``weight``): runs :func:`recovery_test`.
    permutations, n_shuffles, seed
        GSEA permutations, recovery shuffles and their seed.

    Returns
    -------
    A :class:`Programs`.
    """
    start = time.perf_counter()
    terms = score_programs(
        model,
        gene_sets,
        method=method,
        min_size=min_size,
        max_size=max_size,
        permutations=permutations,
        seed=seed,
    )
    names = program_names(model.factor_names, terms, fdr=fdr)
    genes = top_genes(model, n_top=n_genes)
    genes["name"] = genes["program"].map(names)
    diagnostics = program_diagnostics(model, prior=prior if prior is not None else string)
    diagnostics.insert(0, "name", names.reindex(diagnostics.index).to_numpy())
    diagnostics["top_terms"] = _top_term_text(terms, n_top=n_terms, fdr=fdr).reindex(
        diagnostics.index
    )
    perturbations = perturbation_programs(model, names=names)
    recovery = None
    if string is not None:
        recovery = recovery_test(
            model, terms, gene_sets, string=string, n_shuffles=n_shuffles, seed=seed
        )
    settings: dict[str, Any] = {
        "method": method,
        "min_size": min_size,
        "max_size": max_size,
        "n_gene_sets_tested": int(terms["gene_set"].nunique()),
        "fdr": fdr,
        "permutations": permutations if method == "gsea" else None,
        "seed": seed,
        "loadings": "W scaled by the gene scaling and renormalized per program",
        "seconds": round(time.perf_counter() - start, 2),
    }
    if recovery is not None:
        settings["recovery"] = {
            "fraction": recovery.fraction,
            "shuffled_fraction": recovery.shuffled_fraction,
            "n_terms": recovery.n_terms,
            "informative": recovery.informative,
        } | recovery.settings
    return Programs(
        genes=genes,
        terms=terms,
        perturbations=perturbations,
        diagnostics=diagnostics,
        names=names,
        recovery=recovery,
        settings=settings,
    )


def h5ad_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text columns hold only strings (missing text as ``""``), as h5ad needs."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: "" if v is None or v != v else str(v))
    return out


def store_programs(adata: AnnData, programs: Programs, *, key_added: str = "pertspectra") -> None:
    """Store a :class:`Programs` in ``adata.uns[f"{key_added}_programs"]`` (h5ad-safe).

    Parameters
    ----------
    adata
        Any AnnData (usually the one the fit was stored on).
    programs
        :func:`interpret_programs` output.
    key_added
        Prefix of the slot; read back with :mod:`pertspectra.get`.

    Returns
    -------
    ``None``. The slot holds DataFrames ``genes``, ``terms``, ``perturbations``,
    ``diagnostics`` (``program`` a column), ``recovery`` (when run) and ``settings`` (JSON
    text).
    """
    block: dict[str, Any] = {
        "genes": h5ad_safe(programs.genes),
        "terms": h5ad_safe(programs.terms),
        "perturbations": h5ad_safe(programs.perturbations),
        "diagnostics": h5ad_safe(programs.diagnostics.reset_index()),
        "settings": json.dumps(programs.settings, default=str),
    }
    if programs.recovery is not None:
        block["recovery"] = h5ad_safe(programs.recovery.table)
    adata.uns[f"{key_added}_programs"] = block
