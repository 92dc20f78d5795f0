"""Dataset hygiene: faces counted in the same request, exact and near duplicates."""

from __future__ import annotations

import io
import json
import random
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFilter
from typer.testing import CliRunner

from emotag.cli import app
from emotag.datasets.dupes import dhash, find_near_duplicates
from emotag.emotions import EMOTIONS
from emotag.files.csvfiles import LABEL_COLUMNS
from fakes.gemini_api import FakeGemini, Reply
from helpers import make_image, read_csv

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")
ERRORS = Path("dataset/llm_labels.errors.csv")


def test_the_request_asks_for_faces_before_the_emotion(gemini: FakeGemini, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "a.png")
    assert runner.invoke(app, ["tag", str(tmp_path / "in")]).exit_code == 0
    schema = gemini.seen[0].body["generationConfig"]["responseJsonSchema"]
    assert schema["required"] == ["faces", "emotion"]
    assert schema["propertyOrdering"] == ["faces", "emotion"]
    assert schema["properties"]["faces"]["enum"] == ["none", "one", "several"]
    prompt = gemini.seen[0].body["contents"][0]["parts"][1]["text"]
    assert "most prominent" in prompt and "none, one or several" in prompt


def test_no_face_images_go_to_the_errors_csv(gemini: FakeGemini, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "face.png", "happy")
    make_image(tmp_path / "in" / "landscape.png", "cyan")
    gemini.by_colour["cyan"] = Reply(faces="none", emotion="neutral")
    result = runner.invoke(app, ["tag", str(tmp_path / "in"), "--json"])
    assert result.exit_code == 1
    assert [r["filename"] for r in read_csv(LABELS)] == ["face.png"]
    assert [(Path(r["path"]).name, r["reason"]) for r in read_csv(ERRORS)] == [
        ("landscape.png", "no face")
    ]
    assert json.loads(result.stdout)["failures"] == {"no face": 1}


