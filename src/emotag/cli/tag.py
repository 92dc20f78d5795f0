"""`emotag tag`: its options, and the rendering of a live run, a batch submission or a
dry run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from emotag.cli import shared
from emotag.cli.shared import (
    EXIT_PARTIAL,
    RegistryHelp,
    each_provider,
    err,
    out,
    reports_errors,
    said,
)
from emotag.emotions import MultiFace
from emotag.files.images import DEFAULT_MAX_SIDE
from emotag.files.settings import (
    DEFAULT_ATTEMPTS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_WAIT,
    DEFAULT_OUTPUT,
    DEFAULT_TIMEOUT,
    IN_FLIGHT_PER_WORKER,
)
from emotag.providers import BUILTIN, spec

if TYPE_CHECKING:
    from emotag.run.options import TagOptions

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


PROVIDER_HELP = RegistryHelp(
    lambda: (
        each_provider(lambda name: f"{name} ({spec(name).about})")
        + ". Env: EMOTAG_PROVIDER. [default: the first with its key or base URL set, else "
        + ", ".join(name for name in BUILTIN if not spec(name).keyed)
        + "]"
    )
)


MODEL_HELP = RegistryHelp(
    lambda: (
        "Env: EMOTAG_MODEL. [default: "
        + each_provider(lambda name: f"{name}: {spec(name).default_model}", "; ")
        + "]"
    )
)


BASE_URL_HELP = RegistryHelp(
    lambda: (
        "Where the provider's API is, e.g. http://localhost:11434/v1 (Ollama). Env: "
        + each_provider(lambda name: spec(name).base_url_var, keyed=True)
        + "."
    )
)


@reports_errors
def tag(
    ctx: typer.Context,
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

    config = TagOptions.from_flags(ctx.params).resolved()
    for note in config.notes:
        said("Note:", "cyan", f" {note}")
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
        said("Warning:", "yellow", f" {warning}")
    if as_json:
        out.print_json(data=result.as_dict(batch_size))
    else:
        out.print(estimate_table(result, config.model, batch_size))


def _tag_batch(config: TagOptions, batch_size: int, *, as_json: bool) -> None:
    from emotag.run import tagging

    submitted = tagging.tag_batch(config, batch_size)
    for warning in submitted.warnings:
        said("Warning:", "yellow", f" {warning}")
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
        summary = tagging.tag(config, on_event=view, own_process=shared.own_process)
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
            said("Warning:", "yellow", f" {warning}")
    if summary.failed:
        err.print(
            f"{summary.failed} image(s) failed; see {config.errors_csv}.",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(EXIT_PARTIAL)
