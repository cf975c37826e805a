"""Options shared by several commands, declared once so that a name means one thing everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

Control = Annotated[
    list[str] | None,
    typer.Option(
        "--control",
        "--controls",
        help="Control label(s), repeatable or comma-separated (API: controls=[...]); they replace "
        "the built-in names (ctrl, control, non-targeting, NT, ...) and must match cells.",
    ),
]
ExcludeLabels = Annotated[
    list[str] | None,
    typer.Option(help="Labels to drop, repeatable or comma-separated (e.g. none_detected)."),
]
Separator = Annotated[str, typer.Option(help="Separator of combined targets.")]
Normalize = Annotated[
    str | None, typer.Option(help="'log1p': normalize raw counts (target sum, then log1p).")
]
TargetSum = Annotated[float, typer.Option(help="Counts per cell after --normalize log1p.")]
Layer = Annotated[str | None, typer.Option(help="Layer to use instead of X.")]
MinCells = Annotated[int, typer.Option(help="Drop labels with fewer cells.")]
Encoding = Annotated[str, typer.Option(help="'gene' (one column per gene) or 'label'.")]
PriorKey = Annotated[
    str | None,
    typer.Option(help="varp key of the prior graph (default pertspectra_prior when present)."),
]
PriorFile = Annotated[
    Path | None,
    typer.Option(
        "--prior",
        help="Prior graph file from `pertspectra prior` (its genes must be DATA's); replaces "
        "a graph stored in DATA.",
    ),
]
ConditionKey = Annotated[
    str | None,
    typer.Option(
        help="obs column of conditions (cell line, treatment, stimulation): fit programs shared "
        "by all conditions plus each condition's own, with loadings per condition (API: "
        "fit_conditions(condition_key=...)); must differ from --perturbation-key."
    ),
]
ConditionFactors = Annotated[
    int | None,
    typer.Option(
        help="With --condition-key: programs of each condition's own beside the --n-factors "
        "shared ones (default: a quarter of them; 0: all shared; the authors: 20 + 5)."
    ),
]
Condition = Annotated[
    list[str] | None,
    typer.Option(
        "--condition",
        help="Condition(s) of a model fitted with --condition-key, repeatable or "
        "comma-separated (default: every condition).",
    ),
]
NoGraph = Annotated[bool, typer.Option("--no-graph", help="Drop the graph term entirely.")]
Parametrization = Annotated[
    str,
    typer.Option(
        help="'effects' (default: signed perturbation rows and an on-target term; combinations "
        "add the singles' deviations from control) or 'paper' (the authors' model exactly)."
    ),
]
NFactors = Annotated[
    str | None,
    typer.Option(
        "--n-factors",
        "--factors",
        help="Number of factors (programs) L; default: genes // 10, or perturbations + 1 if "
        "more (at most genes // 2), between 2 and 200 (the paper: 200). 'signal': the "
        "labels' signal rank plus one (fewer, broader programs; needs cell-level data).",
    ),
]
Schedule = Annotated[
    str,
    typer.Option(
        help="'cosine' (default: AdamW betas 0.9/0.95, cosine rate, check cycles until "
        "converged) or 'stepped' (the authors' schedule and stopping rules)."
    ),
]
CycleEpochs = Annotated[int, typer.Option(help="Epochs of the cosine schedule.")]
ConvergedTol = Annotated[
    float,
    typer.Option(
        help="Converged: a check cycle lowers the objective by less than this (relative)."
    ),
]
Lam = Annotated[float, typer.Option(help="Weight lambda of the reconstruction term.")]
Rho = Annotated[float, typer.Option(help="Background non-edge rate.")]
Delta = Annotated[
    float,
    typer.Option(
        help="Floor added to the gene scaling (the authors' 0.001); lower it when genes are "
        "expressed below 0.001 of the highest one (docs/optimization.md)."
    ),
]
MaxEpochs = Annotated[int, typer.Option("--max-epochs", "--epochs", help="Maximum epochs.")]
Stopping = Annotated[
    str, typer.Option(help="--schedule stepped only: 'relative' (default) or 'paper'.")
]
Tol = Annotated[
    float,
    typer.Option(
        help="Relative improvement per --patience epochs below which the rate steps down."
    ),
]
Patience = Annotated[int, typer.Option(help="Window of epochs of the relative stopping rule.")]
NInit = Annotated[int, typer.Option(help="Initialisations; the lowest objective is kept.")]
Threads = Annotated[
    int | None, typer.Option(help="CPU threads for torch during the fit (default: torch's).")
]
Seed = Annotated[int, typer.Option(help="Random seed.")]
WRateScale = Annotated[
    float,
    typer.Option(
        help="W's learning rate as a multiple of the schedule's (the other parameters follow "
        "the schedule). 0.3 converged faster and lower on Wessels with STRING, higher at "
        "Norman size: compare with a default fit."
    ),
]
Init = Annotated[
    str,
    typer.Option(
        help="Where the fit starts: 'auto' (without a prior: the labels' means where the "
        "effects parametrization has a factor per label, else random; with a prior: "
        "'communities'), "
        "'random' (the authors'), 'means' or 'communities' (the prior's communities: "
        "degree-regularized spectral clustering arranges the programs; B starts closed around "
        "them)."
    ),
]
Device = Annotated[str, typer.Option(help="'auto', 'cpu' or 'cuda'.")]
Dtype = Annotated[str, typer.Option(help="'float32' or 'float64'.")]
MatmulPrecision = Annotated[
    str | None,
    typer.Option(
        help="Precision of the graph term's products in the training steps: 'medium' "
        "(bfloat16; faster on CPUs with AMX), 'high' (TF32 on CUDA) or 'highest'. Convergence "
        "is still judged on exact values. Default: torch's setting (exact float32)."
    ),
]
Progress = Annotated[bool, typer.Option(help="Show progress.")]
Overwrite = Annotated[bool, typer.Option(help="Replace an existing output.")]
Resume = Annotated[
    Path | None,
    typer.Option(
        help="Continue the interrupted fit whose checkpoint is in DIR/checkpoint (the same data "
        "and options; --out may be left out). Same seed, CPU and --threads: the same model bit "
        "for bit as an uninterrupted fit.",
        metavar="DIR",
    ),
]
CheckpointEvery = Annotated[
    float,
    typer.Option(
        help="Seconds between checkpoints of a running fit (kept in OUT/checkpoint, removed "
        "when the model is saved; also written on Ctrl-C/SIGTERM). 0: every epoch."
    ),
]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]


def parse_n_factors(value: str | None) -> int | Literal["signal"] | None:
    """``--n-factors``: a positive integer, ``signal`` or nothing (the default rule)."""
    if value is None:
        return None
    if value == "signal":
        return "signal"
    try:
        n = int(value)
    except ValueError:
        msg = f"--n-factors must be an integer or 'signal', got {value!r}"
        raise ValueError(msg) from None
    if n < 1:
        msg = f"--n-factors must be >= 1, got {n}"
        raise ValueError(msg)
    return n


def fit_options(
    *,
    encoding: str,
    prior_key: str | None,
    no_graph: bool,
    parametrization: str,
    n_factors: str | None,
    lam: float,
    rho: float,
    max_epochs: int,
    schedule: str,
    cycle_epochs: int,
    converged_tol: float,
    stopping: str,
    tol: float,
    patience: int,
    n_init: int,
    threads: int | None,
    dtype: str,
    device: str,
    matmul_precision: str | None = None,
    w_rate_scale: float = 1.0,
    init: str = "auto",
    delta: float = 0.001,
) -> dict[str, Any]:
    """The keyword options of :func:`pertspectra.train.fit`, checked before any heavy work."""
    import pertspectra as ps

    factors = parse_n_factors(n_factors)
    ps.model.ModelConfig(
        n_factors=factors,
        lam=lam,
        rho=rho,
        delta=delta,
        graph=not no_graph,
        parametrization=parametrization,  # type: ignore[arg-type]  # checked by ModelConfig
    )
    ps.train.TrainConfig(
        max_epochs=max_epochs,
        schedule=schedule,  # type: ignore[arg-type]  # checked by TrainConfig
        cycle_epochs=cycle_epochs,
        converged_tol=converged_tol,
        stopping=stopping,  # type: ignore[arg-type]  # checked by TrainConfig
        tol=tol,
        patience=patience,
        n_init=n_init,
        dtype=dtype,  # type: ignore[arg-type]  # checked by TrainConfig
        threads=threads,
        matmul_precision=matmul_precision,  # type: ignore[arg-type]  # checked by TrainConfig
        w_rate_scale=w_rate_scale,
        init=init,  # type: ignore[arg-type]  # checked by TrainConfig
    )
    if encoding not in ("gene", "label"):
        msg = f"encoding must be 'gene' or 'label', got {encoding!r}"
        raise ValueError(msg)
    return {
        "encoding": encoding,
        "prior_key": prior_key,
        "graph": not no_graph,
        "parametrization": parametrization,
        "n_factors": factors,
        "lam": lam,
        "rho": rho,
        "delta": delta,
        "max_epochs": max_epochs,
        "schedule": schedule,
        "cycle_epochs": cycle_epochs,
        "converged_tol": converged_tol,
        "stopping": stopping,
        "tol": tol,
        "patience": patience,
        "n_init": n_init,
        "threads": threads,
        "dtype": dtype,
        "device": device,
        "matmul_precision": matmul_precision,
        "w_rate_scale": w_rate_scale,
        "init": init,
    }
