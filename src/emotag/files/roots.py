"""The folders a labels CSV may act on: the ones `tag` labelled for it (recorded beside it,
`<stem>.roots.json`), or a `--root` the user names. A CSV row, an errors CSV, a journal
are untrusted: only regular image files under such a folder are renamed, exported,
retried or restored, whatever path a row names.

Never infer a root from the rows themselves: a hostile row would widen it.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotag.errors import InputError
from emotag.files.atomic import atomic_text
from emotag.files.kept import read_kept


def roots_path(labels_csv: Path) -> Path:
    return labels_csv.with_name(f"{labels_csv.stem}.roots.json")


def recorded(labels_csv: Path) -> list[str]:
    """The folders `tag` labelled for this CSV; none for a CSV from before they were kept,
    or where the record is damaged (a command then asks for `--root`)."""
    try:
        return read_kept(roots_path(labels_csv), "the roots record", _roots)
    except InputError:
        return []


def _roots(found: dict[str, Any]) -> list[str]:
    roots = found.get("roots")
    return [r for r in roots if isinstance(r, str)] if isinstance(roots, list) else []


def record(labels_csv: Path, folder: Path) -> None:
    """Add the folder `tag` labels to the CSV's roots (under the run lock)."""
    roots = recorded(labels_csv)
    root = os.path.abspath(folder)
    if root not in roots:
        with atomic_text(roots_path(labels_csv)) as handle:
            json.dump({"roots": [*roots, root]}, handle, indent=1)


@dataclass(frozen=True, slots=True)
class Boundary:
    """Which paths a command may act on, and relative paths' base (the CSV's folder)."""

    roots: tuple[str, ...]
    base: str
    follow_symlinks: bool = False
    # The roots with their links resolved, once: `refusal` is asked for every row.
    real_roots: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "real_roots", tuple(os.path.realpath(root) for root in self.roots))

    def resolve(self, path: str) -> str:
        """A row's path as a command uses it: relative ones from the CSV's folder."""
        return from_folder(self.base, path)

    def refusal(self, path: str) -> str | None:
        """Why `path` may not be acted on (None: it may): outside every root, a symlink
        that leaves them (unless --follow-symlinks), or not a regular file."""
        if "\0" in path:  # no file system allows one: every call on it would raise
            return "not a path (a NUL byte); refused"
        full = self.resolve(path)
        if not under(os.path.abspath(full), self.roots):
            return "outside the tagged folder(s); refused"
        if not self.follow_symlinks and not under(os.path.realpath(full), self.real_roots):
            return "a link to outside the tagged folder(s); refused (--follow-symlinks)"
        try:
            mode = os.stat(full).st_mode
        except OSError:
            return None  # missing: the command says so in its own words
        if not stat.S_ISREG(mode):
            return "not a regular file; refused"
        return None


def boundary(
    labels_csv: Path, given: Sequence[Path] = (), *, follow_symlinks: bool = False
) -> Boundary:
    """The roots named with `--root`, else those recorded for the CSV; one line asking for
    `--root` where there are neither. A CSV with none recorded keeps the ones given."""
    roots = recorded(labels_csv)
    if given and not roots and labels_csv.is_file():
        for root in given:  # asked once: a CSV from before the roots were kept
            record(labels_csv, root)
    roots = [os.path.abspath(root) for root in given] or roots
    if not roots:
        raise InputError(
            f"{labels_csv} has no record of the folder(s) it labels (a CSV from before "
            "emotag kept one); name it once with --root FOLDER."
        )
    return Boundary(tuple(roots), csv_folder(labels_csv), follow_symlinks)


def csv_folder(labels_csv: Path) -> str:
    """The folder a labels CSV's relative paths are read from: its own."""
    return os.path.dirname(os.path.abspath(labels_csv))


def from_folder(base: str, path: str) -> str:
    """`path` as read from the folder `base` (an absolute one as it is)."""
    return os.path.normpath(os.path.join(base, path))


def inside(root: Path, follow_symlinks: bool = False) -> Boundary:
    """The boundary of one folder being tagged (`--retry-failed`, discovery)."""
    return Boundary((os.path.abspath(root),), os.path.abspath(root), follow_symlinks)


def under(path: str, roots: Iterable[str]) -> bool:
    """`path` is one of `roots` or inside one (compared as written: resolve first)."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)
