"""Training settings (frozen, JSON-serialisable): how the objective is minimised.

What is minimised is :class:`~pertspectra.model.ModelConfig`'s business; how (schedule,
stopping, restarts, precision, threads) is :class:`TrainConfig`'s. Each setting has one name,
used by :func:`~pertspectra.train.fit` (as a keyword shortcut) and by the CLI (as
``--max-epochs``, ``--n-init``, ...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._types import Dtype, Stopping

PAPER_LEARNING_RATES: tuple[float, ...] = (1.0, 0.5, 0.1, 0.01, 0.001, 0.0001)
#: Schedule for the ``"effects"`` parametrization (signed rows; the authors' lr 1 overshoots).
EFFECTS_LEARNING_RATES: tuple[float, ...] = (0.05, 0.01, 0.001)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Parameters
    ----------
    max_epochs
        Hard limit on epochs (the authors: 10,000). CLI: ``--max-epochs`` (alias ``--epochs``).
    learning_rates
        The stepped schedule; ``None``: the parametrization's default
        (:data:`PAPER_LEARNING_RATES` or :data:`EFFECTS_LEARNING_RATES`).
    stopping
        ``"relative"`` (default) or ``"paper"`` (the authors' plateau counter); see
        :mod:`pertspectra.train._loop`.
    tol
        Relative improvement over ``patience`` epochs below which the rate steps down
        (``"relative"`` only).
    patience
        Window of epochs for ``tol`` (``"relative"`` only; the paper's rule always counts 10).
    n_init
        Independent initialisations; the fit with the lowest final objective is kept.
    dtype
        ``"float32"`` or ``"float64"``.
    threads
        CPU threads for torch during the fit (set for the fit only, restored afterwards);
        ``None``: torch's setting.
    """

    max_epochs: int = 10_000
    learning_rates: tuple[float, ...] | None = None
    stopping: Stopping = "relative"
    tol: float = 1e-5
    patience: int = 50
    n_init: int = 1
    dtype: Dtype = "float32"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.stopping not in ("relative", "paper"):
            msg = f"stopping must be 'relative' or 'paper', got {self.stopping!r}"
            raise ValueError(msg)
        if int(self.max_epochs) < 1:
            msg = f"max_epochs must be >= 1, got {self.max_epochs}"
            raise ValueError(msg)
        if int(self.patience) < 1:
            msg = f"patience must be >= 1, got {self.patience}"
            raise ValueError(msg)
        if int(self.n_init) < 1:
            msg = f"n_init must be >= 1, got {self.n_init}"
            raise ValueError(msg)
        if not float(self.tol) >= 0:
            msg = f"tol must be >= 0, got {self.tol}"
            raise ValueError(msg)
        if self.dtype not in ("float32", "float64"):
            msg = f"dtype must be 'float32' or 'float64', got {self.dtype!r}"
            raise ValueError(msg)
        if self.threads is not None and int(self.threads) < 1:
            msg = f"threads must be >= 1, got {self.threads}"
            raise ValueError(msg)
        if self.learning_rates is not None:
            rates = tuple(float(x) for x in self.learning_rates)
            if not rates or any(not r > 0 for r in rates):
                msg = f"learning_rates must be a non-empty sequence of positive numbers, got {self.learning_rates!r}"
                raise ValueError(msg)
            object.__setattr__(self, "learning_rates", rates)

    def resolved(self, parametrization: str) -> TrainConfig:
        """Return a copy with ``learning_rates`` filled in for ``parametrization``."""
        if self.learning_rates is not None:
            return self
        rates = EFFECTS_LEARNING_RATES if parametrization == "effects" else PAPER_LEARNING_RATES
        return replace(self, learning_rates=rates)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``model.json``."""
        d = asdict(self)
        if d["learning_rates"] is not None:
            d["learning_rates"] = list(d["learning_rates"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
