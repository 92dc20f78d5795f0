"""How well a module's own unit tests pin its rules down: mutmut changes the module one small
edit at a time and runs `tests/test_<module>.py` (and `tests/test_<module>_*.py`) against
each; the score is the share of mutants some test kills. Untested functions count as
survivors.

    pip install -e '.[dev]'
    python scripts/mutation_score.py votes            # one module, its own test files
    python scripts/mutation_score.py answers tests/test_provider_gemini.py   # and others
    python scripts/mutation_score.py --diffs roots    # and each survivor's edit

Runs in a scratch copy of the repository, so the checkout is never touched. mutmut puts
its copy of the code in `mutants/src`, which must come before this checkout's own `src`
(an editable install puts that on the path): the folder is made before Python starts, or
the import system caches it as missing and the tests import the unmutated code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="a module of src/emotag, e.g. votes or providers/gemini")
    parser.add_argument("tests", nargs="*", help="more test files to run (paths from the root)")
    parser.add_argument("--diffs", action="store_true", help="print each survivor's edit")
    args = parser.parse_args()
    name = Path(args.module).name
    own = sorted(ROOT.glob(f"tests/**/test_{name}.py")) + sorted(
        ROOT.glob(f"tests/**/test_{name}_*.py")
    )
    tests = [str(p.relative_to(ROOT)) for p in own] + list(args.tests)
    if not tests:
        print(f"no tests/test_{name}.py: every mutant survives", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        for part in ("src", "tests", "examples"):
            shutil.copytree(ROOT / part, work / part)
        config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
        config += (
            "\n[tool.mutmut]\n"
            f'paths_to_mutate = ["src/emotag/{args.module}.py"]\n'
            f"pytest_add_cli_args_test_selection = {tests!r}\n"
            'also_copy = ["src/emotag/", "tests/", "examples/"]\n'
        ).replace("'", '"')
        (work / "pyproject.toml").write_text(config, encoding="utf-8")
        (work / "mutants" / "src").mkdir(parents=True)
        env = {**os.environ, "PYTHONPATH": str(work / "mutants" / "src")}
        mutmut = [sys.executable, "-m", "mutmut"]
        done = subprocess.run([*mutmut, "run"], cwd=work, env=env, capture_output=True, text=True)
        if done.returncode:
            # mutmut first runs the tests on the unchanged code; a test that starts the CLI
            # in a subprocess or needs more of the checkout fails there.
            failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
            why = failed[0] if failed else done.stderr.strip()[-200:]
            print(f"mutmut could not run {', '.join(tests)}: {why}", file=sys.stderr)
            return 1

        def mutmut_says(*words: str) -> str:
            said = subprocess.run(
                [*mutmut, *words], cwd=work, env=env, check=True, capture_output=True, text=True
            )
            return said.stdout

        listing = mutmut_says("results", "--all", "true")
        survivors = [
            line.split(":")[0].strip() for line in listing.splitlines() if "killed" not in line
        ]
        diffs = [mutmut_says("show", survivor) for survivor in survivors] if args.diffs else []
    outcomes = Counter(
        line.rsplit(":", 1)[1].strip() for line in listing.splitlines() if ":" in line
    )
    total = sum(outcomes.values())
    killed = outcomes.get("killed", 0)
    share = f"{killed / total:.1%}" if total else "no mutants"
    print(f"{args.module}: {killed} of {total} mutants killed ({share}) by {', '.join(tests)}")
    for survivor in survivors:
        print(f"  survived: {survivor}")
    for diff in diffs:
        print(diff)
    return 0


if __name__ == "__main__":
    sys.exit(main())