def test_several_faces_are_labelled_and_marked_or_skipped(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    make_image(tmp_path / "in" / "one.png", "sad")
    make_image(tmp_path / "in" / "crowd.png", "cyan")
    gemini.by_colour["cyan"] = Reply(faces="several", emotion="happy")
    assert runner.invoke(app, ["tag", str(tmp_path / "in")]).exit_code == 0
    faces = {r["filename"]: (r["emotion"], r["faces"]) for r in read_csv(LABELS)}
    assert faces == {"one.png": ("sad", "1"), "crowd.png": ("happy", "2+")}
    other = Path("skip.csv")
    result = runner.invoke(
        app, ["tag", str(tmp_path / "in"), "-o", str(other), "--multi-face", "skip"]
    )
    assert result.exit_code == 1
    assert [r["filename"] for r in read_csv(other)] == ["one.png"]
    assert read_csv(Path("skip.errors.csv"))[0]["reason"] == "several faces (--multi-face skip)"


def test_ten_images_and_ten_copies_cost_ten_requests_and_moving_costs_none(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    for i in range(10):
        original = make_image(root / "a" / f"img{i}.png", EMOTIONS[i % 7], size=(20 + i, 20))
        (root / "b" / "deep").mkdir(parents=True, exist_ok=True)
        shutil.copy(original, root / "b" / "deep" / f"copy_of_{i}.png")
    dry = runner.invoke(app, ["tag", str(root), "--dry-run", "--json"])
    assert json.loads(dry.stdout)["duplicates"] == 10
    assert runner.invoke(app, ["tag", str(root)]).exit_code == 0
    rows = read_csv(LABELS)
    assert len(rows) == 20 and gemini.count == 10
    by_name = {r["filename"]: r for r in rows}
    for i in range(10):
        pair = {by_name[f"img{i}.png"]["path"], by_name[f"copy_of_{i}.png"]["path"]}
        sent = [r for r in rows if r["path"] in pair and not r["duplicate_of"]]
        copies = [r for r in rows if r["path"] in pair and r["duplicate_of"]]
        # Whichever of the two was read first is sent; the other names it.
        assert len(sent) == len(copies) == 1
        assert copies[0]["duplicate_of"] == sent[0]["path"]
        assert copies[0]["emotion"] == sent[0]["emotion"] == EMOTIONS[i % 7]
    moved = tmp_path / "elsewhere"
    root.rename(moved)
    assert runner.invoke(app, ["tag", str(moved)]).exit_code == 0
    assert gemini.count == 10


def test_old_csv_without_faces_column_is_upgraded_in_place(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    make_image(tmp_path / "in" / "new.png", "fear")
    LABELS.parent.mkdir()
    LABELS.write_text("filename,path,emotion,confidence\r\nold.png,/x/old.png,sad,\r\n")
    assert runner.invoke(app, ["tag", str(tmp_path / "in")]).exit_code == 0
    header = LABELS.read_text().splitlines()[0]
    assert header == ",".join(LABEL_COLUMNS)
    assert {r["filename"]: r["emotion"] for r in read_csv(LABELS)} == {
        "old.png": "sad",
        "new.png": "fear",
    }


def photo(seed: int, size: tuple[int, int] = (400, 300)) -> Image.Image:
    """A picture with structure (flat colours all hash alike)."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        r = rng.randrange(20, 120)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
    return img.filter(ImageFilter.GaussianBlur(2))


def test_near_duplicates_group_resized_and_reencoded_copies(tmp_path: Path) -> None:
    original = photo(1)
    original.save(tmp_path / "a.png")
    original.resize((200, 150)).save(tmp_path / "a_small.png")
    buffer = io.BytesIO()
    original.save(buffer, "JPEG", quality=40)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a_lowq.jpg").write_bytes(buffer.getvalue())
    for seed in range(2, 8):
        photo(seed).save(tmp_path / f"other{seed}.png")
    (tmp_path / "broken.png").write_bytes(b"nope")
    result = runner.invoke(app, ["dupes", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["hashed"] == 9
    groups = [sorted(Path(item["path"]).name for item in group) for group in report["groups"]]
    assert groups == [["a.png", "a_lowq.jpg", "a_small.png"]]
    assert "broken.png" in result.stderr


def test_dhash_distance_separates_different_pictures() -> None:
    def h(img: Image.Image) -> int:
        buffer = io.BytesIO()
        img.save(buffer, "PNG")
        return dhash(buffer.getvalue())

    distances = [(h(photo(1)) ^ h(photo(seed))).bit_count() for seed in range(2, 12)]
    assert min(distances) > 7


def test_find_near_duplicates_rejects_distances_it_cannot_index() -> None:
    with pytest.raises(ValueError, match=r"0\.\.7"):
        find_near_duplicates([], 8)


def test_no_face_answers_are_not_paid_for_twice(gemini: FakeGemini, tmp_path: Path) -> None:
    root = tmp_path / "in"
    make_image(root / "face.png", "happy")
    make_image(root / "wall.png", "cyan")
    shutil.copy(root / "wall.png", root / "wall_copy.png")
    gemini.by_colour["cyan"] = Reply(faces="none", emotion="neutral")
    assert runner.invoke(app, ["tag", str(root)]).exit_code == 1
    assert gemini.count == 2  # face.png and one of the two identical walls
    again = runner.invoke(app, ["tag", str(root), "--json"])
    assert again.exit_code == 1 and gemini.count == 2
    assert json.loads(again.stdout)["failures"] == {"no face": 2}
    reasons = {Path(r["path"]).name: r["reason"] for r in read_csv(ERRORS)}
    assert reasons == {"wall.png": "no face", "wall_copy.png": "no face"}
    assert runner.invoke(app, ["tag", str(root), "--force"]).exit_code == 1
    assert gemini.count == 4  # --force asks again (face.png and one wall)
