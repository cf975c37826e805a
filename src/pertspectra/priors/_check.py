"""Checks of prior knowledge before any heavy work: graphs, gene universes, gene sets, pairs.

A prior adjacency ``A`` must be a square gene x gene matrix aligned to the data's genes, with
finite weights in [0, 1], symmetric (``A = A^T``) and without self-loops. Self-loops carry no
information for the graph term (the diagonal is never scored), so they are dropped with a
warning; anything else is an error that names the source and says what to do.

Gene names of a prior, a gene-set file or a gene-pair file must share genes with the data: a
file naming none of them (human symbols against Ensembl ids, mouse against human) is an error
that shows a few names of each side; partial overlap is normal and only reported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

#: Below this share of matched names, on both sides, two gene lists are different universes.
MIN_SHARED = 0.05

_HINT = (
    "are they the same kind of identifier (symbols vs Ensembl ids, human vs mouse)? "
    "ps.priors.harmonize_genes (or `pertspectra prior --gene-info`) maps ids to symbols"
)


def _examples(names: Iterable[str], n: int = 3) -> list[str]:
    out: list[str] = []
    for name in names:
        out.append(str(name))
        if len(out) == n:
            break
    return out


def check_prior_matrix(
    matrix: object,
    *,
    n_genes: int | None = None,
    source: str = "the prior graph",
) -> sp.csr_matrix:
    """Validate a prior adjacency and return it as CSR (self-loops dropped, with a warning).

    Parameters
    ----------
    matrix
        Dense or sparse square matrix.
    n_genes
        Expected side (the number of genes); ``None`` skips that check.
    source
        What the matrix is, for messages (a file, ``"varp['pertspectra_prior']"``).

    Returns
    -------
    ``scipy.sparse.csr_matrix`` (float, explicit zeros removed, zero diagonal).

    Raises
    ------
    ValueError
        Not square, wrong size, NaN or infinite weights, weights outside [0, 1], asymmetric.
    """
    mat = sp.csr_matrix(matrix, copy=True)
    if not np.issubdtype(mat.dtype, np.floating):
        mat = mat.astype(np.float32)
    if mat.shape[0] != mat.shape[1]:
        msg = f"{source} has shape {mat.shape}; a prior graph must be square (genes x genes)"
        raise ValueError(msg)
    if n_genes is not None and mat.shape[0] != n_genes:
        msg = (
            f"{source} has {mat.shape[0]} genes but the data has {n_genes}; rebuild it for "
            "these genes with `pertspectra prior` (ps.priors.add_prior)"
        )
        raise ValueError(msg)
    data = mat.data
    if not np.isfinite(data).all():
        n_bad = int((~np.isfinite(data)).sum())
        msg = f"{source} holds {n_bad} NaN or infinite weight(s); rebuild it or set them to 0"
        raise ValueError(msg)
    bad = (data < 0) | (data > 1)
    if bad.any():
        msg = (
            f"{source} holds {int(bad.sum())} weight(s) outside [0, 1] (e.g. "
            f"{data[bad][:3].tolist()}); rescale them (STRING scores 0-1000: divide by 1000) "
            "or rebuild it with --binary"
        )
        raise ValueError(msg)
    mat.eliminate_zeros()
    diag = mat.diagonal()
    n_loops = int(np.count_nonzero(diag))
    if n_loops:
        logger.warning(
            "%s has %d self-loop(s) (non-zero diagonal); dropped: the graph term never scores a "
            "gene with itself",
            source,
            n_loops,
        )
        mat.setdiag(0)
        mat.eliminate_zeros()
    diff = abs(mat - mat.T)
    if diff.nnz and diff.max() > 1e-6 * max(1.0, float(abs(mat).max())):
        n_asym = int((diff > 1e-6).nnz // 2) or 1
        msg = (
            f"{source} is not symmetric ({n_asym} gene pair(s) differ from their transpose); "
            "the prior is an undirected graph: symmetrize it (e.g. A.maximum(A.T)) or rebuild "
            "it with `pertspectra prior`"
        )
        raise ValueError(msg)
    mat.sort_indices()
    return mat


def check_shared_genes(
    names: Sequence[str] | Iterable[str],
    genes: Sequence[str] | Iterable[str],
    *,
    source: str,
    what: str = "genes",
    data: str = "the data's genes",
    n_shared: int | None = None,
) -> int:
    """Error when ``names`` (of a file) and ``genes`` (of the data) are different universes.

    Parameters
    ----------
    names
        Names a file holds (a prior's genes, every gene of a gene-set file, ...).
    genes
        The data's genes (``var_names``, perturbed genes).
    source
        The file, for the message.
    what
        What ``names`` are, for the message.
    data
        What ``genes`` are, for the message.
    n_shared
        The number of shared names when known otherwise (e.g. after looking names up in gene
        tables); default: the exact matches.

    Returns
    -------
    The number of shared names. Raises ``ValueError`` when none are shared, or when fewer than
    :data:`MIN_SHARED` of either side are (a partial overlap is normal and only logged).
    """
    names = list(dict.fromkeys(str(n) for n in names))
    genes = list(dict.fromkeys(str(g) for g in genes))
    shared = set(names) & set(genes)
    n = len(shared) if n_shared is None else int(n_shared)
    if not names or not genes:
        return n
    few = n / len(names) < MIN_SHARED and n / len(genes) < MIN_SHARED
    if n == 0 or few:
        msg = (
            f"{source}: {n} of its {len(names)} {what} match {data} ({len(genes)}); "
            f"e.g. {_examples(names)} vs {_examples(genes)}; {_HINT}"
        )
        raise ValueError(msg)
    logger.debug("%s: %d of %d %s among %s", source, n, len(genes), what, data)
    return n


def check_gene_sets(sets: Mapping[str, Iterable[str]], genes: Iterable[str], *, source: str) -> int:
    """Error when no gene set of ``source`` names a gene of ``genes``.

    Parameters
    ----------
    sets
        Set name -> genes (as read from ``source``).
    genes
        Measured genes (a model's genes, ``var_names``).
    source
        The gene-set file, for the message.

    Returns
    -------
    The number of sets that name at least one measured gene.
    """
    measured = {str(g) for g in genes}
    n_sets = sum(1 for members in sets.values() if any(str(g) in measured for g in members))
    if n_sets == 0 and sets:
        names = dict.fromkeys(str(g) for members in sets.values() for g in members)
        msg = (
            f"{source}: none of its {len(sets)} gene sets names a measured gene; e.g. "
            f"{_examples(names)} vs measured {_examples(sorted(measured))}; {_HINT}"
        )
        raise ValueError(msg)
    return n_sets


def check_pairs_named(pairs: pd.DataFrame, perturbed: Iterable[str], *, source: str) -> int:
    """Error when a gene-pair table names no perturbed gene.

    Parameters
    ----------
    pairs
        DataFrame with ``entity1``, ``entity2`` (:func:`pertspectra.similarity.read_gene_pairs`).
    perturbed
        Perturbed genes (the labels compared).
    source
        The pair file, for the message.

    Returns
    -------
    The number of pairs whose two genes are both perturbed.
    """
    targets = {str(p) for p in perturbed}
    a = pairs["entity1"].astype(str)
    b = pairs["entity2"].astype(str)
    named = a.isin(targets) | b.isin(targets)
    if len(pairs) and not named.any():
        names = dict.fromkeys([*a.head(3), *b.head(3)])
        msg = (
            f"{source}: none of its {len(pairs)} pairs names a perturbed gene; e.g. "
            f"{_examples(names)} vs perturbed {_examples(sorted(targets))}; {_HINT}"
        )
        raise ValueError(msg)
    both = int((a.isin(targets) & b.isin(targets)).sum())
    if len(pairs) and both == 0:
        logger.warning(
            "%s: no pair has both genes perturbed; its benchmark scores are empty", source
        )
    return both
