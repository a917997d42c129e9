"""`memtrail view [LOG]`: the incident console, live or travelling back in time, in a terminal.

What top/htop/atop are during an incident, for a memtrail recording: the host's memory, the
sampler's state and the process table, live as the sampler writes; and, because every tick is
in the log, the same screen at any earlier moment: a tick or a minute back, a typed time, the
previous OOM kill with its victim in the table, the peak, each new low. It runs over ssh in
80x24, needs no mouse, and honours NO_COLOR.

Everything it shows comes from `timeline.py` (the index, the frames, the live feed, all
testable without a terminal). `Console.render()` lays a frame out as lines of styled text (also
tested without a terminal); only `_curses_loop` touches curses. Every string from the log was
made terminal-safe when its frame was built (safetext.terminal).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, List, Optional, Tuple

from memtrail import events, safetext
from memtrail.reader import LogError
from memtrail.timeline import (
    Frame,
    LiveFeed,
    Player,
    Timeline,
    filter_rows,
    group_rows,
    open_recording,
    sort_groups,
    sort_rows,
)
from memtrail.timeparse import fmt_time, parse_time
from memtrail.units import fmt_bytes, fmt_duration

UNIT_DIR = "/var/log/memtrail"
SORTS = ("rss", "growth", "pss")
Segment = Tuple[str, str]  # (text, style): "", "bold", "dim", "alert", "warn", "rev", "head"
Line = List[Segment]

KEYS_HELP = [
    ("Left/Right  , .", "a tick back / forward"),
    ("[ ]", "a minute back / forward"),
    ("Home", "the start of the recording"),
    ("g", "go to a time: 14:32, 14:32:05, -5m, +1h, ISO 8601"),
    ("o O", "next / previous OOM kill (its table, the victim marked)"),
    ("p", "the peak of used memory"),
    ("n N", "next / previous new low of available memory"),
    ("e E", "next / previous event of any kind"),
    ("L End", "back to live (the newest tick, following the sampler)"),
    ("t", "processes / grouped by program"),
    ("s", "sort by RSS, growth since the previous tick, PSS"),
    ("/", "filter by text (pid, program, command line); empty clears"),
    ("Up/Down PgUp/PgDn", "scroll the table"),
    ("?", "this help"),
    ("q", "quit"),
]
STATUS_KEYS = "q quit ?help ,. tick [] min g goto o/O oom p peak n low L live t s / filter"


class Console:
    """The console's state and its layout; keys in, lines out. No curses in here."""

    def __init__(self, path: str, timeline: Timeline, player: Player,
                 feed: Optional[LiveFeed], ascii_only: bool = False) -> None:
        self.path = path
        self.timeline = timeline
        self.player = player
        self.feed = feed
        self.ascii_only = ascii_only
        self.cursor: Optional[int] = None  # None: live (the newest tick)
        self.by_program = False
        self.sort = "rss"
        self.filter = ""
        self.scroll = 0
        self.prompt: Optional[str] = None  # "goto" or "filter" while typing
        self.typed = ""
        self.message = ""
        self.help = False
        self.table_note = ""
        self.now = time.time  # the wall clock, for the age of the last tick (tests set it)

    # -- position ------------------------------------------------------------------------
    @property
    def index(self) -> int:
        n = len(self.timeline)
        return n - 1 if self.cursor is None else min(self.cursor, n - 1)

    def frame(self) -> Optional[Frame]:
        i = self.index
        if i < 0:
            return None
        feed = self.feed
        if feed is not None and feed.latest is not None and feed.latest.index == i:
            return feed.latest
        return self.player.frame(i)

    def go(self, i: Optional[int], what: str = "") -> None:
        n = len(self.timeline)
        if i is None:
            self.message = f"no {what}" if what else ""
            return
        i = min(max(i, 0), n - 1)
        self.cursor = i
        self.scroll = 0
        self.message = what

    def live(self) -> None:
        self.cursor = None
        self.scroll = 0
        self.message = "live"

    def step(self, ticks: int) -> None:
        self.go(self.index + ticks)

    def minute(self, sign: int) -> None:
        tl = self.timeline
        if not len(tl):
            return
        self.go(tl.index_at(tl.times[self.index] + sign * 60.0) if sign < 0
                else _first_at_or_after(tl, tl.times[self.index] + 60.0))

    def jump(self, kinds: Tuple[str, ...], forward: bool, what: str) -> None:
        i = self.timeline.find_mark(self.index, kinds, forward)
        self.go(i, what if i is not None else f"{'later' if forward else 'earlier'} {what}")

    def goto(self, text: str) -> None:
        tl = self.timeline
        if not len(tl):
            return
        try:
            when = parse_time(text, tl.times[0], tl.times[-1])
        except ValueError as exc:
            self.message = safetext.terminal(str(exc))
            return
        self.go(tl.index_at(when), f"at {fmt_time(when, False)}")

    # -- keys ----------------------------------------------------------------------------
    def key(self, key: Any) -> bool:
        """Apply one key (a character, or a curses key name such as "KEY_LEFT"); False quits."""
        if self.prompt is not None:
            return self._prompt_key(key)
        if self.help:
            self.help = False
            return key != "q"
        tl = self.timeline
        if key in ("q", "Q"):
            return False
        if key in ("KEY_LEFT", ",", "h"):
            self.step(-1)
        elif key in ("KEY_RIGHT", ".", "l"):
            if self.cursor is not None and self.cursor + 1 >= len(tl):
                self.live()
            else:
                self.step(1)
        elif key == "[":
            self.minute(-1)
        elif key == "]":
            self.minute(1)
        elif key in ("KEY_HOME", "0"):
            self.go(0, "the start")
        elif key in ("L", "KEY_END"):
            self.live()
        elif key == "g":
            self.prompt, self.typed = "goto", ""
        elif key == "/":
            self.prompt, self.typed = "filter", self.filter
        elif key == "o":
            self.jump(("oom_kill", "oom_counter", "cgroup_oom"), True, "OOM kill")
        elif key == "O":
            self.jump(("oom_kill", "oom_counter", "cgroup_oom"), False, "OOM kill")
        elif key == "n":
            self.jump(("low",), True, "new low")
        elif key == "N":
            self.jump(("low",), False, "new low")
        elif key == "e":
            self.jump(tuple({m.kind for m in tl.marks}), True, "event")
        elif key == "E":
            self.jump(tuple({m.kind for m in tl.marks}), False, "event")
        elif key == "p":
            self.go(tl.peak(), "the peak of used memory")
        elif key == "t":
            self.by_program = not self.by_program
            self.scroll = 0
        elif key == "s":
            self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
            self.message = f"sorted by {self.sort}"
        elif key == "KEY_DOWN":
            self.scroll += 1
        elif key == "KEY_UP":
            self.scroll = max(self.scroll - 1, 0)
        elif key == "KEY_NPAGE":
            self.scroll += 10
        elif key == "KEY_PPAGE":
            self.scroll = max(self.scroll - 10, 0)
        elif key == "?":
            self.help = True
        return True

    def _prompt_key(self, key: Any) -> bool:
        if key in ("\n", "\r", "KEY_ENTER"):
            text, kind = self.typed.strip(), self.prompt
            self.prompt = None
            if kind == "goto":
                if text:
                    self.goto(text)
            else:
                self.filter = text
                self.scroll = 0
                self.message = f"filter: {safetext.terminal(text)}" if text else "no filter"
        elif key in ("\x1b", "\x07", "\x03"):  # Esc, Ctrl-G, Ctrl-C: cancel
            self.prompt = None
        elif key in ("KEY_BACKSPACE", "\x7f", "\b"):
            self.typed = self.typed[:-1]
        elif isinstance(key, str) and len(key) == 1 and key.isprintable():
            self.typed += key
        return True

    # -- layout --------------------------------------------------------------------------
    def render(self, width: int, height: int) -> List[Line]:
        """The screen as `height` lines of styled segments, none wider than `width`."""
        width = max(width, 20)
        if self.help:
            return _fit(self._help_lines(), width, height)
        frame = self.frame()
        lines: List[Line] = []
        if frame is None:
            lines.append([("memtrail view: no tick in the log yet", "bold")])
            return _fit(lines, width, height)
        lines += self._header(frame, width)
        pane_h = max(min(4, height - 12), 2)
        table_h = max(height - len(lines) - pane_h - 1, 2)
        table = self._table(frame, width, table_h)  # before the pane: it names the filter
        lines += table + [[]] * (table_h - len(table))
        lines += self._events_pane(frame, pane_h)
        lines.append(self._status(width))
        return _fit(lines, width, height)

    def _header(self, f: Frame, width: int) -> List[Line]:
        tl = self.timeline
        n = len(tl)
        s = f.system
        host = tl.host_at(f.time)
        if self.cursor is None:
            where: Segment = (" LIVE ", "rev")
        else:
            behind = tl.times[-1] - f.time
            where = (f" HISTORY {f.index + 1}/{n}, {fmt_duration(behind)} before the end ",
                     "revwarn")
        line0: Line = [("memtrail ", "bold"), (f"{host}  ", "bold"),
                       (f"{self._stamp(f)}  ", "bold"), where]
        used, total = s.used, s.total
        pct = f" ({100 * used / total:.0f}%)" if used is not None and total else ""
        psi = "PSI -"
        if f.psi_some_pct is not None or f.psi_full_pct is not None:
            psi = (f"PSI some {_pct(f.psi_some_pct)} full {_pct(f.psi_full_pct)}")
        swap = f"swap {fmt_bytes(s.swap_used)}/{fmt_bytes(s.swap_total)}" if s.swap_total \
            else "no swap"
        line1: Line = [(f"used {fmt_bytes(used)} of {fmt_bytes(total)}{pct}  "
                        f"avail {fmt_bytes(s.available)}  {swap}  ", ""),
                       (psi, "warn" if (f.psi_full_pct or 0) >= 1 else "")]
        line2 = self._sampler_line(f)
        spark, cell = tl.sparkline(max(width - 6, 10), f.index, self.ascii_only)
        line3: Line = [("used ", "dim")]
        if cell >= 0:
            line3 += [(spark[:cell], "spark"), (spark[cell] if spark[cell] != " " else "|",
                                                "rev"), (spark[cell + 1:], "spark")]
        return [line0, line1, line2, line3]

    def _stamp(self, f: Frame) -> str:
        """The frame's time; with milliseconds when ticks come faster than once a second."""
        stamp = fmt_time(f.time)
        ms = f.system.interval_ms
        if (ms is not None and ms < 1000) or self.timeline.interval_s < 1.0:
            stamp = stamp[:-1] + f".{int(round(f.time * 1000)) % 1000:03d}Z"
        return stamp

    def _sampler_line(self, f: Frame) -> Line:
        tl = self.timeline
        kills = tl.oom_kills_until(f.time)
        ms = f.system.interval_ms
        rate = f"every {ms / 1000:g} s" if ms else f"every {tl.interval_s:g} s"
        out: Line = [(f"sampler {rate}", "")]
        last = tl.times[-1]
        age = self.now() - last
        if tl.end is not None:
            out += [("  STALE", "alert"),
                    (f": stopped ({tl.end[1]}) {fmt_duration(max(age, 0))} ago", "warn")]
        elif age > max(3 * tl.interval_s, tl.interval_s + 5.0):
            out += [("  STALE", "alert"), (f": no tick for {fmt_duration(age)}", "warn")]
        else:
            out += [(f", last tick {max(age, 0):.1f} s ago", "")]
        out += [(f"  OOM kills so far: {kills}", "alert" if kills else "")]
        if f.gap is not None and f.gap.end == f.time:
            out += [(f"  after a gap of {fmt_duration(f.gap.seconds)}", "warn")]
        return out

    def _table(self, f: Frame, width: int, height: int) -> List[Line]:
        rows = filter_rows(f.rows, self.filter)
        self.table_note = (
            f"{'programs' if self.by_program else 'processes'} by {self.sort}"
            + (f", filter '{safetext.terminal(self.filter)}' ({len(rows)} of {len(f.rows)})"
               if self.filter else f", {len(f.rows)}"))
        out: List[Line] = []
        if self.by_program:
            groups = sort_groups(group_rows(rows), self.sort)
            has_pss = any(g.pss is not None for g in groups)
            cols = f"{'PROGRAM':<20} {'COUNT':>5} {'RSS':>9} " + \
                (f"{'PSS':>9} " if has_pss else "") + f"{'CHANGE':>9} LARGEST"
            out.append([(cols.ljust(width), "head")])
            body = groups[self.scroll:self.scroll + height - 1]
            for g in body:
                text = (f"{safetext.fit(g.program, 20)} {'x' + str(g.count):>5} "
                        f"{fmt_bytes(g.rss):>9} "
                        + (f"{fmt_bytes(g.pss):>9} " if has_pss else "")
                        + f"{_change(g.change):>9} pid {g.largest.pid} {g.largest.command}")
                out.append([(text, "alert" if g.victim else "")])
            return out
        rows = sort_rows(rows, self.sort)
        extra = [("PSS", "pss"), ("ANON", "anon"), ("SWAP", "swap")]
        shown = [(name, attr) for name, attr in extra
                 if any(getattr(r, attr) for r in rows)]
        while shown and width - 53 - 10 * len(shown) < 24:
            shown.pop()
        cols = f"{'PID':>7} {'PROGRAM':<14} {'RSS':>9} {'SHARED':>9} " + \
            "".join(f"{name:>9} " for name, _ in shown) + f"{'CHANGE':>9} COMMAND"
        out.append([(cols.ljust(width), "head")])
        for r in rows[self.scroll:self.scroll + height - 1]:
            change = "KILLED" if r.victim else ("exited" if r.exited else _change(r.change))
            text = (f"{r.pid:>7} {safetext.fit(r.program, 14)} {fmt_bytes(r.rss):>9} "
                    f"{fmt_bytes(r.shared):>9} "
                    + "".join(f"{fmt_bytes(getattr(r, attr)):>9} " for _, attr in shown)
                    + f"{change:>9} {r.command}")
            style = "alert" if r.victim else ("dim" if r.exited else "")
            out.append([(text, style)])
        return out

    def _events_pane(self, f: Frame, height: int) -> List[Line]:
        marks = self.timeline.pane_marks()
        before = [m for m in marks if m.time <= f.time + 1e-6]
        after = [m for m in marks if m.time > f.time + 1e-6]
        want = height - 1
        shown = before[-max(want - 1, 1):] if after else before[-want:]
        shown += after[:want - len(shown)]
        title = f"{self.table_note} | events: {len(marks)} (e/E)"
        out: List[Line] = [[(title.ljust(200), "head")]]
        for m in shown:
            here = abs(m.time - f.time) < 1e-6
            level = events.severity(m.kind)
            style = "alert" if level == events.ALERT else ("warn" if level == events.WARN
                                                           else "")
            out.append([(">" if here else " ", "rev" if here else ""),
                        (f"{fmt_time(m.time, False)} {m.text}", style)])
        while len(out) < height:
            out.append([("", "")])
        return out[:height]

    def _status(self, width: int) -> Line:
        if self.prompt == "goto":
            return [("go to time (14:32, -5m, +1h, ISO; Enter, Esc cancels): ", "bold"),
                    (safetext.terminal(self.typed) + "_", "")]
        if self.prompt == "filter":
            return [("filter (Enter applies, empty clears): /", "bold"),
                    (safetext.terminal(self.typed) + "_", "")]
        msg = f"[{self.message}] " if self.message else ""
        return [(msg, "warn"), (STATUS_KEYS, "dim")]

    def _help_lines(self) -> List[Line]:
        out: List[Line] = [[("memtrail view: keys (any key returns)", "bold")]]
        for keys, what in KEYS_HELP:
            out.append([(f"  {keys:<18} ", "bold"), (what, "")])
        out.append([(f"  log: {safetext.terminal(self.path)}", "dim")])
        return out


