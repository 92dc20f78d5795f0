"""CPU per image, at the sizes face datasets hold, against the bare-SDK floor.

    python benchmarks/bench_cpu.py                 # a few minutes on 2 cores
    python benchmarks/bench_cpu.py --quick         # a smoke test

Measures, in one invocation (the fake Gemini server in its own process, zero latency):

1. Preparation per image for five realistic kinds (textured, not flat colour): a 48x48
   grey FER-style PNG, a 178x218 CelebA-style JPEG, a 900x700 photo JPEG (~150 KB), a
   4000x3000 12 MP JPEG, a 2000x1500 PNG: CPU of hashing and of preparing, upload bytes,
   and the detail kept (PSNR against a full-size decode shrunk with LANCZOS).
2. Whole-process CPU (user+sys) of `emotag tag` on 200 64x64 PNGs and on 200 900x700
   photo JPEGs, and of the bare SDK sending the 64x64 files as they are (the floor), in
   interleaved rounds; each figure is the least of its rounds.
3. The split of emotag's CPU per image: preparation, hashing, SDK (the floor per image),
   writing (one CSV row), and the rest (engine, rate gate, events).
4. The steps of preparing a 900x700 photo: libjpeg's decode at the draft scale, the same
   decode at 1/8 scale (all entropy decoding, next to no IDCT: the floor of any JPEG
   decode), the one filtered resize, the encode; and the 900x700/64x64 ratio the whole
   processes would show if the resize cost nothing.
5. Throughput at concurrency 32 and 0.4 s latency on 384 photo JPEGs, from the fake's
   request times (first to last request: start-up not counted); the best of 3 runs.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_tag import RemoteFake  # noqa: E402
from pictures import KINDS, encode, textured  # noqa: E402

from emotag.files import images  # noqa: E402
from emotag.files.csvfiles import LABEL_COLUMNS, Appender  # noqa: E402
from emotag.files.images import DEFAULT_MAX_SIDE  # noqa: E402
from emotag.records import Label  # noqa: E402
from fakes.gemini_api import TEST_KEY  # noqa: E402


def least(fn: Callable[[], None], rounds: int) -> float:
    """Least CPU seconds (this process) over `rounds` calls."""
    best = math.inf
    for _ in range(rounds):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio of two same-size RGB images, in dB (higher: closer)."""
    histogram = ImageChops.difference(a, b).histogram()
    squares = sum(count * (value % 256) ** 2 for value, count in enumerate(histogram))
    mse = squares / (a.width * a.height * 3)
    return 99.0 if mse == 0 else 10 * math.log10(255**2 / mse)


def reference(raw: bytes, size: tuple[int, int]) -> Image.Image:
    """The slow, careful result: full decode, orientation, LANCZOS to the same size."""
    with Image.open(io.BytesIO(raw)) as img:
        full = ImageOps.exif_transpose(img).convert("RGB")
    return full.resize(size, Image.Resampling.LANCZOS)


