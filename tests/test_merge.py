from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.files.csvfiles import LABEL_COLUMNS, Appender
from emotag.records import Label
from helpers import make_image, read_csv

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def write_labels(labels: list[Label], path: Path = Path("labels.csv")) -> Path:
    appender = Appender(path, LABEL_COLUMNS)
    for label in labels:
        appender.append(label.as_row())
    appender.close()
    return path


def write_table(rows: list[dict[str, str]], path: Path = Path("landmarks.csv")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def merge(*args: str):
    return runner.invoke(app, ["merge", *args])


def test_merge_auto_detects_the_image_column_and_adds_label_and_confidence() -> None:
    write_labels([Label("/d/a.png", "happy", 0.9), Label("/d/b.png", "sad")])
    write_table([{"image_path": "/d/a.png", "x0": "1"}, {"image_path": "/d/b.png", "x0": "2"}])
    result = merge("landmarks.csv", "--labels", "labels.csv", "-o", "out.csv")
    assert result.exit_code == 0, result.output
    rows = read_csv(Path("out.csv"))
    assert [(r["image_path"], r["x0"], r["emotion"], r["emotion_confidence"]) for r in rows] == [
        ("/d/a.png", "1", "happy", "0.9000"),
        ("/d/b.png", "2", "sad", ""),
    ]
    assert "image column: image_path" in result.stdout


def test_merge_quoting_commas_quotes_and_non_ascii() -> None:
    odd = '/d/smile, "big" é.png'
    write_labels([Label(odd, "happy")])
    write_table([{"file": odd, "note": 'a "quoted", note'}])
    assert merge("landmarks.csv", "-l", "labels.csv", "-o", "out.csv").exit_code == 0
    assert read_csv(Path("out.csv")) == [
        {"file": odd, "note": 'a "quoted", note', "emotion": "happy", "emotion_confidence": ""}
    ]


def test_merge_explicit_column_and_file_name_matching() -> None:
    write_labels(
        [Label("/d/a/x.png", "fear"), Label("/d/a/dup.png", "sad"), Label("/d/b/dup.png", "angry")]
    )
    write_table(
        [
            {"img_id": "1", "src": "x.png"},
            {"img_id": "2", "src": "dup.png"},
            {"img_id": "3", "src": "zz.png"},
        ]
    )
    result = merge(
        "landmarks.csv", "-l", "labels.csv", "--image-column", "src", "--unmatched", "u.csv"
    )
    assert result.exit_code == 0, result.output
    rows = read_csv(Path("landmarks_labelled.csv"))
    assert [r["emotion"] for r in rows] == ["fear", "", ""]
    assert "ambiguous: dup.png" in result.stderr and "unmatched: zz.png" in result.stderr
    assert [r["src"] for r in read_csv(Path("u.csv"))] == ["dup.png", "zz.png"]


def test_merge_existing_label_conflicts_follow_prefer() -> None:
    write_labels([Label("/d/a.png", "happy")])
    write_table([{"path": "/d/a.png", "emotion": "sad"}])
    labels_win = merge("landmarks.csv", "-l", "labels.csv", "-o", "l.csv")
    assert labels_win.exit_code == 0 and read_csv(Path("l.csv"))[0]["emotion"] == "happy"
    assert "table sad, labels happy" in labels_win.stderr
    assert (
        merge("landmarks.csv", "-l", "labels.csv", "-o", "e.csv", "--prefer", "existing").exit_code
        == 0
    )
    assert read_csv(Path("e.csv"))[0]["emotion"] == "sad"


def test_merge_strict_fails_on_unmatched_rows_and_input_is_untouched() -> None:
    write_labels([Label("/d/a.png", "happy")])
    table = write_table([{"path": "/d/a.png"}, {"path": "/d/missing.png"}])
    before = table.read_bytes()
    result = merge("landmarks.csv", "-l", "labels.csv", "-o", "out.csv", "--strict")
    assert result.exit_code == 1
    assert table.read_bytes() == before


def test_merge_in_place_and_refusals() -> None:
    write_labels([Label("/d/a.png", "happy")])
    table = write_table([{"path": "/d/a.png"}])
    same = merge("landmarks.csv", "-l", "labels.csv", "-o", "landmarks.csv")
    assert same.exit_code == 2 and "--in-place" in same.stderr
    assert merge("landmarks.csv", "-l", "labels.csv", "--in-place").exit_code == 0
    assert read_csv(table)[0]["emotion"] == "happy"
    missing = merge("nope.csv", "-l", "labels.csv")
    assert missing.exit_code == 2 and "Landmarks CSV not found" in missing.stderr
    write_table([{"x": "1"}], Path("nocol.csv"))
    nocol = merge("nocol.csv", "-l", "labels.csv")
    assert nocol.exit_code == 2 and "--image-column" in nocol.stderr
    assert not list(Path().glob(".*.tmp"))


def test_tag_then_merge_then_example_script(gemini, tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for name, emotion in {
        "a.png": "happy",
        "sub/b.png": "sad",
        "c_x_y_serious.png": "angry",
    }.items():
        make_image(root / name, emotion)
    make_image(root / "unlabelled" / "m_y_a_fear.png", "cyan")
    from fakes.gemini_api import Reply

    gemini.by_colour["cyan"] = Reply.cut_off()
    assert runner.invoke(app, ["tag", str(root)]).exit_code == 1  # one off-list answer
    write_table([{"path": "a.png"}, {"path": "sub/b.png"}, {"path": "c_x_y_serious.png"}])
    result = merge("landmarks.csv", "--root", str(root), "-o", "out.csv")
    assert result.exit_code == 0, result.output
    assert [r["emotion"] for r in read_csv(Path("out.csv"))] == ["happy", "sad", "angry"]
    example = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "extract_landmarks_integration.py"),
            str(root),
            "--labels",
            "dataset/llm_labels.csv",
            "--output",
            "lm.csv",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {Path(r["path"]).name: r["emotion"] for r in read_csv(Path("lm.csv"))}
    # The fear image has no label in the CSV; its file name supplies it (fallback).
    assert rows == {
        "a.png": "happy",
        "b.png": "sad",
        "c_x_y_serious.png": "angry",
        "m_y_a_fear.png": "fear",
    }
    assert "0 image(s) without a label" in example.stdout


@pytest.mark.parametrize("column", ["path", "image", "filename", "File", "image_path"])
def test_merge_detects_common_column_names(column: str) -> None:
    from emotag.datasets.merge import detect_image_column

    assert detect_image_column(["x", column, "y"]) == column


def test_merge_pads_short_rows_of_a_hand_edited_table() -> None:
    write_labels([Label("/d/a.png", "happy"), Label("/d/b.png", "sad")])
    Path("landmarks.csv").write_text("path,x0,x1\r\n/d/a.png,1\r\n/d/b.png,2,3\r\n")
    assert merge("landmarks.csv", "-l", "labels.csv", "-o", "out.csv").exit_code == 0
    rows = read_csv(Path("out.csv"))
    assert [(r["x1"], r["emotion"]) for r in rows] == [("", "happy"), ("3", "sad")]
