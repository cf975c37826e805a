"""Shared helpers of the benchmarks: a synthetic screen, a synthetic prior, memory probes.

Used by ``fit_speed.py`` and ``norman_fit.py``.

Only numpy and scipy are imported here (no anndata, no torch), so that the GPU machine, which has
no anndata, can run ``fit_speed.py``.

The synthetic screen
--------------------
``n_single`` perturbed genes (a subset of the measured genes), ``n_double`` pairs of them and a
control label; controls get ``ctrl_frac`` of the cells, the other labels share the rest evenly.
Expression looks log-normalized: entry ``(i, j)`` is non-zero with probability ``pi[c_i, j]``
(about ``density`` on average) and then equals ``level[c_i, j] * (1 + 0.25 N(0, 1))`` (clipped at
0.05). Each perturbed gene moves the logit of ``pi`` and the log of ``level`` of ~2% of the genes
and knocks its own gene down; a double adds its two singles' effects plus a small interaction.
The cell matrix is produced in fixed chunks of ``CHUNK`` cells, each from its own seed, so every
consumer (dense per-cell tensor, group statistics, a CSR ``.h5ad``) sees exactly the same cells
without ever holding more than one chunk of temporaries.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

CHUNK = 2000  # cells per generated chunk (fixed: it is part of the definition of the data)

SIZES = {
    # Norman et al. 2019 scale: ~105 single genes, ~130 doubles, controls; 5,000 HVGs
    "norman": {
        "n_cells": 80_000,
        "n_genes": 5000,
        "n_single": 105,
        "n_double": 134,
        "n_factors": 200,
        "n_edges": 200_000,
    },
    # CPU-friendly
    "small": {
        "n_cells": 10_000,
        "n_genes": 1000,
        "n_single": 30,
        "n_double": 29,
        "n_factors": 50,
        "n_edges": 8_000,
    },
}


# --------------------------------------------------------------------------------------------
# memory probes
# --------------------------------------------------------------------------------------------


def rss_bytes() -> int:
    """Current resident set size."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def hwm_bytes() -> int | None:
    """The kernel's resident high-water mark (``VmHWM``) of this process."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class PeakRSS:
    """Peak RSS during a block: kernel high-water mark if resettable, else a 1 ms sampler."""

    def __enter__(self) -> PeakRSS:
        self.start = rss_bytes()
        self.peak = self.start
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
            self.kernel = hwm_bytes() is not None
        except OSError:
            self.kernel = False
        self._stop = threading.Event()
        if not self.kernel:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.kernel:
            self.peak = max(self.peak, hwm_bytes() or 0)
        else:
            self._thread.join()
        self.end = rss_bytes()


def loadavg() -> str:
    """The 1/5/15-minute load averages as text."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# --------------------------------------------------------------------------------------------
# synthetic prior
# --------------------------------------------------------------------------------------------


