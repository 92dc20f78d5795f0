"""Rich output for the CLI: the live progress bar and the end-of-run tables."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from rich.text import Text

from emotag.datasets.dupes import DupeReport
from emotag.datasets.merge import MergeReport
from emotag.datasets.rename import RenamePlan
from emotag.emotions import EMOTIONS
from emotag.quality.audit import AuditScore
from emotag.quality.evaluation import CoveragePoint, Evaluation
from emotag.run.batch import BatchState
from emotag.run.estimate import Estimate
from emotag.run.prices import dollars
from emotag.run.recorder import Event, Summary


class _Progress(Progress):
    """One line a person watches (done/total, share, rate, elapsed, eta), whole at 80
    columns: the bar takes what is left. The per-emotion counts go on a second line, as
    many as fit; the rest are dropped until the end of the run, when the table has them."""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.tasks and (counts := self.tasks[0].fields.get("counts")):
            yield _fitting(counts, self.console.width)


def _fitting(counts: list[str], width: int) -> Text:
    shown: list[str] = []
    for item in counts:
        if len("  ".join([*shown, item])) > width:
            break
        shown.append(item)
    return Text("  ".join(shown), style="dim", no_wrap=True, overflow="crop")


def _fixed() -> Column:
    return Column(no_wrap=True)


class ProgressView:
    """Feeds tagger events into a progress bar; does nothing off a terminal or when quiet."""

    def __init__(self, console: Console, *, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal
        self.counts: Counter[str] = Counter()
        self._progress = _Progress(
            TextColumn("[bold]tagging", table_column=_fixed()),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=5)),
            MofNCompleteColumn(table_column=_fixed()),
            TaskProgressColumn(table_column=_fixed()),
            TextColumn("{task.fields[rate]}", table_column=_fixed()),
            TimeElapsedColumn(table_column=_fixed()),
            TextColumn("eta", table_column=_fixed()),
            TimeRemainingColumn(table_column=_fixed()),
            console=console,
            transient=False,
            expand=True,
            disable=not self.enabled,
        )
        self._task = self._progress.add_task("tag", total=0, rate="", counts=[])
        self._shown = 0.0

    def __enter__(self) -> ProgressView:
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.enabled:
            self._progress.update(self._task, counts=self._counted())
        self._progress.__exit__(kind, error, trace)

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return  # quiet or not a terminal: the CLI prints warnings after the run
        if event.kind == "found":
            self._progress.update(self._task, total=(self._total() or 0) + event.count)
            return
        if event.kind in ("labelled", "duplicate"):
            self.counts[event.detail] += 1
        elif event.kind == "failed":
            self.counts["failed"] += 1
        elif event.kind == "skipped":
            self.counts["done before"] += 1
        elif event.kind == "warning":
            self.console.print(Text.assemble(("Warning:", "yellow"), f" {event.detail}"))
            return
        else:
            return
        now = time.monotonic()
        if now - self._shown < 0.1:  # rich redraws 10 times a second; so do the fields
            self._progress.advance(self._task)
            return
        self._shown = now
        task = self._progress.tasks[0]
        speed = f"{task.speed:.1f} img/s" if task.speed else ""
        self._progress.update(self._task, advance=1, rate=speed, counts=self._counted())

    def _counted(self) -> list[str]:
        """Each count as `label:n`, the most frequent first, so what fits is what matters."""
        return [f"{k}:{v}" for k, v in self.counts.most_common()]

    def _total(self) -> float | None:
        return self._progress.tasks[0].total


def summary_table(
    summary: Summary,
    model: str,
    cost: float | None,
    votes: int = 1,
    *,
    cascade: bool = False,
    all_paid: float | None = None,
) -> Table:
    """The run's table; with --cascade, what the offline model settled and what paying
    for every image would have cost (`all_paid`, None: price unknown)."""
    table = Table(title=f"emotag tag — {model}", show_header=True, header_style="bold")
    table.add_column("", style="bold")
    table.add_column("images", justify="right")
    for emotion in EMOTIONS:
        if summary.emotions[emotion]:
            table.add_row(emotion, str(summary.emotions[emotion]))
    table.add_row("labelled", str(summary.labelled), style="green")
    for reason, count in sorted(summary.failures.items()):
        table.add_row(Text(f"failed: {reason}"), str(count), style="red")  # not markup
    table.add_row("already labelled (skipped)", str(summary.skipped))
    table.add_row("exact duplicates (not sent)", str(summary.duplicates))
    if cascade:
        table.add_row("settled by the offline model (not sent)", str(summary.settled_locally))
    table.add_row("requests sent", str(summary.requests))
    if votes > 1:
        table.add_row(f"answers paid ({votes} votes an image)", str(summary.answers))
        table.add_row("split votes", str(summary.split_votes))
    table.add_row("retries", str(summary.retries))
    table.add_row("tokens in / out", f"{summary.input_tokens:,} / {summary.output_tokens:,}")
    table.add_row("cost (tokens the API reported)", dollars(cost, model))
    if cascade:
        table.add_row("cost had every image been sent (estimated)", dollars(all_paid, model))
    table.add_row("wall time", f"{summary.elapsed:.1f} s")
    return table


def files_written(summary: Summary, labels_csv: Path, errors_csv: Path) -> list[Text]:
    """Where the run's rows went: the labels CSV, and the errors CSV when it has rows."""
    lines = [Text(f"Labels: {labels_csv}")]
    if summary.errors_kept:
        lines.append(Text(f"Errors: {errors_csv} ({summary.errors_kept} row(s))"))
    return lines


