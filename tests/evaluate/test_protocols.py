"""Splits: the authors' folds over combinations and stratified cell splits, as properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pertspectra.design import LabelParser
from pertspectra.evaluate import check_split, eligible_combinations, make_split


def _cells():
    gen = np.random.default_rng(0)
    labels = (
        ["ctrl"] * 100
        + ["A"] * 50 + ["B"] * 45 + ["C"] * 40 + ["D"] * 30
        + ["A+B"] * 20 + ["A+C"] * 21 + ["B+C"] * 22 + ["B+D"] * 23 + ["C+D"] * 24
        + ["A+E"] * 25  # E is not a single: ineligible
    )  # fmt: skip
    labels = list(gen.permutation(labels))
    cells = [f"c{i}" for i in range(len(labels))]
    return labels, cells


def test_eligible_combinations():
    labels, _ = _cells()
    assert eligible_combinations(labels) == ["A+B", "A+C", "B+C", "B+D", "C+D"]


def test_combinations_split_properties():
    labels, cells = _cells()
    split = make_split(labels, cells=cells, protocol="combinations", folds=5, split_seed=1)
    assert list(split.columns) == ["fold", "cell", "label", "role"]
    assert sorted(split["fold"].unique()) == [0, 1, 2, 3, 4]
    eligible = set(eligible_combinations(labels))
    held = []
    parser = LabelParser()
    for _, part in split.groupby("fold"):
        assert part["cell"].is_unique  # no cell in two roles of one fold
        assert len(part) == len(cells)
        test = part[part["role"] == "test"]
        test_combos = {lab for lab in test["label"] if "+" in lab}
        held += sorted(test_combos)
        assert test_combos <= eligible
        train_labels = set(part.loc[part["role"] == "train", "label"])
        assert not test_combos & train_labels  # a held-out combination has no training cell
        for combo in test_combos:  # its singles are in training
            assert set(parser.tokens(combo)) <= train_labels
        # every cell of a held-out combination is a test cell
        for combo in test_combos:
            assert (part.loc[part["label"] == combo, "role"] == "test").all()
        # the ineligible combination stays in training (80/20 train/val)
        ae = part[part["label"] == "A+E"]["role"].value_counts()
        assert ae.to_dict() == {"train": 20, "val": 5}
        # singles 64/16/20, stratified
        a = part[part["label"] == "A"]["role"].value_counts()
        assert a.to_dict() == {"train": 32, "test": 10, "val": 8}
    assert sorted(held) == sorted(eligible)  # folds cover every eligible combination once
    again = make_split(labels, cells=cells, protocol="combinations", folds=5, split_seed=1)
    pd.testing.assert_frame_equal(split, again)
    other = make_split(labels, cells=cells, protocol="combinations", folds=5, split_seed=2)
    assert not split.equals(other)


def test_cells_split_is_independent_per_fold():
    labels, cells = _cells()
    split = make_split(labels, cells=cells, protocol="cells", folds=3, split_seed=1)
    f0 = split[split.fold == 0].set_index("cell")["role"]
    f1 = split[split.fold == 1].set_index("cell")["role"]
    assert not f0.equals(f1)
    for _, part in split.groupby("fold"):
        counts = part[part.label == "ctrl"]["role"].value_counts().to_dict()
        assert counts == {"train": 64, "test": 20, "val": 16}


def test_auto_and_pseudobulk():
    labels, cells = _cells()
    assert set(make_split(labels, cells=cells, folds=2)["role"]) == {"train", "val", "test"}
    singles_only = [lab for lab in labels if "+" not in lab]
    auto = make_split(singles_only, cells=cells[: len(singles_only)], folds=2)
    assert (auto.groupby("fold")["role"].value_counts() > 0).all()
    rows = ["ctrl", "A", "B", "C", "A+B", "A+C", "B+C", "A+Z"]
    pb = make_split(rows, protocol="combinations", folds=3)
    assert (pb["cell"] == "").all()
    for _, part in pb.groupby("fold"):
        roles = dict(zip(part["label"], part["role"], strict=True))
        assert roles["A"] == roles["ctrl"] == roles["A+Z"] == "train"
    with pytest.raises(ValueError, match="needs cells"):
        make_split(rows, protocol="cells")
    with pytest.raises(ValueError, match="there is none"):
        make_split(["ctrl", "A", "A+Z"], protocol="combinations")
    with pytest.raises(ValueError, match="exceeds"):
        make_split(rows, protocol="combinations", folds=4)


def test_check_split_rejects_bad_tables():
    with pytest.raises(ValueError, match="lacks column"):
        check_split(pd.DataFrame({"fold": [0], "label": ["A"]}))
    with pytest.raises(ValueError, match="role"):
        check_split(pd.DataFrame({"fold": [0], "cell": ["c"], "label": ["A"], "role": ["x"]}))
    with pytest.raises(ValueError, match="two roles"):
        check_split(
            pd.DataFrame(
                {"fold": [0, 0], "cell": ["c", "c"], "label": ["A", "A"], "role": ["train", "test"]}
            )
        )
