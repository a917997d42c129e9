"""`memtrail export`: a recording as CSV, JSON lines or OpenMetrics, for the tools teams run.

- `csv`: long format, one row per value: `time,unix,host,series,pid,program,value`. System
  series every tick; process series when the sampler recorded a new value (a value holds until
  the next row for the same pid, or its `exit` row). Loads into pandas, DuckDB, a spreadsheet.
- `jsonl`: one flat JSON object per record in a versioned schema (`memtrail.jsonl/1`, see
  jsonl.py), each carrying its recording's id and the `--label`s, for DuckDB, ClickHouse,
  OpenSearch, Loki, `jq`.
- `openmetrics`: the state at the end of the window (or `--to`) as OpenMetrics gauges, without
  timestamps, ending in `# EOF`: drop it in node_exporter's textfile-collector directory, or
  check it with `promtool check metrics`. Only gauges: the figures are per recording (peak,
  kills seen), and an OpenMetrics counter (`# TYPE x counter` + `x_total`) is read by promtool
  and the textfile collector (Prometheus text format parsers) as another, help-less metric.

All streaming (flat memory) except OpenMetrics, which keeps one state per host. docs/export.md
documents every column, series and metric.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import heapq
import math
import os
import sys
from typing import IO, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from memtrail import output, safetext
from memtrail.model import Proc, Run, System, Tick, oom_victim, replay
from memtrail.programs import program_name
from memtrail.reader import LogError, ReadStats
from memtrail.report import group_runs
from memtrail.safetext import csv_cell, label
from memtrail.timeparse import fmt_time, glue_time_values, iso
from memtrail.top import state_at, times_in
from memtrail.triggers import trigger

CSV_COLUMNS = ("time", "unix", "host", "series", "pid", "program", "value")

# System series: (name in the export, attribute of model.System or a property), in bytes for
# sizes; `_total` series are the kernel's cumulative counters since boot.
SYSTEM_SERIES: Tuple[Tuple[str, str], ...] = (
    ("mem_total_bytes", "total"), ("mem_used_bytes", "used"),
    ("mem_available_bytes", "available"), ("mem_free_bytes", "free"),
    ("cached_bytes", "cached"), ("buffers_bytes", "buffers"), ("shmem_bytes", "shmem"),
    ("slab_bytes", "slab"), ("slab_reclaimable_bytes", "sreclaimable"),
    ("swap_total_bytes", "swap_total"), ("swap_used_bytes", "swap_used"),
    ("committed_as_bytes", "committed_as"), ("anon_bytes", "anon_pages"),
    ("page_tables_bytes", "page_tables"), ("kernel_stack_bytes", "kernel_stack"),
    ("mlocked_bytes", "mlocked"), ("unevictable_bytes", "unevictable"),
    ("hugetlb_bytes", "hugetlb"), ("processes", "nprocs"),
    ("oom_kill_total", "oom_kill"), ("pgmajfault_total", "pgmajfault"),
    ("psi_some_us_total", "psi_some_us"), ("psi_full_us_total", "psi_full_us"),
    ("percpu_bytes", "percpu"), ("vmalloc_used_bytes", "vmalloc_used"),
    ("zswap_bytes", "zswap"), ("zsmalloc_bytes", "zsmalloc"),
)
PROCESS_SERIES = (("rss_bytes", "rss"), ("shared_bytes", "shared"))
DETAIL_SERIES = (("pss_bytes", "pss"), ("swap_bytes", "swap"), ("anon_bytes", "rss_anon"),
                 ("locked_bytes", "locked"))
OM_TOP_PROCESSES = 20


class Filter:
    """The window and program selection shared by every format."""

    def __init__(self, start: Optional[float], end: Optional[float],
                 programs: Optional[Set[str]], system: bool = True,
                 processes: bool = True) -> None:
        self.start, self.end, self.programs = start, end, programs
        self.system, self.processes = system, processes
        self.seen: Set[str] = set()  # program names met, to say so when --program matched none

    def time_ok(self, t: float) -> bool:
        return (self.start is None or t >= self.start) and (self.end is None or t <= self.end)

    def program_ok(self, name: str) -> bool:
        if self.programs is None:
            return True
        self.seen.add(name)
        return name in self.programs

    def unmatched(self) -> List[str]:
        """The --program names that matched no process of the recording."""
        return sorted((self.programs or set()) - self.seen)


def _host(tick: Tick) -> str:
    return str(tick.segment.header.get("host", "?")) if tick.segment is not None else "?"


def _system_values(s: System) -> Iterator[Tuple[str, int]]:
    for name, attr in SYSTEM_SERIES:
        value = getattr(s, attr)
        if value is not None:
            yield name, value


class Rows:
    """Turns ticks into export rows: (kind, time, host, ...), kind one of system (+ System),
    event (+ Event), process (+ Proc, whether to add the detail series), detail (+ Proc),
    exit (+ Proc, program)."""

    def __init__(self, flt: Filter) -> None:
        self.flt = flt
        self.names: Dict[Proc, str] = {}
        self.started = False  # the first tick in the window lists every live process

    def name(self, proc: Proc) -> str:
        name = self.names.get(proc)
        if name is None:
            name = self.names[proc] = program_name(proc.cmd, proc.comm)
        return name

    def ticks(self, tick: Tick) -> Iterator[tuple]:
        flt = self.flt
        for proc in tick.renamed:  # an exec: the next row names the new program
            self.names.pop(proc, None)
        if not flt.time_ok(tick.time):
            for proc in tick.exited:
                self.names.pop(proc, None)
            return
        t, host = tick.time, _host(tick)
        if flt.system:
            yield ("system", t, host, tick.system)
        for event in tick.events:
            yield ("event", event.time, host, event)
        if flt.processes:
            # dicts, not sets: membership tests, and rows in the log's order
            if not self.started:
                changed = dict.fromkeys(tick.procs.values())
            else:
                changed = dict.fromkeys(p for p, _ in tick.changes if p.exited is None)
            detail = dict.fromkeys(tick.details)
            for proc in changed:
                if flt.program_ok(self.name(proc)):
                    yield ("process", t, host, proc, proc in detail or not self.started)
            for proc in detail:
                if proc not in changed and proc.exited is None \
                        and flt.program_ok(self.name(proc)):
                    yield ("detail", t, host, proc)
            for proc in tick.exited:
                name = self.names.pop(proc, None) or program_name(proc.cmd, proc.comm)
                if flt.program_ok(name):
                    yield ("exit", t, host, proc, name)
        self.started = True


def _kill_fields(event) -> Tuple[Optional[int], str, Optional[int]]:
    victim = oom_victim(event.data)
    return victim.pid, victim.program, victim.rss_bytes


def _ticks(paths: Sequence[str], stats: ReadStats) -> Iterator[Tick]:
    for group in group_runs(paths):
        yield from replay(list(group), stats, Run())


# -- CSV and JSON lines ------------------------------------------------------------------------
def write_csv(paths: Sequence[str], flt: Filter, out: IO[str], stats: ReadStats) -> int:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    rows = Rows(flt)
    n = 0
    for tick in _ticks(paths, stats):
        for row in rows.ticks(tick):
            kind, t, host = row[0], row[1], csv_cell(row[2])
            when = iso(t)
            unix = f"{t:.3f}"
            if kind == "system":
                for name, value in _system_values(row[3]):
                    w.writerow((when, unix, host, name, "", "", value))
                    n += 1
            elif kind in ("process", "detail"):
                proc = row[3]
                name = rows.name(proc)
                series = PROCESS_SERIES if kind == "process" else ()
                if kind == "detail" or row[4]:
                    series = series + DETAIL_SERIES
                for sname, attr in series:
                    value = getattr(proc, attr)
                    if value is not None:
                        w.writerow((when, unix, host, sname, proc.pid, csv_cell(name), value))
                        n += 1
            elif kind == "exit":
                w.writerow((when, unix, host, "exit", row[3].pid, csv_cell(row[4]), 1))
                n += 1
            elif kind == "event" and row[3].kind == "oom_kill":
                pid, program, rss = _kill_fields(row[3])
                w.writerow((when, unix, host, "oom_kill", "" if pid is None else pid,
                            csv_cell(program), "" if rss is None else rss))
                n += 1
            elif kind == "event" and row[3].kind == "trigger":
                trig = trigger(t, row[3].data)
                if flt.program_ok(trig.program):
                    w.writerow((when, unix, host, f"trigger_{trig.outcome}",
                                "" if trig.pid is None else trig.pid,
                                safetext.csv_cell(trig.program),
                                "" if trig.value_bytes is None else trig.value_bytes))
                    n += 1
    return n


def write_jsonl(paths: Sequence[str], flt: Filter, out: IO[str], stats: ReadStats,
                labels: Optional[Dict[str, str]] = None) -> int:
    """JSON lines live in their own module (a versioned schema of their own)."""
    from memtrail import jsonl

    return jsonl.write_jsonl(paths, flt, out, stats, labels)


# -- OpenMetrics -------------------------------------------------------------------------------
class HostState:
    """What the OpenMetrics exposition needs for one host: the last tick's figures in the
    window, the window's extremes, and the largest processes/programs at that last tick."""

    def __init__(self) -> None:
        self.system: Optional[System] = None
        self.time: Optional[float] = None
        self.start: Optional[float] = None
        self.peak_used: Optional[int] = None
        self.low_available: Optional[int] = None
        self.stall_some_us = 0
        self.stall_full_us = 0
        self.kills: List[Tuple[float, Optional[int], str]] = []
        self.kill_count = 0
        self.triggers: Dict[Tuple[str, str, str], int] = {}  # (program, signal, result) -> n
        self.programs: Dict[str, Tuple[int, int]] = {}
        self.processes: List[Tuple[int, int, str]] = []


