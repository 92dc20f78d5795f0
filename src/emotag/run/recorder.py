"""Where results go: the labels and errors CSVs, the run summary and progress events.

Live runs, batch submissions and fetches, and dry runs (with `write=False`) all record
through one `Recorder`, the only writer of `Summary`, so a row, a count and an event
always agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from emotag.files.csvfiles import (
    ANSWER_COLUMNS,
    ERROR_COLUMNS,
    LABEL_COLUMNS,
    Appender,
    answers_path_for,
    compact_failures,
    compact_labels,
    read_labels,
)
from emotag.providers.answers import Answer
from emotag.records import Failure, Label
from emotag.run.planner import Step
from emotag.votes import is_split

EventKind = Literal["found", "labelled", "failed", "skipped", "duplicate", "retry", "warning"]


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    path: str = ""
    detail: str = ""
    count: int = 1


@dataclass
class Summary:
    """What a run did; the CLI renders it, tests assert on it, `--json` prints `as_dict`."""

    emotions: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    found: int = 0
    skipped: int = 0
    duplicates: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    answers: int = 0  # answers paid for (K per image with --votes)
    settled_locally: int = 0  # --cascade: images whose offline label was final
    saved_input_tokens: int = 0  # what they would have cost the paid provider
    split_votes: int = 0  # images whose votes were not unanimous
    refused_settings: int = 0
    sent_by_workers: int = 0  # requests sent from worker processes (--workers)
    input_tokens: int = 0
    output_tokens: int = 0
    elapsed: float = 0.0
    warnings: list[str] = field(default_factory=list)
    errors_kept: int = 0  # rows in the errors CSV after the run (this run's and earlier ones)

    @property
    def labelled(self) -> int:
        return sum(self.emotions.values())

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "labelled": self.labelled,
            "emotions": dict(self.emotions),
            "failed": self.failed,
            "failures": dict(self.failures),
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "answers": self.answers,
            "settled_locally": self.settled_locally,
            "split_votes": self.split_votes,
            "refused_settings": self.refused_settings,
            "sent_by_workers": self.sent_by_workers,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "elapsed_s": round(self.elapsed, 3),
            "warnings": self.warnings,
            "errors_kept": self.errors_kept,
        }


class Recorder:
    """Append rows (flushed one by one), count them, and report each as an event."""

    def __init__(
        self,
        labels_csv: Path,
        errors_csv: Path,
        model: str,
        on_event: Callable[[Event], None] = lambda event: None,
        *,
        on_file: Iterable[str] = (),
        write: bool = True,
        calibrate: Callable[[Label], float | None] | None = None,
    ) -> None:
        self.labels_csv, self.errors_csv, self.model = labels_csv, errors_csv, model
        self.on_event = on_event
        self.summary = Summary()
        self.failures: list[Failure] = []
        self.labelled_paths: list[str] = []
        self._on_file = set(on_file)  # paths that had a row before this run (any model)
        self._replaced = False
        self._labels = Appender(labels_csv, LABEL_COLUMNS) if write else None
        self._errors = Appender(errors_csv, ERROR_COLUMNS) if write else None
        self._answers: Appender | None = None  # opened on the first --votes answer
        self._write = write
        self._calibrate = calibrate  # the audit's map (see audit.py), for new rows

    def found(self, count: int, last: str) -> None:
        self.summary.found += count
        self.on_event(Event("found", last, count=count))

    def discovered(
        self, source: Callable[[Callable[[Path, str], None]], Iterable[Path]]
    ) -> Iterator[Path]:
        """Every path `source` yields, counted as found; what it cannot use (an unreadable
        folder) is recorded as a failure."""
        for path in source(self.failed_path):
            self.found(1, str(path))
            yield path

    def step(self, step: Step) -> None:
        """Record a step that needs no request: skipped, failed, a copy of a label, or
        the offline model's final label."""
        if step.kind == "skip":
            self.summary.skipped += 1
            self.on_event(Event("skipped", step.path))
        elif step.kind == "fail":
            self.failed(Failure(step.path, step.reason, self.model, step.digest))
        elif step.kind == "copy" and step.original is not None:
            self.copy(step.original, step.path)
        elif step.kind == "settle" and step.original is not None:
            self.summary.settled_locally += 1
            self.summary.saved_input_tokens += step.saved_tokens
            self.labelled(step.original)
        else:
            raise ValueError(f"a {step.kind} step needs a request, not a record")

    def result(self, row: Label | Failure) -> None:
        if isinstance(row, Label):
            self.labelled(row)
        else:
            self.failed(row)

    def labelled(self, label: Label, *, duplicate: bool = False) -> None:
        if self._calibrate is not None and label.calibrated is None:
            label.calibrated = self._calibrate(label)
        if self._labels is not None:
            self._labels.append(label.as_row())
        self._replaced = self._replaced or label.path in self._on_file
        self.labelled_paths.append(label.path)
        self.summary.emotions[label.emotion] += 1
        if duplicate:
            self.summary.duplicates += 1
        elif is_split(label.votes):
            self.summary.split_votes += 1
        self.on_event(Event("duplicate" if duplicate else "labelled", label.path, label.emotion))

    def copy(self, original: Label, path: str) -> None:
        """Byte-identical to a labelled image: the same label, linked to the original."""
        self.labelled(replace(original, path=path, duplicate_of=original.path), duplicate=True)

    def same_as(self, row: Label | Failure, path: str) -> None:
        """Byte-identical to an image sent in this run: its label, or its failure."""
        if isinstance(row, Label):
            self.copy(row, path)
        else:
            self.failed(replace(row, path=path))

    def failed(self, failure: Failure) -> None:
        if self._errors is not None:
            self._errors.append(failure.as_row())
        self.failures.append(failure)
        self.summary.failures[failure.reason.split(":", 1)[0]] += 1
        self.on_event(Event("failed", failure.path, failure.reason))

    def requested(self) -> None:
        self.summary.requests += 1

    def throttled(self) -> None:
        self.summary.throttled += 1

    def retried(self, reason: str) -> None:
        self.summary.retries += 1
        self.on_event(Event("retry", detail=reason))

    def finished(self, refused_settings: int, elapsed: float) -> None:
        """A live run's end: requests a model refused for a setting count as requests."""
        self.summary.refused_settings = refused_settings
        self.summary.requests += refused_settings
        self.summary.elapsed = elapsed

    def from_workers(self, sent: int) -> None:
        self.summary.sent_by_workers = sent

    def paid(self, digest: str, answer: Answer, *, vote: bool, request: str = "") -> None:
        """One answer paid for; a vote (with --votes) is kept before its image's row
        exists (see csvfiles.ANSWER_COLUMNS). `request`: the batch request it answers."""
        self.summary.input_tokens += answer.input_tokens
        self.summary.output_tokens += answer.output_tokens
        self.summary.answers += 1
        if vote:
            self._vote(digest, answer, request)

    def _vote(self, digest: str, answer: Answer, request: str) -> None:
        if not self._write:
            return
        if self._answers is None:
            self._answers = Appender(answers_path_for(self.labels_csv), ANSWER_COLUMNS)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        row = [digest, self.model, answer.emotion, answer.faces, now, request]
        self._answers.append(dict(zip(ANSWER_COLUMNS, row, strict=True)))

    def failed_path(self, path: Path | str, reason: str) -> None:
        """A path discovery could not use (an unreadable folder)."""
        self.failed(Failure(str(path), reason, self.model))

    def warn(self, message: str) -> None:
        self.summary.warnings.append(message)
        self.on_event(Event("warning", detail=message))

    def close(self) -> None:
        for appender in (self._labels, self._errors, self._answers):
            if appender is not None:
                appender.close()

    def tidy(self) -> None:
        """After a finished run: drop failures since labelled, and rows a newer one replaced.
        The appenders are closed first: Windows cannot replace a file that is held open."""
        if self._errors is None:
            return
        self.close()
        self.summary.errors_kept = compact_failures(self.errors_csv, self.labelled_paths)
        if self._replaced:
            compact_labels(self.labels_csv, read_labels(self.labels_csv))
