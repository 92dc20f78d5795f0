"""Files and answers as the real world sends them: each once crashed a command with a
traceback or misled it; each is now one clear line, or simply read."""

from __future__ import annotations

import csv
import gc
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.files.csvfiles import LABEL_COLUMNS
from emotag.files.discovery import iter_images
from emotag.providers.negotiation import MOST_REPORTED, Negotiator, SettingsMemory
from fakes.gemini_api import FakeGemini
from fakes.openai_api import FakeOpenAI
from helpers import csv_line, make_image, posix_only, read_csv

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")
HEADER = ",".join(LABEL_COLUMNS) + "\r\n"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def one_line_error(result: object) -> str:
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    (line,) = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    return line


@pytest.mark.parametrize("cell", ["happy:x", "happy", "joy:3", "happy:3 sad:-1"])
def test_a_malformed_votes_cell_is_a_bad_row_named_by_its_line(
    gemini: FakeGemini, tmp_path: Path, cell: str
) -> None:
    image = make_image(tmp_path / "in" / "a.png")
    LABELS.parent.mkdir(parents=True)
    row = {c: "" for c in LABEL_COLUMNS} | {"path": str(image), "emotion": "happy", "votes": cell}
    LABELS.write_text(HEADER + ",".join(row[c] for c in LABEL_COLUMNS) + "\r\n")
    for command in (["tag", str(tmp_path / "in"), "--votes", "3"], ["report", "-o", "r.html"]):
        result = invoke(*command)
        assert "Traceback" not in result.output and result.exit_code in (0, 2), result.output
    assert ":2: votes" in one_line_error(invoke("tag", str(tmp_path / "in"), "--votes", "3"))


def test_a_nul_byte_in_a_path_is_a_bad_row_not_a_traceback(tmp_path: Path) -> None:
    """No file system allows one, so every open of it raised (report, audit sample): a
    page leaves the row off and says so; the audit, whose sample draws from every row,
    refuses the CSV in one line."""
    image = make_image(tmp_path / "in" / "a.png")
    LABELS.parent.mkdir(parents=True)
    LABELS.write_text(
        HEADER + csv_line("a.png", str(image), "sad") + csv_line("b", "/b\0.png", "sad")
    )
    report = invoke("report", "-o", "r.html")
    assert report.exit_code == 0 and "Wrote r.html: 1 labels" in report.stdout
    assert report.stderr.startswith("Skipped: dataset/llm_labels.csv:3: a NUL byte in the path")
    refused = one_line_error(invoke("audit", "sample"))
    assert ":3: a NUL byte in the path" in refused and "an audit would leave them out" in refused


def test_a_folder_a_thousand_deep_is_walked(tmp_path: Path) -> None:
    deep = tmp_path / "root"
    folders = [deep]
    for _ in range(1000):  # one level at a time: os.makedirs itself recurses
        folders.append(folders[-1] / "d")
    for folder in folders:
        folder.mkdir()
    image = make_image(folders[-1] / "face.png")
    try:
        assert [p.name for p in iter_images(deep)] == ["face.png"]
    finally:  # bottom up: shutil.rmtree (and pytest's clean-up) would recurse too deep
        image.unlink()
        for folder in reversed(folders):
            folder.rmdir()


def test_a_field_past_the_csv_limit_is_one_line(tmp_path: Path) -> None:
    LABELS.parent.mkdir(parents=True)
    LABELS.write_text(HEADER + csv_line("a.png", str(tmp_path / "a.png"), "sad"))
    huge = "x" * 10_000_000
    Path("corrections.csv").write_text(f"path,old,new\n{huge},,sad\n")
    assert "is not a readable CSV" in one_line_error(invoke("apply-corrections", "corrections.csv"))
    Path("landmarks.csv").write_text(f"path,x\n{huge},1\n")
    line = one_line_error(invoke("merge", "landmarks.csv"))
    assert "is not a readable CSV" in line and not Path("landmarks_labelled.csv").exists()


