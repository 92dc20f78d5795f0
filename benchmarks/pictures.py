"""Photo-like test pictures for the benchmarks: textured, not flat colour, at the sizes
face datasets hold."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageFilter


def textured(size: tuple[int, int], seed: int) -> Image.Image:
    """A photo-like picture: soft gradients and blurred noise, unique per seed."""
    width = size[0]
    gradient = Image.linear_gradient("L").resize(size)
    noise = [Image.effect_noise(size, 60 + seed % 7) for _ in range(3)]
    red = Image.blend(gradient, noise[0].filter(ImageFilter.GaussianBlur(2)), 0.5)
    green = noise[1].filter(ImageFilter.GaussianBlur(1))
    blue = Image.blend(gradient.transpose(Image.Transpose.ROTATE_180), noise[2], 0.25)
    img = Image.merge("RGB", (red, green, blue))
    img.paste((seed * 37 % 256, seed * 91 % 256, seed * 53 % 256), (0, 0, max(4, width // 10), 4))
    return img


def encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


KINDS: dict[str, Callable[[int], bytes]] = {
    "fer_48x48_grey_png": lambda s: encode(textured((48, 48), s).convert("L"), "PNG"),
    "celeba_178x218_jpeg": lambda s: encode(textured((178, 218), s), "JPEG", quality=90),
    "photo_900x700_jpeg": lambda s: encode(textured((900, 700), s), "JPEG", quality=85),
    "camera_4000x3000_jpeg": lambda s: encode(textured((4000, 3000), s), "JPEG", quality=90),
    "large_2000x1500_png": lambda s: encode(textured((2000, 1500), s), "PNG"),
}
