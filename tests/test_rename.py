from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.datasets import rename as renaming
from emotag.emotions import emotion_from_filename
from emotag.errors import InputError
from emotag.files.csvfiles import LABEL_COLUMNS, Appender
from emotag.files.roots import inside, record
from emotag.records import Label
from helpers import csv_line, make_image, read_csv

runner = CliRunner()


@pytest.mark.parametrize(
    ("name", "emotion", "expected"),
    [
        pytest.param(
            "male_young_asian.png", "happy", "male_young_asian_happy.png", id="three-tokens"
        ),
        pytest.param(
            "male_young_asian_sad.png", "happy", "male_young_asian_happy.png", id="replace"
        ),
        pytest.param(
            "female_old_white_surprised.jpg",
            "surprise",
            "female_old_white_surprise.jpg",
            id="alias",
        ),
        pytest.param("x_y_z_Serious.PNG", "neutral", "x_y_z_neutral.PNG", id="alias-upper-ext"),
        pytest.param("holiday.jpg", "fear", "holiday_fear.jpg", id="plain"),
        pytest.param(
            "my photo.v2.final.JPEG", "sad", "my photo.v2.final_sad.JPEG", id="spaces-dots"
        ),
        pytest.param("café_été.png", "angry", "café_été_angry.png", id="accents"),
        pytest.param("happy.png", "sad", "sad.png", id="only-emotion"),
        pytest.param("a_b_c_happy.png", "happy", "a_b_c_happy.png", id="already-right"),
    ],
)
def test_target_name_rules(name: str, emotion: str, expected: str) -> None:
    assert renaming.target_name(name, emotion) == expected


def test_target_name_template_fields() -> None:
    tpl = "{emotion}-{sex}-{age}-{ethnicity}{ext}"
    assert renaming.target_name("m_y_a_sad.png", "happy", tpl) == "happy-m-y-a.png"
    assert (
        renaming.target_name("one_two.png", "fear", "{t1}_{t0}_{emotion}{ext}")
        == "two_one_fear.png"
    )
    with pytest.raises(InputError, match=r"uses \{sex\}"):
        renaming.target_name("holiday.png", "fear", tpl)
    with pytest.raises(InputError, match="Unknown field"):
        renaming.check_template("{colour}{ext}")
    with pytest.raises(InputError, match="not a path"):
        renaming.check_template("../{stem}{ext}")


def labels_csv(rows: list[tuple[Path, str]], path: Path = Path("labels.csv")) -> Path:
    """A labels CSV as `tag` leaves it: the rows, and the folder it labelled recorded."""
    appender = Appender(path, LABEL_COLUMNS)
    for file, emotion in rows:
        appender.append(Label(str(file), emotion).as_row())
    appender.close()
    if rows:
        record(path, Path(os.path.commonpath([file.parent for file, _ in rows])))
    return path


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_plan_conflicts_get_a_number_or_are_skipped(tmp_path: Path) -> None:
    d = tmp_path / "imgs"
    a = make_image(d / "a_b_c.png")
    b = make_image(d / "a_b_c_sad.png", "sad")
    make_image(d / "A_B_C_HAPPY.png")  # an existing name that differs only by case
    rows = [(a, "happy"), (b, "happy"), (d / "gone.png", "sad")]
    steps = renaming.plan([Label(str(p), e) for p, e in rows]).steps
    assert [(s.new.name, s.status) for s in steps] == [
        ("a_b_c_happy_2.png", "rename"),
        ("a_b_c_happy_3.png", "rename"),
        ("gone.png", "missing"),
    ]
    skipped = renaming.plan(
        [Label(str(p), e) for p, e in rows], on_conflict=renaming.OnConflict.SKIP
    )
    assert skipped.counts == {"conflict": 2, "missing": 1}