def _first_at_or_after(tl: Timeline, when: float) -> int:
    i = tl.index_at(when)
    return i + 1 if tl.times[i] < when - 1e-6 and i + 1 < len(tl) else i


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _change(value: Optional[int]) -> str:
    if value is None:
        return "-"
    return "0" if value == 0 else fmt_bytes(value, signed=True)


def _fit(lines: List[Line], width: int, height: int) -> List[Line]:
    """Exactly `height` lines, each cut to `width` terminal cells (a CJK character takes two);
    on a short screen the last line (the status line) stays."""
    if len(lines) > height > 0:
        lines = lines[:height - 1] + [lines[-1]]
    out: List[Line] = []
    for line in lines[:height]:
        room = width
        cut: Line = []
        for text, style in line:
            if room <= 0:
                break
            piece = safetext.fit(text, room, pad=False)
            cut.append((piece, style))
            room -= safetext.cells(piece)
        out.append(cut)
    while len(out) < height:
        out.append([])
    return out


def text_of(lines: List[Line]) -> str:
    """The screen as plain text (tests)."""
    return "\n".join("".join(t for t, _ in line) for line in lines)


# -- curses --------------------------------------------------------------------------------------
def _curses_loop(stdscr: Any, console: Console, color: bool, poll_s: float = 0.25) -> None:
    import curses

    curses.curs_set(0)
    stdscr.timeout(int(poll_s * 1000))
    styles = {"": curses.A_NORMAL, "bold": curses.A_BOLD, "dim": curses.A_DIM,
              "rev": curses.A_REVERSE, "head": curses.A_REVERSE | curses.A_BOLD,
              "alert": curses.A_BOLD, "warn": curses.A_NORMAL, "spark": curses.A_NORMAL,
              "revwarn": curses.A_REVERSE}
    background = curses.COLOR_BLACK
    if curses.has_colors():
        try:  # curses.wrapper started colour: keep the terminal's own, even with NO_COLOR
            curses.use_default_colors()
            background = -1
        except curses.error:
            pass
    if color and curses.has_colors():
        for n, fg in ((1, curses.COLOR_RED), (2, curses.COLOR_YELLOW), (3, curses.COLOR_CYAN)):
            curses.init_pair(n, fg, background)
        styles["alert"] = curses.color_pair(1) | curses.A_BOLD
        styles["warn"] = curses.color_pair(2)
        styles["spark"] = curses.color_pair(3)
        styles["revwarn"] = curses.color_pair(2) | curses.A_REVERSE
    last_draw = 0.0
    dirty = True
    size = stdscr.getmaxyx()
    while True:
        if console.feed is not None and console.feed.poll():
            dirty = True
        _follow_terminal_size(stdscr)
        if dirty or time.monotonic() - last_draw >= 1.0:
            height, width = stdscr.getmaxyx()
            if (height, width) != size:  # resized: the terminal's old content is not ours
                size = (height, width)
                stdscr.clear()
            else:
                stdscr.erase()
            for y, line in enumerate(console.render(width, height)):
                x = 0
                for text, style in line:
                    try:
                        stdscr.addstr(y, x, text, styles.get(style, curses.A_NORMAL))
                    except curses.error:  # the bottom-right cell: written, then it raises
                        pass
                    x += safetext.cells(text)
            stdscr.refresh()
            last_draw = time.monotonic()
            dirty = False
        try:
            key = stdscr.get_wch()
        except curses.error:  # no key within the poll interval
            continue
        if key == curses.KEY_RESIZE:
            curses.update_lines_cols()
            stdscr.clear()
            dirty = True
            continue
        if isinstance(key, int):
            key = curses.keyname(key).decode("ascii", "replace")
        if not console.key(key):
            return
        dirty = True


