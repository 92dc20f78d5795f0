"""Shared fixtures: no test can reach a real key, a real keyring or the network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from fakes.gemini_api import TEST_KEY, FakeGemini
from fakes.openai_api import OPENAI_TEST_KEY, FakeOpenAI
from fakes.openai_api import start as start_openai
from helpers import MemoryKeyring, running_fake

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


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)
