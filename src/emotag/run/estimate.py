"""`tag --dry-run`: the same planner as a run, with nothing sent and nothing written."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotag.records import NO_FACE
from emotag.run.planner import walk
from emotag.run.prices import OUTPUT_TOKENS_PER_ANSWER, all_paid, priced
from emotag.run.recorder import Recorder
from emotag.run.resume import ResumeIndex

if TYPE_CHECKING:
    from emotag.run.cascade import Cascade


@dataclass
class Estimate:
    found: int = 0
    already_done: int = 0
    duplicates: int = 0
    to_send: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    remembered_no_face: int = 0
    input_tokens: int = 0
    output_tokens: int = 0  # prices.OUTPUT_TOKENS_PER_ANSWER an answer: a dry run sees none
    model: str = ""
    votes: int = 1
    cascade: bool = False
    settled_locally: int = 0  # --cascade: the offline model's label would be final
    saved_input_tokens: int = 0
    warnings: list[str] = field(default_factory=list)

    def batch_jobs(self, per_job: int) -> int:
        return -(-self.to_send // per_job)

    def cost(self, *, batch: bool) -> dict[str, Any]:
        """`cost_usd` (None: price unknown) and the `price` row, batch-discounted or not."""
        return priced(self.model, self.input_tokens, self.output_tokens, batch=batch)

    def as_dict(self, batch_size: int | None = None) -> dict[str, Any]:
        """The `--json` keys of `tag --dry-run` (docs/usage.md lists them)."""
        data: dict[str, Any] = {
            "found": self.found,
            "already_done": self.already_done,
            "duplicates": self.duplicates,
            "to_send": self.to_send,
            "unreadable": len(self.unreadable),
            "remembered_no_face": self.remembered_no_face,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
        if batch_size is not None:
            data["batch_jobs"] = self.batch_jobs(batch_size)
            data["batch_billed_input_tokens"] = self.input_tokens // 2
        cost = self.cost(batch=batch_size is not None)
        data["estimated_cost_usd"], data["price"] = cost["cost_usd"], cost["price"]
        if self.cascade:
            data["settled_locally"] = self.settled_locally
            data["estimated_cost_all_paid_usd"] = self.all_paid(batch=batch_size is not None)
        data["warnings"] = self.warnings
        return data

    def all_paid(self, *, batch: bool) -> float | None:
        """The cost had the images the offline model settles been sent too."""
        return all_paid(self.model, self, votes=self.votes, batch=batch)


def estimate(
    source: Callable[[Callable[[Path, str], None]], Iterable[Path]],
    index: ResumeIndex,
    recorder: Recorder,
    *,
    max_side: int,
    tokens: Callable[[int, int], int],
    cascade: Cascade | None = None,
) -> Estimate:
    """Walk every image exactly as `tag` would and count what would be paid for.

    `recorder` should not write (`write=False`); it counts skips, copies and failures.
    """
    result = Estimate(model=recorder.model, votes=index.votes, cascade=cascade is not None)
    for step in walk(recorder.discovered(source), index, max_side, cascade=cascade):
        if step.kind == "send" and step.image is not None:
            need = index.missing(step.digest)  # K answers with --votes, fewer on a top-up
            result.to_send += need
            result.input_tokens += need * tokens(step.image.width, step.image.height)
            result.output_tokens += need * OUTPUT_TOKENS_PER_ANSWER
        elif step.kind == "pending":
            result.duplicates += 1
        else:
            recorder.step(step)
    summary = recorder.summary
    result.found = summary.found
    result.already_done = summary.skipped
    result.duplicates += summary.duplicates
    result.settled_locally = summary.settled_locally
    result.saved_input_tokens = summary.saved_input_tokens
    result.unreadable = [(f.path, f.reason) for f in recorder.failures if f.reason != NO_FACE]
    result.remembered_no_face = sum(1 for f in recorder.failures if f.reason == NO_FACE)
    return result
