"""The `emotag` command: parse options, call the core, render, map errors to exit codes.

Heavy modules (the SDK, Pillow, the tagger) are imported inside commands so that
`emotag --help` starts fast.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup, TyperOption

from emotag.emotions import MultiFace
from emotag.errors import ConfigError, EmotagError, InputError

if TYPE_CHECKING:
    from emotag.datasets.rename import RenamePlan
    from emotag.providers import ProviderSpec
    from emotag.run.batch import BatchState
    from emotag.run.options import TagOptions
from emotag.choices import Format as ExportFormat
from emotag.choices import OnConflict, Prefer, Score, Stage
from emotag.files.settings import (
    DEFAULT_ATTEMPTS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_SIDE,
    DEFAULT_MAX_WAIT,
    DEFAULT_OUTPUT,
    DEFAULT_TIMEOUT,
    IN_FLIGHT_PER_WORKER,
)
from emotag.providers import BUILTIN, DEFAULT_PROVIDER, names, spec

C = TypeVar("C", bound=Callable[..., Any])


def _shown(params: list[Any]) -> list[Any]:
    """Typer's rich help shows a `<bool>` value beside every flag, which a flag does not
    take: flags get an empty metavar. Help that names the providers is written when a
    command's help is shown, not when the module loads: reading the registry imports the
    provider modules and scans the installed plugins, which `emotag --help` need not do."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        if isinstance(param.help, _RegistryHelp):
            param.help = param.help.written()
    return params


class _RegistryHelp(str):
    """A help text to be written from the provider registry when it is shown."""

    __slots__ = ("write",)
    write: Callable[[], str]

    def __new__(cls, write: Callable[[], str]) -> _RegistryHelp:
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


class _App(typer.Typer):
    """A Typer app whose commands and groups show flags without a value."""

    def __init__(self, **options: Any) -> None:
        super().__init__(cls=_Group, **options)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[C], C]:
        return super().command(*args, cls=_Command, **kwargs)


app = _App(
    help="Label face images with one of seven emotions (happy, surprise, angry, disgust, "
    "fear, neutral, sad) using a built-in offline model, Google's Gemini or any "
    "OpenAI-compatible API (OpenAI, Ollama, vLLM, LM Studio).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals could hold the API key
    rich_markup_mode="markdown",
)
key_app = _App(help="Store, inspect or delete the API key in the system keyring.")
app.add_typer(key_app, name="key")
batch_app = _App(help="Follow `emotag tag --batch` jobs: status, wait, fetch the labels, cancel.")
app.add_typer(batch_app, name="batch")
audit_app = _App(
    help="How good are the labels? Check a sample by hand, then score the whole CSV "
    "(docs/audit.md)."
)
app.add_typer(audit_app, name="audit")

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


def _labels_csv(argument: Path | None = None, option: Path | None = None) -> Path:
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


def _said(word: str, style: str, text: str) -> None:
    """One labelled line on stderr (`Skipped:`, `Refused:`, ...), never cut inside a path."""
    err.print(Text.assemble((word, style), text), highlight=False, soft_wrap=True)


