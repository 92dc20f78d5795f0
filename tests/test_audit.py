"""`emotag audit` end to end against the fake: a model wrong on a known share of the
images and overconfident about them, a person's answers, the score, the calibrated
column, and `tag` applying the kept map to new rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from emotag.pages.review_page import CSP
from fakes.gemini_api import FakeGemini, Reply
from helpers import make_image, read_csv

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")


def invoke(*args: str):
    return runner.invoke(app, list(args))


def dataset(root: Path, clear: int, confused: int) -> dict[str, str]:
    """`clear` faces the model gets right and `confused` happy ones it calls surprise (the
    fake's "ambiguous" colour), each with the same 0.90 confidence: path -> the truth."""
    truth = {}
    for i in range(clear):
        path = make_image(root / f"clear_{i:03d}.png", EMOTIONS[i % 7], size=(40 + i, 40))
        truth[str(path)] = EMOTIONS[i % 7]
    for i in range(confused):
        path = make_image(root / f"confused_{i:03d}.png", "ambiguous", size=(40 + i, 41))
        truth[str(path)] = "happy"
    return truth


def answer(sample_csv: Path, truth: dict[str, str], out: Path) -> None:
    """What a person exports from audit.html: the truth of every sampled row."""
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "truth"])
        for row in read_csv(sample_csv):
            writer.writerow([row["path"], truth[row["path"]]])


