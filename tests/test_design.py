from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pertspectra.design import LabelParser, build_design, canonical_labels


@pytest.mark.parametrize(
    ("raw", "canon"),
    [
        ("A+B", "A+B"),
        ("B+A", "A+B"),
        ("A+ctrl", "A"),
        ("ctrl+A", "A"),
        ("ctrl", "ctrl"),
        ("control", "ctrl"),
        ("non-targeting", "ctrl"),
        ("NT", "ctrl"),
        ("Non-Targeting", "ctrl"),
        ("ctrl+ctrl", "ctrl"),
        (" A + B ", "A+B"),
        ("CTRL1", "CTRL1"),  # exact tokens: a gene that merely starts with 'ctrl' is not a control
        ("NTRK1", "NTRK1"),  # 'NT' is not a substring match
    ],
)
def test_canonical_labels(raw, canon):
    assert LabelParser().canonical(raw) == canon


def test_custom_separator_and_control():
    parser = LabelParser(separator="_", controls=("safe",))
    assert parser.canonical("B_A") == "A_B"
    assert parser.canonical("safe") == "ctrl"
    assert parser.canonical("A+B") == "A+B"  # '+' is part of a name under another separator


def test_gene_encoding_rows():
    design = build_design(["ctrl", "A", "B", "A+B"])
    assert design.columns == ["A", "B", "ctrl", "basal"]
    np.testing.assert_array_equal(design.row("B+A"), [1, 1, 0, 1])
    np.testing.assert_array_equal(design.row("ctrl"), [0, 0, 1, 1])
    np.testing.assert_array_equal(design.row("A+ctrl"), [1, 0, 0, 1])
    with pytest.raises(KeyError, match=r"unknown perturbation.*'C'"):
        design.row("A+C")


def test_label_encoding_cannot_predict_unseen():
    design = build_design(["ctrl", "A", "B", "A+B"], encoding="label")
    assert design.columns == ["A", "A+B", "B", "ctrl", "basal"]
    np.testing.assert_array_equal(design.row("B+A"), [0, 1, 0, 0, 1])
    with pytest.raises(KeyError, match="cannot predict unseen"):
        build_design(["ctrl", "A", "B"], encoding="label").row("A+B")


def test_canonical_labels_drops_and_reports():
    raw = ["ctrl"] * 60 + ["A+ctrl"] * 30 + ["ctrl+A"] * 30 + ["B"] * 10 + ["none_detected"] * 70
    labels, summary = canonical_labels(raw, exclude_labels=["none_detected"], min_cells=50)
    assert list(labels.cat.categories) == ["ctrl", "A"]
    assert summary.n_cells.to_dict() == {"ctrl": 60, "A": 60}
    assert summary.dropped_small.to_dict() == {"B": 10}
    assert summary.excluded.to_dict() == {"none_detected": 70}
    assert labels.isna().sum() == 80
    assert "dropped 1 label" in summary.describe()


def test_canonical_labels_errors():
    with pytest.raises(ValueError, match="missing"):
        canonical_labels(pd.Series(["ctrl", None, "A"]), min_cells=1)
    with pytest.raises(ValueError, match="no control cells"):
        canonical_labels(["A", "B"], min_cells=1)
    with pytest.raises(ValueError, match="min_cells"):
        canonical_labels(["ctrl", "A"], min_cells=5)
