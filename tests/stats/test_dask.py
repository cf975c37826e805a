"""Dask path: group statistics from lazily read arrays on a distributed cluster equal in-memory."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pertspectra.stats import CountsError, compute_group_stats

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
pytest.importorskip("zarr")

from pertspectra.stats._dask import coarsen_row_chunks, dask_group_sums, read_dask  # noqa: E402

LABELS = ["ctrl", "A", "B", "A+B", "B+A", "C", "none_detected", "rare"]
KW = {
    "perturbation_key": "p",
    "exclude_labels": ["none_detected"],
    "min_cells": 5,
    "progress": False,
}


def _screen(
    rng: np.random.Generator, n: int = 2000, g: int = 30, counts: bool = True
) -> ad.AnnData:
    labels = rng.choice(LABELS, size=n, p=[0.25, 0.15, 0.15, 0.1, 0.1, 0.14, 0.1, 0.01])
    mask = rng.random((n, g)) < 0.3
    x = (rng.poisson(20.0, (n, g)) + 1) * mask if counts else rng.gamma(1.0, 1.0, (n, g)) * mask
    x = x.astype(np.float32).astype(np.float64)  # X (float32) and the layer hold equal values
    a = ad.AnnData(
        X=sp.csr_matrix(x.astype(np.float32)),
        obs=pd.DataFrame({"p": labels}, index=[f"c{i}" for i in range(n)]),
    )
    a.var_names = [f"g{j}" for j in range(g)]
    a.layers["dense"] = x.astype(np.float64)
    return a


def _assert_same(got: ad.AnnData, want: ad.AnnData) -> None:
    assert list(got.obs_names) == list(want.obs_names)
    np.testing.assert_array_equal(got.obs["n_cells"], want.obs["n_cells"])
    for k in ("sum", "sum_squares", "weighted_sum"):
        np.testing.assert_allclose(got.layers[k], want.layers[k], rtol=1e-12, atol=0)
    np.testing.assert_allclose(got.X, want.X, rtol=1e-12, atol=0)


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def zarr_screen(tmp_path_factory):
    a = _screen(np.random.default_rng(0))
    path = tmp_path_factory.mktemp("dask") / "screen.zarr"
    a.write_zarr(path)
    return a, path


@pytest.mark.parametrize("layer", [None, "dense"])
@pytest.mark.parametrize("normalize", [None, "log1p"])
def test_zarr_on_cluster_equals_in_memory(client, zarr_screen, layer, normalize):
    mem, path = zarr_screen
    lazy = read_dask(path, chunk_size=300)
    x = lazy.X if layer is None else lazy.layers[layer]
    assert isinstance(x, da.Array)
    assert len(x.chunks[0]) > 3
    if layer is None:  # sparse X: CSR blocks
        assert sp.issparse(x.blocks[0].compute())
    kw = {**KW, "allow_counts": True} if normalize is None else KW
    want = compute_group_stats(mem, layer=layer, normalize=normalize, chunk_size=128, **kw)
    got = compute_group_stats(lazy, layer=layer, normalize=normalize, chunk_size=128, **kw)
    _assert_same(got, want)
    assert got.uns["pertspectra_stats"]["layer"] == want.uns["pertspectra_stats"]["layer"]


def test_h5ad_lazy_and_column_chunks(client, tmp_path):
    mem = _screen(np.random.default_rng(1), counts=False)
    path = tmp_path / "screen.h5ad"
    mem.write_h5ad(path)
    want = compute_group_stats(mem, **KW)
    lazy = read_dask(path, layers=["dense"], chunk_size=250)
    _assert_same(compute_group_stats(lazy, **KW), want)
    # dense Dask array with several column chunks and ragged row chunks, via from_array
    arr = da.from_array(mem.layers["dense"], chunks=((100, 700, 1, 999, 200), (7, 13, 10)))
    adata = ad.AnnData(X=arr, obs=mem.obs.copy(), var=mem.var.copy())
    _assert_same(compute_group_stats(adata, chunk_size=50, **KW), want)


def test_sparse_blocks_from_array_threaded():
    """Scipy sparse blocks on the default (local) scheduler, no cluster."""
    mem = _screen(np.random.default_rng(2), counts=False)
    x = da.from_array(sp.csr_matrix(mem.layers["dense"]), chunks=(333, -1), asarray=False)
    assert sp.issparse(x.blocks[0].compute())
    adata = ad.AnnData(X=x, obs=mem.obs.copy(), var=mem.var.copy())
    _assert_same(compute_group_stats(adata, **KW), compute_group_stats(mem, **KW))


def test_value_checks_and_counts(client, tmp_path):
    mem = _screen(np.random.default_rng(3))
    bad = mem.layers["dense"].copy()
    bad[1234, 5] = np.nan
    neg = mem.layers["dense"].copy()
    neg[1500, 2] = -1.0
    for arr, kind, cell in [(bad, "NaN or infinite", 1234), (neg, "negative", 1500)]:
        adata = ad.AnnData(
            X=da.from_array(arr, chunks=(400, -1)), obs=mem.obs.copy(), var=mem.var.copy()
        )
        with pytest.raises(ValueError, match=kind) as info:
            compute_group_stats(adata, allow_counts=True, chunk_size=1, **KW)
        assert f"first at cell {cell}," in str(info.value)
    # raw counts without normalize: refused before the full pass
    adata = ad.AnnData(
        X=da.from_array(mem.layers["dense"], chunks=(400, -1)),
        obs=mem.obs.copy(),
        var=mem.var.copy(),
    )
    with pytest.raises(CountsError, match="raw counts"):
        compute_group_stats(adata, **KW)
    adata.layers["c"] = adata.X
    with pytest.raises(CountsError, match="layer 'c'"):
        compute_group_stats(adata, layer="c", **KW)


def test_dask_group_sums_direct():
    rng = np.random.default_rng(4)
    x = rng.random((50, 4))
    codes = rng.integers(-1, 3, 50)
    sums, sq, vmax, counts_like = dask_group_sums(
        da.from_array(x, chunks=(7, 2)), codes, 3, normalize=None, target_sum=1e4, chunk_size=1
    )
    for c in range(3):
        np.testing.assert_allclose(sums[c], x[codes == c].sum(0), rtol=1e-12)
        np.testing.assert_allclose(sq[c], (x[codes == c] ** 2).sum(0), rtol=1e-12)
    assert not counts_like
    assert vmax == pytest.approx(x[:7].max())
    none = dask_group_sums(
        da.from_array(x, chunks=10), np.full(50, -1), 2, normalize=None, target_sum=1e4
    )
    assert not none[0].any()
    with pytest.raises(ValueError, match="one group index per cell"):
        dask_group_sums(da.from_array(x), codes[:-1], 3, normalize=None, target_sum=1e4)


def test_coarsen_row_chunks():
    assert coarsen_row_chunks((3, 3, 3, 3, 1), 5) == (6, 7)
    assert coarsen_row_chunks((10, 2), 5) == (12,)
    assert coarsen_row_chunks((2, 2), 10) == (4,)
    assert coarsen_row_chunks((5, 5), 1) == (5, 5)
    assert sum(coarsen_row_chunks((7,) * 13 + (2,), 20)) == 93


def test_read_dask_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_dask(tmp_path / "missing.zarr")
    mem = _screen(np.random.default_rng(5), n=50)
    mem.write_h5ad(tmp_path / "s.h5ad")
    with pytest.raises(KeyError, match="nope"):
        read_dask(tmp_path / "s.h5ad", layers=["nope"])
    assert list(read_dask(tmp_path / "s.h5ad", layers=False).layers) == []
