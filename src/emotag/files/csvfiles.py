"""The three CSV files beside a run: labels, errors and --votes answers. Their columns,
crash-safe appends, validation with line numbers, torn-line repair and compaction."""

from __future__ import annotations

import csv
import gc
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Final

from emotag.emotions import EMOTIONS
from emotag.errors import InputError, OutputError
from emotag.files.atomic import ENCODING, ERRORS, READING, atomic_text
from emotag.records import NO_FACE, Failure, Label, LabelTable
from emotag.votes import counted

LABEL_COLUMNS: Final = (
    "filename",
    "path",
    "emotion",
    "confidence",
    "confidence_source",
    "model",
    "faces",
    "sha256",
    "duplicate_of",
    "votes",
    "calibrated",
    "local_emotion",
    "local_confidence",
)
REQUIRED_LABEL_COLUMNS: Final = LABEL_COLUMNS[:4]
ERROR_COLUMNS: Final = ("path", "reason", "model", "time", "sha256")
# Every paid answer of a --votes run, appended as it arrives, so a crash between an
# image's votes loses none of them and raising K later asks only for the missing ones.
# `request` is the batch request key ("" live), so a fetch run twice counts an answer once.
ANSWER_COLUMNS: Final = ("sha256", "model", "emotion", "faces", "time", "request")


def errors_path_for(labels_csv: Path) -> Path:
    return labels_csv.with_name(f"{labels_csv.stem}.errors.csv")


def answers_path_for(labels_csv: Path) -> Path:
    return labels_csv.with_name(f"{labels_csv.stem}.answers.csv")


def read_answers(path: Path, model: str) -> dict[str, list[tuple[str, str]]]:
    """(emotion, faces) of every answer `model` gave, by content hash, in the order paid."""
    answers: dict[str, list[tuple[str, str]]] = {}
    if not path.exists():
        return answers
    seen: set[str] = set()
    with open(path, encoding=READING, errors=ERRORS, newline="") as handle:
        for row in csv.DictReader(handle):
            emotion = (row.get("emotion") or "").strip()
            request = row.get("request") or ""
            if request and request in seen:
                continue
            seen.add(request)
            if row.get("model") == model and row.get("sha256") and emotion in EMOTIONS:
                answers.setdefault(row["sha256"], []).append((emotion, row.get("faces") or ""))
    return answers


@contextmanager
def bulk_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic records: it would
    only rescan them over and over (half the time of loading 100k rows)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_labels(path: Path) -> LabelTable:
    """Read and validate a labels CSV; bad rows are reported by line number, never dropped."""
    with bulk_allocation():
        return _read_labels(path)


def _read_labels(path: Path) -> LabelTable:
    table = LabelTable()
    if not path.exists():
        return table
    try:
        text = path.read_bytes().decode(READING, ERRORS)
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    records = _records(text, table)
    if not records:
        return table
    header = table.header = [h.strip() for h in records[0][1] or []]
    if tuple(header[:4]) != REQUIRED_LABEL_COLUMNS:
        raise InputError(
            f"{path} is not an emotag labels CSV: the header must start with "
            f"{','.join(REQUIRED_LABEL_COLUMNS)}, found {','.join(header[:4]) or 'nothing'}."
        )
    columns = [header.index(name) if name in header else -1 for name in LABEL_COLUMNS[1:]]
    labels = table.labels
    for line, values, malformed in records[1:]:
        if values is None:
            table.problems.append(f"{path}:{line}: {malformed}")
            continue
        label, problem = _parse_label(values, columns, len(values) == len(header))
        if label is None:
            table.problems.append(f"{path}:{line}: {problem}")
            continue
        if label.path in labels:
            table.duplicates += 1
            del labels[label.path]  # keep insertion order of the newest row
        labels[label.path] = label
    return table


def read_for_rewrite(path: Path) -> LabelTable:
    """The labels CSV for a command that rewrites it: the rewrite would drop a bad row."""
    return read_whole(path, "emotag will not rewrite a CSV with rows it cannot read")


