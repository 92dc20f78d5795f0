"""What is already done, the one rule live, batch and dry-run runs share.

An image needs no request when its path is labelled by this model with all the votes
asked for (or corrected by a person), when the same bytes are labelled so under another
path, when this model already said those bytes show no face, or when the same bytes are
already being sent in this run. An image with fewer votes than asked for needs only the
missing ones: the answers already paid for are kept in the answers ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emotag.files.csvfiles import no_face_hashes, read_answers
from emotag.providers.answers import Answer
from emotag.records import HUMAN, NO_FACE, Failure, Label, LabelTable
from emotag.votes import answers_in, vote_count


@dataclass
class ResumeIndex:
    votes: int = 1
    done_paths: set[str] = field(default_factory=set)
    by_hash: dict[str, Label] = field(default_factory=dict)
    no_face: set[str] = field(default_factory=set)
    claimed: dict[str, str] = field(default_factory=dict)  # digest -> first path this run
    paid: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # digest -> answers

    @classmethod
    def load(
        cls,
        table: LabelTable,
        errors_csv: Path,
        model: str,
        *,
        force: bool,
        votes: int = 1,
        answers_csv: Path | None = None,
        aliases: frozenset[str] = frozenset(),
        settled: Callable[[Label], bool] | None = None,
    ) -> ResumeIndex:
        """`settled`: rows of another model that count as done too (`tag --cascade`: the
        offline model's, where they clear the bar)."""
        index = cls(votes=votes)
        if force:
            return index
        index.no_face = no_face_hashes(errors_csv, model)
        if votes > 1 and answers_csv is not None:
            index.paid = read_answers(answers_csv, model)
        for label in table.labels.values():
            if not label.done_for(model, aliases):
                if settled is not None and settled(label):
                    index._done(label)
                continue
            if index.complete(label):
                index._done(label)
            elif label.sha256 and label.sha256 not in index.paid:
                # An earlier run with fewer votes: its answers count towards this one.
                index.paid[label.sha256] = answers_in(label.votes, label.faces) or [
                    (label.emotion, label.faces)
                ]
        return index

    def _done(self, label: Label) -> None:
        self.done_paths.add(label.path)
        if label.sha256:
            self.by_hash.setdefault(label.sha256, label)

    def complete(self, label: Label) -> bool:
        """A row needs no more answers: a person's, or one with every vote asked for."""
        if label.confidence_source == HUMAN or self.votes == 1:
            return True
        return vote_count(label.votes) >= self.votes

    def missing(self, digest: str) -> int:
        """How many more answers these bytes need."""
        return max(0, self.votes - len(self.paid.get(digest, ())))

    def settled(self, digest: str, row: Label | Failure) -> None:
        """These bytes got their outcome in this run: a copy met later needs no request."""
        if isinstance(row, Label):
            self.by_hash[digest] = row
        elif row.reason == NO_FACE:
            self.no_face.add(digest)

    def paid_for(self, digest: str, answer: Answer) -> None:
        """With --votes every paid answer is kept (for a copy, a top-up); one answer an
        image needs no bookkeeping."""
        if self.votes > 1:
            self.paid.setdefault(digest, []).append((answer.emotion, answer.faces))

    def answers(self, digest: str) -> list[tuple[str, str]]:
        """(emotion, faces) of every answer paid for these bytes, in order."""
        return list(self.paid.get(digest, ()))

    def claim(self, digest: str, path: str) -> str | None:
        """Mark these bytes as sent by `path`; return the earlier path if already sent."""
        first = self.claimed.setdefault(digest, path)
        return None if first == path else first
