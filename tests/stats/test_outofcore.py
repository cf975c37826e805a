"""Out of core: backed ``.h5ad`` (sparse, dense, layers) and zarr give the in-memory statistics."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pertspectra.stats import compute_group_stats
from pertspectra.stats._chunks import get_matrix, iter_row_chunks

KW = {"perturbation_key": "p", "min_cells": 3, "progress": False}


def _screen(rng: np.random.Generator, dense: bool, n: int = 1000, g: int = 25) -> ad.AnnData:
    labels = rng.choice(["ctrl", "NT", "A", "B", "A+B", "B+ctrl"], size=n)
    counts = (rng.poisson(30.0, (n, g)) * (rng.random((n, g)) < 0.4)).astype(np.float32)
    logn = np.log1p(counts / np.maximum(counts.sum(1, keepdims=True), 1) * 1e4).astype(np.float32)
    a = ad.AnnData(
        X=logn if dense else sp.csr_matrix(logn),
        obs=pd.DataFrame({"p": pd.Categorical(labels)}, index=[f"c{i}" for i in range(n)]),
    )
    a.var_names = [f"g{j}" for j in range(g)]
    a.layers["counts"] = counts if dense else sp.csr_matrix(counts)
    return a


def _assert_same(got: ad.AnnData, want: ad.AnnData) -> None:
    assert list(got.obs_names) == list(want.obs_names)
    np.testing.assert_array_equal(got.obs["n_cells"], want.obs["n_cells"])
    for k in ("sum", "sum_squares", "weighted_sum"):
        np.testing.assert_allclose(got.layers[k], want.layers[k], rtol=1e-12, atol=0)


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize(("layer", "normalize"), [(None, None), ("counts", "log1p")])
def test_backed_h5ad_equals_in_memory(tmp_path, dense, layer, normalize):
    mem = _screen(np.random.default_rng(0), dense)
    path = tmp_path / "screen.h5ad"
    mem.write_h5ad(path)
    want = compute_group_stats(mem, layer=layer, normalize=normalize, chunk_size=10_000, **KW)
    backed = ad.read_h5ad(path, backed="r")
    try:
        got = compute_group_stats(backed, layer=layer, normalize=normalize, chunk_size=97, **KW)
    finally:
        backed.file.close()
    _assert_same(got, want)
    assert list(got.obs_names) == ["ctrl", "A", "A+B", "B"]


@pytest.mark.parametrize("dense", [False, True])
def test_backed_chunks_are_bounded(tmp_path, dense):
    """Each chunk read from a backed file holds at most ``chunk_size`` rows, as CSR or ndarray."""
    mem = _screen(np.random.default_rng(1), dense, n=500)
    path = tmp_path / "screen.h5ad"
    mem.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    try:
        for layer in (None, "counts"):
            x = get_matrix(backed, layer)
            stops = []
            for start, stop, chunk in iter_row_chunks(x, 128):
                assert chunk.shape == (stop - start, 25)
                assert stop - start <= 128
                assert isinstance(chunk, sp.csr_matrix if not dense else np.ndarray)
                stops.append(stop)
            assert stops[-1] == 500
    finally:
        backed.file.close()


@pytest.mark.parametrize("dense", [False, True])
def test_zarr_via_dask_equals_in_memory(tmp_path, dense):
    pytest.importorskip("dask.array")
    pytest.importorskip("zarr")
    from pertspectra.stats._dask import read_dask

    mem = _screen(np.random.default_rng(2), dense)
    path = tmp_path / "screen.zarr"
    mem.write_zarr(path)
    lazy = read_dask(path, chunk_size=150)
    for layer, normalize in [(None, None), ("counts", "log1p")]:
        want = compute_group_stats(mem, layer=layer, normalize=normalize, **KW)
        got = compute_group_stats(lazy, layer=layer, normalize=normalize, chunk_size=10, **KW)
        _assert_same(got, want)
