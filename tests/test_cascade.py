"""`tag --cascade P` end to end: the offline model settles what it is sure of, and only
the rest reaches the (loopback fake) paid provider, live, dry-run and in batch mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from emotag.cli import app
from emotag.providers.offline import MODEL_NAME
from emotag.records import Label
from emotag.run.cascade import Cascade
from fakes.gemini_api import FakeGemini
from helpers import make_image, read_csv

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "faces"
LABELS = Path("dataset/llm_labels.csv")
PAID = "gemini-3.5-flash-lite"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The example faces and their mirror images (offline probabilities: astronaut 0.997,
    grace_hopper 0.913, camera 0.538), and three flat pictures with no face."""
    root = tmp_path / "mixed"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("*.md"))
    for source in EXAMPLES.glob("*.[pj][np]g"):
        with Image.open(source) as image:
            ImageOps.mirror(image.convert("RGB")).save(root / f"mirrored_{source.stem}.png")
    for emotion in ("happy", "sad", "angry"):
        make_image(root / "flat" / f"{emotion}.png", emotion, size=(90, 70))
    return root


def by_name(path: Path) -> dict[str, dict[str, str]]:
    return {Path(row["path"]).name: row for row in read_csv(path)}


def test_only_the_doubtful_images_are_paid_for_and_both_opinions_kept(
    gemini: FakeGemini, folder: Path
) -> None:
    result = invoke("tag", str(folder), "--cascade", "0.9", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # astronaut, grace_hopper and their mirror images are settled; the cameraman (0.54),
    # his mirror image and the three faceless pictures are sent.
    assert summary["settled_locally"] == 4 and summary["requests"] == 5 == gemini.count
    assert summary["labelled"] == 9
    assert summary["cost_all_paid_usd"] > summary["cost_usd"] > 0
    rows = by_name(LABELS)
    for name in ("astronaut.png", "mirrored_astronaut.png", "grace_hopper.jpg"):
        row = rows[name]
        assert row["model"] == MODEL_NAME and row["confidence_source"] == "softmax"
        assert (row["local_emotion"], row["local_confidence"]) == (
            row["emotion"],
            row["confidence"],
        )
    camera = rows["camera.png"]
    assert camera["model"] == PAID
    assert (camera["local_emotion"], camera["local_confidence"]) == ("sad", "0.5384")
    for name in ("happy.png", "sad.png", "angry.png"):  # no face for the offline model
        assert rows[name]["model"] == PAID and rows[name]["emotion"] == name.removesuffix(".png")
        assert rows[name]["local_emotion"] == rows[name]["local_confidence"] == ""
    assert "raw probability, which no audit has calibrated" in " ".join(result.stderr.split())


def test_the_dry_run_predicts_the_runs_split_and_cost(
    gemini: FakeGemini, folder: Path, tmp_path: Path
) -> None:
    dry = invoke("tag", str(folder), "--cascade", "0.9", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    estimate = json.loads(dry.stdout)
    assert gemini.count == 0 and not LABELS.exists()
    run = json.loads(invoke("tag", str(folder), "--cascade", "0.9", "--json").stdout)
    assert (estimate["settled_locally"], estimate["to_send"]) == (run["settled_locally"], 5)
    assert estimate["to_send"] == run["requests"]
    # The predicted cost is that of exactly the images the run sent, and the all-paid one
    # that of every image: the same as dry runs without the cascade on those folders.
    sent = tmp_path / "sent"
    sent.mkdir()
    for row in read_csv(LABELS):
        if row["model"] == PAID:
            shutil.copy(row["path"], sent / Path(row["path"]).name)
    only_sent = json.loads(invoke("tag", str(sent), "--dry-run", "--json", "-o", "x.csv").stdout)
    every = json.loads(invoke("tag", str(folder), "--dry-run", "--json", "-o", "y.csv").stdout)
    assert estimate["estimated_cost_usd"] == pytest.approx(only_sent["estimated_cost_usd"])
    assert estimate["estimated_cost_all_paid_usd"] == pytest.approx(every["estimated_cost_usd"])
    assert estimate["estimated_cost_all_paid_usd"] > estimate["estimated_cost_usd"]


def test_a_rerun_pays_nothing_and_a_higher_bar_sends_what_no_longer_clears_it(
    gemini: FakeGemini, folder: Path
) -> None:
    assert invoke("tag", str(folder), "--cascade", "0.9").exit_code == 0
    again = json.loads(invoke("tag", str(folder), "--cascade", "0.9", "--json").stdout)
    assert again["skipped"] == 9 and again["requests"] == 0 and gemini.count == 5
    higher = json.loads(invoke("tag", str(folder), "--cascade", "0.95", "--json").stdout)
    # grace_hopper (0.913) and its mirror image no longer clear the bar: now they are paid.
    assert higher["requests"] == 2 and higher["settled_locally"] == 0
    rows = by_name(LABELS)
    assert len(rows) == 9 and rows["grace_hopper.jpg"]["model"] == PAID
    assert rows["grace_hopper.jpg"]["local_emotion"] == "neutral"
    plain = json.loads(invoke("tag", str(folder), "--json").stdout)  # no cascade: all paid
    assert plain["requests"] == 2 and {r["model"] for r in by_name(LABELS).values()} == {PAID}


def test_settled_rows_are_kept_when_the_paid_provider_stops_the_run(
    gemini: FakeGemini, folder: Path
) -> None:
    gemini.api_key = "another-key"  # every paid request: 400 API_KEY_INVALID
    result = invoke("tag", str(folder), "--cascade", "0.9")
    assert result.exit_code == 2
    rows = by_name(LABELS)
    assert len(rows) == 4 and {r["model"] for r in rows.values()} == {MODEL_NAME}


def test_votes_apply_to_the_paid_stage_only(gemini: FakeGemini, folder: Path) -> None:
    result = json.loads(
        invoke("tag", str(folder), "--cascade", "0.9", "--votes", "3", "--json").stdout
    )
    assert result["settled_locally"] == 4 and result["answers"] == 15
    rows = by_name(LABELS)
    assert rows["camera.png"]["votes"] and not rows["astronaut.png"]["votes"]


def test_batch_jobs_hold_only_the_doubtful_images(gemini: FakeGemini, folder: Path) -> None:
    submitted = invoke("tag", str(folder), "--cascade", "0.9", "--batch", "--json")
    assert submitted.exit_code == 0, submitted.output
    report = json.loads(submitted.stdout)
    assert (report["settled_locally"], report["requests"], report["jobs"]) == (4, 5, 1)
    assert len(read_csv(LABELS)) == 4  # the settled rows, written at submission
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    fetched = invoke("batch", "fetch", "--json")
    assert fetched.exit_code == 0, fetched.output
    rows = by_name(LABELS)
    assert len(rows) == 9
    assert sum(r["model"] == PAID for r in rows.values()) == 5
    # Both opinions kept, as a live run keeps them, and nothing left beside the CSV.
    camera = rows["camera.png"]
    assert camera["model"] == PAID
    assert (camera["local_emotion"], camera["local_confidence"]) == ("sad", "0.5384")
    assert rows["happy.png"]["local_emotion"] == rows["happy.png"]["local_confidence"] == ""
    assert not LABELS.with_name("llm_labels.batch").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--cascade", "0"], "above 0 and at most 1"),
        (["--cascade", "1.5"], "above 0 and at most 1"),
        (["--cascade", "0.9", "--provider", "local"], "the local provider is not one"),
    ],
    ids=["zero", "above-one", "local-provider"],
)
def test_a_cascade_that_cannot_work_is_refused_before_any_work(
    gemini: FakeGemini, folder: Path, args: list[str], words: str
) -> None:
    result = invoke("tag", str(folder), *args)
    assert result.exit_code == 2
    assert words in " ".join(result.stderr.split())
    assert gemini.count == 0 and not LABELS.exists()


