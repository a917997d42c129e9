"""Replay reader records into the state of the machine, one tick at a time.

Every analyzer command (report, top, tail, diff, check, html, export) needs the same thing: "what
did the machine look like at time T", for every T, on logs that may be a day long. So the model
is a *streaming replay*: it keeps only the live state (the process table, the cgroups, the last
slab line) and hands out one `Tick` per `s` record. Nothing is copied per tick and nothing grows
with the length of the log: memory is proportional to the number of live processes.

Usage::

    stats = ReadStats()
    run = Run()
    for tick in replay(paths, stats, run):
        tick.time, tick.system.used          # bytes
        for proc in tick.procs.values(): ...  # the live table AT THIS TICK (do not keep it)
        tick.events, tick.changes, tick.exited, tick.gap
    run.ticks, run.gaps, run.peak_used ...    # summary, complete once the iterator is done

The `Tick.procs` / `Tick.cgroups` dicts are the model's own live tables: they are only valid
until the next tick is requested. Copy what you need (e.g. `sorted(tick.procs.values(), ...)`
keeps the `Proc` objects, which stay unchanged after they exit but keep changing while alive;
use `Proc.snapshot()` for a frozen copy).

For a live view (`tail -f`) use `Replayer` directly: `feed(record)` returns a completed tick
when a record starts the next one, `flush()` returns the pending tick once the caller knows the
tick's lines are all in (the sampler writes a tick in one write, so "end of file reached" is
enough).

All sizes in the model are **bytes** (the log stores KiB); times are Unix seconds (float).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from memtrail import progress, readahead
from memtrail.programs import program_name, title_args
from memtrail.reader import Figures, Packed, ReadStats, Record, Segment

KIB = 1024
# Records outside these times are corrupt (a flipped digit), not a clock: skip and count them.
TIME_MIN, TIME_MAX = 946684800.0, 4102444800.0  # 2000-01-01 .. 2100-01-01
# Within one sampler run, ticks further apart than this without a `gap` or `clock` event from
# the sampler cannot happen (it notices a stall on its monotonic clock and says so): such a
# tick is impossible data, skipped and counted, unless the next ticks confirm the new time.
FAR_S = 3600.0
HEADER_SLACK_S = 60.0  # a segment's first tick carries its header's time
CONFIRM_TICKS = 3  # consecutive ticks that agree on a moved clock make it the new timeline

# Data problems (Run.problems keys) and how the report words them.
PROBLEMS = {
    "bad_time": "record(s) dated outside 2000-2100 skipped",
    "time_backwards": "tick(s) dated before the tick they follow skipped",
    "time_far": "tick(s) dated far from their neighbours, with no gap or clock event, skipped",
    "far_from_header": "tick(s) dated far from their segment's header skipped",
    "clock_stepped": "clock step(s) without a clock event: later ticks taken as the new time",
    "bad_value": "negative or out-of-range value(s) ignored",
    "segment_twice": "segment(s) read twice (same header) skipped",
}

# System sample fields kept in `System`, by their names in the `s` record (docs/format.md).
_SYSTEM_FIELDS = (
    "mem_total mem_free mem_available buffers cached shmem slab sreclaimable sunreclaim "
    "swap_total swap_free committed_as unevictable mlocked anon_pages page_tables kernel_stack "
    "hugepages_total hugepage_size oom_kill pgmajfault psi_some_us psi_full_us nprocs "
    "tick_cpu_us tick_wall_us interval_ms percpu vmalloc_used zswap zsmalloc"
).split()
# Those that are KiB in the log and bytes in the model.
_KIB_FIELDS = frozenset(
    "mem_total mem_free mem_available buffers cached shmem slab sreclaimable sunreclaim "
    "swap_total swap_free committed_as unevictable mlocked anon_pages page_tables kernel_stack "
    "hugepage_size percpu vmalloc_used zswap zsmalloc".split()
)


# System fields that cannot exceed MemTotal (a larger value is corrupt data)
_CAPPED = ("available", "free", "cached", "shmem", "slab", "anon_pages", "mlocked",
           "unevictable", "page_tables", "kernel_stack", "percpu", "vmalloc_used", "zswap",
           "zsmalloc")
_ZEROS = itertools.repeat(0)

# `s` field names whose System attribute is named differently
_SYSTEM_ATTR = {"mem_total": "total", "mem_available": "available", "mem_free": "free"}

_DETAIL_FIELDS = {
    "d": ("rss_anon", "rss_file", "rss_shmem", "swap", "locked"),
    "D": ("pss", "pss_anon", "pss_file", "pss_shmem", "swap", "swap_pss"),
}


def available_estimate(values: dict) -> Optional[int]:
    """MemAvailable for a kernel that does not give it (before 3.14; RHEL 7's 3.10 has it):
    free memory plus the page cache and slab the kernel can reclaim. Shmem sits in Cached but
    is not reclaimable without swap, so it is taken out. The kernel's own figure also keeps
    back its reserves and part of the cache, so this errs high by those. Within [MemFree,
    MemTotal]; None without MemFree."""
    free = values.get("free")
    if free is None:
        return None
    cache = (values.get("buffers") or 0) + (values.get("cached") or 0) \
        - (values.get("shmem") or 0) + (values.get("sreclaimable") or 0)
    return min(free + max(cache, 0), values["total"])


@dataclass
class System:
    """One `s` record in bytes (None where the kernel lacked the field)."""

    time: float
    total: Optional[int] = None
    free: Optional[int] = None
    available: Optional[int] = None
    buffers: Optional[int] = None
    cached: Optional[int] = None
    shmem: Optional[int] = None
    slab: Optional[int] = None
    sreclaimable: Optional[int] = None
    sunreclaim: Optional[int] = None
    swap_total: Optional[int] = None
    swap_free: Optional[int] = None
    committed_as: Optional[int] = None
    unevictable: Optional[int] = None
    mlocked: Optional[int] = None
    anon_pages: Optional[int] = None
    page_tables: Optional[int] = None
    kernel_stack: Optional[int] = None
    hugetlb: Optional[int] = None  # hugepages_total * hugepage_size
    oom_kill: Optional[int] = None  # cumulative since boot
    pgmajfault: Optional[int] = None
    psi_some_us: Optional[int] = None  # cumulative since boot
    psi_full_us: Optional[int] = None
    nprocs: Optional[int] = None
    tick_cpu_us: Optional[int] = None
    tick_wall_us: Optional[int] = None
    interval_ms: Optional[int] = None
    # Logs from 2026-12-02 on (None before, and where the kernel lacks them): Percpu (4.14
    # on), VmallocUsed (5.3 on; 0 on 4.4-5.2), the zswap pool (5.19 on), zsmalloc's pages
    # (vmstat nr_zspages, 4.8 on: zram's compressed data, and zswap's when it uses zsmalloc)
    percpu: Optional[int] = None
    vmalloc_used: Optional[int] = None
    zswap: Optional[int] = None
    zsmalloc: Optional[int] = None


    @property
    def used(self) -> Optional[int]:
        """MemTotal - MemAvailable: what the kernel could not give back on demand."""
        if self.total is None or self.available is None:
            return None
        return self.total - self.available

    @property
    def swap_used(self) -> Optional[int]:
        if self.swap_total is None or self.swap_free is None:
            return None
        return self.swap_total - self.swap_free


class Proc:
    """One process identity (boot, pid, start) and its latest memory figures, in bytes.

    `rss`/`shared` come from `p` records; the `d` detail (`rss_anon`, `rss_file`, `rss_shmem`,
    `swap`, `locked`) and `D` PSS figures are None until the sampler recorded them for it
    (only the largest processes get them).
    """

    __slots__ = (
        "pid", "start", "ppid", "uid", "comm", "cmd", "cgroup", "memcg", "boot_id",
        "rss", "shared", "rss_anon", "rss_file", "rss_shmem", "swap", "locked",
        "pss", "pss_anon", "pss_file", "pss_shmem", "swap_pss", "pss_rss", "exited",
    )

    def __init__(self, pid: int, start: int, ppid: Optional[int] = None,
                 uid: Optional[int] = None, comm: str = "?", cmd: Optional[List[str]] = None,
                 cgroup: str = "", boot_id: str = "") -> None:
        self.pid = pid
        self.start = start
        self.ppid = ppid
        self.uid = uid
        self.comm = comm
        self.cmd: List[str] = cmd if cmd is not None else []
        self.cgroup = cgroup
        self.memcg = ""  # a hybrid host's v1 memory cgroup, when not `cgroup` (P's "mcg")
        self.boot_id = boot_id
        self.rss = 0
        self.shared = 0
        self.rss_anon: Optional[int] = None
        self.rss_file: Optional[int] = None
        self.rss_shmem: Optional[int] = None
        self.swap: Optional[int] = None
        self.locked: Optional[int] = None
        self.pss: Optional[int] = None
        self.pss_anon: Optional[int] = None
        self.pss_file: Optional[int] = None
        self.pss_shmem: Optional[int] = None
        self.swap_pss: Optional[int] = None
        self.pss_rss: Optional[int] = None  # its RSS when the last `D` was written
        self.exited: Optional[float] = None  # time it left the table (exit, reuse, keyframe)

    @property
    def key(self) -> Tuple[str, int, int]:
        """(boot_id, pid, start): the identity that survives PID reuse."""
        return (self.boot_id, self.pid, self.start)

    @property
    def cmdline(self) -> str:
        """The command line as one string (argv joined by spaces, a rewritten title's padding
        left out), or `[comm]` if unknown. Not yet terminal-safe: views pass it to safetext."""
        args = title_args(self.cmd)
        return " ".join(args) if args else f"[{self.comm}]"

    def snapshot(self) -> Proc:
        """A frozen copy (the live object keeps changing while the process lives)."""
        copy = Proc.__new__(Proc)
        for name in Proc.__slots__:
            setattr(copy, name, getattr(self, name))
        return copy

    def __repr__(self) -> str:
        return f"Proc(pid={self.pid}, comm={self.comm!r}, rss={self.rss})"


@dataclass
class Cgroup:
    """A memory cgroup (systemd unit, slice, container) and its latest figures, in bytes."""

    cgid: str
    path: str = "?"
    hier: str = "?"
    current: Optional[int] = None
    peak: Optional[int] = None  # memory.peak / max_usage_in_bytes as last reported
    oom: Optional[int] = None
    oom_kill: Optional[int] = None
    psi_some_us: Optional[int] = None
    psi_full_us: Optional[int] = None
    makeup: Optional[Dict[str, Optional[int]]] = None  # the last `m`, in bytes
    makeup_time: Optional[float] = None


@dataclass
class Event:
    """An `E` record (or a gap the model found): `kind` and its JSON details."""

    time: float
    kind: str
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OomVictim:
    """What an `oom_kill` event says of its victim, read once for every command."""

    pid: Optional[int]
    name: str  # the kernel's (comm, at most 15 characters)
    cmd: Optional[List[str]]  # the full command line the sampler knew, if it saw the process
    program: str  # grouped program name (programs.py), from cmd when known
    parts: Dict[str, Optional[int]]  # anon_bytes, file_bytes, shmem_bytes (None: not said)

    @property
    def rss_bytes(self) -> Optional[int]:
        """Resident size at the kill (the kernel's anon + file + shmem), None if not said."""
        known = [v for v in self.parts.values() if v is not None]
        return sum(known) if known else None

    @property
    def cmdline(self) -> str:
        args = title_args(self.cmd or [])
        return " ".join(args) if args else f"[{self.name}]"


# A PSS read describes a process only while its RSS stays near what it was then: the sampler
# reads PSS once a minute (a process whose RSS moved this far since is read again at the next
# status tick), and a process that grew 1 GiB since its read would show its old PSS beside
# its new RSS, and its growth as memory no process explains.
PSS_STALE_MIN = 4 << 20


def pss_current(proc: Proc) -> bool:
    """Whether the process's last PSS figures still describe it: its RSS is within an eighth
    (and at least 4 MiB) of the RSS they were read at (when that is known)."""
    if proc.pss is None:
        return False
    at = proc.pss_rss
    return at is None or abs(proc.rss - at) <= max(PSS_STALE_MIN, at >> 3)


def current_pss(proc: Proc) -> Optional[int]:
    """The process's PSS where it still describes it (pss_current), else None: what every
    view shows."""
    return proc.pss if pss_current(proc) else None


def oom_victim(data: dict) -> OomVictim:
    """Read an `oom_kill` event's details defensively (logs are untrusted input)."""
    cmd = data.get("cmd")
    cmd = [str(a) for a in cmd] if isinstance(cmd, list) and cmd else None
    name = data.get("name")
    name = name if isinstance(name, str) and name else "?"
    pid = data.get("pid")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) else None
    parts = {}
    for key in ("anon", "file", "shmem"):
        value = data.get(key + "_kib")
        parts[key + "_bytes"] = value * 1024 if isinstance(value, int) else None
    return OomVictim(pid, name, cmd, program_name(cmd, name) if cmd else name, parts)


@dataclass(frozen=True)
class OomRow:
    """One row of the kernel's own task table at a kill (docs/format.md, `oom_kill` `table`)."""

    pid: int
    uid: Optional[int]
    rss_bytes: int
    swap_bytes: Optional[int]
    oom_score_adj: Optional[int]
    name: str


def oom_table(data: dict) -> List[OomRow]:
    """The kernel's task table of an `oom_kill` event, largest first; rows of another shape are
    skipped (logs are untrusted input), items past the six known ones ignored."""
    rows = data.get("table")
    out: List[OomRow] = []
    if not isinstance(rows, list):
        return out
    for row in rows:
        if not isinstance(row, list) or len(row) < 6:
            continue
        pid, uid, rss, swap, adj, name = row[:6]
        if not isinstance(pid, int) or not isinstance(rss, int) or rss < 0:
            continue
        out.append(OomRow(
            pid, uid if isinstance(uid, int) else None, rss * 1024,
            swap * 1024 if isinstance(swap, int) and swap >= 0 else None,
            adj if isinstance(adj, int) else None, str(name)))
    out.sort(key=lambda r: -r.rss_bytes)
    return out


# Kernel memory parts of a v2 cgroup's stats, summed where the kernel (before 5.18) gave no
# `kernel` total; `slab` stands for its two halves when printed
_MEMCG_KERNEL_PARTS = ("kernel_stack", "pagetables", "sec_pagetables", "percpu", "vmalloc")
_LIMIT_NONE_KIB = 1 << 52  # "limit 9007199254740988kB": no limit set


def oom_memcg_memory(data: dict) -> Optional[Dict[str, Optional[int]]]:
    """What a memory cgroup's usage was made of at its OOM kill, in bytes, from the kernel's
    own report (`memcg_usage_kib`, `memcg_stat`, ...: docs/format.md): `usage`, `limit`
    (None: no limit), `anon`, `shmem` (tmpfs and shared memory: it stays charged after its
    processes die), `file` (page cache besides shmem), `kernel` (slab, stacks, page tables,
    per-CPU; v1: the kmem counter), `sock` (network buffers, v2). None for a part the kernel
    did not print, and None for a kill without any of it (a host-wide kill, a cut report).
    Logs are untrusted input: a value that is not a non-negative integer is not there."""
    def kib(value) -> Optional[int]:
        return value * 1024 if _kib_figure(value) else None

    raw = data.get("memcg_stat")
    stat = raw if isinstance(raw, dict) else {}

    def part(*names: str) -> Optional[int]:
        for name in names:  # v1's hierarchical total_ first: the limit counts the children
            value = kib(stat.get(name))
            if value is not None:
                return value
        return None

    usage, limit = kib(data.get("memcg_usage_kib")), kib(data.get("memcg_limit_kib"))
    if usage is None and not any(map(_kib_figure, stat.values())):
        return None  # nothing the kernel could have written
    if limit is not None and limit >= _LIMIT_NONE_KIB * 1024:
        limit = None
    shmem = part("total_shmem", "shmem")
    cache = part("file", "total_cache", "cache")
    kernel = part("kernel")
    if kernel is None:
        pieces = [part(name) for name in _MEMCG_KERNEL_PARTS]
        slab, reclaimable = part("slab"), part("slab_reclaimable")
        if slab is None and reclaimable is not None:
            slab = reclaimable + (part("slab_unreclaimable") or 0)
        known = [x for x in pieces + [slab] if x is not None]
        kernel = sum(known) if known else kib(data.get("memcg_kmem_kib"))
    return {
        "usage": usage, "limit": limit,
        "anon": part("anon", "total_rss", "rss"),
        "shmem": shmem,
        "file": max(cache - (shmem or 0), 0) if cache is not None else None,
        "kernel": kernel, "sock": part("sock"),
        "dirty": part("file_dirty", "total_dirty", "dirty"),
        "writeback": part("file_writeback", "total_writeback", "writeback"),
    }


def _kib_figure(value) -> bool:
    """A KiB figure of an event's JSON as a kernel could write it: a non-negative integer
    under 2**53 KiB. A hostile log's 400-digit value would overflow every view's float
    arithmetic."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 53


def oom_host_memory(data: dict) -> Optional[Dict[str, object]]:
    """The host's memory at a host-wide kill, in bytes, from the kernel's report (`host_mem`,
    `unreclaimable_slab`: docs/format.md): `anon` (the anonymous LRU less shmem, which lives
    there too), `shmem`, `file` (page cache), `slab`, `slab_unreclaimable`, `page_tables`,
    `free`, `dirty`, `writeback`, and `unreclaimable_slab` [(name, bytes)] largest first.
    None without `host_mem`; a value that is not a non-negative integer is not there."""
    raw = data.get("host_mem")
    if not isinstance(raw, dict) or not raw:
        return None

    def get(*names: str) -> Optional[int]:
        values = [raw.get(n) for n in names]
        return sum(values) * 1024 if all(map(_kib_figure, values)) else None

    shmem, anon_lru = get("shmem"), get("active_anon", "inactive_anon")
    slabs = []
    rows = data.get("unreclaimable_slab")
    for row in rows if isinstance(rows, list) else ():
        if isinstance(row, list) and len(row) >= 2 and isinstance(row[0], str) \
                and _kib_figure(row[1]):
            slabs.append((row[0], row[1] * 1024))
    return {
        "anon": max(anon_lru - (shmem or 0), 0) if anon_lru is not None else None,
        "shmem": shmem, "file": get("active_file", "inactive_file"),
        "slab": get("slab_reclaimable", "slab_unreclaimable"),
        "slab_unreclaimable": get("slab_unreclaimable"), "page_tables": get("pagetables"),
        "free": get("free"), "dirty": get("dirty"), "writeback": get("writeback"),
        "unreclaimable_slab": sorted(slabs, key=lambda r: -r[1])[:10],
    }


def oom_scope(data: dict) -> str:
    """"memcg" when the kill was inside a memory cgroup's limit (only that cgroup's tasks
    competed), else "host"."""
    constraint = data.get("constraint")
    if constraint == "CONSTRAINT_MEMCG" or data.get("memcg_oom") is True:
        return "memcg"
    if constraint is None and isinstance(data.get("oom_memcg"), str):
        return "memcg"
    return "host"


@dataclass
class Gap:
    """A stretch of time nobody was looking: "nothing happened" and "not looking" differ."""

    start: float
    end: float
    reason: str  # "missed ticks", "sampler restart", "reboot", "gap event: ENOSPC", ...

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Tick:
    """The state after one tick's records. `procs`/`cgroups`/`slabs` are live: valid until
    the next tick is requested.

    - `changes`: (proc, previous_rss_bytes) for every process whose RSS was written this tick
      (previous is 0 for one that appeared);
    - `exited`: processes that left the table at this tick (X, PID reuse, keyframe absence);
    - `renamed`: processes whose identity a `P` changed this tick (an exec: same pid and start,
      another command line or name); a view that keeps a name per process looks again;
    - `gap`: a gap that ends at this tick, if any;
    - `details`: processes that got a `d`/`D` detail line this tick;
    - `psi_some_us` / `psi_full_us`: microseconds of memory stall since the previous tick of
      the same sampler run (None at a run's first tick, or where the kernel has no PSI). The
      kernel's counters run since boot, so these deltas are the one place they are turned
      into stall time: every command adds them up rather than differencing on its own.
    """

    time: float
    system: System
    segment: Segment
    procs: Dict[int, Proc]
    cgroups: Dict[str, Cgroup]
    slabs: List[Tuple[str, int]]
    rss_total: int
    events: List[Event] = field(default_factory=list)
    changes: List[Tuple[Proc, int]] = field(default_factory=list)
    exited: List[Proc] = field(default_factory=list)
    renamed: List[Proc] = field(default_factory=list)
    details: List[Proc] = field(default_factory=list)
    gap: Optional[Gap] = None
    psi_some_us: Optional[int] = None
    psi_full_us: Optional[int] = None


@dataclass
class UnitPeak:
    """The highest memory a cgroup (unit) reached, kept after the cgroup is gone."""

    path: str
    peak: int = 0
    time: float = 0.0
    reported_peak: Optional[int] = None  # memory.peak / max_usage_in_bytes, when recorded
    oom_kills: int = 0  # steps of its oom_kill counter seen during the replay
    makeup: Optional[Dict[str, Optional[int]]] = None  # the last `m` at or before the peak
    makeup_time: Optional[float] = None


@dataclass
class Run:
    """Summary of everything replayed so far (one recording). Complete after the replay.

    Peaks are over ticks: `peak_used` with `peak_time` and the available memory then;
    `low_available` with `low_time`. PSI stall totals add up per-sampler-run deltas (the
    counters are cumulative since boot, so a reboot or restart is not counted as a stall).
    """

    paths: List[str] = field(default_factory=list)
    segments: List[str] = field(default_factory=list)
    hosts: List[str] = field(default_factory=list)
    boot_ids: List[str] = field(default_factory=list)
    sampler_runs: int = 0
    start: Optional[float] = None
    end: Optional[float] = None
    ticks: int = 0
    gaps: List[Gap] = field(default_factory=list)
    overruns: int = 0
    worst_overrun_ms: float = 0.0
    tick_errors: int = 0  # ticks the sampler lost to a bug of its own (`error` events)
    first_tick_error: Optional[dict] = None  # {"time", "error", "where"} of the first
    events: Dict[str, int] = field(default_factory=dict)  # kind -> count
    oom_kills: List[Event] = field(default_factory=list)
    oom_counter_total: int = 0  # sum of /proc/vmstat oom_kill steps seen between ticks
    cut_segments: List[str] = field(default_factory=list)  # ended without Z or rotate
    end_reason: Optional[str] = None  # the last Z reason, if the recording ended cleanly
    mem_total: Optional[int] = None
    peak_used: Optional[int] = None
    peak_time: Optional[float] = None
    peak_available: Optional[int] = None
    low_available: Optional[int] = None
    low_time: Optional[float] = None
    psi_some_us: int = 0
    psi_full_us: int = 0
    psi_seen: bool = False  # a tick had PSI: kernels before 4.20 (or without psi=1) have none
    available_estimated: bool = False  # a tick's MemAvailable was available_estimate's
    max_procs: int = 0
    sampler_cpu_us: int = 0
    interval_s: Optional[float] = None
    orphan_records: int = 0  # p/d/D/X for a pid with no identity (should not happen)
    unread_procs: int = 0  # most processes the sampler could not read at once (E unread)
    problems: Dict[str, int] = field(default_factory=dict)  # PROBLEMS key -> count
    rate_ticks: Dict[int, int] = field(default_factory=dict)  # interval_ms -> ticks
    rate_seconds: Dict[int, float] = field(default_factory=dict)  # interval_ms -> time at it
    rate_reasons: Dict[int, List[str]] = field(default_factory=dict)  # why it ticked so
    pss_rounds: int = 0  # `pss` events: rounds of PSS reads the sampler reported
    pss_reads: int = 0
    pss_kept: int = 0  # members of full rounds whose figures stood (their program was quiet)
    pss_skipped: Dict[int, str] = field(default_factory=dict)  # pid -> why, last said
    pss_denied: int = 0  # the most reads a round had refused (a sampler without root)
    sampler_unprivileged: bool = False  # a segment's sampler ran as a uid other than root
    units: Dict[str, UnitPeak] = field(default_factory=dict)  # cgroup path -> peak
    peak_mlocked: Optional[int] = None
    peak_unevictable: Optional[int] = None

    @property
    def span_s(self) -> float:
        return (self.end - self.start) if self.start is not None and self.end is not None \
            else 0.0

    @property
    def gap_s(self) -> float:
        return sum(g.seconds for g in self.gaps)

    @property
    def bad_times(self) -> int:
        """Records or ticks skipped for an impossible time or value (all kinds together)."""
        return sum(n for k, n in self.problems.items() if k != "clock_stepped")

    def problem(self, kind: str, n: int = 1) -> None:
        self.problems[kind] = self.problems.get(kind, 0) + n

    def add_gap(self, gap: Gap) -> Gap:
        """Record a gap, merged with any it overlaps: two reasons for one hole (a disk full
        and the missed ticks it caused) are one stretch of not recording, not two."""
        for old in self.gaps[-8:]:
            if gap.start <= old.end and gap.end >= old.start:
                old.start, old.end = min(old.start, gap.start), max(old.end, gap.end)
                if gap.reason not in old.reason.split("; "):
                    old.reason = f"{old.reason}; {gap.reason}"
                return old
        self.gaps.append(gap)
        return gap


def system_plan(seg: Segment) -> List[Tuple[str, int, int]]:
    """(System attribute, position in the segment's `s` record, bytes per unit): how its `s`
    lines read, worked out once per segment."""
    return [(_SYSTEM_ATTR.get(name, name), i, KIB if name in _KIB_FIELDS else 1)
            for name in _SYSTEM_FIELDS for i in (seg.index("s", name),) if i is not None]


def system_figures(fields: Sequence[str], plan: List[Tuple[str, int, int]]) -> Optional[dict]:
    """The usual `s` line's figures by System attribute, in bytes (one conversion pass), or
    None when a field is not a number or is negative: the model then reads that line field
    by field and counts what is wrong. Pure, so readahead's child can run it."""
    if "-" in fields:
        # a field this kernel lacks (PSI before 4.20, zswap before 5.19, ...): absent, not a
        # reason to read the line field by field
        try:
            nums = [None if f == "-" else int(f) for f in fields]
        except ValueError:
            return None
        if min((x for x in nums if x is not None), default=0) < 0:
            return None
        n = len(nums)
        return {attr: nums[i] * scale for attr, i, scale in plan
                if i < n and nums[i] is not None}
    try:
        nums = list(map(int, fields))
    except ValueError:
        return None
    if nums and min(nums) < 0:
        return None
    n = len(nums)
    return {attr: nums[i] * scale for attr, i, scale in plan if i < n}


def system_reader(seg: Segment, time: float) -> Optional[Callable[[List[str]], Optional[dict]]]:
    """How the replay will read `s` lines after this header, for a reader working ahead of it
    (readahead.py): their figures under the segment's plan, or None when the replay does not
    apply a header at that time (out of range: it keeps the last plan)."""
    if not TIME_MIN <= time <= TIME_MAX:
        return None
    plan = system_plan(seg)
    return lambda fields: system_figures(fields, plan)


def _gap_threshold(interval_s: float) -> float:
    """Time between ticks beyond which nobody was looking (overruns stretch a tick a bit)."""
    return max(3.0 * interval_s, interval_s + 2.0)


class Replayer:
    """Feed records, get ticks. Keeps the live tables and the `Run` summary up to date."""

    def __init__(self, run: Optional[Run] = None) -> None:
        self.run = run if run is not None else Run()
        self.procs: Dict[int, Proc] = {}
        self.cgroups: Dict[str, Cgroup] = {}
        self.slabs: List[Tuple[str, int]] = []
        self.rss_total = 0
        self.segment: Optional[Segment] = None
        self._tick: Optional[Tick] = None
        self._limit: Optional[int] = None  # _mem_limit() of the open tick
        self._pending_events: List[Event] = []
        self._pending_exited: List[Proc] = []  # removed between ticks (reboot, early X)
        self._keyframe_seen: Optional[set] = None
        self._last_tick_time: Optional[float] = None
        self._last_interval = 1.0
        self._run_key: Optional[tuple] = None
        self._boot = ""
        self._seg_closed = True
        self._pending_gap: Optional[Gap] = None
        self._psi_prev: Optional[Tuple[Optional[int], Optional[int]]] = None
        self._sys_plan: List[Tuple[str, int, int]] = []
        self._p_idx = (0, 1)
        self._detail_idx: Dict[str, List[Tuple[str, int]]] = {}
        self._d_rss: Optional[int] = None  # position of D's `rss` (None: an older sampler)
        self._headers_seen: set = set()
        self._skip_segment = False
        self._header_time: Optional[float] = None  # time of the current segment's header
        self._segment_ticks = 0  # ticks accepted since that header
        self._odd: List[float] = []  # times of consecutive skipped ticks that agree
        self._new_run = False  # the next tick is the first of a new sampler run
        self._prev_ms: Optional[int] = None  # interval of the last accepted tick

    # -- records -------------------------------------------------------------------------
    def feed(self, rec: Record) -> Optional[Tick]:
        """Apply one record; returns the previous tick when this record completes it."""
        rtype = rec.type
        if self._skip_segment and rtype != "H":
            return None
        if not TIME_MIN <= rec.time <= TIME_MAX:
            self.run.problem("bad_time")
            return None
        if rtype == "s":
            done = self._close_tick()
            self._open_tick(rec)
            return done
        if rtype == "p":
            self._on_p(rec)
        elif rtype == "P":
            self._on_P(rec)
        elif rtype == "X":
            pid = _int(rec.fields, 0)
            proc = self.procs.get(pid) if pid is not None else None
            if proc is None:
                self.run.orphan_records += 1
            else:
                self._remove(proc, rec.time)
        elif rtype == "d" or rtype == "D":
            self._on_detail(rec)
        elif rtype == "K":
            self._keyframe_seen = set()
        elif rtype == "c":
            self._on_c(rec)
        elif rtype == "m":
            self._on_m(rec)
        elif rtype == "C":
            cgid = rec.fields[0] if rec.fields else "?"
            obj = rec.obj or {}
            cg = self.cgroups.get(cgid)
            if cg is None:
                cg = self.cgroups[cgid] = Cgroup(cgid)
            cg.path = str(obj.get("path", cg.path))
            cg.hier = str(obj.get("hier", cg.hier))
        elif rtype == "G":
            if rec.fields:
                self.cgroups.pop(rec.fields[0], None)
        elif rtype == "b":
            self.slabs = _parse_slabs(rec.fields)
        elif rtype == "E":
            self._on_event(rec)
        elif rtype == "Z":
            self._seg_closed = True
            self.run.end_reason = str((rec.obj or {}).get("reason", "end"))
        elif rtype == "H":
            done = self._close_tick()
            self._on_header(rec)
            return done
        return None

    @property
    def pending_gap(self) -> Optional[Gap]:
        """A gap found at a segment start, before the tick that ends it has arrived."""
        return self._pending_gap

    def discard_pending(self) -> None:
        """Forget exits and events gathered outside any tick (a seek's catch-up, seek.py):
        the first tick replayed should not report them as its own. The replay joins the
        segment in its middle, so the header's time says nothing about that first tick."""
        self._pending_events = []
        self._pending_exited = []
        self._header_time = None

    def flush(self) -> Optional[Tick]:
        """The pending tick, complete (call at end of input or when a live file is drained)."""
        return self._close_tick()

    def finish(self) -> Optional[Tick]:
        """End of input: the pending tick, and the last segment's cut-short check."""
        done = self._close_tick()
        if self.segment is not None and not self._seg_closed:
            self.run.cut_segments.append(self.segment.path)
            self._seg_closed = True
        return done

    # -- segments ------------------------------------------------------------------------
    def _on_header(self, rec: Record) -> None:
        run = self.run
        header = rec.segment.header
        identity = (str(header.get("host")), str(header.get("boot_id")), header.get("started"),
                    header.get("pid"), rec.time, header.get("mono"))
        if identity in self._headers_seen:  # the same segment again (a copy, a path twice)
            run.problem("segment_twice")
            self._skip_segment = True
            return
        self._headers_seen.add(identity)
        if rec.segment.bad_header:
            run.problem("bad_value", rec.segment.bad_header)
        self._skip_segment = False
        self._header_time = rec.time
        self._segment_ticks = 0
        if self.segment is not None and not self._seg_closed:
            run.cut_segments.append(self.segment.path)
        seg = rec.segment
        self.segment = seg
        self._seg_closed = False
        header = seg.header
        run.segments.append(seg.path)
        host = str(header.get("host", "?"))
        if host not in run.hosts:
            run.hosts.append(host)
        boot = str(header.get("boot_id", ""))
        if boot not in run.boot_ids:
            run.boot_ids.append(boot)
        uid = header.get("uid")
        if isinstance(uid, int) and not isinstance(uid, bool) and uid != 0:
            run.sampler_unprivileged = True
        interval = header.get("interval_s")
        if isinstance(interval, (int, float)) and interval > 0:
            self._last_interval = float(interval)
            if run.interval_s is None:
                run.interval_s = float(interval)
        run_key = (host, boot, header.get("started"), header.get("pid"))
        if run_key != self._run_key:
            run.sampler_runs += 1
            if self._run_key is not None and self._last_tick_time is not None:
                reason = "reboot" if boot != self._boot else "sampler restart"
                self._pending_gap = Gap(self._last_tick_time, rec.time, reason)
            self._run_key = run_key
            self._new_run = True
            self._odd = []
            self.cgroups.clear()  # cgids are only valid within one sampler run
            self._psi_prev = None
        if boot != self._boot:
            for proc in list(self.procs.values()):
                self._remove(proc, rec.time)
            self._boot = boot
        self._sys_plan = system_plan(seg)
        self._p_idx = (seg.index("p", "rss") or 1, seg.index("p", "shared") or 2)
        self._detail_idx = {
            rtype: [(name, i) for name in names for i in (seg.index(rtype, name),)
                    if i is not None]
            for rtype, names in _DETAIL_FIELDS.items()}
        self._d_rss = seg.index("D", "rss")

    # -- ticks ---------------------------------------------------------------------------
    def _open_tick(self, rec: Record) -> None:
        system = self._parse_system(rec)
        seg = self.segment if self.segment is not None else rec.segment
        tick = Tick(rec.time, system, seg, self.procs, self.cgroups, self.slabs, 0,
                    events=self._pending_events, exited=self._pending_exited)
        self._pending_events = []
        self._pending_exited = []
        if system.interval_ms:
            self._last_interval = system.interval_ms / 1000.0
        last = self._last_tick_time
        if self._pending_gap is not None:
            tick.gap = self._pending_gap
            tick.gap.end = rec.time
            self._pending_gap = None
        elif last is not None and rec.time - last > _gap_threshold(self._last_interval):
            tick.gap = Gap(last, rec.time, "missed ticks")
        self._tick = tick
        self._limit = self._mem_limit()

    def _close_tick(self) -> Optional[Tick]:
        tick = self._tick
        if tick is None:
            return None
        if self._keyframe_seen is not None:
            seen = self._keyframe_seen
            self._keyframe_seen = None
            for pid in [p for p in self.procs if p not in seen]:
                self._remove(self.procs[pid], tick.time)  # lands in tick.exited
        self._tick = None
        self._limit = None
        bad = self._judge(tick)
        if bad:
            # Not a moment of the recording: its state changes stay applied (the table must
            # follow the log), its events and exits go to the next good tick, it is not a tick.
            self.run.problem(bad)
            self._pending_events = tick.events + self._pending_events
            self._pending_exited = tick.exited + self._pending_exited
            if tick.gap is not None and tick.gap.reason != "missed ticks":
                self._pending_gap = tick.gap  # a restart or reboot still ends at a good tick
            return None
        if tick.gap is not None:
            self._explain_gap(tick)
        tick.slabs = self.slabs
        tick.rss_total = self.rss_total
        self._new_run = False
        self._segment_ticks += 1
        self._account(tick)
        return tick

    def _judge(self, tick: Tick) -> Optional[str]:
        """None for a plausible tick, else the kind of data problem it is (PROBLEMS)."""
        t = tick.time
        last = self._last_tick_time
        kind = None
        if last is not None and not self._new_run:
            if t < last:
                kind = "time_backwards"
            elif t - last > FAR_S and not any(e.kind in ("gap", "clock") for e in tick.events):
                kind = "time_far"  # a jump no `gap` or `clock` event explains
        if kind is None:
            self._odd = []
            head = self._header_time
            if head is not None and (t < head - HEADER_SLACK_S or (
                    self._segment_ticks == 0 and t - head > HEADER_SLACK_S)):
                return "far_from_header"
            return None
        odd = self._odd
        if odd and 0 <= t - odd[-1] <= max(_gap_threshold(self._last_interval), 10.0):
            odd.append(t)
        else:
            self._odd = odd = [t]
        if len(odd) < CONFIRM_TICKS:
            return kind
        # Ticks keep agreeing on the moved time: the clock was stepped (an old sampler, or a
        # lost clock event). Take it as the new timeline; the skipped ticks stay counted.
        self._odd = []
        self.run.problem("clock_stepped")
        tick.gap = None
        self._last_tick_time = None
        self._header_time = None
        return None

    def _explain_gap(self, tick: Tick) -> None:
        """A hole between ticks: the sampler's `gap` event names it; a `clock` event that
        accounts for it means the wall clock moved while the sampler was looking (no gap)."""
        gap = tick.gap
        assert gap is not None
        if gap.reason == "missed ticks":
            for event in tick.events:
                jump = event.data.get("jump_s") if event.kind == "clock" else None
                if isinstance(jump, (int, float)) and \
                        gap.seconds - jump <= _gap_threshold(self._last_interval):
                    tick.gap = None
                    return
        tick.gap = self.run.add_gap(gap)

    def _account(self, tick: Tick) -> None:
        run = self.run
        system = tick.system
        run.ticks += 1
        prev = self._last_tick_time
        self._last_tick_time = tick.time
        if run.start is None or tick.time < run.start:
            run.start = tick.time
        if run.end is None or tick.time > run.end:
            run.end = tick.time
        ms = system.interval_ms or int(round(self._last_interval * 1000))
        run.rate_ticks[ms] = run.rate_ticks.get(ms, 0) + 1
        if prev is not None and tick.gap is None and tick.time > prev:
            pms = self._prev_ms if self._prev_ms is not None else ms
            run.rate_seconds[pms] = run.rate_seconds.get(pms, 0.0) + tick.time - prev
        self._prev_ms = ms
        if system.total is not None:
            run.mem_total = system.total
        used = system.used
        if used is not None and (run.peak_used is None or used > run.peak_used):
            run.peak_used, run.peak_time, run.peak_available = used, tick.time, system.available
        avail = system.available
        if avail is not None and (run.low_available is None or avail < run.low_available):
            run.low_available, run.low_time = avail, tick.time
        some, full = system.psi_some_us, system.psi_full_us
        if some is not None:
            run.psi_seen = True
        if self._psi_prev is not None:
            psome, pfull = self._psi_prev
            if some is not None and psome is not None and some >= psome:
                tick.psi_some_us = some - psome
                run.psi_some_us += tick.psi_some_us
            if full is not None and pfull is not None and full >= pfull:
                tick.psi_full_us = full - pfull
                run.psi_full_us += tick.psi_full_us
        self._psi_prev = (some, full)
        if system.tick_cpu_us:
            run.sampler_cpu_us += system.tick_cpu_us
        if system.mlocked is not None and (run.peak_mlocked is None
                                           or system.mlocked > run.peak_mlocked):
            run.peak_mlocked = system.mlocked
        if system.unevictable is not None and (run.peak_unevictable is None
                                               or system.unevictable > run.peak_unevictable):
            run.peak_unevictable = system.unevictable
        nprocs = len(self.procs)
        if nprocs > run.max_procs:
            run.max_procs = nprocs

    def _parse_system(self, rec: Record) -> System:
        if rec.__class__ is Figures:  # read ahead: system_figures() of this segment's plan
            values = rec.obj
        else:
            values = system_figures(rec.fields, self._sys_plan)
        corrupt = ()  # attributes whose field was there but not a figure
        if values is None:  # something else than the usual line: field by field
            fields = rec.fields
            n = len(fields)
            values = {}
            corrupt = set()
            for attr, i, scale in self._sys_plan:
                if i >= n:
                    continue
                raw = fields[i]
                if raw != "-":
                    try:
                        value = int(raw)
                    except ValueError:
                        corrupt.add(attr)
                        continue
                    if value < 0:
                        self.run.problem("bad_value")
                        corrupt.add(attr)
                        continue
                    values[attr] = value * scale
        # MemAvailable the kernel did not give (before 3.14), not one that was corrupt
        no_available = "available" not in values and "available" not in corrupt
        hp_total = values.pop("hugepages_total", None)
        hp_size = values.pop("hugepage_size", None)
        if hp_total is not None and hp_size is not None:
            values["hugetlb"] = hp_total * hp_size
        total = values.get("total")
        if total is not None and max(map(values.get, _CAPPED, _ZEROS)) > total:
            for name in _CAPPED:
                if values.get(name, 0) > total:
                    self.run.problem("bad_value")
                    del values[name]
        if no_available and total is not None:
            estimate = available_estimate(values)
            if estimate is not None:
                values["available"] = estimate
                self.run.available_estimated = True
        # Made without the dataclass's 28-argument __init__ (once a tick, 600,000 times a
        # week): a field the line lacks reads the class default, None.
        values["time"] = rec.time
        system = System.__new__(System)
        system.__dict__ = values
        return system

    # -- processes -----------------------------------------------------------------------
    def _on_P(self, rec: Record) -> None:
        f = rec.fields
        pid, start = _int(f, 0), _int(f, 1)
        if pid is None:
            return
        start = start if start is not None else -1
        obj = rec.obj or {}
        cmd = obj.get("cmd")
        cmd = [str(a) for a in cmd] if isinstance(cmd, list) else []
        comm = str(obj.get("comm", "?"))
        cgroup = str(obj.get("cg", "") or "")
        memcg = str(obj.get("mcg", "") or "")
        proc = self.procs.get(pid)
        if proc is not None and (proc.start == start or proc.start == -1):
            # A repeat at a segment start, or an exec: the same process, maybe a new program.
            # (Listed again if a log renames it twice in a tick: views take a rename twice
            # alike, and a membership test per line would be quadratic on a hostile log.)
            if (proc.cmd != cmd or proc.comm != comm) and self._tick is not None:
                self._tick.renamed.append(proc)
            proc.start, proc.comm, proc.cmd, proc.cgroup = start, comm, cmd, cgroup
            proc.ppid, proc.uid = _int(f, 2), _int(f, 3)
        else:
            if proc is not None:  # PID reused: the old one has gone
                self._remove(proc, rec.time)
            proc = Proc(pid, start, _int(f, 2), _int(f, 3), comm, cmd, cgroup, self._boot)
            self.procs[pid] = proc
        proc.memcg = memcg
        if self._keyframe_seen is not None:
            self._keyframe_seen.add(pid)

    def _on_p(self, rec: Record) -> None:
        f = rec.fields
        try:
            if self._p_idx == (1, 2) and len(f) == 3:
                pid, rss, shared = int(f[0]), int(f[1]), (int(f[2]) if f[2] != "-" else 0)
            else:
                pid = int(f[0])
                ri, si = self._p_idx
                rss = int(f[ri])
                shared_raw = f[si] if si < len(f) else "-"
                shared = int(shared_raw) if shared_raw != "-" else 0
        except (ValueError, IndexError):
            return
        self._set_packed(((pid, rss, shared),))

    def _set_packed(self, items: Sequence[Tuple[int, ...]]) -> None:
        """Packed lines (reader.read_packed): `p` figures (pid, rss KiB, shared KiB), or a `d`
        line's six ints. The hottest code of every command (most lines of a log are `p`): a
        tick's lines come in one call, the table's state in locals."""
        procs, seen, limit = self.procs, self._keyframe_seen, self._limit
        changes = self._tick.changes if self._tick is not None else None
        total = self.rss_total
        for item in items:
            if len(item) != 3:
                self._set_d(item)
                continue
            pid, rss, shared = item
            rss *= KIB
            shared *= KIB
            if rss < 0 or shared < 0 or shared > rss + (64 << 20) \
                    or (limit is not None and rss > limit):  # more than the machine has
                self.run.problem("bad_value")
                continue
            proc = procs.get(pid)
            if proc is None:
                self.run.orphan_records += 1
                proc = procs[pid] = Proc(pid, -1, boot_id=self._boot)
            old = proc.rss
            proc.rss = rss
            proc.shared = shared
            if seen is not None:
                seen.add(pid)
            if rss != old:
                total += rss - old
                if changes is not None:
                    changes.append((proc, old))
        self.rss_total = total

    def _mem_limit(self) -> Optional[int]:
        """No process holds more than memory plus swap: past it a figure is corrupt. Worked
        out once a tick (records are ten million a week)."""
        tick = self._tick
        system = tick.system if tick is not None else None
        if system is None or system.total is None:
            return None
        return system.total + (system.swap_total or 0)

    def _set_d(self, values: Sequence[int]) -> None:
        """A packed `d` line: pid, then the five sizes in V1's order, in KiB."""
        self._detail(values[0], zip(_DETAIL_FIELDS["d"], values[1:]))

    def _on_detail(self, rec: Record) -> None:
        fields = rec.fields
        n = len(fields)
        known = []  # (attribute, KiB) of the fields written as numbers (`-`: not known)
        for name, i in self._detail_idx.get(rec.type, ()):
            if i < n and fields[i] != "-":
                try:
                    known.append((name, int(fields[i])))
                except ValueError:
                    continue
        proc = self._detail(_int(fields, 0), known)
        if proc is not None and rec.type == "D" and proc.pss is not None:
            # The RSS the figures describe: written with them since D's `rss` field; before,
            # the RSS the process had then, when the replay knows it (a seek skips the `p`
            # lines a keyframe restates: unknown, and the figures are taken as current).
            at = _int(fields, self._d_rss) if self._d_rss is not None else None
            proc.pss_rss = at * KIB if at is not None and at >= 0 else (proc.rss or None)

    def _detail(self, pid: Optional[int], sizes: Iterable[Tuple[str, int]]) -> Optional[Proc]:
        """A `d` or `D` line's sizes (attribute, KiB) set on its process; an impossible one is
        counted and left out."""
        proc = self.procs.get(pid) if pid is not None else None
        if proc is None:
            self.run.orphan_records += 1
            return None
        limit = self._limit
        for name, value in sizes:
            value *= KIB
            if value < 0 or (limit is not None and value > limit):
                self.run.problem("bad_value")
                continue
            setattr(proc, name, value)
        if self._tick is not None:
            self._tick.details.append(proc)
        return proc

    def _remove(self, proc: Proc, time: float) -> None:
        if self.procs.get(proc.pid) is proc:
            del self.procs[proc.pid]
            self.rss_total -= proc.rss
        proc.exited = time
        if self._tick is None:
            self._pending_exited.append(proc)
        elif proc not in self._tick.exited:
            self._tick.exited.append(proc)

    # -- cgroups, events -----------------------------------------------------------------
    def _on_c(self, rec: Record) -> None:
        f = rec.fields
        if not f:
            return
        cgid = f[0]
        cg = self.cgroups.get(cgid)
        if cg is None:
            cg = self.cgroups[cgid] = Cgroup(cgid)
        cur = rec.int("current")
        if cur is not None:
            cg.current = cur * KIB
        peak = rec.int("peak")
        if peak is not None:
            cg.peak = peak * KIB
        old_kills = cg.oom_kill
        for name in ("oom", "oom_kill", "psi_some_us", "psi_full_us"):
            value = rec.int(name)
            if value is not None:
                setattr(cg, name, value)
        unit = self.run.units.get(cg.path)
        if unit is None:
            unit = self.run.units[cg.path] = UnitPeak(cg.path)
        if cg.current is not None and cg.current > unit.peak:
            unit.peak, unit.time = cg.current, rec.time
            unit.makeup, unit.makeup_time = cg.makeup, cg.makeup_time
        if cg.peak is not None and (unit.reported_peak is None or cg.peak > unit.reported_peak):
            unit.reported_peak = cg.peak
        if old_kills is not None and cg.oom_kill is not None and cg.oom_kill > old_kills:
            unit.oom_kills += cg.oom_kill - old_kills

    def _on_m(self, rec: Record) -> None:
        """A cgroup's make-up; the unit's peak takes it when read in the peak's own tick (an
        `m` follows the tick's `c` lines)."""
        cgid = rec.fields[0] if rec.fields else None
        cg = self.cgroups.get(cgid) if cgid is not None else None
        if cg is None:
            return
        values = [rec.int(name) for name in ("anon", "file", "shmem", "kernel", "sock")]
        anon, file, shmem, kernel, sock = (v * KIB if v is not None and v >= 0 else None
                                           for v in values)
        cg.makeup = {"anon_bytes": anon, "shmem_bytes": shmem,
                     "file_bytes": max(file - (shmem or 0), 0) if file is not None else None,
                     "kernel_bytes": kernel, "sock_bytes": sock}
        cg.makeup_time = rec.time
        unit = self.run.units.get(cg.path)
        if unit is not None and unit.time == rec.time:
            unit.makeup, unit.makeup_time = cg.makeup, rec.time

    def _on_event(self, rec: Record) -> None:
        kind = rec.fields[0] if rec.fields else "?"
        event = Event(rec.time, kind, rec.obj or {})
        run = self.run
        run.events[kind] = run.events.get(kind, 0) + 1
        if kind == "oom_kill":
            run.oom_kills.append(event)
        elif kind == "oom_counter":
            delta = event.data.get("delta")
            if isinstance(delta, int):
                run.oom_counter_total += delta
        elif kind == "error":
            run.tick_errors += 1
            if run.first_tick_error is None:
                data = event.data
                run.first_tick_error = {"time": event.time,
                                        "error": str(data.get("error", "?"))[:300],
                                        "where": str(data.get("where", "?"))[:100]}
        elif kind == "overrun":
            run.overruns += 1
            took = event.data.get("took_ms")
            if isinstance(took, (int, float)) and took > run.worst_overrun_ms:
                run.worst_overrun_ms = float(took)
        elif kind == "gap":
            start = event.data.get("from")
            end = event.data.get("to")
            if isinstance(start, (int, float)) and isinstance(end, (int, float)):
                reason = str(event.data.get("reason", "sampler gap"))
                # The model may already have found this hole from tick times: name it.
                tick = self._tick
                if tick is not None and tick.gap is not None:
                    tick.gap.reason = reason
                    tick.gap.start = min(tick.gap.start, float(start))
                elif start <= end:
                    run.add_gap(Gap(float(start), float(end), reason))
                else:
                    run.problem("bad_value")
        elif kind == "pss":
            run.pss_rounds += 1
            for key, count in (("read", "pss_reads"), ("kept", "pss_kept")):
                n = event.data.get(key)
                if isinstance(n, int) and not isinstance(n, bool) and 0 < n < 1 << 53:
                    setattr(run, count, getattr(run, count) + n)
            denied = event.data.get("denied")
            if isinstance(denied, int) and not isinstance(denied, bool) \
                    and denied > run.pss_denied:
                run.pss_denied = denied
            for key in ("skipped", "slow"):
                items = event.data.get(key)
                for item in items if isinstance(items, list) else ():
                    if isinstance(item, dict) and isinstance(item.get("pid"), int) \
                            and len(run.pss_skipped) < 100:
                        why = str(item.get("why", "?"))
                        run.pss_skipped[item["pid"]] = why if key == "skipped" else \
                            f"slow read ({why})"
        elif kind == "rate":
            ms = event.data.get("interval_ms")
            reason = event.data.get("reason")
            if isinstance(ms, int) and isinstance(reason, str):
                reasons = run.rate_reasons.setdefault(ms, [])
                if reason not in reasons and len(reasons) < 3:
                    reasons.append(reason)
        elif kind == "rotate":
            self._seg_closed = True
        elif kind == "unread":  # the sampler ran out of descriptors: a partial table
            procs = event.data.get("procs")
            if isinstance(procs, int) and procs > run.unread_procs:
                run.unread_procs = procs
        if self._tick is not None:
            self._tick.events.append(event)
        else:
            self._pending_events.append(event)


def _int(fields: List[str], i: int) -> Optional[int]:
    if i >= len(fields):
        return None
    raw = fields[i]
    if raw == "-":
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _parse_slabs(fields: List[str]) -> List[Tuple[str, int]]:
    out = []
    for item in fields:
        name, _, value = item.rpartition("=")
        if not name:
            continue
        try:
            out.append((name, int(value) * KIB))
        except ValueError:
            continue
    return out


def replay_records(records: Iterable[Packed], run: Optional[Run] = None) -> Iterator[Tick]:
    """Ticks from an iterable of records (`reader.read`), or of records and lists of packed
    `p` and `d` lines (`reader.read_packed`)."""
    rp = Replayer(run)
    feed, on_p, set_packed = rp.feed, rp._on_p, rp._set_packed
    live = False  # the last `s` record was in range, not skipped: its packed lines apply
    for rec in records:
        if rec.__class__ is list:  # packed `p` and `d` lines, at the last `s` record's time
            if live:
                set_packed(rec)
            elif not rp._skip_segment:
                rp.run.problem("bad_time", len(rec))  # what feed says of that time
            continue
        rtype = rec.type
        # Most records are `p` lines inside a tick: straight to their handler (feed's checks
        # in the same order), a call saved ten million times a week.
        if rtype == "p" and not rp._skip_segment and TIME_MIN <= rec.time <= TIME_MAX:
            on_p(rec)
            continue
        if rtype == "s":
            live = not rp._skip_segment and TIME_MIN <= rec.time <= TIME_MAX
        tick = feed(rec)
        if tick is not None:
            yield tick
    tick = rp.finish()
    if tick is not None:
        yield tick


def replay(paths: Sequence[str] | str, stats: Optional[ReadStats] = None,
           run: Optional[Run] = None) -> Iterator[Tick]:
    """Ticks of one recording made of `paths` (directories, segments, .gz), oldest first.

    Reading problems are counted in `stats`; the summary accumulates in `run` (pass one in to
    read it after the loop). Raises `reader.LogError` for a path that does not exist.
    """
    if isinstance(paths, str):
        paths = [paths]
    stats = stats if stats is not None else ReadStats()
    run = run if run is not None else Run()
    run.paths.extend(paths)
    # on a terminal, a long replay (a week of log) shows how far it is (progress.py)
    records = readahead.read_packed(paths, stats, system_reader)
    return progress.ticks(replay_records(records, run), paths)


class TrendTracker:
    """A time-weighted linear trend of a piecewise-constant series, in constant memory, and
    the measured values a person reads it by (first, last, highest, when the climb stopped).

    Growth ("leak suspects") must ignore short spikes and the wobble of a busy process: a least-
    squares line through the series, each value weighted by how long it held, gives a slope
    that a 20-second spike barely moves, and its fit (r squared) separates a steady climb from
    noise. Values are offset by the first one to keep the sums well conditioned.

    A climb that stops (a cache that filled, a leak that was fixed by a restart of a worker)
    is still worth reporting, but a line through climb and plateau fits neither. So the sums
    are also kept as they were at the last step up (`top`: the value rose past the previous
    step by more than the sampler's own change threshold, 1 MiB or 2%), and the climb alone can
    be fitted. The fitted line only decides *whether* something grew; the sizes shown are the
    measured ones.
    """

    __slots__ = ("t0", "v0", "last_t", "last_v", "w", "st", "sv", "stt", "stv", "svv", "n",
                 "peak", "top", "top_t", "climb")

    def __init__(self, time: float, value: int) -> None:
        self.t0 = time
        self.v0 = value
        self.last_t = time
        self.last_v = 0.0
        self.w = self.st = self.sv = self.stt = self.stv = self.svv = 0.0
        self.n = 1
        self.peak = value  # highest measured value
        self.top = value  # value at the last step up
        self.top_t = time  # when that step happened
        self.climb: Optional[Tuple[float, ...]] = None  # the sums (and n) at that step

    @property
    def first(self) -> int:
        return self.v0

    @property
    def last(self) -> int:
        return int(self.v0 + self.last_v)

    def _hold(self, until: float) -> Tuple[float, float, float, float, float, float]:
        """The sums with the last value held until `until` (not stored)."""
        dt = until - self.last_t
        if dt <= 0:
            return self.w, self.st, self.sv, self.stt, self.stv, self.svv
        a, b, v = self.last_t - self.t0, until - self.t0, self.last_v
        # integrals of 1, t, t^2 over [a, b] times the constant value
        i1, it, itt = dt, (b * b - a * a) / 2, (b ** 3 - a ** 3) / 3
        return (self.w + i1, self.st + it, self.sv + v * i1, self.stt + itt,
                self.stv + v * it, self.svv + v * v * i1)

    def update(self, time: float, value: int) -> None:
        # _hold() inlined: this runs for every RSS change of a day-long log.
        a = self.last_t - self.t0
        b = time - self.t0
        dt = b - a
        if dt > 0:
            v = self.last_v
            it = (b * b - a * a) / 2
            self.w += dt
            self.st += it
            self.sv += v * dt
            self.stt += (b * b * b - a * a * a) / 3
            self.stv += v * it
            self.svv += v * v * dt
            self.last_t = time
        self.last_v = float(value - self.v0)
        self.n += 1
        if value > self.peak:
            self.peak = value
            top = self.top
            if value - top > max(1 << 20, top // 50):
                self.top, self.top_t = value, time
                self.climb = (self.w, self.st, self.sv, self.stt, self.stv, self.svv,
                              float(self.n))

    @staticmethod
    def _line(sums, t0: float, v0: int, end: float):
        w, st, sv, stt, stv, svv = sums
        if w <= 0:
            return None
        mt, mv = st / w, sv / w
        var_t = stt / w - mt * mt
        var_v = svv / w - mv * mv
        if var_t <= 0:
            return None
        cov = stv / w - mt * mv
        slope = cov / var_t
        r2 = (cov * cov) / (var_t * var_v) if var_v > 0 else 0.0
        start_v = mv - slope * mt + v0
        end_v = start_v + slope * (end - t0)
        resid = max(var_v - cov * cov / var_t, 0.0) ** 0.5
        return slope, start_v, end_v, min(r2, 1.0), resid

    def fit(self, end: float) -> Optional[Tuple[float, float, float, float]]:
        """(slope per second, value at t0, value at end, r squared), or None if too short."""
        if self.n < 3:
            return None
        line = self._line(self._hold(end), self.t0, self.v0, end)
        return None if line is None else line[:4]

    def fit_climb(self) -> Optional[Tuple[float, float, float, float, float, int]]:
        """The same line through the series up to its last step up only: (slope, value at t0,
        value at that step, r squared, wobble around the line, values), or None."""
        if self.climb is None:
            return None
        n = int(self.climb[6])
        line = self._line(self.climb[:6], self.t0, self.v0, self.top_t)
        return None if line is None or n < 3 else (*line, n)

    def residual_std(self, end: float) -> float:
        """Standard deviation of the series around its line (the wobble)."""
        w, st, sv, stt, stv, svv = self._hold(end)
        if w <= 0:
            return 0.0
        mt, mv = st / w, sv / w
        var_t = stt / w - mt * mt
        var_v = svv / w - mv * mv
        if var_t <= 0:
            return max(var_v, 0.0) ** 0.5
        cov = stv / w - mt * mv
        return max(var_v - cov * cov / var_t, 0.0) ** 0.5
