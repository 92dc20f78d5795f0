from __future__ import annotations

import os
from pathlib import Path

import pytest

from emotag.files.discovery import LINK_OUTSIDE, iter_images
from helpers import posix_only


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_discovery_finds_images_recursively_in_sorted_order(tmp_path: Path) -> None:
    names = ["b.PNG", "a.jpg", "sub/c.jpeg", "sub/deep/d.webp", "e.BMP", "f.gif", "g.tif", "h.TIFF"]
    for name in names:
        touch(tmp_path / name)
    touch(tmp_path / "notes.txt")
    touch(tmp_path / "labels.csv")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_images(tmp_path)]
    assert found == [
        "a.jpg",
        "b.PNG",
        "e.BMP",
        "f.gif",
        "g.tif",
        "h.TIFF",
        "sub/c.jpeg",
        "sub/deep/d.webp",
    ]


def test_discovery_skips_hidden_files_and_folders(tmp_path: Path) -> None:
    touch(tmp_path / ".x.png")
    touch(tmp_path / ".thumbnails" / "a.png")
    touch(tmp_path / "ok.png")
    assert [p.name for p in iter_images(tmp_path)] == ["ok.png"]


@posix_only
def test_discovery_does_not_follow_folder_symlinks_by_default(tmp_path: Path) -> None:
    touch(tmp_path / "real" / "a.png")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert [p.parent.name for p in iter_images(tmp_path)] == ["real"]
    followed = [p.name for p in iter_images(tmp_path, follow_symlinks=True)]
    # The same folder is entered once even when reachable twice ("link" sorts first).
    assert followed == ["a.png"]


@posix_only
def test_discovery_survives_symlink_loops(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "x.png")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)
    (tmp_path / "self.png").symlink_to(tmp_path / "self.png")  # a file link to itself
    (tmp_path / "0.png").symlink_to(tmp_path / "0.png")  # ... that cannot stop the walk
    for follow in (True, False):
        found = list(iter_images(tmp_path, follow_symlinks=follow))
        assert [p.name for p in found] == ["x.png"]


def test_discovery_returns_absolute_paths(tmp_path: Path, monkeypatch) -> None:
    touch(tmp_path / "d" / "a.png")
    monkeypatch.chdir(tmp_path)
    assert list(iter_images(Path("d"))) == [tmp_path / "d" / "a.png"]


def test_discovery_reports_unreadable_folders(tmp_path: Path, monkeypatch) -> None:
    # Simulated at scandir: chmod 000 does not stop root, and CI runs as root.
    touch(tmp_path / "locked" / "a.png")
    touch(tmp_path / "ok.png")
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    skipped: list[tuple[Path, str]] = []
    found = list(iter_images(tmp_path, on_skip=lambda p, r: skipped.append((p, r))))
    assert [p.name for p in found] == ["ok.png"]
    assert skipped == [(tmp_path / "locked", "folder not readable: Permission denied")]


def test_discovery_streams_a_huge_tree(tmp_path: Path, monkeypatch) -> None:
    for f in range(200):
        folder = tmp_path / f"f{f:03d}"
        folder.mkdir()
        for i in range(100):
            (folder / f"{i:03d}.png").touch()
    listed: list[str] = []
    real_scandir = os.scandir

    def counting_scandir(path):  # type: ignore[no-untyped-def]
        listed.append(os.path.basename(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    walk = iter_images(tmp_path)
    first = next(walk)
    # The first path comes after listing the root and one folder, not the whole tree.
    assert (first.parent.name, first.name) == ("f000", "000.png")
    assert listed == [tmp_path.name, "f000"]
    rest = list(walk)
    assert len(rest) == 19_999 and len(listed) == 201
    assert rest == sorted(rest) and rest[-1] == tmp_path / "f199" / "099.png"


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path]:
    """A tagged folder holding a real image, a link to it, a link to an image outside,
    and a link to a folder outside."""
    root, outside = tmp_path / "tagged", tmp_path / "outside"
    touch(root / "b_real.png")
    touch(outside / "secret.png")
    touch(outside / "album" / "c.png")
    (root / "a_out.png").symlink_to(outside / "secret.png")
    (root / "c_same.png").symlink_to(root / "b_real.png")
    (root / "d_album").symlink_to(outside / "album")
    return root, outside


@posix_only
def test_a_link_to_an_image_outside_is_refused_and_said_unless_asked(
    linked: tuple[Path, Path],
) -> None:
    """Its bytes would be uploaded and exported as the folder's own; a link to an image
    inside the folder is just another path to it."""
    root, _ = linked
    skipped: list[tuple[str, str]] = []
    found = iter_images(root, on_skip=lambda path, reason: skipped.append((path.name, reason)))
    assert [p.name for p in found] == ["b_real.png", "c_same.png"]
    assert skipped == [("a_out.png", LINK_OUTSIDE)]
    skipped.clear()
    asked = iter_images(root, follow_symlinks=True, on_skip=lambda p, r: skipped.append((p, r)))
    names = [p.relative_to(root).as_posix() for p in asked]
    assert names == ["a_out.png", "b_real.png", "c_same.png", "d_album/c.png"]
    assert skipped == []


@posix_only
def test_a_folder_reached_through_a_link_keeps_the_links_inside_it(
    linked: tuple[Path, Path], tmp_path: Path
) -> None:
    """ "Inside" is where the folder really is, so a link to one of its own images is kept
    when the folder is named through a link of its own."""
    root, _ = linked
    (tmp_path / "shortcut").symlink_to(root)
    skipped: list[Path] = []
    found = iter_images(tmp_path / "shortcut", on_skip=lambda path, reason: skipped.append(path))
    assert [p.name for p in found] == ["b_real.png", "c_same.png"]
    assert [p.name for p in skipped] == ["a_out.png"]


def test_an_unreadable_folder_given_is_said_too(tmp_path: Path) -> None:
    skipped: list[tuple[Path, str]] = []
    found = list(iter_images(tmp_path / "gone", on_skip=lambda p, r: skipped.append((p, r))))
    assert found == []
    assert skipped == [(tmp_path / "gone", "folder not readable: No such file or directory")]


def test_only_image_extensions_count_in_any_case(tmp_path: Path) -> None:
    for name in ("a.HEIC", "b.avif", "c.Jpe", "d.png.txt", "e", "f.svg", "png"):
        touch(tmp_path / name)
    assert [p.name for p in iter_images(tmp_path)] == ["a.HEIC", "b.avif", "c.Jpe"]