def estimate_table(result: Estimate, model: str, batch_size: int | None = None) -> Table:
    table = Table(title=f"emotag tag --dry-run — {model}", header_style="bold")
    table.add_column("", style="bold")
    table.add_column("count", justify="right")
    table.add_row("images found", str(result.found))
    table.add_row("already labelled", str(result.already_done))
    table.add_row("exact duplicates (would not be sent)", str(result.duplicates))
    table.add_row("unreadable", str(len(result.unreadable)))
    if result.cascade:
        table.add_row("settled by the offline model", str(result.settled_locally))
    table.add_row("would be sent", str(result.to_send), style="green")
    table.add_row("estimated input tokens", f"{result.input_tokens:,}")
    table.add_row("estimated output tokens", f"{result.output_tokens:,}")
    if batch_size:
        table.add_row("batch jobs", str(result.batch_jobs(batch_size)))
        table.add_row("input tokens as billed in batch mode (50%)", f"{result.input_tokens // 2:,}")
    cost = result.cost(batch=bool(batch_size))["cost_usd"]
    kind = "batch price" if batch_size else "interactive price"
    table.add_row(f"estimated cost ({kind})", dollars(cost, model), style="green")
    if result.cascade:
        every = result.all_paid(batch=bool(batch_size))
        table.add_row(f"estimated cost had every image been sent ({kind})", dollars(every, model))
    return table


def rename_table(plan: RenamePlan, limit: int) -> Table:
    table = Table(title="emotag rename — plan", header_style="bold")
    table.add_column("file")
    table.add_column("new name")
    table.add_column("status")
    style = {"rename": "green", "unchanged": "dim", "conflict": "red", "missing": "yellow"}
    for step in plan.steps[:limit]:
        new = step.new.name if step.status in ("rename", "conflict") else ""
        status = f"{step.status} ({step.note})" if step.note else step.status
        table.add_row(Text(str(step.old)), Text(new), Text(status), style=style[step.status])
    if len(plan.steps) > limit:
        table.add_row(f"… {len(plan.steps) - limit} more", "", "")
    counts = plan.counts
    table.caption = ", ".join(
        f"{counts[s]} {s}" for s in ("rename", "unchanged", "conflict", "missing")
    ) + ("" if not plan.problems else f", {len(plan.problems)} bad row(s)")
    return table


def merge_table(report: MergeReport, output: str) -> Table:
    table = Table(title=f"emotag merge → {output}", header_style="bold")
    table.add_column("", style="bold")
    table.add_column("rows", justify="right")
    table.add_row("rows in the table", str(report.rows))
    table.add_row("matched a label", str(report.matched), style="green")
    table.add_row("no label", str(report.unmatched), style="yellow" if report.unmatched else "")
    table.add_row(
        "ambiguous file name (refused)",
        str(report.ambiguous),
        style="red" if report.ambiguous else "",
    )
    table.add_row("label disagreements", str(report.disagreements))
    table.add_row("labels not used", str(report.unused_labels))
    table.caption = f"image column: {report.image_column}"
    return table


