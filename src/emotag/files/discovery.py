"""Safe, streaming, recursive discovery of image files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from os.path import realpath
from pathlib import Path
from typing import Final

from emotag.files.roots import under

IMAGE_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
    | {".heic", ".heif", ".avif"}  # phone photos; HEIC/HEIF read with emotag[heif]
)


OnSkip = Callable[[Path, str], None]
LINK_OUTSIDE: Final = "a link to a file outside the folder; refused (--follow-symlinks)"


def iter_images(
    root: Path, *, follow_symlinks: bool = False, on_skip: OnSkip | None = None
) -> Iterator[Path]:
    """Yield image files under root, depth first, each folder in sorted order.

    Hidden files and folders are skipped. Folder symlinks are not entered unless asked,
    and a folder already visited (by device and inode) is never entered twice, so a
    symlink loop cannot hang the walk. Each folder is listed once, so the first path
    comes out after one `scandir`, not after walking the whole tree. Folders that
    cannot be listed are passed to `on_skip` with a reason.
    """
    root = Path(os.path.abspath(root))
    seen: set[tuple[int, int]] = set()
    inside = os.path.realpath(root)
    yield from _walk(root, follow_symlinks, seen, on_skip or _ignore, inside)


def _ignore(path: Path, reason: str) -> None:
    return None


def _walk(
    root: Path, follow: bool, seen: set[tuple[int, int]], on_skip: OnSkip, inside: str
) -> Iterator[Path]:
    """Depth first with a stack of listings, not recursion: a folder 1,000 deep is no
    RecursionError."""
    stack = [iter(_listing(root, seen, on_skip))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        try:
            if entry.is_dir(follow_symlinks=follow):
                stack.append(iter(_listing(Path(entry.path), seen, on_skip)))
            elif entry.is_file(follow_symlinks=True) and _is_image(entry.name):
                if entry.is_symlink() and not follow and not under(realpath(entry.path), [inside]):
                    # A link to a file elsewhere: its bytes would be uploaded and exported.
                    on_skip(Path(entry.path), LINK_OUTSIDE)
                    continue
                yield Path(entry.path)
        except OSError:
            continue


def _is_image(name: str) -> bool:
    """By extension, in any case; hidden names never get here (`_listing` leaves them out)."""
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _listing(folder: Path, seen: set[tuple[int, int]], on_skip: OnSkip) -> list[os.DirEntry[str]]:
    """A folder's visible entries, sorted; none for a folder seen before (a loop) or one
    that cannot be listed (said to `on_skip`)."""
    try:
        info = folder.stat()
        key = (info.st_dev, info.st_ino)
        if key in seen:
            return []
        seen.add(key)
        with os.scandir(folder) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as exc:
        on_skip(folder, f"folder not readable: {exc.strerror or exc}")
        return []