def preparation(count: int, rounds: int) -> dict[str, Any]:
    results = {}
    for kind, make in KINDS.items():
        n = count if "4000" not in kind and "2000" not in kind else max(3, count // 10)
        samples = [make(seed) for seed in range(n)]
        prepared = [images.prepare(raw) for raw in samples]
        hashing = least(lambda s=samples: [hashlib.sha256(raw).digest() for raw in s], rounds)
        prep = least(lambda s=samples: [images.prepare(raw) for raw in s], rounds)
        first = prepared[0]
        quality = psnr(
            Image.open(io.BytesIO(first.data)).convert("RGB"),
            reference(samples[0], (first.width, first.height)),
        )
        results[kind] = {
            "images": n,
            "file_kb": round(sum(map(len, samples)) / n / 1024, 1),
            "hash_ms": round(hashing / n * 1000, 3),
            "prepare_ms": round(prep / n * 1000, 3),
            "upload_kb": round(sum(len(p.data) for p in prepared) / n / 1024, 2),
            "upload_size": [first.width, first.height],
            "psnr_vs_lanczos_db": round(quality, 1),
        }
        print(f"  {kind}: {results[kind]}", flush=True)
    return results


def child_cpu(cmd: list[str], env: dict[str, str]) -> float:
    """User+sys CPU seconds of one child process."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return usage.ru_utime + usage.ru_stime


def processes(fake: RemoteFake, work: Path, count: int, rounds: int) -> dict[str, Any]:
    small, photos = work / "small", work / "photos"
    for folder, make, suffix in (
        (small, lambda s: encode(textured((64, 64), s), "PNG"), ".png"),
        (photos, KINDS["photo_900x700_jpeg"], ".jpg"),
    ):
        folder.mkdir()
        for i in range(count):
            (folder / f"img_{i:05d}{suffix}").write_bytes(make(i + 1000))
    env = {
        **os.environ,
        "AI_STUDIO_API_KEY": TEST_KEY,
        "GOOGLE_GEMINI_BASE_URL": fake.url,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "XDG_CACHE_HOME": str(work / "cache"),
    }
    emotag = [sys.executable, "-m", "emotag", "tag", "--quiet", "-c", "8"]
    commands = {
        "sdk_floor_64px_png": [
            sys.executable,
            str(HERE / "sdk_floor.py"),
            fake.url,
            str(small),
            "8",
        ],
        "emotag_64px_png": [*emotag, str(small), "-o", str(work / "o" / "small.csv")],
        "emotag_900x700_jpeg": [*emotag, str(photos), "-o", str(work / "o" / "photos.csv")],
    }
    figures: dict[str, float] = {name: math.inf for name in commands}
    for round_ in range(rounds):
        for name, cmd in commands.items():  # interleaved: noise hits every figure alike
            for leftover in (work / "o").glob("*"):
                leftover.unlink()
            figures[name] = min(figures[name], child_cpu(cmd, env))
        print(f"  round {round_ + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in figures.items()))
    per_image = {k: round(v / count * 1000, 2) for k, v in figures.items()}
    return {
        "images": count,
        "cpu_s": {k: round(v, 3) for k, v in figures.items()},
        "cpu_ms_per_image": per_image,
        "ratio_900x700_to_64px": round(
            figures["emotag_900x700_jpeg"] / figures["emotag_64px_png"], 3
        ),
        "ratio_emotag_to_sdk_floor": round(
            figures["emotag_64px_png"] / figures["sdk_floor_64px_png"], 3
        ),
    }


def photo_steps(count: int, rounds: int) -> dict[str, Any]:
    """CPU per 900x700 photo of each preparation step, in ms (least of rounds)."""
    samples = [KINDS["photo_900x700_jpeg"](seed) for seed in range(count)]
    box = images.fit((900, 700), DEFAULT_MAX_SIDE)

    def decode(raw: bytes, target: tuple[int, int]) -> Image.Image:
        with Image.open(io.BytesIO(raw)) as img:
            img.draft("RGB", target)
            img.load()
            return img.copy()

    decoded = decode(samples[0], box)
    small = decoded.resize(box, Image.Resampling.BILINEAR)
    steps = {
        "decode_at_draft_scale": lambda: [decode(raw, box) for raw in samples],
        "decode_at_1_8_floor": lambda: [decode(raw, (1, 1)) for raw in samples],
        "resize": lambda: [decoded.resize(box, Image.Resampling.BILINEAR) for _ in samples],
        "encode": lambda: [encode(small, "JPEG", quality=images.JPEG_QUALITY) for _ in samples],
        "prepare": lambda: [images.prepare(raw) for raw in samples],
    }
    result: dict[str, Any] = {"decoded_size": list(decoded.size)}
    for name, fn in steps.items():
        result[name] = round(least(fn, rounds) / count * 1000, 3)
    return result


def writing(rounds: int) -> float:
    """CPU per appended labels row (flushed), in ms."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "l.csv"
        label = Label(
            "/data/x/img_00001.jpg", "happy", None, "", "gemini-3.5-flash-lite", "1", "a" * 64
        )
        appender = Appender(path, LABEL_COLUMNS)
        try:
            cpu = least(lambda: [appender.append(label.as_row()) for _ in range(2000)], rounds)
        finally:
            appender.close()
    return cpu / 2000 * 1000


def throughput(fake: RemoteFake, work: Path, count: int, runs: int) -> dict[str, Any]:
    """The best of `runs` runs, like every other figure here (noise only ever slows one)."""
    folder = work / "tp"
    folder.mkdir()
    for i in range(count):
        (folder / f"p_{i:05d}.jpg").write_bytes(KINDS["photo_900x700_jpeg"](i + 5000))
    fake.set_latency(0.4)
    env = {
        **os.environ,
        "AI_STUDIO_API_KEY": TEST_KEY,
        "GOOGLE_GEMINI_BASE_URL": fake.url,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "XDG_CACHE_HOME": str(work / "cache"),
    }
    cmd = [sys.executable, "-m", "emotag", "tag", str(folder), "--quiet", "-c", "32"]
    rates, requests = [], []
    for run in range(runs):
        before = fake.count
        subprocess.run([*cmd, "-o", str(work / f"tp{run}.csv")], env=env, check=True)
        times = fake.times(before)
        # From the first request's start to the last request's end (+ one latency).
        rates.append(len(times) / (times[-1] - times[0] + 0.4))
        requests.append(len(times))
    fake.set_latency(0.0)
    ideal = 32 / 0.4
    return {
        "images": count,
        "requests_per_run": requests,
        "images_per_s": round(max(rates), 1),
        "ideal_per_s": ideal,
        "share_of_ideal": round(max(rates) / ideal, 3),
        "share_of_ideal_per_run": [round(rate / ideal, 3) for rate in rates],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    count, rounds, process_rounds, tp = (20, 2, 2, 96) if args.quick else (60, 5, 5, 384)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count()}
    print("preparation (CPU per image, least of rounds)", flush=True)
    results["preparation"] = preparation(count, rounds)
    results["writing_ms_per_row"] = round(writing(rounds), 4)
    results["photo_900x700_steps_ms"] = photo_steps(count // 2, rounds)
    print(f"  photo steps: {results['photo_900x700_steps_ms']}", flush=True)
    fake = RemoteFake()
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            print("whole processes (user+sys CPU, least of interleaved rounds)", flush=True)
            results["processes"] = processes(fake, work, 200, process_rounds)
            print("throughput at concurrency 32, 0.4 s latency", flush=True)
            results["throughput"] = throughput(fake, work, tp, 1 if args.quick else 3)
    finally:
        fake.stop()
    per = results["processes"]["cpu_ms_per_image"]
    prep = results["preparation"]
    results["split_ms_per_image_64px"] = {
        "preparation": round(images_prepare_64(), 3),
        "hashing": prep["fer_48x48_grey_png"]["hash_ms"],
        "sdk_floor": per["sdk_floor_64px_png"],
        "writing": results["writing_ms_per_row"],
        "total_emotag": per["emotag_64px_png"],
    }
    cpu, steps = results["processes"]["cpu_s"], results["photo_900x700_steps_ms"]
    free_resize = cpu["emotag_900x700_jpeg"] - steps["resize"] * 200 / 1000
    results["processes"]["ratio_if_resize_were_free"] = round(
        free_resize / cpu["emotag_64px_png"], 3
    )
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def images_prepare_64() -> float:
    samples = [encode(textured((64, 64), s), "PNG") for s in range(200)]
    return least(lambda: [images.prepare(raw) for raw in samples], 5) / 200 * 1000


if __name__ == "__main__":
    main()
