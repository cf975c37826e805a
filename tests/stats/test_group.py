from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pertspectra.stats import CountsError, compute_group_stats, normalize_log1p


def _adata(rng, dense=False, n=300, g=12):
    labels = rng.choice(["ctrl", "A", "B", "A+B", "B+A", "none_detected"], size=n)
    x = rng.gamma(1.0, 1.0, (n, g)) * (rng.random((n, g)) < 0.5)
    a = ad.AnnData(
        X=x if dense else sp.csr_matrix(x),
        obs=pd.DataFrame({"p": labels}, index=[f"c{i}" for i in range(n)]),
    )
    a.var_names = [f"g{j}" for j in range(g)]
    return a, labels, x


def _oracle(labels, x, canon):
    out = {}
    for key in sorted(set(canon.values())):
        rows = [i for i, lab in enumerate(labels) if canon.get(lab) == key]
        out[key] = (len(rows), x[rows].sum(0), (x[rows] ** 2).sum(0))
    return out


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("chunk_size", [7, 1000])
def test_group_stats_match_bruteforce(dense, chunk_size):
    rng = np.random.default_rng(0)
    a, labels, x = _adata(rng, dense)
    stats = compute_group_stats(
        a,
        perturbation_key="p",
        exclude_labels=["none_detected"],
        min_cells=1,
        chunk_size=chunk_size,
        progress=False,
    )
    canon = {"ctrl": "ctrl", "A": "A", "B": "B", "A+B": "A+B", "B+A": "A+B"}
    want = _oracle(labels, x, canon)
    assert list(stats.obs_names) == ["ctrl", "A", "A+B", "B"]
    for key, (n, s, sq) in want.items():
        row = stats.obs_names.get_loc(key)
        assert stats.obs["n_cells"].iloc[row] == n
        np.testing.assert_allclose(stats.layers["sum"][row], s, rtol=1e-12)
        np.testing.assert_allclose(stats.layers["sum_squares"][row], sq, rtol=1e-12)
        np.testing.assert_allclose(stats.X[row], s / n, rtol=1e-12)
        np.testing.assert_allclose(stats.layers["weighted_sum"][row], s / n, rtol=1e-12)
    np.testing.assert_allclose(stats.obs["weight"], 1.0)
    uniform = compute_group_stats(
        a,
        perturbation_key="p",
        exclude_labels=["none_detected"],
        min_cells=1,
        weighting="uniform",
        progress=False,
    )
    np.testing.assert_allclose(uniform.obs["weight"], uniform.obs["n_cells"])
    np.testing.assert_allclose(uniform.layers["weighted_sum"], uniform.layers["sum"])


def test_backed_and_layer(tmp_path):
    rng = np.random.default_rng(1)
    a, _, x = _adata(rng)
    a.layers["other"] = sp.csr_matrix(x * 2)
    path = tmp_path / "screen.h5ad"
    a.write_h5ad(path)
    mem = compute_group_stats(
        a, perturbation_key="p", exclude_labels=["none_detected"], min_cells=1, progress=False
    )
    backed = ad.read_h5ad(path, backed="r")
    for layer, factor in [(None, 1.0), ("other", 2.0)]:
        st = compute_group_stats(
            backed,
            perturbation_key="p",
            exclude_labels=["none_detected"],
            min_cells=1,
            layer=layer,
            chunk_size=50,
            progress=False,
        )
        np.testing.assert_allclose(st.layers["sum"], factor * mem.layers["sum"], rtol=1e-12)


def test_normalize_streaming_matches_function():
    rng = np.random.default_rng(2)
    n, g = 200, 10
    counts = rng.poisson(20, (n, g)).astype(float)
    a = ad.AnnData(
        X=sp.csr_matrix(counts),
        obs=pd.DataFrame({"p": rng.choice(["ctrl", "A"], n)}, index=[str(i) for i in range(n)]),
    )
    with pytest.raises(CountsError, match="normalize='log1p'"):
        compute_group_stats(a, perturbation_key="p", min_cells=1, progress=False)
    st = compute_group_stats(
        a, perturbation_key="p", min_cells=1, normalize="log1p", chunk_size=33, progress=False
    )
    b = normalize_log1p(a, copy=True)
    want = np.log1p(1e4 * counts / counts.sum(1, keepdims=True))
    np.testing.assert_allclose(b.X.toarray(), want, rtol=1e-6)
    ref = compute_group_stats(b, perturbation_key="p", min_cells=1, progress=False)
    np.testing.assert_allclose(st.X, ref.X, rtol=1e-6)
    assert (
        compute_group_stats(
            a, perturbation_key="p", min_cells=1, allow_counts=True, progress=False
        ).n_obs
        == 2
    )


@pytest.mark.parametrize(
    ("bad", "match"), [(np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"), (-1.0, "negative")]
)
def test_bad_values(bad, match):
    rng = np.random.default_rng(3)
    a, _, _ = _adata(rng, dense=True)
    a.X[5, 3] = bad
    with pytest.raises(ValueError, match=match):
        compute_group_stats(a, perturbation_key="p", min_cells=1, progress=False)


def test_bad_inputs():
    rng = np.random.default_rng(4)
    a, _, _ = _adata(rng)
    with pytest.raises(KeyError, match="obs column 'nope' not found"):
        compute_group_stats(a, perturbation_key="nope", progress=False)
    with pytest.raises(KeyError, match="layer 'nope'"):
        compute_group_stats(a, perturbation_key="p", layer="nope", min_cells=1, progress=False)
    b = a.copy()
    b.obs.loc[b.obs_names[0], "p"] = np.nan
    with pytest.raises(ValueError, match="missing"):
        compute_group_stats(b, perturbation_key="p", min_cells=1, progress=False)
    c = a.copy()
    c.var_names = ["g0"] * 2 + [f"g{j}" for j in range(2, c.n_vars)]
    with pytest.raises(ValueError, match="duplicated gene names"):
        compute_group_stats(c, perturbation_key="p", min_cells=1, progress=False)
    d = a[a.obs["p"] != "ctrl"].copy()
    with pytest.raises(ValueError, match="no control cells"):
        compute_group_stats(d, perturbation_key="p", min_cells=1, progress=False)
