"""`tag --dry-run`: what a run would send and roughly what it would cost, sending nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from emotag import images
from emotag.errors import ImageError
from emotag.ledger import read_labels
from emotag.providers.gemini import estimate_input_tokens


@dataclass
class Estimate:
    found: int = 0
    already_done: int = 0
    duplicates: int = 0
    to_send: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    input_tokens: int = 0

    def batch_jobs(self, per_job: int) -> int:
        return -(-self.to_send // per_job)


def estimate(
    paths: Iterable[Path],
    *,
    model: str,
    prompt: str,
    labels_csv: Path,
    max_side: int = images.DEFAULT_MAX_SIDE,
    force: bool = False,
) -> Estimate:
    """Read and prepare every image exactly as `tag` would, and count what would be paid for."""
    table = read_labels(labels_csv)
    labels = [] if force else [lab for lab in table.labels.values() if lab.done_for(model)]
    done = {lab.path for lab in labels}
    known = {lab.sha256 for lab in labels if lab.sha256}
    result = Estimate()
    todo: list[Path] = []
    for path in paths:
        result.found += 1
        if str(path) in done:
            result.already_done += 1
        else:
            todo.append(path)
    with ThreadPoolExecutor() as pool:
        for path, outcome in zip(
            todo, pool.map(lambda p: _inspect(p, max_side), todo), strict=True
        ):
            if isinstance(outcome, str):
                result.unreadable.append((str(path), outcome))
                continue
            digest, prepared = outcome
            if digest in known:
                result.duplicates += 1
                continue
            known.add(digest)
            result.to_send += 1
            result.input_tokens += estimate_input_tokens(
                model, prompt, prepared.width, prepared.height
            )
    return result


def _inspect(path: Path, max_side: int) -> tuple[str, images.Prepared] | str:
    try:
        raw = path.read_bytes()
        return hashlib.sha256(raw).hexdigest(), images.prepare(raw, max_side)
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    except ImageError as exc:
        return f"unreadable image: {exc}"
