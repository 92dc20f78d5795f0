"""Help that reads in a normal terminal: 80 columns, grouped, each default shown once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COMMANDS = [
    [],
    ["tag"],
    ["rename"],
    ["merge"],
    ["dupes"],
    ["report"],
    ["eval"],
    ["apply-corrections"],
    ["export"],
    ["audit", "sample"],
    ["audit", "score"],
    ["batch", "status"],
    ["batch", "wait"],
    ["batch", "fetch"],
    ["batch", "cancel"],
    ["key", "set"],
    ["key", "status"],
    ["key", "delete"],
]


def help_text(*command: str) -> str:
    """`emotag COMMAND --help` as a user's 80-column terminal shows it."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "emotag", *command, "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_tag_help_fits_100_lines_of_80_columns_in_panels() -> None:
    text = help_text("tag")
    lines = text.splitlines()
    assert len(lines) <= 100, len(lines)
    assert max(len(line) for line in lines) <= 80
    for panel in ("Output", "Model and provider", "Limits", "What to label", "Batch mode"):
        assert f"─ {panel} ─" in text
    assert text.count("[default: 384]") == 1 and text.count("[default: 600.0]") == 1


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "emotag")
def test_no_flag_shows_a_value_it_does_not_take(command: list[str]) -> None:
    text = help_text(*command)
    assert "<bool>" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_the_top_level_help_and_the_package_name_both_providers() -> None:
    from importlib.metadata import metadata

    text = " ".join(help_text().split())
    assert "Gemini" in text and "OpenAI-compatible" in text
    summary = metadata("emotag")["Summary"]
    assert "Gemini" in summary and "OpenAI-compatible" in summary