def _debug() -> bool:
    return os.environ.get("EMOTAG_DEBUG", "") not in ("", "0")


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn core errors into one `Error:` line and an exit code; EMOTAG_DEBUG=1 shows tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except EmotagError as exc:
            if _debug():
                raise
            _said("Error:", "red", f" {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print(
                "Interrupted. Every finished label is saved; run the same command again to resume."
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


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


# `tag`'s options in panels; flags show no value (metavar ""), defaults are shown once.
OUTPUT, MODEL, LIMITS, WHAT, BATCH = (
    "Output",
    "Model and provider",
    "Limits",
    "What to label",
    "Batch mode",
)


def _flag(*flags: str, help: str, panel: str) -> Any:
    return typer.Option(*flags, help=help, rich_help_panel=panel)


def _each_provider(describe: Callable[[str], str], sep: str = ", ", *, keyed: bool = False) -> str:
    """One phrase per built-in provider (read from the registry), then any plugin's name;
    `keyed`: only those that take a key and a base URL."""
    plugins = [name for name in names() if name not in BUILTIN]
    builtin = [name for name in BUILTIN if spec(name).keyed or not keyed]
    return sep.join([*(describe(name) for name in builtin), *plugins])


PROVIDER_HELP = _RegistryHelp(
    lambda: (
        _each_provider(lambda name: f"{name} ({spec(name).about})")
        + ". Env: EMOTAG_PROVIDER. [default: the first with its key or base URL set, else "
        + ", ".join(name for name in BUILTIN if not spec(name).keyed)
        + "]"
    )
)
MODEL_HELP = _RegistryHelp(
    lambda: (
        "Env: EMOTAG_MODEL. [default: "
        + _each_provider(lambda name: f"{name}: {spec(name).default_model}", "; ")
        + "]"
    )
)
BASE_URL_HELP = _RegistryHelp(
    lambda: (
        "Where the provider's API is, e.g. http://localhost:11434/v1 (Ollama). Env: "
        + _each_provider(lambda name: spec(name).base_url_var, keyed=True)
        + "."
    )
)


@app.command()
@reports_errors
def tag(
    folder: Annotated[Path, typer.Argument(help="Folder of images, searched recursively.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="CSV",
            help="Labels CSV to write or resume.",
            rich_help_panel=OUTPUT,
        ),
    ] = DEFAULT_OUTPUT,
    errors: Annotated[
        Path | None,
        typer.Option(
            metavar="CSV",
            help="Errors CSV. [default: beside the labels]",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    as_json: Annotated[
        bool, _flag("--json", help="Print the summary as JSON (docs/usage.md).", panel=OUTPUT)
    ] = False,
    quiet: Annotated[
        bool, _flag("--quiet", "-q", help="No progress bar, no summary table.", panel=OUTPUT)
    ] = False,
    provider: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help=PROVIDER_HELP,
            rich_help_panel=MODEL,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="NAME",
            help=MODEL_HELP,
            rich_help_panel=MODEL,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help=BASE_URL_HELP,
            rich_help_panel=MODEL,
        ),
    ] = None,
    prompt_file: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Your own prompt (answers stay the seven).",
            rich_help_panel=MODEL,
        ),
    ] = None,
    logprobs: Annotated[
        bool | None,
        typer.Option(
            "--logprobs/--no-logprobs",
            help="Ask for log probabilities. [default: where the model gives them]",
            show_default=False,
            rich_help_panel=MODEL,
        ),
    ] = None,
    votes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=9,
            metavar="K",
            help="K answers per image: majority label, its share the confidence. "
            "Env: EMOTAG_VOTES. [default: 1]",
            rich_help_panel=MODEL,
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            max=256,
            metavar="N",
            help=f"Requests in flight. Env: EMOTAG_CONCURRENCY. [default: {DEFAULT_CONCURRENCY}]",
            rich_help_panel=LIMITS,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="N",
            help="Processes that send the requests; 0: this one. Env: EMOTAG_WORKERS. "
            f"[default: none up to {IN_FLIGHT_PER_WORKER} in flight, then one per "
            f"{IN_FLIGHT_PER_WORKER}, a core left free]",
            rich_help_panel=LIMITS,
        ),
    ] = None,
    rpm: Annotated[
        float | None,
        typer.Option(
            min=1,
            metavar="N",
            help="Requests per minute at most. Env: EMOTAG_RPM.",
            rich_help_panel=LIMITS,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(min=1, metavar="SECONDS", help="Wait for one answer.", rich_help_panel=LIMITS),
    ] = DEFAULT_TIMEOUT,
    attempts: Annotated[
        int,
        typer.Option(
            min=1,
            max=20,
            metavar="N",
            help="Tries per image on 5xx and timeouts (429s cost none).",
            rich_help_panel=LIMITS,
        ),
    ] = DEFAULT_ATTEMPTS,
    max_wait: Annotated[
        float,
        typer.Option(
            min=1,
            metavar="SECONDS",
            help="Stop (exit 2, nothing lost) after this long of only 429s.",
            rich_help_panel=LIMITS,
        ),
    ] = DEFAULT_MAX_WAIT,
    max_side: Annotated[
        int,
        typer.Option(
            min=64,
            max=3072,
            metavar="PIXELS",
            help="Long side of the uploaded image.",
            rich_help_panel=LIMITS,
        ),
    ] = DEFAULT_MAX_SIDE,
    force: Annotated[
        bool, _flag("--force", help="Label again images already in the CSV.", panel=WHAT)
    ] = False,
    retry_failed: Annotated[
        bool, _flag("--retry-failed", help="Only the images in the errors CSV.", panel=WHAT)
    ] = False,
    multi_face: Annotated[
        MultiFace,
        typer.Option(
            help="Several faces: label the most prominent, or skip.", rich_help_panel=WHAT
        ),
    ] = MultiFace.LABEL,
    follow_symlinks: Annotated[
        bool, _flag("--follow-symlinks", help="Enter symlinked folders.", panel=WHAT)
    ] = False,
    dry_run: Annotated[
        bool,
        _flag("--dry-run", help="Count and price what would be sent; send nothing.", panel=WHAT),
    ] = False,
    use_batch: Annotated[
        bool,
        _flag(
            "--batch",
            help="Submit to the Batch API (half price, up to 24 h); then 'emotag batch "
            "wait' and 'emotag batch fetch'.",
            panel=BATCH,
        ),
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            max=100_000,
            metavar="N",
            help="Requests per batch job.",
            rich_help_panel=BATCH,
        ),
    ] = DEFAULT_BATCH_SIZE,
    cascade: Annotated[
        float | None,
        typer.Option(
            metavar="P",
            help="Offline model first; sent only where under P sure.",
            rich_help_panel=MODEL,
        ),
    ] = None,
) -> None:
    """Label every image under FOLDER and append the results to the labels CSV.

    Re-running the same command resumes: images already labelled by the same model are
    skipped (by path, and by content hash for moved or copied files). Exit codes: 0 all
    labelled, 1 some images failed (see the errors CSV), 2 bad input or configuration, or
    a run stopped with nothing lost (API unreachable, daily quota spent, throttled past
    --max-wait, a refusal such as an unsupported region), 130 interrupted.
    """
    from emotag.run.options import TagOptions

    config = TagOptions(
        folder=folder,
        output=output,
        errors=errors,
        provider=provider or "",
        model=model or "",
        base_url=base_url,
        prompt_file=prompt_file,
        logprobs=logprobs,
        votes=votes or 0,
        concurrency=concurrency or 0,
        workers=workers,
        rpm=rpm,
        timeout=timeout,
        attempts=attempts,
        max_wait=max_wait,
        max_side=max_side,
        force=force,
        skip_multi_face=multi_face is MultiFace.SKIP,
        retry_failed=retry_failed,
        follow_symlinks=follow_symlinks,
        cascade=cascade,
    ).resolved()
    for note in config.notes:
        _said("Note:", "cyan", f" {note}")
    if dry_run:
        _tag_dry_run(config, batch_size if use_batch else None, as_json=as_json)
    elif use_batch:
        _tag_batch(config, batch_size, as_json=as_json)
    else:
        _tag_live(config, as_json=as_json, quiet=quiet)


