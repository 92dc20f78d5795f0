"""Batch mode: the same requests as `tag`, run by a provider's Batch API at half the price.

The images are planned by the same planner as a live run (resume index, copies, failures)
and each answer is judged by the same outcome policy, recorded by the same recorder.

State lives in `<labels stem>.batch.json` beside the labels CSV and is saved before each
paid step (upload, job creation), so a killed process never loses a job: the next command
re-attaches, by job name or, for a job created just before a crash, by display name.

What scales with the images lives per job in `<labels stem>.batch/`: the request JSONL,
removed as soon as its job exists (so the disk holds one job's JSONL at a time), and the
job's keys (request key -> paths) and, with `--cascade`, the offline model's opinion of
each image sent (for the rows' `local_*` columns), removed once the job is fetched. The
state itself stays
small. A submission is streamed job by job; one interrupted before its end is continued by
the next `tag --batch`, which sends only what no job holds yet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from emotag.emotions import EMOTIONS
from emotag.errors import InputError
from emotag.files.atomic import atomic_text
from emotag.files.images import DEFAULT_MAX_SIDE
from emotag.files.kept import read_kept
from emotag.files.settings import DEFAULT_BATCH_SIZE
from emotag.providers import DEFAULT_PROVIDER, ENDED, Batches, JobStatus
from emotag.providers.answers import Answer
from emotag.records import Failure, Label
from emotag.run.outcome import decide
from emotag.run.planner import walk
from emotag.run.prices import priced
from emotag.run.recorder import Recorder
from emotag.run.resume import ResumeIndex

if TYPE_CHECKING:
    from emotag.run.cascade import Cascade


@dataclass
class Job:
    display_name: str
    keys_path: str  # JSON of request key (content hash) -> paths with those bytes
    requests: int = 0
    input_path: str = ""  # the local JSONL, until the job exists
    file: str = ""  # the provider's file id once uploaded
    name: str = ""  # the provider's job id once created
    state: str = "pending"  # a providers.JobState
    detail: str = ""  # why it failed, in the provider's words
    fetched: bool = False

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    def update(self, status: JobStatus) -> None:
        self.state, self.detail = status.state, status.detail

    def keys(self) -> dict[str, list[str]]:
        return read_kept(Path(self.keys_path), "the batch job's keys", _keys)

    @property
    def opinions_path(self) -> str:
        """Beside the keys: `tag --cascade`'s offline opinion of each image sent, by content
        hash, for the fetched rows' `local_*` columns (absent without a cascade, or for a
        job submitted before emotag kept them)."""
        return self.keys_path.removesuffix(".keys.json") + ".opinions.json"

    def opinions(self) -> dict[str, tuple[str, float | None]]:
        path = Path(self.opinions_path)
        if not path.exists():
            return {}
        return read_kept(path, "the batch job's offline opinions", _opinions)


def _keys(found: dict[str, Any]) -> dict[str, list[str]]:
    """Each request key and the paths its answer labels."""
    for paths in found.values():
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise TypeError(f"a list of paths was expected, not {paths!r:.40}")
    return found


def _opinions(found: dict[str, Any]) -> dict[str, tuple[str, float | None]]:
    """Each content hash and the offline model's label and confidence; never a word
    outside the seven written to a row."""
    opinions: dict[str, tuple[str, float | None]] = {}
    for digest, (emotion, confidence) in found.items():
        if emotion not in EMOTIONS:
            raise ValueError(f"{emotion!r:.40} is not one of the seven emotions")
        probability = None if confidence is None else float(confidence)
        if probability is not None and not 0.0 <= probability <= 1.0:
            # The labels CSV refuses such a local_confidence: the row would block rewrites.
            raise ValueError(f"confidence {confidence!r:.40} is outside [0, 1]")
        opinions[digest] = (emotion, probability)
    return opinions


@dataclass
class BatchState:
    model: str
    prompt_sha: str
    provider: str = DEFAULT_PROVIDER
    base_url: str | None = None  # where the jobs are (None: the provider's own host)
    jobs: list[Job] = field(default_factory=list)
    skip_multi_face: bool = False
    votes: int = 1
    complete: bool = False  # every image was planned into a job

    @property
    def open_jobs(self) -> list[Job]:
        return [job for job in self.jobs if not job.fetched]

    def as_dict(self) -> dict[str, Any]:
        """`batch status|wait --json`: the jobs, without the local bookkeeping."""
        jobs = [
            {
                k: getattr(job, k)
                for k in ("display_name", "name", "state", "detail", "requests", "fetched")
            }
            for job in self.jobs
        ]
        return {
            "provider": self.provider,
            "model": self.model,
            "complete": self.complete,
            "votes": self.votes,
            "jobs": jobs,
        }


@dataclass
class Submission:
    jobs: int = 0
    requests: int = 0
    reattached: int = 0
    duplicates: int = 0
    skipped: int = 0
    failed: int = 0
    settled_locally: int = 0  # --cascade: labelled by the offline model, not submitted
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FetchResult:
    labelled: int = 0
    failed: int = 0
    waiting: int = 0
    input_tokens: int = 0  # as the Batch API reported them, for the answers fetched now
    output_tokens: int = 0
    model: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | priced(self.model, self.input_tokens, self.output_tokens, batch=True)


def state_path(labels_csv: Path) -> Path:
    return labels_csv.with_name(f"{labels_csv.stem}.batch.json")


def load_state(labels_csv: Path) -> BatchState | None:
    path = state_path(labels_csv)
    if not path.exists():
        return None

    def parse(raw: dict[str, Any]) -> BatchState:
        jobs = [Job(**job) for job in raw.pop("jobs")]
        return BatchState(**raw, jobs=jobs)

    return read_kept(path, "the batch state", parse)


def save_state(labels_csv: Path, state: BatchState) -> None:
    with atomic_text(state_path(labels_csv)) as handle:
        json.dump(asdict(state), handle, indent=1)


def prompt_sha(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def submit(
    batches: Batches,
    paths: Iterable[Path],
    index: ResumeIndex,
    recorder: Recorder,
    fresh: BatchState,
    *,
    max_side: int = DEFAULT_MAX_SIDE,
    per_job: int = DEFAULT_BATCH_SIZE,
    cascade: Cascade | None = None,
) -> Submission:
    """Plan every image as `tag` does and submit the jobs one by one as each fills;
    `fresh` is the state of a new submission (model, prompt, provider, votes).

    If earlier jobs are not fetched yet, they are re-attached; a submission interrupted
    before its end is then continued, sending only what no job holds yet.
    """
    labels_csv = recorder.labels_csv
    state = load_state(labels_csv)
    result = Submission()
    if state and state.open_jobs:
        result.reattached = len(state.open_jobs)
        _recover(batches, labels_csv, state)
        if state.complete:
            return result
    else:
        state = fresh
    folder = _jobs_folder(labels_csv)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_strays(folder, state)
    writer = _JobWriter(
        state,
        folder,
        min(per_job, batches.max_requests),
        batches.max_bytes,
        lambda job: _start(batches, labels_csv, job, state),
    )
    submitted = len(state.jobs)
    for step in walk(paths, index, max_side, cascade=cascade):
        if step.digest in writer.job_of:
            writer.copy(step.digest, step.path)  # its bytes are in a job already
        elif step.kind == "send" and step.image is not None:
            need = index.missing(step.digest)
            if need == 0:  # every vote already paid for: only the row is missing
                paid = index.paid[step.digest]
                recorder.result(_decide(paid, step.path, step.digest, state))
                continue
            for vote in range(need):
                key = _key(step.digest, vote, index.votes)
                # An image's votes stay in one job, so its fetch sees all of them.
                line = batches.line(key, step.image)
                writer.add(key, step.digest, step.path, line, may_cut=vote == 0, local=step.local)
        elif step.kind == "pending":
            writer.copy(step.digest, step.path)
            result.duplicates += 1
        else:
            recorder.step(step)
    writer.close()
    writer.save_late_copies()
    state.complete = True
    save_state(labels_csv, state)
    result.skipped = recorder.summary.skipped
    result.duplicates += recorder.summary.duplicates
    result.failed = recorder.summary.failed
    result.settled_locally = recorder.summary.settled_locally
    result.jobs = len(state.jobs) - submitted
    result.requests = sum(job.requests for job in state.jobs[submitted:])
    return result


def _jobs_folder(labels_csv: Path) -> Path:
    return labels_csv.with_name(f"{labels_csv.stem}.batch")


def _remove_strays(folder: Path, state: BatchState) -> None:
    """A JSONL, keys or opinions file no job refers to (an interrupted write) is deleted."""
    kept = {
        Path(p).name
        for job in state.jobs
        for p in (job.input_path, job.keys_path, job.opinions_path if job.keys_path else "")
        if p
    }
    for path in folder.iterdir():
        if path.name not in kept and path.suffix in (".jsonl", ".json", ".tmp"):
            path.unlink(missing_ok=True)


def _key(digest: str, vote: int, votes: int) -> str:
    """A request's key: the content hash in base64url (43 characters, so a vote's number
    still fits the 64 that OpenAI allows a custom_id), with the vote's number when there
    are several."""
    short = base64.urlsafe_b64encode(bytes.fromhex(digest)).rstrip(b"=").decode()
    return short if votes == 1 else f"{short}#{vote}"


def _digest(key: str) -> str:
    """The content hash (hex) a request key (see `_key`) was made from."""
    short = key.split("#", 1)[0]
    return base64.urlsafe_b64decode(short + "=" * (-len(short) % 4)).hex()


def _decide(
    answers: list[Answer] | list[tuple[str, str]], path: str, digest: str, state: BatchState
) -> Label | Failure:
    return decide(
        answers,
        path,
        digest,
        state.model,
        skip_multi_face=state.skip_multi_face,
        votes=state.votes,
    )


def refresh(batches: Batches, labels_csv: Path) -> BatchState:
    """Re-read every open job's state from the API and save it."""
    state = _require_state(labels_csv)
    _recover(batches, labels_csv, state)
    for job in state.open_jobs:
        if job.name and not job.ended:
            job.update(batches.status(job.name))
    save_state(labels_csv, state)
    return state


