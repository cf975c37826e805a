"""The stepped schedule's plateau rules: when to step the learning rate down.

``"relative"`` (:class:`_Relative`) steps when the loss improved by less than ``tol``
(relative) over ``patience`` epochs; ``"paper"`` (:class:`_Paper`) is the authors' counter. Their
state (plain attributes) is checkpointed by :mod:`._loop`.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The authors' plateau rule steps the learning rate down every this many non-improving epochs.
PAPER_COUNTS_PER_STEP = 10


class _Relative:
    def __init__(self, tol: float, patience: int) -> None:
        self.tol, self.patience, self.since = tol, patience, 0

    def step_down(self, losses: Sequence[float]) -> bool:
        self.since += 1
        if self.since < self.patience or len(losses) <= self.patience:
            return False
        old, new = losses[-1 - self.patience], losses[-1]
        if (old - new) / max(abs(new), 1e-12) < self.tol:
            self.since = 0
            return True
        return False


class _Paper:
    def __init__(self, patience: int) -> None:
        self.patience, self.counter = patience, 0

    def step_down(self, losses: Sequence[float]) -> bool:
        if len(losses) >= 2 and not losses[-1] < losses[-2]:
            self.counter += 1
            return self.counter % self.patience == 0
        return False