def _tag_dry_run(config: TagOptions, batch_size: int | None, *, as_json: bool) -> None:
    from emotag.cli.console import estimate_table
    from emotag.run import tagging

    result = tagging.dry_run(config)
    for warning in result.warnings:
        err.print(Text.assemble(("Warning:", "yellow"), f" {warning}"), highlight=False)
    if as_json:
        out.print_json(data=result.as_dict(batch_size))
    else:
        out.print(estimate_table(result, config.model, batch_size))


def _tag_batch(config: TagOptions, batch_size: int, *, as_json: bool) -> None:
    from emotag.run import tagging

    submitted = tagging.tag_batch(config, batch_size)
    for warning in submitted.warnings:
        err.print(Text.assemble(("Warning:", "yellow"), f" {warning}"), highlight=False)
    if as_json:
        out.print_json(data=submitted.as_dict())
    elif submitted.reattached:
        out.print(
            f"{submitted.reattached} batch job(s) from an earlier run are still open; "
            "nothing new was submitted. Next: emotag batch wait, then emotag batch fetch.",
            highlight=False,
        )
    else:
        out.print(
            f"Submitted {submitted.requests} request(s) in {submitted.jobs} batch job(s) "
            f"({submitted.duplicates} duplicates, {submitted.skipped} already labelled"
            + (
                f", {submitted.settled_locally} settled by the offline model"
                if config.cascade is not None
                else ""
            )
            + " not sent). Next: emotag batch wait, then emotag batch fetch.",
            highlight=False,
        )


