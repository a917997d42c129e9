"""What `memtrail view` shows, without a terminal: a recording's index and its state at a tick.

A full-screen console has to answer "what did the machine look like then?" for any tick of a
log that may be a day or a week long, in the time between two key presses. Replaying from the
start for each key press would take seconds per press on a day log, so the console keeps:

- a `Timeline`: every tick's time and used memory (two numbers a tick, read by a scan that
  parses only the `s` and `E` lines) and the marks a person jumps between (OOM kills, new lows,
  gaps, rate changes, the peak). It feeds the sparkline, the events pane and every jump key;
- a `Player`: the full state (`Frame`) at a tick, rebuilt by the model (`model.Replayer`) from
  the last keyframe before it (`seek.records_from`), never from the start; stepping forward
  continues the same replay, and recent frames are cached, so stepping back is cheap too;
- a `LiveFeed`: the newest segment followed as it grows and across rotation (`tail.Follower`),
  replayed tick by tick, extending the timeline and holding the live frame.

The curses layer (`view.py`) only draws frames and turns keys into calls on these.
"""

from __future__ import annotations

import bisect
import os
import re
import time
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

from memtrail import events, reader, safetext, seek
from memtrail.model import (
    TIME_MAX,
    TIME_MIN,
    Event,
    Gap,
    Proc,
    Replayer,
    System,
    Tick,
    available_estimate,
    current_pss,
    oom_victim,
)
from memtrail.programs import program_name, title_args
from memtrail.reader import LogError, ReadStats, Record

# Event kinds that are marks on the timeline (the events pane, jump keys).
MARK_KINDS = ("oom_kill", "cgroup_oom", "oom_counter", "low", "gap", "rate", "clock",
              "snapshot", "trigger", "start")
_LINE = re.compile(rb"^(?:s (\S+) (\S+) \S+ (\S+)|([HEZ]) (\S+) ([^\n]*))", re.M)


@dataclass
class Mark:
    """Something a person jumps to: an event, a gap, the peak."""

    time: float
    kind: str
    text: str  # terminal-safe sentence
    data: dict = field(default_factory=dict)
    fall_end: bool = False  # a `low` that ended a fall (the lowest it reached)


def _gap_threshold(interval_s: float) -> float:
    return max(3.0 * interval_s, interval_s + 2.0)  # as model.py


