"""What is already done, the one rule live, batch and dry-run runs share.

An image needs no request when its path is labelled by this model (or corrected by a
person), when the same bytes are labelled under another path, when this model already
said those bytes show no face, or when the same bytes are already being sent in this run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emotag.ledger import Label, LabelTable, no_face_hashes


@dataclass
class ResumeIndex:
    done_paths: set[str] = field(default_factory=set)
    by_hash: dict[str, Label] = field(default_factory=dict)
    no_face: set[str] = field(default_factory=set)
    claimed: dict[str, str] = field(default_factory=dict)  # digest -> first path this run

    @classmethod
    def load(cls, table: LabelTable, errors_csv: Path, model: str, *, force: bool) -> ResumeIndex:
        index = cls()
        if force:
            return index
        index.no_face = no_face_hashes(errors_csv, model)
        for label in table.labels.values():
            if label.done_for(model):  # only --force labels a human correction again
                index.done_paths.add(label.path)
                if label.sha256:
                    index.by_hash.setdefault(label.sha256, label)
        return index

    def claim(self, digest: str, path: str) -> str | None:
        """Mark these bytes as sent by `path`; return the earlier path if already sent."""
        first = self.claimed.setdefault(digest, path)
        return None if first == path else first
