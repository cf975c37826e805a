"""The record of a training run (:class:`History`), filled by :func:`._loop.run`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: A check cycle starts at this learning rate, or at the first rate if that is lower.
CHECK_RATE = 0.1


@dataclass
class History:
    """What happened during training.

    ``loss`` is the objective per epoch; ``recon`` and ``graph`` its two parts (the Poisson
    reconstruction before the weight ``lam``, and the graph term), when ``loss_fn`` returns
    them; ``lr`` the learning rate of each epoch; ``lr_steps`` the epochs after which the stepped
    schedule's rate stepped down; ``checks`` one entry per check cycle (see the module
    docstring): its first and last epoch, the objective before and after, and the relative
    improvement; ``check_rate`` the learning rate a check cycle starts at.
    """

    loss: list[float] = field(default_factory=list)
    recon: list[float] = field(default_factory=list)
    graph: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    lr_steps: list[int] = field(default_factory=list)
    checks: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str = ""
    converged: bool = False
    seconds: float = 0.0
    check_rate: float = CHECK_RATE

    @property
    def epochs(self) -> int:
        """Epochs run."""
        return len(self.loss)

    def convergence(self, tol: float) -> dict[str, Any]:
        """The evidence behind :attr:`converged` (stored as ``training["convergence"]``)."""
        return {
            "criterion": (
                f"a check cycle (warm restart at learning rate {self.check_rate:g}, cosine to "
                "the last rate; the first lasts a quarter of cycle_epochs, each later one twice "
                f"the one before) lowers the objective by less than {tol:g} (relative)"
            ),
            "tol": tol,
            "checks": [dict(c) for c in self.checks],
            "last_improvement": self.checks[-1]["improvement"] if self.checks else None,
        }
