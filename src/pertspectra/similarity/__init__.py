"""Which perturbations act alike: the truth they are scored against (known complexes and pairs).

- :func:`read_corum`: CORUM complexes as gene sets of subunit symbols;
- :func:`read_gene_pairs`: benchmark gene-pair files (CORUM, HuMAP, StringDB, Reactome,
  SIGNOR pairs), unordered and de-duplicated;
- :func:`pairs_from_gene_sets`, :func:`canonical_pairs`: gene sets to unordered pairs.
"""

from __future__ import annotations

from ._pairs import canonical_pairs, pairs_from_gene_sets, read_corum, read_gene_pairs

__all__ = ["canonical_pairs", "pairs_from_gene_sets", "read_corum", "read_gene_pairs"]
