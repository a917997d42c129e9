"""`memtrail export LOGDIR --format openmetrics --follow -o DIR/memtrail.prom`: live figures for
node_exporter's textfile collector (and Grafana Alloy's), kept current from the live log.

No daemon and no port of ours: the sampler keeps writing its log, this follows it (across
rotation, like `memtrail tail -f`) and rewrites one file every `--every` seconds, which the
collector reads at each scrape. What node_exporter's collector/textfile.go asks of that file,
and how it is met:

- it reads only names ending in `.prom`, at any moment: the file is written whole under a
  temporary name that does not end in `.prom` (`.memtrail.prom.tmp`), fsynced, then renamed
  over the old one, so a scrape sees the previous version or the new one, never half of one;
- it parses the **Prometheus text format** (expfmt.TextParser), not OpenMetrics. So this file
  is the text format: a counter's family is named by its sample (`# TYPE x_total counter`, the
  text-format way; OpenMetrics would say `# TYPE x counter` and the text parser would then
  take `x_total` for another, untyped metric), no `# UNIT`, no `# EOF` (both only comments
  there). The one-shot `export --format openmetrics` stays OpenMetrics: it has no counters;
- a sample with a timestamp makes it drop the whole file: there are none;
- HELP must agree across files, so every family has one fixed HELP and TYPE line.

Cardinality is bounded by default: system figures, PSI, the top K programs by RSS plus
`program="other"`, the top K units (memory cgroups), OOM kills by (program, unit), and the
sampler's health. Per-process series (a pid label: a new series per process) only on request.

Counts such as `memtrail_oom_kills_total` run "since the recording began": from the first
segment of the sampler run the newest segment belongs to (what `run` names in the JSON lines),
replayed once at start before the first write, so restarting this writer never makes a counter
jump. A new sampler run starts them again from zero, which Prometheus treats as a reset.
When this writer stops, the file stays: its `memtrail_last_tick_timestamp_seconds` then ages
and the shipped "recorder stale" alert fires, as it does when the sampler stops.
"""

from __future__ import annotations

import heapq
import signal
import sys
import time
from typing import IO, Dict, List, Optional, Tuple

from memtrail import output, reader, safetext
from memtrail.model import Proc, Replayer, Tick, oom_victim
from memtrail.programs import program_name
from memtrail.reader import LogError, ReadStats
from memtrail.report import _run_key
from memtrail.tail import Follower
from memtrail.triggers import trigger

DEFAULT_EVERY = 15.0
DEFAULT_PROGRAMS = 10
DEFAULT_UNITS = 20

