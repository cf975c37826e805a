"""Truth for the similarity benchmark: protein complexes (CORUM) and known gene-pair files.

Pairs are unordered: ``{a, b}`` is stored once as ``entity1 < entity2`` (string order),
duplicates and self-pairs dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from itertools import combinations
from pathlib import Path

import pandas as pd

from ..priors._files import read_header, split_header
from ..priors._gene_sets import filter_gene_sets

logger = logging.getLogger(__name__)

# column names in CORUM 3.0 (allComplexes.txt / coreComplexes.txt) and CORUM 4/5 exports
_ID = ("ComplexID", "complex_id")
_NAME = ("ComplexName", "complex_name")
_ORGANISM = ("Organism", "organism")
_GENES = ("subunits(Gene name)", "subunits_gene_name", "subunits(Gene names)")
_MISSING = {"", "none", "nan", "na", "-"}


def _pick(cols: Iterable[str], options: tuple[str, ...], what: str, path: Path) -> str:
    cols = list(cols)
    for o in options:
        if o in cols:
            return o
    msg = f"{path} is not a CORUM complex table: no {what} column ({' or '.join(options)})"
    raise ValueError(msg)


def read_corum(
    path: str | Path,
    *,
    organism: str | None = "Human",
    min_size: int = 2,
    max_size: int | None = None,
    universe: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    """Read CORUM complexes as gene sets of subunit gene symbols.

    Parameters
    ----------
    path
        CORUM ``allComplexes.txt`` / ``coreComplexes.txt`` (tab-separated, possibly gzipped).
    organism
        Keep complexes of this organism (``"Human"``, ``"Mouse"``, ...; case-insensitive);
        ``None`` keeps all.
    min_size, max_size
        Keep complexes with this many distinct subunit genes (after ``universe``).
    universe
        Keep only these genes before the size filter.

    Returns
    -------
    Dict ``"name (CORUM:id)"`` -> subunit genes (tidy form:
    :func:`pertspectra.priors.gene_sets_to_frame`; pairs: :func:`pairs_from_gene_sets`).
    """
    path = Path(path)
    cols, sep = split_header(read_header(path))
    id_col = _pick(cols, _ID, "complex id", path)
    name_col = _pick(cols, _NAME, "complex name", path)
    org_col = _pick(cols, _ORGANISM, "organism", path)
    gene_col = _pick(cols, _GENES, "subunit gene name", path)
    df = pd.read_csv(
        path,
        sep=sep,
        usecols=[id_col, name_col, org_col, gene_col],
        dtype=str,
        keep_default_na=False,
        quoting=3,
    )
    if organism is not None:
        found = sorted(df[org_col].unique())
        df = df[df[org_col].str.lower() == organism.lower()]
        if df.empty:
            msg = f"no {organism!r} complexes in {path} (organisms: {found[:10]})"
            raise ValueError(msg)
    sets: dict[str, list[str]] = {}
    for cid, name, genes in zip(df[id_col], df[name_col], df[gene_col], strict=True):
        subunits = [g.strip() for g in str(genes).split(";")]
        sets[f"{name} (CORUM:{cid})"] = list(
            dict.fromkeys(g for g in subunits if g.lower() not in _MISSING)
        )
    out = filter_gene_sets(sets, min_size=min_size, max_size=max_size, universe=universe)
    logger.info("%s: %d of %d complexes kept", path, len(out), len(sets))
    return out


def canonical_pairs(pairs: pd.DataFrame, *, a: str = "entity1", b: str = "entity2") -> pd.DataFrame:
    """Unordered, de-duplicated pairs without self-pairs: ``entity1 < entity2``, sorted."""
    x = pairs[a].astype(str).str.strip().to_numpy()
    y = pairs[b].astype(str).str.strip().to_numpy()
    lo = pd.Series(x).where(x <= y, y).to_numpy()
    hi = pd.Series(y).where(x <= y, x).to_numpy()
    out = pd.DataFrame({"entity1": lo, "entity2": hi})
    out = out[(out["entity1"] != out["entity2"]) & (out["entity1"] != "") & (out["entity2"] != "")]
    return out.drop_duplicates().sort_values(["entity1", "entity2"]).reset_index(drop=True)


def read_gene_pairs(path: str | Path, *, universe: Iterable[str] | None = None) -> pd.DataFrame:
    """Read a known gene-pair file (CSV or TSV with ``entity1``, ``entity2``).

    Parameters
    ----------
    path
        Pair file, e.g. the EFAAR benchmark's ``CORUM.txt`` or ``Reactome.txt``.
    universe
        Keep only pairs whose two genes are in it (e.g. the perturbed genes).

    Returns
    -------
    DataFrame ``entity1``, ``entity2`` with each unordered pair once (``entity1 < entity2``),
    no self-pairs.
    """
    path = Path(path)
    cols, sep = split_header(read_header(path))
    if "entity1" in cols and "entity2" in cols:
        a, b = "entity1", "entity2"
    elif len(cols) >= 2 and {"gene1", "gene2"} <= set(cols):
        a, b = "gene1", "gene2"
    else:
        msg = f"{path}: expected a header with entity1,entity2 (got {cols[:4]})"
        raise ValueError(msg)
    df = pd.read_csv(path, sep=sep, usecols=[a, b], dtype=str, keep_default_na=False)
    out = canonical_pairs(df, a=a, b=b)
    if universe is not None:
        keep = set(map(str, universe))
        out = out[out["entity1"].isin(keep) & out["entity2"].isin(keep)].reset_index(drop=True)
    logger.info("%s: %d unordered pairs from %d rows", path, len(out), len(df))
    return out


def pairs_from_gene_sets(sets: Mapping[str, Iterable[str]]) -> pd.DataFrame:
    """All unordered gene pairs sharing a set (e.g. a CORUM complex), de-duplicated."""
    rows = [(x, y) for genes in sets.values() for x, y in combinations(sorted(set(genes)), 2)]
    return canonical_pairs(pd.DataFrame(rows, columns=["entity1", "entity2"]))
