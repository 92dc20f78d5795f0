"""Nothing another command does loses a row: every rewrite of the labels CSV holds the run
lock, a rewrite never drops a row it cannot read, a run notices its CSV replaced under it,
and a rename killed half-way reaches the CSV on the next command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from emotag.files.csvfiles import LABEL_COLUMNS, read_labels
from emotag.records import Label
from fakes.gemini_api import FakeGemini
from helpers import csv_line, make_image, read_csv, start_cli
from winrules import windows_rules

__all__ = ["windows_rules"]  # the fixture, imported for pytest to find

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def folder(root: Path, count: int) -> Path:
    for i in range(count):
        make_image(root / f"f{i:04d}.png", EMOTIONS[i % 7], size=(30 + i % 40, 30 + i // 40))
    return root


def test_commands_that_rewrite_the_csv_wait_for_no_run_and_lose_no_paid_label(
    fake: FakeGemini, tmp_path: Path
) -> None:
    """tag runs on 200 images (its requests held); apply-corrections, rename --yes and
    rename --undo are each refused with one line; tag ends with all 200 rows."""
    folder(tmp_path / "in", 200)
    Path("corrections.csv").write_text(f"path,old,new\n{tmp_path}/in/f0000.png,,sad\n")
    fake.hold.clear()
    running = start_cli(fake, tmp_path, "tag", "in")
    try:
        wait_for(lambda: fake.in_flight >= 1 and LABELS.exists())
        for command in (
            ["apply-corrections", "corrections.csv"],
            ["rename", "--from-csv", str(LABELS), "--yes"],
            ["rename", "--undo", "journal.csv"],
        ):
            refused = runner.invoke(app, command)
            assert refused.exit_code == 2, (command, refused.output)
            (line,) = refused.stderr.strip().splitlines()
            assert "Another emotag run is writing" in line
    finally:
        fake.hold.set()
    _, err = running.communicate(timeout=120)
    assert running.returncode == 0, err
    assert len(read_csv(LABELS)) == 200
    assert sorted(p.name for p in (tmp_path / "in").iterdir())[0] == "f0000.png"  # not renamed


def test_a_run_stops_loudly_when_its_csv_is_replaced_under_it(
    fake: FakeGemini, tmp_path: Path
) -> None:
    folder(tmp_path / "in", 40)
    fake.hold.clear()
    running = start_cli(fake, tmp_path, "tag", "in", "-c", "4")
    try:
        wait_for(lambda: fake.in_flight >= 1)
        labels = tmp_path / LABELS
        wait_for(labels.exists)
        other = tmp_path / "other.csv"
        other.write_text(",".join(LABEL_COLUMNS) + "\n", encoding="utf-8")
        os.replace(other, labels)  # another program writes the file anew
    finally:
        fake.hold.set()
    _, err = running.communicate(timeout=120)
    assert running.returncode == 2
    assert "was replaced or shortened by another program" in " ".join(err.split())


def test_a_rewrite_refuses_a_csv_with_a_row_it_cannot_read(tmp_path: Path) -> None:
    good = make_image(tmp_path / "a.png")
    LABELS.parent.mkdir(parents=True)
    LABELS.write_text(
        ",".join(LABEL_COLUMNS)
        + "\r\n"
        + csv_line("a.png", str(good), "happy")
        + csv_line("b.png", "/x/b.png", "Happy"),
        encoding="utf-8",
    )
    before = LABELS.read_bytes()
    Path("corrections.csv").write_text(f"path,old,new\n{good},,sad\n")
    result = runner.invoke(app, ["apply-corrections", "corrections.csv"])
    assert result.exit_code == 2
    assert ":3: 'Happy' is not one of the seven" in result.stderr
    assert LABELS.read_bytes() == before  # no row dropped, none changed


def test_a_whole_last_row_without_a_newline_is_kept_and_a_torn_one_is_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "labels.csv"
    human = Label("/h.png", "sad", None, "human", "", "1", calibrated=1.0).as_row()
    whole = ",".join(LABEL_COLUMNS) + "\r\n" + ",".join(human[c] for c in LABEL_COLUMNS)
    path.write_text(whole, encoding="utf-8")  # a hand edit: no final newline
    table = read_labels(path)
    assert list(table.labels) == ["/h.png"] and table.labels["/h.png"].confidence_source == "human"
    assert table.torn  # rewritten (with its newline) before anything is appended
    path.write_text(whole[:-12], encoding="utf-8")  # a crash's tail: fields missing
    assert not read_labels(path).labels


@pytest.mark.parametrize("rules", ["posix", "windows"])
def test_a_rename_killed_half_way_reaches_the_csv_on_the_next_command(
    gemini: FakeGemini, tmp_path: Path, rules: str, request: pytest.FixtureRequest
) -> None:
    """Killed after 30 of 60 renames: the next `tag` points the CSV at the moved files,
    pays for nothing, and holds one row per image (also under Windows' file rules)."""
    root = folder(tmp_path / "in", 60)
    assert runner.invoke(app, ["tag", str(root)]).exit_code == 0
    sent = gemini.count
    script = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from emotag.datasets import rename
        moves = 0
        real = rename.move_without_replacing
        def move(old, new):
            global moves
            if moves == 30:
                os._exit(9)  # as kill -9 would: no cleanup, no CSV update
            moves += 1
            real(old, new)
        rename.move_without_replacing = move
        rename.rename_from_csv(Path(sys.argv[1]), lambda plan: True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(LABELS)], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 9, done.stderr
    renamed = [p for p in root.iterdir() if p.stem.endswith(tuple(EMOTIONS))]
    assert len(renamed) == 30
    if rules == "windows":
        request.getfixturevalue("windows_rules")
    result = runner.invoke(app, ["tag", str(root)])
    assert result.exit_code == 0, result.output
    rows = read_csv(LABELS)
    assert len(rows) == 60 and gemini.count == sent  # nothing paid again
    assert {row["path"] for row in rows} == {str(p) for p in root.iterdir()}


def test_merge_in_place_of_the_labels_csv_waits_for_no_run(tmp_path: Path) -> None:
    from emotag.files.lock import run_lock

    LABELS.parent.mkdir(parents=True)
    make_image(tmp_path / "a.png")
    LABELS.write_text(
        ",".join(LABEL_COLUMNS) + "\r\n" + csv_line("a.png", str(tmp_path / "a.png"), "sad"),
        encoding="utf-8",
    )
    before = LABELS.read_bytes()
    with run_lock(LABELS):  # as a tag run on it holds
        result = runner.invoke(app, ["merge", str(LABELS), "--in-place"])
    assert result.exit_code == 2 and "Another emotag run is writing" in result.stderr
    assert LABELS.read_bytes() == before
