"""The live progress at the widths people's terminals have."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from emotag.cli.console import ProgressView
from emotag.run.recorder import Event


@pytest.mark.parametrize("width", [80, 100, 120])
@pytest.mark.parametrize("total", [600, 40_000, 1_250_000])
def test_done_total_rate_and_eta_stay_whole_and_the_counts_fit(width: int, total: int) -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=width, force_terminal=True, color_system=None)
    view = ProgressView(console, enabled=True)
    view(Event("found", "x", count=total))
    labels = ["happy", "surprise", "angry", "disgust", "fear", "neutral", "sad", "failed"]
    done = total // 3
    view.counts.update({label: done // 8 - i for i, label in enumerate(labels)})
    view(Event("labelled", "a.png", "happy"))  # counted, as a run counts
    view._progress.update(view._task, completed=done, rate="1234.5 img/s", counts=view._counted())
    console.print(view._progress.get_renderable())
    first, second, *_ = screen.getvalue().splitlines()
    assert len(first) <= width and len(second) <= width
    words = first.split()
    assert words[0] == "tagging" and f"{done}/{total}" in words
    assert "1234.5" in words and "img/s" in words and "eta" in words
    assert words[words.index("eta") + 1].count(":") == 2  # the ETA is whole, not "0…"
    shown = second.split()
    assert shown[0] == f"happy:{done // 8 + 1}"  # the most frequent first, each whole
    assert all(item.split(":")[0] in labels and item.split(":")[1].isdigit() for item in shown)
    assert "…" not in first + second
