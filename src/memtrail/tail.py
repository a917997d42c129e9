"""`memtrail tail [-f]`: a readable live view of a log, one line per tick, events highlighted.

`tail -f` on the raw log works but is a wall of numbers; this shows what a person watches for:
used and available memory, the change since the last tick, memory pressure, the largest process,
and every OOM kill, new low or gap on its own highlighted line. With `-f` it follows the log
directory across rotation: when the sampler opens a new segment, the rest of the old one is
read through the descriptor already open (so compressing and removing it does no harm), then
the new one is followed. Colour only on a terminal, and never with `NO_COLOR` set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque
from typing import IO, Callable, Deque, Iterator, List, Optional

from memtrail import events, reader, safetext
from memtrail.model import Replayer, Tick
from memtrail.programs import program_name
from memtrail.reader import LogError, ReadStats, Record, Segment, is_segment_name
from memtrail.timeparse import fmt_time
from memtrail.units import fmt_bytes

RED, YELLOW, DIM, BOLD, RESET = "\033[31;1m", "\033[33m", "\033[2m", "\033[1m", "\033[0m"


class Style:
    """ANSI colours, or nothing (non-TTY output, NO_COLOR, --color never)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.enabled else text


def use_color(mode: str, stream: IO[str]) -> bool:
    if mode == "always":
        return True
    if mode == "never" or os.environ.get("NO_COLOR", ""):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Renderer:
    """Turns ticks into lines; remembers the previous tick for deltas."""

    def __init__(self, style: Style) -> None:
        self.style = style
        self.prev_used: Optional[int] = None
        self.prev_time: Optional[float] = None
        self.prev_psi: Optional[int] = None
        self.lows = events.LowFolder()
        self.low_step_kib: Optional[int] = None  # the sampler's, from the segment header

    def lines(self, tick: Tick) -> List[str]:
        st = self.style
        out: List[str] = []
        if tick.gap is not None:
            g = tick.gap
            out.append(st(YELLOW, f"-- {fmt_time(g.end, False)}  not recording for "
                                  f"{g.seconds:.0f} s ({safetext.terminal(g.reason)}) --"))
        s = tick.system
        used, total = s.used, s.total
        pct = f" ({100 * used / total:.0f}%)" if used is not None and total else ""
        delta = ""
        if used is not None and self.prev_used is not None:
            delta = f" {fmt_bytes(used - self.prev_used, signed=True):>10}"
        psi = ""
        if s.psi_full_us is not None and self.prev_psi is not None and self.prev_time \
                and tick.time > self.prev_time:
            full = 100 * (s.psi_full_us - self.prev_psi) / ((tick.time - self.prev_time) * 1e6)
            if full > 0:
                psi = st(YELLOW, f"  psi full {full:.1f}%")
        largest = max(tick.procs.values(), key=lambda p: p.rss, default=None)
        top = ""
        if largest is not None:
            name = safetext.terminal(program_name(largest.cmd, largest.comm))
            top = f"  top {name} {fmt_bytes(largest.rss)}"
        stamp = fmt_time(tick.time, False)
        if s.interval_ms is not None and s.interval_ms < 1000:  # several ticks per second
            stamp += f".{int(round(tick.time * 1000)) % 1000:03d}"
        line = (f"{stamp}  used {fmt_bytes(used):>9}{pct}{delta}  "
                f"avail {fmt_bytes(s.available):>9}  procs {len(tick.procs):>4}{psi}{top}")
        out.append(line)
        settings = tick.segment.header.get("settings") if tick.segment is not None else None
        step = settings.get("low_step_kib") if isinstance(settings, dict) else None
        self.low_step_kib = step if isinstance(step, int) and step > 0 else None
        kib = s.available // 1024 if s.available is not None else None
        for text in self.lows.available(kib):
            out.append(self._line("low", text, tick.time))
        for event in tick.events:
            out.extend(self.event(event.kind, event.data, event.time, s.total))
        self.prev_used, self.prev_time, self.prev_psi = used, tick.time, s.psi_full_us
        return out

    def event(self, kind: str, data: dict, when: float,
              total: Optional[int] = None) -> List[str]:
        """The lines for one event: a sentence (events.py); lows folded while memory falls."""
        if kind == "low":
            step = self.low_step_kib
            texts = self.lows.low(when, data, total // 1024 if total else None, step)
            return [self._line(kind, text, when) for text in texts]
        out = []
        if events.severity(kind) == events.ALERT:  # the lowest comes before the kill
            out = [self._line("low", text, when) for text in self.lows.close()]
        return out + [self._line(kind, events.sentence(kind, data), when)]

    def finish(self) -> List[str]:
        """Lines still owed at the end of the input (a fall of memory in progress)."""
        when = self.prev_time or 0.0
        return [self._line("low", text, when) for text in self.lows.close()]

    def _line(self, kind: str, text: str, when: float) -> str:
        level = events.severity(kind)
        t = fmt_time(when, False)
        if level == events.ALERT:
            return self.style(RED, f"!! {t}  {text}")
        if level == events.WARN:
            return self.style(YELLOW, f"!  {t}  {text}")
        return self.style(DIM, f"   {t}  {text}")


class Follower:
    """Reads complete lines from a growing segment and from the segments that follow it."""

    def __init__(self, path: str, follow_dir: Optional[str], stats: ReadStats) -> None:
        self.path = path
        self.dir = follow_dir
        self.stats = stats
        self.segment: Optional[Segment] = None
        self.buf = b""
        self.skipping = False  # inside a line longer than reader.MAX_LINE: dropped as it comes
        self.fh: Optional[reader.SegmentFile] = None
        self._open(path)

    def _open(self, path: str) -> None:
        self.segment = None
        self.buf = b""
        self.skipping = False
        try:  # never blocks, reads regular files only (a FIFO or /dev/zero: SegmentError)
            fh = reader.open_segment(path, self.stats)
        except FileNotFoundError:
            if path.endswith(".gz"):
                raise
            path += ".gz"  # compressed and removed between listing and opening
            fh = reader.open_segment(path, self.stats)
        self.path = path
        self.fh = fh
        self.stats.files += 1

    def records(self) -> Iterator[Record]:
        """Every record available now (complete lines only)."""
        while self.fh is not None:
            try:
                data = self.fh.read(1 << 16)
            except (EOFError, OSError) as exc:  # a truncated or corrupt .gz, a gzip bomb
                if isinstance(exc, reader.SegmentError):
                    self.stats.skipped_files.append(f"{self.path}: {exc.strerror}")
                else:
                    self.stats.truncated_files.append(f"{self.path}: {exc}")
                self.fh.close()
                self.fh = None  # said once; the next segment may still come
                return
            if not data:
                return
            self.buf += data
            *lines, self.buf = self.buf.split(b"\n")
            if self.skipping and lines:  # the end of an over-long line: drop it
                lines.pop(0)
                self.skipping = False
            if len(self.buf) > reader.MAX_LINE:  # a line too long to be a record: never kept
                self.stats.long += 1
                self.stats.lines += 1
                self.buf, self.skipping = b"", True
            elif self.skipping:
                self.buf = b""
            for raw in lines:
                rec = reader.parse_line(raw + b"\n", self.path, self.segment, self.stats)
                if rec is not None:
                    if rec.type == "H":
                        self.segment = rec.segment
                    yield rec

    def next_segment(self) -> Optional[str]:
        """The segment after the current one, if the sampler has started one."""
        if self.dir is None:
            return None
        stem = os.path.basename(self.path)
        stem = stem[:-3] if stem.endswith(".gz") else stem
        try:
            names = os.listdir(self.dir)
        except OSError:
            return None
        later = sorted({n[:-3] if n.endswith(".gz") else n for n in names
                        if is_segment_name(n)} - {stem})
        later = [n for n in later if n > stem]
        if not later:
            return None
        name = later[0]
        plain = os.path.join(self.dir, name)
        return plain if os.path.exists(plain) else plain + ".gz"

    def switch(self, path: str) -> None:
        if self.fh is not None:
            self.fh.close()
        if self.buf:
            self.stats.torn += 1  # the old segment ended mid-line
        self._open(path)


def newest_segment(path: str) -> str:
    files = reader.segments(path)
    if not files:
        raise LogError(f"{path}: no memtrail segments (memtrail-*.log[.gz]) here")
    return files[-1]


def run(path: str, follow: bool, count: int, style: Style, out: IO[str],
        poll: float = 0.2, idle_flush: float = 0.3) -> int:
    """Print the last `count` ticks of the newest segment; with `follow`, keep going."""
    if follow and os.path.isdir(path):
        while not reader.segments(path):  # the sampler has not written its first tick yet
            time.sleep(poll)
    first = newest_segment(path)
    follow_dir = path if os.path.isdir(path) else None
    stats = ReadStats()
    fol = Follower(first, follow_dir, stats)
    rp = Replayer()
    render = Renderer(style)
    history: Deque[List[str]] = deque(maxlen=max(count, 0))  # maxlen 0 keeps nothing

    def play(show: Callable[[List[str]], None]) -> bool:
        """Feed every record available now; show each tick it completes. Anything read?"""
        got = False
        for rec in fol.records():
            got = True
            tick = rp.feed(rec)
            if tick is not None:
                show(render.lines(tick))  # rendered even when not shown: deltas need it
        return got

    def flush(show: Callable[[List[str]], None]) -> None:
        tick = rp.flush()
        if tick is not None:
            show(render.lines(tick))

    def show(lines: List[str]) -> None:
        _write(out, lines)

    # The backlog: replay the newest segment, keep the last `count` ticks' lines.
    play(history.append)
    flush(history.append)
    owed = render.finish() if not follow else []
    if owed and history:
        history[-1] = history[-1] + owed
    for lines in history:
        _write(out, lines)
    out.flush()
    if not follow:
        return 0
    last_data = time.monotonic()
    pending = False
    while True:
        if play(show):
            pending = True
            last_data = time.monotonic()
            continue
        if pending and not fol.buf and time.monotonic() - last_data >= idle_flush:
            # A tick is written in one write: drained input means the tick is complete.
            flush(show)
            pending = False
        nxt = fol.next_segment()
        if nxt is not None:
            play(show)  # whatever the old segment still had
            fol.switch(nxt)
            continue
        time.sleep(poll)


def _write(out: IO[str], lines: List[str]) -> None:
    for line in lines:
        out.write(line + "\n")
    out.flush()


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="memtrail tail",
        description="One readable line per tick of the newest segment, events highlighted; "
                    "-f follows the log across rotation.")
    ap.add_argument("path", metavar="PATH", help="log directory (or one segment file)")
    ap.add_argument("-f", "--follow", action="store_true", help="keep following new ticks")
    ap.add_argument("-n", "--lines", type=int, default=10, metavar="N",
                    help="ticks of history to show first (default 10)")
    ap.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                    help="colour (auto: only on a terminal and without NO_COLOR)")
    return ap


def main(argv: List[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args.path, args.follow, args.lines,
                   Style(use_color(args.color, sys.stdout)), sys.stdout)
    except LogError as exc:
        print(f"memtrail tail: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"memtrail tail: {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
