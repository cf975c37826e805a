"""The documentation's executed tutorial: the whole analysis of two real screens.

``python docs/tutorial.py --out docs/_generated`` (what the docs build runs first) executes, on
the Papalexi et al. 2021 ECCITE-seq screen and the Wessels et al. 2023 CaRPool-seq double screen
from the shared data folder (``../shared/data`` or ``$PERTSPECTRA_SHARED_DATA``):

1. ``pertspectra run`` (prior, fit, held-out evaluation, programs, similarity, report), as a
   user types it, capturing what it prints;
2. the same results read back and drawn in Python (:func:`pertspectra.report.collect`,
   :mod:`pertspectra.pl`), and predictions of the fitted model, including an unseen
   combination;
3. the small commands (``info``, ``predict``, ``report``) on the results.

It writes ``tutorial.md`` (code, printed output, tables, figures under ``figures/``, each HTML
report under ``reports/``), ``cli/<command>.txt`` (each command's ``--help``) and
``cli/<stage>_<screen>.txt`` (what each stage printed), all included by the pages. The code
shown on the page is the code that ran: every Python cell is executed from its text. Results
folders are kept under ``--runs`` (default ``OUT/runs``); a rerun skips the stages whose inputs
and settings are unchanged, as ``pertspectra run`` does.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

PAPALEXI = "screens/papalexi2021_thp1_eccite_299genes.h5ad"
WESSELS = "combinatorial/wessels2023_carpool_substrate.h5ad"
STRING = "knowledge/string_v12_human_physical_functional.tsv.gz"
GO_BP = "knowledge/go_bp_human_2022-07.gmt.gz"
COMMANDS = (
    "run",
    "fit",
    "predict",
    "info",
    "seed-agreement",
    "prior",
    "evaluate",
    "programs",
    "similarity",
    "report",
)
#: Stages of ``pertspectra run`` whose printed output the how-to pages show.
STAGES = ("prior", "fit", "evaluate", "programs", "similarity", "report")
#: The reduced settings of the tutorial (said on the page): one torch thread (fast on a busy
#: machine) and no progress bar everywhere; fewer folds; Wessels capped at 1,250 epochs (the
#: 1,000-epoch cosine and one check cycle, where its fits converged in docs/optimization.md).
PAPALEXI_SETTINGS = ["--min-cells", "30", "--folds", "3", "--threads", "1", "--no-progress"]
WESSELS_SETTINGS = [
    "--folds", "2", "--max-epochs", "1250", "--threads", "1", "--no-progress",
]  # fmt: skip


def shown(path: Path | str) -> str:
    """A path as the page shows it: relative to the repository when below its parent."""
    path = Path(path).resolve()
    for base, prefix in ((REPO, ""), (REPO.parent, "../")):
        with contextlib.suppress(ValueError):
            return prefix + str(path.relative_to(base))
    return str(path)


def markdown_table(frame: Any, *, floatfmt: str = "{:.3f}", index: bool = True) -> str:
    """A DataFrame as a Markdown table (no extra dependency)."""
    import pandas as pd

    df = frame.reset_index() if index else frame
    cells = [[str(c) for c in df.columns]]
    for row in df.itertuples(index=False):
        out = []
        for v in row:
            if isinstance(v, float):
                out.append("" if pd.isna(v) else floatfmt.format(v))
            else:
                out.append(str(v).replace("|", "\\|"))
        cells.append(out)
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines) + "\n"


class Page:
    """Markdown written as the tutorial runs: prose, executed cells, their output, figures."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.figures = out / "figures"
        self.figures.mkdir(parents=True, exist_ok=True)
        self.parts: list[str] = []
        self.namespace: dict[str, Any] = {"show": self.show, "save": self.save}
        self._printed = io.StringIO()  # what the running cell printed since its last table

    def _flush(self) -> None:
        """Put what the running cell printed so far on the page, before a table or figure."""
        self.output(self._printed.getvalue())
        self._printed.seek(0)  # the same buffer: sys.stdout still points to it
        self._printed.truncate()

    def text(self, markdown: str) -> None:
        """Prose."""
        self.parts.append(markdown.strip() + "\n")

    def output(self, text: str, *, lang: str = "text") -> None:
        """A block of printed output (nothing when empty)."""
        if text.strip():
            self.parts.append(f"```{lang}\n{text.rstrip()}\n```\n")

    def show(self, frame: Any, **kwargs: Any) -> None:
        """Put a DataFrame on the page as a table (called from a cell)."""
        self._flush()
        self.parts.append(markdown_table(frame, **kwargs))

    def save(self, ax: Any, name: str, caption: str) -> None:
        """Save the figure of ``ax`` and put it on the page (called from a cell)."""
        self._flush()
        fig = ax.figure
        fig.savefig(self.figures / f"{name}.png", dpi=80, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        self.parts.append(
            f"```{{figure}} /_generated/figures/{name}.png\n:width: 90%\n\n{caption}\n```\n"
        )

    def python(self, code: str) -> None:
        """Show ``code``, execute it, show what it printed (an exception stops the tutorial)."""
        code = code.strip("\n")
        self.parts.append(f"```python\n{code}\n```\n")
        self._printed.seek(0)
        self._printed.truncate()
        with contextlib.redirect_stdout(self._printed):
            exec(compile(code, "<tutorial>", "exec"), self.namespace)  # the page's own code
        self._flush()

    def shell(self, args: list[str], *, cwd: Path = REPO, show: bool = True) -> str:
        """Show and run ``pertspectra ARGS``; its output is returned (and shown with ``show``)."""
        groups: list[str] = []  # the positional arguments, then each option with its values
        for a in args:
            if a.startswith("--") or not groups:
                groups.append(shlex.quote(a))
            else:
                groups[-1] += " " + shlex.quote(a)
        lines, current = [], "pertspectra"
        for group in groups:
            if len(current) + 1 + len(group) > 92 and current.strip():
                lines.append(current)
                current = "    " + group
            else:
                current += " " + group
        lines.append(current)
        self.parts.append("```bash\n" + " \\\n".join(lines) + "\n```\n")
        t0 = time.perf_counter()
        # unbuffered, stderr into stdout: warnings appear where they were printed
        env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "pertspectra.cli", *args], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
        )  # fmt: skip
        text = done.stdout
        if done.returncode != 0:
            print(text, file=sys.stderr)
            msg = f"pertspectra {' '.join(args)} exited {done.returncode}"
            raise RuntimeError(msg)
        if show:
            self.output(text)
        print(f"  pertspectra {args[0]}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        return text

    def write(self, name: str) -> Path:
        """Write the page."""
        path = self.out / name
        path.write_text("\n".join(self.parts))
        return path


def stage_outputs(text: str) -> dict[str, str]:
    """Split what ``pertspectra run`` printed into each stage's own output."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        head = re.match(r"\[\d+/\d+\] (\w+)( \.\.\.|: )", line)
        if head:
            current = head.group(1)
            out.setdefault(current, []).append(line)
            if head.group(2) == ": ":
                current = None
            continue
        if current is not None:
            out.setdefault(current, []).append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def remembered_stages(folder: Path, stages: dict[str, str]) -> dict[str, str]:
    """Each stage's output, from the run that computed it.

    A rerun prints ``[i/n] stage: unchanged, skipped`` for a stage it skipped; its output from
    the run that computed it is kept in ``FOLDER/tutorial_stages.json`` and used instead.
    """
    import json

    kept_file = folder / "tutorial_stages.json"
    kept = json.loads(kept_file.read_text()) if kept_file.is_file() else {}
    merged = {
        stage: kept[stage] if text.endswith("unchanged, skipped") and stage in kept else text
        for stage, text in stages.items()
    }
    kept_file.write_text(json.dumps(merged, indent=1))
    return merged


def write_cli_help(out: Path) -> None:
    """``pertspectra COMMAND --help`` for every command, as the how-to pages include them."""
    from typer.testing import CliRunner

    from pertspectra.cli import app

    folder = out / "cli"
    folder.mkdir(parents=True, exist_ok=True)
    runner = CliRunner()
    env = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    for name in ("", *COMMANDS):
        args = [name, "--help"] if name else ["--help"]
        res = runner.invoke(app, args, prog_name="pertspectra", env=env)
        if res.exit_code != 0:
            msg = f"pertspectra {' '.join(args)} failed: {res.output}"
            raise RuntimeError(msg)
        text = "\n".join(line.rstrip() for line in res.output.splitlines()).strip("\n")
        (folder / f"{name or 'main'}.txt").write_text(text + "\n")


def not_executed(out: Path, reason: str) -> None:
    """Pages that say why the tutorial did not run (the build still succeeds)."""
    note = (
        ":::{note}\nThe tutorial was not executed when these pages were built: "
        f"{reason}. Run `python docs/tutorial.py --out docs/_generated` with the shared data "
        "present (or `PERTSPECTRA_SHARED_DATA=/path/to/data`), then build the pages again.\n:::\n"
    )
    (out / "tutorial.md").write_text(note)
    for screen in ("papalexi", "wessels"):
        for stage in (*STAGES, "info", "predict", "report_cmd"):
            (out / "cli" / f"{stage}_{screen}.txt").write_text(f"(not executed: {reason})\n")
    (out / "reports").mkdir(exist_ok=True)
    for screen in ("papalexi", "wessels"):
        (out / "reports" / f"{screen}_report.html").write_text(
            f"<!doctype html><title>not executed</title><p>The tutorial was not executed: {reason}.</p>\n"
        )


def screen_section(
    page: Page,
    *,
    key: str,
    title: str,
    data: Path,
    folder: Path,
    run_args: list[str],
    intro: str,
) -> str:
    """Run the analysis of one screen and put it on the page; returns run's printed output."""
    page.text(f"## {title}\n\n{intro}")
    page.text(
        "### The whole analysis in one command\n\n"
        "`pertspectra run` builds the prior graph, fits the model, evaluates it on held-out "
        "labels beside the baselines, names the programs, scores the similarity of the "
        "perturbations against known pairs and writes the report. It prints a line per stage:"
    )
    text = page.shell(["run", shown(data), "--out", shown(folder), *run_args], show=False)
    stages = remembered_stages(folder, stage_outputs(text))
    page.output("\n".join(stages.values()))
    if "unchanged, skipped" in text:
        page.text(
            "(This page was rebuilt from kept results: the stages whose inputs and settings had "
            "not changed were skipped, and what they printed when they ran is shown.)"
        )
    cli = page.out / "cli"
    for stage, stage_text in stages.items():  # as the command alone prints it: no [i/n] lines
        alone = [ln for ln in stage_text.splitlines() if not re.match(r"\[\d+/\d+\] ", ln)]
        (cli / f"{stage}_{key}.txt").write_text("\n".join(alone).strip("\n") + "\n")
    page.namespace.update(folder=folder, data=data)
    page.text(
        "### Reading the results back in Python\n\n"
        "Everything `run` wrote is read back without computing anything by "
        "{func}`pertspectra.report.collect`; the report's plain-language verdicts are "
        "functions of it too (`folder` and `data` are the paths of the command above)."
    )
    page.python(
        """
import pertspectra as ps

res = ps.report.collect(folder)
print(res.stages)
print(res.model.summary())
"""
    )
    page.text(
        "### The scorecard\n\n"
        "Held-out labels predicted by PertSpectra and by the baselines "
        "({doc}`evaluation` has the protocols and the formulas of the metrics). Mean per method:"
    )
    page.python(
        """
card = res.scorecard
table = card.summary.drop_duplicates(["regime", "method", "metric"])
table = table.pivot_table(index=["regime", "method"], columns="metric", values="mean")
show(table[["pearson_delta", "pearson_delta_top20", "mse_top20", "direction_top20"]])
for line in ps.report.scorecard_verdict(card):
    print(line)
"""
    )
    page.python(
        f"""
ax = ps.pl.scorecard(card.metrics, metric="pearson_delta", summary=card.summary)
save(ax, "{key}_scorecard", "Pearson-delta per held-out label and fold, per method.")
"""
    )
    page.text(
        "### Programs\n\n"
        "Each program's gene loadings scored against GO biological-process gene sets "
        "(`ulm`); what the strongest perturbations move:"
    )
    page.python(
        f"""
progs = res.programs
diag = progs["diagnostics"]
show(diag.sort_values("mean_abs_effect", ascending=False)
     .loc[:, ["name", "top_gene", "effective_genes", "mean_abs_effect"]].head(8))
for line in ps.report.program_verdict(progs):
    print(line)
ax = ps.pl.perturbation_programs(progs["perturbations"], names=diag["name"].to_dict())
save(ax, "{key}_perturbation_programs",
     "Each perturbation's signed effect on each program, clustered.")
"""
    )
    page.text(
        "### Similarity of the perturbations\n\n"
        "Correlation of the perturbations' predicted gene changes, clustered, and scored "
        "against known gene pairs (average precision over unordered pairs; `prevalence` is "
        "what a random ordering gets):"
    )
    page.python(
        f"""
sim = res.similarity
bench = sim["benchmark"]
ap = bench[(bench["score"] == "average_precision") & (bench["metric"] == "correlation")]
show(ap.pivot_table(index=["pairs_file", "prevalence"], columns="embedding", values="value"))
for line in ps.report.similarity_verdict(sim)[:3]:
    print(line)
ax = ps.pl.similarity(sim["similarity"], clusters=sim["clusters"]["cluster"])
save(ax, "{key}_similarity", "Similarity of the perturbations, ordered by clustering.")
"""
    )
    return text


def run_tutorial(out: Path, data: Path, runs: Path) -> None:
    """Execute the tutorial into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    page = Page(out)
    reports = out / "reports"
    reports.mkdir(exist_ok=True)
    knowledge = ["--string", str(data / STRING), "--gene-sets", str(data / GO_BP)]
    knowledge = [shown(a) if a.startswith("/") else a for a in knowledge]

    def pairs(*names: str) -> list[str]:
        return [x for n in names for x in ("--pairs", shown(data / "benchmark_pairs" / f"{n}.txt"))]

    page.text(
        f"The shared data were found in `{shown(data)}`; the results folders are kept in "
        f"`{shown(runs)}`."
    )
    # --- Papalexi -------------------------------------------------------------------------
    folder = runs / "papalexi"
    args = [
        "--perturbation-key", "target", "--normalize", "log1p", *knowledge,
        *pairs("Reactome", "SIGNOR", "StringDB"), *PAPALEXI_SETTINGS,
    ]  # fmt: skip
    screen_section(
        page,
        key="papalexi",
        title="Papalexi et al. 2021: a CRISPR knockout screen (cells)",
        data=data / PAPALEXI,
        folder=folder,
        run_args=args,
        intro=(
            "THP-1 cells, ECCITE-seq, 25 knockouts of regulators of PD-L1 and the IFN-gamma "
            "response {cite:p}`papalexi2021`; 20,729 cells x 299 genes (a random subset of "
            "the measured genes), raw UMI counts, normalized here to 1e4 per cell and "
            "`log1p`. Single perturbations only, so the evaluation holds out cells of every "
            "label (`--protocol auto` picks `cells`). SPI1 has 48 cells, hence "
            "`--min-cells 30`."
        ),
    )
    shutil.copyfile(folder / "report.html", reports / "papalexi_report.html")
    page.text(
        "### The report\n\n"
        "{download}`The HTML report of this run </_generated/reports/papalexi_report.html>` (one "
        "self-contained file: verdicts, warnings, figures, sortable tables, the manifest). "
        "Its warnings:"
    )
    page.python(
        """
for line in ps.report.warnings_of(res):
    print("WARNING:", line)
"""
    )
    # --- Wessels --------------------------------------------------------------------------
    folder = runs / "wessels"
    args = [
        "--perturbation-key", "label", "--pseudobulk", "--control", "NT_NT",
        "--ceiling-layers", "half1_mean,half2_mean", *knowledge,
        *pairs("CORUM", "HuMAP", "StringDB"), *WESSELS_SETTINGS,
    ]  # fmt: skip
    screen_section(
        page,
        key="wessels",
        title="Wessels et al. 2023: a designed double screen (pseudobulk)",
        data=data / WESSELS,
        folder=folder,
        run_args=args,
        intro=(
            "THP-1 cells, CaRPool-seq: Cas13d knockdowns of 28 chromatin and transcription "
            "regulators and 158 designed doubles {cite:p}`wessels2023`. The shared file holds "
            "per-label means of log-normalized expression (187 labels x 2,000 genes), which "
            "the model fits exactly under the paper's 1/|C| weighting (`--pseudobulk`). The "
            "evaluation holds out doubles (`combinations`) and scores them beside the "
            "additive baseline and the half-split noise ceiling stored in the file "
            "(`--ceiling-layers`)."
        ),
    )
    shutil.copyfile(folder / "report.html", reports / "wessels_report.html")
    page.text(
        "### Predicting combinations\n\n"
        "The fitted model predicts any combination of perturbations it has seen, also one "
        "that was never measured: here the first double (alphabetically) of two singles that "
        "is not in the library. Under the default `effects` parametrization a combination adds "
        "the singles' deviations from control in program space ({doc}`model`), so its "
        "predicted change is the sum of the model's single effects, except where the floor or "
        "an on-target factor acts; beside it, the observed singles' changes and their sum."
    )
    page.python(
        """
import anndata as ad
import numpy as np
import pandas as pd

model = ps.model.load_model(folder / "model")
screen = ad.read_h5ad(data)
labels = set(screen.obs["label"])
singles = sorted(lab for lab in labels if "+" not in lab and lab != "NT_NT")
unseen = next(f"{a}+{b}" for i, a in enumerate(singles) for b in singles[i + 1:]
              if f"{a}+{b}" not in labels and f"{b}+{a}" not in labels)
a, b = unseen.split("+")
pred = ps.predict.predict(model, ["ctrl", a, b, unseen])
change = pred - pred.loc["ctrl"]                      # predicted change from control
observed = pd.DataFrame(np.asarray(screen.X), index=screen.obs["label"].astype(str),
                        columns=screen.var_names)
observed = observed - observed.loc["NT_NT"]           # observed change of the singles
top = change.loc[unseen].abs().sort_values(ascending=False).index[:8]
show(pd.DataFrame({
    f"{a} observed": observed.loc[a, top],
    f"{b} observed": observed.loc[b, top],
    "sum of observed": observed.loc[a, top] + observed.loc[b, top],
    f"{a} model": change.loc[a, top],
    f"{b} model": change.loc[b, top],
    f"{unseen} predicted": change.loc[unseen, top],
}))
"""
    )
    page.text(
        "### The report\n\n"
        "{download}`The HTML report of this run </_generated/reports/wessels_report.html>`. Its "
        "warnings:"
    )
    page.python(
        """
for line in ps.report.warnings_of(res):
    print("WARNING:", line)
"""
    )
    # --- the small commands, for the how-to pages ------------------------------------------
    cli = out / "cli"
    for key in ("papalexi", "wessels"):
        folder = runs / key
        model = shown(folder / "model")
        text = Page(out).shell(["info", model])
        (cli / f"info_{key}.txt").write_text(text)
        labels = ["STAT1", "IFNGR2", "JAK2+STAT1"] if key == "papalexi" else None
        if labels is None:
            labels = list(page.namespace["pred"].index[1:])
        predictions = folder / "predictions.csv"
        text = Page(out).shell(
            ["predict", model, *labels, "--out", shown(predictions), "--overwrite"]
        )
        import pandas as pd

        table = pd.read_csv(predictions, index_col=0)
        text += "\n$ head -c 400 " + shown(predictions) + "\n"
        text += predictions.read_text()[:400] + "...\n"
        text += f"({table.shape[0]} labels x {table.shape[1]} genes)\n"
        (cli / f"predict_{key}.txt").write_text(text)
        html = folder / "report_again.html"
        text = Page(out).shell(["report", shown(folder), "--out", shown(html), "--overwrite"])
        (cli / f"report_cmd_{key}.txt").write_text(text)
    page.write("tutorial.md")


def main(argv: list[str] | None = None) -> int:
    """Command line of the script."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "_generated")
    parser.add_argument("--runs", type=Path, default=None, help="Results folders (OUT/runs).")
    parser.add_argument("--data", type=Path, default=None, help="Shared data folder.")
    parser.add_argument(
        "--help-only", action="store_true", help="Only the CLI help; the tutorial is not run."
    )
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "cli").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    write_cli_help(out)
    if args.help_only:
        not_executed(out, "PERTSPECTRA_DOCS_TUTORIAL=0")
        return 0
    from pertspectra.testing import shared_data_dir

    data = args.data or shared_data_dir(required=PAPALEXI)
    if data is None or not (data / WESSELS).is_file():
        not_executed(out, "the shared data folder (../shared/data) was not found")
        print("tutorial: shared data not found; pages say so", file=sys.stderr)
        return 0
    runs = (args.runs or out / "runs").resolve()
    runs.mkdir(parents=True, exist_ok=True)
    print(f"tutorial: running into {runs}", file=sys.stderr)
    run_tutorial(out, data.resolve(), runs)
    print(f"tutorial: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
