"""The start-up floor: a Typer app with emotag's commands and options and nothing else."""

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, rich_markup_mode="markdown")
key_app = typer.Typer()
app.add_typer(key_app, name="key")


@app.command()
def tag(
    folder: Annotated[Path, typer.Argument(help="Folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV.")] = Path("x.csv"),
    errors: Annotated[Path | None, typer.Option(help="Errors.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", help="N.")] = None,
    rpm: Annotated[float | None, typer.Option(help="RPM.")] = None,
    timeout: Annotated[float, typer.Option(help="S.")] = 60.0,
    attempts: Annotated[int, typer.Option(help="N.")] = 6,
    max_side: Annotated[int, typer.Option(help="PX.")] = 384,
    prompt_file: Annotated[Path | None, typer.Option(help="File.")] = None,
    logprobs: Annotated[bool, typer.Option(help="Logprobs.")] = True,
    force: Annotated[bool, typer.Option(help="Force.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Retry.")] = False,
    follow_symlinks: Annotated[bool, typer.Option(help="Follow.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Dry.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Quiet.")] = False,
) -> None:
    """Tag."""


@app.command()
def rename(from_csv: Annotated[Path, typer.Option("--from-csv")] = Path("x.csv")) -> None:
    """Rename."""


@app.command()
def merge(landmarks: Path) -> None:
    """Merge."""


@key_app.command("status")
def status() -> None:
    """Status."""


if __name__ == "__main__":
    app()