def _tag_live(config: TagOptions, *, as_json: bool, quiet: bool) -> None:
    from emotag.cli.console import ProgressView, files_written, summary_table
    from emotag.run import tagging

    with ProgressView(err, enabled=not quiet) as view:
        if view.enabled:
            err.print(f"Labelling images under {config.folder} with {config.model} …", markup=False)
        summary = tagging.tag(config, on_event=view, own_process=_own_process)
    data = tagging.summary_dict(config, summary)
    if as_json:
        out.print_json(data=data)
    elif not quiet:
        table = summary_table(
            summary,
            config.model,
            data["cost_usd"],
            config.votes,
            cascade=config.cascade is not None,
            all_paid=data.get("cost_all_paid_usd"),
        )
        out.print(table)
        for line in files_written(summary, config.output, config.errors_csv):
            out.print(line, soft_wrap=True)
    if not view.enabled:  # a live progress view has shown them already
        for warning in summary.warnings:
            err.print(Text.assemble(("Warning:", "yellow"), f" {warning}"), highlight=False)
    if summary.failed:
        err.print(
            f"{summary.failed} image(s) failed; see {config.errors_csv}.",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
@reports_errors
def rename(
    csv: LabelsArg = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--from-csv",
            "--labels",
            "-l",
            metavar="CSV",
            help=f"Labels CSV to rename from. [default: {DEFAULT_OUTPUT}]",
            show_default=False,
        ),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="New name pattern: {stem} {emotion} {ext}; {sex} {age} {ethnicity} for "
            "three-part stems; {t0} {t1} … for any token. "
            "Example: `{sex}_{age}_{ethnicity}_{emotion}{ext}`."
        ),
    ] = None,
    on_conflict: Annotated[
        OnConflict,
        typer.Option(
            help="A target exists or is claimed twice: number it (_2, _3 …), skip, or fail."
        ),
    ] = OnConflict.SUFFIX,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; rename nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    journal: Annotated[
        Path | None,
        typer.Option(help="Journal to write. Default: emotag-rename-<time>.csv beside the CSV."),
    ] = None,
    update_csv: Annotated[
        bool,
        typer.Option("--update-csv/--no-update-csv", help="Rewrite the CSV with the new paths."),
    ] = True,
    undo: Annotated[
        Path | None, typer.Option(help="Reverse the renames recorded in this journal.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Plan rows to show.")] = 50,
    root: RootOption = None,
    follow_symlinks: FollowOption = False,
) -> None:
    """Rename labelled files so their names carry the emotion (`sex_age_ethnicity_emotion.ext`).

    Naming: a trailing emotion token (one of the seven, or an alias such as 'surprised' or
    'serious') is replaced; otherwise `_emotion` is appended to the stem. The extension
    is kept. Nothing is ever overwritten, every step is journaled before it is taken, and
    'emotag rename --undo JOURNAL' reverses a run. Exit codes: 0 done, 1 some files could
    not be renamed, 2 bad input.
    """
    labels = _labels_csv(csv, labels)
    within: dict[str, Any] = {"roots": root or [], "follow_symlinks": follow_symlinks}
    if undo is not None:
        _undo_renames(undo, labels, update_csv=update_csv, **within)
        return
    from emotag.cli.console import rename_table
    from emotag.datasets import rename as renaming

    def go_ahead(plan: RenamePlan) -> bool:
        out.print(rename_table(plan, limit))
        for problem in plan.problems:
            _said("Skipped:", "yellow", f" {problem}")
        if dry_run or not plan.renames:
            out.print("Dry run: nothing renamed." if dry_run else "Nothing to rename.")
            return False
        if yes:
            return True
        if not sys.stdin.isatty():
            raise ConfigError("Nothing renamed: not a terminal, so pass --yes to apply this plan.")
        return typer.confirm(f"Rename {len(plan.renames)} file(s)?")

    if dry_run:  # reads only: no lock, so it works beside a running tag
        plan = renaming.plan_from_csv(labels, template=template, on_conflict=on_conflict, **within)
        go_ahead(plan)
        return
    _, result = renaming.rename_from_csv(
        labels,
        go_ahead,
        template=template,
        on_conflict=on_conflict,
        journal=journal,
        update_csv=update_csv,
        **within,
    )
    if result is None:
        return
    path = result.journal
    out.print(f"Renamed {len(result.done)} file(s); journal: {path}", highlight=False, markup=False)
    for step, reason in result.failed:
        err.print(
            Text.assemble(("Failed:", "red"), f" {step.old} → {step.new.name}: {reason}"),
            highlight=False,
        )
    if result.failed:
        raise typer.Exit(EXIT_PARTIAL)


def _undo_renames(journal: Path, labels_csv: Path, *, update_csv: bool, **within: Any) -> None:
    from emotag.datasets import rename as renaming

    result = renaming.undo_into_csv(journal, labels_csv, update_csv=update_csv, **within)
    out.print(
        f"Restored {len(result.moved)} file(s); {result.not_applied} journaled step(s) "
        "had not been applied.",
        highlight=False,
    )
    for refusal in result.refused:
        _said("Refused:", "red", f" {refusal}")
    if result.refused:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
