"""Look an image's emotion up in a labels CSV: the seed's "option 1" for extract_landmarks.py.

from emotag import LabelStore
labels = LabelStore.from_csv("dataset/llm_labels.csv", fallback="filename")
emotion = labels.emotion_for(image_path)      # instead of parsing the file name
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from emotag.emotions import emotion_from_filename
from emotag.files.csvfiles import bulk_allocation, read_labels
from emotag.records import Label

How = Literal["path", "relative", "filename", "fallback"]


class MissingLabel(KeyError):
    """No label for this image (raised when `missing="raise"`)."""


class AmbiguousLabel(MissingLabel):
    """Only the file name matched, and several labelled files share it: never guessed."""


@dataclass(frozen=True, slots=True)
class Match:
    emotion: str
    how: How
    label: Label | None  # None for a file-name fallback


class LabelStore:
    """Labels indexed by absolute path, by path relative to `root`, and by unique file name.

    Every lookup is a few dict probes, so it is O(1) whatever the size of the CSV.
    """

    def __init__(
        self,
        labels: list[Label],
        *,
        root: str | os.PathLike[str] | None = None,
        fallback: Literal["filename"] | None = None,
        missing: Literal["none", "raise"] = "none",
        min_calibrated: float | None = None,
    ) -> None:
        """`min_calibrated`: keep only labels an audit gives at least this probability of
        being right (`emotag audit score`); the others are missing, as if unlabelled."""
        self.root = _norm(os.path.abspath(root)) if root is not None else None
        self.fallback = fallback
        self.missing = missing
        self.problems: list[str] = []
        every = {_norm(label.path): label for label in labels}
        # Names are counted over every row, kept or not: of two files named 0001.png, one
        # left out by `min_calibrated`, neither is given the other's label by name.
        path_of: dict[str, str] = {}
        self._ambiguous: set[str] = set()
        for key in every:
            name = key.rpartition("/")[2]
            if name in path_of:
                self._ambiguous.add(name)
            path_of[name] = key
        self._by_path = every
        if min_calibrated is not None:
            self._by_path = {
                key: label
                for key, label in every.items()
                if (label.calibrated or 0.0) >= min_calibrated
            }
        self.below_calibrated = len(every) - len(self._by_path)
        self.calibrated = any(label.calibrated is not None for label in self._by_path.values())
        self._by_name = {
            name: self._by_path[key]
            for name, key in path_of.items()
            if name not in self._ambiguous and key in self._by_path
        }
        self._by_relative: dict[str, Label] = {}
        if self.root is not None:
            prefix = self.root.rstrip("/") + "/"
            self._by_relative = {
                p[len(prefix) :]: label
                for p, label in self._by_path.items()
                if p.startswith(prefix)
            }

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        root: str | os.PathLike[str] | None = None,
        fallback: Literal["filename"] | None = None,
        missing: Literal["none", "raise"] = "none",
        min_calibrated: float | None = None,
    ) -> LabelStore:
        """Load a labels CSV; bad rows are skipped and listed in `problems`."""
        table = read_labels(Path(path))
        with bulk_allocation():
            store = cls(
                list(table.labels.values()),
                root=root,
                fallback=fallback,
                missing=missing,
                min_calibrated=min_calibrated,
            )
        store.problems = table.problems
        return store

    def __len__(self) -> int:
        return len(self._by_path)

    def emotion_for(self, image: str | os.PathLike[str]) -> str | None:
        """The emotion for an image path (absolute or relative, any separator), or None."""
        found = self.match(image)
        return found.emotion if found else None

    def match(self, image: str | os.PathLike[str]) -> Match | None:
        """Like emotion_for, but says how the label was found; honours `missing`."""
        query = _norm(os.fspath(image))
        found = self._find(query)
        if found is None and self.fallback == "filename":
            emotion = emotion_from_filename(posixpath.basename(query))
            found = Match(emotion, "fallback", None) if emotion else None
        if found is None and self.missing == "raise":
            name = posixpath.basename(query)
            if name in self._ambiguous:
                raise AmbiguousLabel(f"{image}: several labelled files are named {name}")
            raise MissingLabel(f"{image}: no label")
        return found

    def is_ambiguous(self, image: str | os.PathLike[str]) -> bool:
        """True when only a file-name match was possible and several files share that name."""
        query = _norm(os.fspath(image))
        return self._find(query) is None and posixpath.basename(query) in self._ambiguous

    def labels(self) -> list[Label]:
        return list(self._by_path.values())

    def _find(self, query: str) -> Match | None:
        if posixpath.isabs(query):
            if label := self._by_path.get(query):
                return Match(label.emotion, "path", label)
        else:
            if label := self._by_relative.get(query):
                return Match(label.emotion, "relative", label)
            if label := self._by_path.get(_norm(os.path.abspath(query))):
                return Match(label.emotion, "path", label)
        if label := self._by_name.get(posixpath.basename(query)):
            return Match(label.emotion, "filename", label)
        return None


def _norm(path: str) -> str:
    if "\\" in path or "/." in path or "//" in path or path.startswith("."):
        return posixpath.normpath(path.replace("\\", "/"))
    return path.rstrip("/") or "/"  # already normal, as every path emotag writes is
