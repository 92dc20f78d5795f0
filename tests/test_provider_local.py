"""The built-in offline model: the shipped example faces through the real CLI, no key and
no network; the default-provider rules; what a broken install says."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from emotag.cli import app
from emotag.providers.offline import weights
from fakes.gemini_api import TEST_KEY, FakeGemini
from helpers import make_image, read_csv

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "faces"
runner = CliRunner()


def run(*args: str) -> CliRunner.invoke:
    return runner.invoke(app, list(args))


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    """The shipped faces, plus mirrored and smaller copies (new bytes, the same people)."""
    root = tmp_path / "faces"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("*.md"))
    (root / "mirrored").mkdir()
    (root / "small").mkdir()
    for source in sorted(EXAMPLES.glob("*.[pj][np]g")):
        with Image.open(source) as image:
            ImageOps.mirror(image.convert("RGB")).save(root / "mirrored" / f"{source.stem}.png")
            small = image.convert("RGB").resize((image.width // 2, image.height // 2))
            small.save(root / "small" / f"{source.stem}.jpg", quality=90)
    return root


@pytest.fixture
def no_faces(tmp_path: Path) -> Path:
    """Pictures with no face in them: flat colour, a gradient, noise."""
    root = tmp_path / "empty"
    make_image(root / "flat.png", size=(200, 150))
    Image.linear_gradient("L").resize((300, 200)).save(root / "gradient.png")
    Image.effect_noise((256, 256), 60).save(root / "noise.png")
    return root


def test_the_example_faces_are_labelled_with_no_key_and_the_default_is_said(
    faces: Path, fake: FakeGemini
) -> None:
    result = run("tag", str(faces))
    assert result.exit_code == 0, result.output
    assert result.stderr.count("Note:") == 1
    note = " ".join(result.stderr.split())
    assert "no AI_STUDIO_API_KEY found" in note and "--provider gemini" in note
    rows = {
        Path(row["path"]).relative_to(faces).as_posix(): row
        for row in read_csv(Path("dataset/llm_labels.csv"))
    }
    assert len(rows) == 9
    for name in ("astronaut.png", "mirrored/astronaut.png", "small/astronaut.jpg"):
        assert rows[name]["emotion"] == "happy"
        assert float(rows[name]["confidence"]) > 0.9
    for row in rows.values():
        assert row["model"] == weights.MODEL_NAME and row["model"].startswith("local-")
        assert row["confidence_source"] == "softmax" and 0 < float(row["confidence"]) <= 1
        assert row["faces"] == "1"
    assert fake.count == 0  # nothing went anywhere


def test_pictures_without_a_face_are_no_face_failures(no_faces: Path) -> None:
    (no_faces / "broken.png").write_bytes(b"not an image at all")
    result = run("tag", str(no_faces), "--provider", "local")
    assert result.exit_code == 1, result.output
    reasons = {
        Path(r["path"]).name: r["reason"] for r in read_csv(Path("dataset/llm_labels.errors.csv"))
    }
    assert reasons.pop("broken.png").startswith("unreadable image")
    assert reasons == {"flat.png": "no face", "gradient.png": "no face", "noise.png": "no face"}
    assert not read_csv(Path("dataset/llm_labels.csv"))


def test_a_rerun_resumes_and_a_key_later_relabels_with_one_row_per_image(
    faces: Path, gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AI_STUDIO_API_KEY")
    monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL")
    assert run("tag", str(faces)).exit_code == 0
    again = run("tag", str(faces), "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["skipped"] == 9

    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini.url)
    monkeypatch.setenv("AI_STUDIO_API_KEY", TEST_KEY)
    result = run("tag", str(faces))
    assert result.exit_code == 0, result.output
    assert "Note:" not in result.stderr  # a key was found: Gemini, as before
    rows = read_csv(Path("dataset/llm_labels.csv"))
    assert len(rows) == 9 and gemini.count == 9
    assert {row["model"] for row in rows} == {"gemini-3.5-flash-lite"}


def test_an_explicit_provider_without_its_key_still_stops_and_sends_nothing(
    faces: Path, fake: FakeGemini
) -> None:
    result = run("tag", str(faces), "--provider", "gemini")
    assert result.exit_code == 2
    assert "No API key found" in result.stderr
    assert not Path("dataset/llm_labels.csv").exists()


def test_a_model_named_for_a_paid_provider_asks_for_its_key(
    faces: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMOTAG_MODEL", "gemini-3.8-flash")
    result = run("tag", str(faces))
    assert result.exit_code == 2
    assert "No API key found" in result.stderr and "Note:" not in result.stderr


def test_an_openai_compatible_base_url_is_chosen_before_the_local_model(
    faces: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "https://llm.example/v1")
    result = run("tag", str(faces), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert "offline model" not in result.stderr
    # A non-default endpoint is named, once.
    assert result.stderr.count("requests go to llm.example (from OPENAI_BASE_URL)") == 1
    assert json.loads(result.stdout)["price"]["model"] == "gpt-4.1-mini"


def test_votes_ask_once_dry_run_is_free_and_batch_is_refused(faces: Path) -> None:
    voted = run("tag", str(faces / "small"), "--provider", "local", "--votes", "3", "--json")
    assert voted.exit_code == 0, voted.output
    assert "gives the same answer every time: --votes 3 asks it once" in " ".join(
        voted.stderr.split()
    )
    summary = json.loads(voted.stdout)
    assert summary["votes"] == 1 and summary["requests"] == 3
    assert {row["votes"] for row in read_csv(Path("dataset/llm_labels.csv"))} == {""}

    dry = run("tag", str(faces), "--provider", "local", "--dry-run", "--json", "-o", "other.csv")
    assert dry.exit_code == 0, dry.output
    estimate = json.loads(dry.stdout)
    assert estimate["to_send"] == 9 and estimate["estimated_cost_usd"] == 0

    batch = run("tag", str(faces), "--provider", "local", "--batch")
    assert batch.exit_code == 2
    assert batch.stderr.strip() == (
        "Error: The local provider has no batch API; label interactively (leave out --batch)."
    )


def test_another_model_name_or_a_base_url_is_refused(faces: Path) -> None:
    named = run("tag", str(faces), "--provider", "local", "--model", "gpt-4o")
    assert named.exit_code == 2 and "has one model" in named.stderr
    moved = run("tag", str(faces), "--provider", "local", "--base-url", "http://127.0.0.1:9")
    assert moved.exit_code == 2 and "takes no --base-url" in moved.stderr
    assert not Path("dataset/llm_labels.csv").exists()


def test_the_shipped_files_are_the_pinned_ones_and_small() -> None:
    total = 0
    for name, digest in weights.SHA256.items():
        data = (weights.MODELS / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        total += len(data)
    assert total < 3_000_000
    notice = (weights.MODELS / "NOTICE").read_text(encoding="utf-8")
    for words in ("MIT License", "Apache License", "Justin Shenk", "Patrick Levin", "Octavio"):
        assert words in notice
    # The version in the model column is derived from the pins: new weights, a new name.
    assert weights.VERSION in weights.MODEL_NAME


@pytest.fixture
def fresh_sessions() -> object:
    weights.session.cache_clear()
    yield
    weights.session.cache_clear()


def test_a_damaged_model_file_is_one_line_and_exit_2(
    faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_sessions: object
) -> None:
    damaged = tmp_path / "models"
    shutil.copytree(weights.MODELS, damaged)
    data = bytearray((damaged / "face_short.onnx").read_bytes())
    data[-1] ^= 0xFF
    (damaged / "face_short.onnx").write_bytes(bytes(data))
    monkeypatch.setattr(weights, "MODELS", damaged)
    result = run("tag", str(faces), "--provider", "local")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "face_short.onnx is not the one emotag ships" in line and "reinstall" in line
    assert not read_csv(Path("dataset/llm_labels.csv"))


def test_no_onnxruntime_is_one_line_and_exit_2(
    faces: Path, monkeypatch: pytest.MonkeyPatch, fresh_sessions: object
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    result = run("tag", str(faces), "--provider", "local")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "needs onnxruntime" in line and "pip install onnxruntime" in line


def test_the_key_commands_say_the_local_model_needs_none() -> None:
    result = run("key", "set", "--provider", "local")
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: The local provider needs no key."


def test_everything_that_reads_a_labels_csv_reads_the_local_models(
    faces: Path, tmp_path: Path
) -> None:
    """report, audit sample, export, eval, rename, merge and --retry-failed on the CSV the
    offline model wrote, as on any other."""
    make_image(faces / "flat.png", size=(90, 70))  # no face: one errors-CSV row
    assert run("tag", str(faces)).exit_code == 1
    assert run("tag", str(faces), "--retry-failed").exit_code == 1  # asked again: no face
    for command in (
        ["report", "-o", "r.html"],
        ["audit", "sample", "-o", "audit"],
        ["export", "-f", "folders", "-o", "out"],
        ["eval", "--truth", "dataset/llm_labels.csv"],
    ):
        result = run(*command)
        assert result.exit_code == 0, (command, result.output)
    assert len(list(Path("out").rglob("*.*"))) == 9
    rows = read_csv(Path("dataset/llm_labels.csv"))
    with open("landmarks.csv", "w", encoding="utf-8") as handle:
        handle.write("path,x\n" + "".join(f"{row['path']},1\n" for row in rows))
    assert run("merge", "landmarks.csv").exit_code == 0
    assert {r["emotion"] for r in read_csv(Path("landmarks_labelled.csv"))} == {
        row["emotion"] for row in rows
    }
    renamed = run("rename", "--from-csv", "dataset/llm_labels.csv", "--yes")
    assert renamed.exit_code == 0, renamed.output
    assert (faces / "astronaut_happy.png").exists()