def _follow_terminal_size(stdscr: Any) -> None:
    """Ask the terminal its size and tell curses when it changed. KEY_RESIZE alone is not
    enough: when SIGWINCH arrives while Python, not ncurses, is waiting, it can be missed."""
    import curses

    try:
        cols, lines = os.get_terminal_size(sys.__stdout__.fileno())
    except (OSError, ValueError, AttributeError):
        return
    if (lines, cols) != stdscr.getmaxyx():
        curses.resizeterm(lines, cols)
        stdscr.clear()


def default_log() -> str:
    """The unit's log directory when it exists, else ./memtrail-logs (`memtrail record`'s)."""
    return UNIT_DIR if os.path.isdir(UNIT_DIR) else "memtrail-logs"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="memtrail view",
        description="A full-screen console over a recording: live as the sampler writes it, "
                    "or at any earlier tick (keys: ? in the console; docs/analyzer.md).")
    ap.add_argument("path", nargs="?", metavar="LOG",
                    help=f"log directory or segment (default: {UNIT_DIR} when it exists, "
                         "else ./memtrail-logs)")
    ap.add_argument("--at", metavar="TIME",
                    help="start at this time instead of live (14:32, -5m, +1h, ISO 8601)")
    ap.add_argument("--ascii", action="store_true",
                    help="draw the sparkline with ASCII (terminals without UTF-8)")
    return ap


def main(argv: List[str]) -> int:
    from memtrail.timeparse import glue_time_values

    args = _parser().parse_args(glue_time_values(list(argv), ("--at",)))
    path = args.path or default_log()
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("memtrail view: needs a terminal (for a pipe: memtrail tail, or memtrail top "
              "--at TIME)", file=sys.stderr)
        return 2
    try:
        timeline, player, feed = open_recording(path)
    except LogError as exc:
        print(f"memtrail view: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"memtrail view: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not len(timeline):
        print(f"memtrail view: {path}: no tick in the log yet", file=sys.stderr)
        return 2
    ascii_only = args.ascii or "UTF-8" not in (sys.stdout.encoding or "").upper()
    console = Console(path, timeline, player, feed, ascii_only)
    if args.at:
        console.goto(args.at)
        if console.cursor is None:
            print(f"memtrail view: {console.message}", file=sys.stderr)
            return 2
    color = not os.environ.get("NO_COLOR", "")
    import curses
    import locale

    locale.setlocale(locale.LC_ALL, "")  # curses writes UTF-8 (the sparkline) only then

    os.environ.setdefault("ESCDELAY", "25")  # Esc cancels a prompt without a 1 s wait
    curses.wrapper(_curses_loop, console, color)
    return 0
