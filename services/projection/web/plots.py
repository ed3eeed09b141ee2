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


BAR_CHAR_PX = 7.2  # about the width of a character of a 12px bar label (Cyrillic included)


def _label_room(labels: Sequence[str], least: float = 120, most: float = 360) -> tuple[float, int]:
    """(left margin in px, characters that fit) for bar labels written right-aligned before the
    bars: wide enough for the longest label up to `most`, so names are not cut at the left."""
    longest = max([len(x) for x in labels] + [0])
    left = min(max(longest * BAR_CHAR_PX + 14, least), most)
    return left, int((left - 14) / BAR_CHAR_PX)


def _clip(text: str, chars: int) -> str:
    """A label that would not fit even `most` px ends in an ellipsis; the tooltip keeps it whole."""
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


MIN_BUCKET_PX = 30  # the width of one bucket: a dot with its count never touches the next


def timeline_step(start: datetime, end: datetime, plot_w: float) -> tuple[str, timedelta]:
    """The bucket of the timeline: a day while days are at least MIN_BUCKET_PX wide, else a
    week, else 30 days. Returns (name, length)."""
    span_days = max((end - start).total_seconds() / 86400, 1)
    for name, days in (("day", 1), ("week", 7), ("month", 30)):
        if plot_w / (span_days / days + 1) >= MIN_BUCKET_PX or name == "month":
            return name, timedelta(days=days)
    raise AssertionError("unreachable")


def _bucket_start(at: datetime, step: timedelta) -> datetime:
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if step == timedelta(days=7):
        return day - timedelta(days=day.weekday())  # weeks start on Monday
    if step == timedelta(days=30):
        return day.replace(day=1)
    return day


