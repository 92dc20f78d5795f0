"""What tests share besides fixtures: test images and CSV lines, the fake Gemini server
for one block, the CLI as a real process, an in-memory keyring and provider, and the mark
for POSIX-only tests. Tests import these from here, never from `conftest`."""

from __future__ import annotations

import csv
import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from PIL import Image

from emotag.records import Label
from emotag.run.cascade import Cascade
from fakes.colours import COLOURS
from fakes.gemini_api import TEST_KEY, FakeGemini, start

# Tests that need what only POSIX has (signals a process cannot catch, rlimits, symlinks
# without a privilege); the rest of the suite runs on Windows too.
posix_only = pytest.mark.skipif(
    os.name == "nt", reason="POSIX only: SIGKILL, SIGXFSZ, rlimits or unprivileged symlinks"
)


def running_fake() -> Iterator[FakeGemini]:
    """A running fake Gemini server (not yet wired into the environment), stopped after the
    test, which fails if it scripted answers the real API cannot give."""
    state = FakeGemini()
    stop = start(state)
    yield state
    stop()
    assert not state.misuse, f"a test scripted answers the real API cannot give: {state.misuse}"


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps secrets in a dict."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.store:
            raise keyring.errors.PasswordDeleteError("none")
        del self.store[(service, username)]


def start_cli(fake: FakeGemini, cwd: Path, *args: str, **popen: object) -> subprocess.Popen[str]:
    """`python -m emotag ARGS` as a real process against the fake, for kills and signals."""
    env = {
        **os.environ,
        "GOOGLE_GEMINI_BASE_URL": fake.url,
        "AI_STUDIO_API_KEY": TEST_KEY,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "emotag", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[arg-type]
    )


def make_image(
    path: Path,
    colour: str = "happy",
    size: tuple[int, int] = (64, 48),
    mode: str = "RGB",
    **save: object,
) -> Path:
    """An image of one flat colour, which the fake reads back as that emotion."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, COLOURS[colour]).convert(mode).save(path, **save)  # type: ignore[arg-type]
    return path


def csv_line(*fields: str) -> str:
    """A labels CSV line with these first fields and the rest empty, as a hand edit would add."""
    from emotag.files.csvfiles import LABEL_COLUMNS

    return ",".join([*fields, *[""] * (len(LABEL_COLUMNS) - len(fields))]) + "\r\n"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        return list(csv.DictReader(handle))


class ScriptedProvider:
    """An in-memory provider for engine unit tests: answers from a list, records calls."""

    def __init__(self, answers: list[object] | None = None, model: str = "m") -> None:
        from emotag.providers.negotiation import Negotiator, SettingsMemory

        self.model, self.endpoint, self.service = model, "scripted", "Scripted"
        self.reports_model = False
        self.settings = Negotiator("scripted", model, (), memory=SettingsMemory(Path("mem.json")))
        self.answers = list(answers or [])
        self.calls = 0

    async def label(self, image: object, n: int = 1) -> list[object]:
        from emotag.providers.answers import Answer

        self.calls += 1
        reply = self.answers.pop(0) if self.answers else Answer("happy", None, "", 1, 1, "1")
        if isinstance(reply, BaseException):
            raise reply
        return [reply]

    async def aclose(self) -> None:
        return None


class Judged(Cascade):
    """A cascade whose offline opinion is given, not computed (the model has its own tests)."""

    __slots__ = ("given",)

    def __init__(self, threshold: float, given: Label | None) -> None:
        super().__init__(threshold, tokens=lambda width, height: width * height // 100)
        object.__setattr__(self, "given", given)

    def opinion(self, path: str, digest: str, jpeg: bytes) -> Label | None:
        if self.given is None:
            return None
        return dataclasses.replace(self.given, path=path, sha256=digest)


def offline_label(confidence: float, faces: str = "1") -> Label:
    """A label as the offline model gives it, with this probability and face count."""
    from emotag.providers import offline

    source, model = offline.CONFIDENCE_SOURCE, offline.MODEL_NAME
    return Label("", "sad", confidence, source, model, faces)
