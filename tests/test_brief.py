"""The commands exactly as the project's brief spells them, and the one rule for naming a
labels CSV: these spellings are a contract, never aliases to clean up."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from emotag.files.roots import roots_path
from fakes.gemini_api import FakeGemini
from helpers import make_image, read_csv

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def tagged(gemini: FakeGemini) -> Path:
    """`emotag tag dataset/random_expressions`, as the brief spells it."""
    root = Path("dataset/random_expressions")
    for i, emotion in enumerate(EMOTIONS):
        make_image(root / f"male_young_asian_{i}.png", emotion, size=(40 + i, 30))
    result = invoke("tag", "dataset/random_expressions")
    assert result.exit_code == 0, result.output
    assert len(read_csv(LABELS)) == 7
    return root


def test_the_brief_renames_from_the_csv_and_merges_into_landmarks(tagged: Path) -> None:
    renamed = invoke("rename", "--from-csv", "dataset/llm_labels.csv", "--yes")
    assert renamed.exit_code == 0, renamed.output
    names = sorted(path.name for path in tagged.iterdir())
    assert names == sorted(f"male_young_asian_{i}_{e}.png" for i, e in enumerate(EMOTIONS))
    with open("landmarks.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "x0", "y0"])
        for path in sorted(tagged.iterdir()):
            writer.writerow([str(path.resolve()), "0.1", "0.2"])
    merged = invoke("merge", "landmarks.csv")
    assert merged.exit_code == 0, merged.output
    rows = read_csv(Path("landmarks_labelled.csv"))
    assert [row["emotion"] for row in rows] == [
        name.rsplit("_", 1)[1].removesuffix(".png") for name in sorted(names)
    ]


@pytest.mark.parametrize(
    ("command", "shows"),
    [
        (["report", "-o", "r.html"], "7 labels"),
        (["audit", "sample", "-o", "audit"], "Drew 7 of 7 labels"),
        (["export", "-o", "out", "-f", "folders"], "7"),
        (["eval", "--truth", "{csv}"], "7"),
        (["rename", "--dry-run"], "7 rename"),
    ],
    ids=lambda c: " ".join(c[:2]) if isinstance(c, list) else None,
)
@pytest.mark.parametrize("spelling", ["argument", "-l", "--labels", "default"])
def test_every_command_reading_the_labels_csv_takes_it_the_same_ways(
    tagged: Path, tmp_path: Path, command: list[str], shows: str, spelling: str
) -> None:
    """The CSV is the first argument, or -l/--labels, or the default; elsewhere than the
    default, the default is removed, so a command that ignored the name would fail."""
    csv_path = LABELS
    if spelling != "default":
        csv_path = tmp_path / "elsewhere.csv"
        LABELS.rename(csv_path)
        roots_path(LABELS).rename(roots_path(csv_path))  # the folders it labels go with it
    named = {"argument": [str(csv_path)], "-l": ["-l", str(csv_path)]}
    named["--labels"] = ["--labels", str(csv_path)]
    words = command[:2] if command[0] == "audit" else command[:1]
    rest = [part.replace("{csv}", str(csv_path)) for part in command[len(words) :]]
    result = invoke(*words, *named.get(spelling, []), *rest)
    assert result.exit_code == 0, result.output
    assert shows in " ".join(result.stdout.split())


def test_two_different_labels_csvs_are_refused(tagged: Path) -> None:
    result = invoke("report", "dataset/llm_labels.csv", "-l", "other.csv")
    assert result.exit_code == 2
    assert "two labels CSVs given" in result.output


def test_the_help_lists_the_briefs_spelling() -> None:
    result = invoke("rename", "--help")
    assert "--from-csv" in result.output
