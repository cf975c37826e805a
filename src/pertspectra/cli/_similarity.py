"""``pertspectra similarity``: which perturbations act alike, scored against known pairs.

For a model fitted under several conditions (:func:`pertspectra.model.is_condition_model`) every
table is made per condition (each condition's labels, embeddings and clusters) and written
under the same file names with a leading ``condition`` column; ``condition_agreement.csv``
adds whether each perturbation does the same in every two conditions
(:func:`pertspectra.similarity.condition_agreement`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import _options as o
from ._common import command, input_file, provenance, split_list
from ._interpret import load_any_model, read_gene_sets

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData

    from pertspectra.model import FittedModel

app = typer.Typer()

#: chosen by measurement (docs/similarity.md): correlation of the predicted changes in gene space
DEFAULT_EMBEDDING = "gene_change"
DEFAULT_METRIC = "correlation"
#: Written for a model fitted under several conditions only.
AGREEMENT_FILE = "condition_agreement.csv"

#: What ``pertspectra similarity`` writes into its folder.
SIMILARITY_FILES = (
    "similarity.csv", "clusters.csv", "cluster_terms.csv", "benchmark.csv", "pr_curves.csv",
    "settings.json", AGREEMENT_FILE,
)  # fmt: skip


def _read_data(
    data: Path,
    *,
    model: Any,
    perturbation_key: str | None,
    condition_key: str | None,
    pseudobulk: bool,
    control: list[str] | None,
    exclude_labels: list[str] | None,
    normalize: str | None,
    min_cells: int,
) -> dict[str | None, AnnData]:
    """The screen's perturbation-level statistics: ``{None: stats}``, or one per condition."""
    import anndata as ad

    import pertspectra as ps

    if perturbation_key is None:
        msg = "--data needs --perturbation-key"
        raise ValueError(msg)
    conditions = getattr(model, "conditions", None)
    if conditions is not None and pseudobulk:
        msg = "--pseudobulk holds one mean per label; a condition model needs the cells of --data"
        raise ValueError(msg)
    adata = ad.read_h5ad(input_file(data))
    first = model.condition(conditions[0]) if conditions is not None else model
    first.check_genes(adata.var_names, source=f"--data {data}")
    controls = split_list(control) or None
    excluded = split_list(exclude_labels)
    if pseudobulk:
        stats = ps.stats.from_pseudobulk(
            adata, perturbation_key=perturbation_key, controls=controls, exclude_labels=excluded
        )
        return {None: stats}
    if normalize == "log1p":
        ps.stats.normalize_log1p(adata)
    elif normalize is not None:
        msg = f"--normalize must be 'log1p', got {normalize!r}"
        raise ValueError(msg)
    stats = ps.stats.compute_group_stats(
        adata, perturbation_key=perturbation_key, controls=controls, exclude_labels=excluded,
        min_cells=min_cells, progress=False,
        condition_key=None if conditions is None else condition_key or model.condition_key,
    )  # fmt: skip
    if conditions is None:
        return {None: stats}
    per_condition: dict[str | None, AnnData] = {}
    per_condition.update(ps.similarity.condition_data(stats))
    return per_condition


def _analyse(
    model: FittedModel,
    stats: AnnData | None,
    *,
    kinds: list[str],
    embedding: str,
    metric: str,
    sets: dict[str, list[str]] | None,
    known: dict[str, pd.DataFrame],
    n_clusters: int | None,
    authors_scoring: bool,
    permutations: int,
    seed: int,
) -> dict[str, Any]:
    """Embeddings, similarity, clusters and benchmarks of one (one-condition) model."""
    import pandas as pd

    import pertspectra as ps

    embeddings = {
        k: ps.similarity.embedding(model, kind=k, data=stats)  # type: ignore[arg-type]
        for k in kinds
    }
    sim = ps.similarity.similarity_matrix(embeddings[embedding], metric=metric)  # type: ignore[arg-type]
    clusters = ps.similarity.cluster(sim, n_clusters=n_clusters)
    terms = None
    if sets is not None:
        terms = ps.similarity.cluster_terms(clusters, sets)
    summary = ps.similarity.cluster_summary(clusters, terms)
    table = clusters.rename("cluster").to_frame()
    if terms is not None:
        table["top_terms"] = table["cluster"].map(summary["top_terms"])
    bench = curves = None
    if known:
        bench = ps.similarity.benchmark_pairs(
            embeddings, known, metric=metric,  # type: ignore[arg-type]
            n_permutations=permutations, seed=seed,
        )  # fmt: skip
        curves = ps.similarity.precision_recall_curves(embeddings, known, metric=metric)  # type: ignore[arg-type]
        if authors_scoring:
            rows = []
            for fname, known_pairs in known.items():
                for ename, emb in embeddings.items():
                    score = ps.similarity.score_pairs_authors(emb, known_pairs)
                    rows += [
                        {
                            "pairs_file": fname, "embedding": ename, "metric": "authors_euclidean",
                            "score": name, "value": score[name],
                            "prevalence": score["prevalence"], "n_positive": score["n_positive"],
                            "p_value": float("nan"),
                        }
                        for name in ("auprc_trapezoid", "best_f1")
                    ]  # fmt: skip
            bench = pd.concat([bench, pd.DataFrame(rows)], ignore_index=True)
    return {
        "embeddings": embeddings, "similarity": sim, "clusters": clusters, "table": table,
        "terms": terms, "bench": bench, "curves": curves,
    }  # fmt: skip