def test_audit_gives_the_accuracy_a_calibrated_column_and_tag_applies_the_map(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    root = tmp_path / "in"
    truth = dataset(root, clear=80, confused=40)
    gemini.by_colour["ambiguous"] = Reply(emotion="surprise")
    assert invoke("tag", str(root)).exit_code == 0
    rows = read_csv(LABELS)
    real = sum(1 for r in rows if truth[r["path"]] == r["emotion"]) / len(rows)
    assert real == 80 / 120 and {r["confidence"] for r in rows} == {"0.9003"}  # overconfident

    drawn = invoke("audit", "sample", str(LABELS), "--size", "60", "--seed", "3", "-o", "audit")
    assert drawn.exit_code == 0, drawn.output
    sample = read_csv(Path("audit/sample.csv"))
    assert len(sample) == 60 and list(sample[0]) == [
        "path",
        "emotion",
        "confidence",
        "stratum",
        "weight",
    ]
    assert {r["stratum"] for r in sample} == {f"{e}|0.9-0.99" for e in EMOTIONS}
    again = invoke("audit", "sample", str(LABELS), "--size", "60", "--seed", "3", "-o", "again")
    assert again.exit_code == 0 and read_csv(Path("again/sample.csv")) == sample
    page = Path("audit/audit.html").read_text(encoding="utf-8")
    assert f'content="{CSP}"' in page and "data:image/jpeg;base64," in page  # the report's

    answer(Path("audit/sample.csv"), truth, Path("audit/truth.csv"))
    scored = invoke(
        "audit",
        "score",
        str(LABELS),
        "--truth",
        "audit/truth.csv",
        "--json",
        "-o",
        "audit/report.html",
    )
    assert scored.exit_code == 0, scored.output
    result = json.loads(scored.stdout)
    low, high = result["accuracy_ci95"]
    assert low <= real <= high and high - low < 0.3
    assert result["audited"] == 60 and set(result["per_label"]) == set(EMOTIONS)
    surprise = result["per_label"]["surprise"]
    assert surprise["precision"] < 0.5 and surprise["n"] > 0  # the confused ones are "surprise"
    assert result["per_label"]["happy"]["ci95"][0] > 0.5
    assert result["ece_raw"] > 0.2 and result["ece_calibrated"] < result["ece_raw"] / 2
    assert "calibrated >= 0.9" in result["keep"]["sentence"]

    labelled = read_csv(LABELS)
    assert all(r["calibrated"] for r in labelled)
    by_label = {r["emotion"]: float(r["calibrated"]) for r in labelled}
    # One confidence (0.90) for every row; the label tells them apart: "surprise" rows are
    # right 11 times in 51, the others always.
    assert by_label["surprise"] < 0.4 and by_label["happy"] > 0.8
    kept = json.loads(Path("dataset/llm_labels.calibration.json").read_text())
    assert kept["models"] == ["gemini-3.5-flash-lite"] and kept["audited"] == 60
    report = Path("audit/report.html").read_text(encoding="utf-8")
    assert report.count("<svg") == 2 and 'data-series="calibrated"' in report

    make_image(root / "new.png", "sad", size=(99, 40))
    assert invoke("tag", str(root)).exit_code == 0
    (new,) = [r for r in read_csv(LABELS) if r["path"].endswith("new.png")]
    # The kept map, applied as the row is written (to the unrounded confidence).
    assert abs(float(new["calibrated"]) - by_label["sad"]) < 0.001


def test_a_truth_file_with_a_label_off_the_list_is_refused_with_its_line(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    dataset(tmp_path / "in", clear=10, confused=0)
    assert invoke("tag", str(tmp_path / "in")).exit_code == 0
    assert invoke("audit", "sample", str(LABELS), "--size", "5", "-o", "audit").exit_code == 0
    paths = [r["path"] for r in read_csv(Path("audit/sample.csv"))]
    Path("audit/truth.csv").write_text(f"path,truth\n{paths[0]},happy\n{paths[1]},smiling\n")
    result = invoke("audit", "score", str(LABELS), "--truth", "audit/truth.csv")
    assert result.exit_code == 2 and "truth.csv:3: truth 'smiling'" in result.stderr
    Path("audit/truth.csv").write_text(f"path,truth\n{paths[0]},happy\n{paths[1]}\n")
    result = invoke("audit", "score", str(LABELS), "--truth", "audit/truth.csv")
    assert result.exit_code == 2 and "truth.csv:3: truth ''" in result.stderr  # a short row
    sample = Path("audit/sample.csv")
    sample.write_text(sample.read_text().splitlines()[0] + f"\n{paths[0]},happy\n")
    result = invoke("audit", "score", str(LABELS), "--truth", "audit/truth.csv")
    assert (
        result.exit_code == 2 and "sample.csv:2: not a row 'emotag audit sample'" in result.stderr
    )


def test_without_confidence_each_label_gets_its_precision(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    truth = dataset(tmp_path / "in", clear=30, confused=10)
    gemini.logprobs = "reject"  # as AI Studio keys answer today: no confidence at all
    gemini.by_colour["ambiguous"] = Reply(emotion="surprise")
    assert invoke("tag", str(tmp_path / "in")).exit_code == 0
    assert {r["confidence"] for r in read_csv(LABELS)} == {""}
    assert invoke("audit", "sample", str(LABELS), "--size", "40", "-o", "audit").exit_code == 0
    answer(Path("audit/sample.csv"), truth, Path("audit/truth.csv"))
    result = json.loads(
        invoke("audit", "score", str(LABELS), "--truth", "audit/truth.csv", "--json").stdout
    )
    assert (
        result["ece_raw"] is None
        and result["accuracy_ci95"][0] <= 0.75 <= result["accuracy_ci95"][1]
    )
    calibrated = {r["emotion"]: float(r["calibrated"]) for r in read_csv(LABELS)}
    assert calibrated["surprise"] < 0.5 < calibrated["sad"]


def test_calibrated_is_used_by_merge_lookup_eval_and_corrections(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    from emotag.datasets.lookup import LabelStore
    from emotag.quality.evaluation import Score, evaluate

    root = tmp_path / "in"
    truth = dataset(root, clear=28, confused=14)
    gemini.by_colour["ambiguous"] = Reply(emotion="surprise")
    assert invoke("tag", str(root)).exit_code == 0
    assert invoke("audit", "sample", str(LABELS), "--size", "42", "-o", "audit").exit_code == 0
    answer(Path("audit/sample.csv"), truth, Path("audit/truth.csv"))
    assert invoke("audit", "score", str(LABELS), "--truth", "audit/truth.csv").exit_code == 0
    rows = read_csv(LABELS)
    calibrated = {r["path"]: float(r["calibrated"]) for r in rows}
    # One confidence for every row, but the label tells: "surprise" is mostly wrong.
    doubtful = max(float(r["calibrated"]) for r in rows if r["emotion"] == "surprise")
    others = min(float(r["calibrated"]) for r in rows if r["emotion"] != "surprise")
    assert doubtful < 0.5 < others
    cut = round((doubtful + others) / 2, 2)
    sure = {p for p, value in calibrated.items() if value >= cut}

    store = LabelStore.from_csv(LABELS, min_calibrated=cut)
    assert len(store) == len(sure) and store.below_calibrated == len(calibrated) - len(sure)
    Path("landmarks.csv").write_text("image_path,x0\n" + "".join(f"{p},1\n" for p in truth))
    merged = invoke("merge", "landmarks.csv", "-l", str(LABELS), "--min-calibrated", str(cut))
    assert merged.exit_code == 0, merged.output
    rows = read_csv(Path("landmarks_labelled.csv"))
    assert {r["image_path"] for r in rows if r["emotion"]} == sure
    assert all(float(r["emotion_calibrated"]) >= cut for r in rows if r["emotion"])

    reference = Path("reference.csv")
    reference.write_text(
        "filename,path,emotion,confidence\n" + "".join(f"x,{p},{e},\n" for p, e in truth.items())
    )
    by_calibrated = evaluate(LABELS, str(reference), by=Score.CALIBRATED).at(cut)
    assert by_calibrated.kept == len(sure) and by_calibrated.accuracy == 1.0
    assert evaluate(LABELS, str(reference)).at(cut).kept == len(truth)  # all say 0.90

    wrong = next(p for p in truth if "confused" in p)
    Path("corrections.csv").write_text(f"path,old,new\n{wrong},surprise,happy\n")
    assert invoke("apply-corrections", "corrections.csv").exit_code == 0
    corrected = next(r for r in read_csv(LABELS) if r["path"] == wrong)
    assert (corrected["emotion"], corrected["calibrated"]) == ("happy", "1.0000")