def _table(st: HostState, procs: Iterable[Proc], flt: Filter, top: int) -> None:
    """Programs and the largest processes of one process table, into the host's state."""
    programs: Dict[str, Tuple[int, int]] = {}
    rows: List[Tuple[int, int, str]] = []
    for proc in procs:
        name = program_name(proc.cmd, proc.comm)
        if not flt.program_ok(name):
            continue
        rss, count = programs.get(name, (0, 0))
        programs[name] = (rss + proc.rss, count + 1)
        rows.append((proc.rss, proc.pid, name))
    st.programs = programs
    st.processes = heapq.nlargest(top, rows)


def collect_state(paths: Sequence[str], flt: Filter, stats: ReadStats,
                  top: int = OM_TOP_PROCESSES) -> Dict[str, HostState]:
    """Per host: the window's figures, and the process table at its last sample (read once
    at the end: the replay's live table, or `top.state_at` when `--to` cuts the log)."""
    states: Dict[str, HostState] = {}
    for group in group_runs(paths):
        last: Optional[Tick] = None
        last_st: Optional[HostState] = None
        cut = False
        for tick in replay(list(group), stats, Run()):
            if not flt.time_ok(tick.time):
                cut = cut or (flt.end is not None and tick.time > flt.end)
                continue
            host = _host(tick)
            st = states.get(host)
            if st is None:
                st = states[host] = HostState()
            last, last_st = tick, st
            s = tick.system
            if st.start is None:
                st.start = tick.time
            st.time, st.system = tick.time, s
            used = s.used
            if used is not None and (st.peak_used is None or used > st.peak_used):
                st.peak_used = used
            if s.available is not None and (st.low_available is None
                                            or s.available < st.low_available):
                st.low_available = s.available
            st.stall_some_us += tick.psi_some_us or 0  # the model's deltas: never across
            st.stall_full_us += tick.psi_full_us or 0  # two recordings or a restart
            for event in tick.events:
                if event.kind == "oom_kill":
                    pid, program, _ = _kill_fields(event)
                    if flt.program_ok(program):
                        st.kill_count += 1
                        st.kills.append((event.time, pid, program))
                        del st.kills[:-top]
                elif event.kind == "trigger":
                    t = trigger(event.time, event.data)
                    if flt.program_ok(t.program):
                        key = (safetext.terminal(t.program), safetext.terminal(t.signal),
                               t.outcome)
                        st.triggers[key] = st.triggers.get(key, 0) + 1
        if last is None or last_st is None:
            continue
        if cut and flt.end is not None:
            _tick, procs, _gap = state_at(list(group), flt.end, ReadStats(), Run())
            _table(last_st, procs, flt, top)
        else:  # the replay is over: its live table is the last tick's
            _table(last_st, last.procs.values(), flt, top)
    return states


