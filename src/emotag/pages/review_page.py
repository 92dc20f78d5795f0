"""`emotag report`: one self-contained HTML file to review labels, filter them, correct
them (click or keys 1-7) and export the corrections. No network, no CDN."""

from __future__ import annotations

import base64
import html
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from emotag.emotions import EMOTIONS
from emotag.errors import ImageError, InputError
from emotag.files.atomic import atomic_text
from emotag.files.csvfiles import read_failures, read_labels
from emotag.files.images import load_rgb
from emotag.quality.evaluation import CoveragePoint, Evaluation
from emotag.votes import is_split, is_tie

THUMB_SIDE = 160
TEMPLATE = Path(__file__).with_name("review_page.html")
PAGE_CSV = Path(__file__).with_name("page_csv.js")  # the CSV export the pages share
# Both pages: their own inline script and style, embedded or linked pictures, no network.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: file: 'self'"
)


def fill(template: Path, title: str, data: object, **parts: str) -> str:
    """A page template with its title (escaped), data (script-safe JSON), the shared
    CSV script and any other `{{NAME}}` parts (HTML made by emotag)."""
    page = template.read_text(encoding="utf-8")
    for name, value in parts.items():
        page = page.replace("{{" + name + "}}", value)
    return (
        page.replace("{{TITLE}}", html.escape(title))
        .replace("{{CSP}}", CSP)
        .replace("{{PAGE_CSV}}", PAGE_CSV.read_text(encoding="utf-8"))
        # "</" inside the JSON would end the script element early.
        .replace("{{DATA}}", script_json(data))
    )


@dataclass(frozen=True)
class ReportStats:
    labels: int
    failures: int
    thumbnails: int
    problems: tuple[str, ...] = ()  # the rows of the labels CSV left off the page


def build_report(
    labels_csv: Path,
    output: Path,
    *,
    errors_csv: Path | None = None,
    link_images: bool = False,
    evaluation: Evaluation | None = None,
) -> ReportStats:
    if not labels_csv.is_file():
        raise InputError(f"Labels CSV not found: {labels_csv}")
    table = read_labels(labels_csv)
    failures = read_failures(errors_csv) if errors_csv and errors_csv.is_file() else {}
    labels = list(table.labels.values())
    paths = [label.path for label in labels] + list(failures)
    root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    with ThreadPoolExecutor() as pool:
        picture = (lambda p: _link(p, output)) if link_images else thumbnail
        pictures = list(pool.map(picture, paths))
    items = [
        {
            "path": label.path,
            "name": label.filename,
            "folder": os.path.relpath(os.path.dirname(label.path), root) if root else "",
            "emotion": label.emotion,
            "confidence": label.confidence,
            "calibrated": label.calibrated,
            "source": label.confidence_source,
            "faces": label.faces,
            "votes": label.votes,
            "split": is_split(label.votes),
            "tie": is_tie(label.votes),
            "img": pictures[i],
        }
        for i, label in enumerate(labels)
    ]
    failed = [
        {
            "path": path,
            "name": Path(path).name,
            "reason": failure.reason,
            "img": pictures[len(labels) + i],
        }
        for i, (path, failure) in enumerate(failures.items())
    ]
    data = {
        "emotions": list(EMOTIONS),
        "labels": items,
        "failures": failed,
        "source": str(labels_csv),
    }
    page = fill(
        TEMPLATE,
        f"emotag report — {labels_csv.name}",
        data,
        AGREEMENT=_agreement_html(evaluation) if evaluation else "",
    )
    with atomic_text(output) as handle:
        handle.write(page)
    thumbnails = sum(1 for p in pictures if p)
    return ReportStats(len(items), len(failed), thumbnails, tuple(table.problems))


def thumbnail(path: str, side: int = THUMB_SIDE) -> str:
    """A JPEG data URI of the image at most `side` pixels a side ("" if unreadable)."""
    try:
        rgb = load_rgb(Path(path).read_bytes(), side)
    except (OSError, ImageError):
        return ""
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def _link(path: str, output: Path) -> str:
    return quote(os.path.relpath(path, output.resolve().parent))


def _agreement_html(evaluation: Evaluation) -> str:
    result = evaluation.result
    head = "".join(f"<th>{html.escape(label)}</th>" for label in result.labels)
    matrix = "".join(
        f"<tr><th>{html.escape(r)}</th>"
        + "".join(f"<td>{result.confusion[r][p]}</td>" for p in result.labels)
        + "</tr>"
        for r in result.labels
    )
    scores = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{s.precision:.3f}</td><td>{s.recall:.3f}</td>"
        f"<td>{s.f1:.3f}</td><td>{s.support}</td></tr>"
        for k, s in result.per_class.items()
    )
    return (
        f'<section id="agreement"><h2>Agreement with {html.escape(evaluation.reference)}</h2>'
        f"<p>{evaluation.compared} images compared: accuracy <b>{result.accuracy:.3f}</b>, "
        f"Cohen's kappa <b>{result.kappa:.3f}</b>, macro-F1 <b>{result.macro_f1:.3f}</b>.</p>"
        "<table><tr><th></th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
        f"{scores}</table><h3>Confusion (rows: reference, columns: labels)</h3>"
        f"<table><tr><th></th>{head}</tr>{matrix}</table>"
        f"{_coverage_html(evaluation.coverage)}</section>"
    )


def _coverage_html(points: list[CoveragePoint]) -> str:
    """Accuracy against the share kept, for each confidence threshold: a table and a chart."""
    rows = "".join(
        f"<tr><td>{p.threshold:g}</td><td>{p.kept}</td><td>{p.share:.1%}</td>"
        f'<td data-accuracy="{p.threshold:g}">{p.accuracy:.3f}</td></tr>'
        for p in points
    )
    # x: share kept (0..1), y: accuracy (0..1), in a 300x160 box with a 30 px margin.
    xy = [(30 + 260 * p.share, 140 - 120 * p.accuracy) for p in points]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"/>' for x, y in xy)
    chart = (
        '<svg width="300" height="160" role="img" aria-label="accuracy against coverage">'
        '<line x1="30" y1="140" x2="290" y2="140" stroke="#999"/>'
        '<line x1="30" y1="20" x2="30" y2="140" stroke="#999"/>'
        f'<polyline points="{line}" fill="none" stroke="#2f6fde"/>'
        f'<g fill="#2f6fde">{dots}</g>'
        '<text x="160" y="156" font-size="10" text-anchor="middle">share kept</text>'
        '<text x="4" y="14" font-size="10">accuracy</text></svg>'
    )
    return (
        "<h3>Accuracy against coverage (keep labels with confidence ≥ t)</h3>"
        f'<table id="coverage"><tr><th>t</th><th>kept</th><th>share</th><th>accuracy</th></tr>'
        f"{rows}</table>{chart}"
    )


_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def script_json(data: object) -> str:
    """JSON safe inside a <script> element whatever file names it holds: no `</script>`,
    no `<!--`, no line separators that end a JS string (the escapes are still JSON)."""
    text = json.dumps(data)
    for raw, escaped in _SCRIPT_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text
