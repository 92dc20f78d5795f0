"""Turn any image file into small 8-bit RGB JPEG bytes for the model."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emotag.errors import ImageError
from emotag.settings import DEFAULT_MAX_SIDE

if TYPE_CHECKING:
    from PIL import Image as PILImage

JPEG_QUALITY = 88


@dataclass(frozen=True, slots=True)
class Prepared:
    """Upload-ready bytes and what was done to get them."""

    data: bytes
    mime_type: str
    width: int
    height: int
    original_width: int
    original_height: int


def prepare(raw: bytes, max_side: int = DEFAULT_MAX_SIDE) -> Prepared:
    """Decode, orient, convert to RGB and shrink; raise ImageError with a readable reason."""
    rgb, original = load_rgb(raw, max_side)
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return Prepared(out.getvalue(), "image/jpeg", *rgb.size, *original)


def load_rgb(raw: bytes, max_side: int) -> tuple[PILImage.Image, tuple[int, int]]:
    """The upright 8-bit RGB image, at most `max_side` a side, and the original size."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not raw:
        raise ImageError("empty file")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit; treat that as a bomb too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as img:
                original = img.size
                if img.format == "JPEG":
                    # Draft mode lets libjpeg decode at 1/2, 1/4 or 1/8 scale: a 24 MP photo
                    # is never fully decoded.
                    img.draft("RGB", (max_side, max_side))
                img.seek(0)
                rgb = _to_rgb(ImageOps.exif_transpose(img))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image too large (decompression bomb guard): {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not an image Pillow can read") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"corrupt or truncated image: {exc}") from exc
    rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return rgb, original


def _to_rgb(img: PILImage.Image) -> PILImage.Image:
    """Convert any mode faithfully: 16-bit is scaled, not clipped; alpha goes on white."""
    from PIL import Image

    if img.mode.startswith("I;16"):
        # Pillow's own I;16 -> L conversion clips at 255; scale the 16-bit range instead.
        img = img.convert("I").point(lambda v: v / 257).convert("L")
    elif img.mode in ("I", "F"):
        as_float = img.convert("F")
        low, high = (float(v) for v in as_float.getextrema())  # type: ignore[arg-type]
        if low < 0 or high > 255:
            # 32-bit data has no fixed range: stretch what is there to 0..255.
            span = (high - low) or 1.0
            as_float = as_float.point(lambda v: (v - low) * 255.0 / span)
        img = as_float.convert("L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")
