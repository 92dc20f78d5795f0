"""`audit score -o REPORT.html`: one page with the estimate, a reliability diagram (raw
and calibrated) and accuracy against coverage, drawn as inline SVG: no plotting library,
no network, the report's Content-Security-Policy."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from emotag.files.atomic import atomic_text

if TYPE_CHECKING:
    from emotag.quality.audit import AuditScore

SIDE = 320  # plot size in pixels
PAD = 36
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"  # the page runs no script


def build_report(result: AuditScore, output: Path, *, source: Path) -> None:
    accuracy = result.accuracy
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{s.precision:.1%}</td>"
        f"<td>{s.low:.1%}&ndash;{s.high:.1%}</td><td>{s.n}</td></tr>"
        for name, s in result.per_label.items()
    )
    raw = [(p, share) for p, share, _ in result.raw_reliability]
    calibrated = [(p, share) for p, share, _ in result.calibrated_reliability]
    ece = (
        f"ECE {result.ece_raw:.3f} as the model said it, {result.ece_calibrated or 0:.3f} "
        "calibrated (cross-validated)"
        if result.ece_raw is not None
        else "no confidence in this CSV: calibrated is each label's precision"
    )
    title = html.escape(f"emotag audit — {source.name}")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #1b2230; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }}
th, td {{ border: 1px solid #dde2ea; padding: 4px 8px; text-align: right; }}
td:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: 0 24px 16px 0; }}
figcaption {{ font-size: 14px; color: #5b6578; }}
</style></head><body>
<h1>{title}</h1>
<p><b>Accuracy of the whole CSV: {accuracy.value:.1%}</b> (95% interval
{accuracy.low:.1%}&ndash;{accuracy.high:.1%}), from {result.audited} checked label(s) of
{result.labels:,} ({result.skipped} skipped).</p>
<p><b>{html.escape(result.keep.sentence())}</b></p>
<table><tr><th>label</th><th>precision</th><th>95% interval</th><th>checked</th></tr>{rows}</table>
<figure>{
        _plot(
            [("raw", "#b35c00", raw), ("calibrated", "#2457c5", calibrated)],
            "confidence",
            "share right",
            diagonal=True,
        )
    }
<figcaption>Reliability: {
        html.escape(ece)
    }. On the diagonal, a confidence is what it says.</figcaption></figure>
<figure>{
        _plot(
            [("calibrated", "#2457c5", result.coverage)],
            "share of labels kept",
            "accuracy",
            diagonal=False,
        )
    }
<figcaption>Accuracy against coverage, keeping the most probably right first.</figcaption></figure>
</body></html>
"""
    with atomic_text(output) as handle:
        handle.write(page)


def _plot(
    series: Sequence[tuple[str, str, Sequence[tuple[float, float]]]],
    x_label: str,
    y_label: str,
    *,
    diagonal: bool,
) -> str:
    """Points and lines on the unit square, as an SVG element."""

    def at(x: float, y: float) -> tuple[str, str]:
        return f"{PAD + x * SIDE:.1f}", f"{PAD + (1 - y) * SIDE:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIDE + 2 * PAD}" '
        f'height="{SIDE + 2 * PAD}" role="img">',
        f'<rect x="{PAD}" y="{PAD}" width="{SIDE}" height="{SIDE}" fill="none" stroke="#999"/>',
        f'<text x="{PAD + SIDE / 2}" y="{2 * PAD + SIDE - 6}" text-anchor="middle" '
        f'font-size="12">{html.escape(x_label)}</text>',
        f'<text x="12" y="{PAD + SIDE / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {PAD + SIDE / 2})">{html.escape(y_label)}</text>',
    ]
    if diagonal:
        parts.append(
            f'<line x1="{PAD}" y1="{PAD + SIDE}" x2="{PAD + SIDE}" y2="{PAD}" stroke="#ccc"/>'
        )
    for index, (name, colour, points) in enumerate(series):
        if points:
            line = " ".join(",".join(at(x, y)) for x, y in points)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}"/>')
            for x, y in points:
                cx, cy = at(x, y)
                parts.append(
                    f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}">'
                    f"<title>{x:.2f}, {y:.2f}</title></circle>"
                )
        parts.append(
            f'<text x="{PAD + 8}" y="{PAD + 16 + 16 * index}" font-size="12" '
            f'fill="{colour}" data-series="{html.escape(name)}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