@reports_errors
def merge(
    landmarks: Annotated[Path, typer.Argument(help="Landmarks CSV, one row per image.")],
    labels: LabelsIn = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Merged CSV. Default: <landmarks stem>_labelled.csv."),
    ] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Replace LANDMARKS itself.")] = False,
    image_column: Annotated[
        str | None,
        typer.Option(
            help="Column with the image path or file name. Default: detected "
            "(path, image_path, image, filename, file, …)."
        ),
    ] = None,
    label_column: Annotated[
        str, typer.Option(help="Column to write the emotion into.")
    ] = "emotion",
    prefer: Annotated[
        Prefer, typer.Option(help="When the table already has a different label: which wins.")
    ] = Prefer.LABELS,
    root: Annotated[
        Path | None, typer.Option(help="Folder that relative image paths in the table start from.")
    ] = None,
    fallback_filename: Annotated[
        bool,
        typer.Option(
            "--fallback-filename",
            help="Use the emotion in a sex_age_ethnicity_emotion "
            "file name when the CSV has no label.",
        ),
    ] = False,
    unmatched: Annotated[
        Path | None, typer.Option(help="Write the rows that got no label to this CSV.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any row got no label.")
    ] = False,
    min_calibrated: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="P",
            help="Only labels an audit gives at least this probability of being right.",
        ),
    ] = None,
) -> None:
    """Join emotion labels onto a landmarks table (streaming; the output is written atomically).

    Rows are matched by absolute path, then by path relative to `--root`, then by file name
    when that name is unique in the labels CSV; ambiguous names are refused, never guessed.
    """
    from emotag.cli.console import merge_table
    from emotag.datasets.lookup import LabelStore
    from emotag.datasets.merge import merge as merge_tables
    from emotag.datasets.merge import merge_target

    if not landmarks.is_file():
        raise InputError(f"Landmarks CSV not found: {landmarks}")
    labels = _labels_csv(option=labels)
    if not labels.is_file():
        raise InputError(f"Labels CSV not found: {labels}")
    target = merge_target(landmarks, output, in_place=in_place)
    store = LabelStore.from_csv(
        labels,
        root=root,
        fallback="filename" if fallback_filename else None,
        min_calibrated=min_calibrated,
    )
    if store.below_calibrated:
        err.print(
            f"{store.below_calibrated} label(s) under --min-calibrated {min_calibrated:g} left "
            "out.",
            markup=False,
        )
    for problem in store.problems:
        _said("Skipped:", "yellow", f" {problem}")
    report = merge_tables(
        landmarks,
        store,
        target,
        image_column=image_column,
        label_column=label_column,
        prefer=prefer,
        unmatched_path=unmatched,
    )
    out.print(merge_table(report, str(target)))
    for kind, examples in report.examples.items():
        for example in examples:
            err.print(f"{kind}: {example}", highlight=False, soft_wrap=True, markup=False)
    if strict and (report.unmatched or report.ambiguous):
        err.print(
            f"{report.unmatched + report.ambiguous} row(s) got no label (--strict).", markup=False
        )
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
@reports_errors
def dupes(
    folder: Annotated[Path, typer.Argument(help="Folder of images, searched recursively.")],
    distance: Annotated[
        int,
        typer.Option(
            min=0, max=7, help="Most differing bits (of 64) for two images to count as copies."
        ),
    ] = 5,
    as_json: JsonFlag = False,
) -> None:
    """List groups of near-duplicate images (resized or re-encoded copies), by perceptual hash.

    Nothing is changed: clean the dataset yourself before splitting it for training.
    Byte-identical copies are already sent once by `emotag tag`.
    """
    from emotag.cli.console import dupes_table
    from emotag.datasets.dupes import find_near_duplicates
    from emotag.files.discovery import iter_images

    if not folder.is_dir():
        raise InputError(f"Folder not found: {folder}")
    report = find_near_duplicates(iter_images(folder), distance)
    if as_json:
        out.print_json(data=report.as_dict())
    else:
        out.print(dupes_table(report))
    for path, reason in report.unreadable:
        _said("Skipped:", "yellow", f" {path}: {reason}")


@app.command()
@reports_errors
def report(
    csv: LabelsArg = None,
    labels: LabelsIn = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    errors: Annotated[
        Path | None, typer.Option(help="Errors CSV to show. Default: beside the labels CSV.")
    ] = None,
    link_images: Annotated[
        bool,
        typer.Option(
            "--link-images", help="Link images by relative path instead of embedding thumbnails."
        ),
    ] = False,
    truth: Annotated[
        str | None,
        typer.Option(help="Add an agreement section: 'filenames' or another labels CSV."),
    ] = None,
) -> None:
    """Write one self-contained HTML page to review, filter and correct the labels.

    Thumbnails are embedded (no network needed). Change labels with each card's menu or keys
    1-7, then 'Export corrections' and run `emotag apply-corrections corrections.csv`.
    """
    from emotag.files.csvfiles import errors_path_for
    from emotag.pages.review_page import build_report
    from emotag.quality.evaluation import evaluate

    labels = _labels_csv(csv, labels)
    evaluation = evaluate(labels, truth) if truth else None
    stats = build_report(
        labels,
        output,
        errors_csv=errors or errors_path_for(labels),
        link_images=link_images,
        evaluation=evaluation,
    )
    out.print(
        f"Wrote {output}: {stats.labels} labels, {stats.failures} failures, "
        f"{stats.thumbnails} pictures.",
        highlight=False,
    )