def test_skip_renames_the_rest_and_a_step_that_fails_stops_no_other(tmp_path: Path) -> None:
    """Under --on-conflict skip the clashing rows stay as they are; a target that appears
    between plan and move fails that step alone, unjournaled, and the next still moves."""
    d = tmp_path / "imgs"
    a, b, c = (make_image(d / f"{n}.png", size=(30 + i, 30)) for i, n in enumerate("abc"))
    make_image(d / "c_fear.png", size=(40, 30))  # c's target exists: a conflict
    skip = renaming.OnConflict.SKIP
    plan = renaming.plan([Label(str(p), "fear") for p in (a, b, c)], on_conflict=skip)
    assert plan.counts == {"rename": 2, "conflict": 1}
    make_image(d / "a_fear.png", size=(50, 30))  # appears after planning
    result = renaming.apply(plan, tmp_path / "j.csv", on_conflict=skip)
    assert [(step.old.name, why) for step, why in result.failed] == [
        ("a.png", "target appeared after planning")
    ]
    assert [step.new.name for step in result.done] == ["b_fear.png"] and result.journal
    assert [row["old"] for row in read_csv(tmp_path / "j.csv")] == [str(b)]
    assert a.exists() and c.exists() and not b.exists()
    with pytest.raises(InputError, match=r"^1 rename\(s\) would clash"):
        renaming.apply(plan, tmp_path / "j2.csv", on_conflict=renaming.OnConflict.FAIL)
    assert not (tmp_path / "j2.csv").exists()


def test_a_plan_goes_through_every_row_whatever_one_row_holds(tmp_path: Path) -> None:
    """A refused, missing, unnamable or unchanged row is listed and the plan goes on; an
    unchanged file keeps its name, so no other file is renamed onto it."""
    folder = tmp_path / "faces"
    outside = make_image(tmp_path / "elsewhere" / "m_y_a.png")
    kept = make_image(folder / "m_y_a_sad.png", size=(31, 30))
    other = make_image(folder / "m_y_a.png", size=(32, 30))
    plain = make_image(folder / "holiday.png", size=(33, 30))
    rows = [
        Label(str(outside), "sad"),
        Label(str(folder / "gone.png"), "sad"),
        Label(str(plain), "sad"),  # the template needs three tokens it does not have
        Label(str(kept), "sad"),
        Label(str(other), "sad"),
        Label(str(folder / "m_y_a_fear.png"), "sad"),  # listed after: missing
    ]
    result = renaming.plan(rows, template="{sex}_{age}_{ethnicity}_{emotion}{ext}",
                           within=inside(folder))  # fmt: skip
    assert result.problems == [
        f"{outside}: outside the tagged folder(s); refused",
        "holiday.png: --template uses {sex}, which this file name does not have",
    ]
    assert [(s.old.name, s.new.name, s.status, s.note) for s in result.steps] == [
        ("gone.png", "gone.png", "missing", "not found on disk"),
        ("m_y_a_sad.png", "m_y_a_sad.png", "unchanged", ""),
        ("m_y_a.png", "m_y_a_sad_2.png", "rename", "numbered to avoid a clash"),
        ("m_y_a_fear.png", "m_y_a_fear.png", "missing", "not found on disk"),
    ]
    assert result.steps[2].old == other and result.counts == {
        "missing": 2, "unchanged": 1, "rename": 1
    }  # fmt: skip


def test_apply_fail_policy_moves_nothing(tmp_path: Path) -> None:
    d = tmp_path / "imgs"
    a = make_image(d / "x.png")
    make_image(d / "x_sad.png")
    before = tree_digest(d)
    plan = renaming.plan([Label(str(a), "sad")], on_conflict=renaming.OnConflict.FAIL)
    with pytest.raises(InputError, match="nothing was renamed"):
        renaming.apply(plan, tmp_path / "j.csv", on_conflict=renaming.OnConflict.FAIL)
    assert tree_digest(d) == before


