"""Benchmark LabelStore loading and `emotag merge` on large tables (plain script).

python benchmarks/bench_merge.py --rows 100000
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

from measure import run_measured

from emotag import LabelStore
from emotag.emotions import EMOTIONS


def write_inputs(folder: Path, rows: int) -> tuple[Path, Path]:
    labels = folder / "llm_labels.csv"
    landmarks = folder / "landmarks.csv"
    with open(labels, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "path", "emotion", "confidence"])
        for i in range(rows):
            writer.writerow(
                [f"img_{i}.png", f"/data/{i % 100}/img_{i}.png", EMOTIONS[i % 7], "0.9"]
            )
    with open(landmarks, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["image_path", *[f"x{k}" for k in range(68)], *[f"y{k}" for k in range(68)]]
        )
        for i in range(rows):
            writer.writerow(
                [f"/data/{i % 100}/img_{i}.png", *[f"{k * 1.5:.2f}" for k in range(136)]]
            )
    return labels, landmarks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json", type=Path, default=Path("bench-results/bench_merge.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        labels, landmarks = write_inputs(folder, args.rows)
        started = time.perf_counter()
        store = LabelStore.from_csv(labels)
        load_s = time.perf_counter() - started
        queries = [f"/data/{i % 100}/img_{i}.png" for i in range(0, args.rows, 7)]
        started = time.perf_counter()
        hits = sum(1 for q in queries if store.emotion_for(q))
        lookup_us = (time.perf_counter() - started) / len(queries) * 1e6
        code, merge_s, merge_mb = run_measured(
            [
                sys.executable,
                "-m",
                "emotag",
                "merge",
                str(landmarks),
                "--labels",
                str(labels),
                "-o",
                str(folder / "out.csv"),
            ]
        )
        small = folder / "small"
        small.mkdir()
        _, small_landmarks = write_inputs(small, 1000)
        code_small, small_s, small_mb = run_measured(
            [
                sys.executable,
                "-m",
                "emotag",
                "merge",
                str(small_landmarks),
                "--labels",
                str(labels),
                "-o",
                str(small / "out.csv"),
            ]
        )
    if code or code_small:
        raise SystemExit(f"emotag merge failed (exit {code or code_small})")
    result = {
        "rows": args.rows,
        "labelstore_load_s": load_s,
        "lookup_us": lookup_us,
        "lookup_hits": hits,
        "merge_s": merge_s,
        "merge_peak_mb": merge_mb,
        "merge_1000_rows_same_labels_peak_mb": small_mb,
        "merge_1000_rows_s": small_s,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    for key, value in result.items():
        print(f"{key:<40} {value:.3f}" if isinstance(value, float) else f"{key:<40} {value}")


if __name__ == "__main__":
    main()
