"""Join labels onto a landmarks table, streaming, with an atomic write and a report."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from emotag.choices import Prefer
from emotag.datasets.lookup import LabelStore
from emotag.errors import ConfigError, InputError
from emotag.files.atomic import ERRORS, READING, atomic_text
from emotag.files.lock import run_lock
from emotag.records import decimal

if TYPE_CHECKING:
    import _csv

IMAGE_COLUMNS = (
    "path",
    "image_path",
    "filepath",
    "file_path",
    "image",
    "img",
    "filename",
    "file_name",
    "file",
    "image_name",
)
SHOWN = 20  # examples kept in memory for the report; the rest are only counted


@dataclass
class MergeReport:
    rows: int = 0
    matched: int = 0
    unmatched: int = 0
    ambiguous: int = 0
    disagreements: int = 0
    unused_labels: int = 0
    image_column: str = ""
    examples: dict[str, list[str]] = field(
        default_factory=lambda: {"unmatched": [], "ambiguous": [], "disagreements": []}
    )

    def note(self, kind: str, text: str) -> None:
        if len(self.examples[kind]) < SHOWN:
            self.examples[kind].append(text)


def detect_image_column(header: list[str]) -> str:
    lowered = {name.strip().lower(): name for name in header}
    for candidate in IMAGE_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    raise InputError(
        f"No image column found among {', '.join(header) or 'no columns'}; "
        "name it with --image-column."
    )


def merge_target(landmarks: Path, output: Path | None, *, in_place: bool) -> Path:
    """Where the merged table goes: `--output`, the landmarks table itself with
    `--in-place` (and only then), else `<stem>_labelled.csv` beside it."""
    if in_place and output is not None:
        raise ConfigError("Give either --output or --in-place, not both.")
    target = (
        landmarks if in_place else output or landmarks.with_name(f"{landmarks.stem}_labelled.csv")
    )
    if target.resolve() == landmarks.resolve() and not in_place:
        raise InputError("--output is the landmarks CSV itself; add --in-place to replace it.")
    return target


@dataclass(frozen=True, slots=True)
class Merged:
    target: Path
    store: LabelStore  # its `problems` and `below_calibrated`: what was left out, and why
    report: MergeReport


def merge_files(
    landmarks: Path,
    labels_csv: Path,
    output: Path | None = None,
    *,
    in_place: bool = False,
    root: Path | None = None,
    fallback_filename: bool = False,
    min_calibrated: float | None = None,
    image_column: str | None = None,
    label_column: str = "emotion",
    prefer: Prefer = Prefer.LABELS,
    unmatched_path: Path | None = None,
) -> Merged:
    """`emotag merge`: both files must exist, the table is never overwritten unless asked
    (`merge_target`), then the labels are read and joined on."""
    if not landmarks.is_file():
        raise InputError(f"Landmarks CSV not found: {landmarks}")
    if not labels_csv.is_file():
        raise InputError(f"Labels CSV not found: {labels_csv}")
    target = merge_target(landmarks, output, in_place=in_place)
    store = LabelStore.from_csv(
        labels_csv,
        root=root,
        fallback="filename" if fallback_filename else None,
        min_calibrated=min_calibrated,
    )
    report = merge(
        landmarks,
        store,
        target,
        image_column=image_column,
        label_column=label_column,
        prefer=prefer,
        unmatched_path=unmatched_path,
    )
    return Merged(target, store, report)


def merge(
    landmarks: Path,
    store: LabelStore,
    output: Path,
    *,
    image_column: str | None = None,
    label_column: str = "emotion",
    prefer: Prefer = Prefer.LABELS,
    unmatched_path: Path | None = None,
) -> MergeReport:
    """Write `landmarks` plus the label (and its confidence) to `output`, one row at a time;
    replacing the table itself (`--in-place`) holds its run lock, as every rewrite of a
    table a run may be writing (the labels CSV itself, for one) does."""
    replacing = output.resolve() == landmarks.resolve()
    with run_lock(output) if replacing else nullcontext():
        return _merged(
            landmarks,
            store,
            output,
            image_column=image_column,
            label_column=label_column,
            prefer=prefer,
            unmatched_path=unmatched_path,
        )


def _merged(
    landmarks: Path,
    store: LabelStore,
    output: Path,
    *,
    image_column: str | None,
    label_column: str,
    prefer: Prefer,
    unmatched_path: Path | None,
) -> MergeReport:
    report = MergeReport()
    used: set[str] = set()
    confidence_column = f"{label_column}_confidence"
    # The audit's probability that the label is right, where `audit score` gave one.
    calibrated_column = f"{label_column}_calibrated" if store.calibrated else None
    try:
        source = open(landmarks, encoding=READING, errors=ERRORS, newline="")
    except OSError as exc:
        raise InputError(f"Cannot read {landmarks}: {exc.strerror or exc}") from exc
    # The source is closed before the output replaces it: --in-place writes onto the file
    # being read, and Windows cannot replace a file that is held open.
    try:
        with atomic_text(output) as sink, _optional_writer(unmatched_path) as unmatched, source:
            # Plain lists, not DictReader/DictWriter: a landmarks row has ~140 columns and the
            # dicts would double the time of a 100k-row merge.
            reader = csv.reader(source)
            header = next(reader, [])
            column = image_column or detect_image_column(header)
            if column not in header:
                raise InputError(f"{landmarks} has no column '{column}'.")
            report.image_column = column
            wanted = (label_column, confidence_column, calibrated_column)
            extra = [c for c in wanted if c is not None and c not in header]
            out_header = header + extra
            image_at, label_at = out_header.index(column), out_header.index(label_column)
            confidence_at = out_header.index(confidence_column)
            calibrated_at = out_header.index(calibrated_column) if calibrated_column else None
            writer = csv.writer(sink)
            writer.writerow(out_header)
            if unmatched is not None:
                unmatched.writerow(header)
            padding = [""] * len(extra)
            for values in reader:
                report.rows += 1
                row = (
                    values + padding
                    if len(values) == len(header)
                    else _fit(values, len(out_header))
                )
                image = row[image_at]
                found = store.match(image) if image else None
                existing = row[label_at].strip()
                if found is None:
                    kind = "ambiguous" if image and store.is_ambiguous(image) else "unmatched"
                    setattr(report, kind, getattr(report, kind) + 1)
                    report.note(kind, image)
                    if unmatched is not None:
                        unmatched.writerow(row[: len(header)])
                else:
                    report.matched += 1
                    if found.label is not None:
                        used.add(found.label.path)
                    if existing and existing != found.emotion:
                        report.disagreements += 1
                        report.note(
                            "disagreements", f"{image}: table {existing}, labels {found.emotion}"
                        )
                    if not existing or prefer is Prefer.LABELS:
                        row[label_at] = found.emotion
                        label = found.label
                        row[confidence_at] = decimal(label.confidence if label else None)
                        if calibrated_at is not None:
                            row[calibrated_at] = decimal(label.calibrated if label else None)
                writer.writerow(row)
    except csv.Error as exc:  # a field past the csv module's limit, a stray quote
        raise InputError(
            f"{landmarks} is not a readable CSV ({exc}); nothing was written."
        ) from exc
    report.unused_labels = len(store) - len(used)
    return report


def _fit(values: list[str], width: int) -> list[str]:
    """A short or long row (hand-edited tables have them) padded or cut to the header."""
    return (values + [""] * width)[:width]


@contextmanager
def _optional_writer(path: Path | None) -> Iterator[_csv.Writer | None]:
    if path is None:
        yield None
        return
    with atomic_text(path) as handle:
        yield csv.writer(handle)