# name -> (type, help). Order is the file's order.
FAMILIES: Dict[str, Tuple[str, str]] = {
    "memtrail_recording_info": ("gauge", "The recording these figures come from (value 1)."),
    "memtrail_recording_start_timestamp_seconds": (
        "gauge", "When the sampler run that made this recording started."),
    "memtrail_last_tick_timestamp_seconds": (
        "gauge", "Time of the newest sample read from the log; alert on its age."),
    "memtrail_last_tick_age_seconds": (
        "gauge", "Age of the newest sample when this file was written."),
    "memtrail_sampler_interval_seconds": ("gauge", "The sampler's current tick interval."),
    "memtrail_sampler_overruns_total": (
        "counter", "Ticks that took longer than the interval, since the recording began."),
    "memtrail_sampler_gaps_total": (
        "counter", "Stretches nobody was recording, since the recording began."),
    "memtrail_sampler_gap_seconds_total": (
        "counter", "Seconds nobody was recording, since the recording began."),
    "memtrail_memory_total_bytes": ("gauge", "MemTotal."),
    "memtrail_memory_used_bytes": ("gauge", "MemTotal - MemAvailable."),
    "memtrail_memory_available_bytes": ("gauge", "MemAvailable."),
    "memtrail_memory_cached_bytes": ("gauge", "Page cache (Cached)."),
    "memtrail_memory_shmem_bytes": ("gauge", "Shmem (tmpfs, shared memory)."),
    "memtrail_memory_slab_bytes": ("gauge", "Kernel slab caches."),
    "memtrail_swap_used_bytes": ("gauge", "SwapTotal - SwapFree."),
    "memtrail_memory_peak_used_bytes": (
        "gauge", "Highest used memory since the recording began."),
    "memtrail_memory_lowest_available_bytes": (
        "gauge", "Lowest MemAvailable since the recording began."),
    "memtrail_memory_pressure_some_seconds_total": (
        "counter", "Time some tasks stalled on memory (PSI some), since the recording began."),
    "memtrail_memory_pressure_full_seconds_total": (
        "counter", "Time all non-idle tasks stalled on memory (PSI full), since the "
                   "recording began."),
    "memtrail_processes": ("gauge", "Processes in the table."),
    "memtrail_program_rss_bytes": (
        "gauge", "Resident memory of all processes of a program (top programs by RSS, the "
                 "rest as program=\"other\")."),
    "memtrail_program_processes": (
        "gauge", "Processes of a program (as memtrail_program_rss_bytes)."),
    "memtrail_unit_memory_bytes": (
        "gauge", "Memory charged to a memory cgroup (systemd unit), the largest units."),
    "memtrail_oom_kills_total": (
        "counter", "Processes the kernel OOM killer killed since the recording began, by "
                   "program and memory cgroup."),
    "memtrail_oom_kill_last_timestamp_seconds": (
        "gauge", "When the kernel last killed a process of this program and cgroup."),
    "memtrail_kernel_oom_kills_total": (
        "counter", "Steps of the kernel's oom_kill counter since the recording began (also "
                   "kills the sampler could not read a kernel log line for)."),
    "memtrail_process_rss_bytes": ("gauge", "Resident memory of the largest processes."),
    "memtrail_triggers_total": (
        "counter", "--trigger firings since the recording began, by program, signal and result "
                   "(result=\"sent\": signals sent; the others were held back)."),
}

SYSTEM = (
    ("memtrail_memory_total_bytes", "total"), ("memtrail_memory_used_bytes", "used"),
    ("memtrail_memory_available_bytes", "available"), ("memtrail_memory_cached_bytes", "cached"),
    ("memtrail_memory_shmem_bytes", "shmem"), ("memtrail_memory_slab_bytes", "slab"),
    ("memtrail_swap_used_bytes", "swap_used"), ("memtrail_processes", "nprocs"),
)


