"""A CSV, an errors CSV and a journal are untrusted: only regular image files under the
folders `tag` labelled for the CSV (or a --root) are renamed, exported, retried, restored
or uploaded."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.files.csvfiles import ERROR_COLUMNS
from emotag.files.roots import Boundary, boundary, inside, recorded, roots_path, under
from fakes.gemini_api import FakeGemini
from helpers import csv_line, make_image, posix_only, read_csv
from winrules import windows_rules

__all__ = ["windows_rules"]  # the fixture, imported for pytest to find

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def tagged(gemini: FakeGemini, tmp_path: Path) -> tuple[Path, Path]:
    """A tagged folder, and a file outside it that a hostile row names."""
    root = tmp_path / "faces"
    for i in range(3):
        make_image(root / f"m_y_a_{i}.png", "happy", size=(30 + i, 30))
    outside = make_image(tmp_path / "elsewhere" / "secret.png", "sad")
    assert invoke("tag", str(root)).exit_code == 0
    assert recorded(LABELS) == [str(root)]
    with open(LABELS, "a", encoding="utf-8", newline="") as handle:
        handle.write(csv_line("secret.png", str(outside), "sad"))
    return root, outside


@pytest.mark.parametrize("rules", ["posix", "windows"])
def test_rename_acts_only_inside_the_tagged_folder(
    tagged: tuple[Path, Path], rules: str, request: pytest.FixtureRequest
) -> None:
    if rules == "windows":
        request.getfixturevalue("windows_rules")
    root, outside = tagged
    result = invoke("rename", "--from-csv", str(LABELS), "--yes")
    assert result.exit_code == 0, result.output
    assert f"{outside}: outside the tagged folder(s); refused" in " ".join(result.stderr.split())
    assert outside.exists()  # untouched
    assert sorted(p.name for p in root.iterdir()) == [f"m_y_a_{i}_happy.png" for i in range(3)]
    assert {row["path"] for row in read_csv(LABELS)} >= {str(outside)}  # the row is kept


def test_export_copies_and_links_nothing_from_outside(tagged: tuple[Path, Path]) -> None:
    _, outside = tagged
    for extra in ([], ["--link"]):
        target = f"out{len(extra)}"
        result = invoke("export", "-o", target, "-f", "folders", *extra)
        assert result.exit_code == 1
        assert f"{outside}: outside the tagged folder(s); refused" in result.stderr
        exported = [p.name for p in Path(target).rglob("*.png")]
        assert len(exported) == 3 and "secret.png" not in exported


@posix_only
def test_a_link_inside_the_folder_to_a_file_outside_is_not_uploaded_or_exported(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    root = tmp_path / "faces"
    make_image(root / "a.png", "happy")
    outside = make_image(tmp_path / "private" / "b.png", "sad")
    (root / "b.png").symlink_to(outside)
    result = invoke("tag", str(root))
    assert result.exit_code == 1
    assert gemini.count == 1  # a.png only
    reasons = {
        Path(r["path"]).name: r["reason"]
        for r in read_csv(LABELS.with_name("llm_labels.errors.csv"))
    }
    assert reasons == {"b.png": "a link to a file outside the folder; refused (--follow-symlinks)"}
    assert invoke("tag", str(root), "--follow-symlinks").exit_code == 0
    assert gemini.count == 2  # asked for: sent
    exported = invoke("export", "-o", "out", "-f", "folders")
    assert exported.exit_code == 1 and "a link to outside the tagged folder(s)" in exported.stderr
    assert [p.name for p in Path("out").rglob("*.png")] == ["a.png"]


@posix_only
def test_retry_failed_reads_no_device_fifo_or_file_outside(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    root = tmp_path / "faces"
    make_image(root / "a.png", "happy")
    fifo = root / "pipe.png"
    os.mkfifo(fifo)
    errors = LABELS.with_name("llm_labels.errors.csv")
    errors.parent.mkdir(parents=True)
    with open(errors, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ERROR_COLUMNS)
        for path in ("/dev/zero", str(fifo), str(tmp_path / "elsewhere.png"), str(root / "a.png")):
            writer.writerow([path, "transient", "", "", ""])
    result = invoke("tag", str(root), "--retry-failed")
    assert result.exit_code == 1, result.output
    assert gemini.count == 1 and [Path(r["path"]).name for r in read_csv(LABELS)] == ["a.png"]
    reasons = {r["path"]: r["reason"] for r in read_csv(errors)}
    assert reasons["/dev/zero"] == "outside the tagged folder(s); refused"
    assert reasons[str(fifo)] == "not a regular file; refused"


def test_a_crafted_journal_cannot_move_a_file_outside(tagged: tuple[Path, Path]) -> None:
    _, outside = tagged
    with open("journal.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["old", "new", "size", "mtime_ns"])
        stat = outside.stat()
        writer.writerow(
            [str(outside.with_name("moved.png")), str(outside), stat.st_size, stat.st_mtime_ns]
        )
    result = invoke("rename", "--undo", "journal.csv")
    assert result.exit_code == 1
    assert "outside the tagged folder(s); refused" in result.stderr
    assert outside.exists() and not outside.with_name("moved.png").exists()


def test_a_csv_from_before_roots_were_kept_asks_for_root_once(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    good = make_image(root / "a.png", "happy")
    LABELS.parent.mkdir(parents=True)
    with open(LABELS, "w", encoding="utf-8", newline="") as handle:
        handle.write("filename,path,emotion,confidence\r\n")
        handle.write(f"a.png,{good},sad,\r\n")
    asked = invoke("rename", "--dry-run")
    assert asked.exit_code == 2
    (line,) = asked.stderr.strip().splitlines()
    assert "name it once with --root FOLDER" in line
    assert invoke("rename", "--dry-run", "--root", str(root)).exit_code == 0
    assert recorded(LABELS) == [str(root)] and roots_path(LABELS).exists()
    assert invoke("rename", "--dry-run").exit_code == 0  # asked once


def test_relative_paths_resolve_against_the_csvs_folder(tmp_path: Path) -> None:
    csv_folder = tmp_path / "data"
    make_image(csv_folder / "faces" / "a.png", "happy")
    labels = csv_folder / "labels.csv"
    labels.write_text("filename,path,emotion,confidence\r\na.png,faces/a.png,sad,\r\n")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    os.chdir(elsewhere)  # not the CSV's folder
    result = invoke("rename", str(labels), "--yes", "--root", str(csv_folder / "faces"))
    assert result.exit_code == 0, result.output
    assert (csv_folder / "faces" / "a_sad.png").exists()
    assert [row["path"] for row in read_csv(labels)] == [str(csv_folder / "faces" / "a_sad.png")]


def test_a_relative_row_is_read_from_the_csvs_folder_not_the_working_one(
    tmp_path: Path,
) -> None:
    """The check and the copy look at the same file: a relative path that the boundary
    resolved inside the tagged folder is never read from the working folder instead."""
    data = tmp_path / "data"
    inside = make_image(data / "faces" / "a.png", "happy", size=(40, 30))
    labels = data / "labels.csv"
    labels.write_text("filename,path,emotion,confidence\r\na.png,faces/a.png,sad,\r\n")
    cwd = tmp_path / "cwd"
    make_image(cwd / "faces" / "a.png", "sad", size=(70, 50))  # outside: must not be read
    os.chdir(cwd)
    result = invoke("export", str(labels), "-f", "folders", "-o", "out", "--root", str(data))
    assert result.exit_code == 0, result.output
    (copied,) = Path("out").rglob("*.png")
    assert copied.read_bytes() == inside.read_bytes()


# The rules themselves, one at a time, without a command around them.


def test_under_means_the_root_itself_or_below_it_never_a_sibling_prefix() -> None:
    sep = os.sep
    root = f"{sep}data{sep}faces"
    assert under(root, [root]) and under(f"{root}{sep}a{sep}b.png", [root])
    assert not under(f"{root}-old{sep}b.png", [root])  # shares the prefix, not the folder
    assert not under(f"{sep}data", [root])
    assert under(f"{sep}x.png", [sep])  # the root of the file system holds everything
    assert under(f"{root}{sep}a.png", [f"{root}{sep}"])
    assert under(f"{root}{sep}a.png", [f"{sep}other", root]) and not under(root, [])


@posix_only
@pytest.mark.parametrize("make", ["boundary", "inside"])
def test_a_link_out_is_refused_unless_asked_and_a_folder_never(tmp_path: Path, make: str) -> None:
    root = tmp_path / "faces"
    kept = make_image(root / "a.png", "happy")
    outside = make_image(tmp_path / "elsewhere" / "secret.png", "sad")
    (root / "out.png").symlink_to(outside)
    (root / "same.png").symlink_to(kept)
    (root / "folder.png").mkdir()
    labels = tmp_path / "labels.csv"

    def fence(**asked: bool) -> Boundary:
        if make == "inside":
            return inside(root, **asked)
        return boundary(labels, [root], **asked)

    default, asked = fence(), fence(follow_symlinks=True)
    assert default.refusal(str(root / "out.png")) == (
        "a link to outside the tagged folder(s); refused (--follow-symlinks)"
    )
    assert asked.refusal(str(root / "out.png")) is None
    for either in (default, asked):
        assert either.refusal(str(kept)) is None and either.refusal(str(root / "same.png")) is None
        assert either.refusal(str(outside)) == "outside the tagged folder(s); refused"
        assert either.refusal(str(root / "folder.png")) == "not a regular file; refused"
        assert either.refusal(str(root / "gone.png")) is None  # the command says it is missing


def test_a_root_is_recorded_only_for_an_existing_csv_that_has_none(tmp_path: Path) -> None:
    """--root names the folder of an old CSV once; for a CSV with roots it is this run's
    alone, so one command cannot widen what every later one may touch."""
    labels, first, other = tmp_path / "labels.csv", tmp_path / "faces", tmp_path / "other"
    assert boundary(labels, [first]).roots == (str(first),)
    assert not roots_path(labels).exists()  # no CSV yet: nothing to record for
    labels.write_text("filename,path,emotion,confidence\r\n")
    boundary(labels, [first])
    assert recorded(labels) == [str(first)]
    assert boundary(labels, [other]).roots == (str(other),)
    assert recorded(labels) == [str(first)]
    assert boundary(labels).roots == (str(first),)


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[1, 2]", '{"folders": ["/x"]}', '{"roots": "/x"}', '{"roots": ["/x", 3]}'],
)
def test_a_damaged_roots_file_widens_nothing(tmp_path: Path, content: str) -> None:
    labels = tmp_path / "labels.csv"
    roots_path(labels).write_text(content, encoding="utf-8")
    assert recorded(labels) == (["/x"] if '"roots": [' in content else [])
