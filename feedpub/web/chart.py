"""The status page's charts, drawn on the server as plain SVG: no script, no
external resource, nothing a strict content security policy refuses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from feedpub.stats import BOUNCE_WARNING, COMPLAINT_WARNING, IssueStats

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 48
BOUNCE_COLOUR, COMPLAINT_COLOUR, BAR_COLOUR = "#cf222e", "#8250df", "#0b57d0"


def _svg(name: str, title: str, desc: str, body: list[str]) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}"'
            f' width="100%" role="img" aria-labelledby="{name}-title {name}-desc"'
            f' font-size="12" fill="currentColor">',
            f'<title id="{name}-title">{escape(title)}</title>',
            f'<desc id="{name}-desc">{escape(desc)}</desc>',
            *body,
            "</svg>",
        ]
    )


def _axes(
    y_label: str, ticks: Sequence[tuple[float, str]], issues: Sequence[IssueStats]
) -> list[str]:
    """The axes, the y ticks at (fraction of the height, label), every issue's
    number under it where they fit, and both axis labels."""
    bottom, plot = HEIGHT - BOTTOM, HEIGHT - BOTTOM - TOP
    parts = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="currentColor"/>',
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"'
        ' stroke="currentColor"/>',
    ]
    for fraction, label in ticks:
        y = bottom - fraction * plot
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>'
        )
    step = max(1, -(-len(issues) * 28 // (WIDTH - LEFT - RIGHT)))
    for index, issue in enumerate(issues):
        if index % step == 0:
            parts.append(
                f'<text x="{_x(index, len(issues)):.1f}" y="{bottom + 16}"'
                f' text-anchor="middle">#{issue.number}</text>'
            )
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle">issue</text>'
    )
    parts.append(
        f'<text x="14" y="{TOP + plot / 2}" text-anchor="middle"'
        f' transform="rotate(-90 14 {TOP + plot / 2})">{escape(y_label)}</text>'
    )
    return parts


def _x(index: int, count: int) -> float:
    """The middle of the ``index``-th of ``count`` slots along the x axis."""
    slot = (WIDTH - LEFT - RIGHT) / max(count, 1)
    return LEFT + slot * (index + 0.5)


def _ceiling(value: float) -> float:
    """The least of 1, 2, 5 and 10 times a power of ten that is at least ``value`` (> 0)."""
    scale = 10.0 ** math.floor(math.log10(value))
    return next(scale * m for m in (1, 2, 5, 10) if scale * m >= value)


def size_chart(issues: Sequence[IssueStats]) -> str:
    """A bar for each issue: how many it was recorded for."""
    top = _ceiling(max((issue.recipients for issue in issues), default=0) or 1)
    plot = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT - RIGHT) / max(len(issues), 1)
    bars = []
    for index, issue in enumerate(issues):
        height = plot * issue.recipients / top
        bars.append(
            f'<rect class="bar" x="{_x(index, len(issues)) - slot * 0.35:.1f}"'
            f' y="{HEIGHT - BOTTOM - height:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}"'
            f' fill="{BAR_COLOUR}"><title>issue #{issue.number}: {issue.recipients} recipients'
            "</title></rect>"
        )
    ticks = [(0.0, "0"), (0.5, f"{top / 2:g}"), (1.0, f"{top:g}")]
    return _svg(
        "size",
        "List size per issue",
        f"Recipients of each of the last {len(issues)} issues, oldest first.",
        _axes("recipients", ticks, issues) + bars,
    )


def rate_chart(issues: Sequence[IssueStats]) -> str:
    """Two lines of points, the bounce and the complaint rate of each issue sent,
    and the levels over which ``feedpub stats`` warns, dashed."""
    rates = [
        rate
        for issue in issues
        for rate in (issue.bounce_rate, issue.complaint_rate)
        if rate is not None
    ]
    top = _ceiling(max([*rates, BOUNCE_WARNING]))
    plot = HEIGHT - BOTTOM - TOP
    parts: list[str] = []
    for level, colour in ((BOUNCE_WARNING, BOUNCE_COLOUR), (COMPLAINT_WARNING, COMPLAINT_COLOUR)):
        y = HEIGHT - BOTTOM - plot * level / top
        parts.append(
            f'<line class="level" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"'
            f' stroke="{colour}" stroke-dasharray="4 4"/>'
        )
    for name, colour in (("bounce", BOUNCE_COLOUR), ("complaint", COMPLAINT_COLOUR)):
        points = []
        for index, issue in enumerate(issues):
            rate = issue.bounce_rate if name == "bounce" else issue.complaint_rate
            if rate is not None:
                y = HEIGHT - BOTTOM - plot * rate / top
                points.append((_x(index, len(issues)), y, issue, rate))
        if len(points) > 1:
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}"/>')
        for x, y, issue, rate in points:
            parts.append(
                f'<circle class="{name}" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>issue #{issue.number}: {name} rate {rate:.2%}</title></circle>"
            )
    legend_y = TOP + 4
    parts.append(
        f'<text x="{WIDTH - RIGHT}" y="{legend_y}" text-anchor="end">'
        f'<tspan fill="{BOUNCE_COLOUR}">● bounces</tspan>'
        f'<tspan fill="{COMPLAINT_COLOUR}" dx="12">● complaints</tspan>'
        f'<tspan dx="12">(dashed: warning levels {BOUNCE_WARNING:.0%}, {COMPLAINT_WARNING:.1%})'
        "</tspan></text>"
    )
    ticks = [(0.0, "0%"), (0.5, f"{top / 2 * 100:g}%"), (1.0, f"{top * 100:g}%")]
    return _svg(
        "rates",
        "Bounce and complaint rates per issue",
        f"Bounces and complaints per message sent, for each of the last {len(issues)} issues, "
        "oldest first; issues with nothing sent have no point.",
        _axes("rate per sent", ticks, issues) + parts,
    )
