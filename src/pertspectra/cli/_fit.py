"""``pertspectra fit``: group statistics, then the fit (or its forecast), then the model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import command, input_file, split_list

app = typer.Typer()


@command(app, "fit")
def fit(
    data: Annotated[Path, typer.Argument(help="Perturb-seq .h5ad (cells x genes); read backed.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    perturbation_key: Annotated[str, typer.Option(help="obs column with perturbation labels.")],
    control: Annotated[
        list[str] | None,
        typer.Option(
            "--control",
            "--controls",
            help="Control label(s), repeatable or comma-separated (API: controls=[...]); they "
            "replace the built-in names and must match cells. Default: ctrl, control, "
            "non-targeting, NT, ...",
        ),
    ] = None,
    exclude_labels: Annotated[
        list[str] | None,
        typer.Option(help="Labels to drop, repeatable or comma-separated (e.g. none_detected)."),
    ] = None,
    separator: Annotated[str, typer.Option(help="Separator of combined targets.")] = "+",
    normalize: Annotated[
        str | None, typer.Option(help="'log1p': normalize raw counts (target sum, then log1p).")
    ] = None,
    target_sum: Annotated[
        float, typer.Option(help="Counts per cell after --normalize log1p.")
    ] = 1e4,
    layer: Annotated[str | None, typer.Option(help="Layer to use instead of X.")] = None,
    min_cells: Annotated[int, typer.Option(help="Drop labels with fewer cells.")] = 50,
    encoding: Annotated[
        str, typer.Option(help="'gene' (one column per gene) or 'label'.")
    ] = "gene",
    prior_key: Annotated[
        str | None,
        typer.Option(help="varp key of the prior graph (default pertspectra_prior when present)."),
    ] = None,
    no_graph: Annotated[
        bool, typer.Option("--no-graph", help="Drop the graph term entirely.")
    ] = False,
    parametrization: Annotated[
        str, typer.Option(help="'paper' or 'effects' (signed perturbation rows; not in the paper).")
    ] = "paper",
    n_factors: Annotated[
        int, typer.Option("--n-factors", "--factors", help="Number of factors (programs) L.")
    ] = 200,
    lam: Annotated[float, typer.Option(help="Weight lambda of the reconstruction term.")] = 1.0,
    rho: Annotated[float, typer.Option(help="Background non-edge rate.")] = 0.05,
    max_epochs: Annotated[
        int, typer.Option("--max-epochs", "--epochs", help="Maximum epochs.")
    ] = 10_000,
    stopping: Annotated[str, typer.Option(help="'relative' (default) or 'paper'.")] = "relative",
    tol: Annotated[
        float,
        typer.Option(
            help="Relative improvement per --patience epochs below which the rate steps down."
        ),
    ] = 1e-5,
    patience: Annotated[
        int, typer.Option(help="Window of epochs of the relative stopping rule.")
    ] = 50,
    n_init: Annotated[int, typer.Option(help="Initialisations; the lowest objective is kept.")] = 1,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for torch during the fit (default: torch's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="'auto', 'cpu' or 'cuda'.")] = "auto",
    dtype: Annotated[str, typer.Option(help="'float32' or 'float64'.")] = "float32",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print expected memory and time per epoch, then stop.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress.")] = True,
) -> None:
    """Fit PertSpectra to DATA and save the model folder."""
    import anndata as ad

    import pertspectra as ps

    input_file(data)
    if (out / "model.json").exists() and not overwrite and not dry_run:
        msg = f"{out} already holds a model; pass --overwrite to replace it"
        raise FileExistsError(msg)
    controls = split_list(control) or None
    options: dict[str, Any] = {
        "encoding": encoding,
        "prior_key": prior_key,
        "graph": not no_graph,
        "parametrization": parametrization,
        "n_factors": n_factors,
        "lam": lam,
        "rho": rho,
        "max_epochs": max_epochs,
        "stopping": stopping,
        "tol": tol,
        "patience": patience,
        "n_init": n_init,
        "threads": threads,
        "dtype": dtype,
        "device": device,
    }
    # settings are checked before the pass over the cells
    ps.model.ModelConfig(
        n_factors=n_factors,
        lam=lam,
        rho=rho,
        graph=not no_graph,
        parametrization=parametrization,  # type: ignore[arg-type]  # checked by ModelConfig
    )
    ps.train.TrainConfig(
        max_epochs=max_epochs,
        stopping=stopping,  # type: ignore[arg-type]  # checked by TrainConfig
        tol=tol,
        patience=patience,
        n_init=n_init,
        dtype=dtype,  # type: ignore[arg-type]  # checked by TrainConfig
        threads=threads,
    )
    adata = ad.read_h5ad(data, backed="r")
    try:
        stats = ps.stats.compute_group_stats(
            adata,
            perturbation_key=perturbation_key,
            layer=layer,
            controls=controls,
            separator=separator,
            exclude_labels=split_list(exclude_labels),
            min_cells=min_cells,
            normalize=normalize,
            target_sum=target_sum,
            progress=progress,
        )
    finally:
        adata.file.close()
    info = stats.uns["pertspectra_stats"]
    dropped = list(info["dropped_labels"])
    typer.echo(
        f"{stats.n_obs} labels, {int(stats.obs['n_cells'].sum())} cells, {stats.n_vars} genes"
        + (
            f"; dropped {len(dropped)} label(s) below {min_cells} cells: " + ", ".join(dropped[:10])
            if dropped
            else ""
        )
    )
    if dry_run:
        est = ps.train.forecast(stats, **options)
        typer.echo(ps.train.format_forecast(est))
        return
    model = ps.train.fit(stats, seed=seed, progress=progress, **options)
    model.save(out, overwrite=overwrite)
    typer.echo(model.summary())
    typer.echo(f"model written to {out}")
