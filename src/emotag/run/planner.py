"""One image's way from a path to "send" or not, the same for live, batch and dry-run.

`plan` reads the file once, hashes it, asks the resume index and prepares the upload; it
only reads the index, so it can run in worker threads. `claim` (on the index) is the one
step that must run in order: a second copy of the same bytes waits for the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from emotag.errors import ImageError
from emotag.files import images
from emotag.records import NO_FACE, Label
from emotag.run.resume import ResumeIndex

if TYPE_CHECKING:
    from emotag.run.cascade import Cascade

StepKind = Literal["skip", "fail", "copy", "send", "pending", "settle"]


@dataclass(frozen=True, slots=True)
class Step:
    """What to do with one path; `pending` means the same bytes are being sent for
    `first` in this run; `settle`, that the offline model's label (`original`) is final
    (`tag --cascade`), saving `saved_tokens` of input."""

    kind: StepKind
    path: str
    digest: str = ""
    reason: str = ""
    original: Label | None = None
    image: images.Prepared | None = None
    first: str = ""
    local: Label | None = None  # the offline model's opinion of an image still sent
    saved_tokens: int = 0


def plan(path: str, index: ResumeIndex, max_side: int, cascade: Cascade | None = None) -> Step:
    """Decide one path without claiming it (safe in a worker thread); with a cascade, the
    offline model judges the prepared image first."""
    if path in index.done_paths:
        return Step("skip", path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return Step("fail", path, reason=f"cannot read file: {exc.strerror or exc}")
    digest = hashlib.sha256(raw).hexdigest()
    if (original := index.by_hash.get(digest)) is not None:
        return Step("copy", path, digest, original=original)
    if digest in index.no_face:
        return Step("fail", path, digest, reason=NO_FACE)  # answered before: not paid again
    if digest in index.claimed:
        return Step("pending", path, digest, first=index.claimed[digest])
    try:
        prepared = images.prepare(raw, max_side)
    except images.NeedsExtra as exc:
        # Keyed by extension, so the summary counts them so: "needs emotag[heif] (.heic)".
        suffix = Path(path).suffix.lower()
        return Step("fail", path, digest, reason=f"{exc} ({suffix}): install it, then re-run")
    except ImageError as exc:
        return Step("fail", path, digest, reason=f"unreadable image: {exc}")
    if cascade is None:
        return Step("send", path, digest, image=prepared)
    local = cascade.opinion(path, digest, prepared.data)
    if local is not None and cascade.settles(local):
        saved = cascade.tokens(prepared.width, prepared.height)
        return Step("settle", path, digest, original=local, saved_tokens=saved)
    return Step("send", path, digest, image=prepared, local=local)


def claimed(step: Step, index: ResumeIndex) -> Step:
    """`step` after claiming its bytes: a later copy of bytes already sent is `pending`."""
    if step.kind != "send":
        return step
    first = index.claim(step.digest, step.path)
    return step if first is None else Step("pending", step.path, step.digest, first=first)


def walk(
    paths: Iterable[Path | str],
    index: ResumeIndex,
    max_side: int,
    *,
    cascade: Cascade | None = None,
    slice_size: int = 256,
) -> Iterator[Step]:
    """Plan paths in threads, a slice at a time (flat memory for 100k+ images), and claim
    them in order."""
    with ThreadPoolExecutor() as pool:
        chunk: list[str] = []
        for path in paths:
            chunk.append(str(path))
            if len(chunk) >= slice_size:
                yield from _planned(pool, chunk, index, max_side, cascade)
                chunk = []
        yield from _planned(pool, chunk, index, max_side, cascade)


def _planned(
    pool: ThreadPoolExecutor,
    chunk: list[str],
    index: ResumeIndex,
    max_side: int,
    cascade: Cascade | None,
) -> Iterator[Step]:
    for step in pool.map(lambda p: plan(p, index, max_side, cascade), chunk):
        yield claimed(step, index)
