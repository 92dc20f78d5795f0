"""Rename labelled files to `sex_age_ethnicity_emotion.ext`: plan first, journal every
step before taking it, never overwrite, and undo from the journal."""

from __future__ import annotations

import csv
import errno
import os
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from emotag.choices import OnConflict
from emotag.emotions import normalise
from emotag.errors import InputError, OutputError
from emotag.files.atomic import ENCODING, ERRORS
from emotag.files.csvfiles import read_for_rewrite, read_labels, read_rows
from emotag.files.lock import run_lock
from emotag.files.rewrites import (
    rename_marker,
    rewriting,
    settle_interrupted,
    update_labels_csv,
)
from emotag.files.roots import Boundary, boundary
from emotag.records import Label, LabelTable

Status = Literal["rename", "unchanged", "conflict", "missing"]


JOURNAL_COLUMNS = ("old", "new", "size", "mtime_ns")
SEX_AGE_ETHNICITY = ("sex", "age", "ethnicity")


@dataclass(frozen=True, slots=True)
class Step:
    old: Path
    new: Path
    status: Status
    note: str = ""


@dataclass
class RenamePlan:
    steps: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(step.status for step in self.steps)

    @property
    def renames(self) -> list[Step]:
        return [step for step in self.steps if step.status == "rename"]


@dataclass
class RenameResult:
    done: list[Step] = field(default_factory=list)
    failed: list[tuple[Step, str]] = field(default_factory=list)
    journal: Path | None = None


@dataclass
class UndoResult:
    moved: dict[str, str] = field(default_factory=dict)  # renamed path -> restored path
    not_applied: int = 0
    refused: list[str] = field(default_factory=list)


def target_name(filename: str, emotion: str, template: str | None = None) -> str:
    """The new file name for `filename` labelled `emotion` (extension and its case kept).

    Default rules: a trailing emotion token (one of the seven or an alias such as
    `surprised`) is replaced; otherwise `_emotion` is appended to the stem.
    """
    path = Path(filename)
    stem, ext = path.stem, path.suffix
    tokens = stem.split("_")
    base = tokens[:-1] if normalise(tokens[-1]) is not None else tokens
    if template is None:
        return "_".join([*base, emotion]) + ext
    fields: dict[str, str] = {"stem": stem, "emotion": emotion, "ext": ext}
    fields.update({f"t{i}": token for i, token in enumerate(base)})
    if len(base) == 3:
        fields.update(zip(SEX_AGE_ETHNICITY, base, strict=True))
    return _fill(template, fields, filename)


def check_template(template: str) -> None:
    """Reject a template with unknown fields or a path separator before planning."""
    allowed = {"stem", "emotion", "ext", *SEX_AGE_ETHNICITY}
    for _, name, _, _ in string.Formatter().parse(template):
        if (
            name is not None
            and name not in allowed
            and not (name[:1] == "t" and name[1:].isdigit())
        ):
            raise InputError(
                f"Unknown field {{{name}}} in --template; use {{stem}}, {{emotion}}, {{ext}}, "
                "{sex}, {age}, {ethnicity} or {t0}, {t1}, …"
            )
    if "/" in template or "\\" in template:
        raise InputError("--template makes a file name, not a path: it may not contain / or \\.")


def plan(
    labels: Iterable[Label],
    *,
    template: str | None = None,
    on_conflict: OnConflict = OnConflict.SUFFIX,
    within: Boundary | None = None,
) -> RenamePlan:
    """Decide every rename before touching anything; conflicts are resolved per
    `on_conflict`; rows naming a file outside `within` are refused and listed."""
    result = RenamePlan()
    claimed: set[str] = set()  # casefolded targets, for case-insensitive file systems
    listings: dict[Path, set[str]] = {}
    for label in labels:
        if within is not None and (refusal := within.refusal(label.path)):
            result.problems.append(f"{label.path}: {refusal}")
            continue
        old = Path(within.resolve(label.path) if within is not None else label.path)
        if not old.is_file():
            result.steps.append(Step(old, old, "missing", "not found on disk"))
            continue
        try:
            name = target_name(old.name, label.emotion, template)
        except InputError as exc:
            result.problems.append(str(exc))
            continue
        new = old.with_name(name)
        if new == old:
            result.steps.append(Step(old, new, "unchanged"))
            claimed.add(_fold(old))
            continue
        taken = _taken(new, old, claimed, listings)
        if taken and on_conflict is OnConflict.SUFFIX:
            new = _free_name(new, old, claimed, listings)
            result.steps.append(Step(old, new, "rename", "numbered to avoid a clash"))
        elif taken:
            result.steps.append(Step(old, new, "conflict", "target exists or is claimed twice"))
            continue
        else:
            result.steps.append(Step(old, new, "rename"))
        claimed.add(_fold(new))
    return result


