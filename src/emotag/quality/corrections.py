"""Human corrections from the report: apply them to the labels CSV atomically, journaled,
and undo them from the journal."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from emotag.emotions import is_emotion
from emotag.errors import InputError
from emotag.files.csvfiles import LABEL_COLUMNS, label_from_row, read_rows, write_csv_atomic
from emotag.files.rewrites import rewriting
from emotag.records import HUMAN, Label, LabelTable

JOURNAL_COLUMNS = ("path", "before", "after")


@dataclass
class CorrectionResult:
    applied: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)
    journal: Path | None = None


def read_corrections(path: Path) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(path, old, new) rows and the problems of the rows that are not usable."""
    rows, problems = [], []
    what = "a corrections CSV (from 'Export corrections')"
    for line, row in read_rows(path, ("path", "new"), what):
        new = (row.get("new") or "").strip().lower()
        if not is_emotion(new):
            problems.append(f"{path}:{line}: '{new}' is not one of the seven")
            continue
        rows.append((row["path"], (row.get("old") or "").strip(), new))
    return rows, problems


def apply_corrections(corrections_csv: Path, labels_csv: Path) -> CorrectionResult:
    """Set each corrected label (source `human`, no confidence) and journal the old rows,
    under the run lock."""
    if not labels_csv.is_file():
        raise InputError(f"Labels CSV not found: {labels_csv}")
    corrections, problems = read_corrections(corrections_csv)
    with rewriting(labels_csv) as table:
        return _apply(corrections, problems, labels_csv, table)


def _apply(
    corrections: list[tuple[str, str, str]],
    problems: list[str],
    labels_csv: Path,
    table: LabelTable,
) -> CorrectionResult:
    result = CorrectionResult(problems=problems)
    journal: list[dict[str, str]] = []
    for path, old, new in corrections:
        label = table.labels.get(path)
        if label is None:
            result.problems.append(f"{path}: not in {labels_csv}")
        elif old and label.emotion != old and label.emotion != new:
            result.problems.append(
                f"{path}: now '{label.emotion}', not '{old}' as in the report; skipped"
            )
        elif label.emotion == new and label.confidence_source == HUMAN:
            result.unchanged += 1
        else:
            # A person's label is the truth an audit measures against: calibrated 1.
            after = replace(
                label, emotion=new, confidence=None, confidence_source=HUMAN, calibrated=1.0
            )
            journal.append(_journal_row(label, after))
            table.labels[path] = after
            result.applied += 1
    if journal:
        result.journal = (
            labels_csv.parent / f"emotag-corrections-{datetime.now():%Y%m%d-%H%M%S}.csv"
        )
        write_csv_atomic(result.journal, JOURNAL_COLUMNS, journal)
        write_csv_atomic(labels_csv, LABEL_COLUMNS, (lab.as_row() for lab in table.labels.values()))
    return result


def undo_corrections(journal_csv: Path, labels_csv: Path) -> CorrectionResult:
    """Put back the rows a journal replaced, unless they changed again since (under the
    run lock)."""
    with rewriting(labels_csv) as table:
        return _undo(journal_csv, labels_csv, table)


def _undo(journal_csv: Path, labels_csv: Path, table: LabelTable) -> CorrectionResult:
    result = CorrectionResult()
    rows = read_rows(journal_csv, JOURNAL_COLUMNS, "a corrections journal")
    for line, row in reversed(rows):
        journalled = _journalled(row)
        if journalled is None:
            result.problems.append(f"{journal_csv}:{line}: not a journal row; left alone")
            continue
        before, after = journalled
        if table.labels.get(row["path"]) != after:
            result.problems.append(f"{row['path']}: changed since the correction; left alone")
            continue
        table.labels[row["path"]] = before
        result.applied += 1
    if result.applied:
        write_csv_atomic(labels_csv, LABEL_COLUMNS, (lab.as_row() for lab in table.labels.values()))
    return result


def _journal_row(before: Label, after: Label) -> dict[str, str]:
    return {
        "path": before.path,
        "before": json.dumps(before.as_row()),
        "after": json.dumps(after.as_row()),
    }


def _journalled(row: dict[str, str]) -> tuple[Label, Label] | None:
    """A journal row's label before and after, both of its own path; None for a row
    that is not one emotag wrote."""
    try:
        before, after = (label_from_row(json.loads(row[side])) for side in ("before", "after"))
    except (ValueError, TypeError, AttributeError, InputError):
        return None
    return (before, after) if before.path == after.path == row["path"] else None