def test_rename_then_undo_restores_the_exact_tree(tmp_path: Path) -> None:
    d = tmp_path / "imgs"
    files = [make_image(d / f"m_y_a_{i}.png", "happy", size=(10 + i, 10)) for i in range(5)]
    before = tree_digest(d)
    csv_path = labels_csv([(f, "sad") for f in files])
    result = runner.invoke(app, ["rename", "-l", str(csv_path), "--yes", "--journal", "j.csv"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in d.iterdir()) == sorted(f"m_y_a_{i}_sad.png" for i in range(5))
    assert {Path(r["path"]).name for r in read_csv(csv_path)} == {
        f"m_y_a_{i}_sad.png" for i in range(5)
    }
    undo = runner.invoke(app, ["rename", "--undo", "j.csv", "-l", str(csv_path)])
    assert undo.exit_code == 0, undo.output
    assert tree_digest(d) == before
    assert {r["path"] for r in read_csv(csv_path)} == {str(f) for f in files}


def test_crash_mid_plan_leaves_a_journal_that_undo_restores(tmp_path: Path, monkeypatch) -> None:
    d = tmp_path / "imgs"
    files = [make_image(d / f"f{i}.png", "happy", size=(10 + i, 10)) for i in range(6)]
    before = tree_digest(d)
    plan = renaming.plan([Label(str(f), "fear") for f in files])
    real_move = renaming.move_without_replacing
    calls = {"n": 0}

    def dying_move(old: Path, new: Path) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the process dies between journal line and rename
        real_move(old, new)

    monkeypatch.setattr(renaming, "move_without_replacing", dying_move)
    with pytest.raises(KeyboardInterrupt):
        renaming.apply(plan, tmp_path / "j.csv")
    monkeypatch.setattr(renaming, "move_without_replacing", real_move)
    assert len(read_csv(tmp_path / "j.csv")) == 4  # three done, the fourth journaled only
    result = renaming.undo(tmp_path / "j.csv", inside(tmp_path))
    assert len(result.moved) == 3 and result.not_applied == 1 and not result.refused
    assert tree_digest(d) == before


def test_undo_refuses_a_file_changed_since(tmp_path: Path) -> None:
    f = make_image(tmp_path / "a.png")
    renaming.apply(renaming.plan([Label(str(f), "sad")]), tmp_path / "j.csv")
    (tmp_path / "a_sad.png").write_bytes(b"edited")
    result = renaming.undo(tmp_path / "j.csv", inside(tmp_path))
    assert result.refused and "changed" in result.refused[0]
    assert (tmp_path / "a_sad.png").read_bytes() == b"edited"


def test_undo_leaves_alone_each_row_emotag_did_not_write(tmp_path: Path) -> None:
    """A journal is untrusted: a row with no size, a time that is no number, an empty or
    impossible path is said with its line; the good step is still undone."""
    f = make_image(tmp_path / "a.png")
    renaming.apply(renaming.plan([Label(str(f), "sad")]), tmp_path / "j.csv")
    with open(tmp_path / "j.csv", "a", encoding="utf-8", newline="") as handle:
        handle.write(f"{f},{tmp_path / 'b.png'},abc,1\r\n")
        handle.write(f"{f}\r\n")
        handle.write(",,1,1\r\n")
        handle.write(f"{f},{tmp_path / 'c.png'}\0,1,1\r\n")
    result = renaming.undo(tmp_path / "j.csv", inside(tmp_path))
    assert result.moved == {str(tmp_path / "a_sad.png"): str(f)}
    nul, *rows = result.refused  # the last step first
    assert nul.endswith("not a path (a NUL byte); refused")
    assert rows == [f"{tmp_path / 'j.csv'}:{n}: not a journal row; left alone" for n in (5, 4, 3)]


@pytest.mark.parametrize("content", ["", "old,new\r\n", "x" * 200_000])
def test_a_file_that_is_no_rename_journal_is_one_line(tmp_path: Path, content: str) -> None:
    (tmp_path / "j.csv").write_text(content)
    with pytest.raises(InputError, match=r"not an emotag rename journal|not a readable CSV"):
        renaming.undo(tmp_path / "j.csv", inside(tmp_path))


def test_rename_dry_run_and_non_interactive_change_nothing(tmp_path: Path) -> None:
    f = make_image(tmp_path / "a.png")
    csv_path = labels_csv([(f, "sad")])
    dry = runner.invoke(app, ["rename", "-l", str(csv_path), "--dry-run"])
    assert dry.exit_code == 0 and "a_sad.png" in dry.stdout and f.exists()
    blind = runner.invoke(app, ["rename", "-l", str(csv_path)])
    assert blind.exit_code == 2 and "--yes" in blind.stderr and f.exists()


def test_rename_bad_input_is_one_line(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["rename", "-l", "nope.csv"])
    assert (
        missing.exit_code == 2 and missing.stderr.strip() == "Error: Labels CSV not found: nope.csv"
    )
    Path("bad.csv").write_text("a,b\n1,2\n")
    bad = runner.invoke(app, ["rename", "-l", "bad.csv"])
    assert bad.exit_code == 2 and "not an emotag labels CSV" in bad.stderr


def test_rename_refuses_to_rewrite_a_csv_with_bad_rows_and_drops_none(tmp_path: Path) -> None:
    """Updating the CSV would drop the row it cannot read: refused, naming the line, before
    any file moves; without the update, the rest is renamed and the bad row reported."""
    f = make_image(tmp_path / "a.png")
    csv_path = labels_csv([(f, "sad")])
    with open(csv_path, "a", newline="") as handle:
        handle.write(csv_line("b.png", "/x/b.png", "bored"))
    before = csv_path.read_bytes()
    refused = runner.invoke(app, ["rename", "-l", str(csv_path), "--yes"])
    assert refused.exit_code == 2
    assert ":3: 'bored' is not one of the seven" in refused.stderr
    assert f.exists() and csv_path.read_bytes() == before
    result = runner.invoke(app, ["rename", "-l", str(csv_path), "--yes", "--no-update-csv"])
    assert result.exit_code == 0, result.output
    assert ":3: 'bored' is not one of the seven" in result.stderr
    assert (tmp_path / "a_sad.png").exists() and csv_path.read_bytes() == before


def test_tag_rename_then_filename_parser_reads_every_emotion(gemini, tmp_path: Path) -> None:
    """The workflow's option 2: tag, rename, and a filename parser like extract_landmarks.py's."""
    root = tmp_path / "faces"
    truth = {"m_y_asian": "happy", "f_o_white": "sad", "m_o_black_serious": "angry", "x": "fear"}
    for stem, emotion in truth.items():
        make_image(root / f"{stem}.png", emotion)
    assert runner.invoke(app, ["tag", str(root)]).exit_code == 0
    result = runner.invoke(app, ["rename", "-l", "dataset/llm_labels.csv", "--yes"])
    assert result.exit_code == 0, result.output
    parsed = sorted(emotion_from_filename(p.name) for p in root.iterdir())
    assert parsed == sorted(truth.values())


def test_a_move_never_replaces_a_file_that_appeared_after_the_check(tmp_path: Path) -> None:
    old, new = tmp_path / "a.png", tmp_path / "a_sad.png"
    old.write_bytes(b"mine")
    new.write_bytes(b"someone else's")  # appeared between planning and the rename
    with pytest.raises(FileExistsError):
        renaming.move_without_replacing(old, new)
    assert (old.read_bytes(), new.read_bytes()) == (b"mine", b"someone else's")
    renaming.move_without_replacing(old, tmp_path / "free.png")
    assert not old.exists() and (tmp_path / "free.png").read_bytes() == b"mine"


def test_a_move_without_hard_links_still_refuses_an_existing_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")  # FAT, some network shares

    monkeypatch.setattr(os, "link", no_links)
    old, new = tmp_path / "a.png", tmp_path / "b.png"
    old.write_bytes(b"mine")
    new.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        renaming.move_without_replacing(old, new)
    assert new.read_bytes() == b"theirs"
    new.unlink()
    renaming.move_without_replacing(old, new)
    assert new.read_bytes() == b"mine" and not old.exists()
