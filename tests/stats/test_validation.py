"""Input checks of the statistics pass, and its invariance to chunking and cell order."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from pertspectra._label_checks import NO_GUIDE_NAMES, is_no_guide, quiet_label_warnings, quietly
from pertspectra.design import DEFAULT_CONTROLS, LabelParser, canonical_labels
from pertspectra.stats import _group as group_module
from pertspectra.stats import compute_group_stats, from_pseudobulk
from pertspectra.stats._chunks import check_values


def _screen(labels, x=None, genes=None):
    n = len(labels)
    x = np.ones((n, 3)) if x is None else x
    a = ad.AnnData(
        X=x, obs=pd.DataFrame({"p": list(labels)}, index=[f"c{i}" for i in range(n)], dtype=object)
    )
    a.var_names = genes or [f"g{j}" for j in range(x.shape[1])]
    return a


def _stats(a, **kw):
    return compute_group_stats(a, perturbation_key="p", min_cells=1, progress=False, **kw)


# ---- values: how many, which cell, which gene -------------------------------------------------


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (np.nan, ["NaN or infinite", "3 NaN and 0 infinite"]),
        (-np.inf, ["0 NaN and 3 infinite"]),
        (-2.0, ["negative values: 3", "sc.pp.scale"]),
    ],
)
def test_check_values_counts_and_names_the_first(sparse, bad, words):
    x = np.ones((6, 4))
    x[2, 3] = x[4, 1] = x[5, 0] = bad
    chunk = sp.csr_matrix(x) if sparse else x
    genes = ["a", "b", "c", "d"]
    cells = [f"c{i}" for i in range(20)]
    with pytest.raises(ValueError, match="contains") as info:
        check_values(chunk, start=10, what="layer 'x'", cells=cells, genes=genes)
    text = str(info.value)
    for word in [*words, "layer 'x'", "cells 10-15", "first at cell 12 'c12', gene 'd'"]:
        assert word in text, (word, text)
    with pytest.raises(ValueError, match="first at cell 12, gene 3"):
        check_values(chunk, start=10, what="X")


def test_value_errors_name_cell_and_gene_in_backed_files(tmp_path):
    x = np.ones((30, 3))
    x[17, 2] = np.nan
    a = _screen(["ctrl", "A"] * 15, x, genes=["TP53", "MYC", "GATA1"])
    a.write_h5ad(tmp_path / "s.h5ad")
    backed = ad.read_h5ad(tmp_path / "s.h5ad", backed="r")
    try:
        with pytest.raises(ValueError, match="first at cell 17 'c17', gene 'GATA1'"):
            _stats(backed, chunk_size=4, allow_counts=True)
        with pytest.raises(KeyError, match=r"layer 'raw' not found .* available layers: \[\]"):
            _stats(backed, layer="raw")
    finally:
        backed.file.close()


# ---- names and options, before any value is read ----------------------------------------------


@pytest.fixture
def no_pass(monkeypatch):
    """Make any read of the values fail: the checks must come first."""

    def boom(*args, **kwargs):
        raise AssertionError("the values were read before the checks")

    monkeypatch.setattr(group_module, "iter_row_chunks", boom)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda a: a, KeyError, r"obs column 'pp' not found; available: \['p'\]; did you mean 'p'"),
        (lambda a: a.obs.iloc.__setitem__((0, 0), None), ValueError, r"missing \(NaN\).*'c0'"),
        (lambda a: a.obs.iloc.__setitem__((1, 0), " "), ValueError, "empty perturbation label"),
        (lambda a: a.obs.iloc.__setitem__((1, 0), "A "), ValueError, "'A ' .* and 'A' "),
        (lambda a: a.obs.iloc.__setitem__((1, 0), "A++B"), ValueError, "empty target"),
        (lambda a: setattr(a, "var_names", ["g0", "", "g2"]), ValueError, "empty"),
        (lambda a: setattr(a, "var_names", ["g0", "g0", "g2"]), ValueError, "duplicated gene"),
    ],
)
def test_name_checks_come_before_the_pass(no_pass, change, error, match):
    a = _screen(["ctrl", "A", "B", "A+B"] * 3)
    change(a)
    key = "pp" if error is KeyError else "p"
    with pytest.raises(error, match=match):
        compute_group_stats(a, perturbation_key=key, min_cells=1, progress=False)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"min_cells": 0}, "min_cells must be an integer >= 1"),
        ({"chunk_size": 0}, "chunk_size must be an integer >= 1"),
        ({"target_sum": -1.0}, "target_sum must be a positive number"),
        ({"controls": ["NTC"]}, r"control label\(s\) \['NTC'\] match no label in obs\['p'\]"),
    ],
)
def test_options_checked_before_the_pass(no_pass, kw, match):
    a = _screen(["ctrl", "A"] * 3)
    with pytest.raises(ValueError, match=match):
        compute_group_stats(a, perturbation_key="p", **{"min_cells": 1, **kw}, progress=False)


def test_no_control_says_which_option(no_pass):
    with pytest.raises(ValueError, match=r"no label in obs\['p'\] matches .* --control NAME"):
        _stats(_screen(["A", "B"] * 3))
    with pytest.raises(ValueError, match=r"have 2 cell\(s\), below min_cells=3; lower min_cells"):
        compute_group_stats(_screen(["ctrl", "A", "A"] * 2), perturbation_key="p", min_cells=3)


# ---- warnings: logged, recorded, silenced on subsets -------------------------------------------


def test_warnings_are_logged_and_recorded(caplog, tmp_path):
    labels = ["ctrl"] * 4 + ["Unassigned"] * 3 + ["A+B"] * 3 + ["C+D", "C"] * 2 + ["E", "e"]
    with caplog.at_level(logging.WARNING, logger="pertspectra"):
        stats = _stats(_screen(labels), exclude_labels=["multiplet"])
    text = caplog.text
    assert "['Unassigned']" in text
    assert "--exclude-labels Unassigned" in text
    assert "exclude_labels ['multiplet'] match no label" in text
    assert "'E' and 'e'" in text
    assert "A+B (never alone: A, B)" in text
    assert "A and B only ever occur together" in text
    assert "C+D (never alone: D)" in text
    info = stats.uns["pertspectra_stats"]
    assert info["no_guide_labels"] == ["Unassigned"]
    assert info["combinations_without_singles"] == ["A+B", "C+D"]
    assert info["never_alone"] == ["A", "B", "D"]
    stats.write_h5ad(tmp_path / "stats.h5ad")
    back = ad.read_h5ad(tmp_path / "stats.h5ad").uns["pertspectra_stats"]
    assert list(back["combinations_without_singles"]) == ["A+B", "C+D"]


def test_controls_are_never_no_guide_labels(caplog):
    with caplog.at_level(logging.WARNING, logger="pertspectra"):
        stats = _stats(_screen(["none", "A"] * 3), controls=["none"])
    assert "guide" not in caplog.text
    assert stats.uns["pertspectra_stats"]["no_guide_labels"] == []


def test_quiet_label_warnings(caplog):
    a = _screen(["ctrl", "doublet"] * 3)
    with caplog.at_level(logging.DEBUG, logger="pertspectra"), quiet_label_warnings():
        _stats(a)
    assert "doublet" in caplog.text
    assert all(r.levelno < logging.WARNING for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="pertspectra"):
        quietly(_stats)(a)
        assert all(r.levelno < logging.WARNING for r in caplog.records)
        _stats(a)
    assert any(r.levelno == logging.WARNING and "doublet" in r.message for r in caplog.records)


def test_dropped_labels_one_line_with_counts(caplog):
    a = _screen(["ctrl"] * 5 + ["A"] * 5 + ["B"] * 2 + ["C"])
    with caplog.at_level(logging.INFO, logger="pertspectra"):
        stats = compute_group_stats(a, perturbation_key="p", min_cells=3, progress=False)
    (line,) = [r.message for r in caplog.records if "below min_cells" in r.message]
    assert "dropped 2 label(s) below min_cells (3 cells): B (2), C (1)" in line
    info = stats.uns["pertspectra_stats"]
    assert (info["dropped_labels"], info["dropped_n_cells"]) == (["B", "C"], [2, 1])


def test_pseudobulk_gets_the_label_checks(caplog):
    means = _screen(["NT", "A", "A+B", "none_detected"])
    with caplog.at_level(logging.WARNING, logger="pertspectra"):
        stats = from_pseudobulk(means, perturbation_key="p")
    assert "none_detected" in caplog.text
    assert stats.uns["pertspectra_stats"]["combinations_without_singles"] == ["A+B"]
    with pytest.raises(ValueError, match="differ only in whitespace"):
        from_pseudobulk(_screen(["NT", "A", " A"]), perturbation_key="p")
    with pytest.raises(KeyError, match="did you mean 'p'"):
        from_pseudobulk(means, perturbation_key="P")


def test_no_guide_vocabulary():
    parser = LabelParser()
    for label in ["none_detected", "None detected", "NO-GUIDE", "Multiplet", "doublets", "A+nan"]:
        assert is_no_guide(label, parser), label
    for label in ["NONO", "NEGR1", "UNC5B", "A+B", "MULTIPLEX"]:
        assert not is_no_guide(label, parser), label
    assert "nonedetected" in NO_GUIDE_NAMES


# ---- properties --------------------------------------------------------------------------------


@st.composite
def _screens(draw):
    n = draw(st.integers(3, 40))
    g = draw(st.integers(1, 5))
    pool = ["ctrl", "A", "B", "A+B", "B+A", "NT", "C+ctrl"]
    labels = ["ctrl", *draw(st.lists(st.sampled_from(pool), min_size=n - 1, max_size=n - 1))]
    values = draw(
        st.lists(
            st.one_of(st.just(0.0), st.floats(0.0, 50.0, allow_nan=False)),
            min_size=n * g,
            max_size=n * g,
        )
    )
    x = np.asarray(values).reshape(n, g)
    return labels, x, draw(st.permutations(range(n))), draw(st.integers(1, n + 2))


@settings(max_examples=30, deadline=None)
@given(screen=_screens(), sparse=st.booleans())
def test_stats_invariant_to_chunks_and_cell_order(screen, sparse):
    labels, x, order, chunk = screen
    a = _screen(labels, sp.csr_matrix(x) if sparse else x)
    # drawn floats may all be whole numbers (hypothesis shrinks towards them), which the counts
    # check would refuse: not what this property is about
    ref = _stats(a, chunk_size=len(labels), allow_counts=True)
    b = a[list(order)].copy()
    got = _stats(b, chunk_size=chunk, allow_counts=True)
    assert list(got.obs_names) == list(ref.obs_names)
    np.testing.assert_array_equal(got.obs["n_cells"], ref.obs["n_cells"])
    np.testing.assert_allclose(got.obs["weight"], ref.obs["weight"], rtol=1e-14)
    np.testing.assert_allclose(got.X, ref.X, rtol=1e-12, atol=1e-12)
    for layer in ("sum", "sum_squares", "weighted_sum"):
        np.testing.assert_allclose(got.layers[layer], ref.layers[layer], rtol=1e-12, atol=1e-12)


_token = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="-_."),
    min_size=1,
    max_size=6,
).filter(lambda t: t.lower() not in {c.lower() for c in DEFAULT_CONTROLS})


@settings(max_examples=60, deadline=None)
@given(
    tokens=st.lists(_token, min_size=1, max_size=4),
    controls=st.lists(st.sampled_from([*DEFAULT_CONTROLS, "CTRL", "Control"]), max_size=2),
    data=st.data(),
)
def test_label_parsing_round_trips(tokens, controls, data):
    parser = LabelParser()
    parts = data.draw(st.permutations([*tokens, *controls]))
    label = "+".join(parts)
    canon = parser.canonical(label)
    assert canon == "+".join(sorted(set(tokens)))
    assert parser.canonical(canon) == canon
    assert parser.tokens(canon) == tuple(sorted(set(tokens)))
    assert parser.canonical("+".join(reversed(parts))) == canon
    assert parser.canonical(" + ".join(parts)) == canon
    assert not parser.is_control(label)
    if controls:
        assert parser.canonical("+".join(controls)) == "ctrl"


@settings(max_examples=25, deadline=None)
@given(tokens=st.lists(_token, min_size=1, max_size=3, unique=True), sep=st.sampled_from("+;|"))
def test_canonical_labels_merge_only_orderings(tokens, sep):
    parser = LabelParser(separator=sep)
    raw = [sep.join(tokens), sep.join(reversed(tokens)), "ctrl", "ctrl"]
    labels, summary = canonical_labels(raw, parser=parser, min_cells=1)
    assert list(labels.cat.categories) == ["ctrl", sep.join(sorted(tokens))]
    assert summary.n_cells.tolist() == [2, 2]