def plan_from_csv(
    labels_csv: Path,
    *,
    template: str | None = None,
    on_conflict: OnConflict = OnConflict.SUFFIX,
    roots: Sequence[Path] = (),
    follow_symlinks: bool = False,
    table: LabelTable | None = None,
) -> RenamePlan:
    """The plan for the CSV's rows, only for files under the folders `tag` labelled for it
    (or the `roots` given); `table`: the CSV as already read."""
    if not labels_csv.is_file():
        raise InputError(f"Labels CSV not found: {labels_csv}")
    if template is not None:
        check_template(template)
    within = boundary(labels_csv, roots, follow_symlinks=follow_symlinks)
    if table is None:
        table = read_labels(labels_csv)
    result = plan(table.labels.values(), template=template, on_conflict=on_conflict, within=within)
    result.problems[:0] = table.problems
    return result


def apply(
    plan_: RenamePlan, journal: Path, *, on_conflict: OnConflict = OnConflict.SUFFIX
) -> RenameResult:
    """Rename each planned file, writing its journal line (flushed, synced) first."""
    if on_conflict is OnConflict.FAIL and plan_.counts["conflict"]:
        raise InputError(
            f"{plan_.counts['conflict']} rename(s) would clash with existing files; "
            "nothing was renamed (use --on-conflict suffix or skip)."
        )
    result = RenameResult(journal=journal)
    steps = plan_.renames
    if not steps:
        return result
    try:
        handle = open(journal, "x", encoding=ENCODING, errors=ERRORS, newline="")
    except OSError as exc:
        raise OutputError(f"Cannot create the journal {journal}: {exc.strerror or exc}") from exc
    with handle:
        writer = csv.writer(handle)
        writer.writerow(JOURNAL_COLUMNS)
        for step in steps:
            try:
                info = step.old.stat()
                if step.new.exists():
                    raise FileExistsError(errno.EEXIST, "target appeared after planning")
                writer.writerow([step.old, step.new, info.st_size, info.st_mtime_ns])
                handle.flush()
                os.fsync(handle.fileno())
                move_without_replacing(step.old, step.new)
            except OSError as exc:
                result.failed.append((step, exc.strerror or str(exc)))
                continue
            result.done.append(step)
    return result


def undo(journal: Path, within: Boundary) -> UndoResult:
    """Reverse a journal, last step first; refuse steps whose file has changed since, and
    steps naming a file outside `within`."""
    result = UndoResult()
    for line, row in reversed(read_rows(journal, JOURNAL_COLUMNS, "an emotag rename journal")):
        step = _journalled(row)
        if step is None:
            result.refused.append(f"{journal}:{line}: not a journal row; left alone")
            continue
        old_text, new_text, expected = step
        if refusal := within.refusal(old_text) or within.refusal(new_text):
            result.refused.append(f"{old_text} <- {new_text}: {refusal}")
            continue
        old, new = Path(within.resolve(old_text)), Path(within.resolve(new_text))
        if not new.exists() and old.exists() and _signature(old) == expected:
            result.not_applied += 1  # the crash came between journal line and rename
        elif not new.exists():
            result.refused.append(f"{new}: missing, cannot restore {old.name}")
        elif _signature(new) != expected:
            result.refused.append(f"{new}: changed since it was renamed; left alone")
        elif old.exists():
            result.refused.append(f"{old}: a file of that name exists again; left alone")
        else:
            move_without_replacing(new, old)
            result.moved[str(new)] = str(old)
    return result


def _journalled(row: dict[str, str]) -> tuple[str, str, tuple[int, int]] | None:
    """A journal row's two paths and the file's size and time; None for a row emotag
    did not write."""
    try:
        expected = (int(row["size"]), int(row["mtime_ns"]))
    except (TypeError, ValueError):
        return None
    old, new = row["old"], row["new"]
    return (old, new, expected) if old and new else None


