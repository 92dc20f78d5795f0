"""Batch mode: the same requests as `tag`, run by Google's Batch API at half the price.

State lives in `<labels stem>.batch.json` beside the labels CSV and is saved before each
paid step (upload, job creation), so a killed process never loses a job: the next command
re-attaches, by job name or, for a job created just before a crash, by display name.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotag import images
from emotag.errors import AnswerError, ImageError, InputError
from emotag.ledger import (
    ERROR_COLUMNS,
    LABEL_COLUMNS,
    NO_FACE,
    Appender,
    Failure,
    Label,
    atomic_text,
    compact_failures,
    no_face_hashes,
    read_labels,
)
from emotag.providers.gemini import Labeller, read_response

if TYPE_CHECKING:
    from google import genai

DEFAULT_REQUESTS_PER_JOB = 10_000
MAX_JOB_BYTES = 1_500_000_000  # under the Files API's 2 GB per file
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


@dataclass
class Job:
    display_name: str
    keys: dict[str, list[str]]  # request key (content hash) -> paths with those bytes
    input_path: str = ""  # the local JSONL
    file: str = ""  # files/... once uploaded
    name: str = ""  # batches/... once created
    state: str = "NOT_SUBMITTED"
    fetched: bool = False


@dataclass
class BatchState:
    model: str
    prompt_sha: str
    jobs: list[Job] = field(default_factory=list)

    @property
    def open_jobs(self) -> list[Job]:
        return [job for job in self.jobs if not job.fetched]


@dataclass
class Submission:
    jobs: int = 0
    requests: int = 0
    reattached: int = 0
    duplicates: int = 0
    skipped: int = 0
    failed: int = 0


@dataclass
class FetchResult:
    labelled: int = 0
    failed: int = 0
    waiting: int = 0


def state_path(labels_csv: Path) -> Path:
    return labels_csv.with_name(f"{labels_csv.stem}.batch.json")


def load_state(labels_csv: Path) -> BatchState | None:
    path = state_path(labels_csv)
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return BatchState(raw["model"], raw["prompt_sha"], [Job(**job) for job in raw["jobs"]])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"Cannot read the batch state {path}: {exc}") from exc


def save_state(labels_csv: Path, state: BatchState) -> None:
    with atomic_text(state_path(labels_csv)) as handle:
        json.dump(asdict(state), handle, indent=1)


def prompt_sha(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def submit(
    client: genai.Client,
    labeller: Labeller,
    paths: Iterable[Path],
    labels_csv: Path,
    errors_csv: Path,
    *,
    max_side: int = images.DEFAULT_MAX_SIDE,
    per_job: int = DEFAULT_REQUESTS_PER_JOB,
    force: bool = False,
) -> Submission:
    """Prepare every image as `tag` does, write JSONL files, upload them, create the jobs.

    If earlier jobs are not fetched yet, nothing new is submitted: they are re-attached.
    """
    state = load_state(labels_csv)
    result = Submission()
    if state and state.open_jobs:
        result.reattached = len(state.open_jobs)
        _recover(client, labels_csv, state)
        return result
    table = read_labels(labels_csv)
    done = (
        set() if force else {p for p, lab in table.labels.items() if lab.done_for(labeller.model)}
    )
    known = {
        lab.sha256: lab
        for lab in table.labels.values()
        if not force and lab.sha256 and lab.done_for(labeller.model)
    }
    no_face = set() if force else no_face_hashes(errors_csv, labeller.model)
    groups: dict[str, list[str]] = {}
    todo: list[tuple[str, str]] = []  # (content hash, first path): bytes are re-read later
    labels = Appender(labels_csv, LABEL_COLUMNS)
    errors = Appender(errors_csv, ERROR_COLUMNS)
    try:
        for path in map(str, paths):
            if path in done:
                result.skipped += 1
                continue
            try:
                raw = Path(path).read_bytes()
            except OSError as exc:
                errors.append(
                    Failure(
                        path, f"cannot read file: {exc.strerror or exc}", labeller.model
                    ).as_row()
                )
                result.failed += 1
                continue
            digest = hashlib.sha256(raw).hexdigest()
            if digest in no_face:
                errors.append(Failure(path, NO_FACE, labeller.model, digest).as_row())
                result.failed += 1
            elif digest in known:
                original = known[digest]
                labels.append(replace(original, path=path, duplicate_of=original.path).as_row())
                result.duplicates += 1
            elif digest in groups:
                groups[digest].append(path)
                result.duplicates += 1
            else:
                groups[digest] = [path]
                todo.append((digest, path))
        state = BatchState(labeller.model, prompt_sha(labeller.prompt))
        folder = labels_csv.with_name(f"{labels_csv.stem}.batch")
        folder.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor() as pool:
            chunk: list[str] = []
            size = 0
            handle = None
            jsonl: Path | None = None
            for digest, outcome in _prepared(pool, todo, max_side):
                if isinstance(outcome, str):
                    for path in groups[digest]:
                        errors.append(Failure(path, outcome, labeller.model, digest).as_row())
                        result.failed += 1
                    continue
                line = json.dumps({"key": digest, "request": labeller.request_json(outcome)}) + "\n"
                if handle is None or len(chunk) >= per_job or size + len(line) > MAX_JOB_BYTES:
                    if handle is not None and jsonl is not None:
                        handle.close()
                        _add_job(state, chunk, groups, jsonl)
                    jsonl = folder / f"emotag-{uuid.uuid4().hex[:12]}.jsonl"
                    handle = open(jsonl, "w", encoding="utf-8")
                    chunk, size = [], 0
                handle.write(line)
                chunk.append(digest)
                size += len(line)
            if handle is not None and jsonl is not None:
                handle.close()
                _add_job(state, chunk, groups, jsonl)
    finally:
        labels.close()
        errors.close()
    save_state(labels_csv, state)  # before anything is paid for
    for job in state.jobs:
        _start(client, labels_csv, state, job, labeller.model)
    result.jobs = len(state.jobs)
    result.requests = sum(len(job.keys) for job in state.jobs)
    return result


def refresh(client: genai.Client, labels_csv: Path) -> BatchState:
    """Re-read every open job's state from the API and save it."""
    state = _require_state(labels_csv)
    _recover(client, labels_csv, state)
    for job in state.open_jobs:
        if job.name and job.state not in TERMINAL:
            job.state = _state_name(client.batches.get(name=job.name).state)
    save_state(labels_csv, state)
    return state


