"""`report`, `eval`, `audit sample`, `audit score` and `apply-corrections`: how good
the labels are, and the people who check them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emotag.choices import Score, Stage
from emotag.cli.shared import (
    EXIT_PARTIAL,
    JsonFlag,
    LabelsArg,
    LabelsIn,
    chosen_labels,
    out,
    reports_errors,
    said,
)


@reports_errors
def report(
    csv: LabelsArg = None,
    labels: LabelsIn = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    errors: Annotated[
        Path | None, typer.Option(help="Errors CSV to show. Default: beside the labels CSV.")
    ] = None,
    link_images: Annotated[
        bool,
        typer.Option(
            "--link-images", help="Link images by relative path instead of embedding thumbnails."
        ),
    ] = False,
    truth: Annotated[
        str | None,
        typer.Option(help="Add an agreement section: 'filenames' or another labels CSV."),
    ] = None,
) -> None:
    """Write one self-contained HTML page to review, filter and correct the labels.

    Thumbnails are embedded (no network needed). Change labels with each card's menu or keys
    1-7, then 'Export corrections' and run `emotag apply-corrections corrections.csv`.
    """
    from emotag.files.csvfiles import errors_path_for
    from emotag.pages.review_page import build_report
    from emotag.quality.evaluation import evaluate

    labels = chosen_labels(csv, labels)
    evaluation = evaluate(labels, truth) if truth else None
    stats = build_report(
        labels,
        output,
        errors_csv=errors or errors_path_for(labels),
        link_images=link_images,
        evaluation=evaluation,
    )
    for problem in stats.problems:
        said("Skipped:", "yellow", f" {problem}")
    out.print(
        f"Wrote {output}: {stats.labels} labels, {stats.failures} failures, "
        f"{stats.thumbnails} pictures.",
        highlight=False,
    )


@reports_errors
def evaluate_labels(
    csv: LabelsArg = None,
    other: Annotated[
        Path | None, typer.Argument(help="A second labels CSV: how much do the two agree?")
    ] = None,
    truth: Annotated[
        str | None,
        typer.Option(
            help="Reference: 'filenames' (sex_age_ethnicity_emotion names) or a labels CSV."
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Also report accuracy and coverage of the labels with confidence >= this.",
        ),
    ] = None,
    by: Annotated[
        Score,
        typer.Option(help="Which number --min-confidence and the coverage curve use."),
    ] = Score.CONFIDENCE,
    stage: Annotated[
        Stage,
        typer.Option(
            help="Score the final labels, or the offline model's opinions a 'tag --cascade' "
            "kept (with '--truth final': against the paid model's labels of the same CSV)."
        ),
    ] = Stage.FINAL,
    labels: LabelsIn = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare labels with a reference: accuracy, per-class precision/recall/F1, macro-F1,
    Cohen's kappa, the confusion matrix, and accuracy against coverage by confidence.

    `emotag eval a.csv b.csv` measures how much two models agree, to choose a cheaper one
    with evidence.
    """
    from emotag.cli.console import agreement_tables
    from emotag.quality.evaluation import evaluate

    if labels is not None and csv is not None and other is None:
        csv, other = None, csv  # `eval -l a.csv b.csv`: the argument is the second CSV
    if (other is None) == (truth is None):
        raise typer.BadParameter("give either --truth or a second labels CSV", param_hint="--truth")
    scored = chosen_labels(csv, labels)
    result = evaluate(scored, truth if truth is not None else str(other), by=by, stage=stage)
    point = result.at(min_confidence) if min_confidence is not None else None
    if as_json:
        extra = {"min_confidence": point.as_dict()} if point else {}
        out.print_json(data=result.as_dict() | extra)
        return
    for table in agreement_tables(result, point):
        out.print(table)


@reports_errors
def audit_sample(
    csv: LabelsArg = None,
    labels: LabelsIn = None,
    size: Annotated[int, typer.Option("--size", "-n", min=1, help="Rows to check by hand.")] = 300,
    seed: Annotated[int, typer.Option(help="The same seed gives the same sample.")] = 0,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for sample.csv and audit.html.")
    ] = Path("audit"),
    as_json: JsonFlag = False,
) -> None:
    """Draw a stratified random sample (by label and confidence band, so rare labels and
    unsure answers are checked) and write sample.csv and audit.html: open the page, go
    through the cards with the keyboard, export truth.csv."""
    from emotag.pages.audit_page import build_page
    from emotag.quality.audit import sample

    labels = chosen_labels(csv, labels)
    result = sample(labels, size, seed, output)
    build_page(result.drawn, result.page, source=labels)
    if as_json:
        out.print_json(data=result.as_dict())
        return
    out.print(
        f"Drew {result.size} of {result.population} labels in {len(result.strata)} strata: "
        f"{result.sample_csv}. Open {result.page}, then run 'emotag audit score {labels} "
        f"--truth {output / 'truth.csv'}'.",
        markup=False,
        highlight=False,
    )


@reports_errors
def audit_score(
    truth: Annotated[Path, typer.Option(help="truth.csv exported from audit.html.")],
    csv: LabelsArg = None,
    labels: LabelsIn = None,
    sample_csv: Annotated[
        Path | None,
        typer.Option("--sample", help="sample.csv. [default: beside the truth file]"),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write a one-page HTML report (reliability, coverage)."
        ),
    ] = None,
    write: Annotated[
        bool,
        typer.Option(
            "--write/--no-write",
            help="Keep the calibration map beside the CSV and write the calibrated column.",
        ),
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """The whole CSV's accuracy (95% interval), each label's precision, how well the
    confidence was calibrated before and after, and which labels to keep."""
    from emotag.cli.console import audit_lines
    from emotag.quality.audit import score

    labels = chosen_labels(csv, labels)
    result = score(labels, truth, sample_csv, write=write)
    if report is not None:
        from emotag.pages.audit_report import build_report

        build_report(result, report, source=labels)
    if as_json:
        out.print_json(data=result.as_dict())
        return
    for line in audit_lines(result):
        out.print(line, markup=False, highlight=False)


@reports_errors
def apply_corrections(
    corrections: Annotated[
        Path,
        typer.Argument(help="corrections.csv exported from the report, or a journal with --undo."),
    ],
    labels: LabelsIn = None,
    undo: Annotated[
        bool, typer.Option("--undo", help="CORRECTIONS is a journal: put the old labels back.")
    ] = False,
) -> None:
    """Write human corrections into the labels CSV (atomically, journaled; `tag` keeps them)."""
    from emotag.quality.corrections import apply_corrections as apply_them
    from emotag.quality.corrections import undo_corrections

    labels_csv = chosen_labels(option=labels)
    result = (
        undo_corrections(corrections, labels_csv) if undo else apply_them(corrections, labels_csv)
    )
    verb = "Restored" if undo else "Applied"
    message = f"{verb} {result.applied} correction(s)"
    if result.unchanged:
        message += f", {result.unchanged} already so"
    if result.journal:
        message += f"; journal: {result.journal} (undo with --undo)"
    out.print(message + ".", highlight=False)
    for problem in result.problems:
        said("Skipped:", "yellow", f" {problem}")
    if result.problems:
        raise typer.Exit(EXIT_PARTIAL)
