"""How a fake "sees" a test image: each of the seven emotions has a colour, so an image of
one flat colour is answered with its emotion and a test knows every label in advance."""

from __future__ import annotations

import base64
import io
import random

from PIL import Image

EMOTION_COLOURS = ("happy", "surprise", "angry", "disgust", "fear", "neutral", "sad")
COLOURS: dict[str, tuple[int, int, int]] = {
    "happy": (240, 200, 20),
    "surprise": (250, 120, 0),
    "angry": (200, 20, 20),
    "disgust": (20, 140, 20),
    "fear": (130, 20, 150),
    "neutral": (128, 128, 128),
    "sad": (20, 40, 210),
    # Not emotions: colours tests use to script special answers.
    "cyan": (0, 230, 230),
    "ambiguous": (200, 160, 100),  # answers happy or surprise at random (ambiguous_happy)
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}


def decode(data: str) -> bytes:
    """Base64 as the SDKs send it: URL-safe or not, padding dropped or not."""
    cleaned = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))


def nearest_colour(rgb: tuple[float, ...]) -> str:
    def distance(name: str) -> float:
        return sum((a - b) ** 2 for a, b in zip(COLOURS[name], rgb, strict=True))

    return min(COLOURS, key=distance)


def colour_of(image: bytes) -> tuple[tuple[int, int], str]:
    """An image's size and the named colour nearest its mean."""
    with Image.open(io.BytesIO(image)) as img:
        rgb = img.convert("RGB")
        mean = rgb.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
        return rgb.size, nearest_colour(tuple(mean))


def seen_label(colour: str | None, rng: random.Random, happy_share: float) -> str:
    """The emotion a fake sees in a colour: an "ambiguous" face is happy `happy_share` of
    the time, else surprise; a colour that is no emotion looks neutral."""
    if colour == "ambiguous":
        return "happy" if rng.random() < happy_share else "surprise"
    return colour if colour in EMOTION_COLOURS else "neutral"
