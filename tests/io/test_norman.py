"""read_norman2019 on tiny files written in the GEO (10x v2 + cell_identities) format."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from pertspectra._keys import KEYS
from pertspectra.design import canonical_labels
from pertspectra.io import IO_UNS, read_norman2019

GENES = [
    ("ENSG01", "FOXA1"),
    ("ENSG02", "KLF1"),
    ("ENSG03", "DUP"),
    ("ENSG04", "ZBTB10"),
    ("ENSG05", "DUP"),
]
BARCODES = [f"{s}-1" for s in ("AAAC", "AAAG", "AACC", "AAGG", "ACCC", "AGGG", "CCCC", "GGGG")]
# barcode -> (guide_identity, read_count, UMI_count); GGGG has no identity
IDENTITIES = {
    "AAAC-1": ("FOXA1_KLF1__FOXA1_KLF1", 500, 40),
    "AAAG-1": ("KLF1_FOXA1__KLF1_FOXA1", 300, 25),
    "AACC-1": ("ZBTB10_NegCtrl0__ZBTB10_NegCtrl0", 250, 30),
    "AAGG-1": ("NegCtrl0_NegCtrl0__NegCtrl0_NegCtrl0", 800, 60),
    "ACCC-1": ("NegCtrl11_NegCtrl3__NegCtrl11_NegCtrl3", 150, 12),
    "AGGG-1": ("FOXA1_NegCtrl0__FOXA1_NegCtrl0", 90, 50),  # too few reads
    "CCCC-1": ("KLF1_NegCtrl0__KLF1_NegCtrl0", 400, 5),  # too few UMIs
}
EXPECTED = {
    "AAAC-1": "FOXA1+KLF1",
    "AAAG-1": "FOXA1+KLF1",
    "AACC-1": "ZBTB10",
    "AAGG-1": "ctrl",
    "ACCC-1": "ctrl",
}


def _counts(rng: np.random.Generator) -> np.ndarray:
    """Genes x cells integer counts with some zeros."""
    x = rng.poisson(3.0, size=(len(GENES), len(BARCODES)))
    x[rng.random(x.shape) < 0.3] = 0
    x[:, 0] = 0
    x[1, 0] = 7  # a cell with a single non-zero
    return x


def _write_10x(
    folder: Path,
    counts: np.ndarray,
    *,
    barcodes: list[str] = BARCODES,
    id_barcodes: dict[str, str] | None = None,
    gemgroups: dict[str, int] | None = None,
    prefix: str = "",
) -> None:
    """Write the four files as 10x v2 / GEO do (mtx 1-based, genes x cells, gzip)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, cols = np.nonzero(counts)
    lines = [
        "%%MatrixMarket matrix coordinate integer general",
        "%",
        f"{counts.shape[0]} {counts.shape[1]} {rows.size}",
    ]
    lines += [f"{r + 1} {c + 1} {counts[r, c]}" for r, c in zip(rows, cols, strict=True)]
    with gzip.open(folder / f"{prefix}matrix.mtx.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    with gzip.open(folder / f"{prefix}genes.tsv.gz", "wt") as fh:
        fh.writelines(f"{gid}\t{sym}\n" for gid, sym in GENES)
    with gzip.open(folder / f"{prefix}barcodes.tsv.gz", "wt") as fh:
        fh.writelines(f"{b}\n" for b in barcodes)
    id_barcodes = id_barcodes or {b: b for b in IDENTITIES}
    ident = pd.DataFrame(
        [
            {
                "cell_barcode": id_barcodes[b],
                "guide_identity": g,
                "read_count": r,
                "UMI_count": u,
                "coverage": r / u,
                "gemgroup": (gemgroups or {}).get(b, 1),
                "good_coverage": u >= 10,
                "number_of_cells": 1,
            }
            for b, (g, r, u) in IDENTITIES.items()
        ]
    )
    ident.to_csv(folder / f"{prefix}cell_identities.csv.gz", index=False)


@pytest.fixture
def counts() -> np.ndarray:
    return _counts(np.random.default_rng(0))


@pytest.fixture
def norman_dir(tmp_path: Path, counts: np.ndarray) -> Path:
    _write_10x(tmp_path / "geo", counts, prefix="GSE133344_filtered_")
    return tmp_path / "geo"


def test_reads_counts_labels_and_genes(norman_dir: Path, counts: np.ndarray, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="pertspectra.io"):
        adata = read_norman2019(norman_dir)
    assert list(adata.obs_names) == list(EXPECTED)
    assert adata.obs["perturbation"].astype(str).to_dict() == EXPECTED
    assert sparse.isspmatrix_csr(adata.X) or isinstance(adata.X, sparse.csr_array)
    assert adata.X.dtype == np.float32
    cols = [BARCODES.index(b) for b in EXPECTED]
    np.testing.assert_array_equal(adata.X.toarray(), counts[:, cols].T.astype(np.float32))
    np.testing.assert_allclose(adata.obs["total_counts"], counts[:, cols].sum(axis=0))
    assert list(adata.var_names) == ["FOXA1", "KLF1", "DUP", "ZBTB10", "DUP-1"]
    assert adata.var["gene_ids"].tolist() == [g for g, _ in GENES]
    assert adata.var["gene_symbol"].tolist() == [s for _, s in GENES]
    assert adata.obs.loc["AAAC-1", "guide_identity"] == "FOXA1_KLF1__FOXA1_KLF1"
    assert adata.obs.loc["AACC-1", "UMI_count"] == 30
    assert adata.obs.loc["AAAG-1", "read_count"] == 300
    assert "duplicated" in caplog.text
    assert "no guide identity" in caplog.text
    types = adata.uns[KEYS.target_types]
    assert types == {"FOXA1": "gene", "KLF1": "gene", "ZBTB10": "gene", "ctrl": "control"}
    info = adata.uns[IO_UNS]
    assert info["n_cells_dropped"] == {"no_identity": 1, "min_read_count": 1, "min_umi": 1}
    assert info["n_combination_cells"] == 2
    _, summary = canonical_labels(adata.obs["perturbation"], min_cells=1)
    assert summary.n_cells.to_dict() == {"ctrl": 2, "FOXA1+KLF1": 2, "ZBTB10": 1}


def test_filters_are_options(norman_dir: Path, counts: np.ndarray) -> None:
    adata = read_norman2019(norman_dir, min_read_count=None, min_umi=None)
    assert adata.n_obs == len(IDENTITIES)
    assert adata.obs.loc["AGGG-1", "perturbation"] == "FOXA1"
    assert adata.obs.loc["CCCC-1", "perturbation"] == "KLF1"
    totals = counts.sum(axis=0)
    thr = float(np.median(totals[: len(IDENTITIES)]))
    kept = read_norman2019(norman_dir, min_read_count=None, min_umi=None, min_total_counts=thr)
    want = [b for b, t in zip(BARCODES, totals, strict=True) if b in IDENTITIES and t >= thr]
    assert list(kept.obs_names) == want
    assert kept.uns[IO_UNS]["n_cells_dropped"]["min_total_counts"] == len(IDENTITIES) - len(want)
    good = read_norman2019(norman_dir, min_read_count=None, min_umi=None, good_coverage_only=True)
    assert "CCCC-1" not in good.obs_names
    assert "AGGG-1" in good.obs_names


@pytest.mark.parametrize("side", ["matrix", "identities"])
def test_suffix_on_one_side_only(tmp_path: Path, counts: np.ndarray, side: str) -> None:
    if side == "matrix":  # matrix barcodes carry -1, identities do not
        _write_10x(tmp_path, counts, id_barcodes={b: b[:-2] for b in IDENTITIES})
    else:  # identities carry -1, matrix barcodes do not
        _write_10x(tmp_path, counts, barcodes=[b[:-2] for b in BARCODES])
    adata = read_norman2019(tmp_path)
    got = {b.removesuffix("-1"): v for b, v in adata.obs["perturbation"].astype(str).items()}
    assert got == {b[:-2]: v for b, v in EXPECTED.items()}
    want = "gemgroup suffix added" if side == "matrix" else "suffix stripped"
    assert adata.uns[IO_UNS]["barcode_matching"] == want
    cols = [BARCODES.index(b) for b in EXPECTED]
    np.testing.assert_array_equal(adata.X.toarray(), counts[:, cols].T)


def test_gem_groups_with_suffix_only_in_the_matrix(tmp_path: Path, counts: np.ndarray) -> None:
    # the same bead sequence in two gem groups: stripping suffixes would be ambiguous
    barcodes = [*BARCODES[:4], "AAAC-2", "AAAG-2", "AACC-2", "GGGG-1"]
    per_cell = dict(zip(IDENTITIES, barcodes, strict=False))  # identity key -> matrix barcode
    _write_10x(
        tmp_path,
        counts,
        barcodes=barcodes,
        id_barcodes={k: v[:-2] for k, v in per_cell.items()},
        gemgroups={k: int(v[-1]) for k, v in per_cell.items()},
    )
    adata = read_norman2019(tmp_path, min_read_count=None, min_umi=None)
    assert adata.uns[IO_UNS]["barcode_matching"] == "gemgroup suffix added"
    assert adata.obs.loc["AAAC-2", "guide_identity"] == IDENTITIES["ACCC-1"][0]
    assert adata.obs.loc["AAAC-1", "guide_identity"] == IDENTITIES["AAAC-1"][0]
    np.testing.assert_array_equal(adata.X.toarray()[4], counts[:, 4])


def test_mapping_of_paths(norman_dir: Path) -> None:
    p = "GSE133344_filtered_"
    paths = {
        "matrix": norman_dir / f"{p}matrix.mtx.gz",
        "genes": norman_dir / f"{p}genes.tsv.gz",
        "barcodes": norman_dir / f"{p}barcodes.tsv.gz",
        "cell_identities": norman_dir / f"{p}cell_identities.csv.gz",
    }
    adata = read_norman2019(paths)
    assert adata.n_obs == len(EXPECTED)


def test_prefers_filtered_and_prefix(tmp_path: Path, counts: np.ndarray) -> None:
    _write_10x(tmp_path, counts, prefix="GSE133344_filtered_")
    _write_10x(tmp_path, counts[:, ::-1].copy(), prefix="GSE133344_raw_")
    assert read_norman2019(tmp_path).n_obs == len(EXPECTED)
    raw = read_norman2019(tmp_path, prefix="GSE133344_raw_")
    np.testing.assert_array_equal(raw.X.toarray()[0], counts[:, ::-1][:, 0])


def test_writes_h5ad(norman_dir: Path, tmp_path: Path) -> None:
    import anndata as ad

    adata = read_norman2019(norman_dir)
    adata.write_h5ad(tmp_path / "norman.h5ad")
    back = ad.read_h5ad(tmp_path / "norman.h5ad")
    assert back.uns[KEYS.target_types] == adata.uns[KEYS.target_types]
    assert back.obs["perturbation"].tolist() == adata.obs["perturbation"].tolist()


def test_errors(tmp_path: Path, norman_dir: Path, counts: np.ndarray) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        read_norman2019(tmp_path / "nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="exactly one matrix file"):
        read_norman2019(empty)
    with pytest.raises(ValueError, match="lacks the key"):
        read_norman2019({"matrix": norman_dir / "x"})
    bad = tmp_path / "bad"
    _write_10x(bad, counts)
    pd.DataFrame({"cell_barcode": BARCODES, "guide": "x"}).to_csv(
        bad / "cell_identities.csv.gz", index=False
    )
    with pytest.raises(ValueError, match="guide_identity"):
        read_norman2019(bad)
    other = tmp_path / "other"
    _write_10x(other, counts, id_barcodes={b: f"TTTT{i}" for i, b in enumerate(IDENTITIES)})
    with pytest.raises(ValueError, match="no barcode"):
        read_norman2019(other)


def test_duplicated_identities_are_dropped(tmp_path: Path, counts: np.ndarray, caplog) -> None:
    _write_10x(tmp_path, counts)
    path = tmp_path / "cell_identities.csv.gz"
    ident = pd.read_csv(path)
    extra = ident.iloc[[0]].assign(guide_identity="ZBTB10_NegCtrl0__ZBTB10_NegCtrl0")
    pd.concat([ident, extra]).to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="pertspectra.io"):
        adata = read_norman2019(tmp_path)
    assert "AAAC-1" not in adata.obs_names
    assert adata.n_obs == len(EXPECTED) - 1
    assert "several times" in caplog.text