def test_the_bar_is_the_calibrated_probability_where_an_audit_mapped_the_offline_model() -> None:
    sure = Label("a.png", "happy", 0.95, "softmax", MODEL_NAME, "1")
    raw = Cascade(0.9)
    assert raw.settles(sure) and not raw.calibrated
    # An audit found the offline model right 70% of the time at 0.95: the bar is not met.
    audited = Cascade(0.9, calibrate=lambda label: 0.7 if label.model == MODEL_NAME else None)
    assert audited.calibrated and not audited.settles(sure)
    # Several faces, another model, or no probability never settle.
    assert not raw.settles(Label("a.png", "happy", 0.99, "softmax", MODEL_NAME, "2+"))
    assert not raw.settles(Label("a.png", "happy", 0.99, "logprobs", PAID, "1"))
    assert not raw.settles(Label("a.png", "happy", None, "", MODEL_NAME, "1"))
    assert Cascade(0.95).settles(sure)  # at least P: the bar itself clears it


def test_the_offline_opinion_is_a_row_of_its_own_with_the_images_hash() -> None:
    jpeg = (EXAMPLES / "grace_hopper.jpg").read_bytes()
    label = Cascade(0.5).opinion("/in/grace.jpg", "d1g35t", jpeg)
    assert label is not None and (label.path, label.sha256) == ("/in/grace.jpg", "d1g35t")
    assert (label.model, label.faces) == (MODEL_NAME, "1")
    assert (label.local_emotion, label.local_confidence) == (label.emotion, label.confidence)


