"""Live, batch and dry-run follow one set of rules: the same labels, the same failures with
the same reasons, and a dry run's "to send" is what a re-run really sends."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from fakes.gemini_api import FakeGemini, Reply
from helpers import make_image, read_csv

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Normal faces, several faces, no face, a corrupt file, a byte copy, and a folder that
    cannot be listed (simulated at scandir: chmod does not stop root, and CI runs as root)."""
    root = tmp_path / "in"
    for i, emotion in enumerate(["happy", "sad", "angry", "neutral"]):
        make_image(root / f"face_{i}.png", emotion, size=(40 + i, 40))
    make_image(root / "group_1.png", "fear", size=(50, 40))
    make_image(root / "group_2.png", "fear", size=(51, 40))
    make_image(root / "wall.png", "white")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    shutil.copy(root / "face_0.png", root / "face_0_copy.png")
    make_image(root / "locked" / "hidden_face.png", "happy")
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return root


def outcome(labels: Path) -> tuple[dict[str, tuple[str, str]], set[frozenset[str]], dict[str, str]]:
    """Rows and failures by file name, and the copy links as unordered pairs: which of two
    identical files is sent first depends on read order in a live run."""
    rows = read_csv(labels)
    by_name = {Path(r["path"]).name: (r["emotion"], r["faces"]) for r in rows}
    links = {
        frozenset({Path(r["path"]).name, Path(r["duplicate_of"]).name})
        for r in rows
        if r["duplicate_of"]
    }
    errors = labels.with_name(f"{labels.stem}.errors.csv")
    reasons = {Path(r["path"]).name: r["reason"] for r in read_csv(errors)}
    return by_name, links, reasons


def test_live_batch_and_dry_run_agree_on_a_hostile_folder(
    gemini: FakeGemini, hostile: Path
) -> None:
    gemini.by_colour["fear"] = Reply(faces="several", emotion="fear")
    gemini.by_colour["white"] = Reply(faces="none", emotion="neutral")
    gemini.rejected_settings.add("mediaResolution")
    policy = ("--multi-face", "skip")

    planned = invoke("tag", str(hostile), *policy, "--dry-run", "--json")
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert (plan["found"], plan["to_send"], plan["duplicates"]) == (9, 7, 1)
    assert plan["unreadable"] == 2  # the corrupt file and the locked folder

    live = invoke("tag", str(hostile), *policy, "-o", "live/labels.csv", "--json")
    assert live.exit_code == 1, live.output
    assert json.loads(live.stdout)["requests"] == 7 + 1  # 7 images, 1 refused setting

    assert invoke("tag", str(hostile), *policy, "-o", "batch/labels.csv", "--batch").exit_code == 0
    assert invoke("batch", "wait", "-o", "batch/labels.csv", "--poll", "0.01").exit_code == 0
    assert invoke("batch", "fetch", "-o", "batch/labels.csv").exit_code == 1

    live_rows, live_links, live_reasons = outcome(Path("live/labels.csv"))
    batch_rows, batch_links, batch_reasons = outcome(Path("batch/labels.csv"))
    assert live_rows == batch_rows
    assert live_links == batch_links == {frozenset({"face_0.png", "face_0_copy.png"})}
    assert live_reasons == batch_reasons
    assert set(live_rows) == {
        "face_0.png",
        "face_0_copy.png",
        "face_1.png",
        "face_2.png",
        "face_3.png",
    }
    assert live_reasons["group_1.png"] == "several faces (--multi-face skip)"
    assert live_reasons["wall.png"] == "no face"
    assert live_reasons["broken.jpg"].startswith("unreadable image:")
    assert live_reasons["locked"].startswith("folder not readable: Permission denied")

    again = invoke("tag", str(hostile), *policy, "-o", "live/labels.csv", "--dry-run", "--json")
    to_send = json.loads(again.stdout)["to_send"]
    before = len(gemini.labelling_requests())
    rerun = invoke("tag", str(hostile), *policy, "-o", "live/labels.csv", "--json")
    assert json.loads(rerun.stdout)["requests"] == to_send == 2  # the two group photos
    assert len(gemini.labelling_requests()) - before == to_send
