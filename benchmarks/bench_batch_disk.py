"""Batch mode's local disk, state size, time and memory on N small images.

    python benchmarks/bench_batch_disk.py --images 100000 --batch-size 5000

Runs `emotag tag DIR --batch`, `batch wait` and `batch fetch` as real processes against the
fake in its own process, and prints (and writes to docs/bench/batch_disk.json) the wall
time and peak RSS of `tag --batch`, the peak bytes under `<stem>.batch/` while it ran
(sampled every 20 ms), and what is left beside the CSVs after submitting and after fetching.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"


def make_images(root: Path, count: int) -> None:
    """Distinct tiny PNGs (every pixel value differs), 500 to a folder."""
    for i in range(count):
        folder = root / f"d{i // 500:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        colour = (i % 256, (i // 256) % 256, (i // 65536) % 256)
        Image.new("RGB", (24, 16), colour).save(folder / f"{i:07d}.png")


def tree_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):  # removed while we looked
                total += os.path.getsize(os.path.join(dirpath, name))
    return total


def leftovers(work: Path) -> dict[str, int]:
    """Bytes of every file beside the labels CSV, by name (folders summed)."""
    out = work / "out"
    found = {}
    for entry in sorted(out.iterdir()):
        found[entry.name] = tree_bytes(entry) if entry.is_dir() else entry.stat().st_size
    return found


def run(work: Path, env: dict[str, str], *args: str) -> tuple[float, int, str]:
    """Wall seconds and peak RSS (kB) of `python -m emotag ARGS`."""
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-m", "emotag", *args], cwd=work, env=env, capture_output=True, text=True
    )
    elapsed = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode not in (0, 1):
        raise SystemExit(f"emotag {' '.join(args)} failed: {done.stderr}")
    return elapsed, max(peak, before), done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--write", type=Path, default=None, help="JSON file for the figures")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        make_images(work / "in", options.images)
        fake = subprocess.Popen(
            [sys.executable, "-m", "fakes.gemini_api"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=TESTS,
        )
        try:
            url = (fake.stdout.readline() if fake.stdout else "").strip()
            env = {
                **os.environ,
                "GOOGLE_GEMINI_BASE_URL": url,
                "AI_STUDIO_API_KEY": "FAKE-emotag-test-key-0123456789abcdefghijk",
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                "EMOTAG_CACHE_DIR": str(work / "cache"),
            }
            batch_dir = work / "out" / "l.batch"
            peak = [0]
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.02):
                    peak[0] = max(peak[0], tree_bytes(batch_dir) if batch_dir.exists() else 0)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            args = ("tag", "in", "-o", "out/l.csv", "--batch", "--batch-size")
            seconds, rss, _ = run(work, env, *args, str(options.batch_size))
            stop.set()
            sampler.join()
            after_submit = leftovers(work)
            run(work, env, "batch", "wait", "-o", "out/l.csv", "--poll", "0.05")
            run(work, env, "batch", "fetch", "-o", "out/l.csv")
            after_fetch = leftovers(work)
        finally:
            fake.terminate()
            fake.wait()
    figures = {
        "images": options.images,
        "batch_size": options.batch_size,
        "tag_batch_seconds": round(seconds, 2),
        "tag_batch_peak_rss_mb": round(rss / 1024, 1),
        "peak_batch_folder_bytes": peak[0],
        "after_submit": after_submit,
        "after_fetch": after_fetch,
    }
    print(json.dumps(figures, indent=1))
    if options.write:
        options.write.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
