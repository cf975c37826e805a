"""What ``fit``, ``predict`` and ``info`` do differently for a screen under several conditions.

``pertspectra fit --condition-key C`` fits :func:`pertspectra.train.fit_conditions` and saves a
:class:`~pertspectra.model.ConditionModel` folder; ``predict`` and ``info`` recognise such a
folder (:func:`pertspectra.model.is_condition_model`) and load it with
:meth:`~pertspectra.model.ConditionModel.load`, any other with
:func:`~pertspectra.model.load_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._keys import KEYS, STATS_UNS
from ._common import split_list

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData

    from ..model import ConditionModel, FittedModel


def check_options(
    *,
    perturbation_key: str,
    condition_key: str | None,
    condition_factors: int | None,
    pseudobulk: bool,
) -> None:
    """Refuse inconsistent condition options before any data is read (one-line ``ValueError``)."""
    if condition_key is None:
        if condition_factors is not None:
            msg = (
                "--condition-factors applies to a fit under several conditions: pass "
                "--condition-key COLUMN too (the obs column of conditions)"
            )
            raise ValueError(msg)
        return
    if condition_key == perturbation_key:
        msg = (
            f"--condition-key and --perturbation-key are the same column ({condition_key!r}); "
            "the conditions (cell line, treatment, ...) must be a column of their own"
        )
        raise ValueError(msg)
    if condition_factors is not None and condition_factors < 0:
        msg = f"--condition-factors must be >= 0, got {condition_factors}"
        raise ValueError(msg)
    if pseudobulk:
        msg = (
            "--condition-key needs cell-level data: --pseudobulk input holds one mean per "
            "label, not per (label, condition)"
        )
        raise ValueError(msg)


def describe_stats(stats: AnnData) -> str:
    """``"10 labels in 3 conditions (29 (label, condition) groups), 2540 cells, 500 genes"``."""
    conditions = list(stats.uns[STATS_UNS]["conditions"])
    labels = stats.obs["label"].astype(str).unique()
    return (
        f"{len(labels)} labels in {len(conditions)} conditions ({', '.join(map(str, conditions))}; "
        f"{stats.n_obs} (label, condition) groups), {int(stats.obs['n_cells'].sum())} cells, "
        f"{stats.n_vars} genes"
    )


def forecast(stats: AnnData, options: dict[str, Any], condition_factors: int | None) -> str:
    """The ``--dry-run`` text of a fit under several conditions.

    :func:`pertspectra.train.forecast_fit` at the condition model's sizes: one row per
    (label, condition) group, loadings ``P`` for every condition (counted as conditions x
    design columns) and the shared plus one condition's own factors.
    """
    import scipy.sparse as sp

    import pertspectra as ps

    info = stats.uns[STATS_UNS]
    conditions = list(info["conditions"])
    parser = ps.design.LabelParser(
        separator=str(info.get("separator", "+")), controls=tuple(info.get("controls", ()))
    )
    design = ps.design.build_design(
        dict.fromkeys(str(x) for x in stats.obs["label"]),
        encoding=options["encoding"],
        parser=parser,
    )
    if options["n_factors"] == "signal":
        msg = "--n-factors signal is not available with --condition-key: pass a number"
        raise ValueError(msg)
    n_shared = options["n_factors"] or ps.model.default_n_factors(
        stats.n_vars, n_perturbations=design.n_perturbations
    )
    n_own = (
        ps.train.default_condition_factors(n_shared)
        if condition_factors is None
        else condition_factors
    )
    key = options["prior_key"] or KEYS.prior
    if options["prior_key"] is not None and key not in stats.varp:
        msg = f"varp[{key!r}] not found; build one with `pertspectra prior` or pass --prior"
        raise KeyError(msg)
    n_edges = 0
    if options["graph"] and key in stats.varp:
        n_edges = int((sp.triu(sp.csr_matrix(stats.varp[key]), k=1) != 0).sum())
    result = ps.train.forecast_fit(
        n_labels=stats.n_obs,
        n_genes=stats.n_vars,
        n_design=len(conditions) * len(design.columns),
        n_factors=n_shared + n_own,
        n_edges=n_edges,
        device=options["device"],
        dtype=options["dtype"],
        graph=options["graph"],
        matmul_precision=options.get("matmul_precision"),
    )
    note = (
        f"under {len(conditions)} conditions: {stats.n_obs} (label, condition) groups, loadings "
        f"per condition ({len(conditions)} x {len(design.columns)} design columns), "
        f"{n_shared} shared + {n_own} own factors per condition (sizes approximate)"
    )
    return f"{ps.train.format_forecast(result)}\n{note}"


def fit_warnings(model: ConditionModel) -> list[str]:
    """:func:`pertspectra.enrich.condition_fit_warnings`: each condition's warnings, each once."""
    import pertspectra as ps

    return ps.enrich.condition_fit_warnings(model)