def read_whole(path: Path, why: str) -> LabelTable:
    """The labels CSV, refused (naming the first bad lines) where a row cannot be read;
    `why` says what the command would do with such a row."""
    table = read_labels(path)
    if table.problems:
        shown = "; ".join(table.problems[:3])
        raise InputError(
            f"{len(table.problems)} bad row(s) in {path} ({shown}). Fix or delete them and "
            f"run again; {why}."
        )
    return table


def read_rows(path: Path, columns: Sequence[str], what: str) -> list[tuple[int, dict[str, str]]]:
    """A CSV a person hands emotag (corrections, a journal, an audit sample or truth) as
    (line, row) pairs; one line naming `what` where it is missing, lacks a column or is
    no CSV. A row may still hold anything: each caller checks its own."""
    try:
        with open(path, encoding=READING, errors=ERRORS, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                lacks = ", ".join(missing)
                raise InputError(f"{path} is not {what}: it lacks the column(s) {lacks}.")
            return [(reader.line_num, row) for row in reader]
    except csv.Error as exc:  # a field past the csv module's limit, a stray quote
        raise InputError(f"{path} is not a readable CSV ({exc}).") from exc
    except FileNotFoundError as exc:
        raise InputError(f"Not found: {path}") from exc
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}") from exc


def read_failures(path: Path) -> dict[str, Failure]:
    """The errors CSV, last row per path."""
    failures: dict[str, Failure] = {}
    if not path.exists():
        return failures
    with open(path, encoding=READING, errors=ERRORS, newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("path"):
                failures[row["path"]] = Failure(
                    row["path"],
                    row.get("reason") or "",
                    row.get("model") or "",
                    row.get("sha256") or "",
                )
    return failures


def no_face_hashes(errors_csv: Path, model: str) -> set[str]:
    """Content hashes `model` already answered with no face: not worth paying for again."""
    return {
        f.sha256
        for f in read_failures(errors_csv).values()
        if f.reason == NO_FACE and f.sha256 and f.model == model
    }


def write_csv_atomic(path: Path, columns: Sequence[str], rows: Iterable[dict[str, str]]) -> None:
    """Write a whole CSV to a temp file beside `path`, then rename it into place."""
    with atomic_text(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def compact_labels(path: Path, table: LabelTable) -> None:
    """Rewrite the labels CSV after a torn last line, repeated paths, or an older header;
    never where a row cannot be read, which the rewrite would drop."""
    if table.problems:
        return
    if table.torn or table.duplicates or (table.header and tuple(table.header) != LABEL_COLUMNS):
        write_csv_atomic(path, LABEL_COLUMNS, (label.as_row() for label in table.labels.values()))


def compact_failures(path: Path, labelled: Iterable[str]) -> int:
    """Drop failures that have since been labelled and repeats of a path; return rows kept."""
    failures = read_failures(path)
    for done in labelled:
        failures.pop(done, None)
    if path.exists() or failures:
        write_csv_atomic(path, ERROR_COLUMNS, (f.as_row() for f in failures.values()))
    return len(failures)


class Appender:
    """Append rows to a CSV, one flush per row, so a kill loses at most the row in flight.

    Before each row it checks that the file at `path` is still the one it opened, no
    shorter than it left it: a file another program replaced, deleted or truncated stops
    the run loudly instead of taking rows nobody will read."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists() or path.stat().st_size == 0
            self._handle: IO[str] = open(path, "a", encoding=ENCODING, errors=ERRORS, newline="")
            opened = os.fstat(self._handle.fileno())
        except OSError as exc:
            raise OutputError(f"Cannot write {path}: {exc.strerror or exc}") from exc
        self._identity = (opened.st_dev, opened.st_ino)
        self._size = opened.st_size
        self.rows = 0
        self._writer = csv.DictWriter(self._handle, fieldnames=list(columns), extrasaction="ignore")
        if new:
            self._write(None)

    def append(self, row: dict[str, str]) -> None:
        self._check()
        self._write(row)
        self.rows += 1

    def _check(self) -> None:
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != self._identity or now.st_size < self._size:
            what = "deleted" if now is None else "replaced or shortened"
            raise OutputError(
                f"{self.path} was {what} by another program while this run wrote to it; "
                f"stopped, so no row goes where nobody reads it ({self.rows} row(s) written "
                "before). Keep other programs off the file while emotag runs, then run the "
                "same command again."
            )

    def close(self) -> None:
        # After a failed flush (disk full) closing retries the same bytes and fails the
        # same way; that failure was already reported by _write.
        with suppress(OSError):
            self._handle.close()

    def _write(self, row: dict[str, str] | None) -> None:
        try:
            if row is None:
                self._writer.writeheader()
            else:
                self._writer.writerow(row)
            self._handle.flush()
            self._size = os.fstat(self._handle.fileno()).st_size
        except OSError as exc:
            raise OutputError(
                f"Cannot write {self.path}: {exc.strerror or exc}. Rows written so far are kept; "
                "free space or fix permissions, then run the same command again to resume."
            ) from exc


def _records(text: str, table: LabelTable) -> list[tuple[int, list[str] | None, str]]:
    """(line, fields, problem) per CSV record; a torn final record is dropped and flagged."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str] | None, str]] = []
    line = 1
    while True:
        try:
            records.append((line, next(reader), ""))
        except StopIteration:
            break
        except csv.Error as exc:
            # The reader resumes on the next line, so one bad row does not hide the rest.
            records.append((line, None, f"malformed CSV ({exc})"))
        line = reader.line_num + 1
    if records and not text.endswith("\n"):
        # Rows are written whole and end with a newline: a crash's torn tail has neither a
        # newline nor (unless by chance) the header's number of fields. A whole row without
        # the final newline (a hand edit) is kept; either way the file is rewritten before
        # anything is appended to it. A file that ends with its newline has no torn tail:
        # a malformed last record there (a quote opened mid-file and never closed, which
        # swallows the rows after it) is a bad row, so nothing after it is dropped.
        table.torn = True
        if records[-1][1] is None or len(records[-1][1]) != len(records[0][1] or ()):
            records.pop()
    return records


def label_from_row(row: dict[str, str]) -> Label:
    """A label from a row dict (as `Label.as_row` writes it), validated as the CSV is."""
    values = [row.get(column, "") for column in LABEL_COLUMNS]
    label, problem = _parse_label(values, list(range(1, len(LABEL_COLUMNS))), True)
    if label is None:
        raise InputError(f"Not a label row ({problem}): {row.get('path', '')}")
    return label


def _parse_label(values: list[str], columns: list[int], full: bool) -> tuple[Label | None, str]:
    """One row as a Label; `columns` are the indexes of LABEL_COLUMNS[1:] (-1: absent)."""
    if not full:
        return None, "wrong number of fields"
    (
        path,
        emotion,
        confidence_text,
        source,
        model,
        faces,
        sha256,
        duplicate_of,
        votes,
        calibrated,
        local_emotion,
        local_confidence,
    ) = (values[i] if i >= 0 else "" for i in columns)
    emotion, local_emotion = emotion.strip(), local_emotion.strip()
    if not path:
        return None, "empty path"
    if "\0" in path:  # no file system allows one; every open would raise
        return None, "a NUL byte in the path"
    if emotion not in EMOTIONS:
        return None, f"'{emotion}' is not one of the seven emotions"
    if local_emotion and local_emotion not in EMOTIONS:
        return None, f"local_emotion '{local_emotion}' is not one of the seven emotions"
    if votes and counted(votes) is None:
        return None, f"votes '{votes[:40]}' are not label:count pairs"
    numbers: list[float | None] = []
    for name, text in (
        ("confidence", confidence_text),
        ("calibrated", calibrated),
        ("local_confidence", local_confidence),
    ):
        number: float | None = None
        if raw := text.strip():
            try:
                number = float(raw)
            except ValueError:
                return None, f"{name} '{raw}' is not a number"
            if not 0.0 <= number <= 1.0:
                return None, f"{name} {raw} is outside [0, 1]"
        numbers.append(number)
    confidence, probability, local_probability = numbers
    label = Label(
        path,
        emotion,
        confidence,
        source,
        model,
        faces,
        sha256,
        duplicate_of,
        votes,
        probability,
        local_emotion,
        local_probability,
    )
    return label, ""
