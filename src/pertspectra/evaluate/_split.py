"""Train/test splits for combinatorial screens (no cell in both)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._utils import default_rng
from ..design import LabelParser

if TYPE_CHECKING:
    from .._types import SeedLike


def split_combinations(
    labels: Sequence[str],
    *,
    fraction: float = 0.2,
    parser: LabelParser | None = None,
    seed: SeedLike = 1,
) -> tuple[list[str], list[str]]:
    """Hold out a fraction of the combination labels (all their cells become test cells).

    Only combinations whose single perturbations all stay in training are eligible, so every
    held-out combination is predictable from seen perturbations.

    Returns
    -------
    ``(train_labels, test_labels)``.
    """
    parser = parser or LabelParser()
    labels = list(dict.fromkeys(labels))
    singles = {lab for lab in labels if len(parser.tokens(lab)) == 1}
    combos = [
        lab for lab in labels if len(parser.tokens(lab)) > 1 and set(parser.tokens(lab)) <= singles
    ]
    if not combos:
        msg = "no combination label whose single perturbations are all present: nothing to hold out"
        raise ValueError(msg)
    gen = default_rng(seed)
    n_test = max(1, round(fraction * len(combos)))
    test = sorted(gen.choice(combos, size=n_test, replace=False).tolist())
    test_set = set(test)
    return [lab for lab in labels if lab not in test_set], test
