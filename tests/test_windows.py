"""The everyday workflow under Windows' file rules (tests/winrules.py), on any OS."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from fakes.gemini_api import TEST_KEY, FakeGemini, Reply
from helpers import make_image, read_csv
from winrules import Refusals, windows_rules

__all__ = ["windows_rules"]  # the fixture, imported for pytest to find

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")
ERRORS = Path("dataset/llm_labels.errors.csv")


def seven_faces(root: Path, prefix: str) -> None:
    for i, emotion in enumerate(EMOTIONS):
        make_image(root / f"{prefix}{i}.png", emotion, size=(40 + i, 30))


def invoke(*args: str) -> object:
    result = runner.invoke(app, list(args))
    assert "Windows rules" not in result.output, result.output
    return result


def test_the_layer_refuses_what_windows_refuses(windows_rules: Refusals, tmp_path: Path) -> None:
    held, other = tmp_path / "held.csv", tmp_path / "other.csv"
    held.write_text("a")
    other.write_text("b")
    with open(held) as handle:
        with pytest.raises(PermissionError):
            os.replace(other, held)
        with pytest.raises(PermissionError):
            held.unlink()
        with pytest.raises(PermissionError):
            held.rename(tmp_path / "moved.csv")
        assert handle.read() == "a"
    with pytest.raises(FileExistsError):
        other.rename(held)
    for name in ("fcntl", "resource"):
        with pytest.raises(ImportError):
            importlib.import_module(name)
    assert len(windows_rules.seen) == 4
    os.replace(other, held)  # closed again: allowed, as on Windows
    assert held.read_text() == "b"


def test_everyday_workflow_under_windows_rules(
    windows_rules: Refusals, gemini: FakeGemini, tmp_path: Path
) -> None:
    root = tmp_path / "faces"
    seven_faces(root, "m_y_a_")
    make_image(root / "nobody.png", "white")
    gemini.by_colour["white"] = Reply(faces="none", emotion="neutral")
    (root / "broken.png").write_bytes(b"not a png")

    first = invoke("tag", str(root))
    assert first.exit_code == 1, first.output  # two images without a label, reported
    assert len(read_csv(LABELS)) == 7 and len(read_csv(ERRORS)) == 2, first.output

    # A resuming re-run: a new image, the broken one mended; the errors CSV is tidied.
    make_image(root / "m_y_a_7.png", "happy", size=(60, 30))
    make_image(root / "broken.png", "sad", size=(61, 30))
    sent = gemini.count
    again = invoke("tag", str(root))
    assert again.exit_code == 1, again.output
    assert gemini.count - sent == 2
    assert [r["path"] for r in read_csv(ERRORS)] == [str(root / "nobody.png")]
    assert len(read_csv(LABELS)) == 9

    wrong = str(root / "m_y_a_0.png")
    Path("corrections.csv").write_text(f"path,old,new\r\n{wrong},happy,disgust\r\n")
    corrected = invoke("apply-corrections", "corrections.csv")
    assert corrected.exit_code == 0, corrected.output
    assert next(r for r in read_csv(LABELS) if r["path"] == wrong)["emotion"] == "disgust"

    # An audit: the sample, a person's answers, the score rewriting the labels CSV.
    assert invoke("audit", "sample", str(LABELS), "--size", "5", "-o", "audit").exit_code == 0
    sampled = read_csv(Path("audit/sample.csv"))
    Path("audit/truth.csv").write_text(
        "path,truth\r\n" + "".join(f"{r['path']},{r['emotion']}\r\n" for r in sampled)
    )
    scored = invoke("audit", "score", str(LABELS), "--truth", "audit/truth.csv")
    assert scored.exit_code == 0, scored.output
    assert all(r["calibrated"] for r in read_csv(LABELS))

    report = invoke("report", "-l", str(LABELS), "-o", "review.html")
    assert report.exit_code == 0, report.output
    assert "m_y_a_3.png" in Path("review.html").read_text(encoding="utf-8")

    Path("landmarks.csv").write_text(
        "image,x0\r\n" + "".join(f"{r['path']},1\r\n" for r in read_csv(LABELS))
    )
    merged = invoke("merge", "landmarks.csv", "-l", str(LABELS), "--in-place")
    assert merged.exit_code == 0, merged.output
    assert {r["emotion"] for r in read_csv(Path("landmarks.csv"))} >= {"disgust", "sad"}

    exported = invoke("export", str(LABELS), "--format", "folders", "-o", "classes")
    assert exported.exit_code == 0, exported.output
    assert len(list(Path("classes").rglob("*.png"))) == 9

    renamed = invoke("rename", "-l", str(LABELS), "--yes", "--journal", "j.csv")
    assert renamed.exit_code == 0, renamed.output
    assert (root / "m_y_a_0_disgust.png").exists()
    undone = invoke("rename", "--undo", "j.csv", "-l", str(LABELS))
    assert undone.exit_code == 0, undone.output
    assert (root / "m_y_a_0.png").exists() and not (root / "m_y_a_0_disgust.png").exists()
    assert not list(Path("dataset").glob(".*.tmp")) and not list(root.glob(".*.tmp"))
    assert windows_rules.seen == []


def test_batch_fetch_under_windows_rules(
    windows_rules: Refusals, gemini: FakeGemini, tmp_path: Path
) -> None:
    root = tmp_path / "faces"
    seven_faces(root, "img_")
    submitted = invoke("tag", str(root), "--batch")
    assert submitted.exit_code == 0, submitted.output
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    fetched = invoke("batch", "fetch")
    assert fetched.exit_code == 0, fetched.output
    assert {r["emotion"] for r in read_csv(LABELS)} == set(EMOTIONS)
    again = invoke("batch", "fetch")
    assert again.exit_code == 0, again.output
    assert len(read_csv(LABELS)) == 7
    assert windows_rules.seen == []


def test_the_offline_model_then_gemini_under_windows_rules(
    windows_rules: Refusals, fake: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key: the offline model labels (and a re-run resumes); with a key, Gemini's rows
    replace its rows, which rewrites the labels CSV."""
    examples = Path(__file__).resolve().parent.parent / "examples" / "faces"
    root = tmp_path / "faces"
    root.mkdir()
    for picture in examples.glob("*.[pj][np]g"):
        (root / picture.name).write_bytes(picture.read_bytes())
    make_image(root / "flat.png", size=(120, 90))  # no face
    assert invoke("tag", str(root)).exit_code == 1
    assert invoke("tag", str(root)).exit_code == 1  # resumes; "no face" is remembered
    assert len(read_csv(LABELS)) == 3
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
    monkeypatch.setenv("AI_STUDIO_API_KEY", TEST_KEY)
    assert invoke("tag", str(root)).exit_code == 0
    assert invoke("tag", str(root)).exit_code == 0  # compacts the replaced rows
    rows = read_csv(LABELS)
    assert len(rows) == 4 and {row["model"] for row in rows} == {"gemini-3.5-flash-lite"}
    assert not read_csv(ERRORS)
    assert not windows_rules.seen
