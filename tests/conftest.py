"""Shared fixtures: no test can reach a real key, a real keyring or the network."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from PIL import Image

from fake_gemini import COLOURS, TEST_KEY, FakeGemini, start
from fake_openai import OPENAI_TEST_KEY, FakeOpenAI
from fake_openai import start as start_openai

# Read by the SDKs, they would send a developer's test run elsewhere (Vertex, another API
# version, a proxy): cleared for every test.
SDK_VARS = (
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)
# Tests that need what only POSIX has (signals a process cannot catch, rlimits, symlinks
# without a privilege); the rest of the suite runs on Windows too.
posix_only = pytest.mark.skipif(
    os.name == "nt", reason="POSIX only: SIGKILL, SIGXFSZ, rlimits or unprivileged symlinks"
)

KEY_VARS = (
    "AI_STUDIO_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "EMOTAG_PROVIDER",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own folder with no key, no .env and a keyring that holds nothing."""
    for name in (*KEY_VARS, *SDK_VARS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # `datasets` loads an export, never the hub
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    for name in (
        "EMOTAG_MODEL",
        "EMOTAG_RPM",
        "EMOTAG_CONCURRENCY",
        "EMOTAG_DEBUG",
        "EMOTAG_VOTES",
        "EMOTAG_PRICES",
        "EMOTAG_WORKERS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / ".data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))
    # platformdirs ignores XDG_* on Windows and macOS: the settings memory is isolated by
    # emotag's own variable on every OS.
    monkeypatch.setenv("EMOTAG_CACHE_DIR", str(tmp_path / ".cache" / "emotag"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def running_fake() -> Iterator[FakeGemini]:
    """A running fake Gemini server (not yet wired into the environment), stopped after the
    test, which fails if it scripted answers the real API cannot give."""
    state = FakeGemini()
    stop = start(state)
    yield state
    stop()
    assert not state.misuse, f"a test scripted answers the real API cannot give: {state.misuse}"


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    yield from running_fake()


@pytest.fixture
def gemini(fake: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> FakeGemini:
    """The fake, with the SDK pointed at it and a recognisable fake key in the environment."""
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
    monkeypatch.setenv("AI_STUDIO_API_KEY", TEST_KEY)
    return fake


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """A running fake OpenAI-compatible server, with the SDK pointed at it and its key set."""
    state = FakeOpenAI()
    stop = start_openai(state)
    monkeypatch.setenv("OPENAI_BASE_URL", state.url)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_TEST_KEY)
    yield state
    stop()


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


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


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
