"""GSEA prerank with the unweighted statistic (the paper's ``weight=0``), exact and fast.

With ``weight=0`` a set's running sum steps up by ``1/n`` at each of its ``n`` genes and down
by ``1/(N-n)`` elsewhere, so its enrichment score depends only on the positions of its genes
in the ranking, and the permutation null (random gene sets of the same size, i.e. shuffled
gene labels) depends only on ``n`` and ``N``: one null per set size serves every program and
every set. That makes the paper's 1000-permutation protocol take seconds for 200 programs x
2,000 sets, where gseapy 1.3 (the same statistic, Rust core) measured 40 s per program here.
The enrichment scores equal gseapy's exactly; NES and nominal p follow GSEA's definitions
(NES = ES / mean of the same-signed null scores; p = share of same-signed null scores at
least as extreme), with their own random permutations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def _es(pos: np.ndarray, N: int) -> np.ndarray:
    """Enrichment scores from the sorted 0-based positions of each set's genes (``..., n``)."""
    n = pos.shape[-1]
    i = np.arange(1, n + 1)
    misses = pos - (i - 1)
    after = i / n - misses / (N - n)
    before = (i - 1) / n - misses / (N - n)
    hi = after.max(axis=-1)
    lo = np.minimum(before.min(axis=-1), 0.0)
    return np.where(hi > -lo, hi, lo)


def running_sum_es(ranked_in_set: Sequence[bool]) -> float:
    """The unweighted enrichment score by walking the ranking (reference implementation)."""
    hits = np.asarray(ranked_in_set, dtype=bool)
    n, N = int(hits.sum()), hits.size
    steps = np.where(hits, 1.0 / n, -1.0 / (N - n))
    walk = np.cumsum(steps)
    hi, lo = walk.max(), walk.min()
    return float(hi if hi > -lo else lo)


def _null(sizes: np.ndarray, N: int, permutations: int, seed: int) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((permutations, N)), axis=1)
    return {int(n): _es(np.sort(perms[:, :n], axis=1), N) for n in np.unique(sizes)}


def _nes_p(es: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos, neg = null[null >= 0], null[null < 0]
    nes = np.zeros_like(es)
    p = np.ones_like(es)
    up = es >= 0
    if pos.size:
        nes[up] = es[up] / pos.mean()
        p[up] = (pos[None, :] >= es[up, None]).sum(axis=1) / pos.size
    if neg.size:
        nes[~up] = -es[~up] / neg.mean()
        p[~up] = (neg[None, :] <= es[~up, None]).sum(axis=1) / neg.size
    return nes, p


def prerank_unweighted(
    values: pd.DataFrame,
    sets: Mapping[str, Sequence[str]],
    *,
    permutations: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """GSEA prerank (unweighted statistic) of every row of ``values`` against ``sets``.

    Parameters
    ----------
    values
        Rows (programs) x genes; each row is ranked in decreasing order (ties by gene order).
    sets
        Name -> genes (genes absent from ``values`` are ignored).
    permutations, seed
        Random gene sets per set size for the null, and their seed.

    Returns
    -------
    Tidy DataFrame ``program``, ``gene_set``, ``es``, ``nes``, ``p_nominal``.
    """
    genes = {g: i for i, g in enumerate(values.columns)}
    N = len(genes)
    names = list(sets)
    members = [np.array([genes[g] for g in dict.fromkeys(sets[k]) if g in genes]) for k in names]
    sizes = np.array([m.size for m in members])
    if (sizes < 1).any() or (sizes >= N).any():
        msg = "every set needs at least one and fewer than all of the ranked genes"
        raise ValueError(msg)
    null = _null(sizes, N, permutations, seed)
    by_size: dict[int, list[int]] = {}
    for k, n in enumerate(sizes):
        by_size.setdefault(int(n), []).append(k)
    mat = values.to_numpy(dtype=np.float64)
    rank = np.empty_like(mat, dtype=np.int64)
    order = np.argsort(-mat, axis=1, kind="stable")
    rank[np.arange(len(mat))[:, None], order] = np.arange(N)[None, :]
    es = np.zeros((len(mat), len(names)))
    nes = np.zeros_like(es)
    p = np.ones_like(es)
    for n, ks in by_size.items():
        idx = np.stack([members[k] for k in ks])  # sets x n
        pos = np.sort(rank[:, idx], axis=-1)  # programs x sets x n
        e = _es(pos, N)
        es[:, ks] = e
        a, b = _nes_p(e.ravel(), null[n])
        nes[:, ks] = a.reshape(e.shape)
        p[:, ks] = b.reshape(e.shape)
    return pd.DataFrame(
        {
            "program": np.repeat(values.index.to_numpy(), len(names)),
            "gene_set": np.tile(np.array(names, dtype=object), len(mat)),
            "es": es.ravel(),
            "nes": nes.ravel(),
            "p_nominal": p.ravel(),
        }
    )