def _num(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(round(float(value), 6))


class LiveState:
    """What the file shows, updated one tick at a time (bounded: live tables are the model's,
    kills are counted per label set)."""

    def __init__(self, programs: int = DEFAULT_PROGRAMS, units: int = DEFAULT_UNITS,
                 processes: int = 0) -> None:
        self.top_programs, self.top_units, self.top_processes = programs, units, processes
        self.names: Dict[Proc, str] = {}
        self.run_key: Optional[tuple] = None
        self.tick: Optional[Tick] = None
        self._reset({})

    def _reset(self, header: dict) -> None:
        self.header = header
        self.peak_used: Optional[int] = None
        self.low_available: Optional[int] = None
        self.psi_some_us = 0
        self.psi_full_us = 0
        self.overruns = 0
        self.gaps = 0
        self.gap_seconds = 0.0
        self.kernel_kills = 0
        self.kills: Dict[Tuple[str, str], List[float]] = {}  # (program, unit) -> [n, last]
        self.triggers: Dict[Tuple[str, str, str], int] = {}  # (program, signal, result) -> n

    def name(self, proc: Proc) -> str:
        name = self.names.get(proc)
        if name is None:
            name = self.names[proc] = program_name(proc.cmd, proc.comm)
        return name

    def add(self, tick: Tick) -> None:
        header = tick.segment.header if tick.segment is not None else {}
        key = (header.get("host"), header.get("boot_id"), header.get("started"))
        new_run = key != self.run_key
        if new_run:
            self.run_key = key
            self._reset(header)
        self.tick = tick
        for proc in tick.renamed:  # an exec: its series carry the new program's name
            self.names.pop(proc, None)
        s = tick.system
        if s.used is not None and (self.peak_used is None or s.used > self.peak_used):
            self.peak_used = s.used
        if s.available is not None and (self.low_available is None
                                        or s.available < self.low_available):
            self.low_available = s.available
        self.psi_some_us += tick.psi_some_us or 0
        self.psi_full_us += tick.psi_full_us or 0
        if tick.gap is not None and not new_run:
            self.gaps += 1
            self.gap_seconds += max(tick.gap.seconds, 0.0)
        for event in tick.events:
            if event.kind == "oom_kill":
                victim = oom_victim(event.data)
                unit = event.data.get("task_memcg") or event.data.get("oom_memcg") or ""
                slot = self.kills.setdefault((victim.program, str(unit)), [0, 0.0])
                slot[0] += 1
                slot[1] = event.time
            elif event.kind == "oom_counter":
                delta = event.data.get("delta")
                if isinstance(delta, int) and delta > 0:
                    self.kernel_kills += delta
            elif event.kind == "overrun":
                self.overruns += 1
            elif event.kind == "trigger":
                t = trigger(event.time, event.data)
                key = (t.program, t.signal, t.result)
                self.triggers[key] = self.triggers.get(key, 0) + 1
        for proc in tick.exited:
            self.names.pop(proc, None)

    # -- the file ------------------------------------------------------------------------
    def render(self, now: float) -> str:
        """The whole file, Prometheus text format (see the module docstring)."""
        samples: Dict[str, List[str]] = {name: [] for name in FAMILIES}

        def put(name: str, labels: Dict[str, str], value: Optional[float]) -> None:
            if value is None:
                return
            text = ",".join(f'{k}="{safetext.label(v)}"' for k, v in labels.items())
            samples[name].append(f"{name}{{{text}}} {_num(value)}" if text
                                 else f"{name} {_num(value)}")

        tick = self.tick
        if tick is not None:
            h = self.header
            put("memtrail_recording_info", {
                "host": str(h.get("host", "?")), "boot_id": str(h.get("boot_id", "?")),
                "sampler": str(h.get("sampler", "?"))}, 1)
            started = h.get("started")
            if isinstance(started, (int, float)):
                put("memtrail_recording_start_timestamp_seconds", {}, round(started, 3))
            put("memtrail_last_tick_timestamp_seconds", {}, round(tick.time, 3))
            put("memtrail_last_tick_age_seconds", {}, round(max(now - tick.time, 0.0), 3))
            s = tick.system
            interval = s.interval_ms / 1000 if s.interval_ms else h.get("interval_s")
            if isinstance(interval, (int, float)):
                put("memtrail_sampler_interval_seconds", {}, float(interval))
            put("memtrail_sampler_overruns_total", {}, self.overruns)
            put("memtrail_sampler_gaps_total", {}, self.gaps)
            put("memtrail_sampler_gap_seconds_total", {}, round(self.gap_seconds, 3))
            for name, attr in SYSTEM:
                put(name, {}, getattr(s, attr))
            put("memtrail_memory_peak_used_bytes", {}, self.peak_used)
            put("memtrail_memory_lowest_available_bytes", {}, self.low_available)
            if s.psi_some_us is not None:
                put("memtrail_memory_pressure_some_seconds_total", {}, self.psi_some_us / 1e6)
                put("memtrail_memory_pressure_full_seconds_total", {}, self.psi_full_us / 1e6)
            self._programs(tick, put)
            units = [(cg.current, cg.path) for cg in tick.cgroups.values()
                     if cg.current is not None]
            for current, path in heapq.nlargest(self.top_units, units):
                put("memtrail_unit_memory_bytes", {"unit": path}, current)
            for (program, unit), (count, last) in sorted(self.kills.items()):
                labels = {"program": program, "unit": unit}
                put("memtrail_oom_kills_total", labels, count)
                put("memtrail_oom_kill_last_timestamp_seconds", labels, round(last, 3))
            put("memtrail_kernel_oom_kills_total", {}, self.kernel_kills)
            for (program, signal, result), count in sorted(self.triggers.items()):
                put("memtrail_triggers_total",
                    {"program": program, "signal": signal, "result": result}, count)
        out: List[str] = []
        for name, (mtype, help_text) in FAMILIES.items():
            if samples[name]:
                out.append(f"# HELP {name} {help_text}")
                out.append(f"# TYPE {name} {mtype}")
                out.extend(samples[name])
        return "\n".join(out) + "\n" if out else ""

    def _programs(self, tick: Tick, put) -> None:
        totals: Dict[str, List[int]] = {}
        for proc in tick.procs.values():
            slot = totals.get(self.name(proc))
            if slot is None:
                totals[self.name(proc)] = [proc.rss, 1]
            else:
                slot[0] += proc.rss
                slot[1] += 1
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1][0], kv[0]))
        other = [0, 0]
        for i, (name, (rss, count)) in enumerate(ranked):
            if i < self.top_programs and name != "other":
                put("memtrail_program_rss_bytes", {"program": name}, rss)
                put("memtrail_program_processes", {"program": name}, count)
            else:
                other[0] += rss
                other[1] += count
        if other[1]:
            put("memtrail_program_rss_bytes", {"program": "other"}, other[0])
            put("memtrail_program_processes", {"program": "other"}, other[1])
        if self.top_processes:
            rows = heapq.nlargest(self.top_processes,
                                  ((p.rss, p.pid, p) for p in tick.procs.values()),
                                  key=lambda r: (r[0], r[1]))
            for rss, pid, proc in rows:
                put("memtrail_process_rss_bytes", {"pid": str(pid), "program": self.name(proc)},
                    rss)


