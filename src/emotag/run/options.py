"""What `emotag tag` was asked to do, declared once from the CLI to the engine.

The CLI fills a `TagOptions` from its flags; `resolved()` fills what was left to the
environment (`EMOTAG_*`, `.env`) and checks it before anything is paid for; the engine
reads the same object.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotag.emotions import MultiFace
from emotag.errors import ConfigError, InputError
from emotag.files.csvfiles import errors_path_for
from emotag.files.images import DEFAULT_MAX_SIDE
from emotag.files.settings import (
    DEFAULT_ATTEMPTS,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_WAIT,
    DEFAULT_OUTPUT,
    DEFAULT_TIMEOUT,
    setting,
)
from emotag.providers import BUILTIN, DEFAULT_PROVIDER, ProviderSpec, is_loopback, spec
from emotag.providers.keys import key_for
from emotag.providers.question import DEFAULT_PROMPT
from emotag.run.workers import automatic
from emotag.votes import MAX_VOTES


@dataclass(frozen=True, slots=True)
class TagOptions:
    """Every option of a run. "" and 0 mean "from the environment, else the default"
    (`from_flags` turns the CLI's None into them)."""

    folder: Path = Path()
    output: Path = DEFAULT_OUTPUT
    errors: Path | None = None  # None: beside the labels CSV (`errors_csv`)
    provider: str = ""  # EMOTAG_PROVIDER, else gemini
    model: str = ""  # EMOTAG_MODEL, else the provider's default
    base_url: str | None = None  # None: the provider's base-URL variable, else its host
    prompt: str = DEFAULT_PROMPT
    prompt_file: Path | None = None
    logprobs: bool | None = None  # None: ask where the model gives them, silently
    votes: int = 0  # EMOTAG_VOTES, else 1
    concurrency: int = 0  # EMOTAG_CONCURRENCY, else 16
    workers: int | None = None  # processes that send; None: EMOTAG_WORKERS, else automatic
    rpm: float | None = None  # EMOTAG_RPM, else no limit
    timeout: float = DEFAULT_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS
    max_wait: float = DEFAULT_MAX_WAIT
    max_side: int = DEFAULT_MAX_SIDE
    force: bool = False
    skip_multi_face: bool = False
    retry_failed: bool = False
    follow_symlinks: bool = False
    cascade: float | None = None  # --cascade P: the offline model first, final from P on
    # What `resolved()` chose that the user should hear of (one line each, on stderr).
    notes: tuple[str, ...] = ()

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any]) -> TagOptions:
        """The one conversion from the CLI's flags, by name: a flag not given (None) leaves
        its field to the environment or the default; `--multi-face` sets `skip_multi_face`;
        flags that are not options of the run (`--json`, `--dry-run`) are not read."""
        fields = {field.name for field in dataclasses.fields(cls)}
        given = {name: value for name, value in flags.items() if name in fields}
        if (multi_face := flags.get("multi_face")) is not None:
            given["skip_multi_face"] = multi_face is MultiFace.SKIP
        return cls(**{name: value for name, value in given.items() if value is not None})

    @property
    def errors_csv(self) -> Path:
        return self.errors or errors_path_for(self.output)

    @property
    def spec(self) -> ProviderSpec:
        return spec(self.provider or DEFAULT_PROVIDER)

    def resolved(self) -> TagOptions:
        """Fill defaults from the environment and `.env`; fail early on bad input."""
        if not self.folder.is_dir():
            raise InputError(f"Folder not found: {self.folder}")
        provider, notes = self._provider()
        votes = _votes(self.votes)
        if votes > 1 and provider.deterministic:
            notes += (
                f"the {provider.name} model gives the same answer every time: --votes {votes} "
                "asks it once",
            )
            votes = 1
        concurrency = self.concurrency or _int_setting("EMOTAG_CONCURRENCY") or DEFAULT_CONCURRENCY
        model = self.model or setting("EMOTAG_MODEL") or provider.default_model
        base_url = self.base_url or _base_url(provider)
        provider.check(model, base_url)
        if base_url and not is_loopback(base_url):
            where = "--base-url" if self.base_url else provider.base_url_var
            notes += (
                f"requests go to {provider.endpoint(base_url)} (from {where}), not "
                f"{provider.default_endpoint}",
            )
        if self.cascade is not None:
            _check_cascade(self.cascade, provider)
        return dataclasses.replace(
            self,
            folder=Path(os.path.abspath(self.folder)),
            output=Path(os.path.abspath(self.output)),
            errors=Path(os.path.abspath(self.errors)) if self.errors else None,
            provider=provider.name,
            model=model,
            base_url=base_url,
            prompt=self._prompt(),
            votes=votes,
            concurrency=concurrency,
            workers=self._workers(concurrency),
            rpm=self.rpm or _number_setting("EMOTAG_RPM"),
            notes=notes,
        )

    def _provider(self) -> tuple[ProviderSpec, tuple[str, ...]]:
        """The provider named (`--provider`, EMOTAG_PROVIDER); else the first built-in one
        the user has set up (its key found, or its base URL given), else the one that
        needs no key, which is said in a note (unless a model was named for another)."""
        if named := self.provider or setting("EMOTAG_PROVIDER"):
            return spec(named), ()
        wanted = spec(DEFAULT_PROVIDER)
        model = self.model or setting("EMOTAG_MODEL")
        for name in BUILTIN:
            candidate = spec(name)
            if not candidate.keyed:
                if model and model != candidate.default_model:
                    return wanted, ()  # a model named for a paid provider: its key is missing
                return candidate, (
                    f"no {wanted.key_var} found: labelling with {candidate.about} "
                    f"({candidate.default_model}); to use {wanted.name}, set {wanted.key_var} "
                    f"(or 'emotag key set') or pass --provider {wanted.name}",
                )
            base_url = self.base_url or _base_url(candidate)
            if base_url or key_for(candidate, candidate.endpoint(base_url)):
                return candidate, ()
        return wanted, ()

    def _workers(self, concurrency: int) -> int:
        chosen = self.workers if self.workers is not None else _int_setting("EMOTAG_WORKERS")
        if chosen is None:
            return automatic(concurrency)
        if chosen < 0:
            raise ConfigError(f"--workers (or EMOTAG_WORKERS) must be 0 or more, got {chosen}.")
        return min(chosen, concurrency)

    def _prompt(self) -> str:
        if self.prompt_file is None:
            return self.prompt
        try:
            prompt = self.prompt_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"Cannot read the prompt file {self.prompt_file}: {exc}") from exc
        if not prompt:
            raise InputError(f"The prompt file {self.prompt_file} is empty.")
        return prompt


def _check_cascade(threshold: float, provider: ProviderSpec) -> None:
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(
            f"--cascade takes a probability above 0 and at most 1, got {threshold:g}."
        )
    if not provider.keyed:
        raise ConfigError(
            f"--cascade sends the offline model's doubtful images to a paid provider; the "
            f"{provider.name} provider is not one. Choose one with --provider (and its key)."
        )


def _base_url(provider: ProviderSpec) -> str | None:
    return setting(provider.base_url_var) if provider.base_url_var else None


def _votes(option: int) -> int:
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