def synthetic_prior(g: int, n_edges: int, seed: int = 1):
    """Symmetric ``g x g`` CSR adjacency: ``n_edges`` distinct undirected edges, weights U(0.7, 1)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n_pairs = g * (g - 1) // 2
    n_edges = min(n_edges, n_pairs)
    lin = np.unique(rng.integers(0, n_pairs, size=int(n_edges * 1.05) + 10))
    lin = rng.permutation(lin)[:n_edges]
    # invert lin = j*g - j*(j+1)/2 + (k - j - 1) for the upper-triangle pair (j, k)
    j = (g - 0.5 - np.sqrt((g - 0.5) ** 2 - 2.0 * lin)).astype(np.int64)
    j = np.clip(j, 0, g - 2)
    start = j * g - j * (j + 1) // 2
    j[lin < start] -= 1
    start = j * g - j * (j + 1) // 2
    over = lin - start + j + 1 >= g
    j[over] += 1
    start = j * g - j * (j + 1) // 2
    k = lin - start + j + 1
    w = rng.uniform(0.7, 1.0, size=lin.size)
    upper = sp.coo_matrix((w, (j, k)), shape=(g, g))
    return (upper + upper.T).tocsr()


# --------------------------------------------------------------------------------------------
# synthetic screen
# --------------------------------------------------------------------------------------------


@dataclass
class Screen:
    """A synthetic screen (see module docstring); cells are produced by :meth:`chunks`."""

    labels: list[str]  # label names; 0 is "ctrl"
    codes: np.ndarray  # (n_cells,) label index of each cell
    pi: np.ndarray  # (n_labels, g) float32 non-zero probability
    level: np.ndarray  # (n_labels, g) float32 non-zero level
    design: np.ndarray  # (n_labels, p) float32 design rows, gene encoding
    design_columns: list[str]
    genes: list[str]
    seed: int

    @property
    def n_cells(self) -> int:
        return int(self.codes.size)

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    @property
    def counts(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=len(self.labels))

    def chunks(
        self, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(first cell, label codes, dense float32 X chunk)`` for chunks in [start, stop)."""
        stop = self.n_cells if stop is None else stop
        g = self.n_genes
        for c0 in range(0, self.n_cells, CHUNK):
            c1 = min(c0 + CHUNK, self.n_cells)
            if c1 <= start or c0 >= stop:
                continue
            rng = np.random.default_rng([self.seed, 1 + c0 // CHUNK])
            codes = self.codes[c0:c1]
            u = rng.random((c1 - c0, g), dtype=np.float32)
            mask = u < self.pi[codes]
            del u
            x = np.zeros((c1 - c0, g), dtype=np.float32)
            lev = self.level[codes][mask]
            noise = rng.standard_normal(lev.size, dtype=np.float32)
            x[mask] = np.maximum(lev * (1 + 0.25 * noise), 0.05)
            yield c0, codes, x

    def group_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``S`` (labels x genes, float64) and ``w`` for the paper's 1/|C| weights."""
        import scipy.sparse as sp

        n_lab = len(self.labels)
        eta = 1.0 / self.counts[self.codes]
        S = np.zeros((n_lab, self.n_genes))
        for c0, codes, x in self.chunks():
            ind = sp.csr_matrix(
                (eta[c0 : c0 + codes.size], (codes, np.arange(codes.size))),
                shape=(n_lab, codes.size),
            )
            S += ind @ x.astype(np.float64)
        w = np.bincount(self.codes, weights=eta, minlength=n_lab)
        return S, w


def make_screen(
    n_cells: int,
    n_genes: int,
    n_single: int,
    n_double: int,
    *,
    density: float = 0.15,
    ctrl_frac: float = 0.1,
    seed: int = 0,
) -> Screen:
    """Draw a synthetic screen's labels, cell assignment and per-label parameters."""
    rng = np.random.default_rng(seed)
    g = n_genes
    genes = [f"GENE{j:05d}" for j in range(g)]
    targets = np.sort(rng.choice(g, size=n_single, replace=False))
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < n_double:
        a, b = sorted(rng.choice(n_single, size=2, replace=False).tolist())
        pairs.add((a, b))
    pair_list = sorted(pairs)
    labels = [
        "ctrl",
        *(genes[t] for t in targets),
        *(f"{genes[targets[a]]}+{genes[targets[b]]}" for a, b in pair_list),
    ]
    n_lab = len(labels)

    # cells: controls get ctrl_frac, the rest evenly (shuffled)
    n_ctrl = round(ctrl_frac * n_cells)
    rest = n_cells - n_ctrl
    codes = np.concatenate([np.zeros(n_ctrl, np.int64), 1 + np.arange(rest) % (n_lab - 1)])
    codes = rng.permutation(codes)

    # baseline: non-zero probability (mean ~density) and level per gene
    a_beta = 2.0
    base_pi = rng.beta(a_beta, a_beta * (1 - density) / density, size=g)
    base_logit = np.log(base_pi / (1 - base_pi))
    base_loglev = np.log(rng.uniform(0.5, 2.5, size=g))
    # single effects: each target moves ~2% of genes and knocks down itself
    eff_logit = np.zeros((n_single, g))
    eff_lev = np.zeros((n_single, g))
    n_hit = max(1, g // 50)
    for s, t in enumerate(targets):
        hit = rng.choice(g, size=n_hit, replace=False)
        eff_logit[s, hit] = rng.normal(0, 0.8, n_hit)
        eff_lev[s, hit] = rng.normal(0, 0.3, n_hit)
        eff_logit[s, t] = -3.0
        eff_lev[s, t] = -0.7
    logit = np.empty((n_lab, g))
    loglev = np.empty((n_lab, g))
    logit[0], loglev[0] = base_logit, base_loglev
    logit[1 : 1 + n_single] = base_logit + eff_logit
    loglev[1 : 1 + n_single] = base_loglev + eff_lev
    for r, (a, b) in enumerate(pair_list, start=1 + n_single):
        inter = np.zeros(g)
        hit = rng.choice(g, size=n_hit // 2, replace=False)
        inter[hit] = rng.normal(0, 0.5, hit.size)
        logit[r] = base_logit + eff_logit[a] + eff_logit[b] + inter
        loglev[r] = base_loglev + eff_lev[a] + eff_lev[b]
    pi = (1 / (1 + np.exp(-logit))).astype(np.float32)
    level = np.exp(loglev).astype(np.float32)

    # gene-encoding design: one column per perturbed gene, then ctrl and basal
    cols = [genes[t] for t in targets] + ["ctrl", "basal"]
    design = np.zeros((n_lab, len(cols)), np.float32)
    design[0, n_single] = 1
    design[1 : 1 + n_single, :n_single] = np.eye(n_single, dtype=np.float32)
    for r, (a, b) in enumerate(pair_list, start=1 + n_single):
        design[r, a] = design[r, b] = 1
    design[:, -1] = 1
    return Screen(
        labels=labels,
        codes=codes,
        pi=pi,
        level=level,
        design=design,
        design_columns=cols,
        genes=genes,
        seed=seed,
    )