def write_atomic(path: str, text: str) -> None:
    """Write `path` whole: a temporary name the collector ignores, fsync, rename, fsync the
    directory (so a crash never leaves an empty or half file under the real name)."""
    output.write_text(path, text, 0o644)  # the collector runs as another user


def first_segment_of_run(logdir: str) -> str:
    """The first segment of the sampler run that wrote the newest one (the recording)."""
    files = reader.segments(logdir)
    if not files:
        raise LogError(f"{logdir}: no memtrail segments (memtrail-*.log[.gz]) here")
    newest = _run_key(files[-1])
    first = files[-1]
    for path in reversed(files[:-1]):
        if newest is None or _run_key(path) != newest:
            break
        first = path
    return first


class Live:
    """Follows a log directory and keeps a LiveState current; `poll()` reads what is there."""

    def __init__(self, logdir: str, state: LiveState, idle_flush: float = 0.3) -> None:
        self.logdir = logdir
        self.state = state
        self.stats = ReadStats()
        self.follower = Follower(first_segment_of_run(logdir), logdir, self.stats)
        self.replayer = Replayer()
        self.idle_flush = idle_flush
        self.pending = False
        self.last_data = time.monotonic()
        self.caught_up = False  # every segment up to the newest has been read to its end

    def poll(self) -> bool:
        """Read everything available now (switching segments on rotation); True if any."""
        got = False
        while True:
            for rec in self.follower.records():
                got = self.pending = True
                tick = self.replayer.feed(rec)
                if tick is not None:
                    self.state.add(tick)
            nxt = self.follower.next_segment()
            if nxt is None:
                break
            self.follower.switch(nxt)
        now = time.monotonic()
        if got:
            self.last_data = now
        if self.pending and not self.follower.buf and now - self.last_data >= self.idle_flush:
            # The sampler writes a tick in one write: input drained for a while = complete.
            tick = self.replayer.flush()
            if tick is not None:
                self.state.add(tick)
            self.pending = False
        # Every segment was read to its end: counts now start from the recording's beginning
        # (a test of "a poll read nothing" would never pass while a fast sampler writes).
        self.caught_up = True
        return got


def follow(logdir: str, output: str, every: float, state: LiveState,
           stop_after: Optional[int] = None, poll: float = 0.2,
           err: IO[str] = sys.stderr) -> int:
    """Keep `output` current until SIGTERM/SIGINT (or `stop_after` writes, for tests)."""
    while not reader.segments(logdir):  # the sampler has not written its first tick yet
        time.sleep(poll)
    live = Live(logdir, state)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    writes = 0
    next_write = 0.0
    while not stopping:
        live.poll()
        now = time.monotonic()
        if live.caught_up and state.tick is not None and now >= next_write:
            if live.pending:  # give the tick being written a moment to complete
                time.sleep(live.idle_flush)
                live.poll()
            try:
                write_atomic(output, state.render(time.time()))
            except OSError as exc:
                print(f"memtrail export: cannot write {output}: {exc.strerror or exc}",
                      file=err)
                return 2
            writes += 1
            if stop_after is not None and writes >= stop_after:
                break
            next_write = now + every
        time.sleep(min(poll, every))
    return 0