def timeline(lanes: Sequence[Lane], points: Sequence[Point], marks: Sequence[Mark], label: str,
             date: Callable[[datetime], str], count_label: Callable[[int], str] = str) -> Markup:
    """One lane per member, readable at any density: touches are aggregated per member and
    bucket (a day, or a week or 30 days for long spans: timeline_step), one dot per bucket
    with its count and the kind most of them were (its class); dashed lines where signals
    fired, same-bucket signals sharing one line ("Priority changed +1"), labels placed in rows
    so that they never overlap (_place_labels). Each lane's name sits above its line, from the
    left edge: a long name is never clipped. `count_label(n)` is the tooltip's count text."""
    width, left, right, lane_h, bottom = 960, 16, 24, 46, 30
    plot_w = width - left - right
    times = [p.at for p in points] + [m.at for m in marks]
    first, last = (min(times), max(times)) if times else (datetime.now(), datetime.now())
    _, step = timeline_step(first, last, plot_w)
    start = _bucket_start(first, step)
    buckets = int((last - start) / step) + 1
    slot = plot_w / buckets

    def x(at: datetime) -> float:
        """The centre of the bucket holding `at`."""
        index = min(int((at - start) / step), buckets - 1)
        return left + slot * (index + 0.5)

    # Signals of one bucket share one line.
    same: dict[float, list[Mark]] = {}
    for mark in sorted(marks, key=lambda m: m.at):
        same.setdefault(x(mark.at), []).append(mark)
    groups = list(same.items())
    texts = [g[0].label + (f" +{len(g) - 1}" if len(g) > 1 else "") for _, g in groups]
    places = _place_labels([gx for gx, _ in groups], texts, left, width - right)
    rows = max([p[0] + 1 for p in places if p] + [1])
    top = 20 + 14 * rows
    height = top + lane_h * max(len(lanes), 1) + bottom

    body: list[str] = []
    row_of = {lane.key: i for i, lane in enumerate(lanes)}
    for i, lane in enumerate(lanes):
        y0 = top + lane_h * i
        body.append(f'<text x="{left}" y="{_num(y0 + 12)}" class="lane-text">'
                    f'<tspan class="lane-label">{escape(lane.label)}</tspan>'
                    f'<tspan class="lane-sub" dx="8">{escape(lane.sublabel)}</tspan></text>')
        body.append(f'<line class="lane" x1="{left}" x2="{width - right}" y1="{_num(y0 + 31)}" y2="{_num(y0 + 31)}"/>')
    axis_y = top + lane_h * len(lanes) + 4
    every = max(1, math.ceil(buckets / 8))  # at most about eight dates on the axis
    for index in range(0, buckets, every):
        at = start + step * index
        body.append(f'<line class="grid" x1="{_num(x(at))}" x2="{_num(x(at))}" y1="{top - 6}" y2="{_num(axis_y)}"/>')
        body.append(_text(x(at), axis_y + 16, date(at), "tick", "middle"))
    for (mx, group), text, place in zip(groups, texts, places, strict=True):
        tip = "; ".join(f"{m.label} · {date(m.at)}" for m in group)
        row_y = top - 8 - 14 * place[0] if place else top
        label_svg = _text(place[1], row_y - 4, text, "mark-label", place[2]) if place else ""
        body.append(f'<g class="mark"><line x1="{_num(mx)}" x2="{_num(mx)}" y1="{_num(row_y - 2)}" '
                    f'y2="{_num(axis_y)}"/>{label_svg}<title>{escape(tip)}</title></g>')
    cells: dict[tuple[str, float], list[Point]] = {}
    for p in sorted(points, key=lambda p: p.at):
        if p.lane in row_of:
            cells.setdefault((p.lane, x(p.at)), []).append(p)
    for (lane_key, cx), cell in cells.items():
        y = top + lane_h * row_of[lane_key] + 31
        kinds: dict[str, int] = {}
        for p in cell:
            kinds[p.cls] = kinds.get(p.cls, 0) + 1
        cls = max(kinds, key=lambda k: (kinds[k], k))
        n = len(cell)
        r = 7 + min(5.0, 2 * math.log2(n)) if n > 1 else 7
        shown = [p.title for p in cell[:12]] + ([f"… +{n - 12}"] if n > 12 else [])
        tip = count_label(n) + "\n" + "\n".join(shown)
        count = (f'<text x="{_num(cx)}" y="{_num(y + 4)}" class="touch-count" text-anchor="middle">{n}</text>'
                 if n > 1 else "")
        body.append(f'<g class="touch-group" data-count="{n}"><circle class="touch {escape(cls)}" cx="{_num(cx)}" '
                    f'cy="{_num(y)}" r="{_num(r)}"/>{count}<title>{escape(tip)}</title></g>')
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
    width, right, top, bar_h, gap = 640, 60, 22, 22, 12
    left, fits = _label_room([b.label for b in bars])
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
        body.append(_text(left - 8, y + bar_h * 0.7, _clip(bar.label, fits), "bar-label", "end"))
        body.append(f'<rect class="bar {bar.cls}" x="{left}" y="{y}" width="{_num(max(w, 1))}" height="{bar_h}" '
                    f'rx="3"><title>{escape(bar.title or f"{bar.label}: {fmt(bar.value)}")}</title></rect>')
        body.append(_text(left + w + 6, y + bar_h * 0.7, fmt(bar.value), "bar-value"))
    return _svg(width, height, label, body, "hbars")


def stacked_hbars(rows: Sequence[tuple[str, Sequence[Bar]]], label: str, fmt: Fmt,
                  top_value: float | None = None) -> Markup:
    """One bar per row made of segments (e.g. opportunities covering a role vs missing it)."""
    width, right, top, bar_h, gap = 640, 40, 8, 22, 12
    left, fits = _label_room([name for name, _ in rows])
    height = top + (bar_h + gap) * max(len(rows), 1)
    top_value = top_value or nice_ceiling(max([sum(s.value for s in segs) for _, segs in rows] + [0]))
    plot_w = width - left - right
    body: list[str] = []
    for i, (name, segments) in enumerate(rows):
        y = top + i * (bar_h + gap)
        body.append(_text(left - 8, y + bar_h * 0.7, _clip(name, fits), "bar-label", "end"))
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
