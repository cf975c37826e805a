"""Command-line interface: a thin typer layer over the Python API.

``pertspectra fit``, ``predict``, ``info`` and ``prior``. A user mistake (missing column,
unknown label, bad file...) exits with status 1 and a one-line message, never a traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="PertSpectra for Perturb-seq screens: fit, predict unseen combinations, inspect models.",
)
logger = logging.getLogger("pertspectra")

_USER_ERRORS = (
    ValueError,
    KeyError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    OSError,
)


def _fail(err: BaseException) -> None:
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    typer.echo(f"error: {text}", err=True)
    raise typer.Exit(code=1)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


@app.callback()
def _main(
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="More log output.")
    ] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only warnings and errors.")] = False,
) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("pertspectra")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


@app.command()
def fit(
    data: Annotated[Path, typer.Argument(help="Perturb-seq .h5ad (cells x genes); read backed.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    perturbation_key: Annotated[str, typer.Option(help="obs column with perturbation labels.")],
    control: Annotated[
        str | None,
        typer.Option(help="Control label(s), comma-separated, added to the defaults."),
    ] = None,
    exclude_labels: Annotated[
        str | None, typer.Option(help="Labels to drop, comma-separated (e.g. none_detected).")
    ] = None,
    separator: Annotated[str, typer.Option(help="Separator of combined targets.")] = "+",
    normalize: Annotated[
        str | None, typer.Option(help="'log1p': normalize raw counts (1e4 per cell, log1p).")
    ] = None,
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
    n_init: Annotated[int, typer.Option(help="Initialisations; the lowest objective is kept.")] = 1,
    factors: Annotated[int, typer.Option(help="Number of factors L.")] = 200,
    lam: Annotated[float, typer.Option(help="Weight of the reconstruction term.")] = 1.0,
    rho: Annotated[float, typer.Option(help="Background non-edge rate.")] = 0.05,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 10_000,
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
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for torch (default: torch's choice).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="'auto', 'cpu' or 'cuda'.")] = "auto",
    dtype: Annotated[str, typer.Option(help="'float32' or 'float64'.")] = "float32",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print expected memory and time per epoch, then stop.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Fit PertSpectra to DATA and save the model folder."""
    import anndata as ad

    import pertspectra as ps
    from pertspectra.design import DEFAULT_CONTROLS

    if threads is not None:
        import torch

        torch.set_num_threads(max(1, threads))
    try:
        if not data.is_file():
            msg = f"data file {data} not found"
            raise FileNotFoundError(msg)
        if (out / "model.json").exists() and not overwrite and not dry_run:
            msg = f"{out} already holds a model; pass --overwrite to replace it"
            raise FileExistsError(msg)
        adata = ad.read_h5ad(data, backed="r")
        stats = ps.stats.compute_group_stats(
            adata,
            perturbation_key=perturbation_key,
            layer=layer,
            controls=(*DEFAULT_CONTROLS, *_split(control)),
            separator=separator,
            exclude_labels=_split(exclude_labels),
            min_cells=min_cells,
            normalize=normalize,
            progress=progress,
        )
        adata.file.close()
        info = stats.uns["pertspectra_stats"]
        typer.echo(
            f"{stats.n_obs} labels, {int(stats.obs['n_cells'].sum())} cells, {stats.n_vars} genes"
            + (
                f"; dropped {len(info['dropped_labels'])} label(s) below {min_cells} cells: "
                + ", ".join(info["dropped_labels"][:10])
                if len(info["dropped_labels"])
                else ""
            )
        )
        if dry_run:
            _dry_run(
                stats,
                factors=factors,
                encoding=encoding,
                prior_key=prior_key,
                device=device,
                dtype=dtype,
            )
            return
        model = ps.train.fit(
            stats,
            encoding=encoding,  # type: ignore[arg-type]
            prior_key=prior_key,
            graph=not no_graph,
            parametrization=parametrization,  # type: ignore[arg-type]
            n_init=n_init,
            tol=tol,
            patience=patience,
            n_factors=factors,
            lam=lam,
            rho=rho,
            max_epochs=epochs,
            stopping=stopping,  # type: ignore[arg-type]
            device=device,
            dtype=dtype,  # type: ignore[arg-type]
            rng=seed,
            progress=progress,
        )
        model.save(out, overwrite=overwrite)
    except _USER_ERRORS as err:
        _fail(err)
    typer.echo(model.summary())
    typer.echo(f"model written to {out}")


def _dry_run(
    stats, *, factors: int, encoding: str, prior_key: str | None, device: str, dtype: str
) -> None:
    import scipy.sparse as sp

    from pertspectra._keys import KEYS
    from pertspectra.design import build_design
    from pertspectra.stats._forecast import forecast_fit, format_forecast

    design = build_design(list(stats.obs_names), encoding=encoding)  # type: ignore[arg-type]
    key = prior_key or KEYS.prior
    n_edges = (
        int((sp.triu(sp.csr_matrix(stats.varp[key]), k=1) != 0).sum()) if key in stats.varp else 0
    )
    est = forecast_fit(
        stats.n_obs,
        stats.n_vars,
        len(design.columns),
        factors,
        n_edges=n_edges,
        device=device,
        dtype=dtype,
    )
    typer.echo(format_forecast(est))


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Model folder from `pertspectra fit`.")],
    labels: Annotated[list[str], typer.Argument(help="Labels to predict, e.g. 'A+B' 'C'.")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="CSV (or .parquet) to write: rows labels, columns genes."),
    ],
) -> None:
    """Predict mean expression for labels made of seen perturbations (combinations included)."""
    import pertspectra as ps
    from pertspectra._utils import atomic_path

    try:
        model = ps.model.load_model(model_dir)
        pred = model.predict(labels)
        with atomic_path(out) as tmp:
            if out.suffix == ".parquet":
                pred.to_parquet(tmp)
            else:
                pred.to_csv(tmp)
    except _USER_ERRORS as err:
        _fail(err)
    typer.echo(f"wrote {pred.shape[0]} label(s) x {pred.shape[1]} genes to {out}")


@app.command()
def info(model_dir: Annotated[Path, typer.Argument(help="Model folder.")]) -> None:
    """Describe a saved model."""
    import pertspectra as ps

    try:
        model = ps.model.load_model(model_dir)
    except _USER_ERRORS as err:
        _fail(err)
    typer.echo(model.summary())
    typer.echo(
        "labels: " + ", ".join(model.labels[:20]) + (" ..." if len(model.labels) > 20 else "")
    )


def _register_optional() -> None:
    try:
        from pertspectra.priors._cli import prior_command
    except ImportError:  # pragma: no cover - priors subpackage missing
        return
    app.command("prior", help="Build the STRING prior graph for a dataset (writes a new .h5ad).")(
        prior_command
    )


_register_optional()


def main() -> None:
    """Entry point of the ``pertspectra`` script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
