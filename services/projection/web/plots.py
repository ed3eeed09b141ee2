"""Plots as inline SVG, drawn on the server: no chart library, nothing fetched at run time, and
a page is readable (and testable) with JavaScript off. Every label goes through escape();
colours come from CSS classes so that the stylesheet owns the palette.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

Fmt = Callable[[float], str]


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at or above value: round axis maxima."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power + 1e-9:
            return step * power
    return 10 * power


def _svg(width: int, height: int, label: str, body: list[str], cls: str) -> Markup:
    return Markup(
        f'<svg class="plot {cls}" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMinYMin meet">'
        f'<title>{escape(label)}</title>{"".join(body)}</svg>')


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> str:
    return f'<text x="{_num(x)}" y="{_num(y)}" class="{cls}" text-anchor="{anchor}">{escape(text)}</text>'


def _clip(text: str, chars: int = 22) -> str:
    """A bar's label fits the 170px left of the bars; the full text stays in the tooltip."""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _y_axis(x0: float, x1: float, y0: float, height: float, top: float, fmt: Fmt) -> list[str]:
    # top is 1, 2 or 5 x 10^k (nice_ceiling): steps of 0.2, 0.5 or 1 x 10^k keep the ticks round.
    ticks = 4 if f"{top:e}".startswith("2") else 5
    out = []
    for i in range(ticks + 1):
        value = top * i / ticks
        y = y0 - height * i / ticks
        out.append(f'<line class="grid" x1="{_num(x0)}" x2="{_num(x1)}" y1="{_num(y)}" y2="{_num(y)}"/>')
        out.append(_text(x0 - 6, y + 4, fmt(value), "tick", "end"))
    return out


# ------------------------------------------------------------------ the timeline of touches


@dataclass(frozen=True)
class Lane:
    key: str
    label: str
    sublabel: str


@dataclass(frozen=True)
class Point:
    lane: str
    at: datetime
    cls: str
    title: str


@dataclass(frozen=True)
class Mark:
    at: datetime
    label: str


def _day_ticks(start: datetime, end: datetime, count: int = 6) -> list[datetime]:
    span_days = max((end - start).total_seconds() / 86400, 1)
    step = next(s for s in (1, 2, 3, 7, 14, 30, 61, 91, 182, 365, 730) if span_days / s <= count)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    out, at = [], first
    while at <= end:
        out.append(at)
        at += timedelta(days=step)
    return out


LABEL_ROWS = 3
CHAR_PX = 6.6  # about the width of a character of an 11px label


def _place_labels(xs: Sequence[float], labels: Sequence[str], left: float, right: float
                  ) -> list[tuple[int, float, str] | None]:
    """(row, x, anchor) of each mark's label, greedily in the first row where it overlaps no
    other; None when every row is taken there (the line stays, its tooltip names it)."""
    ends: list[float] = []
    out: list[tuple[int, float, str] | None] = []
    for mx, text in zip(xs, labels, strict=True):
        w = CHAR_PX * len(text) + 6
        # Near the right edge a label goes left of its line, so that it stays inside the plot.
        lo, hi, lx, anchor = (mx - w, mx, mx - 4, "end") if mx + w > right else (mx, mx + w, mx + 4, "start")
        lo = max(lo, left - 60)
        row = next((i for i, end in enumerate(ends) if lo > end), None)
        if row is None and len(ends) < LABEL_ROWS:
            row = len(ends)
            ends.append(float("-inf"))
        if row is None:
            out.append(None)
        else:
            ends[row] = hi
            out.append((row, lx, anchor))
    return out