def test_eval_compares_the_two_stages_and_the_audit_oversamples_their_disagreements(
    gemini: FakeGemini, folder: Path
) -> None:
    assert invoke("tag", str(folder), "--cascade", "0.9").exit_code == 0
    both = invoke("eval", str(LABELS), "--truth", "final", "--stage", "local", "--json")
    assert both.exit_code == 0, both.output
    report = json.loads(both.stdout)
    # Only the cameraman and his mirror image went to both models; the settled rows and
    # the faceless pictures are left out.
    assert report["n"] == 2 and report["without_reference"] == 7
    rows = read_csv(LABELS)
    disagree = sum(r["local_emotion"] not in ("", r["emotion"]) for r in rows)
    assert disagree >= 1
    sample = invoke("audit", "sample", str(LABELS), "-n", "6", "--json")
    assert sample.exit_code == 0, sample.output
    strata = json.loads(sample.stdout)["strata"]
    apart = {name: s for name, s in strata.items() if name.endswith("|disagree")}
    # The disagreements are strata of their own, each with its floor in a small sample.
    assert sum(s["rows"] for s in apart.values()) == disagree
    assert apart and all(s["drawn"] >= 1 for s in apart.values())


def test_after_an_audit_the_bar_is_the_offline_models_calibrated_probability(
    gemini: FakeGemini, folder: Path
) -> None:
    """The loop of docs/audit.md: cascade, audit a sample, score, run again. Here the
    person found the offline model wrong on every row it settled, so its calibrated
    probability falls below the bar and the next run sends those images after all."""
    assert invoke("tag", str(folder), "--cascade", "0.9").exit_code == 0
    assert invoke("audit", "sample", str(LABELS), "-n", "9", "-o", "audit").exit_code == 0
    rows = by_name(LABELS)
    with open("audit/truth.csv", "w", encoding="utf-8", newline="") as handle:
        handle.write("path,truth\n")
        for row in rows.values():
            wrong = "angry" if row["emotion"] != "angry" else "sad"
            handle.write(
                f"{row['path']},{wrong if row['model'] == MODEL_NAME else row['emotion']}\n"
            )
    scored = invoke("audit", "score", str(LABELS), "--truth", "audit/truth.csv", "--json")
    assert scored.exit_code == 0, scored.output
    calibrated = {name: float(r["calibrated"]) for name, r in by_name(LABELS).items()}
    assert max(calibrated[n] for n, r in rows.items() if r["model"] == MODEL_NAME) < 0.5
    assert min(calibrated[n] for n, r in rows.items() if r["model"] == PAID) > 0.5
    again = invoke("tag", str(folder), "--cascade", "0.9", "--json")
    assert again.exit_code == 0, again.output
    assert "no audit has calibrated" not in again.stderr
    summary = json.loads(again.stdout)
    assert summary["settled_locally"] == 0 and summary["requests"] == 4 and gemini.count == 9