def wait(
    client: genai.Client,
    labels_csv: Path,
    *,
    poll: float = 30.0,
    max_poll: float = 300.0,
    on_poll: Callable[[BatchState], None] = lambda state: None,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchState:
    """Poll until every open job has ended, backing off from `poll` to `max_poll` seconds."""
    delay = poll
    while True:
        state = refresh(client, labels_csv)
        on_poll(state)
        if all(job.state in TERMINAL for job in state.open_jobs):
            return state
        sleep(delay)
        delay = min(max_poll, delay * 1.5)


def fetch(client: genai.Client, labels_csv: Path, errors_csv: Path, model: str) -> FetchResult:
    """Download finished jobs' results, validate each answer like `tag`, append the rows."""
    state = refresh(client, labels_csv)
    result = FetchResult()
    labelled = set(read_labels(labels_csv).labels)
    labels = Appender(labels_csv, LABEL_COLUMNS)
    errors = Appender(errors_csv, ERROR_COLUMNS)
    try:
        for job in state.open_jobs:
            if job.state not in TERMINAL:
                result.waiting += 1
                continue
            answers = _results(client, job) if job.state == "JOB_STATE_SUCCEEDED" else {}
            for key, paths in job.keys.items():
                todo = [p for p in paths if p not in labelled]
                if not todo:
                    continue  # written by an earlier, interrupted fetch
                outcome = answers.get(key, _job_failure(job))
                if isinstance(outcome, Label):
                    first = replace(outcome, path=todo[0], model=model, sha256=key)
                    labels.append(first.as_row())
                    for copy in todo[1:]:
                        labels.append(replace(first, path=copy, duplicate_of=first.path).as_row())
                    result.labelled += len(todo)
                    labelled.update(todo)
                else:
                    for path in todo:
                        errors.append(Failure(path, outcome, model, key).as_row())
                    result.failed += len(todo)
            job.fetched = True
            save_state(labels_csv, state)
    finally:
        labels.close()
        errors.close()
    compact_failures(errors_csv, labelled)
    return result


def cancel(client: genai.Client, labels_csv: Path) -> int:
    state = refresh(client, labels_csv)
    cancelled = 0
    for job in state.open_jobs:
        if job.name and job.state not in TERMINAL:
            client.batches.cancel(name=job.name)
            cancelled += 1
    return cancelled


def _results(client: genai.Client, job: Job) -> dict[str, Label | str]:
    batch = client.batches.get(name=job.name)
    name = batch.dest.file_name if batch.dest else None
    if not name:
        return {}
    answers: dict[str, Label | str] = {}
    for line in client.files.download(file=name).decode("utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        key = str(item.get("key", ""))
        if "error" in item:
            error = item["error"] or {}
            answers[key] = (
                f"batch request failed: {error.get('code', '')} {error.get('message', '')}".strip()
            )
            continue
        answers[key] = _answer(item.get("response") or {})
    return answers


def _answer(response: dict[str, Any]) -> Label | str:
    from google.genai import types

    try:
        answer = read_response(types.GenerateContentResponse.model_validate(response))
    except AnswerError as exc:
        return str(exc)
    if answer.faces == "0":
        return NO_FACE
    return Label(
        "", answer.emotion, answer.confidence, answer.confidence_source, faces=answer.faces
    )


def _job_failure(job: Job) -> str:
    if job.state == "JOB_STATE_SUCCEEDED":
        return "missing from the batch results"
    return f"batch job {job.state.removeprefix('JOB_STATE_').lower()}; retry with --retry-failed"


def _start(client: genai.Client, labels_csv: Path, state: BatchState, job: Job, model: str) -> None:
    """Upload and create one job, saving the state after each paid step."""
    from google.genai import types

    if not job.file:
        uploaded = client.files.upload(
            file=job.input_path,
            config=types.UploadFileConfig(display_name=job.display_name, mime_type="jsonl"),
        )
        job.file = uploaded.name or ""
        save_state(labels_csv, state)
    if not job.name:
        created = client.batches.create(
            model=model,
            src=job.file,
            config=types.CreateBatchJobConfig(display_name=job.display_name),
        )
        job.name = created.name or ""
        job.state = _state_name(created.state)
        save_state(labels_csv, state)


def _recover(client: genai.Client, labels_csv: Path, state: BatchState) -> None:
    """Finish what a crash interrupted: find jobs created but not saved, start the rest."""
    missing = {job.display_name: job for job in state.open_jobs if not job.name}
    if not missing:
        return
    for batch in client.batches.list():
        job = missing.pop(batch.display_name or "", None)
        if job is not None and batch.name:
            job.name = batch.name
            job.state = _state_name(batch.state)
    save_state(labels_csv, state)
    for job in missing.values():
        _start(client, labels_csv, state, job, state.model)


def _require_state(labels_csv: Path) -> BatchState:
    state = load_state(labels_csv)
    if state is None:
        raise InputError(
            f"No batch jobs for {labels_csv}: "
            f"start one with 'emotag tag DIR --batch -o {labels_csv}'."
        )
    return state


def _add_job(state: BatchState, chunk: list[str], groups: dict[str, list[str]], path: Path) -> None:
    display = f"emotag-{path.stem.removeprefix('emotag-')}"
    state.jobs.append(Job(display, {key: groups[key] for key in chunk}, str(path)))


def _prepared(
    pool: ThreadPoolExecutor, todo: list[tuple[str, str]], max_side: int
) -> Iterator[tuple[str, images.Prepared | str]]:
    """Prepare in threads, a slice at a time, so memory stays flat for 100k+ images."""
    for start in range(0, len(todo), 256):
        part = todo[start : start + 256]
        outcomes = pool.map(lambda item: _prepare(Path(item[1]), max_side), part)
        for (digest, _), outcome in zip(part, outcomes, strict=True):
            yield digest, outcome


def _prepare(path: Path, max_side: int) -> images.Prepared | str:
    try:
        return images.prepare(path.read_bytes(), max_side)
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    except ImageError as exc:
        return f"unreadable image: {exc}"


def _state_name(value: Any) -> str:
    return str(getattr(value, "value", value) or "JOB_STATE_UNSPECIFIED")
