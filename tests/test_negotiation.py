"""Optional settings a model may refuse: learned once, remembered per endpoint and model
for a week, and a damaged or unwritable cache costs at most a refusal, never the run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from emotag.providers.negotiation import (
    MEMORY_FILE,
    MOST_REPORTED,
    Negotiator,
    SettingsMemory,
    default_memory_path,
    named_setting,
)

WANTED = ("logprobs", "thinking", "media_resolution")


def test_the_memory_is_per_endpoint_and_model_and_forgets_after_its_days(tmp_path: Path) -> None:
    memory = SettingsMemory(tmp_path / "m.json", max_age_days=1)
    memory.remember("host", "m1", {"thinking"}, {"logprobs"}, {"m1-001"})
    assert memory.recall("host", "m1") == ({"thinking"}, {"logprobs"})
    assert memory.recall("host", "m2") == (set(), set())
    assert memory.recall("other", "m1") == (set(), set())
    entries = json.loads((tmp_path / "m.json").read_text())
    entries["host m1"]["checked"] = time.time() - 86_400 - 5
    (tmp_path / "m.json").write_text(json.dumps(entries))
    assert memory.recall("host", "m1") == (set(), set())  # stale: asked again
    assert memory.reported("host", "m1") == {"m1-001"}  # names never go stale
    memory.remember("host", "m1", set(), set(), {"m1-002"})
    assert memory.reported("host", "m1") == {"m1-001", "m1-002"}


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[1, 2]",
        '{"host m1": [1]}',
        '{"host m1": {"checked": "yesterday", "accepted": ["thinking"]}}',
        '{"host m1": {"checked": null}}',
        '{"host m1": {"checked": 1e18, "accepted": 3, "refused": "logprobs", "reported": {}}}',
    ],
)
def test_a_damaged_memory_is_unknown_never_an_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "m.json").write_text(content)
    memory = SettingsMemory(tmp_path / "m.json")
    assert memory.recall("host", "m1") == (set(), set())
    assert memory.reported("host", "m1") == set()
    memory.remember("host", "m1", {"thinking"}, set())  # and it is written over
    assert memory.recall("host", "m1") == ({"thinking"}, set())


def test_a_cache_that_cannot_be_written_costs_nothing_but_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("")
    memory = SettingsMemory(blocker / "m.json")  # its folder cannot be made
    memory.remember("host", "m1", {"thinking"}, set())
    assert memory.recall("host", "m1") == (set(), set())


def test_the_cache_folder_is_emotags_own_or_the_one_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMOTAG_CACHE_DIR", str(tmp_path))
    assert default_memory_path() == tmp_path / MEMORY_FILE
    monkeypatch.delenv("EMOTAG_CACHE_DIR")
    assert default_memory_path().name == MEMORY_FILE and "emotag" in default_memory_path().parts


def negotiator(tmp_path: Path, **options: object) -> tuple[Negotiator, list[str]]:
    warnings: list[str] = []
    memory = SettingsMemory(tmp_path / "m.json")
    found = Negotiator("host", "m1", WANTED, memory=memory, on_warning=warnings.append, **options)  # type: ignore[arg-type]
    return found, warnings


def test_a_refused_setting_is_dropped_and_remembered_and_said_only_if_asked_for(
    tmp_path: Path,
) -> None:
    first, warnings = negotiator(tmp_path, explicit=["media_resolution"])
    assert not first.settled and first.active == set(WANTED)
    first.refuse("logprobs")
    assert first.active == {"thinking", "media_resolution"} and first.refusals == 1
    assert warnings == []  # wanted by default only: dropped quietly
    first.refuse("media_resolution")
    assert warnings == [
        "model m1 does not accept the media_resolution setting (refused by the model); "
        "continuing without it"
    ]
    first.accept()
    assert first.settled and first.accepted == {"thinking"}
    again, warned = negotiator(tmp_path, explicit=["media_resolution"])
    assert again.settled and again.active == {"thinking"} and again.refusals == 0
    assert warned == [
        "model m1 does not accept the media_resolution setting (remembered from an earlier "
        "run); continuing without it"
    ]


def test_an_answer_settles_only_what_was_sent(tmp_path: Path) -> None:
    found, _ = negotiator(tmp_path)
    found.accept()
    assert found.accepted == set(WANTED)
    found.refuse("thinking")  # a later refusal still counts
    assert found.accepted == {"logprobs", "media_resolution"}
    assert SettingsMemory(tmp_path / "m.json").recall("host", "m1") == (
        {"logprobs", "media_resolution"},
        {"thinking"},
    )


def test_without_an_answer_to_come_only_known_settings_are_sent(tmp_path: Path) -> None:
    SettingsMemory(tmp_path / "m.json").remember("host", "m1", {"thinking"}, set())
    found, _ = negotiator(tmp_path)
    assert found.known_only() == ["logprobs", "media_resolution"]
    assert found.active == {"thinking"} and found.settled


def test_reported_names_are_kept_once_and_bounded(tmp_path: Path) -> None:
    found, _ = negotiator(tmp_path)
    for name in ["", "m1", "m1-001", "m1-001", *(f"tag-{i}" for i in range(40))]:
        found.note_reported(name)
    kept = SettingsMemory(tmp_path / "m.json").reported("host", "m1")
    assert "m1-001" in kept and "m1" not in kept and "" not in kept
    assert len(kept) == MOST_REPORTED


def test_a_refusal_names_the_setting_it_was_about_among_those_sent() -> None:
    words = {"logprobs": ("logprobs",), "thinking": ("thinking", "budget")}
    assert named_setting("Logprobs is not enabled", {"logprobs"}, words) == "logprobs"
    assert named_setting("thinking BUDGET too low", {"logprobs", "thinking"}, words) == "thinking"
    assert named_setting("Logprobs is not enabled", {"thinking"}, words) is None  # not sent
    assert named_setting("model overloaded", {"logprobs", "thinking"}, words) is None
