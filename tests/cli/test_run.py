"""``pertspectra run`` (every stage into one folder, reruns skip what is unchanged) and ``report``."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pertspectra as ps
from pertspectra.cli import app
from pertspectra.demo import simulated_inputs

runner = CliRunner()


def _inputs(folder: Path) -> dict[str, Path]:
    """A small simulated screen (raw counts), its true programs as GMT, pairs sharing effects."""
    files = simulated_inputs(
        folder, seed=3, min_correlation=0.2, n_genes=120, n_programs=6, n_single=8,
        n_double=12, cells_per_label=60, n_control_cells=240,
    )  # fmt: skip
    return {"data": files["data"], "gmt": files["gmt"], "pairs": files["pairs"]}


def _args(files: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "run", str(files["data"]), "--out", str(out), "--perturbation-key", "perturbation",
        "--normalize", "log1p", "--gene-sets", str(files["gmt"]), "--pairs", str(files["pairs"]),
        "--n-factors", "6", "--max-epochs", "150", "--folds", "2", "--permutations", "50",
        "--min-cells", "30", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    files = _inputs(folder)
    out = folder / "results"
    res = runner.invoke(app, _args(files, out))
    assert res.exit_code == 0, res.output
    return files, out, res.output


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tables = 0
        self.sections: list[str] = []
        self.links: list[str] = []
        self.errors = 0
        self._cls = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag == "table":
            self.tables += 1
        if tag == "section":
            self.sections.append(a.get("id", ""))
        for key in ("src", "href"):
            if key in a and tag != "img":
                self.links.append(a[key])
        if a.get("class") == "error":
            self.errors += 1


def _parse(path: Path) -> tuple[_Page, str]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return page, text


def test_run_writes_every_stage_and_a_progress_line_each(finished):
    _, out, output = finished
    for name in ("model/model.json", "evaluate/metrics.csv", "evaluate/observed/fold0.csv",
                 "programs/diagnostics.csv", "similarity/similarity.csv",
                 "similarity/pr_curves.csv", "manifest.json", "report.html"):  # fmt: skip
        assert (out / name).is_file(), name
    for i, stage in enumerate(["fit", "evaluate", "programs", "similarity", "report"], start=1):
        assert f"[{i}/5] {stage}" in output
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"fit", "evaluate", "programs", "similarity", "report"}
    assert all(s["status"] == "ran" for s in manifest["stages"].values())
    assert manifest["command"].startswith("pertspectra run")
    assert manifest["versions"]["pertspectra"] == ps.__version__
    assert len(manifest["inputs"]) == 3
    assert all(re.fullmatch("[0-9a-f]{64}", v) for v in manifest["inputs"].values())


def test_report_is_self_contained_with_every_figure_and_table(finished):
    _, out, _ = finished
    page, text = _parse(out / "report.html")
    assert page.errors == 0, "a figure was not drawn"
    for section in ("verdict", "data", "fit", "scorecard", "programs", "perturbations",
                    "similarity", "clusters", "manifest"):  # fmt: skip
        assert section in page.sections
    # loss, 2 regimes x (2 metric panels + win rates), predicted vs observed, model vs additive,
    # 2 interactions, programs, perturbations x programs, similarity, precision-recall
    assert len(page.images) >= 14
    from matplotlib.image import imread

    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        pixels = imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert pixels.shape[0] > 100
        assert pixels.shape[1] > 100
        assert pixels[..., :3].std() > 0.01  # something drawn, not a blank canvas
    assert page.tables >= 8
    assert not re.search(r"https?://", text)
    assert all(link.startswith("#") for link in page.links), page.links
    assert "Pearson-delta" in text  # the verdict compares with the baselines


def test_rerun_skips_unchanged_stages_and_redoes_changed_ones(finished):
    files, out, _ = finished
    before = (out / "model" / "model.safetensors").stat().st_mtime_ns
    res = runner.invoke(app, _args(files, out, "--metric", "cosine"))
    assert res.exit_code == 0, res.output
    assert "[1/5] fit: unchanged, skipped" in res.output
    assert "[2/5] evaluate: unchanged, skipped" in res.output
    assert "[3/5] programs: unchanged, skipped" in res.output
    assert "[4/5] similarity: done" in res.output
    assert (out / "model" / "model.safetensors").stat().st_mtime_ns == before
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["similarity"]["settings"]["metric"] == "cosine"
    assert json.loads((out / "similarity" / "settings.json").read_text())["metric"] == "cosine"


def test_run_refuses_a_foreign_non_empty_folder(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    data = tmp_path / "x.h5ad"
    ps.datasets.toy(seed=0).write_h5ad(data)
    res = runner.invoke(
        app, ["run", str(data), "--out", str(out), "--perturbation-key", "perturbation"]
    )
    assert res.exit_code == 1
    assert "--overwrite" in res.output
    assert (out / "notes.txt").read_text() == "mine"


def test_report_command_on_a_folder_with_only_a_model(toy_model, tmp_path):
    toy_model.save(tmp_path / "model")
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 0, res.output
    page, _ = _parse(tmp_path / "report.html")
    assert "fit" in page.sections
    assert "scorecard" not in page.sections
    assert len(page.images) == 1  # the loss curve
    res = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert res.exit_code == 1
    assert "not a folder" in res.output


def _chromium() -> str:
    import shutil

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip(
            "Debian's chromium is not installed (apt-get install chromium; make browser-test)"
        )
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    return path


def test_report_renders_in_headless_chromium_without_network(finished):
    _, out, _ = finished
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto((out / "report.html").resolve().as_uri(), wait_until="load")
            n_images, decoded = page.evaluate(
                "() => [document.images.length, Array.from(document.images)"
                ".filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length]"
            )
            assert n_images >= 14
            assert decoded == n_images
            height = page.evaluate("() => document.body.scrollHeight")
            assert height > 3000  # the page laid out its sections
            # sorting: click a numeric header twice and read the column back
            table = page.locator("table.sortable").first
            header = table.locator("thead th").last
            header.click()
            header.click()
            page.screenshot(path=str(out / "report.png"), full_page=False)
        finally:
            browser.close()
    external = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert external == [], external
    assert problems == []
    assert (out / "report.png").stat().st_size > 10_000


def test_interrupted_fit_stage_says_how_run_continues(tmp_path, monkeypatch):
    from pertspectra.cli import _fit

    def interrupted(**kwargs):
        msg = "interrupted after epoch 7; continue it with the same command and --resume X"
        raise KeyboardInterrupt(msg)

    monkeypatch.setattr(_fit, "fit", interrupted)
    files = _inputs(tmp_path)
    res = runner.invoke(app, _args(files, tmp_path / "results"))
    assert res.exit_code == 130, res.output
    assert "interrupted after epoch 7" in res.output
    assert "run the same `pertspectra run` command again" in res.output
    assert "--resume" not in res.output