def rename_from_csv(
    labels_csv: Path,
    go_ahead: Callable[[RenamePlan], bool],
    *,
    template: str | None = None,
    on_conflict: OnConflict = OnConflict.SUFFIX,
    journal: Path | None = None,
    update_csv: bool = True,
    roots: Sequence[Path] = (),
    follow_symlinks: bool = False,
) -> tuple[RenamePlan, RenameResult | None]:
    """`emotag rename`: plan, ask `go_ahead` (which shows the plan; False: stop there),
    rename and point the
    CSV at the new names, all under the run lock. While the files move, a marker beside
    the CSV names the journal, so a run killed half-way has its moves reach the CSV on
    the next command (`settle_interrupted`). Returns the plan, and what was done (None
    when nothing was asked to be)."""
    with run_lock(labels_csv):
        settle_interrupted(labels_csv)
        # Read once: a CSV it could not rewrite is refused before any move, and the same
        # rows are planned and then pointed at the new names (nothing else writes them
        # while the lock is held).
        table = read_for_rewrite(labels_csv) if update_csv and labels_csv.is_file() else None
        found = plan_from_csv(
            labels_csv,
            template=template,
            on_conflict=on_conflict,
            roots=roots,
            follow_symlinks=follow_symlinks,
            table=table,
        )
        if not go_ahead(found) or not found.renames:
            return found, None
        path = journal or default_journal(labels_csv)
        marker = rename_marker(labels_csv)
        if table is not None:
            marker.write_text(str(path.absolute()), encoding="utf-8")
        result = apply(found, path, on_conflict=on_conflict)
        if table is not None:
            update_labels_csv(labels_csv, {str(s.old): str(s.new) for s in result.done}, table)
            marker.unlink()
        return found, result


def undo_into_csv(
    journal: Path,
    labels_csv: Path,
    *,
    update_csv: bool = True,
    roots: Sequence[Path] = (),
    follow_symlinks: bool = False,
) -> UndoResult:
    """`emotag rename --undo`: reverse the journal, within the CSV's folders (a journal is
    untrusted too), and point the CSV back, under the run lock."""
    within = boundary(labels_csv, roots, follow_symlinks=follow_symlinks)
    if not update_csv or not labels_csv.is_file():
        return undo(journal, within)
    with rewriting(labels_csv):
        result = undo(journal, within)
        update_labels_csv(labels_csv, result.moved)
        return result


def move_without_replacing(old: Path, new: Path) -> None:
    """Rename, failing with FileExistsError if `new` exists, even one that appeared after
    the check: POSIX rename() replaces silently, so the new name is made as a hard link
    (which refuses an existing name) and the old one removed. Where links are not possible
    (FAT, some network shares) rename() follows a check; Windows' own refuses to replace."""
    if os.name != "nt":
        try:
            os.link(old, new, follow_symlinks=False)
        except FileExistsError:
            if not (new.exists() and os.path.samefile(old, new)):
                raise
            # The same file under another letter case (case-insensitive file system).
        except OSError:
            pass  # no hard links here: the checked rename below
        else:
            os.unlink(old)
            return
    if new.exists() and not os.path.samefile(old, new):
        raise FileExistsError(errno.EEXIST, "target appeared after planning", str(new))
    os.rename(old, new)


def default_journal(labels_csv: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return labels_csv.parent / f"emotag-rename-{stamp}.csv"


def _fill(template: str, fields: dict[str, str], filename: str) -> str:
    try:
        name = template.format_map(fields)
    except KeyError as exc:
        raise InputError(
            f"{filename}: --template uses {{{exc.args[0]}}}, which this file name does not have"
        ) from None
    if not name or name in (".", ".."):
        raise InputError(f"{filename}: --template gives an empty file name")
    return name


def _fold(path: Path) -> str:
    return str(path).casefold()


def _taken(new: Path, old: Path, claimed: set[str], listings: dict[Path, set[str]]) -> bool:
    if _fold(new) in claimed:
        return True
    folder = new.parent
    if folder not in listings:
        listings[folder] = {name.casefold() for name in os.listdir(folder)}
    return new.name.casefold() in listings[folder] and new.name.casefold() != old.name.casefold()


def _free_name(new: Path, old: Path, claimed: set[str], listings: dict[Path, set[str]]) -> Path:
    for number in range(2, 100_000):
        candidate = new.with_name(f"{new.stem}_{number}{new.suffix}")
        if not _taken(candidate, old, claimed, listings):
            return candidate
    raise OutputError(f"No free name for {new}")


def _signature(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns
