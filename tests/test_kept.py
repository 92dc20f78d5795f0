"""The JSON files emotag keeps beside a labels CSV may be hand-edited, cut short or from
another version: each is read into one line naming it, or refused, never a traceback
and never a word outside the seven written to a row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.errors import InputError
from emotag.quality.calibration import load_calibrator, map_path
from emotag.run.batch import Job, load_state, state_path

NOT_AN_OBJECT = ["", "{", "3", "[1, 2]", '"text"', "null"]


@pytest.mark.parametrize("content", [*NOT_AN_OBJECT, "{}", '{"jobs": 3}', '{"jobs": [3]}'])
def test_a_damaged_batch_state_is_one_line_from_the_command(tmp_path: Path, content: str) -> None:
    labels = tmp_path / "labels.csv"
    state_path(labels).write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, ["batch", "status", "-o", str(labels)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: Cannot read the batch state ") and "Traceback" not in line


@pytest.mark.parametrize(
    "content", [*NOT_AN_OBJECT, "{}", '{"models": 3}', '{"models": [], "precision": 3}']
)
def test_a_damaged_calibration_map_is_refused_in_one_line(tmp_path: Path, content: str) -> None:
    labels = tmp_path / "labels.csv"
    map_path(labels).write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=r"^Cannot read the calibration map ") as caught:
        load_calibrator(labels)
    assert "\n" not in str(caught.value)


def job_with(tmp_path: Path, keys: str, opinions: str | None = None) -> Job:
    job = Job("emotag-1", str(tmp_path / "job-1.keys.json"))
    Path(job.keys_path).write_text(keys, encoding="utf-8")
    if opinions is not None:
        Path(job.opinions_path).write_text(opinions, encoding="utf-8")
    return job


@pytest.mark.parametrize("keys", [*NOT_AN_OBJECT, '{"k": "/a.png"}', '{"k": [3]}'])
def test_a_damaged_keys_file_is_refused(tmp_path: Path, keys: str) -> None:
    with pytest.raises(InputError, match=r"^Cannot read the batch job's keys "):
        job_with(tmp_path, keys).keys()


@pytest.mark.parametrize(
    "opinions",
    [
        *NOT_AN_OBJECT,
        '{"d": "ha"}',
        '{"d": ["bored", 0.5]}',
        '{"d": ["sad", "x"]}',
        '{"d": ["sad", 5]}',
        '{"d": ["sad", NaN]}',
    ],
)
def test_damaged_opinions_are_refused_never_written_as_a_label(
    tmp_path: Path, opinions: str
) -> None:
    """'ha' would unpack into the label 'h' and the confidence 'a'."""
    with pytest.raises(InputError, match=r"^Cannot read the batch job's offline opinions "):
        job_with(tmp_path, "{}", opinions).opinions()


def test_sound_files_read_back_as_written(tmp_path: Path) -> None:
    job = job_with(
        tmp_path, '{"k": ["/a.png", "/b.png"]}', '{"d": ["sad", 0.25], "e": ["fear", null]}'
    )
    assert job.keys() == {"k": ["/a.png", "/b.png"]}
    assert job.opinions() == {"d": ("sad", 0.25), "e": ("fear", None)}
    (tmp_path / "old").mkdir()
    assert job_with(tmp_path / "old", "{}").opinions() == {}  # a job from before the cascade
    labels = tmp_path / "labels.csv"
    state = {"model": "m", "prompt_sha": "s", "jobs": [{"display_name": "j", "keys_path": "k"}]}
    state_path(labels).write_text(json.dumps(state), encoding="utf-8")
    loaded = load_state(labels)
    assert loaded is not None and loaded.jobs == [Job("j", "k")] and loaded.model == "m"
    assert load_state(tmp_path / "none.csv") is None and load_calibrator(labels) is None
