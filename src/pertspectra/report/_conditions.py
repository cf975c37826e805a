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

import numpy as np
import pandas as pd

from ..model import ConditionModel
from ..stats._conditions import group_name
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
    """The programs and similarity verdicts of each condition, each line naming its condition.

    With a scorecard, each condition's lines say how the fits compare with the baselines and
    whether sharing programs helps there (:func:`sharing_verdict`).
    """
    out: list[str] = []
    for c in conditions:
        part = condition_results(results, c)
        if part.scorecard is not None:
            out += [f"{c}: {line}" for line in scorecard_verdict(part.scorecard)]
            sharing = sharing_verdict(part.scorecard, c)
            if sharing is not None:
                out.append(sharing)
    explained = False  # the programs' lines are explained once, before the first of them
    for c in conditions:
        part = condition_results(results, c)
        if part.programs is not None:
            lines = program_verdict(part.programs, n_labels=2)
            if lines and not explained:
                out.append(
                    lines[0].replace("The perturbations", "In each condition, the perturbations")
                )
                explained = True
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


#: The fits the condition model is compared with (``versus`` of the scorecard's fit-vs-fit rows),
#: in words; ``{c}`` is the condition.
SHARING_VERSUS = {
    "pertspectra_pooled": "a fit ignoring the conditions",
    "pertspectra_separate": "a fit of {c} alone",
}
#: Short names of the regimes, for the sharing line.
SHARING_REGIMES = {"combinations": "held-out combinations", "cells": "held-out cells"}


def _gain(win: float, p: float) -> str:
    """``"p=0.004: a clear gain"``, ``"p=0.4: no clear gain"`` (two-sided, at 0.05)."""
    if not np.isfinite(p):
        return "too few labels for a test"
    if p < 0.05:
        return f"p={p:.2g}: a clear {'gain' if win > 0.5 else 'loss'}"
    return f"p={p:.2g}: no clear gain"


def sharing_verdict(card: Scorecard, condition: str) -> str | None:
    """Whether sharing programs helps in ``condition``: the condition model against the other fits.

    Read off the scorecard's fit-vs-fit summary rows (:func:`pertspectra.evaluate.evaluate_conditions`):
    ``pertspectra`` against ``pertspectra_pooled`` and ``pertspectra_separate`` on
    ``pearson_delta``, their win rate and Wilcoxon p-value. ``None`` when those rows are absent.
    """
    s = card.summary
    if CONDITION not in s or "versus" not in s:
        return None
    rows = s[
        (s[CONDITION].astype(str) == condition)
        & (s["method"] == "pertspectra")
        & (s["metric"] == "pearson_delta")
        & s["versus"].isin(list(SHARING_VERSUS))
        & np.isfinite(pd.to_numeric(s["win_rate"], errors="coerce"))
    ]
    if rows.empty:
        return None
    regimes = sorted(rows["regime"].unique())
    parts: list[str] = []
    for regime in regimes:
        block = rows[rows["regime"] == regime].drop_duplicates("versus").set_index("versus")
        clauses: list[str] = []
        for versus, words in SHARING_VERSUS.items():
            if versus in block.index:
                win = float(block.at[versus, "win_rate"])
                p = float(block.at[versus, "wilcoxon_p"])
                share = f"{win:.0%}" if clauses else f"{win:.0%} of labels"
                clauses.append(f"{words.format(c=condition)} on {share} ({_gain(win, p)})")
        where = f"on {SHARING_REGIMES.get(regime, regime)} " if len(regimes) > 1 else ""
        subject = "it" if parts else "the shared-program model"
        parts.append(f"{where}{subject} beats " + " and ".join(clauses))
    return f"In {condition}, by Pearson-delta per label, " + "; ".join(parts) + "."


def condition_data(model: ConditionModel, section: dict[str, Any]) -> None:
    """The data section (``section``) of a condition model, amended in place.

    Adds its condition key and conditions, shows the cells of each label in each condition
    (not per ``condition:label`` group) and names the labels dropped in a condition only.
    """
    t = model.training
    stats = t.get("statistics", {})
    conditions = list(model.conditions)
    cells = t.get("cells_per_label") or {}
    table = pd.DataFrame(
        {
            c: pd.Series(
                {lab: cells.get(group_name(lab, c)) for lab in model.condition_labels[c]},
                dtype="Int64",
            )
            for c in conditions
        },
        index=pd.Index(model.labels, name="label"),
    )
    tables = [(name, html) for name, html in section.get("tables", []) if name != "Cells per label"]
    if cells and table.notna().any().any():
        tables.insert(
            0,
            (
                "Cells per label in each condition (blank: too few cells there, not fitted)",
                table_html(table.reset_index()),
            ),
        )
    section["tables"] = tables
    missing = stats.get("missing_in_condition", {}) or {}
    dropped = ", ".join(map(str, stats.get("dropped_labels", [])))
    if missing:
        dropped = (dropped or "none in every condition") + "".join(
            f"; in {c}: " + ", ".join(map(str, labs)) for c, labs in missing.items()
        )
    facts = []
    for key, value in section.get("facts", []):
        if key == "dropped labels (too few cells)":
            value = dropped or "none"
        elif key == "min cells per label":
            key = "min cells per label in a condition"
        facts.append((key, value))
        if key == "perturbation key":
            facts += [("condition key", model.condition_key), ("conditions", ", ".join(conditions))]
    section["facts"] = facts


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
