"""The provider seam holds: outside `src/emotag/providers/` no line names a provider's
class, module, SDK or wire state, so a provider is one module and one registry entry."""

from __future__ import annotations

import ast
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


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every emotag module `path` imports, at the top, inside functions or under
    TYPE_CHECKING alike: each marks a dependency (`from emotag.cli import shared` is
    the module `emotag.cli.shared`, not the package around it)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= (names & modules) or {node.module}
    return found & modules


def module_graph() -> dict[str, set[str]]:
    paths = {
        ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__"): path
        for path in SRC.rglob("*.py")
    }
    return {name: imports_of(path, set(paths)) - {name} for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            part = []
            while (top := stack.pop()) != node:
                part.append(top)
            if part:
                found.append(sorted([node, *part]))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back() -> None:
    assert cycles(module_graph()) == []


# The subpackages in the order they may import one another (the top: the domain records,
# errors, emotions and choices every layer shares). `emotag` itself and `__main__` are
# the entry points and import what they present.
LAYERS = ("top", "files", "providers", "datasets", "quality", "run", "pages", "cli")


def test_subpackages_import_only_the_layers_below_them() -> None:
    def layer(module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 2 or (SRC / parts[-1]).is_dir() else "top"

    upward = sorted(
        f"{module} -> {other}"
        for module, imported in module_graph().items()
        if module not in ("emotag", "emotag.__main__")
        for other in imported
        if LAYERS.index(layer(other)) > LAYERS.index(layer(module))
    )
    assert upward == []
    assert {layer(module) for module in module_graph()} <= set(LAYERS)


def test_no_module_is_over_600_lines() -> None:
    long = {
        str(path.relative_to(SRC)): lines
        for path in SRC.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long == {}


def test_the_plugin_api_is_declared_and_enough_for_the_worked_plugin() -> None:
    """The worked plugin and the code in docs/providers.md import only `emotag` and
    `emotag.providers`, and every name they take from there is in its `__all__`."""
    root = SRC.parent.parent
    plugin = root / "tests/data/plugin/emotag_palette.py"
    docs = (root / "docs/providers.md").read_text(encoding="utf-8")
    shown = re.findall(r"^(?:from|import) emotag.*$", docs, re.M)  # its code is in parts
    sources = [plugin.read_text(encoding="utf-8"), *shown]
    taken: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("emotag"):
                assert node.module in ("emotag", "emotag.providers"), node.module
                taken |= {alias.name for alias in node.names}
    assert {"ProviderSpec", "Setup", "Answer", "read_text", "Prepared", "Negotiator"} <= taken
    assert taken <= {*providers.__all__, *emotag.__all__}
    assert all(hasattr(providers, name) for name in providers.__all__)
