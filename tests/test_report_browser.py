"""The report in a real headless Chromium: counts, filters, a correction, the export."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from fakes.gemini_api import FakeGemini
from helpers import make_image, read_csv

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER) and os.environ.get("CI"):
    pytest.fail(
        "CI must install Debian's chromium and chromium-driver (see .ci/run)", pytrace=False
    )
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromedriver")
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "report.png"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=DRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def test_report_counts_filters_and_exports_a_correction(
    gemini: FakeGemini, tmp_path: Path, browser
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    root = tmp_path / "faces"
    for i in range(49):
        folder = "a" if i % 2 else "b"
        make_image(root / folder / f"img_{i:02d}.png", EMOTIONS[i % 7], size=(60 + i, 50))
    assert CliRunner().invoke(app, ["tag", str(root)]).exit_code == 0
    report = tmp_path / "report.html"
    assert (
        CliRunner()
        .invoke(app, ["report", "-l", "dataset/llm_labels.csv", "-o", str(report)])
        .exit_code
        == 0
    )

    browser.get(report.as_uri())
    counts = {
        e: int(browser.find_element(By.CSS_SELECTOR, f'[data-count="{e}"]').text) for e in EMOTIONS
    }
    assert counts == {e: 7 for e in EMOTIONS}
    assert len(browser.find_elements(By.CSS_SELECTOR, "#grid .card")) == 49

    Select(browser.find_element(By.ID, "f-emotion")).select_by_visible_text("sad")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#grid .card")) == 7
    Select(browser.find_element(By.ID, "f-folder")).select_by_visible_text("a")
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#grid .card .name")]
    assert names and all(int(n[4:6]) % 2 == 1 for n in names)
    browser.find_element(By.ID, "f-q").send_keys("img_13")
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#grid .card .name")] == [
        "img_13.png"
    ]

    Select(browser.find_element(By.ID, "f-folder")).select_by_visible_text("all")
    Select(browser.find_element(By.ID, "f-emotion")).select_by_visible_text("all")
    browser.find_element(By.ID, "f-q").clear()
    browser.find_element(By.ID, "f-q").send_keys("img_0")
    first = browser.find_element(By.CSS_SELECTOR, "#grid .card")
    path = first.get_attribute("title")
    old = Select(first.find_element(By.TAG_NAME, "select")).first_selected_option.text
    assert old != "angry"
    first.click()
    first.send_keys("3")  # key 3 = angry
    card = browser.find_element(By.CSS_SELECTOR, "#grid .card")
    assert "changed" in card.get_attribute("class")
    assert browser.find_element(By.ID, "n-changed").text == "1"
    assert browser.find_element(By.CSS_SELECTOR, '[data-count="angry"]').text == "8"
    exported = browser.execute_script("return exportCsv();")
    assert exported == f"path,old,new\r\n{path},{old},angry\r\n"

    browser.find_element(By.ID, "f-q").send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#grid .card")) == 49
    browser.save_screenshot(str(tmp_path / "shot.png"))
    if os.environ.get("EMOTAG_UPDATE_SCREENSHOT"):
        shutil.copy(tmp_path / "shot.png", SCREENSHOT)


HOSTILE_NAMES = [
    "<!--<script>.png",
    "<img src=x onerror=window.pwned=1>.png",
    '"><svg onload=window.pwned=1>.png',
    "line\u2028separator.png",
    "&amp;.png",
    "<script>window.pwned=1<\\script>.png",
]


def test_report_renders_hostile_file_names_as_text_and_runs_none(
    gemini: FakeGemini, tmp_path: Path, browser
) -> None:
    from selenium.webdriver.common.by import By

    root = tmp_path / "faces"
    for i, name in enumerate(HOSTILE_NAMES):
        make_image(root / name, EMOTIONS[i % 7], size=(60 + i, 50))
    make_image(root / "plain.png", "happy", size=(90, 50))
    assert CliRunner().invoke(app, ["tag", str(root)]).exit_code == 0
    report = tmp_path / "report.html"
    made = CliRunner().invoke(app, ["report", "-l", "dataset/llm_labels.csv", "-o", str(report)])
    assert made.exit_code == 0, made.output

    browser.get(report.as_uri())
    cards = browser.find_elements(By.CSS_SELECTOR, "#grid .card")
    assert len(cards) == len(HOSTILE_NAMES) + 1
    shown = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "#grid .card .name")}
    plain = {n for n in HOSTILE_NAMES if "\u2028" not in n} | {"plain.png"}
    assert plain <= shown  # shown as text, exactly
    (separated,) = shown - plain
    assert separated.startswith("line") and separated.endswith("separator.png")
    assert browser.execute_script("return window.pwned === undefined;")
    total = sum(
        int(browser.find_element(By.CSS_SELECTOR, f'[data-count="{e}"]').text) for e in EMOTIONS
    )
    assert total == len(HOSTILE_NAMES) + 1


def test_report_orders_doubtful_first_and_filters_split_votes(
    gemini: FakeGemini, tmp_path: Path, browser
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    root = tmp_path / "faces"
    for i in range(6):
        make_image(root / f"amb_{i}.png", "ambiguous", size=(60 + i, 50))
    for i in range(4):
        make_image(root / f"clear_{i}.png", EMOTIONS[i], size=(80 + i, 50))
    tagged = CliRunner().invoke(app, ["tag", str(root), "--votes", "5"])
    assert tagged.exit_code == 0, tagged.output
    report = tmp_path / "report.html"
    made = CliRunner().invoke(app, ["report", "-l", "dataset/llm_labels.csv", "-o", str(report)])
    assert made.exit_code == 0, made.output

    browser.get(report.as_uri())
    shown = browser.find_elements(By.CSS_SELECTOR, "#grid .card .meta:not(.votes) span:last-child")
    confidences = [float(e.text) for e in shown]
    assert len(confidences) == 10 and confidences == sorted(confidences)  # least sure first
    Select(browser.find_element(By.ID, "f-order")).select_by_value("file")
    names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#grid .card .name")]
    assert names == sorted(names)
    rows = read_csv(Path("dataset/llm_labels.csv"))
    split = sum(1 for r in rows if " " in r["votes"])
    browser.find_element(By.ID, "f-split").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#grid .card")) == split
    browser.find_element(By.CSS_SELECTOR, 'nav button[data-tab="agreement"]').click()
    unanimous = browser.find_element(By.CSS_SELECTOR, '[data-votes="5/5"]').text
    assert int(unanimous) == 10 - split


def test_audit_page_is_gone_through_with_the_keyboard_and_exports_the_truth(
    gemini: FakeGemini, tmp_path: Path, browser
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    root = tmp_path / "faces"
    for i in range(14):
        make_image(root / f"img_{i:02d}.png", EMOTIONS[i % 7], size=(60 + i, 50))
    assert CliRunner().invoke(app, ["tag", str(root)]).exit_code == 0
    drawn = CliRunner().invoke(
        app, ["audit", "sample", "dataset/llm_labels.csv", "--size", "6", "-o", "audit"]
    )
    assert drawn.exit_code == 0, drawn.output
    sample = read_csv(Path("audit/sample.csv"))

    browser.get((tmp_path / "audit" / "audit.html").as_uri())
    progress = browser.find_element(By.ID, "progress")
    card = browser.find_element(By.ID, "card")
    assert progress.text == "0/6"
    assert browser.find_element(By.ID, "name").text == sample[0]["path"]
    assert browser.find_element(By.ID, "emotion").text == sample[0]["emotion"]
    assert (
        browser.find_element(By.CSS_SELECTOR, "#picture img")
        .get_attribute("src")
        .startswith("data:image/jpeg;base64,")
    )
    card.send_keys(Keys.ENTER)  # the model is right
    card.send_keys("3")  # angry
    card.send_keys("0")  # no face / can't tell
    assert progress.text == "3/6"
    card.send_keys(Keys.BACKSPACE)  # undo the skip: the third card again
    assert progress.text == "2/6"
    assert browser.find_element(By.ID, "name").text == sample[2]["path"]
    card.send_keys("7")  # sad
    assert progress.text == "3/6"
    exported = browser.execute_script("return exportCsv();")
    truth = [sample[0]["emotion"], "angry", "sad"]
    assert exported == "path,truth\r\n" + "".join(
        f"{row['path']},{value}\r\n" for row, value in zip(sample, truth, strict=False)
    )
    Path("audit/truth.csv").write_text(exported, encoding="utf-8", newline="")
    scored = CliRunner().invoke(
        app, ["audit", "score", "dataset/llm_labels.csv", "--truth", "audit/truth.csv", "--json"]
    )
    assert scored.exit_code == 0, scored.output
    assert '"audited": 3' in scored.stdout
    browser.refresh()  # the answers are kept in the browser until exported
    from selenium.webdriver.support.ui import WebDriverWait

    # On a loaded machine the page's script may restore the answers just after the load
    # event the refresh waits for: wait for it (a page that forgot them stays at 0/6).
    WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.ID, "progress").text != "0/6"  # type: ignore[attr-defined]
    )
    assert browser.find_element(By.ID, "progress").text == "3/6"


def test_audit_page_renders_hostile_file_names_as_text_and_runs_none(
    gemini: FakeGemini, tmp_path: Path, browser
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    root = tmp_path / "faces"
    for i, name in enumerate(HOSTILE_NAMES):
        make_image(root / name, EMOTIONS[i % 7], size=(60 + i, 50))
    assert CliRunner().invoke(app, ["tag", str(root)]).exit_code == 0
    size = str(len(HOSTILE_NAMES))
    made = CliRunner().invoke(app, ["audit", "sample", "dataset/llm_labels.csv", "-n", size])
    assert made.exit_code == 0, made.output
    browser.get((tmp_path / "audit" / "audit.html").as_uri())
    shown = set()
    for _ in HOSTILE_NAMES:
        shown.add(Path(browser.find_element(By.ID, "name").text).name)
        browser.find_element(By.ID, "card").send_keys(Keys.ENTER)
    assert {n for n in HOSTILE_NAMES if "\u2028" not in n} <= shown
    assert browser.execute_script("return window.pwned === undefined;")
    assert browser.find_element(By.ID, "progress").text == f"{size}/{size}"
