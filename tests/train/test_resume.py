"""Checkpoints, interrupted and resumed fits, and bit-identical reproducibility (issue #12)."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import pertspectra as ps
from pertspectra.cli import app
from pertspectra.train import _checkpoint, _loop

# the cosine schedule over 40 epochs, a check cycle (41-90), a cut-short one (91-120 of 91-190)
SETTINGS = {
    "n_factors": 3,
    "cycle_epochs": 40,
    "max_epochs": 120,
    "threads": 1,
    "progress": False,
    "store": False,
}
TENSORS = ("P", "W", "B", "kappa", "gene_scale", "on_target")
HISTORY = ("loss_history", "recon_history", "graph_history", "lr_history", "lr_steps")
#: training entries that legitimately differ between two identical fits
TIMINGS = ("seconds", "seconds_per_epoch")


def _fit(stats, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "did not converge": short fits
        return ps.train.fit(stats, **(SETTINGS | {"seed": 0} | kw))


def assert_identical(a, b) -> None:
    """Every tensor and every training entry but timings equal, bit for bit."""
    for name in TENSORS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert np.array_equal(x, y), name
    for name in HISTORY:
        assert np.array_equal(np.asarray(a.training[name]), np.asarray(b.training[name])), name
    ta = {k: v for k, v in a.training.items() if k not in TIMINGS}
    tb = {k: v for k, v in b.training.items() if k not in TIMINGS}
    assert ta == tb


@pytest.fixture(scope="module")
def reference(toy_stats):
    """An uninterrupted fit."""
    return _fit(toy_stats)


def _interrupt_at(
    monkeypatch, epoch: int, *, raw: bool = False, init: int = 0, sig: int = signal.SIGINT
) -> None:
    """Send ``sig`` to this process after ``epoch`` (of initialisation ``init``).

    ``raw``: raise KeyboardInterrupt at once instead, before the epoch's step (a second Ctrl-C,
    or an interrupt outside the graceful handler).
    """
    original = _loop._Stepper.step
    steppers: list[object] = []  # one per initialisation

    def step(self, lr):
        if not steppers or steppers[-1] is not self:
            steppers.append(self)
        now = len(steppers) - 1 == init and self.hist.epochs == epoch
        if raw and now:
            raise KeyboardInterrupt
        value = original(self, lr)
        if not raw and len(steppers) - 1 == init and self.hist.epochs == epoch:
            if not callable(signal.getsignal(sig)):  # the default SIGTERM would end pytest
                pytest.fail(f"no Python handler for {sig!r} during the fit")
            signal.raise_signal(sig)
        return value

    monkeypatch.setattr(_loop._Stepper, "step", step)


# ------------------------------------------------------------------ reproducibility


def test_same_seed_gives_bit_identical_fits(toy_stats, reference):
    assert_identical(reference, _fit(toy_stats))


def test_different_seed_differs(toy_stats, reference):
    other = _fit(toy_stats, seed=1)
    assert not np.array_equal(other.W, reference.W)
    assert other.training["loss_history"] != reference.training["loss_history"]


def test_model_records_seed_data_checksum_and_settings(toy_stats, reference):
    t = reference.training
    assert t["fit_seed"] == 0
    assert t["threads"] == 1
    assert len(t["data_sha256"]) == 64
    for name in ("max_epochs", "cycle_epochs", "schedule", "learning_rates", "betas", "dtype"):
        assert name in t
    assert reference.versions["pertspectra"] == ps.__version__
    assert "torch" in reference.versions
    # the checksum is of the data: another screen gives another one
    other = ps.stats.compute_group_stats(
        ps.datasets.toy(seed=1), perturbation_key="perturbation", progress=False
    )
    assert _fit(other, max_epochs=2).training["data_sha256"] != t["data_sha256"]


# ------------------------------------------------------------------ interrupt and resume


@pytest.mark.parametrize(
    "epoch",
    [
        pytest.param(25, id="inside-schedule"),
        pytest.param(40, id="end-of-schedule"),
        pytest.param(70, id="inside-check-cycle"),
        pytest.param(90, id="end-of-check-cycle"),
        pytest.param(110, id="inside-last-cycle"),
    ],
)
def test_interrupted_fit_resumes_bit_identical(toy_stats, reference, tmp_path, monkeypatch, epoch):
    ck = tmp_path / "ck"
    _interrupt_at(monkeypatch, epoch)
    with pytest.raises(KeyboardInterrupt, match=f"after epoch {epoch}"):
        _fit(toy_stats, checkpoint=ck, checkpoint_every=3600)
    monkeypatch.undo()
    _, state = _checkpoint.Slot(ck / "init0.safetensors").read()
    assert state["epochs"] == epoch
    assert_identical(reference, _fit(toy_stats, checkpoint=ck, resume=True))


def test_scaled_w_rate_resumes_bit_identical(toy_stats, tmp_path, monkeypatch):
    # per-parameter groups: the optimizer state is numbered as with one group
    ref = _fit(toy_stats, w_rate_scale=0.3)
    ck = tmp_path / "ck"
    _interrupt_at(monkeypatch, 70)
    with pytest.raises(KeyboardInterrupt, match="after epoch 70"):
        _fit(toy_stats, checkpoint=ck, checkpoint_every=3600, w_rate_scale=0.3)
    monkeypatch.undo()
    assert_identical(ref, _fit(toy_stats, checkpoint=ck, resume=True, w_rate_scale=0.3))


def test_means_start_resumes_bit_identical(toy_stats, tmp_path, monkeypatch):
    kw = {"init": "means", "n_factors": toy_stats.n_obs}
    ref = _fit(toy_stats, **kw)
    assert ref.training["start"] == "means"
    ck = tmp_path / "ck"
    _interrupt_at(monkeypatch, 70)
    with pytest.raises(KeyboardInterrupt, match="after epoch 70"):
        _fit(toy_stats, checkpoint=ck, checkpoint_every=3600, **kw)
    monkeypatch.undo()
    assert_identical(ref, _fit(toy_stats, checkpoint=ck, resume=True, **kw))


def test_hard_interrupt_resumes_from_last_periodic_checkpoint(
    toy_stats, reference, tmp_path, monkeypatch
):
    ck = tmp_path / "ck"
    _interrupt_at(monkeypatch, 55, raw=True)
    with pytest.raises(KeyboardInterrupt):
        _fit(toy_stats, checkpoint=ck, checkpoint_every=0)
    monkeypatch.undo()
    assert_identical(reference, _fit(toy_stats, checkpoint=ck, resume=True))


def test_stepped_schedule_resumes_bit_identical(toy_stats, tmp_path, monkeypatch):
    kw = {"schedule": "stepped", "max_epochs": 80, "patience": 5, "tol": 0.05}
    ref = _fit(toy_stats, **kw)
    steps, end = ref.training["lr_steps"], ref.training["epochs"]
    assert len(steps) == 3  # the rule fired: its counters are part of the state
    assert end == steps[-1]
    # between two steps, at the last one, inside the check that runs on a copy
    for epoch in (steps[0] + 2, end, end + 10):
        ck = tmp_path / f"ck{epoch}"
        _interrupt_at(monkeypatch, epoch)
        with pytest.raises(KeyboardInterrupt):
            _fit(toy_stats, checkpoint=ck, checkpoint_every=3600, **kw)
        monkeypatch.undo()
        assert_identical(ref, _fit(toy_stats, checkpoint=ck, resume=True, **kw))


def test_n_init_resumes_inside_the_second_initialisation(toy_stats, tmp_path, monkeypatch):
    kw = {"n_init": 2, "max_epochs": 60}
    ref = _fit(toy_stats, **kw)
    ck = tmp_path / "ck"
    _interrupt_at(monkeypatch, 30, init=1)
    with pytest.raises(KeyboardInterrupt):
        _fit(toy_stats, checkpoint=ck, checkpoint_every=3600, **kw)
    monkeypatch.undo()
    assert sorted(p.name for p in ck.iterdir()) == [
        "checkpoint.json",
        "init0.safetensors",
        "init1.safetensors",
    ]
    assert_identical(ref, _fit(toy_stats, checkpoint=ck, resume=True, **kw))


def test_finished_checkpoint_returns_the_model(toy_stats, reference, tmp_path):
    ck = tmp_path / "ck"
    assert_identical(reference, _fit(toy_stats, checkpoint=ck, checkpoint_every=3600))
    assert_identical(reference, _fit(toy_stats, checkpoint=ck, resume=True))


def test_failed_write_keeps_the_previous_checkpoint(toy_stats, tmp_path, monkeypatch):
    ck = tmp_path / "ck"
    writes = {"n": 0}
    original = _checkpoint.Slot.write

    def write(self, tensors, state):
        writes["n"] += 1
        if writes["n"] == 3:  # a kill in the middle of the third write

            def broken(tensors, path, metadata=None):
                Path(path).write_bytes(b"half a file")
                raise KeyboardInterrupt

            monkeypatch.setattr("safetensors.torch.save_file", broken)
        return original(self, tensors, state)

    monkeypatch.setattr(_checkpoint.Slot, "write", write)
    with pytest.raises(KeyboardInterrupt):
        _fit(toy_stats, checkpoint=ck, checkpoint_every=0)
    monkeypatch.undo()
    _, state = _checkpoint.Slot(ck / "init0.safetensors").read()
    assert state["epochs"] == 2
    assert [p.name for p in ck.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------------ what a resume refuses


@pytest.fixture(scope="module")
def interrupted(toy_stats, tmp_path_factory):
    """A checkpoint folder interrupted at epoch 10 (copied per test before use)."""
    ck = tmp_path_factory.mktemp("interrupted") / "ck"
    mp = pytest.MonkeyPatch()
    _interrupt_at(mp, 10)
    try:
        with pytest.raises(KeyboardInterrupt):
            _fit(toy_stats, checkpoint=ck, checkpoint_every=3600)
    finally:
        mp.undo()
    return ck


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_resume_with_other_settings_names_them(toy_stats, interrupted):
    before = _digest(interrupted)
    with pytest.raises(ValueError, match=r"lam \(checkpoint 1\.0, now 2\.0\).*seed") as err:
        _fit(toy_stats, checkpoint=interrupted, resume=True, lam=2.0, seed=3)
    assert "\n" not in str(err.value)
    assert _digest(interrupted) == before


def test_resume_with_other_data_says_so(interrupted):
    other = ps.stats.compute_group_stats(
        ps.datasets.toy(seed=1), perturbation_key="perturbation", progress=False
    )
    with pytest.raises(ValueError, match="other inputs: the data"):
        _fit(other, checkpoint=interrupted, resume=True)


def test_resume_without_checkpoint_and_fit_over_one(toy_stats, interrupted, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume"):
        _fit(toy_stats, checkpoint=tmp_path / "none", resume=True)
    with pytest.raises(FileExistsError, match="resume=True"):
        _fit(toy_stats, checkpoint=interrupted)
    with pytest.raises(ValueError, match="needs checkpoint="):
        _fit(toy_stats, resume=True)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "version", "state"])
def test_damaged_checkpoint_is_a_clean_error(toy_stats, interrupted, tmp_path, damage):
    import shutil

    ck = tmp_path / "ck"
    shutil.copytree(interrupted, ck)
    state = ck / "init0.safetensors"
    if damage == "truncate":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    elif damage == "garbage":
        state.write_bytes(b"\x00" * 64)
    elif damage == "version":
        doc = json.loads((ck / "checkpoint.json").read_text())
        (ck / "checkpoint.json").write_text(json.dumps(doc | {"format_version": 99}))
    else:  # a valid file holding other tensors
        import safetensors.torch
        import torch

        safetensors.torch.save_file({"x": torch.zeros(2)}, str(state), metadata={"state": "{}"})
    with pytest.raises(ValueError, match="checkpoint") as err:
        _fit(toy_stats, checkpoint=ck, resume=True)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ command line


def _cli_args(h5ad: Path) -> list[str]:
    return [
        "fit", str(h5ad), "--perturbation-key", "perturbation", "--n-factors", "3",
        "--max-epochs", "120", "--cycle-epochs", "40", "--threads", "1", "--no-progress",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def toy_h5ad(tmp_path_factory, toy_adata) -> Path:
    path = tmp_path_factory.mktemp("toy") / "toy.h5ad"
    toy_adata.write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def cli_reference(toy_h5ad, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "model"
    res = CliRunner().invoke(app, [*_cli_args(toy_h5ad), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return ps.model.load_model(out)


def test_cli_fit_records_input_checksum(toy_h5ad, cli_reference):
    sha = hashlib.sha256(toy_h5ad.read_bytes()).hexdigest()
    assert cli_reference.training["inputs"] == {str(toy_h5ad): sha}
    assert cli_reference.training["fit_seed"] == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=str)
def test_cli_interrupted_fit_resumes_bit_identical(
    toy_h5ad, cli_reference, tmp_path, monkeypatch, sig
):
    out = tmp_path / "model"
    runner = CliRunner()
    _interrupt_at(monkeypatch, 70, sig=sig)
    res = runner.invoke(app, [*_cli_args(toy_h5ad), "--out", str(out)])
    monkeypatch.undo()
    assert res.exit_code == 130, res.output
    assert "error: interrupted after epoch 70" in res.output
    assert f"continue it with the same command and --resume {out}" in res.output
    assert "Traceback" not in res.output
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the CLI's handler is gone
    again = runner.invoke(app, [*_cli_args(toy_h5ad), "--out", str(out)])
    assert again.exit_code == 1
    assert "--resume" in again.output
    assert "--overwrite" in again.output
    res = runner.invoke(app, [*_cli_args(toy_h5ad), "--resume", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
    assert_identical(cli_reference, ps.model.load_model(out))


def test_cli_interrupted_overwrite_of_a_model_resumes(
    toy_h5ad, cli_reference, tmp_path, monkeypatch
):
    # the checkpoint sits inside the old model folder; --resume must replace that model
    out = tmp_path / "model"
    runner = CliRunner()
    first = runner.invoke(app, [*_cli_args(toy_h5ad), "--out", str(out), "--seed", "5"])
    assert first.exit_code == 0, first.output
    _interrupt_at(monkeypatch, 70)
    res = runner.invoke(app, [*_cli_args(toy_h5ad), "--out", str(out), "--overwrite"])
    monkeypatch.undo()
    assert res.exit_code == 130, res.output
    res = runner.invoke(app, [*_cli_args(toy_h5ad), "--resume", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
    assert_identical(cli_reference, ps.model.load_model(out))


def test_cli_dry_run_needs_no_out(toy_h5ad):
    res = CliRunner().invoke(app, [*_cli_args(toy_h5ad), "--dry-run"])
    assert res.exit_code == 0, res.output


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=str)
def test_cli_killed_fit_resumes_bit_identical(toy_h5ad, cli_reference, tmp_path, sig):
    out = tmp_path / "model"
    args = [*_cli_args(toy_h5ad), "--checkpoint-every", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pertspectra.cli", *args, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoint" / "init0.safetensors").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert f"--resume {out}" in stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint"]

    runner = CliRunner()
    again = runner.invoke(app, [*args, "--out", str(out)])  # without --resume: refused
    assert again.exit_code == 1
    assert "--resume" in again.output
    assert "--overwrite" in again.output
    res = runner.invoke(app, [*args, "--resume", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
    assert_identical(cli_reference, ps.model.load_model(out))


def test_cli_resume_errors(toy_h5ad, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, [*_cli_args(toy_h5ad), "--resume", str(tmp_path / "none")])
    assert res.exit_code == 1
    assert "no interrupted fit to resume" in res.output
    res = runner.invoke(app, _cli_args(toy_h5ad))
    assert res.exit_code == 1
    assert "--out is required" in res.output