class Timeline:
    """Every tick's time and used memory, and the marks, of one recording; grows while live."""

    def __init__(self) -> None:
        self.times = array("d")
        self.used = array("q")  # KiB, -1 unknown
        self.avail = array("q")  # KiB, -1 unknown
        self.total_kib: Optional[int] = None
        self.marks: List[Mark] = []
        self.hosts: List[Tuple[float, str]] = []  # (from time, host)
        self.end: Optional[Tuple[float, str]] = None  # a clean end (time, reason), if last
        self.interval_s = 1.0
        self.low_step_kib: Optional[int] = None
        self._run_key: Optional[tuple] = None
        self._falling = False
        self.stats = ReadStats()

    # -- building ------------------------------------------------------------------------
    def add_header(self, time_: float, header: dict) -> None:
        host = safetext.terminal(header.get("host", "?"))
        if not self.hosts or self.hosts[-1][1] != host:
            self.hosts.append((time_, host))
        interval = header.get("interval_s")
        if isinstance(interval, (int, float)) and not isinstance(interval, bool) \
                and interval > 0:
            self.interval_s = float(interval)
        settings = header.get("settings")
        step = settings.get("low_step_kib") if isinstance(settings, dict) else None
        if isinstance(step, int) and step > 0:
            self.low_step_kib = step
        key = (header.get("host"), header.get("boot_id"), header.get("started"),
               header.get("pid"))
        if self._run_key is not None and key != self._run_key and self.times:
            reason = "reboot" if key[1] != self._run_key[1] else "sampler restart"
            self._mark(time_, "gap", {"from": self.times[-1], "to": time_, "reason": reason})
        self._run_key = key
        self.end = None

    def add_tick(self, time_: float, total_kib: Optional[int],
                 avail_kib: Optional[int]) -> None:
        if not TIME_MIN <= time_ <= TIME_MAX:
            return
        if self.times:
            last = self.times[-1]
            if time_ < last:
                return  # out of order (a clock step back): not a position of its own
            if time_ - last > _gap_threshold(self.interval_s) and not (
                    self.marks and self.marks[-1].kind == "gap"
                    and self.marks[-1].time >= last):
                self._mark(time_, "gap", {"from": last, "to": time_,
                                          "reason": "missed ticks"})
        if total_kib is not None and not 0 <= total_kib < _KIB_MAX:
            total_kib = None
        if avail_kib is not None and not 0 <= avail_kib < _KIB_MAX:
            avail_kib = None
        if total_kib is not None:
            self.total_kib = total_kib
        if avail_kib is not None and total_kib is not None and avail_kib > total_kib:
            avail_kib = None  # MemAvailable above MemTotal: impossible, so unknown (model.py)
        used = total_kib - avail_kib if total_kib is not None and avail_kib is not None else -1
        self.times.append(time_)
        self.used.append(used)
        self.avail.append(avail_kib if avail_kib is not None else -1)
        if self._falling and avail_kib is not None:
            self._maybe_end_fall(avail_kib)
        if self.end is not None and time_ > self.end[0]:
            self.end = None  # recording again after a clean end

    def add_event(self, time_: float, kind: str, data: dict) -> None:
        if kind == "rate":
            ms = data.get("interval_ms")
            if isinstance(ms, int) and ms > 0:
                self.interval_s = ms / 1000.0
        if kind == "gap" and self.marks and self.marks[-1].kind == "gap" \
                and self.marks[-1].time == time_:
            self.marks[-1] = Mark(time_, "gap", events.sentence("gap", data), data)
            return
        if kind not in MARK_KINDS:
            return
        if kind == "start" and len(self.times) <= 1:
            return  # the first start is where the recording begins, not news
        if kind in ("oom_counter", "cgroup_oom") and any(
                m.kind == "oom_kill" and m.time == time_ for m in self.marks[-4:]):
            return  # the same kill, already named
        if kind == "low":
            if not self._falling:
                self._falling = True
            elif self.marks and self.marks[-1].kind == "low":
                self.marks[-1].fall_end = False
            self._mark(time_, kind, data).fall_end = True
            return
        if kind in ("oom_kill", "cgroup_oom", "oom_counter"):
            self._falling = False
        self._mark(time_, kind, data)

    def add_end(self, time_: float, reason: str) -> None:
        self.end = (time_, safetext.terminal(reason))

    def _mark(self, time_: float, kind: str, data: dict) -> Mark:
        mark = Mark(time_, kind, events.sentence(kind, data), data)
        self.marks.append(mark)
        return mark

    def _maybe_end_fall(self, avail_kib: int) -> None:
        last = next((m for m in reversed(self.marks) if m.kind == "low"), None)
        lowest = last.data.get("available_kib") if last is not None else None
        step = self.low_step_kib or max((self.total_kib or 0) // 100, 16384)
        if not isinstance(lowest, int) or avail_kib > lowest + step:
            self._falling = False

    def scan(self, paths: Sequence[str]) -> None:
        """Index every segment of `paths` (the fast way: only `H`, `s`, `E`, `Z` lines)."""
        for path in paths:
            for seg in reader.segments(path):
                self.scan_segment(seg)

    def scan_segment(self, path: str) -> None:
        try:
            fh = reader.open_segment(path, self.stats)
        except OSError as exc:
            self.stats.skipped_files.append(f"{path}: {exc.strerror or exc}")
            return
        self.stats.files += 1
        fast = False
        segment = None
        with fh:
            data_chunks = fh.chunks()  # complete lines; an endless one is counted, skipped
            while True:
                try:
                    data = next(data_chunks, b"")
                except (EOFError, OSError) as exc:  # a cut or corrupt .gz: what came before
                    self.stats.truncated_files.append(f"{path}: {exc}")
                    break
                if not data:
                    break
                for m in _LINE.finditer(data):
                    if m.group(1) is not None:
                        if segment is None:
                            continue
                        if fast and m.group(3) != b"-":  # `-`: no MemAvailable, estimated
                            self._tick_fields(m.group(1), m.group(2), m.group(3))
                        else:  # the whole line: the pattern matched its first fields only
                            end = data.find(b"\n", m.end())
                            self._tick_line(data[m.start():end if end >= 0 else len(data)],
                                            segment)
                        continue
                    kind = m.group(4)
                    if kind == b"H":
                        rec = reader.parse_line(m.group(0) + b"\n", path, None, self.stats)
                        if rec is None or rec.type != "H":
                            continue
                        if rec.segment.header["format"] > reader.FORMAT_MAJOR:
                            self.stats.skipped_files.append(f"{path}: newer format")
                            return
                        segment = rec.segment
                        fast = (segment.index("s", "mem_total"),
                                segment.index("s", "mem_available")) == (0, 2)
                        self.add_header(rec.time, segment.header)
                    elif segment is not None:
                        self._other_line(kind, m.group(5), m.group(6))
        if segment is None:
            self.stats.skipped_files.append(f"{path}: not a memtrail log")

    def _tick_fields(self, t: bytes, total: bytes, avail: bytes) -> None:
        try:
            time_ = reader.finite_float(t)
        except ValueError:
            self.stats.bad += 1
            return
        self.add_tick(time_, _kib(total), _kib(avail))

    def _tick_line(self, raw: bytes, segment: reader.Segment) -> None:
        rec = reader.parse_line(raw + b"\n", segment.path, segment, self.stats)
        if rec is not None:
            total, avail = rec.int("mem_total"), rec.int("mem_available")
            if avail is None and total is not None:  # a kernel before 3.14: as the model does
                avail = available_estimate({"total": total, **{
                    name: rec.int(field) for name, field in _ESTIMATE_FIELDS}})
            self.add_tick(rec.time, total, avail)

    def _other_line(self, kind: bytes, t: bytes, rest: bytes) -> None:
        try:
            time_ = reader.finite_float(t)
        except ValueError:
            self.stats.bad += 1
            return
        if kind == b"Z":
            try:
                obj = reader.decode_json(rest) if rest.startswith(b"{") else {}
            except ValueError:
                obj = {}
            self.add_end(time_, str(obj.get("reason", "end")) if isinstance(obj, dict)
                         else "end")
            return
        name, _, obj_raw = rest.partition(b" ")
        kind_s = name.decode("ascii", "replace")
        if kind_s not in MARK_KINDS and kind_s != "rate":
            return
        try:
            obj = reader.decode_json(obj_raw) if obj_raw.startswith(b"{") else {}
        except ValueError:
            self.stats.bad += 1
            return
        self.add_event(time_, kind_s, obj if isinstance(obj, dict) else {})

    # -- questions -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.times)

    def index_at(self, when: float) -> int:
        """The last tick at or before `when` (the first tick when before them all)."""
        return max(bisect.bisect_right(self.times, when + 1e-6) - 1, 0)

    def host_at(self, when: float) -> str:
        host = "?"
        for start, name in self.hosts:
            if start <= when + 1e-6:
                host = name
        return host

    def peak(self) -> Optional[int]:
        best, at = -1, None
        for i, u in enumerate(self.used):
            if u > best:
                best, at = u, i
        return at

    def mark_index(self, mark: Mark) -> int:
        return self.index_at(mark.time)

    def find_mark(self, i: int, kinds: Sequence[str], forward: bool) -> Optional[int]:
        """Tick index of the next (or previous) mark of `kinds` strictly after (before) tick i."""
        t = self.times[i] if self.times else 0.0
        candidates = [m for m in self.marks if m.kind in kinds]
        if forward:
            for m in candidates:
                if m.time > t + 1e-6:
                    return self.mark_index(m)
        else:
            for m in reversed(candidates):
                if m.time < t - 1e-6:
                    return self.mark_index(m)
        return None

    def oom_kills_until(self, when: float) -> int:
        return sum(1 for m in self.marks if m.kind == "oom_kill" and m.time <= when + 1e-6) \
            or sum(1 for m in self.marks if m.kind in ("oom_counter", "cgroup_oom")
                   and m.time <= when + 1e-6)

    def pane_marks(self) -> List[Mark]:
        """The marks worth a line: a fall of memory shows its first and lowest low only."""
        out: List[Mark] = []
        prev_low = False
        for m in self.marks:
            if m.kind == "low":
                if not prev_low or m.fall_end:
                    out.append(m)
                prev_low = not m.fall_end
                continue
            out.append(m)
        return out

    def sparkline(self, width: int, cursor: int, ascii_only: bool = False) -> Tuple[str, int]:
        """Used memory over the whole recording in `width` cells (each the highest in its
        stretch), and the cell the cursor is in."""
        n = len(self.used)
        if n == 0 or width <= 0:
            return "", -1
        blocks = " .:-=+*#" if ascii_only else " \u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
        top = max(self.used) if n else 0
        top = max(top, self.total_kib or 0, 1)
        cells = []
        per = n / width
        for c in range(min(width, n)):
            a = int(c * per)
            b = max(int((c + 1) * per), a + 1)
            value = max(self.used[a:b])
            level = 0 if value < 0 else 1 + int((len(blocks) - 2) * value / top)
            cells.append(blocks[min(level, len(blocks) - 1)])
        cell = min(int(cursor / per), len(cells) - 1) if per > 0 else 0
        return "".join(cells), cell


# An exbibyte in KiB: a larger size is a corrupt line, not a host (and would not fit the
# index's 64-bit arrays). Impossible sizes are absent, the model's rule.
_KIB_MAX = 1 << 50


# available_estimate's inputs: System attribute, `s` field
_ESTIMATE_FIELDS = (("free", "mem_free"), ("buffers", "buffers"), ("cached", "cached"),
                    ("shmem", "shmem"), ("sreclaimable", "sreclaimable"))


def _kib(raw: bytes) -> Optional[int]:
    """A size from an `s` line, or None for `-` or a bad number (add_tick drops impossible
    ones)."""
    if raw == b"-":
        return None
    try:
        return int(raw)
    except ValueError:
        return None


# -- frames: the state at one tick -----------------------------------------------------------
@dataclass
class Row:
    """One process as the console shows it (figures in bytes; text terminal-safe)."""

    pid: int
    program: str
    command: str
    rss: int
    shared: int
    pss: Optional[int]
    swap: Optional[int]
    anon: Optional[int]
    change: Optional[int]  # RSS change since the previous tick (None: not known)
    exited: bool = False
    victim: bool = False


@dataclass
class Frame:
    """Everything the console shows at one tick; frozen (it survives further replay)."""

    index: int
    time: float
    system: System
    rows: List[Row]
    events: List[Event]
    psi_some_pct: Optional[float] = None
    psi_full_pct: Optional[float] = None
    gap: Optional[Gap] = None
    segment: str = ""


def display_command(cmd: Sequence[str], comm: str) -> str:
    """A command line for a table row: one terminal-safe line, without the padding of a
    rewritten process title (programs.title_args)."""
    args = title_args(cmd)
    return safetext.terminal(" ".join(args)) if args else f"[{safetext.terminal(comm)}]"


def frame_of(tick: Tick, index: int, prev_time: Optional[float] = None) -> Frame:
    """A frozen frame of a tick the model just completed (its tables are still this tick's)."""
    changes: Dict[int, int] = {}
    for proc, old in tick.changes:
        changes[proc.pid] = proc.rss - old
    victims: Set[int] = set()
    for event in tick.events:
        if event.kind == "oom_kill":
            v = oom_victim(event.data)
            if v.pid is not None:
                victims.add(v.pid)
    rows = [_row(p, changes.get(p.pid, 0 if prev_time is not None else None), victims)
            for p in tick.procs.values()]
    for p in tick.exited:
        if p.pid not in tick.procs:
            row = _row(p, -p.rss, victims)
            row.exited = True
            rows.append(row)
    shown = {r.pid for r in rows}
    for event in tick.events:  # a victim that lived less than a tick: what the kernel said
        v = oom_victim(event.data) if event.kind == "oom_kill" else None
        if v is not None and v.pid is not None and v.pid not in shown:
            name = safetext.terminal(v.name)
            rows.append(Row(v.pid, safetext.terminal(v.program),
                            display_command(v.cmd or [], v.name) if v.cmd else f"[{name}]",
                            v.rss_bytes or 0, v.parts.get("file_bytes") or 0, None, None,
                            v.parts.get("anon_bytes"), None, exited=True, victim=True))
    some = full = None
    if prev_time is not None and tick.time > prev_time:
        span_us = (tick.time - prev_time) * 1e6
        if tick.psi_some_us is not None:
            some = 100.0 * tick.psi_some_us / span_us
        if tick.psi_full_us is not None:
            full = 100.0 * tick.psi_full_us / span_us
    return Frame(index, tick.time, tick.system, rows, list(tick.events), some, full,
                 tick.gap, tick.segment.path if tick.segment is not None else "")


def _row(p: Proc, change: Optional[int], victims: Set[int]) -> Row:
    anon = p.rss_anon
    return Row(p.pid, safetext.terminal(program_name(p.cmd, p.comm)),
               display_command(p.cmd, p.comm), p.rss, p.shared,
               current_pss(p), p.swap, anon, change,
               victim=p.pid in victims)


class Player:
    """Frames at any tick of a recording on disk: seek to the keyframe before, replay forward."""

    CACHE = 160
    FORWARD = 900  # ticks a running replay may go forward before a fresh seek is cheaper
    BEHIND = 60  # ticks before the target a fresh seek also keeps (stepping back is then free)

    def __init__(self, paths: Sequence[str], timeline: Timeline) -> None:
        self.paths = list(paths)
        self.timeline = timeline
        self.cache: OrderedDict[int, Frame] = OrderedDict()
        self._records: Optional[Iterator[Record]] = None
        self._rp: Optional[Replayer] = None
        self._last: Optional[int] = None  # index of the last tick the replay completed
        self._last_time: Optional[float] = None
        self.seeks = 0  # how many times a frame needed a fresh seek (for tests and bench)
        self.stats = ReadStats()

    def frame(self, i: int) -> Optional[Frame]:
        tl = self.timeline
        if not len(tl):
            return None
        i = min(max(i, 0), len(tl) - 1)
        hit = self.cache.get(i)
        if hit is not None:
            self.cache.move_to_end(i)
            return hit
        if self._rp is None or self._last is None or not (
                self._last < i <= self._last + self.FORWARD):
            self._seek(i)
        found = self._advance(i)
        if found is not None:
            self.cache[i] = found
            while len(self.cache) > self.CACHE:
                self.cache.popitem(last=False)
        return found

    def _seek(self, i: int) -> None:
        tl = self.timeline
        when = tl.times[max(i - 1, 0)]
        self.seeks += 1
        self._rp = Replayer()
        self._records = seek.records_from(self.paths, when, self.stats)
        self._last = None
        self._last_time = None
        self._started = False

    def _advance(self, i: int) -> Optional[Frame]:
        target = i
        rp = self._rp
        assert rp is not None and self._records is not None
        for rec in self._records:
            if not self._started and rec.type == "s":
                self._started = True
                rp.discard_pending()
            tick = rp.feed(rec)
            if tick is not None:
                got = self._completed(tick, target)
                if got is not None:
                    return got
        tick = rp.flush()  # the end of what is on disk: the last tick is complete
        self._records = iter(())
        if tick is not None:
            got = self._completed(tick, target)
            if got is not None:
                return got
        self._rp = None  # nothing more to read: the next frame seeks again
        return None

    def _completed(self, tick: Tick, target: int) -> Optional[Frame]:
        idx = self.timeline.index_at(tick.time)
        prev = self._last_time
        self._last, self._last_time = idx, tick.time
        if idx >= target:
            return frame_of(tick, idx, prev)
        if idx >= target - self.BEHIND and prev is not None and idx not in self.cache:
            self.cache[idx] = frame_of(tick, idx, prev)
        return None


class LiveFeed:
    """The newest segment followed as the sampler writes it, across rotation (as `tail -f`)."""

    def __init__(self, path: str, timeline: Timeline) -> None:
        from memtrail.tail import Follower, newest_segment

        self.timeline = timeline
        self.stats = ReadStats()
        follow_dir = path if os.path.isdir(path) else None
        self.first = newest_segment(path)
        self.follower = Follower(self.first, follow_dir, self.stats)
        self.rp = Replayer()
        self.latest: Optional[Frame] = None
        self._prev_time: Optional[float] = None
        self._segment = None
        self.last_data = time.monotonic()

    def poll(self) -> bool:
        """Read what the sampler wrote since the last call; True when a new tick arrived."""
        fol = self.follower
        new = False
        while True:
            got = False
            last_tick: Optional[Tick] = None
            for rec in fol.records():
                got = True
                tick = self._feed(rec)
                if tick is not None:
                    last_tick = tick
            if got:
                self.last_data = time.monotonic()
            if not fol.buf:  # every line of the pending tick is in (one write per tick)
                tick = self.rp.flush()
                if tick is not None:
                    self._index(tick)
                    last_tick = tick
            if last_tick is not None and not fol.buf:
                self.latest = frame_of(last_tick, len(self.timeline) - 1,
                                       self._prev_before(last_tick))
                new = True
            nxt = fol.next_segment()
            if nxt is None:
                return new
            for rec in fol.records():  # the rest of the old segment, then the new one
                self._feed(rec)
            fol.switch(nxt)

    def _feed(self, rec: Record) -> Optional[Tick]:
        if rec.type == "H":
            self.timeline.add_header(rec.time, rec.segment.header)
        elif rec.type == "Z":
            obj = rec.obj if isinstance(rec.obj, dict) else {}
            self.timeline.add_end(rec.time, str(obj.get("reason", "end")))
        tick = self.rp.feed(rec)
        if tick is not None:
            self._index(tick)
        return tick

    def _prev_before(self, tick: Tick) -> Optional[float]:
        times = self.timeline.times
        return times[-2] if len(times) >= 2 and times[-1] == tick.time else None

    def _index(self, tick: Tick) -> None:
        s = tick.system
        self.timeline.add_tick(tick.time, s.total // 1024 if s.total is not None else None,
                               s.available // 1024 if s.available is not None else None)
        for event in tick.events:
            self.timeline.add_event(event.time, event.kind, event.data)


def open_recording(path: str) -> Tuple[Timeline, Player, LiveFeed]:
    """The timeline of `path` (a log directory or one segment), a player over it, and a live
    feed of its newest segment. Raises `reader.LogError` when there is nothing to show."""
    files = reader.segments(path)
    if not files:
        raise LogError(f"{path}: no memtrail segments (memtrail-*.log[.gz]) here")
    tl = Timeline()
    for seg in files[:-1]:
        tl.scan_segment(seg)
    feed = LiveFeed(path, tl)
    feed.poll()
    return tl, Player([path], tl), feed


def sort_rows(rows: List[Row], key: str) -> List[Row]:
    if key == "growth":
        return sorted(rows, key=lambda r: (-(r.change or 0), -r.rss))
    if key == "pss":
        return sorted(rows, key=lambda r: (-(r.pss if r.pss is not None else -1), -r.rss))
    return sorted(rows, key=lambda r: -r.rss)


def filter_rows(rows: List[Row], text: str) -> List[Row]:
    """Rows whose pid, program or command line contain `text` (case-insensitive)."""
    if not text:
        return rows
    needle = text.lower()
    return [r for r in rows if needle in r.command.lower() or needle in r.program.lower()
            or needle == str(r.pid) or r.victim and needle in ("killed", "oom")]


@dataclass
class Group:
    program: str
    count: int
    rss: int
    pss: Optional[int]
    change: Optional[int]
    largest: Row
    victim: bool = False


def group_rows(rows: List[Row]) -> List[Group]:
    """Rows folded by program (`nova-api x24`), as `top --by program`."""
    groups: Dict[str, Group] = {}
    for r in rows:
        if r.exited and not r.victim:
            continue
        g = groups.get(r.program)
        if g is None:
            groups[r.program] = Group(r.program, 1, r.rss, r.pss, r.change, r, r.victim)
            continue
        g.count += 1
        g.rss += r.rss
        if r.pss is not None:
            g.pss = (g.pss or 0) + r.pss
        if r.change is not None:
            g.change = (g.change or 0) + r.change
        if r.rss > g.largest.rss:
            g.largest = r
        g.victim = g.victim or r.victim
    return list(groups.values())


def sort_groups(groups: List[Group], key: str) -> List[Group]:
    if key == "growth":
        return sorted(groups, key=lambda g: (-(g.change or 0), -g.rss))
    if key == "pss":
        return sorted(groups, key=lambda g: (-(g.pss if g.pss is not None else -1), -g.rss))
    return sorted(groups, key=lambda g: -g.rss)
