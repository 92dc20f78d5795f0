"""`audit.html`: one self-contained page to check a sample quickly, keyboard first, with
the report's escaping and Content-Security-Policy. No network."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from emotag.emotions import EMOTIONS
from emotag.files.atomic import atomic_text
from emotag.pages.review_page import fill, thumbnail

if TYPE_CHECKING:
    from emotag.quality.audit import Sampled

PICTURE_SIDE = 420
TEMPLATE = Path(__file__).with_name("audit_page.html")


def build_page(rows: Sequence[Sampled], output: Path, *, source: Path) -> None:
    with ThreadPoolExecutor() as pool:
        pictures = list(pool.map(lambda row: thumbnail(row.path, PICTURE_SIDE), rows))
    data = {
        "emotions": list(EMOTIONS),
        "source": str(source),
        "rows": [
            {"path": row.path, "emotion": row.emotion, "confidence": row.confidence, "img": img}
            for row, img in zip(rows, pictures, strict=True)
        ],
    }
    page = fill(TEMPLATE, f"emotag audit — {source.name}", data)
    with atomic_text(output) as handle:
        handle.write(page)
