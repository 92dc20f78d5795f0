from __future__ import annotations

import io
import json
import re
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from emotag.cli import app
from emotag.errors import ImageError
from emotag.files.images import fit, load_rgb, prepare
from helpers import read_csv


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_prepare_shrinks_to_max_side_and_emits_rgb_jpeg() -> None:
    result = prepare(encode(Image.new("RGB", (4000, 3000), (10, 200, 10)), "JPEG"), 384)
    img = decoded(result.data)
    assert img.format == "JPEG" and img.mode == "RGB"
    assert img.size == (384, 288) == (result.width, result.height)


def test_prepare_keeps_small_images_small() -> None:
    result = prepare(encode(Image.new("RGB", (100, 50), "red"), "PNG"), 384)
    assert (result.width, result.height) == (100, 50)


def test_prepare_applies_exif_orientation() -> None:
    img = Image.new("RGB", (200, 100), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    result = prepare(encode(img, "JPEG", exif=exif), 384)
    assert (result.width, result.height) == (100, 200)


def test_prepare_converts_16_bit_by_scaling_not_clipping() -> None:
    img = Image.new("I;16", (8, 8))
    img.putpixel((0, 0), 0)
    for x in range(1, 8):
        img.putpixel((x, 0), 60000)
    pixel = decoded(prepare(encode(img, "PNG"), 384).data).getpixel((7, 7))
    # 0 maps to black; the rest is not all clipped to white because the range is rescaled.
    assert isinstance(pixel, tuple) and pixel[0] < 30
    top = decoded(prepare(encode(img, "PNG"), 384).data).getpixel((7, 0))
    assert isinstance(top, tuple) and top[0] > 200


def row_of(mode: str, values: list[float]) -> Image.Image:
    img = Image.new(mode, (len(values), 1))
    for x, value in enumerate(values):
        img.putpixel((x, 0), value)
    return img


@pytest.mark.parametrize(
    ("img", "fmt", "grey"),
    [
        pytest.param(row_of("I;16", [0, 100 * 257, 65535]), "PNG", [0, 100, 255], id="16-bit"),
        pytest.param(row_of("I", [0, 100, 255]), "TIFF", [0, 100, 255], id="32-bit-in-range"),
        pytest.param(row_of("I", [0, 204, 510]), "TIFF", [0, 102, 255], id="32-bit-wide"),
        pytest.param(row_of("F", [0.0, 100.0, 255.0]), "TIFF", [0, 100, 255], id="float"),
        pytest.param(row_of("F", [-1.0, -0.2, 1.0]), "TIFF", [0, 102, 255], id="float-signed"),
        pytest.param(row_of("L", [0, 100, 255]), "PNG", [0, 100, 255], id="grey"),
        pytest.param(row_of("1", [0, 1, 1]), "PNG", [0, 255, 255], id="bilevel"),
    ],
)
def test_every_mode_reaches_8_bit_rgb_scaled_not_clipped(
    img: Image.Image, fmt: str, grey: list[int]
) -> None:
    rgb = load_rgb(encode(img, fmt), 384)
    assert rgb.mode == "RGB"
    pixels = [rgb.getpixel((x, 0)) for x in range(3)]
    assert pixels == [(v, v, v) for v in grey]


@pytest.mark.parametrize(
    ("img", "colour"),
    [
        pytest.param(Image.new("RGBA", (2, 1), (255, 0, 0, 128)), (255, 127, 127), id="RGBA"),
        pytest.param(Image.new("LA", (2, 1), (0, 0)), (255, 255, 255), id="LA"),
        pytest.param(Image.new("RGBA", (2, 1), (0, 0, 255, 0)).convert("P"), (255, 255, 255),
                     id="P-transparent"),
        pytest.param(Image.new("RGB", (2, 1), (0, 0, 255)).convert("P"), (0, 0, 255), id="P"),
    ],
)  # fmt: skip
def test_transparency_goes_on_white(img: Image.Image, colour: tuple[int, int, int]) -> None:
    assert load_rgb(encode(img, "PNG"), 384).getpixel((0, 0)) == pytest.approx(colour, abs=2)


def test_prepare_converts_cmyk_jpeg() -> None:
    result = prepare(encode(Image.new("RGB", (32, 32), (200, 20, 20)).convert("CMYK"), "JPEG"), 384)
    r, g, b = decoded(result.data).getpixel((16, 16))  # type: ignore[misc]
    assert r > 150 and g < 80 and b < 80


def test_prepare_puts_transparency_on_white() -> None:
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    pixel = decoded(prepare(encode(rgba, "PNG"), 384).data).getpixel((8, 8))
    assert pixel == pytest.approx((255, 255, 255), abs=3)


def test_prepare_palette_and_animated_gif_use_the_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), c).convert("P") for c in ((0, 0, 255), (255, 0, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    r, _g, b = decoded(prepare(buffer.getvalue(), 384).data).getpixel((10, 10))  # type: ignore[misc]
    assert b > 200 and r < 50


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "^empty file$", id="zero-bytes"),
        pytest.param(b"hello, I am text", "^not an image Pillow can read$", id="text"),
        pytest.param(
            encode(Image.new("RGB", (300, 300), "blue"), "JPEG")[:400],
            "truncated",
            id="truncated-jpeg",
        ),
    ],
)
def test_prepare_rejects_bad_files(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        prepare(data, 384)


def png_with_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [100_000, 10_000], ids=["past-2x", "1x-2x"])
def test_prepare_refuses_decompression_bombs(side: int) -> None:
    """Pillow only warns between one and two times its pixel limit: a bomb too."""
    with pytest.raises(ImageError, match="decompression bomb"):
        prepare(png_with_size(side, side), 384)


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((1024, 600), (1024, 600)),  # at the limit: kept
        ((1025, 600), (1024, 599)),
        ((5000, 2), (1024, 1)),  # a sliver keeps at least one pixel a side
        ((2, 5000), (1, 1024)),
        ((300, 200), (300, 200)),  # never enlarged
    ],
)
def test_fit_scales_the_long_side_to_the_limit_keeping_the_aspect(
    size: tuple[int, int], box: tuple[int, int]
) -> None:
    assert fit(size, 1024) == box