def timeline(lanes: Sequence[Lane], points: Sequence[Point], marks: Sequence[Mark], label: str,
             date: Callable[[datetime], str]) -> Markup:
    """One lane per member, a dot per touch (class = its kind), dashed lines where signals fired."""
    width, left, right, lane_h, bottom = 960, 270, 24, 40, 30
    times = [p.at for p in points] + [m.at for m in marks]
    start, end = (min(times), max(times)) if times else (datetime.now(), datetime.now())
    pad = max((end - start) * 0.04, timedelta(hours=6))
    start, end = start - pad, end + pad
    plot_w = width - left - right

    def x(at: datetime) -> float:
        return left + plot_w * (at - start).total_seconds() / (end - start).total_seconds()

    # Signals at the same moment share one line: "Priority changed +1".
    same: dict[datetime, list[Mark]] = {}
    for mark in sorted(marks, key=lambda m: m.at):
        same.setdefault(mark.at, []).append(mark)
    groups = list(same.items())
    texts = [g[0].label + (f" +{len(g) - 1}" if len(g) > 1 else "") for _, g in groups]
    places = _place_labels([x(at) for at, _ in groups], texts, left, width - right)
    rows = max([p[0] + 1 for p in places if p] + [1])
    top = 20 + 14 * rows
    height = top + lane_h * max(len(lanes), 1) + bottom

    body: list[str] = []
    row_of = {lane.key: i for i, lane in enumerate(lanes)}
    for i, lane in enumerate(lanes):
        y = top + lane_h * i + lane_h / 2
        body.append(f'<line class="lane" x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}"/>')
        body.append(_text(left - 12, y - 3, lane.label, "lane-label", "end"))
        body.append(_text(left - 12, y + 11, lane.sublabel, "lane-sub", "end"))
    axis_y = top + lane_h * len(lanes) + 4
    for tick in _day_ticks(start, end):
        body.append(f'<line class="grid" x1="{_num(x(tick))}" x2="{_num(x(tick))}" y1="{top - 6}" '
                    f'y2="{_num(axis_y)}"/>')
        body.append(_text(x(tick), axis_y + 16, date(tick), "tick", "middle"))
    for (at, group), text, place in zip(groups, texts, places, strict=True):
        mx = x(at)
        tip = "; ".join(m.label for m in group) + f" · {date(at)}"
        row_y = top - 8 - 14 * place[0] if place else top
        label_svg = _text(place[1], row_y - 4, text, "mark-label", place[2]) if place else ""
        body.append(f'<g class="mark"><line x1="{_num(mx)}" x2="{_num(mx)}" y1="{_num(row_y - 2)}" '
                    f'y2="{_num(axis_y)}"/>{label_svg}<title>{escape(tip)}</title></g>')
    for p in points:
        if p.lane not in row_of:
            continue
        y = top + lane_h * row_of[p.lane] + lane_h / 2
        body.append(f'<circle class="touch {escape(p.cls)}" cx="{_num(x(p.at))}" cy="{_num(y)}" r="7">'
                    f'<title>{escape(p.title)}</title></circle>')
    return _svg(width, height, label, body, "timeline")


# ------------------------------------------------------------------ bars, columns, lines


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    cls: str = "s1"
    title: str = ""


def hbars(bars: Sequence[Bar], label: str, fmt: Fmt, benchmarks: Sequence[tuple[float, str]] = ()) -> Markup:
    """Horizontal bars with their values; optional vertical reference lines (healthy levels)."""
    width, left, right, top, bar_h, gap = 640, 170, 60, 22, 22, 12
    height = top + (bar_h + gap) * max(len(bars), 1) + 8
    top_value = nice_ceiling(max([b.value for b in bars] + [v for v, _ in benchmarks] + [0]))
    plot_w = width - left - right
    body: list[str] = []
    for value, name in benchmarks:
        bx = left + plot_w * value / top_value
        body.append(f'<g class="benchmark"><line x1="{_num(bx)}" x2="{_num(bx)}" y1="{top - 12}" '
                    f'y2="{height - 4}"/>{_text(bx, top - 14, name, "bench-label", "middle")}</g>')
    for i, bar in enumerate(bars):
        y = top + i * (bar_h + gap)
        w = plot_w * bar.value / top_value
        body.append(_text(left - 8, y + bar_h * 0.7, _clip(bar.label), "bar-label", "end"))
        body.append(f'<rect class="bar {bar.cls}" x="{left}" y="{y}" width="{_num(max(w, 1))}" height="{bar_h}" '
                    f'rx="3"><title>{escape(bar.title or f"{bar.label}: {fmt(bar.value)}")}</title></rect>')
        body.append(_text(left + w + 6, y + bar_h * 0.7, fmt(bar.value), "bar-value"))
    return _svg(width, height, label, body, "hbars")


def stacked_hbars(rows: Sequence[tuple[str, Sequence[Bar]]], label: str, fmt: Fmt,
                  top_value: float | None = None) -> Markup:
    """One bar per row made of segments (e.g. opportunities covering a role vs missing it)."""
    width, left, right, top, bar_h, gap = 640, 170, 40, 8, 22, 12
    height = top + (bar_h + gap) * max(len(rows), 1)
    top_value = top_value or nice_ceiling(max([sum(s.value for s in segs) for _, segs in rows] + [0]))
    plot_w = width - left - right
    body: list[str] = []
    for i, (name, segments) in enumerate(rows):
        y = top + i * (bar_h + gap)
        body.append(_text(left - 8, y + bar_h * 0.7, _clip(name), "bar-label", "end"))
        x = float(left)
        for seg in segments:
            w = plot_w * seg.value / top_value
            if w <= 0:
                continue
            body.append(f'<rect class="bar {seg.cls}" x="{_num(x)}" y="{y}" width="{_num(w)}" height="{bar_h}">'
                        f'<title>{escape(seg.title or f"{seg.label}: {fmt(seg.value)}")}</title></rect>')
            if w > 18:
                body.append(_text(x + w / 2, y + bar_h * 0.7, fmt(seg.value), "seg-value", "middle"))
            x += w
    return _svg(width, height, label, body, "stacked")


