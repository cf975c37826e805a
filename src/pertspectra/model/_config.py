"""Hyperparameters of the PertSpectra model (frozen, JSON-serialisable)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal


@dataclass(frozen=True)
class ModelConfig:
    """PertSpectra hyperparameters; defaults are the authors' (Norman settings).

    Parameters
    ----------
    n_factors
        Number of factors ``L`` (programs).
    lam
        Weight ``lambda`` of the reconstruction term.
    rho
        Background rate of non-edges in the graph likelihood (fixed).
    delta
        Floor added to the gene scaling.
    kappa
        Background rate of edges; ``None`` learns it (sigmoid of a free scalar).
    graph
        Apply the graph likelihood. Without a prior graph the authors still apply it with an
        all-zero adjacency (every gene pair a non-edge); ``False`` drops the term entirely.
    weight_decay
        AdamW weight decay on every free parameter; ``None``: 0.001 (the authors') for
        ``"paper"``, 0 for ``"effects"``.
    parametrization
        ``"paper"``: every row of ``P`` positive (``exp``), an unseen combination predicted as
        ``basal + A + B``. ``"effects"`` (our option, not in the paper): the ``basal`` row
        positive and the control level, the ``ctrl`` row fixed at zero, each perturbation's row
        a signed deviation in program space, and the mean clamped at ``floor``; combinations
        are then additive in effects by construction.
    floor
        Lower clamp of ``(h P) W`` under ``parametrization="effects"``.
    """

    n_factors: int = 200
    lam: float = 1.0
    rho: float = 0.05
    delta: float = 0.001
    kappa: float | None = None
    graph: bool = True
    weight_decay: float | None = None
    parametrization: Literal["paper", "effects"] = "paper"
    floor: float = 1e-3

    def __post_init__(self) -> None:
        if self.parametrization not in ("paper", "effects"):
            msg = f"parametrization must be 'paper' or 'effects', got {self.parametrization!r}"
            raise ValueError(msg)
        weight_decay = self.weight_decay
        if weight_decay is None:
            weight_decay = 0.0 if self.parametrization == "effects" else 0.001
            object.__setattr__(self, "weight_decay", weight_decay)
        if int(self.n_factors) < 1:
            msg = f"n_factors must be >= 1, got {self.n_factors}"
            raise ValueError(msg)
        for name in ("rho", "kappa"):
            v = getattr(self, name)
            if v is not None and not 0.0 < float(v) < 1.0:
                msg = f"{name} must lie in (0, 1), got {v}"
                raise ValueError(msg)
        for name, value, ok in (
            ("lam", self.lam, 0 < float(self.lam) < math.inf),
            ("delta", self.delta, 0 <= float(self.delta) < math.inf),
            ("weight_decay", weight_decay, 0 <= float(weight_decay) < math.inf),
            ("floor", self.floor, 0 < float(self.floor) < math.inf),
        ):
            if not ok:
                msg = f"{name} must be a finite number {'> 0' if name in ('lam', 'floor') else '>= 0'}, got {value}"
                raise ValueError(msg)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``model.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build from a dict, ignoring unknown keys (forward compatible)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