def load(model_dir: Path) -> FittedModel | ConditionModel:
    """The model in ``model_dir``: a :class:`~pertspectra.model.ConditionModel` or a plain one."""
    import pertspectra as ps

    if ps.model.is_condition_model(model_dir):
        return ps.model.ConditionModel.load(model_dir)
    return ps.model.load_model(model_dir)


def predict(
    model: ConditionModel, model_dir: Path, labels: list[str], condition: list[str] | None
) -> pd.DataFrame:
    """(condition, label) x genes for the conditions asked for.

    ``None``: every condition where a label can be predicted (the library warns naming the
    (condition, label) pairs left out, printed as a ``warning:`` line).

    Raises
    ------
    KeyError
        On an unknown condition, a perturbation never seen in a condition asked for by name
        (naming both, and the conditions where every label can be predicted), or a
        perturbation seen in no condition.
    """
    if not split_list(condition):
        _refuse_unknown(model, model_dir, labels)
        return model.predict(labels)
    names = split_list(condition)
    unknown = [c for c in dict.fromkeys(names) if c not in model.conditions]
    if unknown:
        msg = (
            f"unknown condition(s) {unknown} for --condition; {model_dir} was fitted under "
            f"{', '.join(model.conditions)} (obs[{model.condition_key!r}])"
        )
        raise KeyError(msg)
    names = list(dict.fromkeys(names))
    try:
        return model.predict(labels, condition=names)
    except KeyError as err:
        text = str(err.args[0]) if err.args else "unknown label"
        _refuse_unknown(model, model_dir, labels)
        usable = [c for c in model.conditions if _predictable(model, c, labels)]
        hint = (
            f"; every label can be predicted in {', '.join(usable)} (--condition {','.join(usable)})"
            if usable
            else "; no condition saw every perturbation of these labels"
        )
        raise KeyError(text + hint) from None


def _refuse_unknown(model: ConditionModel, model_dir: Path, labels: list[str]) -> None:
    """A ``KeyError`` naming perturbations of ``labels`` that no condition saw."""
    known = set(model.design.columns)
    nowhere = sorted(
        {t for lab in labels for t in model.design.parser.tokens(lab) if t not in known}
    )
    if nowhere:
        msg = (
            f"unknown perturbation(s) {nowhere}: not seen in any condition of {model_dir} "
            f"({', '.join(model.conditions)})"
        )
        raise KeyError(msg)


def _predictable(model: ConditionModel, condition: str, labels: list[str]) -> bool:
    try:
        model.condition(condition).predict(labels)
    except KeyError:
        return False
    return True


def info_lines(model: ConditionModel) -> list[str]:
    """``pertspectra info`` of a condition model: its summary, its labels, what each condition lacks."""
    lines = [model.summary(), _labels_line("labels", model.labels)]
    for c in model.conditions:
        missing = [lab for lab in model.labels if lab not in set(model.condition_labels[c])]
        if missing:
            lines.append(_labels_line(f"not fitted in {c} (too few cells)", missing))
    return lines


def _labels_line(head: str, labels: list[str]) -> str:
    return f"{head}: " + ", ".join(labels[:20]) + (" ..." if len(labels) > 20 else "")
