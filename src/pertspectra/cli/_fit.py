"""``pertspectra fit``: group statistics, then the fit (or its forecast), then the model folder.

With ``--condition-key`` the statistics are per (label, condition) and the fit is
:func:`pertspectra.train.fit_conditions` (helpers in :mod:`pertspectra.cli._conditions`); the
folder, its overwrite rules, provenance and ``--resume`` are the same.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from . import _conditions, _resume
from . import _options as o
from ._common import command, input_checksums, input_file, split_list
from ._prior import attach_prior, prior_for

app = typer.Typer()


@command(app, "fit")
def fit(
    data: Annotated[Path, typer.Argument(help="Perturb-seq .h5ad (cells x genes); read backed.")],
    perturbation_key: Annotated[str, typer.Option(help="obs column with perturbation labels.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Model folder to write.")] = None,
    condition_key: o.ConditionKey = None,
    condition_factors: o.ConditionFactors = None,
    control: o.Control = None,
    pseudobulk: Annotated[
        bool, typer.Option("--pseudobulk", help="DATA holds one mean per label (no cells).")
    ] = False,
    n_cells_key: Annotated[
        str | None, typer.Option(help="obs column of cells per label (pseudobulk input).")
    ] = None,
    exclude_labels: o.ExcludeLabels = None,
    separator: o.Separator = "+",
    normalize: o.Normalize = None,
    target_sum: o.TargetSum = 1e4,
    layer: o.Layer = None,
    min_cells: o.MinCells = 50,
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
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print expected memory and time per epoch, then stop.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
    resume: o.Resume = None,
    checkpoint_every: o.CheckpointEvery = 60.0,
    progress: o.Progress = True,
) -> None:
    """Fit PertSpectra to DATA and save the model folder."""
    import anndata as ad

    import pertspectra as ps

    from .._utils import check_output_folder

    _conditions.check_options(
        perturbation_key=perturbation_key, condition_key=condition_key,
        condition_factors=condition_factors, pseudobulk=pseudobulk,
    )  # fmt: skip
    input_file(data)
    if not dry_run:  # a dry run writes nothing and needs no --out
        out = _resume.resolve_out(out, resume)
        # other files in the folder first: --overwrite must not delete a checkpoint, then refuse
        check_output_folder(
            out, overwrite=True, allowed=ps.model.FittedModel.FILES, what="a model folder",
            inputs=[data, prior],
        )  # fmt: skip
        ck = _resume.prepare(out, resume=resume is not None, overwrite=overwrite)
        if (out / "model.json").exists() and not overwrite and resume is None:
            msg = f"{out} already holds a model; pass --overwrite to replace it"
            raise FileExistsError(msg)
    options = o.fit_options(
        encoding=encoding, prior_key=prior_key, no_graph=no_graph, parametrization=parametrization,
        n_factors=n_factors, lam=lam, rho=rho, delta=delta, max_epochs=max_epochs,
        schedule=schedule, cycle_epochs=cycle_epochs, converged_tol=converged_tol,
        stopping=stopping, tol=tol, patience=patience, n_init=n_init, threads=threads, dtype=dtype,
        device=device, matmul_precision=matmul_precision, w_rate_scale=w_rate_scale, init=init,
    )  # fmt: skip
    common: dict[str, Any] = {
        "perturbation_key": perturbation_key,
        "layer": layer,
        "controls": split_list(control) or None,
        "separator": separator,
        "exclude_labels": split_list(exclude_labels),
    }
    if pseudobulk:
        if normalize:
            msg = "--normalize applies to cells; pseudobulk means are used as given"
            raise ValueError(msg)
        bulk = ad.read_h5ad(data)
        graph = prior_for(bulk, data, prior, prior_key)
        stats = ps.stats.from_pseudobulk(bulk, n_cells_key=n_cells_key, **common)
    else:
        adata = ad.read_h5ad(data, backed="r")
        try:
            graph = prior_for(adata, data, prior, prior_key)
            stats = ps.stats.compute_group_stats(
                adata, min_cells=min_cells, normalize=normalize, target_sum=target_sum,
                condition_key=condition_key, progress=progress, **common,
            )  # fmt: skip
        finally:
            adata.file.close()
    attach_prior(stats, graph)
    if graph is not None:
        options["prior_key"] = None  # attached under the default key
    n_cells = (
        "cell counts unknown"
        if stats.obs["n_cells"].isna().any()
        else f"{int(stats.obs['n_cells'].sum())} cells"
    )
    # the dropped labels were already reported by the statistics pass (with their counts)
    if condition_key is not None:
        typer.echo(_conditions.describe_stats(stats))
    else:
        typer.echo(f"{stats.n_obs} labels, {n_cells}, {stats.n_vars} genes")
    if dry_run:
        typer.echo(
            ps.train.format_forecast(ps.train.forecast(stats, **options))
            if condition_key is None
            else _conditions.forecast(stats, options, condition_factors)
        )
        return
    assert out is not None  # resolved above for every run but a dry one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # said once below, as plain sentences
        with _resume.interruptible(out, ck, resume=resume is not None):
            fit_stats = (
                ps.train.fit
                if condition_key is None
                else functools.partial(ps.train.fit_conditions, condition_factors=condition_factors)
            )
            model = fit_stats(
                stats, seed=seed, progress=progress, checkpoint=ck, resume=resume is not None,
                checkpoint_every=checkpoint_every, **options,
            )  # fmt: skip
    model.training["inputs"] = input_checksums(data, prior)
    # resuming replaces the folder the interrupted fit was writing (its checkpoint, an old model)
    model.save(out, overwrite=overwrite or resume is not None or _resume.only_checkpoint(out))
    typer.echo(model.summary())
    for text in (
        ps.enrich.fit_warnings(model)
        if isinstance(model, ps.model.FittedModel)
        else _conditions.fit_warnings(model)
    ):
        typer.echo(f"warning: {text}", err=True)
    typer.echo(f"model written to {out}")
