"""Shared fixtures: seeded simulated screens and the shared real-data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import pertspectra as ps

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path | None:
    env = os.environ.get("PERTSPECTRA_SHARED_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    path = shared_data()
    if path is None:
        pytest.skip("shared real data (../shared/data) not available")
    return path


@pytest.fixture(scope="session")
def toy_adata():
    return ps.datasets.toy(rng=0)


@pytest.fixture(scope="session")
def toy_stats(toy_adata):
    return ps.stats.compute_group_stats(toy_adata, perturbation_key="perturbation", progress=False)


@pytest.fixture(scope="session")
def toy_model(toy_stats):
    return ps.train.fit(toy_stats, n_factors=6, max_epochs=300, progress=False, rng=0)
