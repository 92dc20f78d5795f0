"""Optional request settings a model may refuse, learned once and remembered.

AI Studio keys answer `400 "Logprobs is not enabled"` on current models; some models refuse
a thinking or media-resolution setting. A refusal must never cost an image, so the engine
sends one request alone until the settings are known (`settled`), and what a model accepts
is kept per endpoint and model in the user's cache folder for `MEMORY_DAYS`, so the next
run pays no refusal at all, and a model that gains a setting is noticed within days.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from emotag.errors import OutputError
from emotag.files.atomic import atomic_text

MEMORY_DAYS: Final = 7.0
MEMORY_FILE: Final = "accepted-settings.json"
# Names a server may report for one model (snapshots, tags): a server that answers under a
# new name each time cannot make every answer rewrite the cache.
MOST_REPORTED: Final = 20


def default_memory_path() -> Path:
    """`EMOTAG_CACHE_DIR`, else the user cache folder (platformdirs: XDG on Linux only)."""
    if folder := os.environ.get("EMOTAG_CACHE_DIR"):
        return Path(folder) / MEMORY_FILE
    import platformdirs

    return platformdirs.user_cache_path("emotag") / MEMORY_FILE


class SettingsMemory:
    """`{endpoint model: {accepted, refused, checked}}` in one JSON file; unreadable or
    stale entries count as unknown, never as an error."""

    def __init__(self, path: Path | None = None, max_age_days: float = MEMORY_DAYS) -> None:
        self.path = path or default_memory_path()
        self.max_age = max_age_days * 86_400

    def recall(self, endpoint: str, model: str) -> tuple[set[str], set[str]]:
        entry = self._entries().get(f"{endpoint} {model}")
        checked = entry.get("checked") if isinstance(entry, dict) else None
        if not isinstance(checked, (int, float)) or time.time() - checked > self.max_age:
            return set(), set()
        return _names(entry, "accepted"), _names(entry, "refused")

    def reported(self, endpoint: str, model: str) -> set[str]:
        """The names the server answered under for `model` (kept without expiry: labels
        written under them stay done)."""
        return _names(self._entries().get(f"{endpoint} {model}"), "reported")

    def remember(
        self,
        endpoint: str,
        model: str,
        accepted: set[str],
        refused: set[str],
        reported: set[str] | None = None,
    ) -> None:
        entries = self._entries()
        key = f"{endpoint} {model}"
        known = _names(entries.get(key), "reported")
        entries[key] = {
            "accepted": sorted(accepted),
            "refused": sorted(refused),
            "reported": sorted(known | (reported or set())),
            "checked": time.time(),
        }
        try:
            with atomic_text(self.path) as handle:
                json.dump(entries, handle, indent=1, sort_keys=True)
        except OutputError:
            pass  # a cache that cannot be written only costs one refusal next time

    def _entries(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}


def _names(entry: object, key: str) -> set[str]:
    """The names an entry lists under `key`; none where a hand or another version wrote
    something else."""
    found = entry.get(key) if isinstance(entry, dict) else None
    return {name for name in found if isinstance(name, str)} if isinstance(found, list) else set()


def named_setting(message: str, sent: set[str], words: Mapping[str, tuple[str, ...]]) -> str | None:
    """The optional setting a refusal's message names, among those the request carried."""
    text = message.lower()
    for name, spelled in words.items():
        if name in sent and any(word in text for word in spelled):
            return name
    return None


class Negotiator:
    """Which optional settings to send to one endpoint and model right now."""

    def __init__(
        self,
        endpoint: str,
        model: str,
        wanted: Iterable[str],
        *,
        explicit: Iterable[str] = (),
        memory: SettingsMemory | None = None,
        on_warning: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.endpoint, self.model = endpoint, model
        self.memory = memory or SettingsMemory()
        self.explicit = set(explicit)
        self.on_warning = on_warning
        self.accepted, self.refused = self.memory.recall(endpoint, model)
        self.active = set(wanted) - self.refused
        self.refusals = 0  # refused requests this run paid for
        self._reported = self.memory.reported(endpoint, model)
        for name in sorted(self.explicit - self.active):
            self._warn_dropped(name, "remembered from an earlier run")

    @property
    def settled(self) -> bool:
        """Every setting still asked for is known to be accepted: requests may fan out."""
        return self.active <= self.accepted

    def refuse(self, name: str) -> None:
        """The model refused `name`: send the rest without it from now on."""
        self.refusals += 1
        self.active.discard(name)
        self.accepted.discard(name)
        self.refused.add(name)
        self.memory.remember(self.endpoint, self.model, self.accepted, self.refused)
        if name in self.explicit:
            self._warn_dropped(name, "refused by the model")

    def accept(self) -> None:
        """A request with the active settings was answered: they all work."""
        if not self.settled:
            self.accepted |= self.active
            self.memory.remember(self.endpoint, self.model, self.accepted, self.refused)

    def known_only(self) -> list[str]:
        """No answer can settle the settings now (the interactive quota is spent): keep
        only those known to be accepted, so nothing sent may be refused; returns the rest."""
        unknown = sorted(self.active - self.accepted)
        self.active -= set(unknown)
        return unknown

    def note_reported(self, name: str) -> None:
        """The server answered under another name (a dated snapshot, a local tag): keep
        it, so labels written under it count as this model's in later runs."""
        if (
            name
            and name != self.model
            and name not in self._reported
            and len(self._reported) < MOST_REPORTED
        ):
            self._reported.add(name)
            self.memory.remember(
                self.endpoint, self.model, self.accepted, self.refused, self._reported
            )

    def _warn_dropped(self, name: str, why: str) -> None:
        self.on_warning(
            f"model {self.model} does not accept the {name} setting ({why}); continuing without it"
        )
