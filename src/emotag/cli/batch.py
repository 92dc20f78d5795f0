"""`emotag batch status|wait|fetch|cancel`: follow the jobs `tag --batch` submitted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from emotag.cli.shared import (
    EXIT_PARTIAL,
    JsonFlag,
    QuietFlag,
    err,
    out,
    reports_errors,
)
from emotag.files.settings import DEFAULT_OUTPUT

if TYPE_CHECKING:
    from emotag.run.batch import BatchState

LabelsOption = Annotated[
    Path,
    typer.Option(
        "--output", "-o", "--labels", "-l", help="Labels CSV the jobs write into (as tag's -o)."
    ),
]


@reports_errors
def batch_status(
    output: LabelsOption = DEFAULT_OUTPUT, as_json: JsonFlag = False, quiet: QuietFlag = False
) -> None:
    """Show each batch job and its state."""
    from emotag.run import batch_jobs

    _show_jobs(batch_jobs.status(output), as_json=as_json, quiet=quiet)


def _show_jobs(state: BatchState, *, as_json: bool, quiet: bool) -> None:
    from emotag.cli.console import batch_table

    if as_json:
        out.print_json(data=state.as_dict())
    elif not quiet:
        out.print(batch_table(state))


@reports_errors
def batch_wait(
    output: LabelsOption = DEFAULT_OUTPUT,
    poll: Annotated[float, typer.Option(min=0.01, help="First polling interval, seconds.")] = 30.0,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Poll until every job has ended (backing off up to 5 minutes); Ctrl-C is safe."""
    from emotag.run import batch_jobs

    def show(state: BatchState) -> None:
        done = sum(1 for job in state.open_jobs if job.ended)
        if not quiet:
            err.print(f"{done}/{len(state.open_jobs)} job(s) finished", markup=False)

    state = batch_jobs.wait(output, poll=poll, on_poll=show)
    _show_jobs(state, as_json=as_json, quiet=quiet)


@reports_errors
def batch_fetch(
    output: LabelsOption = DEFAULT_OUTPUT,
    errors: Annotated[Path | None, typer.Option(help="Errors CSV.")] = None,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Download finished jobs' answers, validate them like `tag`, append to the CSVs."""
    from emotag.run import batch_jobs
    from emotag.run.prices import dollars

    result = batch_jobs.fetch(output, errors)
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


@reports_errors
def batch_cancel(
    output: LabelsOption = DEFAULT_OUTPUT, as_json: JsonFlag = False, quiet: QuietFlag = False
) -> None:
    """Cancel the jobs that have not ended; fetch still records their images as failed."""
    from emotag.run import batch_jobs

    cancelled = batch_jobs.cancel(output)
    if as_json:
        out.print_json(data={"cancelled": cancelled})
    elif not quiet:
        out.print(f"Cancelled {cancelled} job(s).", markup=False)