@dataclass(frozen=True)
class Series:
    name: str
    cls: str
    values: Sequence[float | None]


def columns(buckets: Sequence[str], series: Sequence[Series], label: str, fmt: Fmt) -> Markup:
    """Grouped columns per time bucket (opportunities next to raw contacts)."""
    width, left, right, top, bottom = 640, 44, 10, 14, 40
    height = 260
    plot_h, plot_w = height - top - bottom, width - left - right
    top_value = nice_ceiling(max([v or 0 for s in series for v in s.values] + [0]))
    body = _y_axis(left, width - right, top + plot_h, plot_h, top_value, fmt)
    slot = plot_w / max(len(buckets), 1)
    col_w = slot * 0.8 / max(len(series), 1)
    for i, bucket in enumerate(buckets):
        x0 = left + slot * i + slot * 0.1
        for j, s in enumerate(series):
            value = s.values[i] or 0
            h = plot_h * value / top_value
            body.append(f'<rect class="bar {s.cls}" x="{_num(x0 + col_w * j)}" y="{_num(top + plot_h - h)}" '
                        f'width="{_num(col_w - 1)}" height="{_num(h)}"><title>{escape(bucket)} · '
                        f'{escape(s.name)}: {escape(fmt(value))}</title></rect>')
        if len(buckets) <= 8 or i % math.ceil(len(buckets) / 8) == 0:
            body.append(_text(left + slot * (i + 0.5), top + plot_h + 16, bucket, "tick", "middle"))
    return _svg(width, height, label, body, "columns")


def lines(buckets: Sequence[str], series: Sequence[Series], label: str, fmt: Fmt,
          top_value: float | None = None) -> Markup:
    """Lines over time buckets; a bucket without a value breaks the line instead of dropping to 0."""
    width, left, right, top, bottom = 640, 44, 10, 14, 40
    height = 240
    plot_h, plot_w = height - top - bottom, width - left - right
    top_value = top_value or nice_ceiling(max([v or 0 for s in series for v in s.values] + [0]))
    body = _y_axis(left, width - right, top + plot_h, plot_h, top_value, fmt)
    slot = plot_w / max(len(buckets), 1)

    def at(i: int, v: float) -> tuple[float, float]:
        return left + slot * (i + 0.5), top + plot_h - plot_h * v / top_value

    for s in series:
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(at(i, v))
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{_num(px)},{_num(py)}" for px, py in run)
                body.append(f'<polyline class="line {s.cls}" points="{path}"/>')
        for i, v in enumerate(s.values):
            if v is not None:
                px, py = at(i, v)
                body.append(f'<circle class="dot {s.cls}" cx="{_num(px)}" cy="{_num(py)}" r="4">'
                            f'<title>{escape(buckets[i])} · {escape(s.name)}: {escape(fmt(v))}</title></circle>')
    for i, bucket in enumerate(buckets):
        if len(buckets) <= 8 or i % math.ceil(len(buckets) / 8) == 0:
            body.append(_text(left + slot * (i + 0.5), top + plot_h + 16, bucket, "tick", "middle"))
    return _svg(width, height, label, body, "lines")


def strip(cells: Sequence[tuple[str, bool]], label: str) -> Markup:
    """The role-coverage strip of a row: one cell per expected role, filled when covered."""
    cell, gap = 16, 3
    body = [f'<rect class="cell {"on" if covered else "off"}" x="{i * (cell + gap)}" y="0" width="{cell}" '
            f'height="{cell}" rx="3"><title>{escape(name)}</title></rect>'
            for i, (name, covered) in enumerate(cells)]
    width = max(len(cells) * (cell + gap) - gap, 1)
    return Markup(f'<svg class="strip" viewBox="0 0 {width} {cell}" width="{width}" height="{cell}" role="img" '
                  f'aria-label="{escape(label)}">{"".join(body)}</svg>')