def _om_value(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    return repr(float(v))


class Exposition:
    """OpenMetrics text: families in order, each with TYPE, UNIT (if any), HELP, samples."""

    def __init__(self) -> None:
        self.families: Dict[str, Tuple[str, str, str, List[str]]] = {}

    def family(self, name: str, help_text: str, unit: str = "") -> None:
        if name not in self.families:
            self.families[name] = ("gauge", unit, help_text, [])

    def sample(self, name: str, labels: Dict[str, str], value: Optional[float]) -> None:
        if value is None:
            return
        label_text = ",".join(f'{k}="{label(v)}"' for k, v in labels.items())
        self.families[name][3].append(f"{name}{{{label_text}}} {_om_value(value)}")

    def text(self) -> str:
        out = []
        for name, (mtype, unit, help_text, samples) in self.families.items():
            if not samples:
                continue
            out.append(f"# TYPE {name} {mtype}")
            if unit:
                out.append(f"# UNIT {name} {unit}")
            out.append(f"# HELP {name} {help_text}")
            out.extend(samples)
        out.append("# EOF")
        return "\n".join(out) + "\n"


OM_SYSTEM = (
    ("memtrail_memory_total_bytes", "total", "MemTotal at the last sample."),
    ("memtrail_memory_used_bytes", "used", "MemTotal - MemAvailable at the last sample."),
    ("memtrail_memory_available_bytes", "available", "MemAvailable at the last sample."),
    ("memtrail_memory_cached_bytes", "cached", "Page cache (Cached) at the last sample."),
    ("memtrail_memory_shmem_bytes", "shmem", "Shmem (tmpfs, shared memory) at the last sample."),
    ("memtrail_memory_slab_bytes", "slab", "Kernel slab caches at the last sample."),
    ("memtrail_swap_used_bytes", "swap_used", "SwapTotal - SwapFree at the last sample."),
)


def write_openmetrics(paths: Sequence[str], flt: Filter, out: IO[str], stats: ReadStats,
                      top: int = OM_TOP_PROCESSES) -> int:
    states = collect_state(paths, flt, stats, top)
    ex = Exposition()
    for name, _, help_text in OM_SYSTEM:
        ex.family(name, help_text, "bytes")
    ex.family("memtrail_memory_peak_used_bytes", "Highest used memory in the window.", "bytes")
    ex.family("memtrail_memory_lowest_available_bytes", "Lowest MemAvailable in the window.",
              "bytes")
    ex.family("memtrail_memory_stall_some_seconds",
              "Time at least one task stalled on memory (PSI some) in the window.", "seconds")
    ex.family("memtrail_memory_stall_full_seconds",
              "Time all non-idle tasks stalled on memory (PSI full) in the window.", "seconds")
    ex.family("memtrail_oom_kills", "OOM kills the kernel reported in the window.")
    ex.family("memtrail_oom_kill_timestamp_seconds",
              "When the kernel killed this process (the last kills in the window).", "seconds")
    ex.family("memtrail_triggers",
              "Signals --trigger rules sent (result=sent) or held back, in the window.")
    ex.family("memtrail_window_start_timestamp_seconds", "First sample of the window.",
              "seconds")
    ex.family("memtrail_window_end_timestamp_seconds",
              "Last sample of the window: the time of the values above.", "seconds")
    ex.family("memtrail_program_rss_bytes",
              "Resident memory of all processes of a program at the last sample.", "bytes")
    ex.family("memtrail_program_processes", "Processes of a program at the last sample.")
    ex.family("memtrail_process_rss_bytes",
              f"Resident memory of the {top} largest processes at the last sample.", "bytes")
    for host in sorted(states):
        st = states[host]
        if st.system is None:
            continue
        base = {"host": host}
        if flt.system:
            for name, attr, _ in OM_SYSTEM:
                ex.sample(name, base, getattr(st.system, attr))
            ex.sample("memtrail_memory_peak_used_bytes", base, st.peak_used)
            ex.sample("memtrail_memory_lowest_available_bytes", base, st.low_available)
            if st.system.psi_some_us is not None:
                ex.sample("memtrail_memory_stall_some_seconds", base, st.stall_some_us / 1e6)
                ex.sample("memtrail_memory_stall_full_seconds", base, st.stall_full_us / 1e6)
        ex.sample("memtrail_oom_kills", base, st.kill_count)
        seen: Set[Tuple[str, str]] = set()
        for when, pid, program in reversed(st.kills):
            key = ("" if pid is None else str(pid), program)
            if key in seen:
                continue
            seen.add(key)
            ex.sample("memtrail_oom_kill_timestamp_seconds",
                      {"host": host, "pid": key[0], "program": program}, round(when, 3))
        for (program, signal, result), count in sorted(st.triggers.items()):
            ex.sample("memtrail_triggers", {"host": host, "program": program,
                                            "signal": signal, "result": result}, count)
        ex.sample("memtrail_window_start_timestamp_seconds", base, st.start)
        ex.sample("memtrail_window_end_timestamp_seconds", base, st.time)
        if flt.processes:
            for name in sorted(st.programs):
                rss, count = st.programs[name]
                ex.sample("memtrail_program_rss_bytes", {"host": host, "program": name}, rss)
                ex.sample("memtrail_program_processes", {"host": host, "program": name}, count)
            for rss, pid, name in st.processes:
                ex.sample("memtrail_process_rss_bytes",
                          {"host": host, "pid": str(pid), "program": name}, rss)
    text = ex.text()
    out.write(text)
    return text.count("\n")


# -- command -----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="memtrail export",
        description="Export a recording for other tools: CSV (long format), JSON lines (one "
                    "object per record) or OpenMetrics (the latest values, for node_exporter's "
                    "textfile collector). See docs/export.md.")
    ap.add_argument("paths", nargs="+", metavar="LOG",
                    help="log directory, segment file or .gz segment")
    ap.add_argument("--format", required=True, choices=("csv", "jsonl", "openmetrics"))
    ap.add_argument("--from", dest="start", metavar="TIME",
                    help="first time to export (as `top --at`: ISO, HH:MM[:SS], +90s, -5m)")
    ap.add_argument("--to", dest="end", metavar="TIME",
                    help="last time to export; openmetrics gives the values at this time")
    ap.add_argument("--program", action="append", metavar="NAME",
                    help="only these programs' process series (repeatable; names as in "
                         "`memtrail report`)")
    ap.add_argument("--no-system", action="store_true", help="leave out the system series")
    ap.add_argument("--no-processes", action="store_true",
                    help="leave out the per-process series")
    ap.add_argument("--top", type=int, default=OM_TOP_PROCESSES, metavar="N",
                    help=f"openmetrics: processes exposed one by one (default "
                         f"{OM_TOP_PROCESSES})")
    ap.add_argument("--label", action="append", metavar="KEY=VALUE",
                    help="jsonl: add `label_KEY` to every object (repeatable), e.g. "
                         "--label job=nova-tempest")
    ap.add_argument("--follow", action="store_true",
                    help="openmetrics: keep -o DIR/NAME.prom current from the live log "
                         "directory, for node_exporter's textfile collector (Prometheus "
                         "text format; docs/fleet.md)")
    ap.add_argument("--every", default="15s", metavar="SECONDS",
                    help="--follow: rewrite the file this often (default 15s; 500ms, 1m)")
    ap.add_argument("--programs", type=int, default=None, metavar="K",
                    help="--follow: programs shown by name, the rest as program=\"other\" "
                         "(default 10)")
    ap.add_argument("--units", type=int, default=None, metavar="K",
                    help="--follow: memory cgroups (units) shown, the largest (default 20)")
    ap.add_argument("--processes", type=int, default=0, metavar="N",
                    help="--follow: also the N largest processes, with a pid label "
                         "(default 0: a pid label is a new series per process)")
    ap.add_argument("-o", "--output", default="-", metavar="FILE",
                    help="output file (default: standard output); written atomically")
    return ap


