"""Training settings (frozen, JSON-serialisable): how the objective is minimised.

What is minimised is :class:`~pertspectra.model.ModelConfig`'s business; how (schedule,
stopping, restarts, precision, threads) is :class:`TrainConfig`'s. Each setting has one name,
used by :func:`~pertspectra.train.fit` (as a keyword shortcut) and by the CLI (as
``--max-epochs``, ``--n-init``, ...).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, get_args

from .._types import MatmulPrecision

if TYPE_CHECKING:
    from .._types import Dtype, Init, Schedule, Stopping

#: The authors' stepped schedule (``schedule="stepped"``).
PAPER_LEARNING_RATES: tuple[float, ...] = (1.0, 0.5, 0.1, 0.01, 0.001, 0.0001)
#: Stepped schedule for the ``"effects"`` parametrization (signed rows; lr 1 overshoots).
EFFECTS_LEARNING_RATES: tuple[float, ...] = (0.05, 0.01, 0.001)
#: Cosine schedule (first and last rate) for the ``"paper"`` parametrization.
COSINE_LEARNING_RATES: tuple[float, ...] = (1.0, 1e-4)
#: Cosine schedule for the ``"effects"`` parametrization.
EFFECTS_COSINE_LEARNING_RATES: tuple[float, ...] = (0.1, 1e-4)
#: AdamW betas per schedule: beta2 0.95 under the cosine (see ``docs/optimization.md``).
BETAS: dict[str, tuple[float, float]] = {"cosine": (0.9, 0.95), "stepped": (0.9, 0.999)}


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Parameters
    ----------
    schedule
        ``"cosine"`` (default: AdamW with betas (0.9, 0.95), the rate falling along a cosine
        over ``cycle_epochs``, then check cycles until converged) or ``"stepped"`` (the
        authors': betas (0.9, 0.999), rates stepped down on plateaus by the ``stopping`` rule).
        See :mod:`pertspectra.train._loop`.
    cycle_epochs
        Length of the cosine schedule (``"cosine"`` only); each check cycle lasts a quarter.
    max_epochs
        Hard limit on epochs (the authors: 10,000). CLI: ``--max-epochs`` (alias ``--epochs``).
    learning_rates
        ``"cosine"``: (first, last) rate; ``"stepped"``: the steps. ``None``: the
        parametrization's default (:data:`COSINE_LEARNING_RATES`,
        :data:`EFFECTS_COSINE_LEARNING_RATES`, :data:`PAPER_LEARNING_RATES`,
        :data:`EFFECTS_LEARNING_RATES`).
    betas
        AdamW's betas; ``None``: :data:`BETAS` of the schedule.
    converged_tol
        A fit is *converged* when a check cycle lowers the objective by less than this
        (relative); recorded as ``training["converged"]`` with the evidence.
    stopping
        ``"stepped"`` only: ``"relative"`` or ``"paper"`` (the authors' plateau counter).
    tol
        Relative improvement over ``patience`` epochs below which the rate steps down
        (``"stepped"`` with ``"relative"`` only).
    patience
        Window of epochs for ``tol`` (``"relative"`` only; the paper's rule always counts 10).
    w_rate_scale
        ``W``'s learning rate as a multiple of the schedule's (the other parameters follow the
        schedule). With a STRING prior the graph term's ``W`` is the slowest block; 0.3
        reached lower objectives in half the epochs on Wessels, but higher ones at Norman size
        and on Schraivogel (``docs/optimization.md``): compare with a default fit. 1: one
        rate for all (the authors').
    n_init
        Independent initialisations; the fit with the lowest final objective is kept.
    init
        Where a fit starts: ``"random"`` (the authors' draw), ``"means"`` (the labels' own
        means, one factor per label: the reconstruction's optimum before the first epoch; needs
        the ``"effects"`` parametrization and at least as many factors as labels),
        ``"communities"`` (the random draw with each gene leaning on its community of the prior
        graph and ``B`` as closed communities; needs a prior) or ``"auto"``: without a prior
        ``"means"`` where it can be built, else ``"random"``; with a prior ``"communities"``
        (on the CRISPR panels and at Norman size it ends lower than the random start, mostly
        in 1,250 epochs, and seeds agree within 0.5%; on Wessels' 2,000 genes five seeds end
        0.69% apart, on average level with the random start; see ``docs/optimization.md``).
    dtype
        ``"float32"`` or ``"float64"``.
    threads
        CPU threads for torch during the fit (set for the fit only, restored afterwards);
        ``None``: torch's setting.
    matmul_precision
        Float32 matmul precision of the graph term's ``g x g`` products in the training steps
        (:func:`torch.set_float32_matmul_precision`'s values, set for those products only):
        ``"medium"`` runs them in bfloat16 with float32 accumulation (on CPUs with AMX, such
        as Intel Xeon Sapphire Rapids, the graph term about 1.4x faster at 5,000 genes;
        gradients then carry a relative error of about 1e-3), ``"high"`` allows TF32 on CUDA
        (float32 on CPUs), ``"highest"`` is exact float32. Opt-in: the objective values that
        decide convergence, the best state and the final objective are always computed at
        the caller's precision (exact unless changed), so only the path to the optimum
        changes; float32 and ``schedule="cosine"`` only (the stepped rules compare losses of
        consecutive steps). ``None``: torch's setting.
    """

    schedule: Schedule = "cosine"
    cycle_epochs: int = 1000
    max_epochs: int = 10_000
    learning_rates: tuple[float, ...] | None = None
    betas: tuple[float, float] | None = None
    converged_tol: float = 1e-3
    stopping: Stopping = "relative"
    tol: float = 1e-5
    patience: int = 50
    n_init: int = 1
    init: Init = "auto"
    w_rate_scale: float = 1.0
    dtype: Dtype = "float32"
    threads: int | None = None
    matmul_precision: MatmulPrecision | None = None

    def __post_init__(self) -> None:
        for name, choices in (
            ("schedule", ("cosine", "stepped")),
            ("stopping", ("relative", "paper")),
            ("dtype", ("float32", "float64")),
            ("init", ("auto", "random", "means", "communities")),
        ):
            if getattr(self, name) not in choices:
                msg = (
                    f"{name} must be {' or '.join(map(repr, choices))}, got {getattr(self, name)!r}"
                )
                raise ValueError(msg)
        if self.matmul_precision is not None:
            precisions = get_args(MatmulPrecision)
            if self.matmul_precision not in precisions:
                msg = f"matmul_precision must be one of {precisions} or None, got {self.matmul_precision!r}"
                raise ValueError(msg)
            exact = self.matmul_precision == "highest"
            if not exact and (self.dtype != "float32" or self.schedule != "cosine"):
                msg = (
                    f"matmul_precision={self.matmul_precision!r} needs dtype='float32' and "
                    "schedule='cosine', got "
                    f"dtype={self.dtype!r}, schedule={self.schedule!r}"
                )
                raise ValueError(msg)
        for name, low in (("cycle_epochs", 2), ("max_epochs", 1), ("patience", 1), ("n_init", 1)):
            if int(getattr(self, name)) < low:
                msg = f"{name} must be >= {low}, got {getattr(self, name)}"
                raise ValueError(msg)
        for name in ("converged_tol", "tol"):
            if not float(getattr(self, name)) >= 0:
                msg = f"{name} must be >= 0, got {getattr(self, name)}"
                raise ValueError(msg)
        if not 0 < float(self.w_rate_scale) < math.inf:
            msg = f"w_rate_scale must be a positive finite number, got {self.w_rate_scale!r}"
            raise ValueError(msg)
        object.__setattr__(self, "w_rate_scale", float(self.w_rate_scale))
        if self.betas is not None:
            betas = tuple(float(b) for b in self.betas)
            if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
                msg = f"betas must be two numbers in [0, 1), got {self.betas!r}"
                raise ValueError(msg)
            object.__setattr__(self, "betas", betas)
        if self.threads is not None and int(self.threads) < 1:
            msg = f"threads must be >= 1, got {self.threads}"
            raise ValueError(msg)
        if self.learning_rates is not None:
            rates = tuple(float(x) for x in self.learning_rates)
            if not rates or any(not 0 < r < math.inf for r in rates):
                msg = f"learning_rates must be a non-empty sequence of positive finite numbers, got {self.learning_rates!r}"
                raise ValueError(msg)
            if self.schedule == "cosine" and len(rates) != 2:
                msg = f"learning_rates of the cosine schedule are (first, last), got {self.learning_rates!r}"
                raise ValueError(msg)
            object.__setattr__(self, "learning_rates", rates)

    def resolved(self, parametrization: str) -> TrainConfig:
        """Return a copy with ``learning_rates`` and ``betas`` filled in for ``parametrization``."""
        rates = self.learning_rates
        if rates is None:
            effects = parametrization == "effects"
            if self.schedule == "cosine":
                rates = EFFECTS_COSINE_LEARNING_RATES if effects else COSINE_LEARNING_RATES
            else:
                rates = EFFECTS_LEARNING_RATES if effects else PAPER_LEARNING_RATES
        betas = BETAS[self.schedule] if self.betas is None else self.betas
        return replace(self, learning_rates=rates, betas=betas)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``model.json``."""
        d = asdict(self)
        for key in ("learning_rates", "betas"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring unknown keys.

        A dict without ``schedule`` predates it (stepped), one without ``init`` too (random).
        """
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw.setdefault("schedule", "stepped")
        kw.setdefault("init", "random")  # settings written before the option started at random
        return cls(**kw)
