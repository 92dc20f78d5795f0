"""Turn any image file into small 8-bit RGB JPEG bytes for the model."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Final

from emotag.errors import ImageError

if TYPE_CHECKING:
    from PIL import Image as PILImage

# The long side sent: Gemini 2.x's flat 258-token tier; a face is clear at this size.
DEFAULT_MAX_SIDE: Final = 384

JPEG_QUALITY = 88
OPTIMIZE_UP_TO_PIXELS = 256 * 256
# ISO base media files name their format in the `ftyp` box (bytes 8-12): HEIF's brands
# (phone photos) need pillow-heif, AVIF's a Pillow built with libavif (its wheels are).
HEIF_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1"})
AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})


class NeedsExtra(ImageError):
    """The file is in a format this installation cannot decode; `remedy` says what to
    install (the image is fine, so a re-run after installing reads it)."""

    def __init__(self, remedy: str) -> None:
        super().__init__(f"needs {remedy}")
        self.remedy = remedy


@dataclass(frozen=True, slots=True)
class Prepared:
    """Upload-ready bytes and what was done to get them."""

    data: bytes
    mime_type: str
    width: int
    height: int


def prepare(raw: bytes, max_side: int = DEFAULT_MAX_SIDE) -> Prepared:
    """Decode, orient, convert to RGB and shrink; raise ImageError with a readable reason."""
    rgb = load_rgb(raw, max_side)
    out = io.BytesIO()
    # Optimised Huffman tables are a second pass: worth it on small pictures, which it
    # shrinks most for least CPU, not on larger ones (docs/performance.md has the figures).
    optimize = rgb.width * rgb.height <= OPTIMIZE_UP_TO_PIXELS
    rgb.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=optimize)
    return Prepared(out.getvalue(), "image/jpeg", *rgb.size)


def load_rgb(raw: bytes, max_side: int) -> PILImage.Image:
    """The upright 8-bit RGB image, at most `max_side` a side.

    The cost hardly depends on the file's size: a JPEG is decoded by libjpeg at 1/2, 1/4
    or 1/8 scale straight towards the target (a box with the image's own aspect, or the
    short side would keep it at full size), any image is shrunk by an integer `reduce()`
    to within twice the target before the one filtered step, and the EXIF orientation is
    applied to the small result, not the full-size one.
    """
    from PIL import Image, UnidentifiedImageError

    if not raw:
        raise ImageError("empty file")
    _check_decoder(raw[8:12] if raw[4:8] == b"ftyp" else b"")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit; treat that as a bomb too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as img:
                box = fit(img.size, max_side)
                if img.format == "JPEG":
                    img.draft("L" if img.mode == "L" else "RGB", box)
                img.seek(0)
                orientation = img.getexif().get(_ORIENTATION, 1)
                small = _shrink(_to_rgb_or_grey(img), box)
                small.load()  # may still be `img` itself, which cannot load once closed
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image too large (decompression bomb guard): {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not an image Pillow can read") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"corrupt or truncated image: {exc}") from exc
    rgb = small if small.mode == "RGB" else small.convert("RGB")
    method = _transpositions().get(orientation) if isinstance(orientation, int) else None
    return rgb.transpose(method) if method is not None else rgb  # type: ignore[arg-type]


def _check_decoder(brand: bytes) -> None:
    """Make HEIF readable where pillow-heif is installed; else say what to install."""
    if brand in HEIF_BRANDS and not _heif_registered():
        raise NeedsExtra("emotag[heif]")
    if brand in AVIF_BRANDS and not _avif_built_in():
        raise NeedsExtra("a Pillow with AVIF (pip install -U pillow)")


@cache
def _heif_registered() -> bool:
    """pillow-heif's opener, registered on the first HEIF file (its import is slow, and
    most folders have none)."""
    try:
        import pillow_heif  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


@cache
def _avif_built_in() -> bool:
    from PIL import features

    return bool(features.check("avif"))


def fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled to at most `max_side` on its long side, aspect kept; never enlarged."""
    width, height = size
    if max(width, height) <= max_side:
        return size
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrink(img: PILImage.Image, box: tuple[int, int]) -> PILImage.Image:
    from PIL import Image

    if img.size == box:
        return img
    # reducing_gap: an exact integer reduce() first, then one filtered step over at most 2x.
    # Over so short a step bilinear keeps the detail of LANCZOS for less CPU
    # (docs/performance.md compares the filters).
    return img.resize(box, Image.Resampling.BILINEAR, reducing_gap=2.0)


_ORIENTATION = 0x0112  # the EXIF Orientation tag


def _transpositions() -> dict[int, int]:
    from PIL import Image

    t = Image.Transpose
    return {
        2: t.FLIP_LEFT_RIGHT,
        3: t.ROTATE_180,
        4: t.FLIP_TOP_BOTTOM,
        5: t.TRANSPOSE,
        6: t.ROTATE_270,
        7: t.TRANSVERSE,
        8: t.ROTATE_90,
    }


def _to_rgb_or_grey(img: PILImage.Image) -> PILImage.Image:
    """Convert any mode faithfully to RGB or L (L stays L until it is small): 16-bit is
    scaled, not clipped; alpha goes on white."""
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
    return img if img.mode in ("RGB", "L") else img.convert("RGB")
