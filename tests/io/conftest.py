"""Fixtures of the io tests: the shared real screens (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data_dir() -> Path:
    """``$PERTSPECTRA_SHARED_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("PERTSPECTRA_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def screen_path():
    """Return a function giving the path of a shared screen, skipping when it is absent."""

    def _get(name: str) -> Path:
        path = shared_data_dir() / "screens" / name
        if not path.is_file():
            pytest.skip(f"shared screen {name} not found under {path.parent}")
        return path

    return _get
