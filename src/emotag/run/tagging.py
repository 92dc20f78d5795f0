"""The `tag` application layer: check inputs before paying, and wire the provider, resume
index, recorder and engine for a live run, a batch, or a dry run; and the `batch` commands
that follow the jobs. Which provider does the work is read from the registry
(`emotag.providers`); nothing here names one."""

from __future__ import annotations

import asyncio
import gc
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from emotag.errors import AnswerError, ConfigError, QuotaSpent, TransientAPIError
from emotag.files import images, roots
from emotag.files.csvfiles import (
    answers_path_for,
    compact_failures,
    compact_labels,
    read_failures,
    read_for_rewrite,
)
from emotag.files.discovery import iter_images
from emotag.files.rewrites import rewriting
from emotag.providers import Provider, Setup
from emotag.providers.keys import sendable_key
from emotag.providers.negotiation import SettingsMemory
from emotag.quality.calibration import calibration_for
from emotag.records import LabelTable
from emotag.run import batch, workers
from emotag.run.cascade import Cascade
from emotag.run.engine import Engine, Source
from emotag.run.estimate import Estimate, estimate
from emotag.run.options import TagOptions
from emotag.run.prices import all_paid, priced
from emotag.run.recorder import Event, Recorder, Summary
from emotag.run.resume import ResumeIndex


def tag(
    options: TagOptions,
    on_event: Callable[[Event], None] = lambda e: None,
    *,
    own_process: bool = False,
) -> Summary:
    """Run `emotag tag` with resolved options: lock the output, then label; the key is
    checked before any work.

    `own_process`: the caller is emotag's own command, so the process-wide garbage
    collector may be tuned (a library caller's process is left alone).
    """
    jobs = _open_jobs(options)
    with _run(options, on_event) as (index, recorder, cascade):
        if jobs:
            recorder.warn(jobs)
        setup = _setup(options, recorder.warn)
        asyncio.run(_live(options, setup, recorder, index, cascade, own_process=own_process))
        recorder.tidy()
        return recorder.summary


def summary_dict(options: TagOptions, summary: Summary) -> dict[str, Any]:
    """`tag --json`: the run's settings, then the summary's keys and the cost; with
    --cascade, also what the images settled locally would have cost."""
    data = {
        "model": options.model,
        "labels_csv": str(options.output),
        "errors_csv": str(options.errors_csv),
        "votes": options.votes,
        **summary.as_dict(),
        **priced(options.model, summary.input_tokens, summary.output_tokens, batch=False),
    }
    if options.cascade is not None:
        data["cost_all_paid_usd"] = all_paid(
            options.model, summary, votes=options.votes, batch=False
        )
    return data


async def _live(
    options: TagOptions,
    setup: Setup,
    recorder: Recorder,
    index: ResumeIndex,
    cascade: Cascade | None,
    *,
    own_process: bool,
) -> None:
    """Build the provider (behind worker processes with `--workers`, which start first
    and build theirs while this one builds its own and sends the first requests), run,
    and close it."""
    processes = await workers.spawn(options.workers or 0, options.spec.name, setup)
    try:
        provider = options.spec.build(setup)
    except BaseException:
        for process in processes:
            process.kill()
        raise
    if processes:
        provider = workers.WorkerPool(provider, processes, setup.on_warning)
    if own_process:
        # What is imported now lives as long as the process: keep it out of the
        # collector's scans, which would rescan the SDK's many objects all run long
        # (docs/performance.md measures what it saves).
        gc.freeze()
    try:
        await Engine(provider, recorder, index, options, cascade).run(_source(options))
    finally:
        await provider.aclose()
        if isinstance(provider, workers.WorkerPool):
            recorder.from_workers(provider.sent)


def tag_batch(options: TagOptions, per_job: int) -> batch.Submission:
    """`tag --batch`: submit the same requests to the provider's batch API (or re-attach
    to open jobs).

    A model whose settings are not known yet is asked once with a tiny probe image first,
    so no job is built with a setting it refuses.
    """
    chosen = options.spec
    if chosen.batches is None:
        raise ConfigError(
            f"The {chosen.name} provider has no batch API; label interactively (leave out --batch)."
        )
    _same_jobs(options)
    with _run(options) as (index, recorder, cascade):
        setup = _setup(options, recorder.warn)
        provider = chosen.build(setup)
        if not provider.settings.settled:
            asyncio.run(_settle(provider, recorder.warn))
        else:
            asyncio.run(provider.aclose())
        batches = chosen.batches(setup, provider)
        fresh = batch.BatchState(
            options.model,
            batch.prompt_sha(options.prompt),
            provider=chosen.name,
            base_url=options.base_url,
            skip_multi_face=options.skip_multi_face,
            votes=index.votes,
        )
        try:
            submission = batch.submit(
                batches,
                recorder.discovered(_source(options)),
                index,
                recorder,
                fresh,
                max_side=options.max_side,
                per_job=per_job,
                cascade=cascade,
            )
            submission.warnings = recorder.summary.warnings
            return submission
        finally:
            batches.close()


def _open_jobs(options: TagOptions) -> str:
    """Open batch jobs hold images already paid for: an interactive run would pay for them
    again (and their fetch would then label nothing), so it is refused; with --force it
    goes ahead, and this says what it costs."""
    state = batch.load_state(options.output)
    if state is None or not state.open_jobs:
        return ""
    jobs = f"{len(state.open_jobs)} batch job(s) are still open for {options.output}"
    if not options.force:
        raise ConfigError(
            f"{jobs}, and their images are paid for already. Run 'emotag batch wait' and "
            "'emotag batch fetch' (or 'emotag batch cancel') first; --force labels them "
            "interactively all the same."
        )
    return f"{jobs}: their images are being paid for twice (--force)"


