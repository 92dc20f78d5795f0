"""No POSIX-only import at import time, a run lock that works everywhere, and rewrites that
keep a file's permission bits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from emotag.cli import app
from fakes.gemini_api import TEST_KEY, FakeGemini
from helpers import make_image, posix_only, read_csv

# Runs emotag's CLI with `import fcntl` failing, as on Windows.
WITHOUT_FCNTL = "import sys; sys.modules['fcntl'] = None; from emotag.cli import main; main()"


def run_without_fcntl(cwd: Path, fake: FakeGemini, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GOOGLE_GEMINI_BASE_URL": fake.url,
        "AI_STUDIO_API_KEY": TEST_KEY,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_FCNTL, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_dry_run_and_a_real_run_work_without_fcntl(fake: FakeGemini, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "a.png", "happy")
    make_image(tmp_path / "in" / "b.png", "sad")
    helped = run_without_fcntl(tmp_path, fake, "--help")
    assert helped.returncode == 0 and "tag" in helped.stdout, helped.stderr
    dry = run_without_fcntl(tmp_path, fake, "tag", "in", "--dry-run", "--json")
    assert dry.returncode == 0 and '"to_send": 2' in dry.stdout, dry.stderr
    real = run_without_fcntl(tmp_path, fake, "tag", "in", "--quiet")
    assert real.returncode == 0, real.stderr
    assert {r["emotion"] for r in read_csv(tmp_path / "dataset" / "llm_labels.csv")} == {
        "happy",
        "sad",
    }


@posix_only  # Windows has no group permission bits
def test_rename_keeps_a_group_readable_labels_csv_group_readable(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    make_image(tmp_path / "in" / "m_y_w.png", "happy")
    runner = CliRunner()
    assert runner.invoke(app, ["tag", str(tmp_path / "in")]).exit_code == 0
    labels = Path("dataset/llm_labels.csv")
    labels.chmod(0o664)
    result = runner.invoke(app, ["rename", "-l", str(labels), "--yes"])
    assert result.exit_code == 0, result.output
    assert read_csv(labels)[0]["filename"] == "m_y_w_happy.png"  # it was rewritten
    assert labels.stat().st_mode & 0o777 == 0o664


@posix_only
def test_a_new_report_follows_the_umask(gemini: FakeGemini, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "a.png", "happy")
    runner = CliRunner()
    assert runner.invoke(app, ["tag", str(tmp_path / "in")]).exit_code == 0
    old = os.umask(0o022)
    try:
        made = runner.invoke(app, ["report", "-l", "dataset/llm_labels.csv", "-o", "r.html"])
    finally:
        os.umask(old)
    assert made.exit_code == 0, made.output
    assert Path("r.html").stat().st_mode & 0o777 == 0o644
