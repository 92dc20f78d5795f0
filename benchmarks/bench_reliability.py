"""Measure the real-API scenarios of docs/reliability.md against the loopback fake.

    python benchmarks/bench_reliability.py            # prints one JSON line per scenario

Each scenario runs the real CLI (in process), the real SDK and real HTTP at the default
concurrency of 16, in a fresh folder with a fresh settings memory.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from emotag.cli import app  # noqa: E402
from fakes.colours import COLOURS  # noqa: E402
from fakes.gemini_api import TEST_KEY, FakeGemini, Reply, start  # noqa: E402

EMOTIONS = list(COLOURS)[:7]


def images(root: Path, count: int, offset: int = 0) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(offset, offset + count):
        size = (30 + i % 40, 30 + i // 40)
        Image.new("RGB", size, COLOURS[EMOTIONS[i % 7]]).save(root / f"img_{i:04d}.png")


def tag(fake: FakeGemini, folder: Path, *args: str, url: str | None = None) -> dict[str, Any]:
    os.environ["GOOGLE_GEMINI_BASE_URL"] = url or fake.url
    before = len(fake.labelling_requests())
    started = time.monotonic()
    result = CliRunner().invoke(app, ["tag", str(folder), "--json", "--quiet", *args])
    errors = Path("dataset/llm_labels.errors.csv")
    labels = Path("dataset/llm_labels.csv")
    return {
        "exit": result.exit_code,
        "seconds": round(time.monotonic() - started, 2),
        "requests": len(fake.labelling_requests()) - before,
        "rows": max(0, len(labels.read_text().splitlines()) - 1) if labels.exists() else 0,
        "blamed": max(0, len(errors.read_text().splitlines()) - 1) if errors.exists() else 0,
        "message": result.stderr.strip()[:160],
    }


def refused_settings(fake: FakeGemini) -> dict[str, Any]:
    fake.logprobs = "reject"
    fake.rejected_settings.add("thinkingConfig")
    fake.latency = 0.05
    images(Path("a"), 48)
    first = tag(fake, Path("a"))
    images(Path("b"), 48, offset=100)
    second = tag(fake, Path("b"))
    return {"first_run_48": first, "second_run_other_48": second}


def unreachable(fake: FakeGemini) -> dict[str, Any]:
    images(Path("in"), 200)
    down = tag(fake, Path("in"), url="http://127.0.0.1:9")
    return {"down": down, "later": tag(fake, Path("in"))}


def throttled(fake: FakeGemini) -> dict[str, Any]:
    fake.fault_rates = {"429": 0.6}
    images(Path("in"), 40)
    return {"60pct_429_attempts_2": tag(fake, Path("in"), "--attempts", "2")}


def daily_quota(fake: FakeGemini) -> dict[str, Any]:
    fake.daily_quota_after = 20
    images(Path("in"), 60)
    return {"quota_after_20": tag(fake, Path("in"))}


def precondition(fake: FakeGemini) -> dict[str, Any]:
    images(Path("warm"), 2)
    tag(fake, Path("warm"))  # the settings are known: requests fan out at once
    region = "User location is not supported for the API use."
    fake.queue.extend([Reply.error(400, "FAILED_PRECONDITION", region)] * 500)
    images(Path("in"), 60, offset=10)
    return {"failed_precondition": tag(fake, Path("in"))}


def storm(fake: FakeGemini) -> dict[str, Any]:
    runs = {}
    for seed in range(5):
        fake.seed = 2000 + seed
        fake.__post_init__()
        fake.fault_rates = {"429": 0.20, "500": 0.05, "503": 0.05, "hang": 0.02}
        home = Path.cwd()
        os.chdir(_fresh(f"run{seed}"))
        try:
            images(Path("in"), 150)
            runs[f"seed_{seed}"] = tag(fake, Path("in"), "--timeout", "3")
        finally:
            os.chdir(home)
    return runs


def _fresh(name: str) -> Path:
    folder = Path(name).resolve()
    folder.mkdir()
    return folder


SCENARIOS: dict[str, Callable[[FakeGemini], dict[str, Any]]] = {
    "refused_settings": refused_settings,
    "unreachable": unreachable,
    "throttled": throttled,
    "daily_quota": daily_quota,
    "precondition": precondition,
    "fault_storm": storm,
}


def main() -> None:
    os.environ["AI_STUDIO_API_KEY"] = TEST_KEY
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    for name, scenario in SCENARIOS.items():
        with tempfile.TemporaryDirectory() as folder:
            os.chdir(folder)
            os.environ["XDG_CACHE_HOME"] = str(Path(folder) / "cache")
            fake = FakeGemini()
            stop = start(fake)
            try:
                print(json.dumps({"scenario": name, **scenario(fake)}), flush=True)
            finally:
                stop()
                os.chdir(HERE)


if __name__ == "__main__":
    main()