@app.command("eval")
@reports_errors
def evaluate_labels(
    csv: LabelsArg = None,
    other: Annotated[
        Path | None, typer.Argument(help="A second labels CSV: how much do the two agree?")
    ] = None,
    truth: Annotated[
        str | None,
        typer.Option(
            help="Reference: 'filenames' (sex_age_ethnicity_emotion names) or a labels CSV."
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Also report accuracy and coverage of the labels with confidence >= this.",
        ),
    ] = None,
    by: Annotated[
        Score,
        typer.Option(help="Which number --min-confidence and the coverage curve use."),
    ] = Score.CONFIDENCE,
    stage: Annotated[
        Stage,
        typer.Option(
            help="Score the final labels, or the offline model's opinions a 'tag --cascade' "
            "kept (with '--truth final': against the paid model's labels of the same CSV)."
        ),
    ] = Stage.FINAL,
    labels: LabelsIn = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare labels with a reference: accuracy, per-class precision/recall/F1, macro-F1,
    Cohen's kappa, the confusion matrix, and accuracy against coverage by confidence.

    `emotag eval a.csv b.csv` measures how much two models agree, to choose a cheaper one
    with evidence.
    """
    from emotag.cli.console import agreement_tables
    from emotag.quality.evaluation import evaluate

    if labels is not None and csv is not None and other is None:
        csv, other = None, csv  # `eval -l a.csv b.csv`: the argument is the second CSV
    if (other is None) == (truth is None):
        raise typer.BadParameter("give either --truth or a second labels CSV", param_hint="--truth")
    scored = _labels_csv(csv, labels)
    result = evaluate(scored, truth if truth is not None else str(other), by=by, stage=stage)
    point = result.at(min_confidence) if min_confidence is not None else None
    if as_json:
        extra = {"min_confidence": point.as_dict()} if point else {}
        out.print_json(data=result.as_dict() | extra)
        return
    for table in agreement_tables(result, point):
        out.print(table)


@audit_app.command("sample")
@reports_errors
def audit_sample(
    csv: LabelsArg = None,
    labels: LabelsIn = None,
    size: Annotated[int, typer.Option("--size", "-n", min=1, help="Rows to check by hand.")] = 300,
    seed: Annotated[int, typer.Option(help="The same seed gives the same sample.")] = 0,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for sample.csv and audit.html.")
    ] = Path("audit"),
    as_json: JsonFlag = False,
) -> None:
    """Draw a stratified random sample (by label and confidence band, so rare labels and
    unsure answers are checked) and write sample.csv and audit.html: open the page, go
    through the cards with the keyboard, export truth.csv."""
    from emotag.quality.audit import sample

    labels = _labels_csv(csv, labels)
    result = sample(labels, size, seed, output)
    if as_json:
        out.print_json(data=result.as_dict())
        return
    out.print(
        f"Drew {result.size} of {result.population} labels in {len(result.strata)} strata: "
        f"{result.sample_csv}. Open {result.page}, then run 'emotag audit score {labels} "
        f"--truth {output / 'truth.csv'}'.",
        markup=False,
        highlight=False,
    )


@audit_app.command("score")
@reports_errors
def audit_score(
    truth: Annotated[Path, typer.Option(help="truth.csv exported from audit.html.")],
    csv: LabelsArg = None,
    labels: LabelsIn = None,
    sample_csv: Annotated[
        Path | None,
        typer.Option("--sample", help="sample.csv. [default: beside the truth file]"),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write a one-page HTML report (reliability, coverage)."
        ),
    ] = None,
    write: Annotated[
        bool,
        typer.Option(
            "--write/--no-write",
            help="Keep the calibration map beside the CSV and write the calibrated column.",
        ),
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """The whole CSV's accuracy (95% interval), each label's precision, how well the
    confidence was calibrated before and after, and which labels to keep."""
    from emotag.cli.console import audit_lines
    from emotag.quality.audit import score

    labels = _labels_csv(csv, labels)
    result = score(labels, truth, sample_csv, write=write)
    if report is not None:
        from emotag.pages.audit_report import build_report

        build_report(result, report, source=labels)
    if as_json:
        out.print_json(data=result.as_dict())
        return
    for line in audit_lines(result):
        out.print(line, markup=False, highlight=False)


@app.command("apply-corrections")
@reports_errors
def apply_corrections(
    corrections: Annotated[
        Path,
        typer.Argument(help="corrections.csv exported from the report, or a journal with --undo."),
    ],
    labels: LabelsIn = None,
    undo: Annotated[
        bool, typer.Option("--undo", help="CORRECTIONS is a journal: put the old labels back.")
    ] = False,
) -> None:
    """Write human corrections into the labels CSV (atomically, journaled; `tag` keeps them)."""
    from emotag.quality.corrections import apply_corrections as apply_them
    from emotag.quality.corrections import undo_corrections

    labels_csv = _labels_csv(option=labels)
    result = (
        undo_corrections(corrections, labels_csv) if undo else apply_them(corrections, labels_csv)
    )
    verb = "Restored" if undo else "Applied"
    message = f"{verb} {result.applied} correction(s)"
    if result.unchanged:
        message += f", {result.unchanged} already so"
    if result.journal:
        message += f"; journal: {result.journal} (undo with --undo)"
    out.print(message + ".", highlight=False)
    for problem in result.problems:
        _said("Skipped:", "yellow", f" {problem}")
    if result.problems:
        raise typer.Exit(EXIT_PARTIAL)


@app.command("export")
@reports_errors
def export_labels(
    csv: LabelsArg = None,
    labels: LabelsIn = None,
    format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            help="hf (Hugging Face imagefolder), folders (one per emotion: torchvision, "
            "Keras), labelstudio (tasks with predictions) or fiftyone (FiftyOne image "
            "classification dataset).",
            metavar="FORMAT",
        ),
    ] = ExportFormat.HF,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="DIR", help="A new (or empty) folder to create."),
    ] = Path("export"),
    link: Annotated[
        bool, typer.Option("--link", help="Link the images (hard link, else symlink).")
    ] = False,
    document_root: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="labelstudio: the folder Label Studio serves local files from. "
            "[default: the output's parent]",
        ),
    ] = None,
    as_json: JsonFlag = False,
    root: RootOption = None,
    follow_symlinks: FollowOption = False,
) -> None:
    """Export the labelled images with their labels for Hugging Face, torchvision or
    Keras, Label Studio or FiftyOne (copied, or linked with --link)."""
    from emotag.datasets.export import export

    result = export(
        _labels_csv(csv, labels),
        format,
        output,
        link=link,
        document_root=document_root,
        roots=root or [],
        follow_symlinks=follow_symlinks,
    )
    if as_json:
        out.print_json(data=result.as_dict())
    else:
        how = "linked" if result.linked else "copied"
        out.print(f"Exported {result.images} image(s), {how}, to {result.output}", markup=False)
    for warning in result.warnings:
        err.print(Text.assemble(("Warning:", "yellow"), f" {warning}"), highlight=False)
    for path in result.missing:
        _said("Missing:", "yellow", f" {path}")
    for refusal in result.refused:
        _said("Refused:", "red", f" {refusal}")
    if result.missing or result.refused:
        raise typer.Exit(EXIT_PARTIAL)


LabelsOption = Annotated[
    Path,
    typer.Option(
        "--output", "-o", "--labels", "-l", help="Labels CSV the jobs write into (as tag's -o)."
    ),
]


@batch_app.command("status")
@reports_errors
def batch_status(
    output: LabelsOption = DEFAULT_OUTPUT, as_json: JsonFlag = False, quiet: QuietFlag = False
) -> None:
    """Show each batch job and its state."""
    from emotag.run import tagging

    _show_jobs(tagging.batch_status(output), as_json=as_json, quiet=quiet)


def _show_jobs(state: BatchState, *, as_json: bool, quiet: bool) -> None:
    from emotag.cli.console import batch_table

    if as_json:
        out.print_json(data=state.as_dict())
    elif not quiet:
        out.print(batch_table(state))


@batch_app.command("wait")
@reports_errors
def batch_wait(
    output: LabelsOption = DEFAULT_OUTPUT,
    poll: Annotated[float, typer.Option(min=0.01, help="First polling interval, seconds.")] = 30.0,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Poll until every job has ended (backing off up to 5 minutes); Ctrl-C is safe."""
    from emotag.run import tagging

    def show(state: BatchState) -> None:
        done = sum(1 for job in state.open_jobs if job.ended)
        if not quiet:
            err.print(f"{done}/{len(state.open_jobs)} job(s) finished", markup=False)

    state = tagging.batch_wait(output, poll=poll, on_poll=show)
    _show_jobs(state, as_json=as_json, quiet=quiet)


@batch_app.command("fetch")
@reports_errors
def batch_fetch(
    output: LabelsOption = DEFAULT_OUTPUT,
    errors: Annotated[Path | None, typer.Option(help="Errors CSV.")] = None,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Download finished jobs' answers, validate them like `tag`, append to the CSVs."""
    from emotag.run import tagging
    from emotag.run.prices import dollars

    result = tagging.batch_fetch(output, errors)
    data = result.as_dict()
    if as_json:
        out.print_json(data=data)
    elif not quiet:
        out.print(
            f"{result.labelled} labelled, {result.failed} failed, "
            f"{result.waiting} job(s) still running; cost of the answers fetched "
            f"(batch price): {dollars(data['cost_usd'], result.model)}.",
            markup=False,
            highlight=False,
        )
    if result.failed:
        raise typer.Exit(EXIT_PARTIAL)


@batch_app.command("cancel")
@reports_errors
def batch_cancel(
    output: LabelsOption = DEFAULT_OUTPUT, as_json: JsonFlag = False, quiet: QuietFlag = False
) -> None:
    """Cancel the jobs that have not ended; fetch still records their images as failed."""
    from emotag.run import tagging

    cancelled = tagging.batch_cancel(output)
    if as_json:
        out.print_json(data={"cancelled": cancelled})
    elif not quiet:
        out.print(f"Cancelled {cancelled} job(s).", markup=False)


ProviderOption = Annotated[
    str,
    typer.Option(
        help=_RegistryHelp(
            lambda: (
                "Whose key: "
                + _each_provider(lambda name: f"{name} ({spec(name).key_var})", keyed=True)
                + "."
            )
        )
    ),
]
KeyBaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="The key for this endpoint only (a local or hosted server of the provider's "
        "kind); the provider's key variable is never sent there.",
    ),
]


