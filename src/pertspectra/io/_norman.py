"""Norman et al. 2019 (GEO GSE133344) as downloaded: 10x v2 files plus ``cell_identities.csv``.

The GEO series ships, per matrix, ``*matrix.mtx.gz`` (genes x cells, MatrixMarket coordinate
integer), ``*genes.tsv.gz`` (Ensembl id, symbol; no header), ``*barcodes.tsv.gz`` and
``*cell_identities.csv.gz`` with columns ``cell_barcode, guide_identity, read_count,
UMI_count, coverage, gemgroup, good_coverage, number_of_cells``. A ``guide_identity`` such as
``FOXA1_KLF1__FOXA1_KLF1`` holds the two targets before ``__`` joined by ``_``; ``NegCtrl*``
guides are non-targeting.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import io as spio
from scipy import sparse

from pertspectra._keys import KEYS
from pertspectra.design import CONTROL_LABEL

from ._common import IO_UNS, PERTURBATION_KEY, describe, make_names_unique, normalise_labels

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

PathLike = str | Path

_FILES = {
    "matrix": ("matrix.mtx",),
    "genes": ("genes.tsv", "features.tsv"),
    "barcodes": ("barcodes.tsv",),
    "cell_identities": ("cell_identities.csv",),
}
_IDENTITY_COLUMNS = ("cell_barcode", "guide_identity")
_NEGCTRL = re.compile(r"^NegCtrl", re.IGNORECASE)
_SUFFIX = re.compile(r"-\d+$")


def read_norman2019(
    directory_or_paths: PathLike | Mapping[str, PathLike],
    *,
    min_read_count: float | None = 100,
    min_umi: float | None = 10,
    min_total_counts: float | None = None,
    good_coverage_only: bool = False,
    prefix: str | None = None,
) -> AnnData:
    """Read the Norman et al. 2019 CRISPRa screen from its GEO files.

    Parameters
    ----------
    directory_or_paths
        A folder holding ``*matrix.mtx[.gz]``, ``*genes.tsv[.gz]`` (or ``features.tsv``),
        ``*barcodes.tsv[.gz]`` and ``*cell_identities.csv[.gz]`` (GEO prefixes such as
        ``GSE133344_filtered_`` are fine), or a mapping with keys ``"matrix"``, ``"genes"``,
        ``"barcodes"``, ``"cell_identities"`` to the individual files.
    min_read_count
        Keep cells whose guide identity has at least this many reads (``read_count``); the
        authors used 100. ``None`` disables the filter.
    min_umi
        Keep cells whose guide identity has at least this many UMIs (``UMI_count``); the
        authors used 10. ``None`` disables the filter.
    min_total_counts
        Keep cells with at least this many expression UMIs (sum over genes). Off by default;
        pass 2000 for the expression filter of the authors' analysis.
    good_coverage_only
        Keep only cells with ``good_coverage`` true.
    prefix
        When the folder holds several sets (``GSE133344_filtered_*`` and ``GSE133344_raw_*``),
        the file-name prefix of the set to read. Otherwise names containing ``filtered`` win.

    Returns
    -------
    AnnData with cells x genes raw counts in ``X`` (CSR, float32); ``var_names`` unique gene
    symbols (duplicates made unique as ``var_names_make_unique`` does, with a warning),
    ``var["gene_ids"]`` Ensembl ids and ``var["gene_symbol"]`` the original symbols;
    ``obs["perturbation"]`` (``"A"``, ``"A+B"`` with sorted targets, or ``"ctrl"``),
    ``obs["guide_identity"]`` and the other ``cell_identities`` columns, ``obs["total_counts"]``;
    ``uns["pertspectra_target_types"]`` (every target is a ``"gene"``, ``ctrl`` is
    ``"control"``) and ``uns["pertspectra_io"]`` (a summary). Cells without a guide identity,
    with an ambiguous (duplicated) identity or failing a filter are dropped and reported in
    the log and in the summary.
    """
    import anndata as ad

    paths = _resolve_paths(directory_or_paths, prefix=prefix)
    genes = _read_table(paths["genes"], sep="\t")
    if genes.shape[1] < 2:
        msg = f"{paths['genes']} must have two columns (gene id, symbol); found {genes.shape[1]}"
        raise ValueError(msg)
    barcodes = _read_table(paths["barcodes"], sep="\t").iloc[:, 0].astype(str).to_numpy()
    ident = _read_identities(paths["cell_identities"])

    cell_rows, id_rows, how = _match_barcodes(barcodes, ident)
    n_unmatched = barcodes.size - cell_rows.size
    drops: dict[str, int] = {"no_identity": int(n_unmatched)}
    if n_unmatched:
        logger.warning(
            "%d of %d barcodes have no guide identity in %s; dropped",
            n_unmatched,
            barcodes.size,
            paths["cell_identities"].name,
        )
    obs = ident.iloc[id_rows].reset_index(drop=True)
    obs.index = pd.Index(barcodes[cell_rows], name="cell_barcode")
    obs = obs.drop(columns="cell_barcode")

    keep = np.ones(len(obs), dtype=bool)
    for col, thr, name in (
        ("read_count", min_read_count, "min_read_count"),
        ("UMI_count", min_umi, "min_umi"),
    ):
        if thr is None:
            continue
        if col not in obs:
            msg = f"cell identities lack the column {col!r} needed by {name}={thr}"
            raise ValueError(msg)
        ok = pd.to_numeric(obs[col], errors="coerce").to_numpy() >= thr
        drops[name] = int((keep & ~ok).sum())
        keep &= ok
    if good_coverage_only:
        if "good_coverage" not in obs:
            msg = "cell identities lack the column 'good_coverage' needed by good_coverage_only"
            raise ValueError(msg)
        ok = obs["good_coverage"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
        drops["good_coverage"] = int((keep & ~ok).sum())
        keep &= ok

    x = _read_counts(paths["matrix"], n_genes=len(genes), n_barcodes=barcodes.size)
    rows = cell_rows[keep]
    if rows.size != x.shape[0] or np.any(rows != np.arange(rows.size)):
        x = x[rows]  # row selection copies; skipped when every cell is kept
    obs = obs.iloc[np.flatnonzero(keep)]
    total = np.asarray(x.sum(axis=1)).ravel()
    if min_total_counts is not None:
        ok = total >= min_total_counts
        drops["min_total_counts"] = int((~ok).sum())
        if not ok.all():
            x, obs, total = x[ok], obs.iloc[np.flatnonzero(ok)], total[ok]
    obs = obs.copy()
    obs["total_counts"] = total.astype(np.float32)

    first = obs["guide_identity"].astype(str).str.split("__", n=1).str[0]
    raw_labels = first.str.replace("_", "+", regex=False)
    labels, types, summary = normalise_labels(
        pd.Series(raw_labels.to_numpy(), index=obs.index),
        separator="+",
        controls=(*_negctrl_tokens(raw_labels), CONTROL_LABEL),
        detect_loci=False,
    )
    obs.insert(0, PERTURBATION_KEY, labels)
    for col in obs.columns:
        if obs[col].dtype == object:
            obs[col] = obs[col].astype("category")

    symbols = genes.iloc[:, 1].astype(str)
    var = pd.DataFrame(
        {"gene_ids": genes.iloc[:, 0].astype(str).to_numpy(), "gene_symbol": symbols.to_numpy()},
        index=make_names_unique(symbols, what="gene symbols"),
    )
    summary.update(
        source="norman2019",
        convention="norman2019",
        perturbation_key=PERTURBATION_KEY,
        barcode_matching=how,
        n_cells_dropped=dict(drops),
        filters={
            "min_read_count": _none_as_nan(min_read_count),
            "min_umi": _none_as_nan(min_umi),
            "min_total_counts": _none_as_nan(min_total_counts),
            "good_coverage_only": bool(good_coverage_only),
        },
    )
    adata = ad.AnnData(X=x, obs=obs, var=var)
    adata.uns[KEYS.target_types] = types
    adata.uns[IO_UNS] = summary
    logger.info("read Norman 2019: %s; dropped %s", describe(summary), drops)
    return adata


def _none_as_nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def _negctrl_tokens(raw_labels: pd.Series) -> list[str]:
    toks = {t for lab in pd.unique(raw_labels) for t in str(lab).split("+")}
    return sorted(t for t in toks if _NEGCTRL.match(t))


def _resolve_paths(
    directory_or_paths: PathLike | Mapping[str, PathLike], *, prefix: str | None
) -> dict[str, Path]:
    if isinstance(directory_or_paths, Mapping):
        missing = [k for k in _FILES if k not in directory_or_paths]
        if missing:
            msg = f"paths mapping lacks the key(s) {missing}; expected {list(_FILES)}"
            raise ValueError(msg)
        paths = {k: Path(directory_or_paths[k]) for k in _FILES}
    else:
        folder = Path(directory_or_paths)
        if not folder.is_dir():
            msg = f"{folder} is not a directory; pass the folder of the GEO files or a mapping"
            raise ValueError(msg)
        paths = {k: _find(folder, k, names, prefix) for k, names in _FILES.items()}
    for k, p in paths.items():
        if not p.is_file():
            msg = f"{k} file {p} does not exist"
            raise ValueError(msg)
    return paths


def _find(folder: Path, kind: str, names: tuple[str, ...], prefix: str | None) -> Path:
    hits = sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and any(p.name.endswith((n, f"{n}.gz")) for n in names)
        and (prefix is None or p.name.startswith(prefix))
    )
    if len(hits) > 1:
        filtered = [p for p in hits if "filtered" in p.name]
        hits = filtered if len(filtered) == 1 else hits
    if len(hits) != 1:
        found = ", ".join(p.name for p in hits) or "none"
        msg = (
            f"expected exactly one {kind} file ({' or '.join(names)}[.gz]) in {folder}, "
            f"found {found}; pass prefix= or a mapping of paths"
        )
        raise ValueError(msg)
    return hits[0]


def _open(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _read_table(path: Path, *, sep: str) -> pd.DataFrame:
    return pd.read_csv(path, sep=sep, header=None, dtype=str, compression="infer")


def _read_identities(path: Path) -> pd.DataFrame:
    ident = pd.read_csv(path, compression="infer")
    missing = [c for c in _IDENTITY_COLUMNS if c not in ident.columns]
    if missing:
        msg = f"{path.name} lacks the column(s) {missing}; found {list(ident.columns)}"
        raise ValueError(msg)
    ident["cell_barcode"] = ident["cell_barcode"].astype(str)
    ident = ident[ident["guide_identity"].notna()]
    key = ["cell_barcode", "gemgroup"] if "gemgroup" in ident else ["cell_barcode"]
    dup = ident.duplicated(subset=key, keep=False)
    if dup.any():
        logger.warning(
            "%d barcode(s) appear several times in %s with different identities; dropped",
            int(ident.loc[dup, "cell_barcode"].nunique()),
            path.name,
        )
        ident = ident[~dup]
    return ident.reset_index(drop=True)


def _match_barcodes(
    barcodes: np.ndarray, ident: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, str]:
    """Rows of ``barcodes`` with an identity and the matching rows of ``ident``.

    Tries the exact barcodes and, when that leaves cells unmatched, (a) the barcodes with a
    ``-N`` suffix stripped on the side(s) that carry one and (b) identities without suffix
    given ``-<gemgroup>``; keeps the best match that is unambiguous (unique on both sides).
    """
    ids = ident["cell_barcode"].to_numpy().astype(str)
    strip = np.vectorize(lambda s: _SUFFIX.sub("", s), otypes=[object])
    candidates = [("exact", barcodes, ids)]
    b_suffix = bool(barcodes.size) and bool(_SUFFIX.search(barcodes[0]))
    i_suffix = bool(ids.size) and bool(_SUFFIX.search(ids[0]))
    if b_suffix and not i_suffix and "gemgroup" in ident:
        gem = ident["gemgroup"].astype(str).str.replace(r"\.0$", "", regex=True).to_numpy()
        candidates.append(("gemgroup suffix added", barcodes, ids.astype(object) + "-" + gem))
    if b_suffix or i_suffix:
        candidates.append(
            (
                "suffix stripped",
                strip(barcodes) if b_suffix else barcodes,
                strip(ids) if i_suffix else ids,
            )
        )
    best: tuple[np.ndarray, np.ndarray, str] | None = None
    for how, left, right in candidates:
        lidx, ridx = pd.Index(left), pd.Index(right)
        if not (lidx.is_unique and ridx.is_unique):
            logger.info("barcode matching %r is ambiguous (merges gem groups); skipped", how)
            continue
        pos = ridx.get_indexer(lidx)
        rows = np.flatnonzero(pos >= 0)
        if best is None or rows.size > best[0].size:
            best = (rows, pos[rows], how)
        if rows.size == barcodes.size:
            break
    if best is None or best[0].size == 0:
        msg = (
            "no barcode of the matrix matches a cell_barcode of the cell identities "
            f"(e.g. {barcodes[:2].tolist()} vs {ids[:2].tolist()})"
        )
        raise ValueError(msg)
    return best


def _read_counts(path: Path, *, n_genes: int, n_barcodes: int) -> sparse.csr_matrix:
    """Read a 10x genes x cells MatrixMarket file as a cells x genes float32 CSR matrix."""
    with _open(path) as fh:
        coo = spio.mmread(fh)
    if not sparse.issparse(coo):
        msg = f"{path.name} is not a sparse (coordinate) MatrixMarket file"
        raise ValueError(msg)
    coo = sparse.coo_matrix(coo)
    if coo.shape != (n_genes, n_barcodes):
        msg = (
            f"{path.name} has shape {coo.shape} but the genes and barcodes files list "
            f"{n_genes} genes and {n_barcodes} barcodes (expected genes x cells)"
        )
        raise ValueError(msg)
    data = coo.data.astype(np.float32, copy=False)
    rows, cols = coo.col, coo.row
    del coo
    return sparse.csr_matrix((data, (rows, cols)), shape=(n_barcodes, n_genes))
