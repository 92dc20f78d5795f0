"""emotag-palette: a tiny emotag provider plugin, the worked example of docs/providers.md.

It labels an image by its mean colour (yellow is happy, blue is sad...) on this machine:
no network and no key. A real plugin sends the image to its service in `label` and
sorts the service's errors into `emotag.errors`' classes.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from PIL import Image

from emotag.providers import Answer, Negotiator, Prepared, ProviderSpec, Setup, read_text

PALETTE = {
    "happy": (240, 200, 20),
    "surprise": (250, 120, 0),
    "angry": (200, 20, 20),
    "disgust": (20, 140, 20),
    "fear": (130, 20, 150),
    "neutral": (128, 128, 128),
    "sad": (20, 40, 210),
}


@dataclass
class PaletteProvider:
    model: str
    settings: Negotiator
    endpoint: str = "this machine"
    service: str = "palette"
    reports_model: bool = False

    async def label(self, image: Prepared, n: int = 1) -> list[Answer]:
        with Image.open(io.BytesIO(image.data)) as picture:
            mean = picture.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))

        def distance(name: str) -> float:
            return sum((a - b) ** 2 for a, b in zip(PALETTE[name], mean, strict=True))

        emotion = min(PALETTE, key=distance)
        # The same strict parsing as the built-in providers: only the seven get through.
        return [read_text(json.dumps({"faces": "one", "emotion": emotion}), [])]

    async def aclose(self) -> None:
        return None


def build(setup: Setup) -> PaletteProvider:
    return PaletteProvider(setup.model, setup.negotiator(()), setup.endpoint)


SPEC = ProviderSpec(
    name="palette",
    about="mean colour, on this machine",
    key_var="EMOTAG_PALETTE_KEY",
    base_url_var="EMOTAG_PALETTE_URL",
    default_endpoint="this machine",
    default_model="palette-1",
    build=build,
    input_tokens=lambda model, prompt, width, height: 0,
    needs_key=lambda base_url: False,
)
