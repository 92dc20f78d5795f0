"""Every rewrite of a labels CSV, by whichever command: under the run lock, after the
moves of a rename killed half-way have reached the CSV (its marker names the journal), and
refused where a row cannot be read. `tag`, `audit score --write`, the corrections and
`rename` itself all go through `rewriting`."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from emotag.files.atomic import ERRORS, READING
from emotag.files.csvfiles import LABEL_COLUMNS, read_for_rewrite, write_csv_atomic
from emotag.files.lock import run_lock
from emotag.files.roots import csv_folder, from_folder
from emotag.records import LabelTable


def settle_interrupted(labels_csv: Path) -> int:
    """A rename killed half-way left its marker: point the CSV at the files its journal
    moved (the new name exists, the old one does not), then drop the marker. Returns the
    rows changed. Call with the run lock held."""
    marker = rename_marker(labels_csv)
    if not marker.is_file():
        return 0
    journal = Path(marker.read_text(encoding="utf-8").strip())
    moved: dict[str, str] = {}
    if journal.is_file():
        with open(journal, encoding=READING, errors=ERRORS, newline="") as handle:
            for row in csv.DictReader(handle):
                old, new = Path(row.get("old") or ""), Path(row.get("new") or "")
                if str(old) and str(new) and new.exists() and not old.exists():
                    moved[str(old)] = str(new)
    changed = update_labels_csv(labels_csv, moved) if labels_csv.is_file() else 0
    marker.unlink()
    return changed


def rename_marker(labels_csv: Path) -> Path:
    """Beside the labels CSV while a rename moves files: the path of its journal."""
    return labels_csv.with_name(f".{labels_csv.name}.renaming")


@contextmanager
def rewriting(labels_csv: Path) -> Iterator[LabelTable]:
    """The labels CSV for a command that rewrites it: read under the run lock, held until
    the block ends, after a rename killed half-way has reached it (`settle_interrupted`),
    and refused where a row cannot be read (`read_for_rewrite`)."""
    with run_lock(labels_csv):
        settle_interrupted(labels_csv)
        yield read_for_rewrite(labels_csv)


def update_labels_csv(
    labels_csv: Path, moved: Mapping[str, str], table: LabelTable | None = None
) -> int:
    """Point the labels CSV at renamed files (atomic rewrite); return rows changed. A row's
    relative path is read from the CSV's folder, as the rename read it. `table`: the CSV
    as read under the same lock."""
    if table is None:
        table = read_for_rewrite(labels_csv)
    base = csv_folder(labels_csv)
    changed = 0
    rows = []
    for label in table.labels.values():
        row = label.as_row()
        new = moved.get(label.path) or moved.get(from_folder(base, label.path))
        if new is not None:
            changed += 1
            row["path"] = new
            row["filename"] = Path(new).name
        rows.append(row)
    if changed:
        write_csv_atomic(labels_csv, LABEL_COLUMNS, rows)
    return changed
