"""Safe loading of condition-model folders: every damage ends in one ValueError naming the file."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import pertspectra as ps
from pertspectra.model import ConditionModel

META, TENSORS = "model.json", "model.safetensors"
pytestmark = pytest.mark.filterwarnings("ignore:the fit did not converge")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    labels = np.repeat(["ctrl", "A", "B", "A+B"], 40)
    conds = np.tile(["x", "y"], 80)
    adata = ad.AnnData(
        X=rng.poisson(3.0, (160, 15)).astype(np.float32),
        obs=pd.DataFrame({"p": labels, "c": conds}, index=[f"c{i}" for i in range(160)]),
    )
    adata.var_names = ["A", "B"] + [f"g{j}" for j in range(13)]
    model = ps.train.fit_conditions(
        adata, perturbation_key="p", condition_key="c", n_factors=3, condition_factors=2,
        min_cells=10, allow_counts=True, max_epochs=30, progress=False,
    )  # fmt: skip
    return model.save(tmp_path_factory.mktemp("saved") / "m")


@pytest.fixture
def folder(saved, tmp_path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "m"))


def test_round_trip_keeps_every_block(saved):
    model = ConditionModel.load(saved)
    names = json.loads((saved / META).read_text())["conditions"]
    assert names["names"] == ["x", "y"]
    assert names["condition_factors"] == 2
    assert model.P.shape == (2, 4, 5)  # A, B, ctrl, basal x (3 shared + 2 own)
    assert model.on_target is not None
    assert model.on_target.shape == (2, 4)
    # each condition's loadings are kept (the authors overwrote a "global" block)
    assert not np.allclose(model.P[0], model.P[1])


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m["conditions"].pop("key"), "must hold exactly"),
        (lambda m: m["conditions"].update(names=["x", "x"]), "not unique"),
        (lambda m: m["conditions"].update(names=[]), "non-empty list"),
        (lambda m: m["conditions"]["labels"].pop("y"), "map each condition"),
        (lambda m: m["conditions"]["labels"].update(y=["ctrl", "Z"]), "labels of the model"),
        (lambda m: m["conditions"].update(condition_factors=-1), "non-negative"),
        (lambda m: m["conditions"].update(condition_factors=3), "shape|tensor"),
        (
            lambda m: m["conditions"].update(
                names=["x", "y", "z"], labels={"x": ["ctrl"], "y": ["ctrl"], "z": ["ctrl"]}
            ),
            "shape|tensor",
        ),
        (lambda m: m.update(conditions=[1, 2]), "must hold exactly"),
    ],
)
def test_edited_conditions_entry_is_refused(folder, edit, match):
    meta = json.loads((folder / META).read_text())
    edit(meta)
    (folder / META).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=match) as err:
        ConditionModel.load(folder)
    assert "\n" not in str(err.value)
    assert str(folder) in str(err.value)


def test_truncated_or_flipped_tensors_are_refused(folder):
    data = (folder / TENSORS).read_bytes()
    rnd = random.Random(0)
    for cut in sorted(rnd.sample(range(1, len(data)), 40)):
        (folder / TENSORS).write_bytes(data[:cut])
        with pytest.raises(ValueError, match=TENSORS):
            ConditionModel.load(folder)
    for _ in range(40):
        flipped = bytearray(data)
        flipped[rnd.randrange(8, 80)] ^= 0xFF  # inside the header
        (folder / TENSORS).write_bytes(bytes(flipped))
        try:
            ConditionModel.load(folder)
        except ValueError as err:  # a flip may hit a digit and still load a valid model
            message = str(err)
        else:
            message = ""
        assert "\n" not in message


def test_plain_loader_and_plain_folders(folder, toy_model, tmp_path):
    with pytest.raises(ValueError, match=r"ConditionModel\.load"):
        ps.model.load_model(folder)
    plain = toy_model.save(tmp_path / "plain")
    assert not ps.model.is_condition_model(plain)
    assert ps.model.is_condition_model(folder)
    assert not ps.model.is_condition_model(tmp_path / "nothing")
    with pytest.raises(ValueError, match=r"must hold exactly|lacks"):
        ConditionModel.load(plain)
