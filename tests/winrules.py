"""Windows' file rules, applied on Linux so CI sees what a Windows user would.

Windows opens files without FILE_SHARE_DELETE (as Python's open() does there), so a file
that this process holds open cannot be replaced, renamed or deleted; `os.rename` onto an
existing name fails; and the POSIX-only modules `fcntl` and `resource` do not exist. The
`windows_rules` fixture installs all of it for one test; `rules()` names what was refused.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

POSIX_ONLY = ("fcntl", "resource")
FD_DIR = "/proc/self/fd"  # Linux: one symlink per open descriptor, to the file it holds


def open_files() -> set[str]:
    """Real paths of the regular files this process holds open right now."""
    held: set[str] = set()
    for fd in os.listdir(FD_DIR):
        try:
            target = os.readlink(os.path.join(FD_DIR, fd))
        except OSError:
            continue  # closed between listing and reading
        if target.startswith("/"):
            held.add(target)
    return held


@dataclass
class Refusals:
    """Every call the rules refused, as (operation, path), so a test can show them."""

    seen: list[tuple[str, str]] = field(default_factory=list)


def _real(path: Any, dir_fd: int | None) -> str:
    path = os.fsdecode(os.fspath(path))
    if dir_fd is not None and not os.path.isabs(path):
        path = os.path.join(os.readlink(os.path.join(FD_DIR, str(dir_fd))), path)
    return os.path.realpath(path)


def _refuse_if_open(refusals: Refusals, operation: str, *paths: tuple[Any, int | None]) -> None:
    held = open_files()
    for path, dir_fd in paths:
        real = _real(path, dir_fd)
        if real in held:
            refusals.seen.append((operation, real))
            # What Windows reports: ERROR_SHARING_VIOLATION surfaces as PermissionError.
            raise PermissionError(
                errno.EACCES,
                "The process cannot access the file because it is being used by another "
                "process (Windows rules)",
                os.fspath(path),
            )


@contextmanager
def applied() -> Iterator[Refusals]:
    """Patch the os functions that pathlib, shutil and tempfile call, for the duration."""
    refusals = Refusals()
    original: dict[str, Callable[..., Any]] = {
        name: getattr(os, name) for name in ("replace", "rename", "unlink", "remove")
    }

    def replace(
        src: Any, dst: Any, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None
    ) -> None:
        _refuse_if_open(refusals, "replace", (src, src_dir_fd), (dst, dst_dir_fd))
        original["replace"](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    def rename(
        src: Any, dst: Any, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None
    ) -> None:
        _refuse_if_open(refusals, "rename", (src, src_dir_fd), (dst, dst_dir_fd))
        if os.path.lexists(_real(dst, dst_dir_fd)) and _real(src, src_dir_fd) != _real(
            dst, dst_dir_fd
        ):
            refusals.seen.append(("rename onto an existing name", _real(dst, dst_dir_fd)))
            raise FileExistsError(
                errno.EEXIST,
                "Cannot create a file when that file already exists (Windows rules)",
                os.fspath(dst),
            )
        original["rename"](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    def unlink(path: Any, *, dir_fd: int | None = None) -> None:
        _refuse_if_open(refusals, "delete", (path, dir_fd))
        original["unlink"](path, dir_fd=dir_fd)

    # filelock picks its lock at import: on Windows msvcrt's, which Linux cannot lend;
    # imported first, its POSIX lock stands in (no emotag module imports fcntl itself,
    # tests/test_portability.py checks that in a fresh process).
    import filelock  # noqa: F401

    patched = {"replace": replace, "rename": rename, "unlink": unlink, "remove": unlink}
    hidden = {name: sys.modules.get(name) for name in POSIX_ONLY}
    try:
        for name, function in patched.items():
            setattr(os, name, function)
        for name in POSIX_ONLY:
            sys.modules[name] = None  # type: ignore[assignment]  # `import fcntl` fails
        yield refusals
    finally:
        for name, function in original.items():
            setattr(os, name, function)
        for name, module in hidden.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@pytest.fixture
def windows_rules() -> Iterator[Refusals]:
    if not os.path.isdir(FD_DIR):
        pytest.skip("the Windows-rules layer reads open files from Linux's /proc/self/fd")
    with applied() as refusals:
        yield refusals