def _stacked(results: dict[Any, dict[str, Any]], key: str, index: list[str]) -> pd.DataFrame | None:
    """One table of every condition's ``key``, ``condition`` first, then ``index`` as columns."""
    import pandas as pd

    frames = []
    for c, res in results.items():
        table = res[key]
        if table is None:
            continue
        table = table.reset_index() if key == "table" else table
        frames.append(table.assign(condition=c))
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).set_index(["condition", *index])


def _echo_benchmark(bench: pd.DataFrame, metric: str) -> None:
    ap = bench[(bench["score"] == "average_precision") & (bench["metric"] == metric)]
    view = ap.pivot_table(index="pairs_file", columns="embedding", values="value")
    view.insert(0, "n_positive", ap.groupby("pairs_file")["n_positive"].first())
    view.insert(1, "prevalence", ap.groupby("pairs_file")["prevalence"].first())
    typer.echo("average precision over unordered pairs of perturbations:")
    typer.echo(view.round(3).to_string())


@command(app, "similarity")
def similarity(
    model_dir: Annotated[
        Path,
        typer.Argument(
            help="Model folder from `pertspectra fit` (with or without --condition-key)."
        ),
    ],
    out: o.Out,
    embedding: Annotated[
        str,
        typer.Option(
            help="'gene_change' (default: predicted change vs control), 'program_change', "
            "'P' (the paper's), or with --data 'data_change' / 'data_pca'."
        ),
    ] = DEFAULT_EMBEDDING,
    metric: Annotated[
        str, typer.Option(help="'correlation' (default), 'cosine' or 'euclidean'.")
    ] = DEFAULT_METRIC,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Screen .h5ad (cells, or one mean per label with --pseudobulk): "
            "adds the raw-data baselines."
        ),
    ] = None,
    perturbation_key: Annotated[
        str | None, typer.Option(help="obs column with perturbation labels (with --data).")
    ] = None,
    condition_key: Annotated[
        str | None,
        typer.Option(
            help="obs column of conditions in --data, for a model fitted under several "
            "conditions (default: the column the model was fitted with)."
        ),
    ] = None,
    pseudobulk: Annotated[
        bool, typer.Option("--pseudobulk", help="--data holds one mean per label.")
    ] = False,
    control: o.Control = None,
    exclude_labels: o.ExcludeLabels = None,
    normalize: o.Normalize = None,
    min_cells: o.MinCells = 50,
    pairs: Annotated[
        list[Path] | None,
        typer.Option("--pairs", help="Known gene-pair file (entity1,entity2); repeatable."),
    ] = None,
    gene_sets: Annotated[
        list[Path] | None,
        typer.Option("--gene-sets", help="GO BP GMT: names each cluster by its top terms."),
    ] = None,
    n_clusters: Annotated[
        int | None, typer.Option(help="Flat clusters (default: best silhouette).")
    ] = None,
    authors_scoring: Annotated[
        bool,
        typer.Option(
            "--authors-scoring",
            help="Also score as the paper's authors did (Euclidean on the embedding, min-max per "
            "column, diagonal and both orientations counted, trapezoidal AUPRC), to compare with "
            "their published numbers.",
        ),
    ] = False,
    permutations: Annotated[int, typer.Option(help="Label shuffles of the p-values.")] = 1000,
    seed: o.Seed = 0,
    overwrite: o.Overwrite = False,
) -> None:
    """Similarity of the single perturbations, clusters, and scores against known pairs."""
    import pertspectra as ps
    from pertspectra.io import write_json, write_table

    from .._utils import atomic_path, check_output_folder

    check_output_folder(
        out, overwrite=overwrite, allowed=SIMILARITY_FILES, what="a similarity folder",
        inputs=[model_dir, data, *(pairs or []), *(gene_sets or [])],
    )  # fmt: skip
    model: Any = load_any_model(model_dir)  # FittedModel or ConditionModel (conditions set)
    conditions = getattr(model, "conditions", None)
    if conditions is None and condition_key is not None:
        msg = f"--condition-key applies to a model fitted under several conditions; {model_dir} is not one"
        raise ValueError(msg)
    if condition_key is not None and data is None:
        msg = (
            f"--condition-key {condition_key} names the obs column of conditions in --data; "
            "pass --data too (or drop --condition-key)"
        )
        raise ValueError(msg)
    if embedding not in ps.similarity.EMBEDDINGS:
        msg = f"--embedding must be one of {', '.join(ps.similarity.EMBEDDINGS)}; got {embedding!r}"
        raise ValueError(msg)
    if embedding.startswith("data") and data is None:
        msg = f"--embedding {embedding} needs --data"
        raise ValueError(msg)
    # knowledge files first (cheap, and checked against the model's genes before any work)
    targets = {t for label in model.labels for t in str(label).split("+")}
    sets = read_gene_sets(gene_sets, genes=[*model.genes, *targets]) if gene_sets else None
    known: dict[str, pd.DataFrame] = {}
    for p in pairs or []:
        known[p.name.split(".")[0]] = pair_table = ps.similarity.read_gene_pairs(
            input_file(p, "pairs file")
        )
        ps.priors.check_pairs_named(pair_table, targets, source=f"pairs file {p}")
    views = {None: model} if conditions is None else {c: model.condition(c) for c in conditions}
    stats: dict[str | None, AnnData] = {}
    if data is not None:
        stats = _read_data(
            data, model=model, perturbation_key=perturbation_key, condition_key=condition_key,
            pseudobulk=pseudobulk, control=control, exclude_labels=exclude_labels,
            normalize=normalize, min_cells=min_cells,
        )  # fmt: skip
        absent = [c for c in views if c not in stats]
        if absent:
            msg = f"--data has no cells of condition(s) {absent} (it has {sorted(map(str, stats))})"
            raise ValueError(msg)
    kinds = [k for k in ps.similarity.EMBEDDINGS if data is not None or not k.startswith("data")]
    results = {
        c: _analyse(
            view,
            stats.get(c),
            kinds=kinds,
            embedding=embedding,
            metric=metric,
            sets=sets,
            known=known,
            n_clusters=n_clusters,
            authors_scoring=authors_scoring,
            permutations=permutations,
            seed=seed,
        )
        for c, view in views.items()
    }
    settings = {
        "model": str(model_dir), "embedding": embedding, "metric": metric,
        "embeddings_scored": kinds, "data": None if data is None else str(data),
        "pairs": [str(p) for p in pairs or []], "gene_sets": [str(g) for g in gene_sets or []],
        "permutations": permutations,
        **provenance(model_dir, data, *(pairs or []), *(gene_sets or []), seed=seed),
    }  # fmt: skip
    n_found = {c: int(r["clusters"].nunique()) for c, r in results.items()}
    if conditions is None:
        settings["n_clusters"] = n_found[None]
        tables = {k: results[None][k] for k in ("similarity", "table", "terms", "bench", "curves")}
        for k in ("bench", "curves"):
            if tables[k] is not None:
                tables[k] = tables[k].set_index("pairs_file")
        agreement = None
    else:
        settings |= {
            "conditions": list(conditions), "condition_key": model.condition_key,
            "n_clusters": n_found,
        }  # fmt: skip
        tables = {
            "similarity": ps.similarity.stack_conditions(
                {str(c): r["similarity"] for c, r in results.items()}
            ),
            "table": _stacked(results, "table", ["label"]),
            "terms": _stacked(results, "terms", []),
            "bench": _stacked(results, "bench", ["pairs_file"]),
            "curves": _stacked(results, "curves", ["pairs_file"]),
        }
        agreement = None
        if embedding != "data_pca":
            agreement = ps.similarity.condition_agreement(
                {str(c): r["embeddings"][embedding] for c, r in results.items()},
                metric=metric,  # type: ignore[arg-type]
            )
    with atomic_path(out, directory=True) as tmp:  # all files or none, no stale ones
        write_table(tables["similarity"], tmp / "similarity.csv")
        write_table(tables["table"], tmp / "clusters.csv")
        if tables["terms"] is not None:
            write_table(tables["terms"], tmp / "cluster_terms.csv")
        if tables["bench"] is not None:
            write_table(tables["bench"], tmp / "benchmark.csv")
        if tables["curves"] is not None:
            write_table(tables["curves"], tmp / "pr_curves.csv")
        if agreement is not None:
            agreement.to_csv(tmp / AGREEMENT_FILE, index=False)
        write_json(settings, tmp / "settings.json")
    for c, r in results.items():
        where = "" if c is None else f"{c}: "
        typer.echo(
            f"{where}{len(r['similarity'])} perturbations, embedding {embedding}, metric {metric}: "
            f"{n_found[c]} clusters"
        )
        if r["bench"] is not None:
            _echo_benchmark(r["bench"], metric)
    if agreement is not None and len(agreement):
        typer.echo(
            f"across conditions: a perturbation's {embedding} in two conditions has median "
            f"{metric} {agreement['similarity'].median():.3f} (with other perturbations: "
            f"{agreement['others'].median():.3f}); per pair in {AGREEMENT_FILE}"
        )
    typer.echo(f"written to {out}")