def dupes_table(report: DupeReport) -> Table:
    table = Table(title="emotag dupes — near-duplicate groups", header_style="bold")
    table.add_column("group", justify="right")
    table.add_column("image")
    table.add_column("bits from first", justify="right")
    for number, group in enumerate(report.groups, 1):
        for path, distance in group:
            table.add_row(str(number), Text(str(path)), str(distance))
        table.add_section()
    copies = sum(len(group) - 1 for group in report.groups)
    table.caption = (
        f"{report.hashed} images hashed, {len(report.groups)} groups, {copies} likely copies"
    )
    return table


def agreement_tables(evaluation: Evaluation, point: CoveragePoint | None = None) -> list[Table]:
    result = evaluation.result
    summary = Table(title=f"Agreement with {evaluation.reference}", header_style="bold")
    summary.add_column("")
    summary.add_column("value", justify="right")
    summary.add_row("images compared", str(evaluation.compared))
    summary.add_row("labelled, no reference", str(evaluation.without_reference))
    summary.add_row("accuracy", f"{result.accuracy:.3f}")
    summary.add_row("Cohen's kappa", f"{result.kappa:.3f}")
    summary.add_row("macro-F1", f"{result.macro_f1:.3f}")
    classes = Table(title="Per class", header_style="bold")
    for column in ("class", "precision", "recall", "F1", "support"):
        classes.add_column(column, justify="left" if column == "class" else "right")
    for label, score in result.per_class.items():
        classes.add_row(
            label,
            f"{score.precision:.3f}",
            f"{score.recall:.3f}",
            f"{score.f1:.3f}",
            str(score.support),
        )
    matrix = Table(title="Confusion (rows: reference, columns: labels)", header_style="bold")
    matrix.add_column("")
    for label in result.labels:
        matrix.add_column(label, justify="right")
    for label in result.labels:
        matrix.add_row(label, *(str(result.confusion[label][p]) for p in result.labels))
    if point is not None:
        summary.add_row(
            f"confidence >= {point.threshold:g}",
            f"{point.kept} kept ({point.share:.1%}), accuracy {point.accuracy:.3f}",
        )
    return [summary, classes, matrix, coverage_table(evaluation.coverage)]


def coverage_table(points: list[CoveragePoint]) -> Table:
    table = Table(title="Accuracy against coverage (keep confidence >= t)", header_style="bold")
    for column in ("t", "kept", "share kept", "accuracy"):
        table.add_column(column, justify="right")
    for point in points:
        table.add_row(
            f"{point.threshold:g}", str(point.kept), f"{point.share:.1%}", f"{point.accuracy:.3f}"
        )
    return table


def batch_table(state: BatchState) -> Table:
    table = Table(title=f"emotag batch jobs — {state.model}", header_style="bold")
    for column in ("job", "display name", "requests", "state", "fetched"):
        table.add_column(column, justify="right" if column == "requests" else "left")
    for job in state.jobs:
        table.add_row(
            job.name or "(not created)",
            job.display_name,
            str(job.requests),
            f"{job.state}: {job.detail}" if job.detail else job.state,
            "yes" if job.fetched else "no",
        )
    return table


def audit_lines(result: AuditScore) -> list[str | Table]:
    """`audit score`: the estimate, the labels' precision, calibration, what to keep."""
    accuracy = result.accuracy
    lines: list[str | Table] = [
        f"Audited {result.audited} label(s) ({result.skipped} skipped: no face or can't tell) "
        f"of {result.labels:,}.",
        f"Accuracy of the whole CSV: {accuracy.value:.1%} "
        f"(95% interval {accuracy.low:.1%}-{accuracy.high:.1%}).",
    ]
    table = Table(title="Precision per label", header_style="bold")
    for column in ("label", "precision", "95% interval", "checked"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for name, found in result.per_label.items():
        table.add_row(
            name, f"{found.precision:.1%}", f"{found.low:.1%}-{found.high:.1%}", str(found.n)
        )
    lines.append(table)
    if result.ece_raw is not None:
        lines.append(
            f"Calibration error (ECE): {result.ece_raw:.3f} as the model said it, "
            f"{result.ece_calibrated or 0:.3f} calibrated (cross-validated, "
            f"{result.calibrator.method})."
        )
    else:
        lines.append(
            "No confidence in this CSV: each label gets its measured precision as calibrated."
        )
    lines.append(result.keep.sentence())
    if result.map_file:
        lines.append(f"Calibrated: {result.calibrated:,} row(s); map kept in {result.map_file}.")
    return lines
