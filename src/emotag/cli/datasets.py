"""`rename`, `merge`, `dupes` and `export`: labels into a dataset."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from emotag.choices import Format as ExportFormat
from emotag.choices import OnConflict, Prefer
from emotag.cli.shared import (
    EXIT_PARTIAL,
    FollowOption,
    JsonFlag,
    LabelsArg,
    LabelsIn,
    RootOption,
    chosen_labels,
    err,
    out,
    reports_errors,
    said,
)
from emotag.errors import ConfigError, InputError
from emotag.files.settings import DEFAULT_OUTPUT

if TYPE_CHECKING:
    from emotag.datasets.rename import RenamePlan


@reports_errors
def rename(
    csv: LabelsArg = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--from-csv",
            "--labels",
            "-l",
            metavar="CSV",
            help=f"Labels CSV to rename from. [default: {DEFAULT_OUTPUT}]",
            show_default=False,
        ),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="New name pattern: {stem} {emotion} {ext}; {sex} {age} {ethnicity} for "
            "three-part stems; {t0} {t1} … for any token. "
            "Example: `{sex}_{age}_{ethnicity}_{emotion}{ext}`."
        ),
    ] = None,
    on_conflict: Annotated[
        OnConflict,
        typer.Option(
            help="A target exists or is claimed twice: number it (_2, _3 …), skip, or fail."
        ),
    ] = OnConflict.SUFFIX,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; rename nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    journal: Annotated[
        Path | None,
        typer.Option(help="Journal to write. Default: emotag-rename-<time>.csv beside the CSV."),
    ] = None,
    update_csv: Annotated[
        bool,
        typer.Option("--update-csv/--no-update-csv", help="Rewrite the CSV with the new paths."),
    ] = True,
    undo: Annotated[
        Path | None, typer.Option(help="Reverse the renames recorded in this journal.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Plan rows to show.")] = 50,
    root: RootOption = None,
    follow_symlinks: FollowOption = False,
) -> None:
    """Rename labelled files so their names carry the emotion (`sex_age_ethnicity_emotion.ext`).

    Naming: a trailing emotion token (one of the seven, or an alias such as 'surprised' or
    'serious') is replaced; otherwise `_emotion` is appended to the stem. The extension
    is kept. Nothing is ever overwritten, every step is journaled before it is taken, and
    'emotag rename --undo JOURNAL' reverses a run. Exit codes: 0 done, 1 some files could
    not be renamed, 2 bad input.
    """
    labels = chosen_labels(csv, labels)
    within: dict[str, Any] = {"roots": root or [], "follow_symlinks": follow_symlinks}
    if undo is not None:
        _undo_renames(undo, labels, update_csv=update_csv, **within)
        return
    from emotag.cli.console import rename_table
    from emotag.datasets import rename as renaming

    def go_ahead(plan: RenamePlan) -> bool:
        out.print(rename_table(plan, limit))
        for problem in plan.problems:
            said("Skipped:", "yellow", f" {problem}")
        if dry_run or not plan.renames:
            out.print("Dry run: nothing renamed." if dry_run else "Nothing to rename.")
            return False
        if yes:
            return True
        if not sys.stdin.isatty():
            raise ConfigError("Nothing renamed: not a terminal, so pass --yes to apply this plan.")
        return typer.confirm(f"Rename {len(plan.renames)} file(s)?")

    if dry_run:  # reads only: no lock, so it works beside a running tag
        plan = renaming.plan_from_csv(labels, template=template, on_conflict=on_conflict, **within)
        go_ahead(plan)
        return
    _, result = renaming.rename_from_csv(
        labels,
        go_ahead,
        template=template,
        on_conflict=on_conflict,
        journal=journal,
        update_csv=update_csv,
        **within,
    )
    if result is None:
        return
    path = result.journal
    out.print(f"Renamed {len(result.done)} file(s); journal: {path}", highlight=False, markup=False)
    for step, reason in result.failed:
        err.print(
            Text.assemble(("Failed:", "red"), f" {step.old} → {step.new.name}: {reason}"),
            highlight=False,
        )
    if result.failed:
        raise typer.Exit(EXIT_PARTIAL)


def _undo_renames(journal: Path, labels_csv: Path, *, update_csv: bool, **within: Any) -> None:
    from emotag.datasets import rename as renaming

    result = renaming.undo_into_csv(journal, labels_csv, update_csv=update_csv, **within)
    out.print(
        f"Restored {len(result.moved)} file(s); {result.not_applied} journaled step(s) "
        "had not been applied.",
        highlight=False,
    )
    for refusal in result.refused:
        said("Refused:", "red", f" {refusal}")
    if result.refused:
        raise typer.Exit(EXIT_PARTIAL)


@reports_errors
def merge(
    landmarks: Annotated[Path, typer.Argument(help="Landmarks CSV, one row per image.")],
    labels: LabelsIn = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Merged CSV. Default: <landmarks stem>_labelled.csv."),
    ] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Replace LANDMARKS itself.")] = False,
    image_column: Annotated[
        str | None,
        typer.Option(
            help="Column with the image path or file name. Default: detected "
            "(path, image_path, image, filename, file, …)."
        ),
    ] = None,
    label_column: Annotated[
        str, typer.Option(help="Column to write the emotion into.")
    ] = "emotion",
    prefer: Annotated[
        Prefer, typer.Option(help="When the table already has a different label: which wins.")
    ] = Prefer.LABELS,
    root: Annotated[
        Path | None, typer.Option(help="Folder that relative image paths in the table start from.")
    ] = None,
    fallback_filename: Annotated[
        bool,
        typer.Option(
            "--fallback-filename",
            help="Use the emotion in a sex_age_ethnicity_emotion "
            "file name when the CSV has no label.",
        ),
    ] = False,
    unmatched: Annotated[
        Path | None, typer.Option(help="Write the rows that got no label to this CSV.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any row got no label.")
    ] = False,
    min_calibrated: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="P",
            help="Only labels an audit gives at least this probability of being right.",
        ),
    ] = None,
) -> None:
    """Join emotion labels onto a landmarks table (streaming; the output is written atomically).

    Rows are matched by absolute path, then by path relative to `--root`, then by file name
    when that name is unique in the labels CSV; ambiguous names are refused, never guessed.
    """
    from emotag.cli.console import merge_table
    from emotag.datasets.merge import merge_files

    merged = merge_files(
        landmarks,
        chosen_labels(option=labels),
        output,
        in_place=in_place,
        root=root,
        fallback_filename=fallback_filename,
        min_calibrated=min_calibrated,
        image_column=image_column,
        label_column=label_column,
        prefer=prefer,
        unmatched_path=unmatched,
    )
    store, report = merged.store, merged.report
    if store.below_calibrated:
        err.print(
            f"{store.below_calibrated} label(s) under --min-calibrated {min_calibrated:g} left "
            "out.",
            markup=False,
        )
    for problem in store.problems:
        said("Skipped:", "yellow", f" {problem}")
    out.print(merge_table(report, str(merged.target)))
    for kind, examples in report.examples.items():
        for example in examples:
            err.print(f"{kind}: {example}", highlight=False, soft_wrap=True, markup=False)
    if strict and (report.unmatched or report.ambiguous):
        err.print(
            f"{report.unmatched + report.ambiguous} row(s) got no label (--strict).", markup=False
        )
        raise typer.Exit(EXIT_PARTIAL)


@reports_errors
def dupes(
    folder: Annotated[Path, typer.Argument(help="Folder of images, searched recursively.")],
    distance: Annotated[
        int,
        typer.Option(
            min=0, max=7, help="Most differing bits (of 64) for two images to count as copies."
        ),
    ] = 5,
    as_json: JsonFlag = False,
) -> None:
    """List groups of near-duplicate images (resized or re-encoded copies), by perceptual hash.

    Nothing is changed: clean the dataset yourself before splitting it for training.
    Byte-identical copies are already sent once by `emotag tag`.
    """
    from emotag.cli.console import dupes_table
    from emotag.datasets.dupes import find_near_duplicates
    from emotag.files.discovery import iter_images

    if not folder.is_dir():
        raise InputError(f"Folder not found: {folder}")
    report = find_near_duplicates(iter_images(folder), distance)
    if as_json:
        out.print_json(data=report.as_dict())
    else:
        out.print(dupes_table(report))
    for path, reason in report.unreadable:
        said("Skipped:", "yellow", f" {path}: {reason}")


@reports_errors
def export_labels(
    csv: LabelsArg = None,
    labels: LabelsIn = None,
    format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            help="hf (Hugging Face imagefolder), folders (one per emotion: torchvision, "
            "Keras), labelstudio (tasks with predictions) or fiftyone (FiftyOne image "
            "classification dataset).",
            metavar="FORMAT",
        ),
    ] = ExportFormat.HF,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="DIR", help="A new (or empty) folder to create."),
    ] = Path("export"),
    link: Annotated[
        bool, typer.Option("--link", help="Link the images (hard link, else symlink).")
    ] = False,
    document_root: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="labelstudio: the folder Label Studio serves local files from. "
            "[default: the output's parent]",
        ),
    ] = None,
    as_json: JsonFlag = False,
    root: RootOption = None,
    follow_symlinks: FollowOption = False,
) -> None:
    """Export the labelled images with their labels for Hugging Face, torchvision or
    Keras, Label Studio or FiftyOne (copied, or linked with --link)."""
    from emotag.datasets.export import export

    result = export(
        chosen_labels(csv, labels),
        format,
        output,
        link=link,
        document_root=document_root,
        roots=root or [],
        follow_symlinks=follow_symlinks,
    )
    if as_json:
        out.print_json(data=result.as_dict())
    else:
        how = "linked" if result.linked else "copied"
        out.print(f"Exported {result.images} image(s), {how}, to {result.output}", markup=False)
    for warning in result.warnings:
        said("Warning:", "yellow", f" {warning}")
    for path in result.missing:
        said("Missing:", "yellow", f" {path}")
    for refusal in result.refused:
        said("Refused:", "red", f" {refusal}")
    if result.missing or result.refused:
        raise typer.Exit(EXIT_PARTIAL)
