"""How often the audit's 95% interval covers the real accuracy, on many simulated audits
(the test checks 200; this measures as many as you like, docs/audit.md).

    python benchmarks/bench_audit_coverage.py              # 1,000 audits of 50 datasets
    python benchmarks/bench_audit_coverage.py --audits 200 --size 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from emotag.quality import stats
from emotag.quality.audit import _strata
from test_audit_stats import audit, population


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audits", type=int, default=1000)
    parser.add_argument("--datasets", type=int, default=50)
    parser.add_argument("--size", type=int, default=300, help="rows checked per audit")
    args = parser.parse_args()
    datasets = [population(1000 + seed) for seed in range(args.datasets)]
    covered = low = high = 0
    width = 0.0
    for trial in range(args.audits):
        labels, right, _ = datasets[trial % args.datasets]
        truth = sum(right.values()) / len(right)
        found = stats.stratified(_strata(labels, audit(labels, right, args.size, trial)))
        covered += found.low <= truth <= found.high
        low += truth < found.low
        high += truth > found.high
        width += found.high - found.low
    print(
        f"{covered} of {args.audits} covered ({covered / args.audits:.1%}); the truth was "
        f"below {low} times, above {high}; mean half-width {width / args.audits / 2:.3f}"
    )


if __name__ == "__main__":
    main()
