"""The report of a screen fitted under several conditions: one section per condition.

Results come from a condition model when the model folder is a
:class:`~pertspectra.model.ConditionModel` or the stored programs / similarity tables carry a
``condition`` column (``pertspectra programs`` and ``pertspectra similarity`` on a condition
model folder). The report then keeps its overview sections (data, fit, scorecard, every program
with its ``condition`` and ``block``) and, instead of the single perturbation, similarity and
clustering sections, gets one section per condition (id ``condition-<name>``) holding that
condition's own programs, what each perturbation moves there, its similarity, clusters and
benchmarks; a last section says whether each perturbation does the same in every two
conditions (``condition_agreement.csv``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..model import ConditionModel
from ._tables import table_html
from ._verdict import HEADLINE, program_verdict, scorecard_verdict, similarity_verdict

if TYPE_CHECKING:
    from ..evaluate import Scorecard
    from ._collect import Results

#: ``block`` of the programs every condition shares (as :mod:`pertspectra.enrich` writes it).
SHARED = "shared"
CONDITION = "condition"


def conditions_of(results: Results) -> list[str] | None:
    """The conditions of the results, in model order; ``None`` for a one-condition screen."""
    model = results.model
    if model is not None and hasattr(model, "conditions"):
        return list(model.conditions)
    found: list[str] = []
    progs = results.programs or {}
    table = progs.get("perturbations")
    if table is not None and CONDITION in table:
        found += [str(c) for c in table[CONDITION].dropna()]
    sim = (results.similarity or {}).get("similarity")
    if sim is not None and CONDITION in (sim.index.names or []):
        found += [str(c) for c in sim.index.get_level_values(CONDITION)]
    return list(dict.fromkeys(found)) or None


def section_id(condition: str, taken: set[str]) -> str:
    """An HTML id ``condition-<name>`` (odd characters as ``-``), unique among ``taken``."""
    base = "condition-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", condition).strip("-") or "x")
    key, i = base, 2
    while key in taken:
        key, i = f"{base}-{i}", i + 1
    taken.add(key)
    return key


def _rows(table: pd.DataFrame | None, condition: str, *, shared: bool) -> pd.DataFrame | None:
    """Rows of ``condition`` (and, with ``shared``, of the shared block), ``condition`` dropped."""
    if table is None or CONDITION not in table:
        return table
    keep = table[CONDITION].astype(str) == condition
    if shared and "block" in table:
        keep |= table["block"] == SHARED
    return table[keep].drop(columns=[CONDITION])


def _level(table: pd.DataFrame | None, condition: str) -> pd.DataFrame | None:
    """The part of ``table`` under index level ``condition`` (NaN-only columns dropped)."""
    if table is None or CONDITION not in (table.index.names or []):
        return table
    values = table.index.get_level_values(CONDITION).astype(str)
    part = table[values == condition].droplevel(CONDITION)
    if set(part.index) <= set(part.columns):  # a stacked square matrix: square again
        part = part[list(part.index)]
    return part


def condition_programs(programs: dict[str, Any], condition: str) -> dict[str, Any]:
    """The stored programs tables of one condition (shared programs and its own)."""
    perts = _rows(programs.get("perturbations"), condition, shared=False)
    diag = _rows(programs.get("diagnostics"), condition, shared=True)
    if diag is not None and perts is not None and "mean_abs_effect" in diag:
        diag = diag.copy()
        diag["mean_abs_effect"] = (
            perts.groupby("program")["effect"].apply(lambda s: s.abs().mean()).reindex(diag.index)
        )
    return {
        **programs,
        "genes": _rows(programs.get("genes"), condition, shared=True),
        "terms": _rows(programs.get("terms"), condition, shared=True),
        "perturbations": perts,
        "diagnostics": diag,
        "recovery": _rows(programs.get("recovery"), condition, shared=False),
        "recovery_summary": _rows(programs.get("recovery_summary"), condition, shared=False),
    }


def condition_similarity(similarity: dict[str, Any], condition: str) -> dict[str, Any]:
    """The stored similarity tables of one condition (a square similarity matrix again)."""
    out = dict(similarity)
    out["similarity"] = _level(similarity["similarity"], condition)
    out["clusters"] = _level(similarity.get("clusters"), condition)
    for key in ("cluster_terms", "benchmark", "pr_curves"):
        out[key] = _rows(similarity.get(key), condition, shared=False)
    return out


def condition_card(card: Scorecard | None, condition: str) -> Scorecard | None:
    """The scorecard's metrics and summary of one condition (``None`` when it has none).

    Predictions and observed means are left out (they are indexed by all conditions' labels).
    """
    if card is None or CONDITION not in card.metrics or CONDITION not in card.summary:
        return None
    mine = card.metrics[CONDITION].astype(str) == condition
    if not mine.any():
        return None
    summary = card.summary[card.summary[CONDITION].astype(str) == condition]
    return replace(card, metrics=card.metrics[mine], summary=summary, predictions={}, observed={})


def scorecard_overview(results: Results) -> dict[str, Any]:
    """The headline means per regime, condition and method (the details are per condition)."""
    card = results.scorecard
    if card is None:
        return {}
    s = card.summary
    head = s[s["metric"].isin(list(HEADLINE))]
    keys = ["regime", CONDITION, "method"] if CONDITION in head else ["regime", "method"]
    means = head.drop_duplicates([*keys, "metric"]).pivot_table(
        index=keys, columns="metric", values="mean"
    )
    facts = [(k, card.settings.get(k)) for k in ("protocol", "folds", "split_seed", "seed")]
    return {
        "facts": facts,
        "tables": [
            ("Mean per condition and method (headline metrics)", table_html(means.reset_index()))
        ],
    }


def condition_results(results: Results, condition: str) -> Results:
    """``results`` cut to one condition: its scorecard, programs and similarity tables."""
    return replace(
        results,
        scorecard=condition_card(results.scorecard, condition),
        programs=None
        if results.programs is None
        else condition_programs(results.programs, condition),
        similarity=None
        if results.similarity is None
        else condition_similarity(results.similarity, condition),
    )


def condition_facts(results: Results, condition: str) -> list[tuple[str, Any]]:
    """Labels, cells and programs of one condition, from the model folder."""
    model = results.model
    if not isinstance(model, ConditionModel):
        return []
    t = model.training
    missing = t.get("statistics", {}).get("missing_in_condition", {}).get(condition, [])
    return [
        ("labels fitted", len(model.condition_labels[condition])),
        ("cells", t.get("cells_per_condition", {}).get(condition, "unknown")),
        ("labels not fitted here (too few cells)", ", ".join(map(str, missing)) or "none"),
        ("programs", f"{model.W.shape[0]} shared + {model.condition_factors} of its own"),
    ]


def condition_verdict(results: Results, conditions: list[str]) -> list[str]:
    """The programs and similarity verdicts of each condition, each line naming its condition."""
    out: list[str] = []
    for c in conditions:
        part = condition_results(results, c)
        if part.scorecard is not None:
            out += [f"{c}: {line}" for line in scorecard_verdict(part.scorecard)]
    for c in conditions:
        part = condition_results(results, c)
        if part.programs is not None:
            lines = program_verdict(part.programs, n_labels=2)
            if lines and not out:
                out.append(
                    lines[0].replace("The perturbations", "In each condition, the perturbations")
                )
            out += [f"{c}: {line}" for line in lines[1:]]
        if part.similarity is not None and part.similarity["similarity"] is not None:
            out += [f"{c}: {line}" for line in similarity_verdict(part.similarity)]
    agreement = (results.similarity or {}).get("agreement")
    if agreement is not None and len(agreement):
        out.append(
            f"Across conditions, a perturbation's profile in two conditions has median similarity "
            f"{agreement['similarity'].median():.3f}, against {agreement['others'].median():.3f} "
            "with the other perturbations (higher: it does the same in both)."
        )
    return out


def agreement_section(results: Results) -> dict[str, Any]:
    """Whether each perturbation does the same in every two conditions."""
    agreement = (results.similarity or {}).get("agreement")
    if agreement is None or agreement.empty:
        return {}
    wide = agreement.assign(
        pair=agreement["condition1"] + " vs " + agreement["condition2"],
        excess=agreement["similarity"] - agreement["others"],
    )
    view = wide.pivot_table(index="label", columns="pair", values="excess", sort=False)
    return {
        "facts": [("features compared", int(agreement["n_features"].max()))],
        "tables": [
            (
                "Similarity to itself minus similarity to the other perturbations, per pair of "
                "conditions (above 0: the perturbation does the same in both)",
                table_html(view.reset_index()),
            ),
            ("Every label and pair of conditions", table_html(agreement)),
        ],
    }
