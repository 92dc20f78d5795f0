"""`--provider local`: emotag's built-in offline model (`emotag.providers.offline`) behind the same
seam as the paid providers. No key, no network, no cost; the default where no key is set.

Each image is judged in a thread of the run's pool: onnxruntime releases the GIL, so the
run's concurrency spreads the work over every core.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from emotag.errors import AnswerError, ConfigError
from emotag.providers import ProviderSpec, Setup
from emotag.providers.offline.weights import MODEL_NAME
from emotag.providers.seam import Price

if TYPE_CHECKING:
    from emotag.files.images import Prepared
    from emotag.providers.answers import Answer
    from emotag.providers.negotiation import Negotiator

ENDPOINT: Final = "this machine"


class LocalProvider:
    """Labels with the offline model; every image gets one answer, the same each time."""

    service = "offline model"
    reports_model = False

    def __init__(self, settings: Negotiator) -> None:
        from emotag.providers import offline

        offline.load()  # a damaged install or a missing onnxruntime fails before any work
        self.model = MODEL_NAME
        self.endpoint = ENDPOINT
        self.settings = settings

    async def label(self, image: Prepared, n: int = 1) -> list[Answer]:
        return [await asyncio.to_thread(answer_for, image.data)]

    async def aclose(self) -> None:
        return None


def answer_for(jpeg: bytes) -> Answer:
    """The offline model's judgement of one prepared image, as an answer."""
    from emotag.providers import offline
    from emotag.providers.answers import Answer

    try:
        judgement = offline.judge(jpeg)
    except OSError as exc:  # Pillow cannot read it back: no label, the image's failure
        raise AnswerError(f"the offline model cannot read the image: {exc}") from exc
    return Answer(
        emotion=judgement.emotion or "neutral",  # ignored where no face was found
        confidence=judgement.probability,
        confidence_source=offline.CONFIDENCE_SOURCE if judgement.probability is not None else "",
        input_tokens=0,
        output_tokens=0,
        faces=judgement.faces,
    )


def _check(model: str, base_url: str | None) -> None:
    if model != MODEL_NAME:
        raise ConfigError(
            f"The local provider has one model, {MODEL_NAME}; leave out --model "
            f"(and EMOTAG_MODEL), not {model}."
        )
    if base_url:
        raise ConfigError("The local provider runs on this machine; it takes no --base-url.")


def _build(setup: Setup) -> LocalProvider:
    _check(setup.model, setup.base_url)
    return LocalProvider(setup.negotiator(()))


SPEC: Final = ProviderSpec(
    name="local",
    about="the built-in offline model",
    key_var="",
    base_url_var="",
    default_endpoint=ENDPOINT,
    default_model=MODEL_NAME,
    build=_build,
    input_tokens=lambda model, prompt, width, height: 0,
    prices=(Price(MODEL_NAME, 0.0, 0.0, 0.0, "2026-12-05", "runs on this machine"),),
    deterministic=True,
    check=_check,
    needs_key=lambda base_url: False,
)
