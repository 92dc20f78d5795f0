"""The offline model's speed: `tag --provider local` against `tag --dry-run` on the same
folder of photos (the dry run reads, hashes and prepares every image as the real run does,
so the difference is the model), and the run's peak memory.

    python benchmarks/bench_local.py                # 240 photos of ~1000 px, 3 rounds
    python benchmarks/bench_local.py --images 40 --rounds 1   # a smoke test

Each photo is a textured picture (pictures.py) with a head-and-shoulders crop of one of
the shipped example faces pasted in at a random place and size (`--small-faces`: the
whole example pictures, where a third of the faces are small), saved as a JPEG: new bytes
every time, so nothing is resumed or deduplicated. Whole processes are timed, in
alternating rounds; the figures are the medians, with each round's own ratio. The goal
(issue 33): the local run takes at most twice the dry run's wall time, with a peak RSS
under 400 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pictures import textured
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FACES = sorted((ROOT / "examples" / "faces").glob("*.[pj][np]g"))


def heads() -> list[Image.Image]:
    """Head-and-shoulders crops of the shipped example faces: the face's box from the
    offline model's own detector, widened 2.5 times."""
    from emotag.providers.offline.faces import find_faces

    crops = []
    for path in FACES:
        picture = Image.open(path).convert("RGB")
        (face, *_) = find_faces(picture)
        side = 2.5 * max(face.right - face.left, face.bottom - face.top)
        x, y = (face.left + face.right) / 2, (face.top + face.bottom) / 2
        box = (x - side / 2, y - side / 2, x + side / 2, y + side / 2)
        crops.append(picture.crop(tuple(round(v) for v in box)))
    return crops


def make_photos(folder: Path, count: int, *, small_faces: bool = False) -> None:
    """Portraits (a head filling 40-70% of the picture's height), or with `small_faces`
    the whole example pictures pasted at a third to two thirds of it, where some faces
    are small enough to need the second, full-range detector."""
    faces = heads() if not small_faces else [Image.open(p).convert("RGB") for p in FACES]
    low, high = (0.4, 0.7) if not small_faces else (1 / 3, 2 / 3)
    rng = random.Random(0)
    for seed in range(count):
        size = (rng.randint(900, 1100), rng.randint(700, 1000))
        photo = textured(size, seed)
        face = faces[seed % len(faces)]
        side = rng.randint(round(size[1] * low), round(size[1] * high))
        pasted = face.resize((side, side * face.height // face.width))
        corner = (rng.randint(0, size[0] - side), rng.randint(0, max(0, size[1] - pasted.height)))
        photo.paste(pasted, corner)
        photo.save(folder / f"photo_{seed:04d}.jpg", quality=88)


def timed(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `emotag` process."""
    env = {**os.environ, "EMOTAG_CACHE_DIR": str(cwd / "cache")}
    for name in ("AI_STUDIO_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "EMOTAG_PROVIDER"):
        env.pop(name, None)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "emotag", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"emotag {' '.join(args)} failed")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--small-faces", action="store_true", help="whole pictures, some faces small"
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        photos = work / "photos"
        photos.mkdir()
        make_photos(photos, args.images, small_faces=args.small_faces)
        rounds = []
        for number in range(args.rounds):
            dry, _ = timed(["tag", str(photos), "--provider", "local", "--dry-run"], work)
            output = work / f"labels_{number}.csv"
            local, rss = timed(
                ["tag", str(photos), "--provider", "local", "-q", "-o", str(output)], work
            )
            rounds.append(
                {"dry_run_s": dry, "local_s": local, "ratio": local / dry, "peak_rss_mb": rss}
            )
            print(
                f"round {number + 1}: dry run {dry:.2f} s, local {local:.2f} s, "
                f"ratio {local / dry:.2f}, peak RSS {rss:.0f} MB"
            )
    result = {
        "images": args.images,
        "photos": "small faces" if args.small_faces else "portraits",
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "rounds": rounds,
        "median": {key: statistics.median(r[key] for r in rounds) for key in rounds[0]},
    }
    median = result["median"]
    print(
        f"median: dry run {median['dry_run_s']:.2f} s, local {median['local_s']:.2f} s, "
        f"ratio {median['ratio']:.2f} (goal <= 2), peak RSS {median['peak_rss_mb']:.0f} MB "
        "(goal < 400)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
