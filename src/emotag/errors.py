"""One exception hierarchy; the CLI turns each into a one-line message and an exit code.

Providers raise the API-side classes below; the engine decides what each costs: an
image's attempt (TransientAPIError), nothing (Throttled, NetworkError), or the run
(FatalAPIError and its children).
"""


class EmotagError(Exception):
    """Base for every error emotag reports to a user; the message says what to do next."""

    exit_code = 2


class ConfigError(EmotagError):
    """Bad option, missing key, unknown model: nothing was (or will be) sent."""


class InputError(EmotagError):
    """A file the user gave us is missing or malformed."""


class OutputError(EmotagError):
    """An output file cannot be written (permissions, disk full, locked by another run)."""


class FatalAPIError(EmotagError):
    """The API refused in a way no retry can fix (bad key, unknown model, region, billing):
    the run stops and no image is blamed.

    `then` is what to do next; the engine fills in `saved`, the labels a stopped run kept.
    """

    def __init__(self, message: str, *, then: str = "", saved: int | None = None) -> None:
        super().__init__(message)
        self.then = then
        self.saved = saved

    def __str__(self) -> str:
        text = str(self.args[0])
        if not (self.saved or self.then):
            return text
        saved = f"; {self.saved} label(s) saved" if self.saved else ""
        then = f" {self.then}." if self.then else ""
        return f"{text.rstrip('.')}{saved}.{then}"


class QuotaSpent(FatalAPIError):
    """A per-day quota is used up: waiting minutes will not help, so the run stops."""

    def __init__(self, message: str, saved: int | None = None) -> None:
        super().__init__(
            message,
            then="Run the same command after the quota resets, "
            "or use --batch (a separate quota, half the price)",
            saved=saved,
        )

    def __str__(self) -> str:
        saved = "" if self.saved is None else f"; {self.saved} label(s) saved"
        return f"{self.args[0]}{saved}. {self.then}."


class RunStalled(FatalAPIError):
    """Every recent request failed the same run-wide way (unreachable, throttled) for too
    long; nothing was lost and a later run resumes."""


class ImageError(EmotagError):
    """One image could not be read or converted; reported per image, never fatal."""


class AnswerError(EmotagError):
    """The model's answer for one image is not usable as a label."""


class TransientAPIError(EmotagError):
    """A failure worth retrying that costs the image one attempt (5xx, 408)."""

    def __init__(self, message: str, retry_after: float | None = None, code: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.code = code


class Throttled(TransientAPIError):
    """429: a property of the run's quota, not of the image, so it costs no attempt."""


class NetworkError(TransientAPIError):
    """The request never got an HTTP answer (refused, DNS, TLS, reset); costs no attempt,
    but a run where nothing else happens for long is stopped as an outage."""
