"""Near-duplicate images (resized, re-encoded copies) by perceptual hash: reported, not merged."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from emotag.errors import ImageError
from emotag.files.images import load_rgb

MAX_DISTANCE = 7  # the byte index below finds every pair this close, and only those


@dataclass
class DupeReport:
    groups: list[list[tuple[Path, int]]] = field(default_factory=list)  # (path, distance to first)
    hashed: int = 0
    unreadable: list[tuple[Path, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """`emotag dupes --json`."""
        groups = [[{"path": str(p), "distance": d} for p, d in group] for group in self.groups]
        return {"hashed": self.hashed, "groups": groups}


def dhash(raw: bytes) -> int:
    """64-bit difference hash: does brightness fall from each pixel to its right neighbour?"""
    from PIL import Image

    rgb = load_rgb(raw, 256)
    small = rgb.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    pixels = small.tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = bits << 1 | (pixels[row * 9 + col] > pixels[row * 9 + col + 1])
    return bits


def find_near_duplicates(paths: Iterable[Path], max_distance: int = 5) -> DupeReport:
    """Group images whose hashes differ in at most `max_distance` bits (0 to 7)."""
    if not 0 <= max_distance <= MAX_DISTANCE:
        raise ValueError(f"max_distance must be 0..{MAX_DISTANCE}")
    report = DupeReport()
    hashes: list[tuple[Path, int]] = []
    todo = list(paths)
    with ThreadPoolExecutor() as pool:
        for path, outcome in zip(todo, pool.map(_hash_file, todo), strict=True):
            if isinstance(outcome, str):
                report.unreadable.append((path, outcome))
            else:
                hashes.append((path, outcome))
    report.hashed = len(hashes)
    parent = list(range(len(hashes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Two hashes within 7 bits agree on at least one of their 8 bytes (pigeonhole), so
    # only images sharing a byte at the same position are compared: no N² scan.
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, (_, value) in enumerate(hashes):
        for position in range(8):
            buckets[(position, value >> (8 * position) & 0xFF)].append(index)
    for members in buckets.values():
        for a_pos, a in enumerate(members):
            for b in members[a_pos + 1 :]:
                if root(a) != root(b) and (hashes[a][1] ^ hashes[b][1]).bit_count() <= max_distance:
                    parent[root(b)] = root(a)
    grouped: dict[int, list[int]] = defaultdict(list)
    for index in range(len(hashes)):
        grouped[root(index)].append(index)
    for members in grouped.values():
        if len(members) > 1:
            first = hashes[members[0]][1]
            report.groups.append(
                [(hashes[i][0], (hashes[i][1] ^ first).bit_count()) for i in members]
            )
    report.groups.sort(key=lambda group: str(group[0][0]))
    return report


def _hash_file(path: Path) -> int | str:
    try:
        return dhash(path.read_bytes())
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    except ImageError as exc:
        return f"unreadable image: {exc}"
