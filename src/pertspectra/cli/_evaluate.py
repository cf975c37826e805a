"""``pertspectra evaluate``: the scorecard of a screen, beside baselines, a ceiling and others."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from . import _options as o
from ._common import command, input_file, provenance, split_list
from ._prior import attach_prior, prior_for

app = typer.Typer()


def _named_files(values: list[str] | None) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            msg = f"--predictions {value!r}: expected NAME=FILE.csv"
            raise ValueError(msg)
        if name.strip() in out:
            msg = f"--predictions: the name {name.strip()!r} is given twice"
            raise ValueError(msg)
        out[name.strip()] = input_file(
            Path(path.strip()), f"--predictions file for {name.strip()!r}"
        )
    return out


@command(app, "evaluate")
def evaluate(
    data: Annotated[Path, typer.Argument(help="Screen .h5ad: cells x genes, or per-label means.")],
    out: o.Out,
    perturbation_key: Annotated[str, typer.Option(help="obs column with perturbation labels.")],
    condition_key: o.ConditionKey = None,
    condition_factors: o.ConditionFactors = None,
    control: o.Control = None,
    pseudobulk: Annotated[
        bool, typer.Option("--pseudobulk", help="DATA holds one mean per label (no cells).")
    ] = False,
    n_cells_key: Annotated[
        str | None, typer.Option(help="obs column of cells per label (pseudobulk input).")
    ] = None,
    normalize: o.Normalize = None,
    target_sum: o.TargetSum = 1e4,
    exclude_labels: o.ExcludeLabels = None,
    separator: o.Separator = "+",
    layer: o.Layer = None,
    min_cells: o.MinCells = 50,
    protocol: Annotated[
        str, typer.Option(help="'combinations', 'cells' or 'auto' (combinations when possible).")
    ] = "auto",
    folds: Annotated[
        int, typer.Option(help="Folds (combinations) or independent splits (cells).")
    ] = 5,
    split_seed: Annotated[int, typer.Option(help="Seed of the split (the authors: 1).")] = 1,
    split: Annotated[
        Path | None, typer.Option(help="Reuse the split.csv of an earlier evaluation.")
    ] = None,
    ceiling_layers: Annotated[
        str | None,
        typer.Option(help="Two layers with half-split means, e.g. half1_mean,half2_mean."),
    ] = None,
    predictions: Annotated[
        list[str] | None,
        typer.Option(help="Other predictions as NAME=FILE.csv (label[, fold, condition], genes)."),
    ] = None,
    encoding: o.Encoding = "gene",
    prior_key: o.PriorKey = None,
    prior: o.PriorFile = None,
    no_graph: o.NoGraph = False,
    parametrization: o.Parametrization = "effects",
    n_factors: o.NFactors = None,
    lam: o.Lam = 1.0,
    rho: o.Rho = 0.05,
    delta: o.Delta = 0.001,
    max_epochs: o.MaxEpochs = 10_000,
    schedule: o.Schedule = "cosine",
    cycle_epochs: o.CycleEpochs = 1000,
    converged_tol: o.ConvergedTol = 1e-3,
    stopping: o.Stopping = "relative",
    tol: o.Tol = 1e-5,
    patience: o.Patience = 50,
    n_init: o.NInit = 1,
    threads: o.Threads = None,
    seed: o.Seed = 0,
    device: o.Device = "auto",
    dtype: o.Dtype = "float32",
    matmul_precision: o.MatmulPrecision = None,
    w_rate_scale: o.WRateScale = 1.0,
    init: o.Init = "auto",
    overwrite: o.Overwrite = False,
    progress: o.Progress = True,
) -> None:
    """Score PertSpectra on held-out labels beside the baselines, a ceiling and other models.

    With --condition-key, per condition: the condition model, a fit of all cells ignoring the
    condition (pertspectra_pooled), one fit per condition (pertspectra_separate) and the
    baselines, on each condition's held-out cells.
    """
    import anndata as ad
    import pandas as pd

    import pertspectra as ps

    from .._utils import check_output_folder

    input_file(data)
    if condition_factors is not None and condition_key is None:
        msg = "--condition-factors needs --condition-key (the obs column of conditions)"
        raise ValueError(msg)
    if condition_key is not None and (pseudobulk or ceiling_layers):
        msg = "--condition-key scores cells per condition: --pseudobulk and --ceiling-layers do not apply"
        raise ValueError(msg)
    check_output_folder(
        out, overwrite=overwrite, allowed=ps.evaluate.Scorecard.FILES, what="a scorecard folder",
        inputs=[data, prior, split, *(p.split("=", 1)[-1] for p in predictions or [])],
    )  # fmt: skip
    options = o.fit_options(
        encoding=encoding, prior_key=prior_key, no_graph=no_graph, parametrization=parametrization,
        n_factors=n_factors, lam=lam, rho=rho, delta=delta, max_epochs=max_epochs,
        schedule=schedule, cycle_epochs=cycle_epochs, converged_tol=converged_tol,
        stopping=stopping, tol=tol, patience=patience, n_init=n_init, threads=threads, dtype=dtype,
        device=device, matmul_precision=matmul_precision, w_rate_scale=w_rate_scale, init=init,
    )  # fmt: skip
    ceiling = tuple(split_list([ceiling_layers])) if ceiling_layers else None
    if ceiling is not None and len(ceiling) != 2:
        msg = f"--ceiling-layers {ceiling_layers!r}: give exactly two layers, e.g. half1_mean,half2_mean"
        raise ValueError(msg)
    others = {
        name: ps.evaluate.read_predictions(path) for name, path in _named_files(predictions).items()
    }
    split_table = (
        pd.read_csv(input_file(split, "--split file"), dtype={"cell": str}) if split else None
    )
    adata = ad.read_h5ad(data)
    graph = prior_for(adata, data, prior, prior_key)
    attach_prior(adata, graph)
    if graph is not None:
        options["prior_key"] = None  # attached under the default key
    if ceiling is not None:
        absent = [x for x in ceiling if x not in adata.layers]
        if absent:
            msg = f"--ceiling-layers: {absent} not among the layers {list(adata.layers)}"
            raise ValueError(msg)
    stats_kwargs: dict[str, Any] = {
        "controls": split_list(control) or None,
        "exclude_labels": split_list(exclude_labels),
        "separator": separator,
        "layer": layer,
    }
    if pseudobulk:
        if normalize:
            msg = "--normalize applies to cells; pseudobulk means are used as given"
            raise ValueError(msg)
    else:
        stats_kwargs |= {"normalize": normalize, "target_sum": target_sum, "min_cells": min_cells}
    if condition_key is not None:
        card = ps.evaluate.evaluate_conditions(
            adata, perturbation_key=perturbation_key, condition_key=condition_key,
            condition_factors=condition_factors,
            protocol=protocol,  # type: ignore[arg-type]  # checked by make_split
            folds=folds, split_seed=split_seed, split=split_table, predictions=others,
            fit_options=options, seed=seed, progress=progress, **stats_kwargs,
        )  # fmt: skip
    else:
        card = ps.evaluate.evaluate(
            adata,
            perturbation_key=perturbation_key,
            pseudobulk=pseudobulk,
            n_cells_key=n_cells_key,
            protocol=protocol,  # type: ignore[arg-type]  # checked by evaluate
            folds=folds,
            split_seed=split_seed,
            split=split_table,
            ceiling_layers=ceiling,
            predictions=others,
            fits={"pertspectra": options},
            seed=seed,
            progress=progress,
            **stats_kwargs,
        )
    card.settings["data"] = str(data)
    card.settings["prior_file"] = None if prior is None else str(prior)
    card.settings |= provenance(data, prior, split, *_named_files(predictions).values(), seed=seed)
    card.write(out, overwrite=overwrite)
    if not pseudobulk and split is None:
        typer.echo("split written to " + str(out / "split.csv"))
    if condition_key is not None:
        table = ps.evaluate.condition_table(card)  # per (regime, condition, method)
    else:
        headline = card.summary[
            card.summary["metric"].isin(["pearson_delta", "pearson_delta_top20", "mse_top20"])
        ]
        table = headline.drop_duplicates(["regime", "method", "metric"]).pivot_table(
            index=["regime", "method"], columns="metric", values="mean"
        )
    typer.echo(table.round(4).to_string())
    typer.echo(f"scorecard written to {out} ({card.settings['seconds']:.0f} s)")