def test_a_nan_weight_in_the_sample_is_one_line(gemini: FakeGemini, tmp_path: Path) -> None:
    for i in range(4):
        make_image(tmp_path / "in" / f"{i}.png", size=(30 + i, 30))
    assert invoke("tag", str(tmp_path / "in")).exit_code == 0
    assert invoke("audit", "sample", "-o", "audit").exit_code == 0
    rows = read_csv(Path("audit/sample.csv"))
    rows[0]["weight"] = "nan"
    with open("audit/sample.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    Path("audit/truth.csv").write_text("path,truth\n" + f"{rows[0]['path']},happy\n")
    assert ":2: weight 'nan'" in one_line_error(
        invoke("audit", "score", "--truth", "audit/truth.csv")
    )


def test_a_byte_order_mark_is_read_past(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts with one: the labels CSV and a corrections CSV read."""
    image = make_image(tmp_path / "a.png")
    LABELS.parent.mkdir(parents=True)
    LABELS.write_bytes(("\ufeff" + HEADER + csv_line("a.png", str(image), "sad")).encode())
    assert invoke("report", "-o", "r.html").exit_code == 0
    Path("corrections.csv").write_bytes(f"\ufeffpath,old,new\n{image},,happy\n".encode())
    result = invoke("apply-corrections", "corrections.csv")
    assert result.exit_code == 0, result.output
    assert [r["emotion"] for r in read_csv(LABELS)] == ["happy"]


def test_a_reported_model_name_that_is_no_name_never_reaches_a_file(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    make_image(tmp_path / "in" / "a.png")
    server.reported_model = '=HYPERLINK("http://evil.example","x")'
    result = invoke("tag", str(tmp_path / "in"), "--provider", "openai", "-m", "gpt-4.1-mini")
    assert result.exit_code == 0, result.output
    assert [r["model"] for r in read_csv(LABELS)] == ["gpt-4.1-mini"]
    cache = Path(os.environ["EMOTAG_CACHE_DIR"]) / "accepted-settings.json"
    assert "HYPERLINK" not in cache.read_text()


def test_the_names_a_server_reports_are_bounded(tmp_path: Path) -> None:
    memory = SettingsMemory(tmp_path / "memory.json")
    settings = Negotiator("host", "m", (), memory=memory)
    for i in range(MOST_REPORTED + 30):
        settings.note_reported(f"m-snapshot-{i}")
    assert len(memory.reported("host", "m")) == MOST_REPORTED


def test_label_studio_urls_are_percent_encoded(gemini: FakeGemini, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "a&d=..%2F..#x.png")
    assert invoke("tag", str(tmp_path / "in")).exit_code == 0
    assert invoke("export", "-f", "labelstudio", "-o", "ls").exit_code == 0
    (task,) = json.loads(Path("ls/tasks.json").read_text())
    url = task["data"]["image"]
    query = url.split("?d=", 1)[1]
    assert "&" not in query and "#" not in query and "%252F" in query


@posix_only
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_file_name_that_is_no_utf8_keeps_the_hf_export_loadable(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    root = tmp_path / "in"
    make_image(root / "good.png")
    make_image(Path(os.fsdecode(bytes(root) + b"/caf\xe9.png")))
    assert invoke("tag", str(root)).exit_code == 0
    result = invoke("export", "-f", "hf", "-o", "hf")
    assert result.exit_code == 0, result.output
    loaded = datasets.load_dataset("imagefolder", data_dir="hf", split="train")
    assert len(loaded) == 2
    del loaded
    gc.collect()


def test_descriptive_cells_of_the_hf_metadata_never_run_as_formulas(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    """A model name a hand edit (or an older emotag) put in the labels CSV reaches
    metadata.csv as text a spreadsheet shows, not a formula it runs."""
    make_image(tmp_path / "in" / "a.png")
    assert invoke("tag", str(tmp_path / "in")).exit_code == 0
    text = LABELS.read_text(encoding="utf-8").replace("gemini-3.5-flash-lite", "=1+2")
    LABELS.write_text(text, encoding="utf-8")
    assert invoke("export", "-f", "hf", "-o", "hf").exit_code == 0
    (row,) = read_csv(Path("hf/metadata.csv"))
    assert row["model"] == "'=1+2"
    assert row["file_name"] == "images/a.png" and row["emotion"]  # what loaders read: exact
    assert row["source_path"] == str(tmp_path / "in" / "a.png")