@pytest.mark.parametrize(
    ("size", "box", "decoded"),
    [
        ((6000, 4000), (384, 256), (750, 500)),  # 1/8 scale
        ((900, 700), (384, 299), (450, 350)),  # 1/2: a square box would decode it whole
        ((300, 200), (300, 200), (300, 200)),  # small enough already
    ],
)
def test_prepare_decodes_jpegs_at_reduced_scale_towards_an_aspect_box(
    monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
    box: tuple[int, int],
    decoded: tuple[int, int],
) -> None:
    from PIL import JpegImagePlugin

    real_draft = JpegImagePlugin.JpegImageFile.draft
    asked: list[tuple[object, object]] = []

    def spy(self, mode, requested):  # type: ignore[no-untyped-def]
        result = real_draft(self, mode, requested)
        asked.append((requested, self.size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    raw = encode(Image.new("RGB", size, (90, 90, 90)), "JPEG", quality=80)
    result = prepare(raw, 384)
    assert asked == [(box, decoded)]
    assert (result.width, result.height) == box


def heic(path: Path, colour: str) -> Path:
    """A phone-style HEIC photo (pillow-heif writes it)."""
    import pillow_heif

    from fakes.colours import COLOURS

    pillow_heif.register_heif_opener()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (80, 60), COLOURS[colour]).save(path, format="HEIF")
    return path


@pytest.fixture
def heif_memo() -> Iterator[None]:
    """Whether pillow-heif is there is remembered per process: forget it around a test."""
    from emotag.files import images

    images._heif_registered.cache_clear()
    yield
    images._heif_registered.cache_clear()


def test_phone_photos_are_labelled_with_the_heif_extra(
    gemini, tmp_path: Path, heif_memo: None
) -> None:
    heic(tmp_path / "in" / "IMG_0001.HEIC", "sad")
    Image.new("RGB", (70, 50), (0, 0, 0)).save(tmp_path / "in" / "IMG_0002.avif")
    result = CliRunner().invoke(app, ["tag", str(tmp_path / "in")])
    assert result.exit_code == 0, result.output
    rows = {r["filename"]: r["emotion"] for r in read_csv(Path("dataset/llm_labels.csv"))}
    assert rows["IMG_0001.HEIC"] == "sad" and "IMG_0002.avif" in rows


def test_without_the_extra_heic_files_are_counted_by_extension_and_the_extra_named(
    gemini, tmp_path: Path, heif_memo: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    heic(tmp_path / "in" / "a.heic", "sad")
    heic(tmp_path / "in" / "b.HEIC", "happy")
    Image.new("RGB", (30, 30), (250, 200, 0)).save(tmp_path / "in" / "c.png")
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # installed without the extra
    result = CliRunner().invoke(app, ["tag", str(tmp_path / "in"), "--json"])
    assert result.exit_code == 1, result.output
    failures = json.loads(result.stdout)["failures"]
    assert failures == {"needs emotag[heif] (.heic)": 2}
    table = CliRunner().invoke(app, ["tag", str(tmp_path / "in")])
    # The extension and the extra's name, not eaten as markup: "[heif]" stays.
    assert re.search(r"failed: needs emotag\[heif\] \(\.heic\)\s*│\s*2\s*│", table.stdout)
    assert gemini.count == 1  # only the PNG was sent