def _seconds(text: str) -> float:
    """`15s`, `1m`, `500ms`, `2` -> seconds; ValueError if not a positive duration."""
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, factor in units:
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            value = float(text[: -len(suffix)]) * factor
            break
    else:
        value = float(text)
    if not value > 0 or math.isinf(value):
        raise ValueError(text)
    return value


def _follow(args: argparse.Namespace, prog: str) -> int:
    """`--follow`: the live textfile writer (textfile.py), after checking its arguments."""
    from memtrail import textfile

    problems = []
    if args.format != "openmetrics":
        problems.append("--follow needs --format openmetrics")
    if args.output == "-" or not args.output.endswith(".prom"):
        problems.append("--follow needs -o DIR/NAME.prom (the textfile collector reads *.prom)")
    if len(args.paths) != 1 or not os.path.isdir(args.paths[0]):
        problems.append("--follow needs one log directory (it follows rotation)")
    if args.start or args.end or args.program or args.no_system or args.no_processes:
        problems.append("--follow takes no --from/--to/--program/--no-system/--no-processes")
    try:
        every = _seconds(args.every)
    except ValueError:
        problems.append(f"--every {args.every}: expected a duration such as 15s, 1m, 500ms")
        every = 0.0
    for flag, value in (("--programs", args.programs), ("--units", args.units),
                        ("--processes", args.processes)):
        if value is not None and value < 0:
            problems.append(f"{flag} must be >= 0")
    if problems:
        print(f"{prog}: {problems[0]}", file=sys.stderr)
        return 2
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        print(f"{prog}: {out_dir}: no such directory", file=sys.stderr)
        return 2
    state = textfile.LiveState(
        programs=textfile.DEFAULT_PROGRAMS if args.programs is None else args.programs,
        units=textfile.DEFAULT_UNITS if args.units is None else args.units,
        processes=args.processes)
    try:
        return textfile.follow(args.paths[0], args.output, every, state)
    except LogError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2


