"""Chart primitives for inline SVG: scales, nice ticks, paths, escaped elements. Stdlib only.

The HTML report must open anywhere (a CI artifact, an air-gapped laptop), so charts are plain
SVG written as text, no library. Everything that may come from a log goes through `esc()` (text)
or `tag()` (attributes are always quoted and escaped), both `safetext.xml`: a command line is
data, never markup, and its control or bidi characters show as escapes.

Coordinates are rounded to 0.1 px: a week of data stays a few hundred KiB.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from memtrail import safetext

Point = Optional[Tuple[float, float]]
AttrValue = Union[str, int, float, None]

_BYTE_UNITS = ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"), (1, "B"))
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400, 172800, 604800)


def esc(text: object) -> str:
    """Text (or an attribute value) from anywhere, safe inside HTML and SVG (one line: a
    newline shows as `\\n`)."""
    return safetext.xml(text)


def num(x: float) -> str:
    """A coordinate: one decimal, no trailing zeros."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def tag(name: str, attrs: Optional[Dict[str, AttrValue]] = None, *children: str,
        close: bool = True) -> str:
    """`<name a="v">children</name>`; attribute values escaped and quoted, None dropped.

    Attribute names are the caller's constants (never log data); `_` becomes `-` so
    `data_series` writes `data-series`. Children must already be markup (use `esc` for text).
    """
    parts = [name]
    for key, value in (attrs or {}).items():
        if value is None:
            continue
        key = key.rstrip("_").replace("_", "-")
        if isinstance(value, float):
            value = num(value)
        parts.append(f'{key}="{esc(value)}"')
    head = "<" + " ".join(parts)
    if not children and not close:
        return head + "/>"
    return head + ">" + "".join(children) + f"</{name}>"


def title(text: str) -> str:
    """An SVG `<title>`: the tooltip every browser shows on hover, no script needed."""
    return f"<title>{safetext.xml(text, newlines=True)}</title>"


class Frame:
    """A plot box in pixels and the data ranges it shows: x is time, y is a value."""

    def __init__(self, left: float, top: float, width: float, height: float,
                 t0: float, t1: float, v0: float, v1: float) -> None:
        self.left, self.top, self.width, self.height = left, top, width, height
        self.t0, self.t1 = t0, (t1 if t1 > t0 else t0 + 1.0)
        self.v0, self.v1 = v0, (v1 if v1 > v0 else v0 + 1.0)

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def x(self, t: float) -> float:
        return self.left + (t - self.t0) / (self.t1 - self.t0) * self.width

    def y(self, v: float) -> float:
        v = min(max(v, self.v0), self.v1)
        return self.bottom - (v - self.v0) / (self.v1 - self.v0) * self.height


# -- ticks -------------------------------------------------------------------------------------
def time_ticks(t0: float, t1: float, max_ticks: int = 10) -> Tuple[float, List[float]]:
    """A round step (1 s ... 1 week) giving at most `max_ticks` ticks, and the ticks (UTC)."""
    span = max(t1 - t0, 1.0)
    step = float(_TIME_STEPS[-1])
    for s in _TIME_STEPS:
        if span / s <= max_ticks:
            step = float(s)
            break
    first = math.ceil(t0 / step) * step
    ticks = []
    t = first
    while t <= t1 + 1e-6:
        ticks.append(t)
        t += step
    return step, ticks


def time_label(t: float, step: float, span: float) -> str:
    """`14:32`, `14:32:05` for second steps, `Nov 21` at midnight on multi-day charts."""
    dt = datetime.fromtimestamp(t, timezone.utc)
    if step < 60:
        return dt.strftime("%H:%M:%S")
    if span > 86400 and dt.hour == 0 and dt.minute == 0:
        return dt.strftime("%b %d")
    if step >= 86400:
        return dt.strftime("%b %d")
    return dt.strftime("%H:%M")


def byte_unit(vmax: float) -> Tuple[int, str]:
    for size, name in _BYTE_UNITS:
        if vmax >= size:
            return size, name
    return 1, "B"


def nice_step(raw: float) -> float:
    """1, 2, 2.5, 5 times a power of ten, at least `raw`."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw - 1e-12:
            return m * power
    return 10 * power


def value_ticks(vmax: float, max_ticks: int = 6) -> Tuple[List[float], float]:
    """Byte ticks from 0 to at least `vmax`, and the axis top: round steps of the largest
    fitting binary unit (e.g. 0.5 GiB)."""
    if vmax <= 0:
        vmax = 1.0
    unit = byte_unit(vmax)[0]
    step = nice_step(vmax / unit / max_ticks) * unit
    top = math.ceil(vmax / step - 1e-9) * step
    count = int(round(top / step))
    return [i * step for i in range(count + 1)], top


def fmt_axis_bytes(v: float) -> str:
    if v == 0:
        return "0"
    size, name = byte_unit(abs(v))
    value = v / size
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {name}"


# -- paths -------------------------------------------------------------------------------------
def line_path(points: Iterable[Point]) -> str:
    """`M x y L x y ...`; a None point breaks the line (a gap in the recording)."""
    out: List[str] = []
    pen_up = True
    for p in points:
        if p is None:
            pen_up = True
            continue
        out.append(("M" if pen_up else "L") + num(p[0]) + " " + num(p[1]))
        pen_up = False
    return " ".join(out)


def band_path(upper: Sequence[Point], lower: Sequence[Point]) -> str:
    """A closed area between two lines of equal length (None breaks both)."""
    out: List[str] = []
    seg_u: List[Tuple[float, float]] = []
    seg_l: List[Tuple[float, float]] = []

    def close() -> None:
        if seg_u:
            pts = seg_u + list(reversed(seg_l))
            if len(seg_u) == 1:  # a lone bucket: give it a little width to be seen
                (x, yu), (_, yl) = seg_u[0], seg_l[0]
                pts = [(x - 1, yu), (x + 1, yu), (x + 1, yl), (x - 1, yl)]
            out.append("M" + " L".join(num(x) + " " + num(y) for x, y in pts) + " Z")

    for u, lo in zip(upper, lower):
        if u is None or lo is None:
            close()
            seg_u, seg_l = [], []
            continue
        seg_u.append(u)
        seg_l.append(lo)
    close()
    return " ".join(out)


def axes(frame: Frame, yticks: Sequence[float], ylabel, tstep: float,
         tticks: Sequence[float]) -> str:
    """Grid lines, y labels (ylabel(v) -> text) and time labels, as one `<g>`."""
    parts: List[str] = []
    span = frame.t1 - frame.t0
    for v in yticks:
        y = frame.y(v)
        parts.append(tag("line", {"x1": frame.left, "x2": frame.right, "y1": y, "y2": y,
                                  "class": "grid"}))
        parts.append(tag("text", {"x": frame.left - 6, "y": y + 4, "class": "ylab"},
                         esc(ylabel(v))))
    for t in tticks:
        x = frame.x(t)
        parts.append(tag("line", {"x1": x, "x2": x, "y1": frame.top, "y2": frame.bottom,
                                  "class": "grid"}))
        parts.append(tag("text", {"x": x, "y": frame.bottom + 16, "class": "xlab"},
                         esc(time_label(t, tstep, span))))
    parts.append(tag("rect", {"x": frame.left, "y": frame.top, "width": frame.width,
                              "height": frame.height, "class": "box"}))
    return tag("g", {"class": "axes"}, *parts)
