"""The `tag` application layer: resolve options, check inputs before paying, and wire the
provider, resume index, recorder and engine for a live run, a batch, or a dry run."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import io
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from emotag import batch, images
from emotag.discovery import iter_images
from emotag.engine import Engine, Source, TagOptions
from emotag.errors import AnswerError, ConfigError, InputError, QuotaSpent, TransientAPIError
from emotag.estimate import Estimate, estimate
from emotag.ledger import (
    LabelTable,
    answers_path_for,
    compact_failures,
    compact_labels,
    errors_path_for,
    read_answers,
    read_failures,
    read_labels,
    run_lock,
)
from emotag.prices import priced
from emotag.providers import OPENAI, Provider, spec
from emotag.providers.gemini import (
    CANDIDATES,
    OPTIONAL_SETTINGS,
    GeminiBatches,
    GeminiProvider,
    estimate_input_tokens,
    make_client,
)
from emotag.providers.negotiation import Negotiator, SettingsMemory
from emotag.providers.question import DEFAULT_PROMPT
from emotag.recorder import Event, Recorder, Summary
from emotag.resume import ResumeIndex
from emotag.settings import (
    DEFAULT_ATTEMPTS,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_SIDE,
    DEFAULT_MAX_WAIT,
    DEFAULT_TIMEOUT,
    key_for,
    require_key,
    setting,
)
from emotag.votes import MAX_VOTES

DEFAULT_PROVIDER = "gemini"


@dataclass(frozen=True)
class TagConfig:
    """Everything `emotag tag` was asked to do, before and after defaults are filled in."""

    folder: Path
    output: Path
    errors: Path | None = None
    model: str | None = None
    concurrency: int | None = None
    rpm: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS
    max_wait: float = DEFAULT_MAX_WAIT
    max_side: int = DEFAULT_MAX_SIDE
    prompt_file: Path | None = None
    logprobs: bool | None = None  # None: ask where the model gives them, silently
    force: bool = False
    skip_multi_face: bool = False
    retry_failed: bool = False
    follow_symlinks: bool = False
    prompt: str = DEFAULT_PROMPT
    provider: str | None = None
    votes: int | None = None
    base_url: str | None = None

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
        provider = spec(self.provider or setting("EMOTAG_PROVIDER") or DEFAULT_PROVIDER).name
        return ResolvedConfig(
            **{
                **dataclasses.asdict(self),
                "folder": Path(os.path.abspath(self.folder)),
                "output": output,
                "errors": Path(os.path.abspath(self.errors))
                if self.errors
                else errors_path_for(output),
                "provider": provider,
                "model": self.model or setting("EMOTAG_MODEL") or spec(provider).default_model,
                "concurrency": self.concurrency
                or _int_setting("EMOTAG_CONCURRENCY")
                or DEFAULT_CONCURRENCY,
                "rpm": self.rpm or _number_setting("EMOTAG_RPM"),
                "prompt": prompt,
                "votes": _votes(self.votes),
            }
        )


@dataclass(frozen=True)
class ResolvedConfig(TagConfig):
    model: str = spec(DEFAULT_PROVIDER).default_model
    provider: str = DEFAULT_PROVIDER
    errors: Path = Path()
    concurrency: int = DEFAULT_CONCURRENCY
    votes: int = 1

    def index(self, table: LabelTable) -> ResumeIndex:
        endpoint = spec(self.provider).endpoint(_base_url(self))
        return ResumeIndex.load(
            table,
            self.errors,
            self.model,
            force=self.force,
            votes=self.votes,
            answers_csv=answers_path_for(self.output),
            aliases=frozenset(SettingsMemory().reported(endpoint, self.model)),
        )

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
            skip_multi_face=self.skip_multi_face,
            max_wait=self.max_wait,
        )

    def summary_dict(self, summary: Summary) -> dict[str, Any]:
        """`tag --json`: the run's settings, then the summary's keys."""
        return {
            "model": self.model,
            "labels_csv": str(self.output),
            "errors_csv": str(self.errors),
            "votes": self.votes,
            **summary.as_dict(),
            **priced(self.model, summary.input_tokens, summary.output_tokens, batch=False),
        }


def tag(
    config: ResolvedConfig,
    on_event: Callable[[Event], None] = lambda e: None,
    *,
    own_process: bool = False,
) -> Summary:
    """Run `emotag tag`: lock the output, then label; the key is checked before any work.

    `own_process`: the caller is emotag's own command, so the process-wide garbage
    collector may be tuned (a library caller's process is left alone).
    """
    with _run(config, on_event, write=True) as (index, recorder):
        provider = _provider(config, recorder.warn)
        if own_process:
            # What is imported now lives as long as the process: keep it out of the
            # collector's scans, which would rescan the SDK's many objects all run long
            # (with lazy imports, -16% CPU on 200 small images, docs/performance.md).
            gc.freeze()
        engine = Engine(provider, recorder, index, config.options())
        asyncio.run(_run_and_close(engine, provider, config.source()))
        recorder.tidy()
        return recorder.summary


async def _run_and_close(engine: Engine, provider: Provider, source: Source) -> None:
    try:
        await engine.run(source)
    finally:
        await provider.aclose()


def tag_batch(config: ResolvedConfig, per_job: int) -> batch.Submission:
    """`tag --batch`: submit the same requests to the Batch API (or re-attach to open jobs).

    A model whose settings are not known yet is asked once with a tiny probe image first,
    so no job is built with a setting it refuses.
    """
    if config.provider != DEFAULT_PROVIDER:
        raise ConfigError(
            f"--batch is not supported yet with --provider {config.provider}; "
            "label interactively (leave out --batch)."
        )
    with _run(config, write=True) as (index, recorder):
        provider = _provider(config, recorder.warn)
        assert isinstance(provider, GeminiProvider)
        if not provider.settings.settled:
            asyncio.run(_settle(provider, recorder.warn))
        batches = _batches(config.model, provider)
        try:
            submission = batch.submit(
                batches,
                provider.request_json,
                recorder.discovered(config.source()),
                index,
                recorder,
                prompt=config.prompt,
                max_side=config.max_side,
                per_job=per_job,
                skip_multi_face=config.skip_multi_face,
            )
            submission.warnings = recorder.summary.warnings
            return submission
        finally:
            batches.close()


def dry_run(config: ResolvedConfig) -> Estimate:
    """The same plan as `tag`, with nothing sent, nothing written and no key needed."""
    index = config.index(_load(config.output, config.errors, tidy=False))
    recorder = Recorder(config.output, config.errors, config.model, write=False)
    return estimate(
        config.source(),
        index,
        recorder,
        max_side=config.max_side,
        tokens=_token_estimate(config),
    )


def batch_command(action: str, labels_csv: Path, errors_csv: Path | None, **options: Any) -> Any:
    """Run `batch status|wait|fetch|cancel` for the jobs recorded beside `labels_csv`."""
    labels_csv = Path(os.path.abspath(labels_csv))
    state = batch.load_state(labels_csv)
    if state is None:
        raise InputError(
            f"No batch jobs recorded for {labels_csv}; start with 'emotag tag DIR --batch'."
        )
    batches = _batches(state.model)
    try:
        if action == "fetch":
            errors = errors_path_for(labels_csv) if errors_csv is None else errors_csv.absolute()
            with run_lock(labels_csv):
                labelled = set(read_labels(labels_csv).labels)
                paid = read_answers(answers_path_for(labels_csv), state.model)
                recorder = Recorder(labels_csv, errors, state.model)
                try:
                    result = batch.fetch(batches, recorder, labelled, paid)
                finally:
                    recorder.close()
                compact_failures(errors, labelled)
                return result
        if action == "wait":
            return batch.wait(batches, labels_csv, **options)
        if action == "cancel":
            return batch.cancel(batches, labels_csv)
        return batch.refresh(batches, labels_csv)
    finally:
        batches.close()


@contextmanager
def _run(
    config: ResolvedConfig,
    on_event: Callable[[Event], None] = lambda e: None,
    *,
    write: bool,
) -> Iterator[tuple[ResumeIndex, Recorder]]:
    """Lock the labels CSV, load what is done, and open the recorder."""
    _key(config)  # before any work
    with run_lock(config.output):
        table = _load(config.output, config.errors, tidy=True)
        index = config.index(table)
        recorder = Recorder(
            config.output, config.errors, config.model, on_event, on_file=table.labels, write=write
        )
        try:
            yield index, recorder
        finally:
            recorder.close()


def _load(labels_csv: Path, errors_csv: Path, *, tidy: bool) -> LabelTable:
    """The labels CSV, refused if it has rows emotag cannot read; tidied for a real run."""
    table = read_labels(labels_csv)
    if table.problems:
        shown = "; ".join(table.problems[:3])
        raise InputError(
            f"{len(table.problems)} bad row(s) in the labels CSV ({shown}). Fix or delete "
            "them and run again; emotag will not overwrite rows it cannot read."
        )
    if tidy:
        compact_labels(labels_csv, table)
        compact_failures(errors_csv, table.labels)
    return table


def _provider(config: ResolvedConfig, warn: Callable[[str], None]) -> Provider:
    """The labelling provider for this run, with its settings memory."""
    provider_spec = spec(config.provider)
    base_url = _base_url(config)
    endpoint = provider_spec.endpoint(base_url)

    def negotiator(optional: Iterable[str], several: str) -> Negotiator:
        """Every optional setting the provider has; "logprobs" unless --no-logprobs, the
        several-answers one only with --votes."""
        wanted = set(optional) | ({several} if config.votes > 1 else set())
        if config.logprobs is False:
            wanted.discard("logprobs")
        explicit = {"logprobs"} if config.logprobs else set()
        return Negotiator(endpoint, config.model, wanted, explicit=explicit, on_warning=warn)

    timeout = config.timeout + 5
    if provider_spec is OPENAI:
        from emotag.providers import openai_compat as oa

        return oa.OpenAIProvider(
            client=oa.make_client(_key(config), base_url=base_url, timeout=timeout),
            model=config.model,
            settings=negotiator(oa.OPTIONAL_SETTINGS, oa.CHOICES),
            endpoint=endpoint,
            prompt=config.prompt,
            votes=config.votes,
        )
    return GeminiProvider(
        client=make_client(_key(config), base_url=base_url, timeout=timeout),
        model=config.model,
        settings=negotiator(OPTIONAL_SETTINGS, CANDIDATES),
        endpoint=endpoint,
        prompt=config.prompt,
        votes=config.votes,
    )


def _token_estimate(config: ResolvedConfig) -> Callable[[int, int], int]:
    """Billed input tokens for one prepared image of (width, height), by provider."""
    if spec(config.provider) is OPENAI:
        from emotag.providers.openai_compat import estimate_input_tokens as openai_tokens

        return lambda width, height: openai_tokens(config.prompt)
    return lambda width, height: estimate_input_tokens(config.model, config.prompt, width, height)


def _base_url(config: ResolvedConfig) -> str | None:
    return config.base_url or setting(spec(config.provider).base_url_var)


def _key(config: ResolvedConfig) -> str:
    """The key that may go where this run sends (see `settings.key_for`); a server on this
    machine (Ollama, vLLM, LM Studio) needs none."""
    provider_spec = spec(config.provider)
    base_url = _base_url(config)
    if provider_spec is OPENAI and _is_loopback(base_url):
        found = key_for(provider_spec, provider_spec.endpoint(base_url))
        return found.value if found else "not-needed"
    return require_key(provider_spec, provider_spec.endpoint(base_url)).value


def _is_loopback(base_url: str | None) -> bool:
    host = urlparse(base_url or "").hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _batches(model: str, provider: GeminiProvider | None = None) -> GeminiBatches:
    if provider is not None:
        return GeminiBatches(provider.client, model, provider.endpoint)
    base_url = setting(spec(DEFAULT_PROVIDER).base_url_var)
    gemini = spec(DEFAULT_PROVIDER)
    key = require_key(gemini, gemini.endpoint(base_url))
    client = make_client(key.value, base_url=base_url, timeout=65.0)
    return GeminiBatches(client, model, spec(DEFAULT_PROVIDER).endpoint(base_url))


async def _settle(provider: GeminiProvider, warn: Callable[[str], None]) -> None:
    """Learn which settings the model accepts with one tiny grey image (about 280 input
    tokens). Batch mode is the way out of a spent or throttled interactive quota, so a
    probe refused for quota sends the job with the remembered settings only."""
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


def _votes(option: int | None) -> int:
    votes = option or _int_setting("EMOTAG_VOTES") or 1
    if not 1 <= votes <= MAX_VOTES:
        raise ConfigError(f"--votes (or EMOTAG_VOTES) must be from 1 to {MAX_VOTES}, got {votes}.")
    return votes


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
