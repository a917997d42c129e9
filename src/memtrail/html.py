"""`memtrail html LOG... -o report.html`: the recording as one self-contained page with charts.

An incident is understood from a picture in seconds, and a CI job can publish one file as an
artifact. So the page is a single HTML file: inline CSS, inline SVG, one small inline script
(a crosshair and tooltip; without it the SVG `<title>`s still show values on hover), nothing
fetched from the network, and a Content-Security-Policy that forbids it (`default-src 'none'`,
the script allowed by its hash only). Stdlib only.

One streaming pass per recording feeds two consumers with the same ticks: `report.Analysis`
(the report's sections and tables, so the page and `memtrail report` never disagree) and
`Charts`, which downsamples into a bounded number of time buckets (`downsample.Buckets`)
keeping min/max per series and, per bucket, the program table at its worst tick (the
Analysis's per-program totals, not a second count of its own). Memory stays flat: a 7-day
log at 1 s draws as a few hundred buckets.

Everything from the log (command lines, program names, hosts, cgroup paths) is data: it goes
through `svg.esc` / `svg.tag`, never into markup or script unescaped.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import heapq
import sys
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from memtrail import __version__, output, safetext
from memtrail.downsample import Bucket, Buckets
from memtrail.model import Run, Tick, oom_victim, replay
from memtrail.reader import LogError, ReadStats, check_paths
from memtrail.report import (
    OOM_HOST_TITLE,
    Analysis,
    _cmd,
    _t,
    data_problems_text,
    group_runs,
    oom_held,
    oom_invoker,
    oom_table_title,
    oom_where,
    pss_text,
    rates_text,
    render_text,
    tick_errors_text,
    unread_files,
    usable,
)
from memtrail.safetext import terminal, xml
from memtrail.svg import (
    Frame,
    axes,
    band_path,
    esc,
    fmt_axis_bytes,
    line_path,
    nice_step,
    num,
    tag,
    time_ticks,
    title,
    value_ticks,
)
from memtrail.timeparse import fmt_time
from memtrail.triggers import describe, from_row, trigger
from memtrail.units import fmt_bytes, fmt_duration

# Series kept per bucket (index = position).
SERIES = ("used", "available", "cache", "swap", "total", "psi_some", "psi_full")
USED, AVAIL, CACHE, SWAP, TOTAL, PSI_SOME, PSI_FULL = range(len(SERIES))
TARGET_BUCKETS = 240  # the charts hold 240..480 buckets: ~2-5 px each at 1200 px
GROUPS_PER_BUCKET = 24  # programs remembered per bucket (the rest only as a sum)
MAX_MARKERS = 200  # OOM kills / lows drawn (the rest counted in the headline)
TOP_PROGRAMS = 7  # layers in the stacked chart (Okabe-Ito has 7 colours besides black)

# Okabe-Ito: distinguishable with every common colour-vision deficiency.
OI = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
      "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7"}
# Orange and vermillion look alike in a stack and on a projector: the seventh layer is a dark
# wine instead (Paul Tol's), and the PSI chart pairs blue with vermillion.
WINE = "#882255"
PROGRAM_COLOURS = (OI["orange"], OI["sky"], OI["green"], OI["purple"], OI["blue"],
                   OI["yellow"], WINE)
SERIES_STYLE = {  # memory chart: colour, dash, legend text
    "used": (OI["vermillion"], None, "used (total - available)"),
    "available": (OI["blue"], None, "available"),
    "cache": (OI["sky"], "6 3", "page cache + buffers"),
    "swap": (OI["purple"], "2 2", "swap used"),
}

W, LEFT, RIGHT = 1200, 74, 14


@dataclass
class Snap:
    """The program table at the worst tick (highest used) of a bucket: the stacked layers."""

    time: float
    used: int
    groups: List[Tuple[str, int]]
    rss_total: int
    slab: int
    shmem: int


def _worse(a: Optional[Snap], b: Optional[Snap]) -> Optional[Snap]:
    if a is None:
        return b
    if b is None:
        return a
    return b if b.used > a.used else a


@dataclass
class Marker:
    time: float
    label: str
    detail: str
    pid: Optional[int] = None
    value: Optional[int] = None


class Charts:
    """Consumes ticks; keeps bounded, downsampled series for the charts."""

    def __init__(self, target: int = TARGET_BUCKETS) -> None:
        self.target = target
        self.buckets: Optional[Buckets] = None
        self.kills: List[Marker] = []  # the first MAX_MARKERS (the report counts them all)
        self.lows: List[Marker] = []
        self.triggers: List[Marker] = []  # signals the sampler's --trigger rules sent
        self.interval = 1.0
        self._prev_time: Optional[float] = None
        self.has_psi = False
        self.has_swap = False

    def add(self, tick: Tick, run: Run, totals: Dict[str, int]) -> None:
        """`totals`: resident bytes per program after this tick (`Analysis.group_totals`,
        fed the same tick first)."""
        if self.buckets is None:
            self.interval = run.interval_s or 1.0
            self.buckets = Buckets(len(SERIES), self.target, self.interval, _worse)
        s = tick.system
        cache = None if s.cached is None and s.buffers is None else \
            (s.cached or 0) + (s.buffers or 0)
        swap = s.swap_used
        if s.swap_total:
            self.has_swap = True
        some_pct = full_pct = None
        dt = tick.time - self._prev_time if self._prev_time is not None else 0.0
        if dt > 0 and tick.gap is None:  # a share of the time since the previous tick
            if tick.psi_some_us is not None:
                some_pct = min(100.0, tick.psi_some_us / (dt * 1e4))
            if tick.psi_full_us is not None:
                full_pct = min(100.0, tick.psi_full_us / (dt * 1e4))
        if s.psi_some_us is not None or s.psi_full_us is not None:
            self.has_psi = True
        self._prev_time = tick.time
        used = s.used
        bucket = self.buckets.add(tick.time, (used, s.available, cache, swap, s.total,
                                              some_pct, full_pct))
        if used is not None and (bucket.extra is None or used > bucket.extra.used):
            top = heapq.nlargest(GROUPS_PER_BUCKET, ((n, v) for n, v in totals.items() if v > 0),
                                 key=lambda kv: kv[1])
            bucket.extra = Snap(tick.time, used, top, tick.rss_total, s.slab or 0,
                                s.shmem or 0)
        for event in tick.events:
            if event.kind == "oom_kill":
                self._kill(event.time, event.data)
            elif event.kind == "trigger":
                if len(self.triggers) < MAX_MARKERS:
                    t = trigger(event.time, event.data)
                    self.triggers.append(Marker(
                        event.time, t.signal,
                        f"{fmt_time(event.time)}: {describe(t, safetext.terminal)}",
                        t.pid, 1 if t.sent else 0))
            elif event.kind == "low":
                kib = event.data.get("available_kib")
                if len(self.lows) < MAX_MARKERS and isinstance(kib, int):
                    self.lows.append(Marker(event.time, "new low",
                                            f"new low of available memory: "
                                            f"{fmt_bytes(kib * 1024)} at {fmt_time(event.time)}",
                                            value=kib * 1024))

    def _kill(self, time: float, data: dict) -> None:
        if len(self.kills) >= MAX_MARKERS:
            return
        victim = oom_victim(data)
        rss = victim.rss_bytes
        detail = (f"OOM kill at {fmt_time(time)}: pid {victim.pid} {terminal(victim.program)}"
                  + (f", {fmt_bytes(rss)} resident" if rss is not None else "")
                  + f"\ncommand: {terminal(victim.cmdline)}")
        self.kills.append(Marker(time, victim.program, detail, victim.pid, rss))


# -- chart drawing -----------------------------------------------------------------------------
def _points(frame: Frame, items: List[Bucket], values: List[Optional[float]],
            breaks: List[bool]) -> List[Optional[Tuple[float, float]]]:
    out: List[Optional[Tuple[float, float]]] = []
    for b, v, brk in zip(items, values, breaks):
        if brk:
            out.append(None)
        out.append(None if v is None else (frame.x((b.start + b.end) / 2), frame.y(v)))
    return out


def _breaks(items: List[Bucket], width: float, interval: float) -> List[bool]:
    """True where the line must break before a bucket (nobody was recording in between)."""
    limit = max(2.5 * width, 3 * interval, interval + 2)
    out, prev = [], None
    for b in items:
        out.append(prev is not None and b.start - prev.end > limit)
        prev = b
    return out


def _columns(frame: Frame, items: List[Bucket], texts: List[str]) -> str:
    """Transparent full-height hover targets, one per bucket, each with its values."""
    xs = [frame.x((b.start + b.end) / 2) for b in items]
    parts = []
    for i, x in enumerate(xs):
        lo = (xs[i - 1] + x) / 2 if i else max(frame.left, x - 2)
        hi = (xs[i + 1] + x) / 2 if i + 1 < len(xs) else min(frame.right, x + 2)
        parts.append(tag("rect", {"x": lo, "y": frame.top, "width": max(hi - lo, 0.5),
                                  "height": frame.height, "class": "col"}, title(texts[i])))
    return tag("g", {"class": "cols"}, *parts)


def _when(b: Bucket) -> str:
    if b.n <= 1 or b.end - b.start < 0.5:
        return fmt_time(b.start)
    return f"{fmt_time(b.start)} - {fmt_time(b.end, with_date=False)} ({b.n} samples)"


Box = Tuple[float, float, float, float]  # x0, y0, x1, y1 of a label on a chart


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _text_box(x: float, y: float, text: str, anchor: str) -> Box:
    """The box a label of 13 px bold text covers (7.2 px a character, as the kill labels)."""
    width = 7.2 * len(text) + 4
    x0 = x - width / 2 if anchor == "middle" else (x - width if anchor == "end" else x)
    return (x0, y - 12, x0 + width, y + 4)


def _place(x: float, y: float, text: str, frame: Frame, taken: List[Box],
           prefer: str = "above") -> Tuple[float, float, str]:
    """Where a mark's label goes: above, below, right or left of the point, the first place
    inside the chart that overlaps no label already drawn (the OOM kill labels, the other
    mark); the box it takes is added to `taken`."""
    spots = [(x, y - 10, "middle"), (x, y + 20, "middle"), (x + 10, y + 4, "start"),
             (x - 10, y + 4, "end")]
    if prefer == "left":
        spots = [spots[3], spots[2], spots[1], spots[0]]
    best = None
    for tx, ty, anchor in spots:
        box = _text_box(tx, ty, text, anchor)
        inside = box[0] >= frame.left and box[2] <= frame.right and box[1] >= frame.top - 4 \
            and box[3] <= frame.bottom
        if inside and not any(_overlaps(box, t) for t in taken):
            best = (tx, ty, anchor)
            break
        if best is None and inside:
            best = (tx, ty, anchor)  # crowded everywhere: at least inside the chart
    if best is None:
        best = spots[0]
    taken.append(_text_box(*best[:2], text, best[2]))
    return best


def _kill_lines(frame: Frame, kills: List[Marker], labelled: bool, rid: str,
                boxes: Optional[List[Box]] = None) -> str:
    """Vertical lines at OOM kills; labels on up to 3 rows so neighbours do not overlap (their
    boxes go to `boxes`, so marks drawn later keep clear of them)."""
    parts = []
    row_end = [-1e9, -1e9, -1e9]
    for k in kills:
        x = frame.x(k.time)
        parts.append(tag("line", {"x1": x, "x2": x, "y1": frame.top - 4, "y2": frame.bottom,
                                  "class": "oom", "data_oom_pid": k.pid},
                         title(k.detail)))
        if not labelled:
            continue
        text = f"OOM kill: {k.label}" + (f" (pid {k.pid})" if k.pid is not None else "")
        width = 7.2 * len(text) + 10
        bx = x + 4 if x + width + 6 <= frame.right else x - 4 - width
        row = next((r for r in range(3) if row_end[r] < bx - 6), None)
        if row is None:
            continue  # crowded: the line and its tooltip remain
        by = frame.top + 4 + row * 20
        row_end[row] = bx + width
        if boxes is not None:
            boxes.append((bx, by, bx + width, by + 17))
        parts.append(tag("g", {"class": "oomlabel", "id": f"{rid}-oom-{len(parts)}"},
                         tag("rect", {"x": bx, "y": by, "width": width, "height": 17,
                                      "rx": 3}),
                         tag("text", {"x": bx + 5, "y": by + 12.5}, esc(text)),
                         title(k.detail)))
    return tag("g", {"class": "kills"}, *parts)


def _trigger_marks(frame: Frame, marks: List[Marker]) -> str:
    """A dotted line and a flag at each trigger (hollow when nothing was sent), so a heap dump
    taken at that moment lines up with the curves."""
    parts = []
    for m in marks:
        x = frame.x(m.time)
        y = frame.top
        cls = "trig" if m.value else "trig held"
        parts.append(tag("g", {"class": cls, "data_mark": "trigger", "data_pid": m.pid},
                         tag("line", {"x1": x, "x2": x, "y1": y, "y2": frame.bottom}),
                         tag("path", {"d": f"M{num(x)} {num(y)} L{num(x)} {num(y - 12)} "
                                           f"L{num(x + 9)} {num(y - 8)} L{num(x)} {num(y - 4)}"}),
                         title(m.detail)))
    return tag("g", {"class": "trigs"}, *parts)


def _gap_shades(frame: Frame, run: Run) -> str:
    parts = []
    for g in run.gaps[:MAX_MARKERS]:
        x0, x1 = frame.x(g.start), frame.x(g.end)
        parts.append(tag("rect", {"x": x0, "y": frame.top, "width": max(x1 - x0, 1),
                                  "height": frame.height, "class": "gap"},
                         title(f"not recording {fmt_time(g.start)} -> {fmt_time(g.end)} "
                               f"({fmt_duration(g.seconds)}, {g.reason})")))
    return tag("g", {"class": "gaps"}, *parts)


def _plot(charts: Charts, run: Run, items: List[Bucket], height: float, top: float,
          yticks: Sequence[float], ytop: float, ylabel: Callable[[float], str]
          ) -> Tuple[Frame, List[bool], List[str]]:
    """A chart's frame over the run's span, where its lines break, and its first elements
    (axes, then the gaps shaded)."""
    t0, t1 = run.start or 0.0, run.end or 1.0
    frame = Frame(LEFT, top, W - LEFT - RIGHT, height - top - 28, t0, t1, 0, ytop)
    tstep, tticks = time_ticks(t0, t1)
    assert charts.buckets is not None
    brk = _breaks(items, charts.buckets.width, charts.interval)
    return frame, brk, [axes(frame, yticks, ylabel, tstep, tticks), _gap_shades(frame, run)]


def _svg(rid: str, name: str, height: float, label: str, *body: str) -> str:
    return tag("svg", {"xmlns": "http://www.w3.org/2000/svg", "class": "chart",
                       "id": f"{rid}-{name}", "viewBox": f"0 0 {W} {num(height)}",
                       "role": "img", "aria_label": label},
               *body, tag("line", {"class": "cross", "x1": 0, "x2": 0, "y1": 0,
                                   "y2": height}))


def _legend(items: List[Tuple[str, str, str]]) -> str:
    """HTML legend: (swatch class/colour, text, series id) triples."""
    out = []
    for colour, text, series in items:
        if colour.startswith("tri:"):
            sw = tag("svg", {"width": 14, "height": 14, "class": "tri"},
                     tag("path", {"d": "M1 2 L13 2 L7 12 Z", "fill": colour[4:],
                                  "stroke": "#333", "stroke_width": 0.8}))
        elif colour.startswith("url("):
            sw = tag("svg", {"width": 14, "height": 14, "class": "sw"},
                     tag("rect", {"width": 14, "height": 14, "fill": colour,
                                  "stroke": "#333"}))
        else:
            sw = tag("span", {"class": "sw", "style": f"background:{colour}"})
        out.append(tag("span", {"class": "key", "data_key": series}, sw, esc(text)))
    return tag("div", {"class": "legend"}, *out)


def memory_chart(rid: str, charts: Charts, run: Run) -> str:
    assert charts.buckets is not None
    items = list(charts.buckets)
    total = max((b.maxs[TOTAL] or 0 for b in items), default=0) or \
        max((b.maxs[USED] or 0 for b in items), default=1)
    yticks, ytop = value_ticks(total)
    height = 330
    frame, brk, body = _plot(charts, run, items, height, 30, yticks, max(ytop, total * 1.07),
                             fmt_axis_bytes)
    ty = frame.y(total)
    body.append(tag("line", {"x1": frame.left, "x2": frame.right, "y1": ty, "y2": ty,
                             "class": "total", "data_series": "total"},
                    title(f"total memory {fmt_bytes(total)}")))
    body.append(tag("text", {"x": frame.right - 4, "y": ty - 5, "class": "tlab"},
                    esc(f"total {fmt_bytes(total)}")))
    for name in ("cache", "swap", "available", "used"):
        i = SERIES.index(name)
        if name == "swap" and not charts.has_swap:
            continue
        colour, dash, _ = SERIES_STYLE[name]
        lows = _points(frame, items, [b.mins[i] for b in items], brk)
        highs = _points(frame, items, [b.maxs[i] for b in items], brk)
        means = _points(frame, items, [b.mean(i) for b in items], brk)
        body.append(tag("path", {"d": band_path(highs, lows), "fill": colour,
                                 "class": "band", "data_series": name + "-range"}))
        body.append(tag("path", {"d": line_path(means), "stroke": colour,
                                 "stroke_dasharray": dash, "class": "line " + name,
                                 "data_series": name, "id": f"{rid}-mem-{name}"}))
    # Marks: the peak, the lowest point, each new low the sampler flagged. The OOM kill labels
    # are laid out first so the marks' labels can keep clear of them.
    taken: List[Box] = []
    kill_svg = _kill_lines(frame, charts.kills, True, rid + "-mem", taken)
    if run.peak_time is not None and run.peak_used is not None:
        x, y = frame.x(run.peak_time), frame.y(run.peak_used)
        label = f"peak {fmt_bytes(run.peak_used)}"
        tx, ty, anchor = _place(x, y, label, frame, taken)
        body.append(tag("g", {"class": "mark peak", "data_mark": "peak"},
                        tag("circle", {"cx": x, "cy": y, "r": 5}),
                        tag("text", {"x": tx, "y": ty, "text_anchor": anchor}, esc(label)),
                        title(f"peak used {fmt_bytes(run.peak_used)} at "
                              f"{fmt_time(run.peak_time)}")))
    for low in charts.lows:
        if low.value is None:
            continue
        x, y = frame.x(low.time), frame.y(low.value)
        body.append(tag("path", {"d": f"M{num(x - 5)} {num(y - 9)} L{num(x + 5)} {num(y - 9)} "
                                      f"L{num(x)} {num(y - 1)} Z", "class": "lowmark",
                                 "data_mark": "low"}, title(low.detail)))
    if run.low_time is not None and run.low_available is not None:
        x, y = frame.x(run.low_time), frame.y(run.low_available)
        label = f"lowest available {fmt_bytes(run.low_available)}"
        tx, ty, anchor = _place(x, y, label, frame, taken, prefer="left")
        body.append(tag("g", {"class": "mark low", "data_mark": "lowest"},
                        tag("circle", {"cx": x, "cy": y, "r": 5}),
                        tag("text", {"x": tx, "y": ty, "text_anchor": anchor}, esc(label)),
                        title(f"lowest available {fmt_bytes(run.low_available)} at "
                              f"{fmt_time(run.low_time)}")))
    texts = []
    for b in items:
        lines = [_when(b)]
        for name, label in (("used", "used"), ("available", "available"),
                            ("cache", "cache"), ("swap", "swap used")):
            i = SERIES.index(name)
            if b.counts[i] == 0 or (name == "swap" and not charts.has_swap):
                continue
            rng = "" if b.mins[i] == b.maxs[i] else \
                f" (range {fmt_bytes(b.mins[i])} - {fmt_bytes(b.maxs[i])})"
            lines.append(f"{label} {fmt_bytes(b.mean(i))}{rng}")
        texts.append("\n".join(lines))
    body.append(_columns(frame, items, texts))
    body.append(kill_svg)
    body.append(_trigger_marks(frame, charts.triggers))
    legend = [(SERIES_STYLE[n][0], SERIES_STYLE[n][2], n)
              for n in ("used", "available", "cache", "swap")
              if n != "swap" or charts.has_swap]
    legend.append((OI["black"], "OOM kill (victim named)", "oom"))
    if charts.lows:
        legend.append(("tri:" + OI["blue"], "new low of available memory (the sampler wrote "
                       "a full process table then)", "low"))
    if charts.triggers:
        legend.append((OI["green"], "trigger: a signal sent by a --trigger rule (flag)",
                       "trigger"))
    note = "" if charts.has_swap else " No swap configured."
    return (tag("h3", {}, "Memory over time")
            + tag("p", {"class": "note"},
                  esc("Lines are averages per time slice; the shaded band around each line "
                      "spans its lowest and highest sample, so short peaks stay visible. "
                      "Grey stripes: not recording." + note))
            + _legend(legend)
            + _svg(rid, "mem", height, "memory over time", *body))


def _layer_plan(charts: Charts, top_n: int) -> List[str]:
    assert charts.buckets is not None
    best: Dict[str, int] = {}
    for b in charts.buckets:
        snap = b.extra
        if snap is None:
            continue
        for name, value in snap.groups:
            if value > best.get(name, 0):
                best[name] = value
    return [n for n, _ in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]]


def programs_chart(rid: str, charts: Charts, run: Run, top_n: int) -> str:
    assert charts.buckets is not None
    items = [b for b in charts.buckets if b.extra is not None]
    names = _layer_plan(charts, top_n)
    # layers bottom -> top: kernel first (it is not a process), then programs, then the rest
    layers: List[Tuple[str, str, str, str]] = [
        ("kernel-slab", "kernel: slab caches", "url(#hatch-slab)", "kernel"),
        ("kernel-shmem", "shared memory (tmpfs, shm)", "url(#hatch-shmem)", "kernel"),
    ]
    for i, n in enumerate(names):
        layers.append(("program", n, PROGRAM_COLOURS[i % len(PROGRAM_COLOURS)], "program"))
    layers.append(("other", "other processes", "#BBBBBB", "other"))
    values: List[List[int]] = []
    for b in items:
        snap: Snap = b.extra
        g = dict(snap.groups)
        progs = [g.get(n, 0) for n in names]
        other = max(snap.rss_total - sum(progs), 0)
        values.append([snap.slab, snap.shmem] + progs + [other])
    stack_max = max((sum(v) for v in values), default=0)
    used_max = max((b.extra.used for b in items), default=0)
    total = max((b.maxs[TOTAL] or 0 for b in items), default=0)
    vmax = max(stack_max, used_max, total)
    yticks, ytop = value_ticks(vmax)
    height = 330
    frame, brk, body = _plot(charts, run, items, height, 30, yticks, max(ytop, vmax * 1.07),
                             fmt_axis_bytes)
    defs = tag("defs", {},
               tag("pattern", {"id": "hatch-slab", "width": 6, "height": 6,
                               "patternUnits": "userSpaceOnUse",
                               "patternTransform": "rotate(45)"},
                   tag("rect", {"width": 6, "height": 6, "fill": "#666666"}),
                   tag("line", {"x1": 0, "y1": 0, "x2": 0, "y2": 6, "stroke": "#FFFFFF",
                                "stroke_width": 2})),
               tag("pattern", {"id": "hatch-shmem", "width": 6, "height": 6,
                               "patternUnits": "userSpaceOnUse"},
                   tag("rect", {"width": 6, "height": 6, "fill": "#9A9A9A"}),
                   tag("circle", {"cx": 3, "cy": 3, "r": 1.3, "fill": "#FFFFFF"})))
    body.insert(0, defs)
    base = [0] * len(items)
    for li, (kind, label, fill, cls) in enumerate(layers):
        top = [base[k] + values[k][li] for k in range(len(items))]
        upper = _points(frame, items, top, brk)
        lower = _points(frame, items, base, brk)
        peak = max((values[k][li] for k in range(len(items))), default=0)
        body.append(tag("path", {"d": band_path(upper, lower), "fill": fill,
                                 "class": "layer " + cls, "data_series": kind,
                                 "data_name": label},
                        title(f"{label}: up to {fmt_bytes(peak)}")))
        base = top
    used_pts = _points(frame, items, [b.extra.used for b in items], brk)
    body.append(tag("path", {"d": line_path(used_pts), "class": "line usedref",
                             "data_series": "used"}))
    texts = []
    for b, vals in zip(items, values):
        snap = b.extra
        lines = [f"{fmt_time(snap.time)} (the worst moment of {_when(b)})"
                 if b.n > 1 else fmt_time(snap.time),
                 f"used {fmt_bytes(snap.used)}"]
        for (_kind, label, _, _), v in zip(reversed(layers), reversed(vals)):
            lines.append(f"{terminal(label)} {fmt_bytes(v)}")
        texts.append("\n".join(lines))
    body.append(_columns(frame, items, texts))
    body.append(_kill_lines(frame, charts.kills, len(charts.kills) <= 3, rid + "-prog"))
    body.append(_trigger_marks(frame, charts.triggers))
    legend = [(fill, label, kind if kind != "program" else "program:" + label)
              for kind, label, fill, _ in reversed(layers)]
    legend.append(("#000000", "used (dashed line, for comparison)", "used"))
    return (tag("h3", {}, "Who holds the memory")
            + tag("p", {"class": "note"},
                  esc(f"Resident memory (RSS) of the {len(names)} largest programs (processes "
                      "grouped by program, as in `memtrail report`), all other processes, "
                      "and kernel memory that belongs to no process (hatched). Each slice shows "
                      "its worst moment. RSS counts pages shared between processes once per "
                      "process, so the stack can rise above the dashed 'used' line; a gap below "
                      "that line is memory no process owns (page tables, kernel stacks, "
                      "drivers, non-reclaimable cache)."))
            + _legend(legend)
            + _svg(rid, "prog", height, "memory by program over time", *body))


def psi_chart(rid: str, charts: Charts, run: Run) -> str:
    assert charts.buckets is not None
    head = tag("h3", {}, "Memory pressure (PSI): time stalled waiting for memory")
    if not charts.has_psi:
        return head + tag("p", {"class": "note"},
                          esc("No pressure data: this kernel has no /proc/pressure/memory "
                              "(PSI needs Linux 4.20+ and psi=1)."))
    items = list(charts.buckets)
    top = max((b.maxs[PSI_SOME] or 0 for b in items), default=0)
    top = max(top, 1.0)
    step = nice_step(top / 4)
    ytop = step * -(-top * 1.1 // step)
    yticks = [step * i for i in range(int(round(ytop / step)) + 1)]
    height = 190
    frame, brk, body = _plot(charts, run, items, height, 14, yticks, ytop, lambda v: f"{v:g}%")
    zero = _points(frame, items, [0.0 if b.counts[PSI_SOME] else None for b in items], brk)
    for name, i, colour in (("some", PSI_SOME, OI["blue"]), ("full", PSI_FULL,
                                                             OI["vermillion"])):
        means = _points(frame, items, [b.mean(i) for b in items], brk)
        maxs = _points(frame, items, [b.maxs[i] for b in items], brk)
        body.append(tag("path", {"d": band_path(means, zero), "fill": colour,
                                 "class": "psiarea", "data_series": "psi-" + name,
                                 "id": f"{rid}-psi-{name}"}))
        body.append(tag("path", {"d": line_path(maxs), "stroke": colour, "class": "line thin",
                                 "data_series": "psi-" + name + "-max"}))
    texts = []
    for b in items:
        lines = [_when(b)]
        for label, i in (("some", PSI_SOME), ("full", PSI_FULL)):
            if b.counts[i]:
                lines.append(f"{label} stalled {b.mean(i):.1f}% of the time"
                             + (f" (worst sample {b.maxs[i]:.1f}%)" if b.n > 1 else ""))
        texts.append("\n".join(lines))
    body.append(_columns(frame, items, texts))
    body.append(_kill_lines(frame, charts.kills, False, rid + "-psi"))
    legend = [(OI["blue"], "some: at least one task waited for memory", "psi-some"),
              (OI["vermillion"], "full: all non-idle tasks waited at once", "psi-full")]
    return (head + tag("p", {"class": "note"},
                       esc("Share of wall time tasks spent stalled on memory (reclaim, "
                           "swap-in, thrashing). Areas: average per slice; thin lines: the "
                           "worst sample."))
            + _legend(legend) + _svg(rid, "psi", height, "memory pressure over time", *body))


# -- tables and headline -----------------------------------------------------------------------
def _cell(text: object, cls: Optional[str] = None) -> str:
    return tag("td", {"class": cls}, esc(text))


def _table(head: Sequence[str], rows: List[str], cls: str = "") -> str:
    return tag("table", {"class": cls or None},
               tag("thead", {}, tag("tr", {}, *(tag("th", {}, esc(h)) for h in head))),
               tag("tbody", {}, *rows))


def programs_table(rep: dict) -> str:
    progs = rep["programs"]
    if not progs:
        return tag("p", {}, "No processes recorded.")
    rows = []
    for g in progs:
        lg = g["largest"]
        rows.append(tag("tr", {}, _cell(g["name"], "name"), _cell(f"x{g['count']}", "n"),
                        _cell(fmt_bytes(g["rss_bytes"]), "n"),
                        _cell(pss_text(g), "n"),
                        _cell(fmt_bytes(g["swap_bytes"]), "n"),
                        _cell(f"pid {lg['pid']}, {fmt_bytes(lg['rss_bytes'])}", "n"),
                        _cell(_cmd(lg["cmdline"]), "cmd")))
    more = rep["programs_total"] - len(progs)
    return (_table(("program", "processes", "RSS", "PSS", "swap", "largest", "its command"),
                   rows, "progs")
            + (tag("p", {"class": "note"}, esc(f"... and {more} more programs.")) if more > 0
               else ""))


def _xcell(text: object, cls: Optional[str] = None) -> str:
    return tag("td", {"class": cls}, safetext.xml(text))


def _kill_table(k: dict, rows: List[dict], kernel: bool) -> str:
    out = []
    for p in rows:
        victim = p["pid"] == k["pid"]
        cells = [_xcell(p["pid"], "n"), _xcell(fmt_bytes(p["rss_bytes"]), "n")]
        if kernel:
            adj = p.get("oom_score_adj")
            cells += [_xcell(fmt_bytes(p.get("swap_bytes")), "n"),
                      _xcell("-" if adj is None else adj, "n")]
        cells += [_xcell(p["name"], "name"), _xcell("KILLED" if victim else "", "flag"),
                  _xcell(safetext.command(p["cmdline"]) if p.get("cmdline")
                         else p.get("comm") or "?", "cmd")]
        out.append(tag("tr", {"class": "victim" if victim else None}, *cells))
    head = ("pid", "RSS") + (("swap", "oom_score_adj") if kernel else ()) + (
        "program", "", "command")
    return _table(head, out, "oomtop")


def triggers_table(rep: dict) -> str:
    """The signals --trigger rules sent (or held back): when, to whom, why, what came of it."""
    rows = []
    for row in rep.get("triggers") or []:
        t = from_row(row)
        rows.append(tag("tr", {}, _cell(_t(row.get("time"))), _cell(t.signal),
                        _cell(f"{safetext.terminal(t.program)} (pid {t.pid})", "name"),
                        _cell(t.result), _cell(describe(t, safetext.terminal), "cmd")))
    return _table(("time", "signal", "process", "result", "what happened"), rows, "trigs")


def oom_section(k: dict, n: int) -> str:
    """One kill: the victim, where memory ran out, who asked, and the processes that competed
    for that memory (for a cgroup kill, that cgroup's; the host's largest only apart, labelled)."""
    head = (f"OOM kill {n} at {_t(k['time'])}: pid {k['pid']} "
            f"{k['program'] or k['name']} ({fmt_bytes(k['rss_bytes'])} resident)")
    facts = (f"anon {fmt_bytes(k['anon_bytes'])}, file {fmt_bytes(k['file_bytes'])}, "
             f"shmem {fmt_bytes(k['shmem_bytes'])}; {oom_where(k)}")
    parts = [tag("h4", {"class": "oomhead"}, safetext.xml(head)),
             tag("p", {"class": "cmdline"}, "command: ", tag("code", {}, safetext.xml(
                 safetext.command(k["cmdline"])))),
             tag("p", {"class": "note", "data_scope": k.get("scope")}, safetext.xml(facts))]
    for whose, held, note in oom_held(k):
        parts.append(tag("p", {"class": "note", "data_held": whose}, safetext.xml(
            f"The {whose} held {held}." + (f" {note[:1].upper()}{note[1:]}." if note else ""))))
    if k.get("invoker"):
        parts.append(tag("p", {"class": "note"},
                         safetext.xml("Triggered by " + oom_invoker(k["invoker"]) + ".")))
    if k["top"] or k.get("top_source") == "none":
        parts.append(tag("p", {"data_table": k.get("top_source")},
                         safetext.xml(oom_table_title(k)[:1].upper() + oom_table_title(k)[1:]
                                      + ":")))
        if k["top"]:
            parts.append(_kill_table(k, k["top"], k.get("top_source") == "kernel"))
    if k.get("host_top"):
        parts.append(tag("p", {"class": "note", "data_table": "host"},
                         safetext.xml(OOM_HOST_TITLE[:1].upper() + OOM_HOST_TITLE[1:] + ":")))
        parts.append(_kill_table(k, k["host_top"][:5], False))
    return "".join(parts)


def verdict(rep: dict) -> str:
    """One or two sentences a newcomer can act on."""
    kills = rep["oom_kills"]
    peak = rep["peak"]
    total = peak["total_bytes"]
    pct = f" ({100 * peak['used_bytes'] / total:.0f}% of {fmt_bytes(total)})" \
        if total and peak["used_bytes"] is not None else ""
    out = []
    if kills:
        k = kills[0]
        # k["top"] is the kill's own context: for a cgroup kill only that cgroup's processes,
        # so no process of another cgroup is ever named as the reason.
        others = [p for p in k["top"] if p["pid"] != k["pid"]]
        biggest = k["top"][0] if k["top"] else None
        among = "in its memory cgroup" if k.get("scope") == "memcg" else "on the host"
        who = f"the largest process {among} then" if biggest and biggest["pid"] == k["pid"] \
            else (f"the largest process {among} then was {biggest['name']} (pid "
                  f"{biggest['pid']}, {fmt_bytes(biggest['rss_bytes'])})" if biggest else "")
        if k.get("scope") == "memcg":
            where = (f" inside memory cgroup {k['memcg']}, at its limit" if k.get("memcg")
                     else " inside a memory cgroup, at its limit")
        else:
            where = ""
        if len(kills) > 1:
            names = list(dict.fromkeys(str(x["program"] or x["name"]) for x in kills))
            out.append(f"The kernel's OOM killer killed {len(kills)} processes ("
                       + ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
                       + "). The first:")
        out.append(f"{k['program'] or k['name']} "
                   f"(pid {k['pid']}, {fmt_bytes(k['rss_bytes'])} resident) at "
                   f"{_t(k['time'])}{where}" + (f": {who}." if who else "."))
        if len(kills) == 1:
            out[-1] = "The kernel's OOM killer killed " + out[-1]
        named = {k["pid"], biggest["pid"] if biggest else None}
        rest = [p for p in others if p["pid"] not in named]
        if rest:  # the first one not already named (the victim, or the largest then)
            nxt = rest[0]
            out.append(f"Next largest{' in that cgroup' if k.get('scope') == 'memcg' else ''}"
                       f": {nxt['name']} (pid {nxt['pid']}, {fmt_bytes(nxt['rss_bytes'])}).")
    else:
        out.append("No OOM kill recorded.")
    progs = rep["programs"]
    if peak["used_bytes"] is not None:
        # After a cgroup kill the host's figures are another story: say so, so the host's
        # largest program is never read as the kill's context.
        apart = bool(kills) and kills[0].get("scope") == "memcg"
        out.append(("Apart from that cgroup, host memory use" if apart else "Memory use")
                   + f" peaked at {fmt_bytes(peak['used_bytes'])}{pct} at "
                   f"{_t(peak['time'])}" + (
                       f"; the largest program then was {progs[0]['name']} "
                       f"({fmt_bytes(progs[0]['rss_bytes'])} in {progs[0]['count']} "
                       f"process{'es' if progs[0]['count'] != 1 else ''})." if progs else "."))
    un = rep.get("unexplained")
    if un and un.get("sentence"):
        out.append("Kernel memory: " + un["sentence"])
    return " ".join(out)


def _span_text(start: Optional[str], end: Optional[str]) -> str:
    """`2025-11-20 22:00:00 -> 22:30:00Z` when both ends are on the same day."""
    a, b = _t(start), _t(end)
    if a[:10] == b[:10] and len(b) > 11:
        return f"{a.rstrip('Z')} -> {b[11:]}"
    return f"{a} -> {b}"


def headline(rep: dict, charts: Charts) -> str:
    span, peak, low, psi = rep["span"], rep["peak"], rep["lowest_available"], rep["psi"]
    total = peak["total_bytes"]
    cards = [
        ("Host", ", ".join(rep["hosts"]) or "?",
         f"{len(rep['segments'])} segment(s), {rep['sampler_runs']} sampler run(s)"),
        ("Recorded", _span_text(span['start'], span['end']),
         f"{fmt_duration(span['duration_s'])}, {span['ticks']} samples{rates_text(span)}"
         + (f"; NOT RECORDING for {fmt_duration(span['gap_seconds'])} "
            f"({len(span['gaps'])} gap(s))" if span["gaps"] else
            f"; {unread_files(rep)} file(s) unreadable: coverage unknown" if unread_files(rep)
            else "; no gaps")),
        ("Peak used", fmt_bytes(peak["used_bytes"])
         + (f" of {fmt_bytes(total)}" if total else ""), f"at {_t(peak['time'])}"),
        ("Lowest available", fmt_bytes(low["bytes"]), f"at {_t(low['time'])}"),
    ]
    kills = rep["oom_kills"]
    if len(kills) <= 2:
        victims = "; ".join(f"{k['program'] or k['name']} (pid {k['pid']}) at "
                            f"{_t(k['time'])}" for k in kills)
    else:
        names = list(dict.fromkeys(str(k["program"] or k["name"]) for k in kills))
        victims = (", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
                   + f"; first at {_t(kills[0]['time'])}")
    cards.append(("OOM kills", str(len(kills)), victims or (
        f"none in the kernel log; /proc/vmstat counted {rep['oom_counter']}"
        if rep["oom_counter"] else "none")))
    if psi["full_pct"] is not None and charts.has_psi:
        cards.append(("Memory stall (PSI full)", f"{psi['full_pct']:.2f}%",
                      f"{fmt_duration(psi['full_us'] / 1e6)} of the span "
                      f"(some: {psi['some_pct']:.2f}%)"))
    out = []
    for label, value, sub in cards:
        cls = "card bad" if label == "OOM kills" and kills else (
            "card wide" if label == "Recorded" else "card")
        out.append(tag("div", {"class": cls, "data_card": label},
                       tag("div", {"class": "label"}, esc(label)),
                       tag("div", {"class": "value"}, esc(value)),
                       tag("div", {"class": "sub"}, esc(sub))))
    return (tag("p", {"class": "verdict"}, esc(verdict(rep)))
            + tag("div", {"class": "cards"}, *out))


def run_section(index: int, count: int, rep: dict, charts: Charts, run: Run,
                top_n: int) -> str:
    rid = f"r{index}"
    title_text = f"{', '.join(rep['hosts']) or '?'}: {_t(rep['span']['start'])} -> " \
                 f"{_t(rep['span']['end'])}"
    heading = (f"Recording {index} of {count}: " if count > 1 else "") + title_text
    reading = rep["reading"]
    problems = []
    if reading["torn_lines"] or reading["bad_lines"] or reading["skipped_files"] \
            or reading["truncated_files"]:
        skipped = reading["skipped_files"] + reading["truncated_files"]
        problems.append(f"{reading['torn_lines']} torn and {reading['bad_lines']} unreadable "
                        f"line(s) skipped; skipped files: {', '.join(skipped) or 'none'}")
    parts = [tag("h2", {}, esc(heading)), headline(rep, charts)]
    if problems:
        parts.append(tag("p", {"class": "warn"}, esc("Reading problems: " + problems[0])))
    if rep["span"].get("tick_errors"):
        parts.append(tag("p", {"class": "warn"}, esc(tick_errors_text(rep["span"]))))
    data = data_problems_text(reading)
    if data:
        parts.append(tag("p", {"class": "warn"}, esc("Data problems (skipped, not shown as "
                                                     "fact): " + data)))
    if len(rep["oom_kills"]) > len(charts.kills):
        parts.append(tag("p", {"class": "warn"},
                         esc(f"{len(rep['oom_kills'])} OOM kills; the first {len(charts.kills)} "
                             f"are marked on the charts.")))
    parts.append(memory_chart(rid, charts, run))
    parts.append(programs_chart(rid, charts, run, top_n))
    parts.append(psi_chart(rid, charts, run))
    parts.append(tag("h3", {}, esc(f"Top programs at the peak ({_t(rep['programs_time'])})")))
    parts.append(programs_table(rep))
    if rep["oom_kills"]:
        parts.append(tag("h3", {}, esc(f"OOM kills ({len(rep['oom_kills'])})")))
        for n, k in enumerate(rep["oom_kills"], 1):
            parts.append(oom_section(k, n))
    if rep.get("triggers_total"):
        parts.append(tag("h3", {}, esc(f"Triggers ({rep['triggers_total']})")))
        parts.append(triggers_table(rep))
    parts.append(tag("h3", {}, "The full report"))
    parts.append(tag("p", {"class": "note"},
                     esc("The same text as `memtrail report`: gaps, growers (leak suspects), "
                         "memory no process explains, units, locked memory.")))
    parts.append(tag("pre", {"class": "report"}, xml(render_text(rep), newlines=True)))
    return tag("section", {"class": "run", "id": rid}, *parts)


CSS = """
:root{--fg:#1a1a1a;--muted:#555;--line:#d8d8d8;--bad:#D55E00}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--fg);background:#fff;margin:0 auto;padding:10px 18px 40px;max-width:1260px}
header h1{font-size:20px;margin:4px 0}
header p{margin:0;color:var(--muted)}
h2{font-size:18px;margin:18px 0 6px;border-bottom:2px solid var(--fg)}
h3{font-size:16px;margin:18px 0 2px}
h4{font-size:14px;margin:14px 0 2px}
.verdict{font-size:15px;margin:6px 0 8px;padding:6px 10px;border-left:4px solid var(--bad);
background:#fff4ec}
.cards{display:flex;flex-wrap:wrap;gap:8px}
.card{flex:1 1 150px;border:1px solid var(--line);border-radius:6px;padding:5px 9px;min-width:0}
.card .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
.card .value{font-size:17px;font-weight:600;overflow-wrap:anywhere}
.card .sub{font-size:12px;color:var(--muted);overflow-wrap:anywhere}
.card.wide{flex:2 1 240px}
.card.bad{border-color:var(--bad);border-width:2px}.card.bad .value{color:var(--bad)}
.note{color:var(--muted);font-size:12.5px;margin:0 0 4px}
.warn{color:#7a3300;font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12.5px;margin:2px 0}
.key{display:inline-flex;align-items:center;gap:5px;overflow-wrap:anywhere}
.sw{display:inline-block;width:14px;height:14px;border:1px solid #333;flex:none}
svg.chart{width:100%;height:auto;display:block;overflow:visible}
.chart text{font-size:12px;fill:#222}
.chart .ylab{text-anchor:end}.chart .xlab{text-anchor:middle}
.chart .tlab{text-anchor:end;fill:#444}
.grid{stroke:#e6e6e6;stroke-width:1}
.box{fill:none;stroke:#999}
.band{opacity:.22}
.line{fill:none;stroke-width:2;stroke-linejoin:round}
.line.used{stroke-width:2.6}
.line.thin{stroke-width:1}
.usedref{stroke:#000;stroke-width:1.4;stroke-dasharray:5 3}
.psiarea{opacity:.55}
.layer{stroke:#fff;stroke-width:.4}
.total{stroke:#000;stroke-width:1.2;stroke-dasharray:2 3}
.gap{fill:#000;opacity:.08}
.oom{stroke:#000;stroke-width:2;stroke-dasharray:4 2}
.oomlabel rect{fill:#000}.oomlabel text{fill:#fff;font-weight:600}
.mark circle{fill:#fff;stroke:#000;stroke-width:2}
.mark text{font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px}
.lowmark{fill:#0072B2;stroke:#fff;stroke-width:.8}
.trig line{stroke:#009E73;stroke-width:1.5;stroke-dasharray:2 3}.trig path{fill:#009E73}
.trig.held path{fill:#fff;stroke:#009E73}
.col{fill:transparent}
.col:hover{fill:rgba(0,0,0,.05)}
.cross{stroke:#333;stroke-width:1;display:none;pointer-events:none}
table{border-collapse:collapse;width:100%;font-size:13px;margin:4px 0 8px}
th,td{border-bottom:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.cmd,.cmdline code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;
overflow-wrap:anywhere;word-break:break-all}
td.name{font-weight:600;overflow-wrap:anywhere}
tr.victim{background:#fde3d3}tr.victim td.flag{color:var(--bad);font-weight:700}
.oomhead{color:var(--bad)}
pre.report{font:12px/1.35 ui-monospace,"DejaVu Sans Mono",monospace;background:#f7f7f7;
padding:8px;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere;
border:1px solid var(--line)}
.tip{position:absolute;z-index:9;background:#fff;border:1px solid #333;padding:4px 7px;
font-size:12px;white-space:pre;pointer-events:none;box-shadow:0 2px 6px rgba(0,0,0,.25);
max-width:520px;overflow:hidden}
footer{margin-top:24px;color:var(--muted);font-size:12px}
@media print{
body{max-width:none;padding:0;font-size:10pt}
.tip,.cross{display:none!important}
section.run{break-before:page}section.run:first-of-type{break-before:auto}
svg.chart,table,.cards,.verdict{break-inside:avoid}
h3{break-after:avoid}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
pre.report{white-space:pre-wrap}
}
"""

# Moves each hover column's <title> into a data attribute and shows it in one tooltip box
# with a crosshair. textContent only: values from the log are never parsed as markup.
SCRIPT = """(function(){
var tip=document.getElementById('tip');
function hide(svg){tip.hidden=true;var c=svg.querySelector('.cross');if(c)c.style.display='none';}
document.querySelectorAll('svg.chart').forEach(function(svg){
var cross=svg.querySelector('.cross');
svg.querySelectorAll('rect.col').forEach(function(r){var t=r.querySelector('title');
if(t){r.setAttribute('data-tip',t.textContent);t.remove();}});
svg.addEventListener('mousemove',function(e){
var r=e.target.closest?e.target.closest('rect.col'):null;
if(!r){hide(svg);return;}
var x=parseFloat(r.getAttribute('x'))+parseFloat(r.getAttribute('width'))/2;
cross.setAttribute('x1',x);cross.setAttribute('x2',x);cross.style.display='block';
tip.textContent=r.getAttribute('data-tip');tip.hidden=false;
var w=tip.offsetWidth,h=tip.offsetHeight,px=e.pageX+14,py=e.pageY+14;
if(px+w>window.scrollX+document.documentElement.clientWidth)px=e.pageX-w-14;
if(py+h>window.scrollY+window.innerHeight)py=e.pageY-h-14;
tip.style.left=px+'px';tip.style.top=py+'px';});
svg.addEventListener('mouseleave',function(){hide(svg);});
});
document.documentElement.setAttribute('data-ready','1');
})();"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode()
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src 'sha256-{digest}'")


def page(sections: List[str], page_title: str, sources: Sequence[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        + tag("meta", {"http_equiv": "Content-Security-Policy", "content": _csp()},
              close=False) + "\n"
        + "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        + tag("title", {}, esc(page_title)) + "\n"
        + "<style>" + CSS + "</style>\n</head>\n<body>\n"
        + tag("header", {}, tag("h1", {}, esc(page_title)),
              tag("p", {}, esc(f"memtrail {__version__}, from {', '.join(sources)}. "
                               "All times UTC. Hover a chart for values.")))
        + "\n" + "\n".join(sections) + "\n"
        + tag("footer", {}, esc("Generated by memtrail html. Self-contained: no network "
                                "access, safe to publish as a CI artifact (command lines "
                                "are shown as recorded, after the sampler's redaction)."))
        + "\n<div id=\"tip\" class=\"tip\" hidden></div>\n"
        + "<script>" + SCRIPT + "</script>\n</body>\n</html>\n")


def build(paths: Sequence[str], top_n: int = TOP_PROGRAMS, target: int = TARGET_BUCKETS
          ) -> Tuple[Optional[str], List[str]]:
    """The page for every recording in `paths` (one section each), and one-line errors."""
    errors = check_paths(paths)
    if errors:
        return None, errors
    results = []
    for group in group_runs(paths):
        stats, run = ReadStats(), Run()
        analysis, charts = Analysis(), Charts(target)
        try:
            for tick in replay(list(group), stats, run):
                analysis.add(tick, run)
                charts.add(tick, run, analysis.group_totals)
        except LogError as exc:
            errors.append(str(exc))
            continue
        rep = analysis.result(run, stats, ", ".join(group))
        problem = usable(rep)
        if problem:
            errors.append(problem)
            continue
        results.append((rep, charts, run))
    if not results:
        return None, errors
    # The replay's garbage goes before the page is built, not after: under PyPy, whose
    # collector waits for the heap to grow, that keeps a week's peak ~4 MB lower.
    gc.collect()
    sections = [run_section(i, len(results), rep, charts, run, top_n)
                for i, (rep, charts, run) in enumerate(results, 1)]
    hosts: List[str] = []
    for rep, _, _ in results:
        hosts += [h for h in rep["hosts"] if h not in hosts]
    page_title = f"memtrail: {', '.join(hosts) or '?'}"
    if any(rep["oom_kills"] for rep, _, _ in results):
        page_title += f" ({sum(len(rep['oom_kills']) for rep, _, _ in results)} OOM kill(s))"
    return page(sections, page_title, paths), errors


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="memtrail html",
        description="Write a self-contained HTML page (inline SVG charts, no network) of one "
                    "or more recordings: memory over time with OOM kills, memory by program, "
                    "pressure, and the report's tables.")
    ap.add_argument("paths", nargs="+", metavar="LOG",
                    help="log directory, segment file or .gz segment; several = one section "
                         "per recording")
    ap.add_argument("-o", "--output", default="-", metavar="FILE",
                    help="where to write the page (default: standard output)")
    ap.add_argument("--top", type=int, default=TOP_PROGRAMS, metavar="N",
                    help=f"programs drawn as their own layer (1-{TOP_PROGRAMS}, default "
                         f"{TOP_PROGRAMS})")
    return ap


def main(argv: List[str]) -> int:
    args = _parser().parse_args(argv)
    if not 1 <= args.top <= TOP_PROGRAMS:
        print(f"memtrail html: --top must be between 1 and {TOP_PROGRAMS}", file=sys.stderr)
        return 2
    text, errors = build(args.paths, args.top)
    for err in errors:
        print(f"memtrail html: {err}", file=sys.stderr)
    if text is None:
        return 2
    if args.output == "-":
        sys.stdout.write(text)
    else:
        try:
            output.write_text(args.output, text)
        except OSError as exc:
            print(f"memtrail html: cannot write {args.output}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
    return 2 if errors else 0
