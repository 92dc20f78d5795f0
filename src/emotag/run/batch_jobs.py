"""The `batch` commands: status, wait, cancel and fetch the jobs `tag --batch` submitted,
through the batch API of the provider that holds them (read from the registry)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from emotag.errors import ConfigError, InputError
from emotag.files.csvfiles import (
    answers_path_for,
    compact_failures,
    errors_path_for,
    read_answers,
    read_labels,
)
from emotag.files.lock import run_lock
from emotag.files.settings import setting
from emotag.providers import Batches, Setup, spec
from emotag.providers.keys import sendable_key
from emotag.quality.calibration import calibration_for
from emotag.run import batch
from emotag.run.recorder import Recorder


def status(labels_csv: Path) -> batch.BatchState:
    """`batch status`: every job's state, read again from the API."""
    with _jobs(labels_csv) as (batches, _):
        return batch.refresh(batches, _absolute(labels_csv))


def wait(
    labels_csv: Path, *, poll: float, on_poll: Callable[[batch.BatchState], None]
) -> batch.BatchState:
    with _jobs(labels_csv) as (batches, _):
        return batch.wait(batches, _absolute(labels_csv), poll=poll, on_poll=on_poll)


def cancel(labels_csv: Path) -> int:
    with _jobs(labels_csv) as (batches, _):
        return batch.cancel(batches, _absolute(labels_csv))


def fetch(labels_csv: Path, errors_csv: Path | None) -> batch.FetchResult:
    """`batch fetch`: record the finished jobs' answers as `tag` would, under the run lock."""
    labels_csv = _absolute(labels_csv)
    errors = errors_path_for(labels_csv) if errors_csv is None else errors_csv.absolute()
    with _jobs(labels_csv) as (batches, model), run_lock(labels_csv):
        labelled = frozenset(read_labels(labels_csv).labels)
        paid = read_answers(answers_path_for(labels_csv), model)
        recorder = Recorder(labels_csv, errors, model, calibrate=calibration_for(labels_csv))
        try:
            result = batch.fetch(batches, recorder, labelled, paid)
        finally:
            recorder.close()
        compact_failures(errors, [*labelled, *recorder.labelled_paths])
        return result


@contextmanager
def _jobs(labels_csv: Path) -> Iterator[tuple[Batches, str]]:
    """The batch API of the provider that holds the jobs recorded beside `labels_csv`,
    and their model."""
    labels_csv = _absolute(labels_csv)
    state = batch.load_state(labels_csv)
    if state is None:
        raise InputError(
            f"No batch jobs recorded for {labels_csv}; start with 'emotag tag DIR --batch'."
        )
    chosen = spec(state.provider)
    if chosen.batches is None:
        raise ConfigError(f"The {chosen.name} provider has no batch API.")
    # The provider's base-URL variable wins (the API moved), else where the jobs went.
    base_url = setting(chosen.base_url_var) or state.base_url
    setup = Setup(state.model, sendable_key(chosen, base_url), base_url, chosen.endpoint(base_url))
    batches = chosen.batches(setup, None)
    try:
        yield batches, state.model
    finally:
        batches.close()


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))
