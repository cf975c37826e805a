"""Hyperparameters of the PertSpectra model (frozen, JSON-serialisable)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

#: The paper's number of factors, and the most the default rule picks.
PAPER_N_FACTORS = 200
#: The default rule gives each program this many genes on average.
GENES_PER_FACTOR = 10
#: ``n_factors`` value that asks for the signal rank plus one.
SIGNAL = "signal"


def default_n_factors(n_genes: int, *, n_perturbations: int = 0) -> int:
    """The default number of factors: ten genes per program, or one per design row if more.

    ``max(2, min(max(n_genes // 10, n_perturbations + 1), n_genes // 2, 200))``.

    A program is a weighting of genes; with ``L`` factors on ``g`` genes each program has
    ``g / L`` genes on average, and at ``L >= g`` (the paper's 200 factors on 74, 299 or 366
    genes) the fit puts each gene on a factor of its own (on Gasperini, 366 genes at 200
    factors, W holds 0.99995 of every gene's weight on one factor). Ten genes per program
    keeps programs while leaving a Norman-size panel (5,000 genes) the paper's 200.

    With fewer factors than the ``n_perturbations + 1`` free design rows (each perturbation and
    ``basal``) the labels' means cannot all be represented: on Schraivogel (74 genes, 14
    perturbations) 7 factors missed one target's own knockdown by 0.07 log units in every seed,
    15 factors kept all of them (``docs/optimization.md``). So a small panel gets one factor per
    design row, while each program keeps at least two genes on average (``n_genes // 2``).

    Parameters
    ----------
    n_genes
        Genes ``g`` of the data.
    n_perturbations
        Perturbation columns of the design (all but ``ctrl`` and ``basal``); 0: the genes only.
    """
    n = int(n_genes)
    if n < 1:
        msg = f"n_genes must be >= 1, got {n_genes}"
        raise ValueError(msg)
    k = int(n_perturbations)
    if k < 0:
        msg = f"n_perturbations must be >= 0, got {n_perturbations}"
        raise ValueError(msg)
    wanted = max(n // GENES_PER_FACTOR, k + 1 if k else 0)
    return int(max(2, min(wanted, n // 2, PAPER_N_FACTORS)))


def signal_n_factors(signal_rank: int, n_genes: int) -> int:
    """Factors for ``n_factors="signal"``: the signal rank plus one (``basal``).

    ``max(2, min(signal_rank + 1, n_genes // 2, 200))``, the signal rank from
    :func:`pertspectra.stats.signal_rank`.
    """
    r, n = int(signal_rank), int(n_genes)
    if r < 0 or n < 1:
        msg = f"signal_rank must be >= 0 and n_genes >= 1, got {signal_rank} and {n_genes}"
        raise ValueError(msg)
    return int(max(2, min(r + 1, n // 2, PAPER_N_FACTORS)))


@dataclass(frozen=True)
class ModelConfig:
    """PertSpectra hyperparameters.

    ``lam``, ``rho``, ``delta``, ``kappa`` and the graph term default to the authors' (Norman)
    settings. Two defaults differ from the paper, for reasons measured on real screens (see
    the README and ``docs/optimization.md``): the ``"effects"`` parametrization with its
    on-target term (the paper's encoding counts the control row twice in a combination and
    erases knockdowns) and a number of factors that follows the genes
    (:func:`default_n_factors`; the paper: 200). ``ModelConfig(parametrization="paper",
    n_factors=200)`` is the paper's model exactly.

    Parameters
    ----------
    n_factors
        Number of factors ``L`` (programs); ``None`` (default): :func:`default_n_factors` of
        the data's gene count, resolved when fitting (the paper: 200). ``"signal"``: the
        labels' signal rank plus one (:func:`signal_n_factors`), resolved when fitting from
        per-cell statistics: fewer, broader programs that predict held-out cells better on
        noisy screens (``docs/optimization.md``).
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
        ``"effects"`` (default; not in the paper): the ``basal`` row positive and the control
        level, the ``ctrl`` row fixed at zero, each perturbation's row a signed deviation in
        program space, and the mean clamped at ``floor``; an unseen combination adds the
        perturbations' deviations from control. ``"paper"``: every row of ``P`` positive
        (``exp``), an unseen combination predicted as ``basal + A + B``, which carries the
        control level (``ctrl``'s row, copied into every perturbation row) twice.
    floor
        Lower clamp of ``(h P) W`` under ``parametrization="effects"``.
    on_target
        ``"effects"`` only: give each perturbation whose target gene is measured (a design
        column named like a gene) a free log-factor on that one gene's mean, so that the
        programs carry the downstream effects and a knockdown (CRISPRi/CRISPRko) or activation
        (CRISPRa) of the target itself is kept in every combination containing it. ``None``:
        on for ``"effects"``, off for ``"paper"`` (the paper's model is kept exact).
    """

    n_factors: int | Literal["signal"] | None = None
    lam: float = 1.0
    rho: float = 0.05
    delta: float = 0.001
    kappa: float | None = None
    graph: bool = True
    weight_decay: float | None = None
    parametrization: Literal["paper", "effects"] = "effects"
    floor: float = 1e-3
    on_target: bool | None = None

    def __post_init__(self) -> None:
        if self.parametrization not in ("paper", "effects"):
            msg = f"parametrization must be 'paper' or 'effects', got {self.parametrization!r}"
            raise ValueError(msg)
        if self.on_target is None:
            object.__setattr__(self, "on_target", self.parametrization == "effects")
        elif self.on_target and self.parametrization == "paper":
            msg = "on_target applies to parametrization='effects' only (the paper's model has no such term)"
            raise ValueError(msg)
        object.__setattr__(self, "on_target", bool(self.on_target))
        weight_decay = self.weight_decay
        if weight_decay is None:
            weight_decay = 0.0 if self.parametrization == "effects" else 0.001
            object.__setattr__(self, "weight_decay", weight_decay)
        if isinstance(self.n_factors, str):
            if self.n_factors != SIGNAL:
                msg = f"n_factors must be an integer, None or {SIGNAL!r}, got {self.n_factors!r}"
                raise ValueError(msg)
        elif self.n_factors is not None and int(self.n_factors) < 1:
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
        """Build from a dict, ignoring unknown keys (forward compatible).

        A dict without ``on_target`` predates the term: it is off.
        """
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw.setdefault("on_target", False)
        return cls(**kw)
