"""Which perturbations act alike: embeddings, similarities, clusters, and the truth they are scored against.

- :func:`embedding`, :func:`data_embedding`: one row per single perturbation (``P`` rows,
  program or gene change from control, or the observed change and its PCA), see
  :data:`EMBEDDINGS`;
- :func:`similarity_matrix`, :func:`distance_matrix`: correlation, cosine or Euclidean
  similarity of the rows (:data:`METRICS`);
- :func:`score_pairs`, :func:`benchmark_pairs`: average precision, best F1 and EFAAR tail
  recall against known gene pairs, with a label-permutation p-value;
  :func:`score_pairs_authors`: the PertSpectra authors' score;
  :func:`precision_recall_curves`: the curves behind the average precision; :func:`positive_pairs`: the
  known pairs among some labels;
- :func:`cluster`, :func:`similarity_linkage`: hierarchical clusters of perturbations;
  :func:`cluster_terms`, :func:`cluster_summary`: what each cluster's genes share;
- :func:`store_similarity`: results on an AnnData (read by :mod:`pertspectra.get`);
- :func:`read_corum`: CORUM complexes as gene sets of subunit symbols;
- :func:`read_gene_pairs`: benchmark gene-pair files (CORUM, HuMAP, StringDB, Reactome,
  SIGNOR pairs), unordered and de-duplicated;
- :func:`pairs_from_gene_sets`, :func:`canonical_pairs`: gene sets to unordered pairs;
- for a model fitted under several conditions: :func:`condition_embeddings` (each condition's
  view), :func:`condition_data` (per-condition statistics split by condition),
  :func:`stack_conditions` / :func:`split_conditions` (tables with a ``condition`` level) and
  :func:`condition_agreement` (does a perturbation do the same in two conditions).
"""

from __future__ import annotations

from ._benchmark import (
    benchmark_pairs,
    positive_pairs,
    score_pairs,
    score_pairs_authors,
)
from ._cluster import cluster, cluster_summary, cluster_terms, similarity_linkage
from ._conditions import (
    condition_agreement,
    condition_data,
    condition_embeddings,
    split_conditions,
    stack_conditions,
)
from ._curves import precision_recall_curves
from ._distance import METRICS, distance_matrix, similarity_matrix
from ._embed import EMBEDDINGS, data_embedding, embedding
from ._pairs import canonical_pairs, pairs_from_gene_sets, read_corum, read_gene_pairs
from ._store import store_similarity

__all__ = [
    "EMBEDDINGS",
    "METRICS",
    "benchmark_pairs",
    "canonical_pairs",
    "cluster",
    "cluster_summary",
    "cluster_terms",
    "condition_agreement",
    "condition_data",
    "condition_embeddings",
    "data_embedding",
    "distance_matrix",
    "embedding",
    "pairs_from_gene_sets",
    "positive_pairs",
    "precision_recall_curves",
    "read_corum",
    "read_gene_pairs",
    "score_pairs",
    "score_pairs_authors",
    "similarity_linkage",
    "similarity_matrix",
    "split_conditions",
    "stack_conditions",
    "store_similarity",
]
