"""Does the cascade's offline stage slow the paid one? `tag --cascade 0.9` against plain
`tag` when every image goes to the paid provider (photos without a face: the offline model
runs both of its detectors on each, its slowest path), at the default concurrency, with
the fake Gemini answering in 0.4 s in its own process.

    python benchmarks/bench_cascade.py                 # 320 photos of 900x700, 3 pairs
    python benchmarks/bench_cascade.py --images 64 --pairs 1   # a smoke test

Whole processes, start-up included, the two commands in turn; each pair's ratio and the
median are printed. The goal (issue 34): the cascade run within 10% of the plain one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench_tag import KEY, RemoteFake
from measure import measure
from pictures import KINDS

LATENCY = 0.4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    fake = RemoteFake()
    try:
        fake.set_latency(LATENCY)
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch)
            made = [work / f"photo_{i:05d}.jpg" for i in range(args.images)]
            for i, path in enumerate(made):
                path.write_bytes(KINDS["photo_900x700_jpeg"](i))
            env = {
                **os.environ,
                "GOOGLE_GEMINI_BASE_URL": fake.url,
                "AI_STUDIO_API_KEY": KEY,
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                "EMOTAG_CACHE_DIR": str(work / "cache"),
            }
            pairs = []
            for number in range(args.pairs):
                walls = {}
                for name, extra in (("plain", []), ("cascade", ["--cascade", "0.9"])):
                    folder = work / f"{name}_{number}"
                    folder.mkdir()
                    for path in made:
                        os.link(path, folder / path.name)
                    out = folder.with_suffix(".csv")
                    cmd = [sys.executable, "-m", "emotag", "tag", str(folder), "-o", str(out)]
                    run = measure([*cmd, "-q", *extra], env)
                    labelled = sum(1 for _ in out.open()) - 1
                    assert run.code == 0 and labelled == args.images, (run.code, labelled)
                    walls[name] = run.wall
                pairs.append({**walls, "ratio": walls["cascade"] / walls["plain"]})
                print(
                    f"pair {number + 1}: plain {walls['plain']:.2f} s, cascade "
                    f"{walls['cascade']:.2f} s, ratio {pairs[-1]['ratio']:.3f}"
                )
    finally:
        fake.stop()
    ideal = args.images * LATENCY / 16
    median = {key: statistics.median(p[key] for p in pairs) for key in pairs[0]}
    print(
        f"median: plain {median['plain']:.2f} s, cascade {median['cascade']:.2f} s "
        f"(ideal {ideal:.1f} s), ratio {median['ratio']:.3f} (goal <= 1.10)"
    )
    if args.json:
        result = {"images": args.images, "latency_s": LATENCY, "pairs": pairs, "median": median}
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
