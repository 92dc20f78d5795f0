"""One exception hierarchy; the CLI turns each into a one-line message and an exit code."""


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
    """The API refused in a way no retry can fix (bad key, unknown model)."""


class ImageError(EmotagError):
    """One image could not be read or converted; reported per image, never fatal."""


class AnswerError(EmotagError):
    """The model's answer for one image is not usable as a label."""
