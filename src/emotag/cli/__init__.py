"""The `emotag` command: the Typer app and its command groups, registered here in the
order `--help` lists them; each command parses, calls the core, renders, and maps errors
to exit codes (`shared.reports_errors`).

Heavy modules (the SDKs, Pillow, the tagger) are imported inside commands so that
`emotag --help` starts fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from emotag.cli import batch, datasets, keys, quality, shared, tag
from emotag.cli.shared import App, out

app = App(
    help="Label face images with one of seven emotions (happy, surprise, angry, disgust, "
    "fear, neutral, sad) using a built-in offline model, Google's Gemini or any "
    "OpenAI-compatible API (OpenAI, Ollama, vLLM, LM Studio).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals could hold the API key
    rich_markup_mode="markdown",
)
key_app = App(help="Store, inspect or delete the API key in the system keyring.")
app.add_typer(key_app, name="key")
batch_app = App(help="Follow `emotag tag --batch` jobs: status, wait, fetch the labels, cancel.")
app.add_typer(batch_app, name="batch")
audit_app = App(
    help="How good are the labels? Check a sample by hand, then score the whole CSV "
    "(docs/audit.md)."
)
app.add_typer(audit_app, name="audit")


def _print_version(value: bool) -> None:
    if value:
        from emotag import __version__

        out.print(f"emotag {__version__}", markup=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """Label face images with one of seven emotions: offline, with Gemini, or with an
    OpenAI-compatible API."""


for command in (tag.tag, datasets.rename, datasets.merge, datasets.dupes, quality.report):
    app.command()(command)
app.command("eval")(quality.evaluate_labels)
app.command("apply-corrections")(quality.apply_corrections)
app.command("export")(datasets.export_labels)
audit_app.command("sample")(quality.audit_sample)
audit_app.command("score")(quality.audit_score)
for name in ("status", "wait", "fetch", "cancel"):
    batch_app.command(name)(getattr(batch, f"batch_{name}"))
for name in ("set", "status", "delete"):
    key_app.command(name)(getattr(keys, f"key_{name}"))


def main() -> None:
    shared.own_process = True
    app(prog_name="emotag")
