"""A provider written outside emotag: installed from test data, found through the
`emotag.providers` entry point, and used for a whole `tag` run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from emotag.emotions import EMOTIONS
from helpers import make_image, read_csv

PLUGIN = Path(__file__).parent / "data" / "plugin"


def emotag(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m emotag ARGS` in a process that has the plugin on its path."""
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "emotag", *args],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )


def install(site: Path) -> Path:
    """What `pip install --target SITE` leaves: the module and its dist-info."""
    shutil.copytree(PLUGIN, site)
    return site


def test_a_plugin_provider_labels_a_folder(tmp_path: Path) -> None:
    site = install(tmp_path / "site")
    truth = {
        str(make_image(tmp_path / "in" / f"img_{i}.png", EMOTIONS[i % 7], size=(40 + i, 40))): (
            EMOTIONS[i % 7]
        )
        for i in range(9)
    }
    result = emotag(site, "tag", str(tmp_path / "in"), "--provider", "palette", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["model"] == "palette-1" and summary["labelled"] == 9
    rows = read_csv(Path("dataset/llm_labels.csv"))
    assert {r["path"]: r["emotion"] for r in rows} == truth
    assert {r["model"] for r in rows} == {"palette-1"}
    again = emotag(site, "tag", str(tmp_path / "in"), "--provider", "palette", "--json")
    assert json.loads(again.stdout)["requests"] == 0  # resume works as for any provider
    helped = emotag(site, "tag", "--help")
    assert "palette" in helped.stdout


def test_without_the_plugin_the_name_is_unknown_and_the_choices_listed(tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "a.png")
    result = emotag(tmp_path / "empty", "tag", str(tmp_path / "in"), "--provider", "palette")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: Unknown provider 'palette'; choose one of: gemini, openai, local."
    )


def test_a_plugin_that_cannot_load_is_one_line(tmp_path: Path) -> None:
    site = install(tmp_path / "site")
    (site / "emotag_palette.py").write_text("raise ImportError('needs the palette SDK')\n")
    make_image(tmp_path / "in" / "a.png")
    result = emotag(site, "tag", str(tmp_path / "in"), "--provider", "palette")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "The provider 'palette' (emotag_palette:SPEC) cannot be loaded" in result.stderr
