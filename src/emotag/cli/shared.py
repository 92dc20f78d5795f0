"""What every command shares: the consoles, exit codes, the labelled stderr line, the
error mapping, the options declared once (the labels CSV, --json, --root), and help
texts written from the provider registry only when shown."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup, TyperOption

from emotag.errors import EmotagError
from emotag.files.settings import DEFAULT_OUTPUT
from emotag.providers import BUILTIN, names, spec

C = TypeVar("C", bound=Callable[..., Any])


def _shown(params: list[Any]) -> list[Any]:
    """Typer's rich help shows a `<bool>` value beside every flag, which a flag does not
    take: flags get an empty metavar. Help that names the providers is written when a
    command's help is shown, not when the module loads: reading the registry imports the
    provider modules and scans the installed plugins, which `emotag --help` need not do."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        if isinstance(param.help, RegistryHelp):
            param.help = param.help.written()
    return params


class RegistryHelp(str):
    """A help text to be written from the provider registry when it is shown."""

    __slots__ = ("write",)
    write: Callable[[], str]

    def __new__(cls, write: Callable[[], str]) -> RegistryHelp:
        text = super().__new__(cls, "")
        text.write = write
        return text

    def written(self) -> str:
        return self.write()


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> Any:
        return _shown(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> Any:
        return _shown(super().get_params(ctx))


class App(typer.Typer):
    """A Typer app whose commands and groups show flags without a value."""

    def __init__(self, **options: Any) -> None:
        super().__init__(cls=_Group, **options)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[C], C]:
        return super().command(*args, cls=_Command, **kwargs)


out = Console()


err = Console(stderr=True)


EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# One rule for the labels CSV a command reads (docs/usage.md has the table): it is the
# first argument where the CSV is what the command works on, and -l/--labels is accepted
# everywhere; both default to dataset/llm_labels.csv. The one `tag` writes is -o/--output,
# and --json prints the result's as_dict() on stdout.
LabelsArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="CSV",
        help=f"Labels CSV written by 'emotag tag'. [default: {DEFAULT_OUTPUT}]",
        show_default=False,
    ),
]


LabelsIn = Annotated[
    Path | None,
    typer.Option(
        "--labels",
        "-l",
        metavar="CSV",
        help=f"Labels CSV written by 'emotag tag'. [default: {DEFAULT_OUTPUT}]",
        show_default=False,
    ),
]


def chosen_labels(argument: Path | None = None, option: Path | None = None) -> Path:
    """The labels CSV named as the argument or with -l/--labels (the same one, if both)."""
    if argument is not None and option is not None and argument != option:
        raise typer.BadParameter(
            f"two labels CSVs given, {argument} and {option}; name one", param_hint="--labels"
        )
    return argument or option or DEFAULT_OUTPUT


JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (keys: docs/usage.md).")
]


QuietFlag = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing but errors (the exit code tells).")
]


RootOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--root",
        metavar="FOLDER",
        help="Act only on files under FOLDER (repeatable). [default: the folders 'emotag "
        "tag' labelled for the CSV]",
        show_default=False,
    ),
]


FollowOption = Annotated[
    bool,
    typer.Option("--follow-symlinks", help="Also act on links that lead outside those folders."),
]


P = ParamSpec("P")


R = TypeVar("R")


def said(word: str, style: str, text: str) -> None:
    """One labelled line on stderr (`Skipped:`, `Refused:`, ...), never cut inside a path."""
    err.print(Text.assemble((word, style), text), highlight=False, soft_wrap=True)


def debugging() -> bool:
    return os.environ.get("EMOTAG_DEBUG", "") not in ("", "0")


own_process = False  # True when emotag's console script runs, not a test or a library


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn core errors into one `Error:` line and an exit code; EMOTAG_DEBUG=1 shows tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except EmotagError as exc:
            if debugging():
                raise
            said("Error:", "red", f" {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print(
                "Interrupted. Every finished label is saved; run the same command again to resume."
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def each_provider(describe: Callable[[str], str], sep: str = ", ", *, keyed: bool = False) -> str:
    """One phrase per built-in provider (read from the registry), then any plugin's name;
    `keyed`: only those that take a key and a base URL."""
    plugins = [name for name in names() if name not in BUILTIN]
    builtin = [name for name in BUILTIN if spec(name).keyed or not keyed]
    return sep.join([*(describe(name) for name in builtin), *plugins])
