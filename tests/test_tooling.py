"""The habits of the anchors: README order, lint/type/doc tooling, readable progress in logs."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from pertspectra._utils import progress_bar

REPO = Path(__file__).resolve().parents[1]


def test_readme_starts_with_title_then_the_two_commands():
    lines = [ln for ln in (REPO / "README.md").read_text().splitlines() if ln.strip()]
    assert lines[0].startswith("# pertspectra")
    assert lines[1:5] == ["```bash", "make demo", "make test", "```"]


def test_pre_commit_runs_ruff_and_mypy():
    text = (REPO / ".pre-commit-config.yaml").read_text()
    for hook in ("id: ruff-check", "id: ruff-format", "id: mypy"):
        assert hook in text


def test_docstring_rules_and_doctests_configured():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    lint = cfg["tool"]["ruff"]["lint"]
    assert "D" in lint["select"]
    assert lint["pydocstyle"]["convention"] == "numpy"
    assert lint["per-file-ignores"]["tests/*"] == ["D"]
    pytest_cfg = cfg["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in pytest_cfg["addopts"]
    assert "src/pertspectra" in pytest_cfg["testpaths"]


@pytest.mark.skipif(
    shutil.which("mypy", path=str(Path(sys.executable).parent)) is None, reason="mypy not installed"
)
def test_mypy_clean_on_src():
    mypy = Path(sys.executable).parent / "mypy"
    out = subprocess.run([str(mypy)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]


class _Log(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_progress_in_a_log_is_a_few_lines(monkeypatch):
    log = _Log()
    monkeypatch.setattr(sys, "stderr", log)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    bar = progress_bar(1000, desc="fit", unit="epochs", every=0.0)
    for _ in range(3):
        bar.update(1)
    bar.set_postfix(loss="1.5")
    bar.update(1)
    bar.close()
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("fit: 1/1,000 epochs (0%)")
    assert lines[3].startswith("fit: 4/1,000 epochs")
    assert "loss=1.5" in lines[3]
    # with the default interval a short run writes nothing at all
    quiet = _Log()
    monkeypatch.setattr(sys, "stderr", quiet)
    bar = progress_bar(1000, desc="fit", unit="epochs")
    for _ in range(1000):
        bar.update(1)
    bar.close()
    assert quiet.getvalue() == ""


def test_progress_disabled_writes_nothing(monkeypatch):
    log = _Log()
    monkeypatch.setattr(sys, "stderr", log)
    bar = progress_bar(10, desc="fit", unit="epochs", enabled=False, every=0.0)
    bar.update(5)
    bar.close()
    assert log.getvalue() == ""