def _same_jobs(options: TagOptions) -> None:
    """Open jobs of another provider or model must be fetched or cancelled first."""
    state = batch.load_state(options.output)
    if state is None or not state.open_jobs:
        return
    if (state.provider, state.model) != (options.provider, options.model):
        raise ConfigError(
            f"{len(state.open_jobs)} batch job(s) of {state.provider} {state.model} are still "
            f"open for {options.output}; run 'emotag batch fetch' (or 'emotag batch cancel') "
            "first, or choose another --output."
        )


def dry_run(options: TagOptions) -> Estimate:
    """The same plan as `tag`, with nothing sent, nothing written and no key needed; with
    --cascade the offline model (free) judges every image, so the split is the run's."""
    cascade = _cascade(options)
    index = _index(options, read_for_rewrite(options.output), cascade)
    recorder = Recorder(options.output, options.errors_csv, options.model, write=False)
    result = estimate(
        _source(options),
        index,
        recorder,
        max_side=options.max_side,
        tokens=_tokens(options),
        cascade=cascade,
    )
    if cascade is not None and not cascade.calibrated:
        result.warnings.append(UNCALIBRATED.format(threshold=cascade.threshold))
    return result


@contextmanager
def _run(
    options: TagOptions, on_event: Callable[[Event], None] = lambda e: None
) -> Iterator[tuple[ResumeIndex, Recorder, Cascade | None]]:
    """Lock the labels CSV, load what is done, and open the recorder."""
    sendable_key(options.spec, options.base_url)  # before any work
    cascade = _cascade(options)
    with rewriting(options.output) as table:  # a rename killed half-way: its moves first
        compact_labels(options.output, table)
        compact_failures(options.errors_csv, table.labels)
        roots.record(options.output, options.folder)
        recorder = Recorder(
            options.output,
            options.errors_csv,
            options.model,
            on_event,
            on_file=table.labels,
            calibrate=calibration_for(options.output),
        )
        try:
            if cascade is not None and not cascade.calibrated:
                recorder.warn(UNCALIBRATED.format(threshold=cascade.threshold))
            yield _index(options, table, cascade), recorder, cascade
        finally:
            recorder.close()


UNCALIBRATED: Final = (
    "--cascade {threshold:g} compares with the offline model's raw probability, which no "
    "audit has calibrated yet (docs/audit.md shows how)"
)


def _cascade(options: TagOptions) -> Cascade | None:
    """The offline first stage of `--cascade`, loaded now so a broken install fails before
    any work."""
    if options.cascade is None:
        return None
    from emotag.providers import offline

    offline.load()
    return Cascade(options.cascade, calibration_for(options.output), _tokens(options))


def _tokens(options: TagOptions) -> Callable[[int, int], int]:
    """The paid provider's input tokens for an image of (width, height), as estimated."""
    estimated = options.spec.input_tokens
    return lambda width, height: estimated(options.model, options.prompt, width, height)


def _index(options: TagOptions, table: LabelTable, cascade: Cascade | None) -> ResumeIndex:
    endpoint = options.spec.endpoint(options.base_url)
    return ResumeIndex.load(
        table,
        options.errors_csv,
        options.model,
        force=options.force,
        votes=options.votes,
        answers_csv=answers_path_for(options.output),
        aliases=frozenset(SettingsMemory().reported(endpoint, options.model)),
        settled=cascade.settles if cascade is not None else None,
    )


def _source(options: TagOptions) -> Source:
    """The paths to label: the folder's images, or only the previous failures."""
    if options.retry_failed:
        # The errors CSV is untrusted: only regular files under the folder are read again.
        within = roots.inside(options.folder, options.follow_symlinks)
        failed = list(read_failures(options.errors_csv))

        def retried(skip: Callable[[Path, str], None]) -> Iterator[Path]:
            for path in failed:
                if refusal := within.refusal(path):
                    skip(Path(path), refusal)
                else:
                    yield Path(within.resolve(path))  # the file the check looked at

        return retried
    return lambda skip: iter_images(
        options.folder, follow_symlinks=options.follow_symlinks, on_skip=skip
    )


def _setup(options: TagOptions, warn: Callable[[str], None]) -> Setup:
    chosen = options.spec
    if options.logprobs and not chosen.can("logprobs"):
        raise ConfigError(f"--logprobs: the {chosen.name} provider gives no log probabilities.")
    return Setup(
        model=options.model,
        key=sendable_key(chosen, options.base_url),
        base_url=options.base_url,
        endpoint=chosen.endpoint(options.base_url),
        timeout=options.timeout + 5,
        prompt=options.prompt,
        votes=options.votes,
        logprobs=options.logprobs,
        on_warning=warn,
    )


async def _settle(provider: Provider, warn: Callable[[str], None]) -> None:
    """Learn which settings the model accepts with one tiny grey image (a few hundred
    input tokens). Batch mode is the way out of a spent or throttled interactive quota, so
    a probe refused for quota sends the job with the remembered settings only."""
    from PIL import Image

    grey = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(grey, "JPEG")
    try:
        await provider.label(images.prepare(grey.getvalue()))
    except AnswerError:
        pass
    except (QuotaSpent, TransientAPIError) as exc:
        if unknown := provider.settings.known_only():
            warn(
                f"could not ask {provider.model} which settings it accepts ({exc.args[0]}); the "
                f"jobs go without {', '.join(unknown)}"
            )
    finally:
        await provider.aclose()
