"""Build the prior graph for an AnnData and report what it covers."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pertspectra._keys import KEYS

from ._check import check_shared_genes
from ._files import read_header, split_header
from ._genes import GeneLookup, gene_lookup, harmonize_genes
from ._graph import prior_matrix, read_edge_list_detailed
from ._string import DEFAULT_MIN_SCORE, ENDS, read_string_detailed

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

_MAPPED = ("ensembl", "alias", "mangled")


@dataclass
class PriorReport:
    """What the prior graph covers.

    Attributes
    ----------
    source
        File (or ``"DataFrame"``) the edges came from.
    n_genes
        Number of genes (``var_names``).
    n_genes_with_edges
        Genes with at least one edge.
    n_edges
        Undirected edges kept (gene pairs, self-pairs excluded).
    n_perturbed
        Perturbed genes considered (non-gene targets excluded).
    perturbed_without_edges
        Perturbed genes that are measured but have no edge: the prior cannot regularize them.
    perturbed_not_measured
        Perturbed genes that are not among ``var_names`` (no row in the prior at all).
    non_gene_targets
        Perturbation targets whose type is not ``gene`` (e.g. enhancers); never given edges.
    unmapped
        Gene names absent from the source under every name tried.
    harmonized
        Counts of identifier statuses when gene tables were used (``exact``, ``alias``, ...).
    """

    source: str
    n_genes: int
    n_genes_with_edges: int
    n_edges: int
    n_perturbed: int = 0
    perturbed_without_edges: list[str] = field(default_factory=list)
    perturbed_not_measured: list[str] = field(default_factory=list)
    non_gene_targets: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    harmonized: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON- and h5ad-serialisable dict of the report."""
        return asdict(self)

    def summary(self, *, max_names: int = 20) -> str:
        """Human-readable multi-line summary."""

        def names(xs: list[str]) -> str:
            shown = ", ".join(xs[:max_names])
            return shown + (f", ... (+{len(xs) - max_names})" if len(xs) > max_names else "")

        lines = [
            f"prior graph from {self.source}",
            f"  genes with >= 1 edge : {self.n_genes_with_edges} of {self.n_genes}",
            f"  edges kept           : {self.n_edges}",
        ]
        if self.n_perturbed or self.non_gene_targets:
            lines.append(
                f"  perturbed genes      : {self.n_perturbed}, without any edge: "
                f"{len(self.perturbed_without_edges)}"
            )
            if self.perturbed_without_edges:
                lines.append(
                    f"    no edge (not regularized): {names(self.perturbed_without_edges)}"
                )
            if self.perturbed_not_measured:
                lines.append(f"    not among the genes: {names(self.perturbed_not_measured)}")
            if self.non_gene_targets:
                lines.append(f"    non-gene targets (no edges): {names(self.non_gene_targets)}")
        if self.harmonized:
            counts = ", ".join(f"{k} {v}" for k, v in self.harmonized.items() if v)
            lines.append(f"  gene names           : {counts}")
        lines.append(f"  names not in source  : {len(self.unmapped)}")
        if self.unmapped:
            lines.append(f"    {names(self.unmapped)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def is_string_file(path: str | Path) -> bool:
    """Whether ``path`` looks like a STRING links/symbol/API table (by its header)."""
    cols, _ = split_header(read_header(path))
    return any(set(e) <= set(cols) for e in ENDS)


def _gene_targets(adata: AnnData, perturbed: Iterable[str] | None) -> tuple[list[str], list[str]]:
    if perturbed is None:
        return [], []
    types = adata.uns.get(KEYS.target_types, {})
    types = dict(types) if types is not None else {}
    genes: list[str] = []
    other: list[str] = []
    for p in dict.fromkeys(str(x) for x in perturbed):
        kind = str(types.get(p, "gene")).lower()
        (genes if kind == "gene" else other).append(p)
    return genes, other


def add_prior(
    adata: AnnData,
    source: str | Path | pd.DataFrame,
    *,
    info: str | Path | None = None,
    min_score: float | None = None,
    channels: str | Iterable[str] | None = None,
    binary: bool = False,
    gene_info: str | Path | pd.DataFrame | None = None,
    genes_table: str | Path | pd.DataFrame | None = None,
    aliases_table: str | Path | pd.DataFrame | None = None,
    lookup: GeneLookup | None = None,
    perturbed: Iterable[str] | None = None,
    perturbation_key: str | None = None,
    separator: str = "+",
    controls: Iterable[str] | None = None,
    key_added: str | None = None,
) -> PriorReport:
    """Build the prior graph for ``adata`` and store it.

    Parameters
    ----------
    adata
        AnnData whose ``var_names`` (unique) index the graph; they are not changed.
    source
        STRING file (see :func:`read_string`), any ``source,target[,weight]`` edge list file,
        or such an edge DataFrame.
    info
        STRING ``protein.info`` file for a ``protein.links`` file (found beside it if omitted).
    min_score
        Minimum score on 0-1; ``None`` means :data:`DEFAULT_MIN_SCORE` (0.7, STRING's "high
        confidence") for STRING files and no threshold for other edge lists. The CLI's
        ``--min-score`` has the same default.
    channels
        STRING channels to recombine (e.g. ``"experiments,database"``); ``None``: the file's
        combined score.
    binary
        Store 1 for every edge instead of its score.
    gene_info, genes_table, aliases_table, lookup
        Gene tables (see :func:`harmonize_genes`) used to look up ``var_names`` and perturbed
        genes given as Ensembl ids, aliases or mangled names. Lookup only: ``var_names`` stay.
    perturbed
        Perturbed gene names, for the coverage report. Targets whose
        ``adata.uns["pertspectra_target_types"]`` entry is not ``"gene"`` are left out.
    perturbation_key
        ``obs`` column of perturbation labels: its targets are the perturbed genes (added to
        ``perturbed``). CLI: ``pertspectra prior --perturbation-key``.
    separator
        Separator of combined targets in those labels.
    controls
        Control labels among them (default the built-in names, see :func:`perturbed_genes`).
    key_added
        Key of ``adata.varp`` (the matrix) and ``adata.uns`` (provenance and report);
        default ``"pertspectra_prior"``.

    Returns
    -------
    The :class:`PriorReport`. Writes ``adata.varp[key_added]`` (CSR, float32, symmetric, zero
    diagonal) and ``adata.uns[key_added]`` (provenance: file, version, threshold, channels,
    counts, and the report).
    """
    key = key_added or KEYS.prior
    if min_score is not None and not 0.0 <= float(min_score) <= 1.0:
        msg = f"min_score {min_score} must be in [0, 1] (STRING's file score 700 is 0.7)"
        raise ValueError(msg)
    if perturbation_key is not None:
        perturbed = [
            *(perturbed or ()),
            *perturbed_genes(adata, perturbation_key, separator=separator, controls=controls),
        ]
    var_names = [str(v) for v in adata.var_names]
    gene_targets, other_targets = _gene_targets(adata, perturbed)

    aliases: dict[str, str] = {}
    harmonized: dict[str, int] = {}
    symbol_of: dict[str, str] = {}
    if lookup is None and any(t is not None for t in (gene_info, genes_table, aliases_table)):
        lookup = gene_lookup(
            gene_info=gene_info, genes_table=genes_table, aliases_table=aliases_table
        )
    if lookup is not None:
        table = harmonize_genes(var_names, lookup=lookup)
        harmonized = {str(k): int(v) for k, v in table["status"].value_counts(sort=False).items()}
        var_set = set(var_names)
        for name, sym, status in zip(table["input"], table["symbol"], table["status"], strict=True):
            if sym:
                symbol_of[name] = sym
            if status in _MAPPED and sym not in var_set:
                if sym in aliases:
                    logger.warning(
                        "%s and %s both map to %s; keeping %s",
                        aliases[sym],
                        name,
                        sym,
                        aliases[sym],
                    )
                else:
                    aliases[sym] = name
        perturbed_table = harmonize_genes(gene_targets, lookup=lookup)
        for name, sym in zip(gene_targets, perturbed_table["symbol"], strict=True):
            if sym and name not in var_set:  # e.g. perturbed "SEPT2" while var has SEPTIN2
                symbol_of[name] = sym
    lookup_names = set(var_names) | set(aliases)

    prov: dict[str, object]
    known: AbstractSet[str]
    if isinstance(source, pd.DataFrame):
        edges = source
        known = set(map(str, edges["source"])) | set(map(str, edges["target"]))
        prov = {"file": "DataFrame", "format": "edge_list"}
        if min_score is not None and "weight" in edges.columns:
            edges = edges[edges["weight"] >= min_score]
            prov["min_score"] = float(min_score)
    elif is_string_file(source):
        res = read_string_detailed(
            source,
            info=info,
            min_score=DEFAULT_MIN_SCORE if min_score is None else min_score,
            channels=channels,
            genes=lookup_names,
        )
        edges, known, prov = res.edges, set(res.names), dict(res.info)
    else:
        if channels is not None:
            msg = f"channels apply to STRING files only; {source} is a generic edge list"
            raise ValueError(msg)
        edges, known = read_edge_list_detailed(source, min_weight=min_score, genes=lookup_names)
        prov = {"file": str(source), "format": "edge_list"}
        if min_score is not None:
            prov["min_score"] = float(min_score)

    source_name = str(prov.get("file", "DataFrame"))
    matched = [v for v in var_names if v in known or symbol_of.get(v, v) in known]
    check_shared_genes(
        known,
        var_names,
        source=source_name,
        what="gene names",
        data="the var_names",
        n_shared=len(matched),
    )
    try:
        mat = prior_matrix(edges, var_names, binary=binary, aliases=aliases)
    except ValueError as err:
        msg = f"{source_name}: {err}"
        raise ValueError(msg) from None
    degree = mat.getnnz(axis=1)
    index = {n: i for i, n in enumerate(var_names)}
    index.update({s: index[v] for s, v in aliases.items()})

    def var_of(name: str) -> int | None:
        if name in index:
            return index[name]
        return index.get(symbol_of.get(name, ""))

    no_edge, not_measured = [], []
    for p in gene_targets:
        i = var_of(p)
        if i is None:
            not_measured.append(p)
        elif degree[i] == 0:
            no_edge.append(p)
    unmapped = [v for v in var_names if v not in known and symbol_of.get(v, v) not in known]
    report = PriorReport(
        source=str(prov.get("file", "DataFrame")),
        n_genes=len(var_names),
        n_genes_with_edges=int((degree > 0).sum()),
        n_edges=int(mat.nnz // 2),
        n_perturbed=len(gene_targets),
        perturbed_without_edges=no_edge,
        perturbed_not_measured=not_measured,
        non_gene_targets=other_targets,
        unmapped=unmapped,
        harmonized=harmonized,
    )
    adata.varp[key] = mat
    adata.uns[key] = {**prov, "binary": bool(binary), **report.to_dict()}
    if no_edge:
        logger.warning(
            "%d perturbed gene(s) have no edge in the prior: %s", len(no_edge), no_edge[:10]
        )
    return report


def perturbed_genes(
    adata: AnnData,
    perturbation_key: str,
    *,
    separator: str = "+",
    controls: Iterable[str] | None = None,
) -> list[str]:
    """The perturbation targets named in ``adata.obs[perturbation_key]`` (controls left out).

    Parameters
    ----------
    adata
        Cell-level AnnData.
    perturbation_key
        ``obs`` column of perturbation labels (``"A"``, ``"A+B"``, controls).
    separator
        Separator of combined targets.
    controls
        Control labels (e.g. ``["NT_NT"]``); ``None``: the built-in control names. Explicit
        names replace them and must match a label, as in :func:`pertspectra.fit`.

    Returns
    -------
    Target names in order of first appearance among the used labels.
    """
    from ..design import control_parser

    if perturbation_key not in adata.obs.columns:
        msg = f"perturbation_key {perturbation_key!r} is not an obs column (columns: {list(adata.obs.columns)[:10]})"
        raise KeyError(msg)
    labels = adata.obs[perturbation_key]
    values = labels.cat.categories if hasattr(labels, "cat") else labels.dropna().unique()
    used = set(labels.dropna().astype(str))
    parser = control_parser(
        sorted(used), controls=controls, separator=separator, column=f"obs[{perturbation_key!r}]"
    )
    tokens: dict[str, None] = {}
    for label in values:
        if str(label) in used:
            tokens.update(dict.fromkeys(parser.tokens(label)))
    return list(tokens)