def _keyed(provider: str) -> ProviderSpec:
    chosen = spec(provider)
    if not chosen.keyed:
        raise ConfigError(f"The {chosen.name} provider needs no key.")
    return chosen


@key_app.command("set")
@reports_errors
def key_set(provider: ProviderOption = DEFAULT_PROVIDER, base_url: KeyBaseUrl = None) -> None:
    """Store the provider's key in the system keyring (prompted, hidden; or read from stdin)."""
    from emotag.files.settings import store_key

    chosen = _keyed(provider)
    endpoint = chosen.endpoint(base_url) if base_url else None
    interactive = sys.stdin.isatty()
    value = typer.prompt(chosen.key_var, hide_input=True) if interactive else sys.stdin.readline()
    store_key(value, chosen.key_var, endpoint)
    scope = f" for {endpoint} only" if endpoint else ""
    err.print(
        f"{chosen.key_var} stored in the system keyring (service 'emotag'){scope}.", markup=False
    )


@key_app.command("status")
@reports_errors
def key_status(provider: ProviderOption = DEFAULT_PROVIDER, base_url: KeyBaseUrl = None) -> None:
    """Show which key goes where: the provider's host, the endpoint its base-URL variable
    names, and --base-url; each key masked, with the source that wins."""
    from emotag.files.settings import key_routes, mask

    chosen = _keyed(provider)
    routes = key_routes(chosen, base_url)
    if all(route.key is None for route in routes):
        raise ConfigError(
            f"No key found. Set {chosen.key_var}, add it to a .env file, or run "
            f"'emotag key set --provider {chosen.name}'."
        )
    for route in routes:
        key = route.key
        sent = f"the key from the {key.source}, {mask(key.value)}" if key else "no key"
        out.print(
            f"{route.endpoint} ({route.why}): {sent}", highlight=False, soft_wrap=True, markup=False
        )


@key_app.command("delete")
@reports_errors
def key_delete(provider: ProviderOption = DEFAULT_PROVIDER, base_url: KeyBaseUrl = None) -> None:
    """Remove the provider's key (or the one for --base-url) from the system keyring."""
    from emotag.files.settings import delete_key

    chosen = _keyed(provider)
    if delete_key(chosen.key_var, chosen.endpoint(base_url) if base_url else None):
        err.print("Key removed from the system keyring.")
    else:
        err.print("There was no key in the system keyring.")


_own_process = False  # True when emotag's console script runs, not a test or a library


def main() -> None:
    global _own_process
    _own_process = True
    app(prog_name="emotag")
