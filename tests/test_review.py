"""report, eval and apply-corrections on real `tag` output."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from fakes.gemini_api import FakeGemini, Reply
from helpers import make_image, read_csv

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")


@pytest.fixture
def tagged(gemini: FakeGemini, tmp_path: Path) -> Path:
    """Six images named with their true emotion; the fake gets one wrong and one fails."""
    root = tmp_path / "faces"
    truth = {
        "m_y_a_happy.png": "happy",
        "f_o_w_sad.png": "sad",
        "m_o_b_angry.png": "angry",
        "f_y_a_serious.png": "neutral",
        "sub/m_y_w_fear.png": "fear",
        "sub/f_y_b_surprised.png": "surprise",
    }
    for name, emotion in truth.items():
        make_image(root / name, emotion, size=(40 + len(name), 30))
    make_image(root / "x_y_z_disgust.png", "cyan")
    gemini.by_colour["cyan"] = Reply(emotion="happy")  # wrong: the name says disgust
    make_image(root / "nobody.png", "white")
    gemini.by_colour["white"] = Reply(faces="none", emotion="neutral")
    assert runner.invoke(app, ["tag", str(root)]).exit_code == 1
    return root


def test_eval_against_file_names(tagged: Path) -> None:
    result = runner.invoke(app, ["eval", str(LABELS), "--truth", "filenames", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 7
    assert metrics["accuracy"] == pytest.approx(6 / 7)
    assert metrics["confusion"]["disgust"]["happy"] == 1
    assert metrics["per_class"]["disgust"]["recall"] == 0.0
    table = runner.invoke(app, ["eval", str(LABELS), "--truth", "filenames"])
    assert "Cohen's kappa" in table.stdout and "Confusion" in table.stdout


def test_eval_two_csvs_measures_agreement(tagged: Path, gemini: FakeGemini) -> None:
    gemini.by_colour["cyan"] = Reply(emotion="disgust")
    assert (
        runner.invoke(
            app, ["tag", str(tagged), "-m", "gemini-3.8-flash", "-o", "other.csv"]
        ).exit_code
        == 1
    )
    result = runner.invoke(app, ["eval", str(LABELS), "other.csv", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(6 / 7)


def test_eval_usage_errors(tagged: Path) -> None:
    both = runner.invoke(app, ["eval", str(LABELS)])
    assert both.exit_code == 2
    missing = runner.invoke(app, ["eval", str(LABELS), "--truth", "nope.csv"])
    assert missing.exit_code == 2 and "Reference not found" in missing.stderr


def test_report_is_self_contained(tagged: Path) -> None:
    result = runner.invoke(
        app, ["report", "-l", str(LABELS), "-o", "r.html", "--truth", "filenames"]
    )
    assert result.exit_code == 0, result.output
    assert "7 labels, 1 failures" in result.stdout
    page = Path("r.html").read_text()
    assert "http://" not in page and "https://" not in page
    assert page.count("data:image/jpeg;base64,") == 8  # 7 labelled + the no-face failure
    assert "Agreement with emotions in file names" in page
    data = json.loads(page.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    assert {item["folder"] for item in data["labels"]} == {".", "sub"}
    assert data["failures"][0]["reason"] == "no face"


def test_report_can_link_images_instead(tagged: Path) -> None:
    assert (
        runner.invoke(
            app, ["report", "-l", str(LABELS), "-o", "out/r.html", "--link-images"]
        ).exit_code
        == 0
    )
    page = Path("out/r.html").read_text()
    assert "data:image" not in page and '"img": "../faces/m_y_a_happy.png"' in page


def test_corrections_apply_keep_and_undo(tagged: Path, gemini: FakeGemini) -> None:
    wrong = str(tagged / "x_y_z_disgust.png")
    Path("corrections.csv").write_text(
        f"path,old,new\r\n{wrong},happy,disgust\r\n/nope.png,sad,fear\r\n"
    )
    before = LABELS.read_bytes()
    result = runner.invoke(app, ["apply-corrections", "corrections.csv"])
    assert result.exit_code == 1  # one row did not apply, and says so
    assert "Applied 1 correction" in result.stdout and "/nope.png: not in" in result.stderr
    row = next(r for r in read_csv(LABELS) if r["path"] == wrong)
    assert (row["emotion"], row["confidence"], row["confidence_source"]) == ("disgust", "", "human")
    # A later run, even with another model, keeps the human label.
    assert runner.invoke(app, ["tag", str(tagged), "-m", "gemini-3.8-flash"]).exit_code == 1
    assert next(r for r in read_csv(LABELS) if r["path"] == wrong)["emotion"] == "disgust"
    journal = next(Path("dataset").glob("emotag-corrections-*.csv"))
    undo = runner.invoke(app, ["apply-corrections", str(journal), "--undo"])
    assert undo.exit_code == 0, undo.output
    restored = next(r for r in read_csv(LABELS) if r["path"] == wrong)
    assert (restored["emotion"], restored["confidence_source"]) == ("happy", "logprobs")
    assert before != LABELS.read_bytes()  # the rest was re-labelled by the other model


def test_undo_refuses_a_row_changed_since(tagged: Path) -> None:
    wrong = str(tagged / "x_y_z_disgust.png")
    Path("c1.csv").write_text(f"path,old,new\r\n{wrong},happy,disgust\r\n")
    assert runner.invoke(app, ["apply-corrections", "c1.csv"]).exit_code == 0
    journal = next(Path("dataset").glob("emotag-corrections-*.csv"))
    Path("c2.csv").write_text(f"path,old,new\r\n{wrong},disgust,angry\r\n")
    journal.rename("first-journal.csv")
    assert runner.invoke(app, ["apply-corrections", "c2.csv"]).exit_code == 0
    undo = runner.invoke(app, ["apply-corrections", "first-journal.csv", "--undo"])
    assert undo.exit_code == 1 and "changed since the correction" in undo.stderr
    assert next(r for r in read_csv(LABELS) if r["path"] == wrong)["emotion"] == "angry"


def test_undo_restores_only_the_rows_emotag_journalled(tagged: Path) -> None:
    """A journal is untrusted: a row that is not one emotag wrote, or whose old label
    names another image, is said and left alone; the good rows are still put back."""
    wrong = str(tagged / "x_y_z_disgust.png")
    Path("c.csv").write_text(f"path,old,new\r\n{wrong},happy,disgust\r\n")
    assert runner.invoke(app, ["apply-corrections", "c.csv"]).exit_code == 0
    journal = next(Path("dataset").glob("emotag-corrections-*.csv"))
    (good,) = read_csv(journal)
    elsewhere = json.dumps({**json.loads(good["before"]), "path": "/elsewhere/secret.png"})
    with open(journal, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([wrong, "{not json", good["after"]])
        writer.writerow([wrong, "[1, 2]", good["after"]])
        writer.writerow([wrong, elsewhere, good["after"]])
        writer.writerow([wrong])
    undo = runner.invoke(app, ["apply-corrections", str(journal), "--undo"])
    assert undo.exit_code == 1 and "Restored 1 correction" in undo.stdout
    said = re.findall(r"\.csv:(\d+): not a journal row; left alone", undo.stderr)
    assert said == ["6", "5", "4", "3"]
    rows = read_csv(LABELS)
    assert next(r for r in rows if r["path"] == wrong)["emotion"] == "happy"
    assert not any("elsewhere" in r["path"] for r in rows)


@pytest.mark.parametrize("content", ["", "path,old,new\r\n/a.png,sad,fear\r\n", '"a\r\n'])
def test_a_file_that_is_no_journal_is_one_line(tagged: Path, content: str) -> None:
    Path("j.csv").write_text(content)
    before = LABELS.read_bytes()
    undo = runner.invoke(app, ["apply-corrections", "j.csv", "--undo"])
    assert undo.exit_code == 2
    (line,) = undo.stderr.strip().splitlines()
    assert "is not a corrections journal" in line and LABELS.read_bytes() == before


def test_dry_run_counts_human_corrections_as_done_like_tag(tagged: Path) -> None:
    wrong = str(tagged / "x_y_z_disgust.png")
    Path("c.csv").write_text(f"path,old,new\r\n{wrong},happy,disgust\r\n")
    assert runner.invoke(app, ["apply-corrections", "c.csv"]).exit_code == 0
    dry = runner.invoke(app, ["tag", str(tagged), "-m", "gemini-3.8-flash", "--dry-run", "--json"])
    assert json.loads(dry.stdout)["already_done"] == 1  # only the human row, for another model
