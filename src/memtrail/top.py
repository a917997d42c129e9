"""`memtrail top --at TIME`: the process table at any moment of a recording (time travel).

Like `atop -r` jumping to a time: the system line and every live process sorted by RSS, with
its command line, as the sampler knew them at the last tick at or before TIME. The replay starts
at the last keyframe before TIME (seek.py) and stops at TIME, so any moment of a week-long log
is quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence, Tuple

from memtrail import safetext
from memtrail.model import Gap, Proc, Replayer, Run, Tick, current_pss
from memtrail.programs import program_name
from memtrail.reader import LogError, ReadStats, check_paths, finite_float, open_segment, segments
from memtrail.safetext import terminal
from memtrail.seek import records_from
from memtrail.timeparse import fmt_time, glue_time_values, parse_time
from memtrail.units import fmt_bytes, fmt_duration


def _first_time(path: str) -> Optional[float]:
    try:
        with open_segment(path) as fh:
            for _ in range(50):
                line = fh.readline()
                if not line.endswith(b"\n"):
                    return None
                parts = line.split(b" ", 2)
                if len(parts) >= 2 and parts[0] == b"s":
                    return finite_float(parts[1])
    except (OSError, EOFError, ValueError):
        return None
    return None


def _last_time(path: str) -> Optional[float]:
    """Time of the last complete line of a segment (reads only the tail of a plain file)."""
    last = None
    try:
        with open_segment(path) as fh:
            if fh.compressed:  # no seeking to the end of a stream: read it through
                for line in fh.lines():  # complete lines only (a torn tail is left out)
                    last = line
            else:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - 65536))
                lines = fh.read(65536).split(b"\n")[:-1]  # drop a torn tail
                last = lines[-1] if lines else None
    except (OSError, EOFError, ValueError):
        return None
    if not last:
        return None
    try:
        return finite_float(last.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def bounds(paths: Sequence[str]) -> Tuple[Optional[float], Optional[float]]:
    """(first tick time, last record time) of a recording without replaying it."""
    files: List[str] = []
    for path in paths:
        files.extend(segments(path))
    start = end = None
    for f in files:
        start = _first_time(f)
        if start is not None:
            break
    for f in reversed(files):
        end = _last_time(f)
        if end is not None:
            break
    return start, end


def times_in(paths: Sequence[str], texts: Sequence[Optional[str]]
             ) -> Tuple[float, float, List[Optional[float]]]:
    """The recording's (start, end) and each time the user typed, resolved against it.

    Raises ValueError with a one-line message for every way this fails (a path that is not a
    recording, a log with no samples, a text that is not a time), for commands to print as is.
    """
    errors = check_paths(paths)
    if errors:
        raise ValueError(errors[0])
    try:
        start, end = bounds(paths)
    except LogError as exc:
        raise ValueError(str(exc)) from None
    if start is None:
        raise ValueError(f"{', '.join(paths)}: no samples in the log")
    return start, end, [parse_time(t, start, end) if t else None for t in texts]


def state_at(paths: Sequence[str], when: float, stats: ReadStats,
             run: Run) -> Tuple[Optional[Tick], List[Proc], Optional[Gap]]:
    """The last tick at or before `when`, a frozen copy of its processes, and the gap that
    `when` falls into (if the sampler was not looking then).

    The replay starts at the last keyframe before `when` (seek.py), not at the beginning.

    A tick is complete when the next one's first record arrives; that record does not touch
    the table yet, so the table is copied only once, for the tick that answers.
    """
    rp = Replayer(run)
    last: Optional[Tick] = None
    started = False
    for rec in records_from(paths, when, stats):
        if not started and rec.type == "s":
            started = True
            rp.discard_pending()
        done = rp.feed(rec)
        if done is None:
            continue
        if rec.time > when:
            procs = [p.snapshot() for p in done.procs.values()]
            # Does `when` fall into a hole before the next tick?
            gap = rp.pending_gap
            if gap is None and rec.type == "s":
                nxt = rp.flush()
                gap = nxt.gap if nxt is not None else None
            if gap is None and rec.time - done.time > 2 * max(run.interval_s or 1.0, 1.0):
                gap = Gap(done.time, rec.time, "no samples")
            if gap is not None and not gap.start <= when:
                gap = None
            return done, procs, gap
        last = done
    done = rp.finish()
    if done is not None and done.time <= when:
        return done, [p.snapshot() for p in done.procs.values()], None
    if last is not None:  # unreachable in practice: the last tick's records came after it
        return last, [p.snapshot() for p in last.procs.values()], None
    return None, [], None


def _system_line(tick: Tick) -> str:
    s = tick.system
    parts = [f"used {fmt_bytes(s.used)}" + (f" of {fmt_bytes(s.total)}" if s.total else ""),
             f"available {fmt_bytes(s.available)}", f"cached {fmt_bytes(s.cached)}",
             f"slab {fmt_bytes(s.slab)}", f"shmem {fmt_bytes(s.shmem)}"]
    if s.swap_total:
        parts.append(f"swap used {fmt_bytes(s.swap_used)}")
    parts.append(f"{len(tick.procs)} processes")
    return ", ".join(parts)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="memtrail top",
        description="The process table at one moment of a recording.")
    ap.add_argument("paths", nargs="+", metavar="PATH",
                    help="log directory or segment file(s) of one recording")
    ap.add_argument("--at", required=True, metavar="TIME",
                    help="ISO 8601, HH:MM[:SS] on the log's day (UTC), +90s from the start, "
                         "-5m from the end")
    ap.add_argument("--by", choices=("process", "program"), default="process")
    ap.add_argument("--limit", type=int, default=30, metavar="N",
                    help="rows to show (default 30, 0 = all)")
    return ap


def main(argv: List[str]) -> int:
    args = _parser().parse_args(glue_time_values(list(argv), ("--at",)))
    from memtrail.report import group_runs  # one recording only: several would interleave

    try:
        start, end, (when,) = times_in(args.paths, [args.at])
    except ValueError as exc:
        print(f"memtrail top: {exc}", file=sys.stderr)
        return 2
    if len(group_runs(args.paths)) > 1:
        print("memtrail top: give one recording (a directory, or segments of one sampler run)",
              file=sys.stderr)
        return 2
    if when < start:
        print(f"memtrail top: {fmt_time(when)} is before the recording starts "
              f"({fmt_time(start)})", file=sys.stderr)
        return 2
    stats, run = ReadStats(), Run()
    tick, procs, gap = state_at(args.paths, when, stats, run)
    if tick is None:
        print(f"memtrail top: no sample at or before {fmt_time(when)}", file=sys.stderr)
        return 2
    out = sys.stdout
    out.write(f"memtrail top: {terminal(', '.join(run.hosts))} at {fmt_time(tick.time)} "
              f"(+{fmt_duration(tick.time - start)} from the start)\n")
    if gap is not None:
        out.write(f"  note: the sampler was not looking at {fmt_time(when)} (gap "
                  f"{fmt_time(gap.start)} -> {fmt_time(gap.end)}, {terminal(gap.reason)}); "
                  f"this is the last sample before it\n")
    elif end is not None and when > end:
        out.write(f"  note: {fmt_time(when)} is after the recording ends; last sample shown\n")
    out.write(f"  {_system_line(tick)}\n")
    for event in tick.events:
        out.write(f"  event: {terminal(event.kind)} {terminal(event.data)}\n")
    if stats.problems:
        out.write(f"  reading problems: {terminal(stats.summary())}\n")
    out.write("\n")
    procs.sort(key=lambda p: -p.rss)
    limit = args.limit if args.limit > 0 else None
    if args.by == "program":
        groups: dict = {}
        for p in procs:
            name = terminal(program_name(p.cmd, p.comm))
            g = groups.setdefault(name, [name, 0, 0, p])
            g[1] += 1
            g[2] += p.rss
        rows = sorted(groups.values(), key=lambda g: -g[2])[:limit]
        width = max([7] + [safetext.cells(g[0]) for g in rows])  # CJK names: two cells
        out.write(f"{'PROGRAM':<{width}}  {'COUNT':>5}  {'RSS':>9}  LARGEST\n")
        for name, count, rss, big in rows:
            out.write(f"{safetext.fit(name, width)}  {'x' + str(count):>5}  {fmt_bytes(rss):>9}  "
                      f"pid {big.pid} {fmt_bytes(big.rss)}\n")
    else:
        out.write(f"{'PID':>7}  {'RSS':>9}  {'SHARED':>9}  {'SWAP':>9}  {'PSS':>9}  "
                  f"{'UID':>5}  COMMAND\n")
        for p in procs[:limit]:
            out.write(f"{p.pid:>7}  {fmt_bytes(p.rss):>9}  {fmt_bytes(p.shared):>9}  "
                      f"{fmt_bytes(p.swap):>9}  {fmt_bytes(current_pss(p)):>9}  "
                      f"{'-' if p.uid is None else p.uid:>5}  {terminal(p.cmdline)}\n")
    if limit and len(procs) > limit and args.by == "process":
        out.write(f"... {len(procs) - limit} more (--limit 0 shows all)\n")
    return 0
