"""Hand-made models whose programs are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from pertspectra.design import build_design
from pertspectra.model import FittedModel, ModelConfig


def make_model(P: np.ndarray, W: np.ndarray, *, labels, genes=None, gene_scale=None, **config):
    """A FittedModel from explicit P (design columns x factors) and W (factors x genes)."""
    L, G = W.shape
    design = build_design(["ctrl", *labels])
    genes = genes or [f"g{j}" for j in range(G)]
    scale = np.ones(G) if gene_scale is None else np.asarray(gene_scale, dtype=float)
    return FittedModel(
        P=np.asarray(P, dtype=float),
        W=np.asarray(W, dtype=float),
        B=np.eye(L),
        kappa=np.array([0.5]),
        gene_scale=scale,
        genes=list(genes),
        design=design,
        config=ModelConfig(n_factors=L, **config),
    )


@pytest.fixture
def planted():
    """3 programs on disjoint gene blocks; A raises program 1, B lowers program 2."""
    G = 60
    W = np.full((3, G), 1e-6)
    W[0, :20] = 1.0
    W[1, 20:40] = 1.0
    W[2, 40:] = 1.0
    W /= W.sum(axis=0, keepdims=True)
    # design columns: A, B, ctrl, basal
    P = np.array(
        [
            [0.1, 3.0, 0.1],  # A: program 1 up
            [0.1, 0.1, 0.01],  # B: program 2 down
            [0.1, 0.1, 0.5],  # ctrl
            [1.0, 1.0, 1.0],  # basal
        ]
    )
    return make_model(P, W, labels=["A", "B"])
