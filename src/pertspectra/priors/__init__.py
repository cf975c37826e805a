"""Prior knowledge: the STRING prior graph, gene identifiers and gene sets.

Everything becomes a tidy table first (``source``, ``target``, ``weight`` edges; ``source``,
``target`` gene sets), then, for the graph, a sparse gene x gene
matrix aligned to ``adata.var_names`` (:func:`add_prior`). All readers work offline on the files
users download (STRING, NCBI ``gene_info``, GMT, Bioconductor OrgDb/GO.db SQLite). Known
complexes and gene pairs, the truth of the similarity benchmark, are read by
:mod:`pertspectra.similarity`.
"""

from __future__ import annotations

from ._check import check_gene_sets, check_pairs_named, check_prior_matrix, check_shared_genes
from ._gene_sets import filter_gene_sets, gene_sets_to_frame, go_gene_sets_from_orgdb, read_gmt
from ._genes import GeneLookup, gene_lookup, harmonize_genes, read_gene_table
from ._graph import prior_matrix, read_edge_list
from ._prior import PriorReport, add_prior, perturbed_genes
from ._store import is_prior_file, prior_only, read_prior, write_prior
from ._string import (
    CHANNELS,
    DEFAULT_MIN_SCORE,
    STRING_PRIOR,
    combined_score,
    read_string,
    read_string_info,
)

__all__ = [
    "CHANNELS",
    "DEFAULT_MIN_SCORE",
    "STRING_PRIOR",
    "GeneLookup",
    "PriorReport",
    "add_prior",
    "check_gene_sets",
    "check_pairs_named",
    "check_prior_matrix",
    "check_shared_genes",
    "combined_score",
    "filter_gene_sets",
    "gene_lookup",
    "gene_sets_to_frame",
    "go_gene_sets_from_orgdb",
    "harmonize_genes",
    "is_prior_file",
    "perturbed_genes",
    "prior_matrix",
    "prior_only",
    "read_edge_list",
    "read_gene_table",
    "read_gmt",
    "read_prior",
    "read_string",
    "read_string_info",
    "write_prior",
]