def main(argv: List[str]) -> int:
    args = _parser().parse_args(glue_time_values(list(argv), ("--from", "--to")))
    prog = "memtrail export"
    if args.follow:
        return _follow(args, prog)
    if args.top < 1:
        print(f"{prog}: --top must be >= 1", file=sys.stderr)
        return 2
    try:
        _start, _end, (t_from, t_to) = times_in(args.paths, [args.start, args.end])
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if t_from is not None and t_to is not None and t_to < t_from:
        print(f"{prog}: --to {fmt_time(t_to)} is before --from {fmt_time(t_from)}",
              file=sys.stderr)
        return 2
    try:
        from memtrail.jsonl import parse_labels

        labels = parse_labels(args.label)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    flt = Filter(t_from, t_to, set(args.program) if args.program else None,
                 system=not args.no_system, processes=not args.no_processes)
    stats = ReadStats()
    try:
        with (contextlib.nullcontext(sys.stdout) if args.output == "-"
              else output.atomic_open(args.output, newline="")) as out:
            if args.format == "openmetrics":
                write_openmetrics(args.paths, flt, out, stats, args.top)
            elif args.format == "jsonl":
                write_jsonl(args.paths, flt, out, stats, labels)
            else:
                write_csv(args.paths, flt, out, stats)
    except OSError as exc:
        print(f"{prog}: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except LogError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if stats.problems:
        print(f"{prog}: reading problems: {stats.summary()}", file=sys.stderr)
    missing = flt.unmatched()
    if missing and flt.processes:
        known = sorted(flt.seen)
        print(f"{prog}: no process of program {', '.join(safetext.terminal(m) for m in missing)}"
              f" in the recording (programs, as `memtrail top --by program` names them: "
              f"{', '.join(safetext.terminal(k) for k in known[:20]) or 'none'}"
              f"{', ...' if len(known) > 20 else ''})", file=sys.stderr)
        return 1
    return 0