def wait(
    batches: Batches,
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
        state = refresh(batches, labels_csv)
        on_poll(state)
        if all(job.ended for job in state.open_jobs):
            return state
        sleep(delay)
        delay = min(max_poll, delay * 1.5)


def fetch(
    batches: Batches,
    recorder: Recorder,
    labelled: frozenset[str],
    paid: dict[str, list[tuple[str, str]]] | None = None,
) -> FetchResult:
    """Download ended jobs' answers (an expired or cancelled job may hold some), judge
    each image like `tag`, record the rows.

    `labelled` holds the paths already in the labels CSV (an interrupted fetch wrote them);
    `paid` the --votes answers paid for before, by content hash.
    """
    state = refresh(batches, recorder.labels_csv)
    result = FetchResult(model=state.model)
    summary = recorder.summary
    for job in state.open_jobs:
        if not job.ended:
            result.waiting += 1
            continue
        answers = batches.results(job.name) if job.name else {}
        job_keys, opinions = job.keys(), job.opinions()
        by_digest: dict[str, list[str]] = {}
        for key in job_keys:
            by_digest.setdefault(_digest(key), []).append(key)
        for digest, keys in by_digest.items():
            todo = [p for p in job_keys[keys[0]] if p not in labelled]
            if not todo:
                continue
            outcomes = [answers.get(key, _job_failure(job)) for key in keys]
            got = [(k, o) for k, o in zip(keys, outcomes, strict=True) if isinstance(o, Answer)]
            for key, answer in got:
                recorder.paid(digest, answer, vote=state.votes > 1, request=f"{job.name}/{key}")
            so_far = [*(paid or {}).get(digest, ()), *((a.emotion, a.faces) for _, a in got)]
            failed = [o for o in outcomes if isinstance(o, str)]
            row: Label | Failure
            if failed:
                row = Failure(todo[0], failed[0], state.model, digest)
            elif state.votes == 1:
                row = _decide([a for _, a in got], todo[0], digest, state)
            else:
                row = _decide(so_far, todo[0], digest, state)
            if isinstance(row, Label) and digest in opinions:
                row.local_emotion, row.local_confidence = opinions[digest]
            recorder.result(row)
            for copy in todo[1:]:
                recorder.same_as(row, copy)
        job.fetched = True
        save_state(recorder.labels_csv, state)
        for done in (job.keys_path, job.opinions_path):  # its rows are written
            Path(done).unlink(missing_ok=True)
    folder = _jobs_folder(recorder.labels_csv)
    if not state.open_jobs and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    result.labelled, result.failed = summary.labelled, summary.failed
    result.input_tokens, result.output_tokens = summary.input_tokens, summary.output_tokens
    return result


def cancel(batches: Batches, labels_csv: Path) -> int:
    state = refresh(batches, labels_csv)
    cancelled = 0
    for job in state.open_jobs:
        if job.name and not job.ended:
            batches.cancel(job.name)
            cancelled += 1
    return cancelled


class _JobWriter:
    """JSONL input files, cut at `per_job` requests or `max_bytes`; each is handed to
    `start` as soon as it is complete (one JSONL on disk at a time)."""

    def __init__(
        self,
        state: BatchState,
        folder: Path,
        per_job: int,
        max_bytes: int,
        start: Callable[[Job], None],
    ) -> None:
        self.state, self.folder, self.start = state, folder, start
        self.per_job, self.max_bytes = per_job, max_bytes
        self.groups: dict[str, list[str]] = {}  # content hash -> paths with those bytes
        self.job_of: dict[str, Job] = {}  # content hash -> the job that holds it
        for job in state.open_jobs:  # a fetched job's images are labelled: the plan skips them
            for key, paths in job.keys().items():
                self.groups.setdefault(_digest(key), paths)
                self.job_of[_digest(key)] = job
        self._late: set[str] = set()  # keys files that gained a copy after they were written
        self._handle: IO[str] | None = None
        self._path = Path()
        self._keys: list[str] = []
        self._digests: dict[str, str] = {}  # request key -> content hash
        self._opinions: dict[str, tuple[str, float | None]] = {}  # the offline model's
        self._size = 0

    def add(
        self,
        key: str,
        digest: str,
        path: str,
        request: dict[str, Any],
        *,
        may_cut: bool = True,
        local: Label | None = None,
    ) -> None:
        line = json.dumps(request) + "\n"
        full = may_cut and (
            len(self._keys) >= self.per_job or self._size + len(line) > self.max_bytes
        )
        if self._handle is None or full:
            self.close()
            self._path = self.folder / f"emotag-{uuid.uuid4().hex[:12]}.jsonl"
            self._handle = open(self._path, "w", encoding="utf-8")
        self._handle.write(line)
        self._keys.append(key)
        self._size += len(line)
        self._digests[key] = digest
        self.groups.setdefault(digest, [path])
        if local is not None:
            self._opinions[digest] = (local.local_emotion, local.local_confidence)

    def copy(self, digest: str, path: str) -> None:
        """Bytes already planned: this path gets the same answer when it is fetched."""
        paths = self.groups[digest]
        if path in paths:
            return
        paths.append(path)
        if (job := self.job_of.get(digest)) is not None:
            self._late.add(job.keys_path)

    def close(self) -> None:
        """Finish the JSONL being written: save its job, then upload and create it."""
        if self._handle is None:
            return
        self._handle.close()
        self._handle = None
        stem = self._path.stem.removeprefix("emotag-")
        keys = {key: self.groups[self._digests[key]] for key in self._keys}
        keys_path = self.folder / f"emotag-{stem}.keys.json"
        job = Job(f"emotag-{stem}", str(keys_path), len(self._keys), str(self._path))
        if self._opinions:
            _write_json(Path(job.opinions_path), self._opinions)
        _write_json(keys_path, keys)
        self.state.jobs.append(job)
        self.job_of.update((digest, job) for digest in self._digests.values())
        self._keys, self._digests, self._opinions, self._size = [], {}, {}, 0
        self.start(job)

    def save_late_copies(self) -> None:
        for job in self.state.jobs:
            if job.keys_path in self._late:
                keys = job.keys()
                _write_json(Path(job.keys_path), {k: self.groups[_digest(k)] for k in keys})


def _write_json(path: Path, data: Any) -> None:
    with atomic_text(path) as handle:
        json.dump(data, handle, separators=(",", ":"))


def _job_failure(job: Job) -> str:
    if job.state == "succeeded":
        return "missing from the batch results"
    why = f" ({job.detail})" if job.detail else ""
    return f"batch job {job.state}{why}; retry with --retry-failed"


def _start(batches: Batches, labels_csv: Path, job: Job, state: BatchState) -> None:
    """Upload and create one job, saving the state before and after each paid step; once
    the job exists its JSONL is not needed again and is removed."""
    save_state(labels_csv, state)
    if not job.file:
        job.file = batches.upload(job.input_path, job.display_name)
        save_state(labels_csv, state)
    if not job.name:
        job.name, status = batches.create(job.file, job.display_name)
        job.update(status)
        save_state(labels_csv, state)
    _drop_input(labels_csv, job, state)


def _drop_input(labels_csv: Path, job: Job, state: BatchState) -> None:
    if job.input_path:
        Path(job.input_path).unlink(missing_ok=True)
        job.input_path = ""
        save_state(labels_csv, state)


def _recover(batches: Batches, labels_csv: Path, state: BatchState) -> None:
    """Finish what a crash interrupted: find jobs created but not saved, start the rest."""
    for job in state.open_jobs:
        if job.name:
            _drop_input(labels_csv, job, state)  # created, but killed before the removal
    missing = {job.display_name: job for job in state.open_jobs if not job.name}
    if not missing:
        return
    for display_name, (name, status) in batches.find().items():
        if (found := missing.pop(display_name, None)) is not None:
            found.name = name
            found.update(status)
            _drop_input(labels_csv, found, state)
    save_state(labels_csv, state)
    for job in missing.values():
        _start(batches, labels_csv, job, state)


def _require_state(labels_csv: Path) -> BatchState:
    state = load_state(labels_csv)
    if state is None:
        raise InputError(
            f"No batch jobs for {labels_csv}: "
            f"start one with 'emotag tag DIR --batch -o {labels_csv}'."
        )
    return state
