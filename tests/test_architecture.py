"""The provider seam holds: outside `src/emotag/providers/` no line names a provider's
class, module, SDK or wire state, so a provider is one module and one registry entry."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import emotag
from emotag import providers

SRC = Path(emotag.__file__).parent
SDKS = ("google.genai", "google import genai", "import openai", "from openai")
OWN_STATES = {"pending", "running", "succeeded", "failed", "cancelled", "expired"}


def provider_words() -> set[str]:
    """What only a provider may name: its module, its classes, its wire states."""
    words: set[str] = set()
    for target in providers.BUILTIN.values():
        module = importlib.import_module(target.partition(":")[0])
        words.add(module.__name__)
        words.add(module.__name__.rsplit(".", 1)[1])
        words |= {
            name
            for name, value in vars(module).items()
            if isinstance(value, type) and value.__module__ == module.__name__
        }
        for value in vars(module).values():  # the wire states a provider maps to its own
            states = list(value.values()) if isinstance(value, dict) else []
            if states and all(isinstance(s, str) and s in OWN_STATES for s in states):
                words |= set(value) - OWN_STATES
    return words


def test_the_words_found_are_the_providers_own() -> None:
    words = provider_words()
    assert {"GeminiProvider", "GeminiBatches", "OpenAIProvider", "OpenAIBatches"} <= words
    assert {"JOB_STATE_SUCCEEDED", "in_progress", "validating", "openai_compat"} <= words
    assert {"LocalProvider", "local_model"} <= words


def test_no_line_outside_the_providers_names_one() -> None:
    words = provider_words()
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(words))) + r")\b")
    offending = []
    for path in sorted(SRC.rglob("*.py")):
        if "providers" in path.relative_to(SRC).parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) or any(sdk in code for sdk in SDKS):
                offending.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offending == []


# What `emotag --help` must not import: the SDKs, the offline model, the modules of the
# commands (their options' choices live in emotag.choices), asyncio, the provider
# modules (the registry is read only where a command's help names the providers).
HEAVY = (
    "google.genai",
    "openai",
    "onnxruntime",
    "numpy",
    "asyncio",
    "PIL",
    "emotag.providers.offline.faces",
    "emotag.providers.offline.expressions",
    "emotag.providers.gemini",
    "emotag.providers.openai_compat",
    "emotag.providers.local_model",
    "emotag.providers.gemini_sessions",
    "emotag.datasets.export",
    "emotag.quality.evaluation",
    "emotag.datasets.merge",
    "emotag.datasets.rename",
    "emotag.run.tagging",
    "emotag.run.engine",
)


def test_help_starts_without_any_sdk_the_offline_model_or_a_commands_module() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from emotag.cli import app\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    app(['--help'], prog_name='emotag')\n"
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"


def test_every_benchmark_and_example_still_imports() -> None:
    """They import emotag's modules by name, and no other test runs them."""
    root = Path(__file__).resolve().parent.parent
    scripts = sorted([*root.glob("benchmarks/*.py"), *root.glob("examples/*.py")])
    code = (
        "import importlib.util, sys\n"
        "for path in sys.argv[1:]:\n"
        "    sys.path.insert(0, path.rsplit('/', 1)[0])\n"
        "    spec = importlib.util.spec_from_file_location('m', path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, scripts)], capture_output=True, text=True
    )
    assert len(scripts) >= 8 and done.returncode == 0, done.stderr
