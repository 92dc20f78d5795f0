"""Benchmark emotag's tagger against the loopback fake Gemini server.

Measures, in one invocation: throughput against concurrency with a fixed server latency,
a seed-style sequential full-resolution baseline, the --rpm limiter, image preparation
(draft mode) against a plain Pillow decode, upload tokens, CLI start-up against a minimal
Typer app, and peak memory and resume cost on a large folder. Prints a table and writes
JSON (and a PNG plot when matplotlib is installed: pip install -e '.[bench]').

    python benchmarks/bench_tag.py               # the full run, a few minutes on 2 cores
    python benchmarks/bench_tag.py --quick       # smaller numbers, for a smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from measure import measure, run_measured  # noqa: E402
from pictures import KINDS  # noqa: E402

from emotag.files import images  # noqa: E402
from emotag.files.discovery import iter_images  # noqa: E402
from emotag.files.images import DEFAULT_MAX_SIDE  # noqa: E402
from emotag.providers.gemini import (  # noqa: E402
    DEFAULT_MODEL,
    OPTIONAL_SETTINGS,
    GeminiProvider,
    estimate_input_tokens,
    make_client,
)
from emotag.providers.negotiation import Negotiator, SettingsMemory  # noqa: E402
from emotag.providers.question import DEFAULT_PROMPT  # noqa: E402
from emotag.run.engine import Engine  # noqa: E402
from emotag.run.options import TagOptions  # noqa: E402
from emotag.run.recorder import Recorder  # noqa: E402
from emotag.run.resume import ResumeIndex  # noqa: E402
from emotag.run.workers import automatic  # noqa: E402
from fakes.colours import COLOURS  # noqa: E402
from fakes.gemini_api import TEST_KEY  # noqa: E402

KEY = TEST_KEY

EMOTIONS = list(COLOURS)[:7]


class RemoteFake:
    """The fake Gemini server in its own process, so it does not share a core with emotag."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fakes.gemini_api"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE.parent / "tests",
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.load(response))

    @property
    def count(self) -> int:
        return int(self._call("GET", "/_stats")["count"])

    def times(self, since: int = 0) -> list[float]:
        return [float(t) for t in self._call("GET", "/_stats")["times"][since:]]

    def set_latency(self, seconds: float) -> None:
        self._call("PUT", "/_config", {"latency": seconds})

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    """Distinct JPEG photos of `size`, each a flat emotion colour with a unique stripe."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        img = Image.new("RGB", size, COLOURS[EMOTIONS[i % 7]])
        code = i * 7919 % 16_777_216
        img.paste((code >> 16, code >> 8 & 255, code & 255), (0, 0, 32, 32))
        path = folder / f"photo_{i:06d}.jpg"
        img.save(path, quality=85)
        paths.append(path)
    return paths


async def run_tagger(
    fake: RemoteFake, folder: Path, out: Path, concurrency: int, rpm: float | None = None
) -> dict[str, Any]:
    # One memory for the whole benchmark, as a user's cache: a model's optional settings
    # are learned once (one request alone, one latency) by the first run, not every run.
    memory = SettingsMemory(out.parent / "settings.json")
    provider = GeminiProvider(
        client=make_client(KEY, base_url=fake.url, timeout=60),
        model=DEFAULT_MODEL,
        settings=Negotiator("bench", DEFAULT_MODEL, OPTIONAL_SETTINGS, memory=memory),
    )
    options = TagOptions(concurrency=concurrency, rpm=rpm, timeout=30)
    recorder = Recorder(out, out.with_suffix(".errors.csv"), DEFAULT_MODEL)
    engine = Engine(provider, recorder, ResumeIndex(), options)
    before = fake.count
    started = time.perf_counter()
    try:
        summary = await engine.run(lambda skip: iter_images(folder))
    finally:
        recorder.close()
        await provider.aclose()
    wall = time.perf_counter() - started
    return {
        "images": summary.labelled,
        "requests": fake.count - before,
        "wall_s": wall,
        "images_per_s": summary.labelled / wall,
    }


def baseline(fake: RemoteFake, paths: list[Path]) -> dict[str, Any]:
    """The seed script: one request at a time, the full file uploaded as it is."""
    from google.genai import types

    client = make_client(KEY, base_url=fake.url, timeout=60)
    started = time.perf_counter()
    uploaded = []
    for path in paths:
        data = path.read_bytes()
        uploaded.append(Image.open(io.BytesIO(data)).size)
        client.models.generate_content(
            model=DEFAULT_MODEL,
            contents=[types.Part.from_bytes(data=data, mime_type="image/jpeg"), DEFAULT_PROMPT],
        )
    wall = time.perf_counter() - started
    client.close()
    return {
        "images": len(paths),
        "wall_s": wall,
        "images_per_s": len(paths) / wall,
        "upload_size": uploaded[0],
    }


def throughput(
    fake: RemoteFake,
    work: Path,
    latency: float,
    levels: list[int],
    target_images: int,
    target_c: int,
) -> list[dict[str, Any]]:
    fake.set_latency(latency)
    rows = []
    for c in levels:
        count = target_images if c == target_c else max(24, min(8 * c, target_images))
        folder = work / f"tp_{c}"
        folder.mkdir()
        for i in range(count):  # textured 900x700 photos, ~150 KB, as face datasets hold
            (folder / f"p_{i:05d}.jpg").write_bytes(KINDS["photo_900x700_jpeg"](c * 10_000 + i))
        result = asyncio.run(run_tagger(fake, folder, work / f"tp_{c}.csv", c))
        result.update(
            concurrency=c,
            ideal_per_s=c / latency,
            efficiency=result["images_per_s"] / (c / latency),
        )
        rows.append(result)
        rate, share = result["images_per_s"], result["efficiency"]
        print(f"  concurrency {c:>3}: {rate:.1f} img/s ({share:.0%} of ideal)", flush=True)
    return rows


def rate_limit(fake: RemoteFake, work: Path, rpm: float, count: int) -> dict[str, Any]:
    fake.set_latency(0.05)
    folder = work / "rpm"
    make_photos(folder, count, (64, 64))
    start_index = fake.count
    result = asyncio.run(run_tagger(fake, folder, work / "rpm.csv", 32, rpm=rpm))
    times = sorted(fake.times(start_index))
    # Each 10 s window's rate is measured from its first to its last request, so n evenly
    # spaced requests count as n - 1 intervals (a plain count would be off by one).
    per_min = []
    window = 10.0
    t = times[0]
    while t + window <= times[-1] + 1e-9:
        inside = [x for x in times if t <= x < t + window]
        if len(inside) > 1:
            per_min.append((len(inside) - 1) * 60.0 / (inside[-1] - inside[0]))
        t += 1.0
    burst = max(sum(1 for x in times if s <= x < s + 1.0) for s in times)
    return {
        "rpm": rpm,
        "requests": len(times),
        "achieved_rpm_overall": (len(times) - 1) * 60.0 / (times[-1] - times[0]),
        "window_rpm_min": min(per_min) if per_min else None,
        "window_rpm_max": max(per_min) if per_min else None,
        "max_in_any_1s": burst,
        "allowed_per_1s": rpm / 60.0,
        "wall_s": result["wall_s"],
    }


def preprocessing(work: Path, max_side: int) -> dict[str, Any]:
    big = work / "big.jpg"
    Image.new("RGB", (6000, 4000), (120, 90, 60)).save(big, quality=90)
    raw = big.read_bytes()

    def plain() -> None:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            rgb = img.convert("RGB")
            rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            rgb.save(io.BytesIO(), "JPEG", quality=88)

    def emotag_way() -> None:
        images.prepare(raw, max_side)

    small = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(small, "PNG")
    small_raw = small.getvalue()
    return {
        "big_plain_s": best_of(plain, 5),
        "big_emotag_s": best_of(emotag_way, 5),
        "small_emotag_ms": 1000 * best_of(lambda: images.prepare(small_raw, max_side), 50),
        "big_upload_size": (
            images.prepare(raw, max_side).width,
            images.prepare(raw, max_side).height,
        ),
    }


def best_of(fn: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def startup(runs: int) -> dict[str, Any]:
    emotag = [sys.executable, "-m", "emotag"]
    floor = [sys.executable, str(HERE / "minimal_typer_app.py")]
    result: dict[str, Any] = {}
    for name, args in {"--help": ["--help"], "tag --help": ["tag", "--help"]}.items():
        ours = median_time(emotag + args, runs)
        theirs = median_time(floor + args, runs)
        result[name] = {"emotag_s": ours, "minimal_typer_s": theirs, "ratio": ours / theirs}
    probe = (
        "import sys\nsys.argv=['emotag','tag','--help']\nfrom emotag.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', 'google.genai' in sys.modules, 'PIL' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    loaded = done.stderr.strip().splitlines()[-1].split()
    result["help_imports_google_genai"] = loaded[1] == "True"
    result["help_imports_pillow"] = loaded[2] == "True"
    return result


def median_time(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, capture_output=True)  # warm the file cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def small_png(i: int) -> bytes:
    """A small distinct PNG: one emotion's colour, a corner that makes its bytes unique."""
    img = Image.new("RGB", (128, 128), COLOURS[EMOTIONS[i % 7]])
    img.paste((i % 251, i // 251 % 251, 7), (0, 0, 8, 8))
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


PICTURES = {"small_png_128": small_png, "photo_900x700_jpeg": KINDS["photo_900x700_jpeg"]}


def cli_throughput(
    fake: RemoteFake, work: Path, latency: float, levels: list[int], most: int, repeats: int
) -> list[dict[str, Any]]:
    """`emotag tag -c N` as a whole process, start-up included, at each level: images/s
    against the ideal N/latency, CPU per image and peak RSS (with its workers). Each
    level labels 24 rounds of N images, at most `most` (1,536: 6 rounds at 256).

    Where `--workers` would start any, the run without them (`--workers 0`, the engine
    as it was) goes in turn with it, `repeats` times each, so a machine whose speed
    drifts moves both alike; the medians are reported.

    emotag's modules are compiled first, as an installed copy's are: an editable checkout
    under PYTHONDONTWRITEBYTECODE compiles them again in every process it starts."""
    import compileall
    import resource

    compileall.compile_dir(Path(images.__file__).parent, quiet=1)
    fake.set_latency(latency)
    env = {
        **os.environ,
        "GOOGLE_GEMINI_BASE_URL": fake.url,
        "AI_STUDIO_API_KEY": KEY,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "EMOTAG_CACHE_DIR": str(work / "cache"),  # settings learned once, as a user's cache
    }
    rows = []
    for kind, make in PICTURES.items():
        suffix = ".png" if kind.startswith("small") else ".jpg"
        made = [work / f"{kind}_{i:05d}{suffix}" for i in range(most)]
        for i, path in enumerate(made):  # made once; each run links the ones it needs
            path.write_bytes(make(i))
        for c in levels:
            count = min(most, 24 * c)
            chosen = automatic(c)
            settings = [0, chosen] if chosen else [0]
            runs: dict[int, list[dict[str, float]]] = {w: [] for w in settings}
            for r in range(repeats):
                for w in settings:
                    folder = work / f"cli_{kind}_{c}_{w}_{r}"
                    folder.mkdir()
                    for path in made[:count]:
                        os.link(path, folder / path.name)
                    out = folder.with_suffix(".csv")
                    cmd = [sys.executable, "-m", "emotag", "tag", str(folder), "-o", str(out)]
                    cmd += ["-c", str(c), "--workers", str(w), "-q", "--json"]
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    run = measure(cmd, env)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                    labelled = sum(1 for _ in out.open()) - 1 if out.exists() else 0
                    assert run.code == 0 and labelled == count, f"{cmd}: {run.code}, {labelled}"
                    runs[w].append(
                        {"wall": run.wall, "cpu": cpu, "peak": run.peak_mb, "own": run.own_cpu}
                    )
            for w, measured in runs.items():
                rate = statistics.median(count / m["wall"] for m in measured)
                row = {
                    "pictures": kind,
                    "concurrency": c,
                    "workers": w,
                    "images": count,
                    "runs": len(measured),
                    "images_per_s": round(rate, 2),
                    "of_ideal": round(rate / (c / latency), 3),
                    "of_ideal_each": [round(count * latency / m["wall"] / c, 3) for m in measured],
                    "cpu_ms_per_image": round(
                        1000 * statistics.median(m["cpu"] for m in measured) / count, 2
                    ),
                    # The run's own process: what a machine with more cores cannot spread.
                    "own_cpu_ms_per_image": round(
                        1000 * statistics.median(m["own"] for m in measured) / count, 2
                    ),
                    "peak_rss_mb": round(max(m["peak"] for m in measured), 1),
                }
                rows.append(row)
                print(
                    f"  {kind} c={c:>3} workers={w}: {rate:.1f} img/s ({row['of_ideal']:.0%} "
                    f"of ideal; each {row['of_ideal_each']}), {row['cpu_ms_per_image']} ms "
                    f"CPU/image ({row['own_cpu_ms_per_image']} in the run's process), "
                    f"{row['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
    return rows


def large_folder(fake: RemoteFake, work: Path, count: int) -> dict[str, Any]:
    """Peak memory of a CLI run over `count` small images, then the cost of re-running it."""
    fake.set_latency(0.0)
    folder = work / "large"
    folder.mkdir()
    for i in range(count):
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), COLOURS[EMOTIONS[i % 7]]).save(buffer, "PNG")
        (folder / f"{i // 1000:03d}").mkdir(exist_ok=True)
        (folder / f"{i // 1000:03d}" / f"s_{i:06d}.png").write_bytes(
            buffer.getvalue() + i.to_bytes(4, "big")
        )
    env = {
        **os.environ,
        "GOOGLE_GEMINI_BASE_URL": fake.url,
        "AI_STUDIO_API_KEY": KEY,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    cmd = [
        sys.executable,
        "-m",
        "emotag",
        "tag",
        str(folder),
        "-o",
        str(work / "large.csv"),
        "-c",
        "32",
        "-q",
        "--json",
    ]
    before = fake.count
    started = time.perf_counter()
    first_code, _, peak_mb = run_measured(cmd, env)
    first_wall = time.perf_counter() - started
    sent_first = fake.count - before
    before = fake.count
    started = time.perf_counter()
    again_code, _, _ = run_measured(cmd, env)
    resume_wall = time.perf_counter() - started
    return {
        "images": count,
        "exit_codes": [first_code, again_code],
        "first_run_s": first_wall,
        "first_run_requests": sent_first,
        "peak_rss_mb": peak_mb,
        "resume_s": resume_wall,
        "resume_requests": fake.count - before,
    }


def first_request(fake: RemoteFake, work: Path, count: int) -> dict[str, Any]:
    """Time to the first request when one folder holds `count` files (copies of one image)."""
    folder = work / "flat"
    folder.mkdir()
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), COLOURS["happy"]).save(buffer, "PNG")
    for i in range(count):
        (folder / f"a_{i:06d}.png").write_bytes(buffer.getvalue())
    env = {
        **os.environ,
        "GOOGLE_GEMINI_BASE_URL": fake.url,
        "AI_STUDIO_API_KEY": KEY,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    before = fake.count
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emotag", "tag", str(folder), "-o", str(work / "flat.csv"), "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while fake.count == before and proc.poll() is None:
        time.sleep(0.01)
    first = fake.times(before)[0] - started if fake.count > before else None
    proc.kill()
    proc.wait()
    python_start = median_time(
        [sys.executable, "-c", "import emotag.cli, emotag.run.tagging, google.genai, PIL.Image"], 3
    )
    return {"files": count, "first_request_s": first, "of_which_imports_s": python_start}


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    xs = [r["concurrency"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [r["images_per_s"] for r in rows], "o-", label="emotag (measured)")
    ax.plot(
        xs,
        [r["ideal_per_s"] for r in rows],
        "--",
        color="grey",
        label="ideal: concurrency / latency",
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("--concurrency")
    ax.set_ylabel("images per second")
    latency = rows[0]["concurrency"] / rows[0]["ideal_per_s"]
    ax.set_title(f"Throughput against the fake server (latency {latency:.1f} s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.5, help="fake server latency in seconds")
    parser.add_argument("--images", type=int, default=400, help="images at the target concurrency")
    parser.add_argument("--concurrency", type=int, default=32, help="the target concurrency")
    parser.add_argument("--levels", default="1,4,16,32,64", help="concurrency levels for the curve")
    parser.add_argument("--baseline-images", type=int, default=16)
    parser.add_argument("--rpm", type=float, default=600)
    parser.add_argument("--rpm-images", type=int, default=300)
    parser.add_argument(
        "--large", type=int, default=20_000, help="images for the memory/resume run"
    )
    parser.add_argument(
        "--flat", type=int, default=100_000, help="files in one folder for time-to-first-request"
    )
    parser.add_argument("--startup-runs", type=int, default=7)
    parser.add_argument("--json", type=Path, default=Path("bench-results/bench_tag.json"))
    parser.add_argument("--plot", type=Path, default=Path("bench-results/throughput.png"))
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument(
        "--cli-levels", default="16,32,64,128,256", help="concurrency levels of the CLI runs"
    )
    parser.add_argument("--cli-latency", type=float, default=1.0)
    parser.add_argument("--cli-images", type=int, default=1536, help="most images a CLI run")
    parser.add_argument(
        "--cli-repeats", type=int, default=3, help="runs of each CLI setting, taken in turn"
    )
    parser.add_argument(
        "--cli-only", action="store_true", help="only the CLI runs at each concurrency"
    )
    args = parser.parse_args()
    if args.quick:
        args.latency, args.images, args.levels, args.baseline_images = 0.1, 64, "1,8,32", 4
        args.concurrency = 8  # 32 at 0.1 s would ask for 320/s, past one process's CPU
        args.rpm, args.rpm_images, args.large, args.flat, args.startup_runs = 1200, 60, 500, 2000, 2
        args.cli_levels, args.cli_images, args.cli_repeats = "16,128", 256, 1

    state = RemoteFake()
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            print("CLI throughput (start-up included)", flush=True)
            cli_levels = [int(x) for x in args.cli_levels.split(",")]
            results["cli_throughput"] = cli_throughput(
                state, work, args.cli_latency, cli_levels, args.cli_images, args.cli_repeats
            )
            if args.cli_only:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results, indent=1))
                return
            print("throughput", flush=True)
            levels = [int(x) for x in args.levels.split(",")]
            results["throughput"] = throughput(
                state, work, args.latency, levels, args.images, args.concurrency
            )
            print("baseline", flush=True)
            photos = make_photos(work / "baseline", args.baseline_images, (1600, 1200))
            state.set_latency(args.latency)
            results["baseline"] = baseline(state, photos)
            print("rate limit", flush=True)
            results["rate_limit"] = rate_limit(state, work, args.rpm, args.rpm_images)
            print("preprocessing", flush=True)
            results["preprocessing"] = preprocessing(work, DEFAULT_MAX_SIDE)
            print("start-up", flush=True)
            results["startup"] = startup(args.startup_runs)
            print("large folder", flush=True)
            results["large_folder"] = large_folder(state, work, args.large)
            print("first request", flush=True)
            results["first_request"] = first_request(state, work, args.flat)
    finally:
        state.stop()
    w, h = results["baseline"]["upload_size"]
    results["tokens"] = {
        "model": DEFAULT_MODEL,
        "emotag_per_image": estimate_input_tokens(DEFAULT_MODEL, DEFAULT_PROMPT, 384, 288),
        # Gemini 3 bills about 1,120 tokens per image at the default media resolution.
        "baseline_per_image_gemini3_default": 1120 + len(DEFAULT_PROMPT) // 4,
        "emotag_per_image_gemini2": estimate_input_tokens(
            "gemini-2.5-flash", DEFAULT_PROMPT, 384, 288
        ),
        "baseline_per_image_gemini2": estimate_input_tokens(
            "gemini-2.5-flash", DEFAULT_PROMPT, w, h
        ),
    }
    target = (
        next(r for r in results["throughput"] if r["concurrency"] == args.concurrency)
        if args.concurrency in levels
        else results["throughput"][-1]
    )
    results["ratios"] = {
        "throughput_vs_ideal": target["efficiency"],
        "throughput_vs_baseline": target["images_per_s"] / results["baseline"]["images_per_s"],
        "prep_big_emotag_over_plain": results["preprocessing"]["big_emotag_s"]
        / results["preprocessing"]["big_plain_s"],
        "tokens_emotag_over_baseline_gemini3": results["tokens"]["emotag_per_image"]
        / results["tokens"]["baseline_per_image_gemini3_default"],
        "tokens_emotag_over_baseline_gemini2": results["tokens"]["emotag_per_image_gemini2"]
        / results["tokens"]["baseline_per_image_gemini2"],
        "help_startup_ratio": results["startup"]["--help"]["ratio"],
        "tag_help_startup_ratio": results["startup"]["tag --help"]["ratio"],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    plotted = plot(results["throughput"], args.plot)
    print_table(results)
    print(
        f"\nJSON: {args.json}"
        + (f"  plot: {args.plot}" if plotted else "  (no plot: matplotlib missing)")
    )


def print_table(r: dict[str, Any]) -> None:
    ratios, rl, pp = r["ratios"], r["rate_limit"], r["preprocessing"]
    lf, fr, tk, su = r["large_folder"], r["first_request"], r["tokens"], r["startup"]
    windows = f"{rl['window_rpm_min'] or 0:.0f}-{rl['window_rpm_max'] or 0:.0f}"
    prep = f"{pp['big_emotag_s'] * 1000:.0f} ms / {pp['big_plain_s'] * 1000:.0f} ms"
    g3 = f"{tk['emotag_per_image']} / {tk['baseline_per_image_gemini3_default']}"
    g2 = f"{tk['emotag_per_image_gemini2']} / {tk['baseline_per_image_gemini2']}"
    lines = [
        ("throughput at target / ideal", f"{ratios['throughput_vs_ideal']:.0%}"),
        ("throughput at target / sequential baseline", f"{ratios['throughput_vs_baseline']:.1f}x"),
        ("baseline images/s", f"{r['baseline']['images_per_s']:.2f}"),
        (
            "--rpm achieved (overall / 10 s windows min-max)",
            f"{rl['achieved_rpm_overall']:.0f} / {windows} of {rl['rpm']:.0f}",
        ),
        (
            "--rpm most requests in any 1 s (allowed: R/60, +1 fencepost)",
            f"{rl['max_in_any_1s']} ({rl['allowed_per_1s']:.0f})",
        ),
        (
            "6000x4000 JPEG: emotag prepare / plain decode+resize",
            f"{prep} = {ratios['prep_big_emotag_over_plain']:.2f}",
        ),
        ("small image prepare", f"{pp['small_emotag_ms']:.2f} ms"),
        (
            "tokens per image, emotag / baseline (Gemini 3)",
            f"{g3} = {ratios['tokens_emotag_over_baseline_gemini3']:.2f}",
        ),
        (
            "tokens per image, emotag / baseline (Gemini 2.x tiles)",
            f"{g2} = {ratios['tokens_emotag_over_baseline_gemini2']:.2f}",
        ),
        ("emotag --help / minimal Typer", f"{ratios['help_startup_ratio']:.2f}"),
        ("emotag tag --help / minimal Typer", f"{ratios['tag_help_startup_ratio']:.2f}"),
        (
            "--help imports google.genai / Pillow",
            f"{su['help_imports_google_genai']} / {su['help_imports_pillow']}",
        ),
        (
            f"{lf['images']} images: peak RSS",
            f"{lf['peak_rss_mb']:.0f} MB (run {lf['first_run_s']:.0f} s, exit {lf['exit_codes'][0]})",  # noqa: E501
        ),
        (
            f"{lf['images']} images: re-run",
            f"{lf['resume_s']:.1f} s, {lf['resume_requests']} requests",
        ),
        (
            f"{fr['files']} files in one folder: first request",
            f"{fr['first_request_s']:.2f} s (start-up, imports {fr['of_which_imports_s']:.2f} s)",
        ),
    ]
    width = max(len(k) for k, _ in lines)
    print()
    for k, v in lines:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
