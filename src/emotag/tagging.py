"""Glue for one `tag` run: resolve options, check inputs before paying, wire the parts."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotag import batch
from emotag.discovery import iter_images
from emotag.engine import Event, Summary, Tagger, TagOptions
from emotag.errors import ConfigError, InputError
from emotag.estimate import Estimate, estimate
from emotag.ledger import errors_path_for, read_failures, run_lock
from emotag.providers.gemini import (
    DEFAULT_PROMPT,
    Labeller,
    make_client,
    map_api_error,
    transport_errors,
)
from emotag.settings import DEFAULT_MODEL, require_key, setting

DEFAULT_CONCURRENCY = 16

Source = Callable[[Callable[[Path, str], None]], Iterable[Path]]


@dataclass(frozen=True)
class TagConfig:
    """Everything `emotag tag` was asked to do, before and after defaults are filled in."""

    folder: Path
    output: Path
    errors: Path | None = None
    model: str | None = None
    concurrency: int | None = None
    rpm: float | None = None
    timeout: float = 60.0
    attempts: int = 6
    max_side: int = 384
    prompt_file: Path | None = None
    logprobs: bool = True
    force: bool = False
    skip_multi_face: bool = False
    retry_failed: bool = False
    follow_symlinks: bool = False
    prompt: str = DEFAULT_PROMPT

    def resolved(self) -> ResolvedConfig:
        """Fill defaults from options, environment and `.env`; fail early on bad input."""
        if not self.folder.is_dir():
            raise InputError(f"Folder not found: {self.folder}")
        prompt = self.prompt
        if self.prompt_file is not None:
            try:
                prompt = self.prompt_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"Cannot read the prompt file {self.prompt_file}: {exc}") from exc
            if not prompt:
                raise InputError(f"The prompt file {self.prompt_file} is empty.")
        output = Path(os.path.abspath(self.output))
        return ResolvedConfig(
            **{
                **dataclasses.asdict(self),
                "folder": Path(os.path.abspath(self.folder)),
                "output": output,
                "errors": Path(os.path.abspath(self.errors))
                if self.errors
                else errors_path_for(output),
                "model": self.model or setting("EMOTAG_MODEL") or DEFAULT_MODEL,
                "concurrency": self.concurrency
                or _int_setting("EMOTAG_CONCURRENCY")
                or DEFAULT_CONCURRENCY,
                "rpm": self.rpm or _number_setting("EMOTAG_RPM"),
                "prompt": prompt,
            }
        )


@dataclass(frozen=True)
class ResolvedConfig(TagConfig):
    model: str = DEFAULT_MODEL
    errors: Path = Path()
    concurrency: int = DEFAULT_CONCURRENCY

    def source(self) -> Source:
        """The paths to label: the folder's images, or only the previous failures."""
        if self.retry_failed:
            failed = [Path(p) for p in read_failures(self.errors)]
            return lambda skip: failed
        return lambda skip: iter_images(
            self.folder, follow_symlinks=self.follow_symlinks, on_skip=skip
        )

    def options(self) -> TagOptions:
        return TagOptions(
            concurrency=self.concurrency,
            rpm=self.rpm,
            timeout=self.timeout,
            max_attempts=self.attempts,
            max_side=self.max_side,
            force=self.force,
            skip_multi_face=self.skip_multi_face,
        )


def tag(config: ResolvedConfig, on_event: Callable[[Event], None] = lambda e: None) -> Summary:
    """Run `emotag tag`: lock the output, then label; the key is checked before any work."""
    key = require_key()
    labeller = Labeller(
        client=make_client(key.value, timeout=config.timeout + 5),
        model=config.model,
        prompt=config.prompt,
    )
    if not config.logprobs:
        labeller.settings.discard("logprobs")
    with run_lock(config.output):
        tagger = Tagger(labeller, config.output, config.errors, config.options(), on_event)

        def warn(message: str) -> None:
            tagger.summary.warnings.append(message)
            on_event(Event("warning", detail=message))

        labeller.on_warning = warn
        return asyncio.run(_run_and_close(tagger, labeller, config.source()))


async def _run_and_close(tagger: Tagger, labeller: Labeller, source: Source) -> Summary:
    try:
        return await tagger.run(source)
    finally:
        await labeller.client.aio.aclose()


def tag_batch(config: ResolvedConfig, per_job: int) -> batch.Submission:
    """`tag --batch`: submit the same requests to the Batch API (or re-attach to open jobs)."""
    client = _client(config.timeout)
    labeller = Labeller(client=client, model=config.model, prompt=config.prompt)
    with run_lock(config.output), _api_errors(config.model):
        try:
            return batch.submit(
                client,
                labeller,
                config.source()(lambda path, reason: None),
                config.output,
                config.errors,
                max_side=config.max_side,
                per_job=per_job,
                force=config.force,
            )
        finally:
            client.close()


def batch_command(action: str, labels_csv: Path, errors_csv: Path | None, **options: Any) -> Any:
    """Run `batch status|wait|fetch|cancel` for the jobs recorded beside `labels_csv`."""
    labels_csv = Path(os.path.abspath(labels_csv))
    state = batch.load_state(labels_csv)
    if state is None:
        raise InputError(
            f"No batch jobs recorded for {labels_csv}; start with 'emotag tag DIR --batch'."
        )
    client = _client(60.0)
    try:
        with _api_errors(state.model):
            if action == "fetch":
                errors = (
                    errors_path_for(labels_csv) if errors_csv is None else errors_csv.absolute()
                )
                with run_lock(labels_csv):
                    return batch.fetch(client, labels_csv, errors, state.model)
            if action == "wait":
                return batch.wait(client, labels_csv, **options)
            if action == "cancel":
                return batch.cancel(client, labels_csv)
            return batch.refresh(client, labels_csv)
    finally:
        client.close()


@contextmanager
def _api_errors(model: str) -> Iterator[None]:
    """Batch calls go through the SDK directly: give its errors the same one-line form."""
    from google.genai import errors as sdk_errors

    try:
        yield
    except sdk_errors.APIError as exc:
        raise map_api_error(exc, model) from None
    except transport_errors() as exc:
        raise ConfigError(
            f"Cannot reach the Gemini API ({type(exc).__name__}); nothing is lost, "
            "run the same command again."
        ) from None


def _client(timeout: float) -> Any:
    return make_client(require_key().value, timeout=timeout + 5)


def dry_run(config: ResolvedConfig) -> Estimate:
    paths = config.source()(lambda path, reason: None)
    return estimate(
        paths,
        model=config.model,
        prompt=config.prompt,
        labels_csv=config.output,
        max_side=config.max_side,
        force=config.force,
    )


def summary_dict(summary: Summary, config: ResolvedConfig) -> dict[str, Any]:
    return {
        "model": config.model,
        "labels_csv": str(config.output),
        "errors_csv": str(config.errors),
        "found": summary.found,
        "labelled": summary.labelled,
        "emotions": dict(summary.emotions),
        "failed": summary.failed,
        "failures": dict(summary.failures),
        "skipped": summary.skipped,
        "duplicates": summary.duplicates,
        "requests": summary.requests,
        "retries": summary.retries,
        "input_tokens": summary.input_tokens,
        "output_tokens": summary.output_tokens,
        "elapsed_s": round(summary.elapsed, 3),
        "warnings": summary.warnings,
    }


def _int_setting(name: str) -> int | None:
    value = _number_setting(name)
    if value is not None and not value.is_integer():
        raise ConfigError(f"{name} must be a whole number, got {value:g}.")
    return None if value is None else int(value)


def _number_setting(name: str) -> float | None:
    value = setting(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}.") from None
