"""`memtrail report`: the story of a recording in one command.

The order of the sections is the order of a person's questions after an incident: was anything
recording (span, gaps), how bad did it get (peak, lowest available, pressure), did the kernel
kill something and what was running then (OOM kills with the table just before), who held the
memory at the worst moment (programs, grouped), who kept growing (leak suspects), what no
process explains (slab, shmem, page tables), which unit peaked, who locked memory.

`analyze()` builds one JSON-ready dict per recording in a single streaming pass (docs/report-json.md
is its schema); text and markdown are two views of that dict, so the three outputs can never
disagree. `diff` and `check` reuse `analyze()`.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from memtrail import __version__, safetext
from memtrail.model import (
    PROBLEMS,
    Proc,
    Run,
    Tick,
    TrendTracker,
    current_pss,
    oom_host_memory,
    oom_memcg_memory,
    oom_scope,
    oom_table,
    oom_victim,
    pss_current,
    replay,
)
from memtrail.programs import program_name
from memtrail.reader import LogError, ReadStats, check_paths, read_path
from memtrail.safetext import markdown as md
from memtrail.safetext import shorten, terminal, tree
from memtrail.timeparse import iso
from memtrail.triggers import MAX_LISTED, Trigger, describe, from_row, trigger
from memtrail.units import fmt_bytes, fmt_duration

SCHEMA = "memtrail.report/1"
MiB = 1 << 20
TOP_BEFORE_OOM = 10
OOM_TABLE_SHOWN = 1000  # rows of a kill's table in the JSON (the sampler keeps at most 1000)
MAX_GROWERS = 10
GROWTH_MIN_BYTES = 4 * MiB  # below this nothing is a leak suspect
GROWTH_MIN_R2 = 0.6  # how straight the climb must be (noise and one-off steps score low)
GROWTH_MIN_T = 5.0  # t statistic of the slope: a few wobbling samples are not a trend
GROWTH_MIN_SPAN_FRACTION = 0.1  # a leak suspect lived at least this share of the recording
MAX_GROWER_CANDIDATES = 50


def locked_figures(run: Run, rows) -> dict:
    """System-wide Mlocked beside the processes' VmLck, with why they need not agree."""
    procs = sorted(rows, key=lambda r: -r["locked_bytes"])
    top = procs[0]["locked_bytes"] if procs else 0
    mlocked = run.peak_mlocked
    note = None
    if procs and mlocked is not None and top > mlocked:
        note = (f"pid {procs[0]['pid']} shows more locked memory ({fmt_bytes(top)}) than the "
                f"system ever had mlocked ({fmt_bytes(mlocked)}): a process's VmLck is the size "
                "of its locked mappings, including pages never touched (mlockall with "
                "MCL_ONFAULT, as memtrail itself uses, locks pages only as they fault in) and "
                "pages other processes share; Mlocked counts locked pages in memory, once.")
    elif procs and mlocked and sum(r["locked_bytes"] for r in procs) < mlocked / 2:
        note = ("most mlocked memory is not in the processes listed: VmLck is read only for "
                "the largest processes (the status tier), so smaller processes that lock "
                "memory are not listed.")
    return {"peak_mlocked_bytes": mlocked, "peak_unevictable_bytes": run.peak_unevictable,
            "processes": procs, "note": note}


def _steady(growth: float, r2: float, wobble: float, n: int) -> bool:
    """A fitted line that climbs enough, straight enough, over enough values to be a trend."""
    if growth < GROWTH_MIN_BYTES or r2 < GROWTH_MIN_R2 or growth < 2 * wobble or n < 4:
        return False
    t_stat = (r2 * (n - 2) / (1 - r2)) ** 0.5 if r2 < 1 else float("inf")
    return t_stat >= GROWTH_MIN_T


# -- per-process rows --------------------------------------------------------------------------
# Parts of kernel memory recorded since 2026-12-02: shown where the log has them
LATE_PARTS = (("percpu_bytes", "per-CPU"), ("vmalloc_bytes", "vmalloc beyond stacks"),
              ("compressed_bytes", "compressed (zram, zswap)"))
AVAILABLE_ESTIMATED = ("available estimated: the kernel gave no MemAvailable (before 3.14), so "
                       "MemFree + Buffers + Cached - Shmem + SReclaimable, which overstates it "
                       "by the kernel's own reserves")
PSI_NONE = ("not recorded: the kernel gave no /proc/pressure/memory (Linux before 4.20, or "
            "booted without psi=1)")


def private_part(rss: int, shared: int, pss_anon: Optional[int],
                 pss: Optional[int] = None) -> int:
    """A process's own memory: its proportional share of anonymous pages (Pss_Anon) where the
    sampler read smaps_rollup, else RSS minus its file/shmem part. The fallback counts a page
    a forked child still shares with its parent (copy-on-write) once per process; PSS divides
    it between them, so a forking server's workers are not counted N times.

    Kernels before 5.7 (Ubuntu 20.04's 5.4, RHEL 8's 4.18) give PSS without Pss_Anon. PSS is
    Pss_Anon plus the process's shares of file and shmem pages, and RSS minus shared is its
    anonymous RSS, so each is at least Pss_Anon: the lesser of the two is the closest bound
    from above, and still divides a forked worker's shared pages."""
    if pss_anon is not None:
        return pss_anon
    if pss is not None:
        return max(min(rss - shared, pss), 0)
    return max(rss - shared, 0)


def pss_text(g: dict) -> str:
    """A program's PSS as measured: the sum, marked `(2 of 4)` when not every member was
    read, `-` when none was."""
    if g.get("pss_bytes") is None:
        return "-"
    count, got = g.get("count"), g.get("pss_count")
    partial = got is not None and count is not None and got < count
    return fmt_bytes(g["pss_bytes"]) + (f" ({got} of {count})" if partial else "")


def _proc_row(proc: Proc, rss: int, name: Optional[str] = None) -> dict:
    return {
        "pid": proc.pid,
        "name": name or program_name(proc.cmd, proc.comm),
        "comm": proc.comm,
        "rss_bytes": rss,
        "pss_bytes": current_pss(proc),
        "swap_bytes": proc.swap,
        "cmdline": proc.cmd,
        "cgroup": proc.cgroup or None,
    }


def _text_or_none(value: object) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _int_or_none(value: object) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _in_cgroup(path: Optional[str], root: str) -> bool:
    """Whether a process's cgroup is `root` or below it."""
    if not path:
        return False
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def _invoker(data: dict) -> dict:
    """Who asked for memory when none was left (the kernel's `X invoked oom-killer:` line)."""
    return {"name": str(data.get("name", "?")), "pid": _int_or_none(data.get("pid")),
            "gfp_mask": _text_or_none(data.get("gfp_mask")),
            "order": _int_or_none(data.get("order")),
            "oom_score_adj": _int_or_none(data.get("oom_score_adj"))}


class _Snapshot:
    """The process table at one tick, as cheap tuples (identity is the Proc object)."""

    __slots__ = ("time", "used", "system", "slabs", "rows")

    def __init__(self, tick: Tick) -> None:
        self.time = tick.time
        self.used = tick.system.used
        self.system = tick.system
        self.slabs = list(tick.slabs)
        # PSS figures that no longer describe the process (it grew or shrank far since they
        # were read) count as not read: its program's PSS is then partial, its private
        # memory RSS minus shared, never its old size.
        self.rows = [(p, p.rss, p.shared, p.pss, p.swap, p.pss_anon) if pss_current(p)
                     else (p, p.rss, p.shared, None, p.swap, None)
                     for p in tick.procs.values()]


class Analysis:
    """Consumes ticks, keeps bounded state, and returns the report dict with `result()`.

    A caller that never shows some parts need not pay for them (most of a week's analysis is
    per RSS change): `growth=False` leaves `growers` and `group_growers` empty (no trend is
    fitted), `peaks=False` also leaves `program_peaks` empty (no per-program totals kept per
    change), `programs=False` also `programs` and `unexplained` (no table kept at the peak).
    `check` without `--max-program` needs none of them; `fleet` and `diff` need no growth,
    jsonl's summary no per-program peaks either."""

    def __init__(self, ungroup: bool = False, top: int = 10, growth: bool = True,
                 programs: bool = True, peaks: bool = True) -> None:
        self.ungroup = ungroup
        self.top = top
        self.programs = programs
        self.peaks = peaks and programs
        self.growth = growth and self.peaks
        self.names: Dict[Proc, str] = {}
        self.snapshot: Optional[_Snapshot] = None
        self.oom: List[dict] = []
        self.triggers: List[Trigger] = []  # the first MAX_LISTED `E trigger` events
        self.triggers_total = 0
        self.trackers: Dict[Proc, TrendTracker] = {}
        self.finished_growers: List[Tuple[int, int, dict]] = []  # min-heap on growth
        self.group_totals: Dict[str, int] = {}
        self.members: Dict[Proc, str] = {}  # live processes counted in group_counts
        self.group_counts: Dict[str, int] = {}
        self.group_peaks: Dict[str, list] = {}  # name -> [peak bytes, count then, time, max n]
        self.group_trackers: Dict[str, TrendTracker] = {}
        self.locked: Dict[Tuple[str, int, int], dict] = {}
        self.run: Optional[Run] = None  # the replay's summary: its start and end are the span
        self.window: Optional[float] = None
        self._seq = 0

    def name(self, proc: Proc) -> str:
        name = self.names.get(proc)
        if name is None:
            name = self.names[proc] = program_name(proc.cmd, proc.comm)
        return name

    # -- the pass ------------------------------------------------------------------------
    def add(self, tick: Tick, run: Run) -> None:
        if self.run is None:
            self.run = run
            interval = run.interval_s or 1.0
            self.window = max(30.0, 10.0 * interval)  # shortest life worth a trend
        time = tick.time
        used = tick.system.used
        snap = self.snapshot
        if self.programs and used is not None and (
                snap is None or snap.used is None
                or used > snap.used + max(MiB, snap.used // 1000)
                or (used > snap.used and time - snap.time > 300)):
            self.snapshot = _Snapshot(tick)
        if tick.events:
            for event in tick.events:
                if event.kind == "oom_kill":
                    self._oom(tick, event)
                elif event.kind == "trigger":
                    self.triggers_total += 1
                    if len(self.triggers) < MAX_LISTED:
                        self.triggers.append(trigger(event.time, event.data))
        if tick.renamed:
            self._renamed(tick, time)
        if tick.changes and self.peaks:
            assert self.window is not None
            self._grow(tick.changes, time)
        for proc in tick.exited:
            self._exit(proc, time)
        for proc in tick.details:
            if proc.locked:
                self._locked(proc)

    def _renamed(self, tick: Tick, time: float) -> None:
        """Processes that exec'd: their memory moves to the new program's total from this
        tick (before its own changes are counted, so at the RSS it had before them)."""
        before = {proc: old for proc, old in tick.changes} if tick.changes else {}
        names, members, counts = self.names, self.members, self.group_counts
        delta: Dict[str, int] = {}
        for proc in tick.renamed:
            names.pop(proc, None)
            old_name = members.pop(proc, None)
            if old_name is None:  # not counted anywhere yet: its first change does it
                continue
            rss = before.get(proc, proc.rss)
            name = members[proc] = self.name(proc)
            counts[old_name] = counts.get(old_name, 1) - 1
            counts[name] = counts.get(name, 0) + 1
            delta[old_name] = delta.get(old_name, 0) - rss
            delta[name] = delta.get(name, 0) + rss
        self._programs_moved(delta, time)

    def _grow(self, changes: List[Tuple[Proc, int]], time: float) -> None:
        """One tick's RSS changes: each process's trend, then each program's total once. The
        totals between two lines of one tick were never a state of the machine (only the
        tick's last one is), so a program's peak and trend look at the tick's end."""
        trackers, names, members, counts = self.trackers, self.names, self.members, \
            self.group_counts
        growth = self.growth
        delta: Dict[str, int] = {}
        for proc, old in changes:
            rss = proc.rss
            if growth:
                tracker = trackers.get(proc)
                if tracker is None:
                    trackers[proc] = TrendTracker(time, rss)
                else:
                    tracker.update(time, rss)
            name = members.get(proc)  # the name it is counted under, once it is a member
            if name is None:
                name = names.get(proc)
                if name is None:
                    name = names[proc] = program_name(proc.cmd, proc.comm)
                members[proc] = name
                counts[name] = counts.get(name, 0) + 1
            delta[name] = delta.get(name, 0) + rss - old
        self._programs_moved(delta, time)

    def _programs_moved(self, delta: Dict[str, int], time: float) -> None:
        """Programs' totals moved by `delta` (counts already current): their peaks and trends."""
        totals, peaks, group_trackers = self.group_totals, self.group_peaks, \
            self.group_trackers
        counts, growth = self.group_counts, self.growth
        for name, change in delta.items():
            total = totals[name] = totals.get(name, 0) + change
            count = counts[name]
            peak = peaks.get(name)
            if peak is None:
                peaks[name] = [total, count, time, count]
            else:
                if total > peak[0]:
                    peak[0], peak[1], peak[2] = total, count, time
                if count > peak[3]:
                    peak[3] = count
            if growth:
                gt = group_trackers.get(name)
                if gt is None:
                    group_trackers[name] = TrendTracker(time, total)
                else:
                    gt.update(time, total)

    def _exit(self, proc: Proc, time: float) -> None:
        if not self.peaks:
            self.names.pop(proc, None)
            return
        tracker = self.trackers.pop(proc, None)
        name = self.names.pop(proc, None) or program_name(proc.cmd, proc.comm)
        if tracker is not None:
            self._finish_grower(proc, tracker, time, name)
        if self.members.pop(proc, None) is not None:
            self.group_counts[name] = self.group_counts.get(name, 1) - 1
        total = self.group_totals.get(name, 0) - proc.rss
        self.group_totals[name] = total
        gt = self.group_trackers.get(name)
        if gt is not None:
            gt.update(time, total)

    def _trend(self, tracker: TrendTracker, end: float) -> Optional[dict]:
        """Measured growth figures if the series climbed steadily enough to be a leak suspect
        (the whole life in the recording, or a climb that then stopped)."""
        assert self.window is not None and self.run is not None
        duration = end - tracker.t0
        start = self.run.start
        span_so_far = end - (start if start is not None else end)
        if duration < self.window or duration < GROWTH_MIN_SPAN_FRACTION * span_so_far:
            return None
        first, last, top = tracker.first, tracker.last, tracker.top
        if last - first < GROWTH_MIN_BYTES:
            return None  # measured: it did not end much higher than it began
        interval = self.run.interval_s or 1.0
        flat = end - tracker.top_t
        stopped = (tracker.climb is not None and last >= top - max(MiB, top // 50)
                   and flat >= max(0.1 * duration, 3 * interval))
        chosen = None
        fit = tracker.fit(end)
        if fit is not None and _steady(fit[2] - fit[1], fit[3], tracker.residual_std(end),
                                       tracker.n):
            chosen = (fit[0], fit[3], "whole")
        if chosen is None and stopped and tracker.top_t - tracker.t0 >= self.window:
            climb = tracker.fit_climb()
            if climb is not None and _steady(climb[2] - climb[1], climb[3], climb[4], climb[5]):
                chosen = (climb[0], climb[3], "climb")
        if chosen is None:
            return None
        slope, r2, part = chosen
        growing_s = (tracker.top_t if stopped else end) - tracker.t0
        reached = top if stopped else last
        return {"growth_bytes": last - first, "first_bytes": first, "last_bytes": last,
                "max_bytes": tracker.peak, "from_bytes": first, "to_bytes": last,
                "growing_rate_bytes_per_hour": int((reached - first) / growing_s * 3600)
                if growing_s > 0 else None,
                "rate_bytes_per_hour": int(slope * 3600), "fit_r2": round(r2, 3),
                "fitted_over": part,
                "grew_until": iso(tracker.top_t) if stopped else None,
                "flat_s": round(flat, 3) if stopped else None,
                "since": iso(tracker.t0), "until": iso(end), "duration_s": round(duration, 3)}

    def _finish_grower(self, proc: Proc, tracker: TrendTracker, end: float, name: str) -> None:
        trend = self._trend(tracker, end)
        if trend is None:
            return
        row = {"name": name, "pid": proc.pid, **trend, "cmdline": proc.cmd,
               "exited": proc.exited is not None}
        growth = trend["growth_bytes"]
        self._seq += 1
        item = (growth, self._seq, row)
        if len(self.finished_growers) < MAX_GROWER_CANDIDATES:
            heapq.heappush(self.finished_growers, item)
        else:
            heapq.heappushpop(self.finished_growers, item)

    def _locked(self, proc: Proc) -> None:
        key = proc.key
        row = self.locked.get(key)
        if row is None:
            if len(self.locked) >= 1000:
                return
            row = self.locked[key] = {"pid": proc.pid, "name": self.name(proc),
                                      "locked_bytes": 0, "cmdline": proc.cmd}
        if proc.locked and proc.locked > row["locked_bytes"]:
            row["locked_bytes"] = proc.locked

    def _oom(self, tick: Tick, event) -> None:
        """A kill and the processes that competed for the memory it freed: for a kill inside a
        memory cgroup's limit, that cgroup's processes (the kernel's own table when it printed
        one, else the cgroup's members in the sample just before); for a host-wide kill, the
        host's largest. The host's largest are kept apart for a cgroup kill, labelled."""
        data = event.data
        pid = data.get("pid")
        # The table just before this tick: undo this tick's changes, bring back who left.
        before: Dict[Proc, int] = {p: p.rss for p in tick.procs.values()}
        for proc, old in tick.changes:
            if old:
                before[proc] = old
            else:
                before.pop(proc, None)
        for proc in tick.exited:
            before[proc] = proc.rss
        by_pid = {p.pid: p for p in before}
        victim = by_pid.get(pid) if isinstance(pid, int) else None
        said = oom_victim(data)
        cmd = said.cmd or (victim.cmd if victim is not None and victim.cmd else None)
        rss = said.rss_bytes
        if rss is None and victim is not None:
            rss = before.get(victim)
        name = _text_or_none(data.get("name")) or (victim.comm if victim else None)
        scope = oom_scope(data)
        memcg = _text_or_none(data.get("oom_memcg")) or _text_or_none(data.get("task_memcg"))
        if scope == "memcg" and memcg is None and victim is not None and victim.cgroup:
            memcg = victim.cgroup  # the kernel did not say: the victim's cgroup as sampled
        kernel = oom_table(data)
        table = [self._kernel_row(r, by_pid.get(r.pid)) for r in kernel[:OOM_TABLE_SHOWN]]
        host = [_proc_row(p, r, self.name(p)) for p, r in heapq.nlargest(
            TOP_BEFORE_OOM, before.items(), key=lambda kv: kv[1])]
        if table:
            top, source = table[:TOP_BEFORE_OOM], "kernel"
        elif scope == "memcg" and memcg is not None:
            # the v1 memory path too: on a hybrid host the kernel names that one
            members = [(p, r) for p, r in before.items() if _in_cgroup(p.cgroup, memcg)
                       or _in_cgroup(p.memcg, memcg) or p is victim]
            top = [_proc_row(p, r, self.name(p)) for p, r in heapq.nlargest(
                TOP_BEFORE_OOM, members, key=lambda kv: kv[1])]
            source = "cgroup"
        elif scope == "memcg":
            top, source = [], "none"  # no cgroup known: the host's list is not its context
        else:
            top, source = host, "host"
        invoker = data.get("invoker")
        self.oom.append({
            "time": iso(event.time), "t": event.time, "pid": said.pid, "name": name,
            # always a name to group by: the program when the command line is known, else
            # the kernel's (or the table's) process name
            "program": program_name(cmd, said.name) if cmd else (name or "?"),
            "cmdline": cmd, "rss_bytes": rss, **said.parts,
            "uid": _int_or_none(data.get("uid")),
            "oom_score_adj": _int_or_none(data.get("oom_score_adj")),
            "constraint": _text_or_none(data.get("constraint")),
            "oom_memcg": _text_or_none(data.get("oom_memcg")),
            "task_memcg": _text_or_none(data.get("task_memcg")),
            "scope": scope, "memcg": memcg if scope == "memcg" else None,
            "source": _text_or_none(data.get("source")),
            "invoker": _invoker(invoker) if isinstance(invoker, dict) else None,
            "top": top, "top_source": source,
            "host_top": host if scope == "memcg" else None,
            "table": table,
            "table_rows": _int_or_none(data.get("table_rows")) if table else None,
            "table_capped": bool(data.get("table_capped")) if table else None,
            "memcg_memory": _memcg_memory(data),
            "host_memory": _host_memory(data),
        })

    def _kernel_row(self, row, proc: Optional[Proc]) -> dict:
        """A row of the kernel's table joined to the process the sampler knew by that pid."""
        cmd = proc.cmd if proc is not None and proc.cmd else None
        return {
            "pid": row.pid,
            "name": self.name(proc) if cmd else row.name,
            "comm": row.name,
            "rss_bytes": row.rss_bytes,
            "pss_bytes": current_pss(proc) if proc is not None else None,
            "swap_bytes": row.swap_bytes,
            "cmdline": cmd,
            "cgroup": (proc.cgroup or None) if proc is not None else None,
            "uid": row.uid,
            "oom_score_adj": row.oom_score_adj,
        }

    # -- results -------------------------------------------------------------------------
    def _programs(self, snap: _Snapshot) -> List[dict]:
        groups: Dict[str, dict] = {}
        for proc, rss, shared, pss, swap, pss_anon in snap.rows:
            name = self.name(proc) if not self.ungroup else f"{self.name(proc)}[{proc.pid}]"
            g = groups.get(name)
            if g is None:
                g = groups[name] = {"name": name, "count": 0, "rss_bytes": 0,
                                    "private_bytes": 0, "pss_bytes": None, "pss_count": 0,
                                    "swap_bytes": None, "largest": None, "_largest": -1}
            g["count"] += 1
            g["rss_bytes"] += rss
            g["private_bytes"] += private_part(rss, shared, pss_anon, pss)
            if pss is not None:
                g["pss_bytes"] = (g["pss_bytes"] or 0) + pss
                g["pss_count"] += 1
            if swap is not None:
                g["swap_bytes"] = (g["swap_bytes"] or 0) + swap
            if rss > g["_largest"]:
                g["_largest"] = rss
                g["largest"] = {"pid": proc.pid, "rss_bytes": rss, "cmdline": proc.cmd}
        out = sorted(groups.values(), key=lambda g: (-g["rss_bytes"], g["name"]))
        for g in out:
            del g["_largest"]
        return out

    def _unexplained(self, snap: _Snapshot, programs: List[dict]) -> dict:
        system = snap.system
        used = system.used or 0
        summed = sum(g["private_bytes"] for g in programs)
        from_pss = sum(g["pss_count"] for g in programs)
        nprocs = sum(g["count"] for g in programs)
        # PSS read without Pss_Anon (kernels before 5.7): private is private_part's bound
        bound = sum(1 for row in snap.rows if row[3] is not None and row[5] is None)
        # The kernel's count of the anonymous pages mapped by all processes (AnonPages) has
        # each page once. The processes' own figures add up to more exactly when they count
        # a page forked processes share once per process (RSS minus shared, for processes
        # whose PSS was not read): then the kernel's count is the processes' memory, and
        # the overcount no longer hides kernel memory (a forking server's 742 MiB against the
        # kernel's 413 MiB made "other" 0 and the listed parts larger than their total).
        anon = system.anon_pages
        private = min(summed, anon) if anon is not None else summed
        unexplained = max(used - private, 0)
        slab = system.slab or 0
        shmem = system.shmem or 0
        page_tables = system.page_tables or 0
        kstack = system.kernel_stack or 0
        hugetlb = system.hugetlb or 0
        # Recorded from 2026-12-02 (None before: not shown). Kernel stacks are vmalloc'd on
        # most kernels (VMAP_STACK), so VmallocUsed counts them again: only what it holds
        # beyond them is its own part (never more, where stacks are not vmalloc'd).
        percpu = system.percpu
        vmalloc = (max(system.vmalloc_used - kstack, 0) if system.vmalloc_used is not None
                   else None)
        # Compressed memory: zsmalloc's pages hold zram's data and the zswap pool when that
        # uses zsmalloc (the default), so the larger of the two counts it once; it errs low
        # only where zram and a zbud/z3fold zswap run together.
        known = [x for x in (system.zsmalloc, system.zswap) if x is not None]
        compressed = max(known) if known else None
        other = max(unexplained - slab - shmem - page_tables - kstack - hugetlb - (percpu or 0)
                    - (vmalloc or 0) - (compressed or 0), 0)
        top_slabs = [{"name": n, "bytes": b} for n, b in snap.slabs[:10]]
        biggest_proc = max((row[1] for row in snap.rows), default=0)
        biggest_group = programs[0]["rss_bytes"] if programs else 0
        sentence = None
        if top_slabs and top_slabs[0]["bytes"] > biggest_proc:
            first = top_slabs[0]
            sentence = (f"{fmt_bytes(first['bytes'])} in slab cache {first['name']}, more than "
                        f"any process" + (" and more than any program"
                                          if first["bytes"] > biggest_group else "") + ".")
        elif slab > biggest_group and slab > used * 0.3:
            sentence = (f"kernel slab memory ({fmt_bytes(slab)}) is more than any program "
                        f"holds.")
        elif shmem > biggest_group and shmem > used * 0.3:
            sentence = (f"shared memory (tmpfs, SysV, memfd: {fmt_bytes(shmem)}) is more than "
                        f"any program holds.")
        elif percpu and percpu > biggest_group and percpu > used * 0.3:
            sentence = (f"per-CPU kernel memory (Percpu: {fmt_bytes(percpu)}) is more than any "
                        f"program holds; memory cgroups removed but not yet freed by the "
                        f"kernel are the usual cause.")
        elif vmalloc and vmalloc > biggest_group and vmalloc > used * 0.3:
            sentence = (f"vmalloc memory ({fmt_bytes(vmalloc)} beyond kernel stacks: drivers, "
                        f"BPF maps, modules) is more than any program holds.")
        elif compressed and compressed > biggest_group and compressed > used * 0.3:
            sentence = (f"compressed memory (zram, zswap: {fmt_bytes(compressed)}) is more than "
                        f"any program holds: swapped-out pages, compressed but still in RAM.")
        return {
            "time": iso(snap.time), "used_bytes": used, "process_private_bytes": private,
            "process_private_sum_bytes": summed, "anon_pages_bytes": anon,
            "processes": nprocs, "private_from_pss": from_pss,
            "private_pss_bound": bound,
            "bytes": unexplained, "slab_bytes": slab,
            "slab_reclaimable_bytes": system.sreclaimable, "shmem_bytes": shmem,
            "page_tables_bytes": page_tables, "kernel_stack_bytes": kstack,
            "hugetlb_bytes": hugetlb, "percpu_bytes": percpu, "vmalloc_bytes": vmalloc,
            "compressed_bytes": compressed, "other_bytes": other, "top_slabs": top_slabs,
            "sentence": sentence,
        }

    def _growers(self, run: Run) -> Tuple[List[dict], List[dict]]:
        end = run.end or 0.0
        for proc, tracker in list(self.trackers.items()):
            self._finish_grower(proc, tracker, end, self.name(proc))
        self.trackers = {}
        span = end - (run.start or end)
        growers = [row for _, _, row in sorted(self.finished_growers, reverse=True)
                   if row["duration_s"] >= GROWTH_MIN_SPAN_FRACTION * span][:MAX_GROWERS]
        groups = []
        for name, tracker in self.group_trackers.items():
            trend = self._trend(tracker, end)
            if trend is not None:
                groups.append({"name": name, **trend})
        # A program with one growing process says nothing its process line does not.
        solo = {g["name"]: g["growth_bytes"] for g in growers}
        groups = [g for g in groups if not (g["name"] in solo
                                            and solo[g["name"]] >= 0.9 * g["growth_bytes"])]
        groups.sort(key=lambda g: -g["growth_bytes"])
        return growers, groups[:MAX_GROWERS]

    def result(self, run: Run, stats: ReadStats, label: str) -> dict:
        snap = self.snapshot
        programs = self._programs(snap) if snap else []
        growers, group_growers = self._growers(run)
        span = run.span_s
        oom_kills = [{k: v for k, v in o.items() if k != "t"} for o in self.oom]
        units = sorted(run.units.values(), key=lambda u: -u.peak)
        for event_kills in self.oom:  # attribute kernel kills to units by their memcg
            for unit in units:
                if event_kills.get("task_memcg") == unit.path and unit.oom_kills == 0:
                    unit.oom_kills = 1
        return {
            "schema": SCHEMA,
            "generator": f"memtrail {__version__}",
            "label": label,
            "hosts": run.hosts,
            "paths": run.paths,
            "segments": [os.path.basename(s) for s in run.segments],
            "sampler_runs": run.sampler_runs,
            "span": {
                "start": iso(run.start), "end": iso(run.end),
                "start_unix": run.start, "end_unix": run.end,
                "duration_s": round(span, 3), "ticks": run.ticks,
                "interval_s": run.interval_s,
                "gaps": [{"start": iso(g.start), "end": iso(g.end),
                          "seconds": round(g.seconds, 3), "reason": g.reason}
                         for g in run.gaps],
                "gap_seconds": round(run.gap_s, 3),
                "rates": [{"interval_s": ms / 1000, "ticks": run.rate_ticks[ms],
                           "seconds": round(run.rate_seconds.get(ms, 0.0), 3),
                           "reasons": run.rate_reasons.get(ms, [])}
                          for ms in sorted(run.rate_ticks, reverse=True)],
                "overruns": run.overruns, "worst_overrun_ms": run.worst_overrun_ms,
                "tick_errors": run.tick_errors,
                "first_tick_error": None if run.first_tick_error is None else dict(
                    run.first_tick_error, time=iso(run.first_tick_error["time"])),
                "clean_end": run.end_reason is not None and not run.cut_segments,
                "end_reason": run.end_reason,
                "cut_segments": [os.path.basename(s) for s in run.cut_segments],
            },
            "reading": {
                "files": stats.files, "lines": stats.lines, "torn_lines": stats.torn,
                "bad_lines": stats.bad, "long_lines": stats.long,
                "unknown_records": stats.unknown,
                "skipped_files": stats.skipped_files,
                "truncated_files": stats.truncated_files,
                "orphan_records": run.orphan_records,
                "bad_times": run.bad_times,
                "unread_processes": run.unread_procs,
                "data_problems": dict(sorted(run.problems.items())),
            },
            "memory": {"total_bytes": run.mem_total,
                       "available_estimated": run.available_estimated},
            "peak": {
                "time": iso(run.peak_time), "used_bytes": run.peak_used,
                "available_bytes": run.peak_available,
                "total_bytes": run.mem_total,
            },
            "lowest_available": {"time": iso(run.low_time), "bytes": run.low_available},
            "psi": {
                # None, never 0, where the kernel gave no PSI: no stall is not the same as
                # no way to tell (kernels before 4.20, RHEL 8 without psi=1)
                "some_us": run.psi_some_us if run.psi_seen else None,
                "full_us": run.psi_full_us if run.psi_seen else None,
                "some_pct": round(100 * run.psi_some_us / (span * 1e6), 3)
                if span and run.psi_seen else None,
                "full_pct": round(100 * run.psi_full_us / (span * 1e6), 3)
                if span and run.psi_seen else None,
            },
            "oom_kills": oom_kills,
            "oom_counter": run.oom_counter_total,
            "triggers": [dict(t.as_dict(), time=iso(t.time)) for t in self.triggers],
            "triggers_total": self.triggers_total,
            "programs_time": iso(snap.time) if snap else None,
            "programs": programs[: self.top] if self.top else programs,
            "programs_total": len(programs),
            "pss_tier": {"rounds": run.pss_rounds, "reads": run.pss_reads,
                         "kept": run.pss_kept,
                         "denied": run.pss_denied,
                         "sampler_unprivileged": run.sampler_unprivileged,
                         "skipped": [{"pid": pid, "why": why}
                                     for pid, why in sorted(run.pss_skipped.items())]},
            "program_peaks": sorted(
                ({"name": n, "peak_rss_bytes": v[0], "count": v[1], "time": iso(v[2]),
                  "max_count": v[3]} for n, v in self.group_peaks.items()),
                key=lambda g: (-g["peak_rss_bytes"], g["name"])),
            "growers": growers,
            "group_growers": group_growers,
            "unexplained": self._unexplained(snap, programs) if snap else None,
            "units": [{"path": u.path, "peak_bytes": u.peak, "time": iso(u.time),
                       "time_unix": u.time,
                       "reported_peak_bytes": u.reported_peak, "oom_kills": u.oom_kills,
                       "makeup": dict(u.makeup, time=iso(u.makeup_time),
                                      time_unix=u.makeup_time) if u.makeup else None}
                      for u in units],
            "locked": locked_figures(run, self.locked.values()),
            "sampler": {"cpu_s": round(run.sampler_cpu_us / 1e6, 3),
                        "max_processes": run.max_procs},
        }


# -- inputs ------------------------------------------------------------------------------------
def _run_key(path: str) -> Optional[tuple]:
    """(host, boot, started, pid) of the first header in a segment file, or None."""
    stats = ReadStats()
    try:
        for rec in read_path(path, stats):
            if rec.type == "H":
                h = rec.segment.header
                return (h.get("host"), h.get("boot_id"), h.get("started"), h.get("pid"))
            break
    except (LogError, OSError):
        return None
    return None


def group_runs(paths: Sequence[str]) -> List[List[str]]:
    """Paths -> recordings: a directory is one recording; consecutive segment files of the
    same sampler run (same host, boot, start and pid) are one recording."""
    groups: List[List[str]] = []
    last_key = None
    for path in paths:
        if os.path.isdir(path):
            groups.append([path])
            last_key = None
            continue
        key = _run_key(path)
        if key is not None and key == last_key and groups:
            groups[-1].append(path)
        else:
            groups.append([path])
        last_key = key
    return groups


def analyze(paths: Sequence[str], ungroup: bool = False, top: int = 10,
            **parts: bool) -> dict:
    """The report dict of one recording made of `paths` (see docs/report-json.md); `parts`
    (growth, peaks, programs) as `Analysis` takes them."""
    stats, run = ReadStats(), Run()
    analysis = Analysis(ungroup=ungroup, top=top, **parts)
    for tick in replay(list(paths), stats, run):
        analysis.add(tick, run)
    label = ", ".join(paths)
    return analysis.result(run, stats, label)


def usable(report: dict) -> Optional[str]:
    """None if the report has data, else a one-line reason (for exit code 2)."""
    if report["span"]["ticks"]:
        return None
    problems = report["reading"]["skipped_files"] + report["reading"]["truncated_files"]
    reason = problems[0] if problems else "no samples in the log"
    return f"{report['label']}: nothing to report: {reason}"


# -- text --------------------------------------------------------------------------------------
def _cmd(cmd: Optional[List[str]], width: int = 0) -> str:
    """A command line on one line (terminal-safe), cut to `width`."""
    text = terminal(" ".join(cmd)) if cmd else "?"
    return shorten(text, width) if width else text


def unread_files(rep: dict) -> int:
    """Segments skipped or cut short: while they are unread, "no gaps" cannot be claimed."""
    r = rep["reading"]
    return len(r["skipped_files"]) + len(r["truncated_files"])


def _t(value: Optional[str], missing: str = "-") -> str:
    """ISO from the JSON back to the short human form."""
    if not value:
        return missing
    return value.replace("T", " ").replace(".000Z", "Z")


def _reading_line(r: dict) -> Optional[str]:
    parts = []
    if r["torn_lines"]:
        parts.append(f"{r['torn_lines']} torn line(s) skipped (writer cut short)")
    if r["bad_lines"]:
        parts.append(f"{r['bad_lines']} unparseable line(s) skipped")
    if r.get("long_lines"):
        parts.append(f"{r['long_lines']} over-long line(s) skipped unread")
    if r.get("bad_times") and "data_problems" not in r:  # older report dicts
        parts.append(f"{r['bad_times']} record(s) with an impossible time or value skipped")
    if r["unknown_records"]:
        parts.append(f"{r['unknown_records']} record(s) of a newer format skipped")
    if r.get("unread_processes"):
        parts.append(f"up to {r['unread_processes']} process(es) at a time could not be read "
                     "(the sampler ran out of file descriptors: a partial process table)")
    for f in r["skipped_files"]:
        parts.append(f"skipped {f}")
    for f in r["truncated_files"]:
        parts.append(f"truncated {f}")
    return "; ".join(parts) if parts else None


def rates_text(span: dict) -> str:
    """` every 1 s` or `: every 1 s, and every 0.1 s for 40 s (400 ticks) while the host was
    short of memory (MemAvailable 8.1%)`: the tick count with the rate of each stretch."""
    rates = span.get("rates") or []
    if len(rates) <= 1:
        interval = rates[0]["interval_s"] if rates else span.get("interval_s")
        return f" every {interval:g} s" if interval else ""
    main = max(rates, key=lambda r: r["ticks"] * r["interval_s"])
    parts = [f"every {main['interval_s']:g} s"]
    for r in rates:
        if r is main:
            continue
        why = "; ".join(r["reasons"])
        parts.append(f"every {r['interval_s']:g} s for {fmt_duration(r['seconds'])} "
                     f"({r['ticks']} ticks)"
                     + (f" while the host was short of memory ({why})" if why else ""))
    return ": " + ", and ".join(parts)


def tick_errors_text(span: dict) -> str:
    """The sampler's own failures: ticks missing from the log, and why (terminal-safe)."""
    first = span.get("first_tick_error") or {}
    return safetext.terminal(
        f"{span['tick_errors']} tick(s) failed in the sampler and are missing from the log "
        f"(first at {_t(first.get('time'))}: {first.get('error', '?')} in "
        f"{first.get('where', '?')}): a memtrail bug, please report it")


def overrun_text(span: dict) -> str:
    n = span["overruns"]
    return (f"{n} overrun(s): a tick took longer to collect than its interval, so the next "
            f"one came late (worst {fmt_duration(span['worst_overrun_ms'] / 1000)}; a late "
            f"tick, not a gap)")


def data_problems_text(reading: dict) -> Optional[str]:
    """Impossible data, counted: what was skipped or ignored rather than reported as fact."""
    found = reading.get("data_problems") or {}
    parts = [f"{n} {PROBLEMS.get(k, k)}" for k, n in found.items() if n]
    return "; ".join(parts) if parts else None


def _measured_sizes(g: dict) -> str:
    """`7.3 MiB -> 611 MiB` (first and last measured RSS; the highest when above the last)."""
    text = f"{fmt_bytes(g['first_bytes'])} -> {fmt_bytes(g['last_bytes'])}"
    if g["max_bytes"] > g["last_bytes"] + max(MiB, g["last_bytes"] // 50):
        text += f" (max {fmt_bytes(g['max_bytes'])})"
    return text


def _growing_rate(g: dict) -> str:
    rate = g.get("growing_rate_bytes_per_hour")
    return "?" if rate is None else f"+{fmt_bytes(rate)}/h"


def growth_text(g: dict) -> str:
    """A grower in measured values: "7.3 MiB -> 611 MiB, +23 GiB/h while growing, then flat
    for 40 s". The fitted line only decided that it grew; its values are never shown as
    sizes (JSON keeps the fitted rate as `rate_bytes_per_hour`)."""
    text = f"{_measured_sizes(g)}, {_growing_rate(g)} while growing"
    if g.get("grew_until"):
        return text + (f", then flat for {fmt_duration(g['flat_s'])} "
                       f"(from {_t(g['grew_until'])})")
    return text + f", still growing at the end ({fmt_duration(g['duration_s'])} recorded)"


def _private_source(un: dict) -> str:
    """Where 'process private memory' came from, so a fallback is never taken for PSS."""
    summed, anon = un.get("process_private_sum_bytes"), un.get("anon_pages_bytes")
    n, k = un.get("processes"), un.get("private_from_pss")
    if summed is not None and anon is not None and summed > anon:
        why = ("PSS read at earlier moments" if n and k == n else
               "counting pages forked processes share once per process where PSS was not read")
        return (f"private = the kernel's count of anonymous pages (AnonPages), each page once; "
                f"the processes' own figures sum to {fmt_bytes(summed)}, {why}")
    if n is None or k is None:
        return "private = RSS minus shared"
    # Kernels before 5.7 read PSS without its anonymous part: say what stood in for it.
    bound = un.get("private_pss_bound") or 0
    pss, old = "PSS of anonymous pages", ""
    if bound and bound == k:
        pss = ("PSS or RSS minus shared, whichever is less (the kernel gives no Pss_Anon "
               "before 5.7: a bound from above)")
    elif bound:
        old = (f"; the kernel gave no Pss_Anon (before 5.7), so for {bound} of them: PSS or "
               f"RSS minus shared, whichever is less, a bound from above")
    if n and k == n:
        return f"private = {pss}, read for all {n} processes{old}"
    fallback = ("RSS minus shared: pages a forked child shares with its parent count once per "
                "process there")
    if k == 0:
        return f"private = {fallback}"
    return f"private = {pss} for {k} of {n} processes{old}; {fallback} for the rest"


def render_text(rep: dict) -> str:
    rep = tree(rep)  # every string from the log terminal-safe, fields added later included
    out: List[str] = []
    w = out.append
    span = rep["span"]
    hosts = ", ".join(rep["hosts"]) or "?"
    w(f"memtrail report: {rep['label']}")
    w(f"  host {hosts}; {len(rep['segments'])} segment(s); "
      f"{rep['sampler_runs']} sampler run(s)")
    w("")
    w("Span")
    w(f"  {_t(span['start'])} -> {_t(span['end'])}  ({fmt_duration(span['duration_s'])}, "
      f"{span['ticks']} ticks{rates_text(span)})")
    if span["gaps"]:
        w(f"  NOT RECORDING for {fmt_duration(span['gap_seconds'])} in "
          f"{len(span['gaps'])} gap(s):")
        for g in span["gaps"][:10]:
            w(f"    {_t(g['start'])} -> {_t(g['end'])}  {fmt_duration(g['seconds'])}  "
              f"({g['reason']})")
    else:
        unread = unread_files(rep)
        w("  no gaps: the sampler was looking the whole time" if not unread else
          f"  no gaps in what could be read, but {unread} file(s) could not be read whole "
          f"(see reading problems): what the sampler saw then is unknown")
    if span["overruns"]:
        w(f"  {overrun_text(span)}")
    if span.get("tick_errors"):
        w(f"  {tick_errors_text(span)}")
    if span["clean_end"]:
        w(f"  ended cleanly ({span['end_reason']})")
    elif span["cut_segments"]:
        w(f"  cut short: {', '.join(span['cut_segments'])} ended without a clean end record "
          f"(crash, kill or still recording)")
    reading = _reading_line(rep["reading"])
    if reading:
        w(f"  reading problems: {reading}")
    problems = data_problems_text(rep["reading"])
    if problems:
        w(f"  data problems: {problems}")
    w("")
    peak, low, psi = rep["peak"], rep["lowest_available"], rep["psi"]
    w("Memory")
    total = peak["total_bytes"]
    w(f"  peak used       {fmt_bytes(peak['used_bytes'])}"
      + (f" of {fmt_bytes(total)}" if total else "")
      + f" at {_t(peak['time'])} (available then {fmt_bytes(peak['available_bytes'])})")
    w(f"  lowest avail.   {fmt_bytes(low['bytes'])} at {_t(low['time'])}")
    if rep["memory"].get("available_estimated"):
        w(f"  ({AVAILABLE_ESTIMATED})")
    if psi["some_pct"] is not None:
        w(f"  PSI stall       some {fmt_duration(psi['some_us'] / 1e6)} "
          f"({psi['some_pct']:.2f}%), full {fmt_duration(psi['full_us'] / 1e6)} "
          f"({psi['full_pct']:.2f}%) of the span")
    elif psi["some_us"] is None:
        w(f"  PSI stall       {PSI_NONE}")
    w("")
    kills = rep["oom_kills"]
    w(f"OOM kills: {len(kills)}" + ("" if kills or not rep["oom_counter"] else
                                   f" from the kernel log, but /proc/vmstat counted "
                                   f"{rep['oom_counter']} (no /dev/kmsg access?)"))
    for k in kills:
        w(f"  {_t(k['time'])}  pid {k['pid']} {safetext.terminal(k['name'])}  rss "
          f"{fmt_bytes(k['rss_bytes'])} (anon {fmt_bytes(k['anon_bytes'])}, file "
          f"{fmt_bytes(k['file_bytes'])}, shmem {fmt_bytes(k['shmem_bytes'])})")
        w(f"    command:    {safetext.command(k['cmdline'])}")
        w(f"    where:      {safetext.terminal(oom_where(k))}")
        for whose, held, note in oom_held(k):
            w(f"    {whose + ':':<12}{held}")
            if note:
                w(f"    note:       {note}")
        if k.get("invoker"):
            w(f"    triggered:  {safetext.terminal(oom_invoker(k['invoker']))}")
        if k["top"] or k.get("top_source") == "none":
            w(f"    {safetext.terminal(oom_table_title(k))}:")
            _kill_rows(w, k, k["top"], kernel=k.get("top_source") == "kernel")
            more = len(k.get("table") or []) - len(k["top"])
            if k.get("top_source") == "kernel" and more > 0:
                w(f"      ... and {more} more in the kernel's table (--json has them all)")
        if k.get("host_top"):
            w(f"    {safetext.terminal(OOM_HOST_TITLE)}:")
            _kill_rows(w, k, k["host_top"][:5], kernel=False)
    _trigger_lines(rep, w)
    w("")
    progs = rep["programs"]
    w(f"Top programs at the peak ({_t(rep['programs_time'])})"
      + (f", {rep['programs_total']} in all" if rep["programs_total"] > len(progs) else ""))
    if progs:
        width = max(8, min(28, max(len(g["name"]) for g in progs)))
        w(f"  {'PROGRAM':<{width}}  {'COUNT':>5}  {'RSS':>9}  {'PSS':>18}  {'SWAP':>9}  "
          f"LARGEST")
        for g in progs:
            lg = g["largest"]
            w(f"  {g['name'][:width]:<{width}}  {'x' + str(g['count']):>5}  "
              f"{fmt_bytes(g['rss_bytes']):>9}  {pss_text(g):>18}  "
              f"{fmt_bytes(g['swap_bytes']):>9}  pid {lg['pid']} "
              f"{fmt_bytes(lg['rss_bytes'])}: {_cmd(lg['cmdline'], 50)}")
    else:
        w("  (no processes recorded)")
    skipped = (rep.get("pss_tier") or {}).get("skipped") or []
    if skipped:
        w(f"  PSS not read for {len(skipped)} process(es) to keep from stalling them (a read "
          "walks the target's page tables under its mmap lock): "
          + ", ".join(f"pid {s['pid']} ({s['why']})" for s in skipped[:5])
          + (", ..." if len(skipped) > 5 else ""))
    tier = rep.get("pss_tier") or {}
    if tier.get("denied"):
        why = ("the sampler ran without root (or CAP_SYS_PTRACE)"
               if tier.get("sampler_unprivileged") else
               "the kernel refused the read even to root (a security module's policy, or a "
               "process of another user namespace)")
        w(f"  PSS refused for up to {tier['denied']} process(es) a round: {why}; their "
          f"programs' PSS is partial and their own memory is RSS minus shared")
    w("")
    w("Growers (leak suspects: sustained growth, short spikes ignored)")
    if rep["growers"] or rep["group_growers"]:
        for g in rep["growers"]:
            w(f"  {g['name']} (pid {g['pid']})  {growth_text(g)}"
              + ("  [exited]" if g["exited"] else ""))
            w(f"      {_cmd(g['cmdline'], 90)}")
        for g in rep["group_growers"]:
            w(f"  program {g['name']} (all its processes)  {growth_text(g)}")
    else:
        w("  none")
    w("")
    un = rep["unexplained"]
    w("Memory no process explains" + (f" (at {_t(un['time'])})" if un else ""))
    if un:
        w(f"  used {fmt_bytes(un['used_bytes'])} - process private memory "
          f"{fmt_bytes(un['process_private_bytes'])} = {fmt_bytes(un['bytes'])}")
        w(f"  ({_private_source(un)})")
        w(f"  slab {fmt_bytes(un['slab_bytes'])} (reclaimable "
          f"{fmt_bytes(un['slab_reclaimable_bytes'])}), shmem {fmt_bytes(un['shmem_bytes'])}, "
          f"page tables {fmt_bytes(un['page_tables_bytes'])}, kernel stacks "
          f"{fmt_bytes(un['kernel_stack_bytes'])}, hugetlb {fmt_bytes(un['hugetlb_bytes'])}, "
          + "".join(f"{label} {fmt_bytes(un[key])}, " for key, label in LATE_PARTS
                    if un.get(key) is not None)
          + f"other {fmt_bytes(un['other_bytes'])}")
        if un["top_slabs"]:
            w("  top slab caches: " + ", ".join(f"{s['name']} {fmt_bytes(s['bytes'])}"
                                                for s in un["top_slabs"][:5]))
        if un["sentence"]:
            w(f"  => {un['sentence']}")
    w("")
    w("Units (cgroups): peak memory")
    if rep["units"]:
        for u in rep["units"][:15]:
            w(f"  {fmt_bytes(u['peak_bytes']):>9}  at {_t(u['time'])}  {u['path']}"
              + (f"  OOM kills: {u['oom_kills']}" if u["oom_kills"] else ""))
            m = u.get("makeup")
            made = unit_makeup_text(m, u["time_unix"] - m["time_unix"]) if m else ""
            if made:
                w(f"             {made}")
    else:
        w("  none recorded")
    w("")
    lk = rep["locked"]
    w(f"Locked memory: mlocked peak {fmt_bytes(lk['peak_mlocked_bytes'])}, unevictable peak "
      f"{fmt_bytes(lk['peak_unevictable_bytes'])}")
    for p in lk["processes"][:10]:
        w(f"  {fmt_bytes(p['locked_bytes']):>9}  pid {p['pid']} {p['name']}: "
          f"{_cmd(p['cmdline'], 70)}")
    if lk.get("note"):
        w(f"  note: {lk['note']}")
    return "\n".join(out) + "\n"


def _host_memory(data: dict) -> Optional[dict]:
    parts = oom_host_memory(data)
    if not parts:
        return None
    out = {f"{k}_bytes": v for k, v in parts.items() if k != "unreclaimable_slab"}
    out["unreclaimable_slab"] = [{"name": n, "bytes": b} for n, b in
                                 parts["unreclaimable_slab"]]
    return out


def oom_host_said(k: dict) -> Tuple[str, str]:
    """(the host's memory at a host-wide kill, a note on what filled it), each '' when the
    kernel's report did not say: the report's `host:` line."""
    m = k.get("host_memory")
    if not m:
        return "", ""
    parts = [makeup_text(m)]
    if m.get("slab_bytes") is not None:
        parts.append(f"slab {fmt_bytes(m['slab_bytes'])}"
                     + (f" (unreclaimable {fmt_bytes(m['slab_unreclaimable_bytes'])})"
                        if m.get("slab_unreclaimable_bytes") is not None else ""))
    for key, label in (("page_tables_bytes", "page tables"), ("free_bytes", "free")):
        if m.get(key) is not None:
            parts.append(f"{label} {fmt_bytes(m[key])}")
    text = ", ".join(p for p in parts if p)
    if not text:
        return "", ""
    used = sum(m.get(k) or 0 for k in ("anon_bytes", "shmem_bytes", "file_bytes", "slab_bytes",
                                       "page_tables_bytes"))
    shmem, unrec = m.get("shmem_bytes") or 0, m.get("slab_unreclaimable_bytes") or 0
    note = ""
    if used and unrec >= used * SHMEM_WORTH_SAYING:
        caches = m.get("unreclaimable_slab") or []
        note = (f"{fmt_bytes(unrec)} was unreclaimable kernel slab, not process memory (a "
                f"kernel leak or a driver)"
                + (": " + ", ".join(f"{terminal(c['name'])} {fmt_bytes(c['bytes'])}"
                                    for c in caches[:5])
                   if caches else ""))
    elif used and shmem >= used * SHMEM_WORTH_SAYING:
        note = (f"{fmt_bytes(shmem)} was tmpfs or shared memory (/dev/shm, a tmpfs /tmp, "
                f"memfd): killing processes does not free it")
    return f"{text} (the kernel's count at the kill)", note


def oom_held(k: dict) -> List[Tuple[str, str, str]]:
    """(whose: "cgroup"/"host", what it held, a note on what filled it) for a kill, from
    the kernel's report: the one walk every view of a kill makes."""
    out = []
    for whose, said in (("cgroup", oom_memcg_said), ("host", oom_host_said)):
        held, note = said(k)
        if held:
            out.append((whose, held, note))
    return out


def _memcg_memory(data: dict) -> Optional[dict]:
    parts = oom_memcg_memory(data)
    return {f"{k}_bytes": v for k, v in parts.items()} if parts else None


SHMEM_WORTH_SAYING = 0.2  # of the cgroup's usage: tmpfs that outlives the kill is named


def oom_memcg_said(k: dict) -> Tuple[str, str]:
    """(what the cgroup held at the kill, a note on what filled it) for a kill dict, each ''
    where there is nothing to say: the one wording of report, markdown, HTML and run."""
    m = k.get("memcg_memory")
    text = oom_memcg_text(m) if m else ""
    return (text, oom_memcg_note(m)) if text else ("", "")


MAKEUP_LABELS = (("anon_bytes", "anon"), ("shmem_bytes", "shmem/tmpfs"),
                 ("file_bytes", "page cache"), ("kernel_bytes", "kernel"),
                 ("sock_bytes", "network buffers"))


def makeup_text(m: dict) -> str:
    """`anon 29.5 MiB, shmem/tmpfs 20.0 MiB, page cache 4.0 KiB, kernel 272 KiB`: what a
    cgroup's usage was made of; the parts not known are left out."""
    parts = [f"{label} {fmt_bytes(m[key])}" for key, label in MAKEUP_LABELS
             if m.get(key) is not None]
    dirty = (m.get("dirty_bytes") or 0) + (m.get("writeback_bytes") or 0)
    if m.get("file_bytes") and dirty:
        parts.append(f"of the cache {fmt_bytes(dirty)} dirty or under writeback")
    return ", ".join(parts)


def oom_memcg_text(m: dict) -> str:
    """`49.8 MiB of its 50.0 MiB limit: anon 29.5 MiB, shmem/tmpfs 20.0 MiB, ...` from the
    kernel's own report at the kill; the parts it did not print are left out."""
    usage, limit = m.get("usage_bytes"), m.get("limit_bytes")
    head = (f"{fmt_bytes(usage)} of its {fmt_bytes(limit)} limit" if usage is not None
            and limit is not None else f"{fmt_bytes(usage)}" if usage is not None else "")
    parts = makeup_text(m)
    text = head + (": " if head and parts else "") + parts
    return f"{text} (the kernel's count at the kill)" if text else ""


def unit_makeup_text(m: Optional[dict], before_s: float) -> str:
    """`(anon 1.2 GiB, shmem/tmpfs 600 MiB, ...; read 4 s before the peak)` for a cgroup
    whose make-up was recorded (`m`) `before_s` seconds before its peak, else ''."""
    text = makeup_text(m) if m else ""
    if not text:
        return ""
    return f"({text}" + (f"; read {fmt_duration(before_s)} before the peak)" if before_s > 0.5
                         else ")")


def oom_memcg_note(m: dict) -> str:
    """A sentence when tmpfs or kernel memory, not the processes, filled the cgroup."""
    usage = m.get("usage_bytes") or sum(m.get(k) or 0 for k in (
        "anon_bytes", "shmem_bytes", "file_bytes", "kernel_bytes", "sock_bytes"))
    if not usage:
        return ""
    shmem, kernel = m.get("shmem_bytes") or 0, m.get("kernel_bytes") or 0
    if shmem >= usage * SHMEM_WORTH_SAYING:
        return (f"{fmt_bytes(shmem)} of it was tmpfs or shared memory (/dev/shm, a tmpfs /tmp, "
                f"memfd): killing processes does not free it; it stays charged to the cgroup "
                f"until the files are removed")
    if kernel >= usage * SHMEM_WORTH_SAYING:
        return (f"{fmt_bytes(kernel)} of it was kernel memory charged to the cgroup (slab "
                f"caches such as inodes and dentries, page tables, stacks), not process memory")
    cache = m.get("file_bytes") or 0
    if cache >= usage / 2:
        dirty = (m.get("dirty_bytes") or 0) + (m.get("writeback_bytes") or 0)
        return (f"{fmt_bytes(cache)} of it was page cache the kernel did not reclaim in time"
                + (f" ({fmt_bytes(dirty)} dirty or under writeback: it must be written out "
                   f"first)" if dirty else ""))
    return ""


OOM_HOST_TITLE = ("for scale, the largest processes on the whole host just before (outside the "
                  "cgroup's limit, they did not compete for it)")


def oom_where(k: dict) -> str:
    """Where memory ran out, in words: a memory cgroup's limit, or the host as a whole."""
    task = k.get("task_memcg")
    if k.get("scope") == "memcg":
        text = (f"memory cgroup {k['memcg']} reached its limit" if k.get("memcg")
                else "a memory cgroup reached its limit (this kernel did not name it)")
        if task and task != k.get("memcg"):
            text += f"; the victim was in {task}"
        return text
    constraint = k.get("constraint")
    text = "the host as a whole ran out of memory"
    if constraint and constraint != "CONSTRAINT_NONE":
        text += f" ({constraint})"
    if task:
        text += f"; the victim was in {task}"
    return text


def oom_invoker(inv: dict) -> str:
    """`python3 (pid 42) asked for memory: gfp_mask=0xcc0(GFP_KERNEL), order 0`."""
    text = str(inv.get("name") or "?")
    if inv.get("pid") is not None:
        text += f" (pid {inv['pid']})"
    parts = []
    if inv.get("gfp_mask"):
        parts.append(f"gfp_mask={inv['gfp_mask']}")
    if inv.get("order") is not None:
        parts.append(f"order {inv['order']}")
    if inv.get("oom_score_adj") is not None:
        parts.append(f"its oom_score_adj {inv['oom_score_adj']}")
    return text + " asked for memory" + (": " + ", ".join(parts) if parts else "")


def oom_table_title(k: dict) -> str:
    """What the kill's `top` list is, and where it comes from."""
    source = k.get("top_source")
    if source == "kernel":
        rows = k.get("table_rows") or len(k.get("table") or [])
        count = f"{rows} process{'es' if rows != 1 else ''}" + (
            ", the largest kept" if k.get("table_capped") else "")
        if k.get("scope") == "memcg":
            return (f"processes in memory cgroup {k.get('memcg') or '(unnamed)'} at the kill "
                    f"(the kernel's own table: {count})")
        return f"largest processes at the kill (the kernel's own table: {count})"
    if source == "cgroup":
        return (f"processes in memory cgroup {k['memcg']} just before the kill (as sampled; "
                "the kernel printed no table)")
    if source == "none":
        return ("no table for this cgroup kill (the kernel printed none and did not name the "
                "cgroup)")
    return "largest processes on the host just before the kill"


def _kill_rows(w, k: dict, rows: List[dict], kernel: bool) -> None:
    for p in rows:
        mark = "  <- killed" if p["pid"] == k["pid"] else ""
        extra = ""
        if kernel:
            adj = p.get("oom_score_adj")
            adj = "-" if adj is None else adj
            extra = f"  swap {fmt_bytes(p.get('swap_bytes')):>9}  adj {adj:>5}"
        command = (safetext.command(p["cmdline"], 70) if p.get("cmdline")
                   else safetext.terminal(p.get("comm") or p.get("name")))
        w(f"      {p['pid']:>7}  {fmt_bytes(p['rss_bytes']):>9}{extra}  {command}{mark}")


def _trigger_lines(rep: dict, w) -> None:
    """The signals the sampler's --trigger rules sent (or held back), when there were any."""
    total = rep.get("triggers_total") or 0
    if not total:
        return
    rows = rep.get("triggers") or []
    sent = sum(1 for t in rows if t.get("result") == "sent")
    w("")
    w(f"Triggers: {total} ({sent} signal(s) sent" + (f"; the first {len(rows)} listed)"
                                                    if total > len(rows) else ")"))
    for row in rows:
        w(f"  {_t(row.get('time'))}  {describe(from_row(row), safetext.terminal)}")


def render_markdown(rep: dict) -> str:
    # Terminal-safe first (no newline can start a block), then each string from the log goes
    # through md() (or markdown_code()) where it is placed.
    rep = tree(rep)
    out: List[str] = []
    w = out.append
    span, peak, low, psi = rep["span"], rep["peak"], rep["lowest_available"], rep["psi"]
    kills = rep["oom_kills"]
    status = f"**{len(kills)} OOM kill(s)**" if kills else "no OOM kill"
    w(f"### memtrail: {md(', '.join(rep['hosts']) or rep['label'])}")
    w("")
    w(f"- peak used **{fmt_bytes(peak['used_bytes'])}**"
      + (f" of {fmt_bytes(peak['total_bytes'])}" if peak["total_bytes"] else "")
      + f" at {_t(peak['time'])}; lowest available {fmt_bytes(low['bytes'])}; {status}")
    w(f"- span {_t(span['start'])} -> {_t(span['end'])} ({fmt_duration(span['duration_s'])}, "
      f"{span['ticks']} ticks); gaps: {len(span['gaps'])}"
      + (f" ({fmt_duration(span['gap_seconds'])} not recording)" if span["gaps"] else "")
      + (f"; **{unread_files(rep)} file(s) unreadable: coverage unknown**"
         if unread_files(rep) else ""))
    if span.get("tick_errors"):
        w(f"- **{md(tick_errors_text(span))}**")
    if psi["some_pct"] is not None:
        w(f"- PSI stall: some {psi['some_pct']:.2f}%, full {psi['full_pct']:.2f}%")
    elif psi["some_us"] is None:
        w(f"- PSI stall: {PSI_NONE}")
    if rep["memory"].get("available_estimated"):
        w(f"- {AVAILABLE_ESTIMATED}")
    reading = _reading_line(rep["reading"])
    if reading:
        w(f"- reading problems: {md(reading)}")
    if kills:
        w("")
        w("#### OOM kills")
        w("")
        w("| time | pid | name | RSS | command | where |")
        w("| --- | --- | --- | ---: | --- | --- |")
        for k in kills:
            w(f"| {_t(k['time'])} | {md(k['pid'])} | {safetext.markdown(k['name'])} | "
              f"{fmt_bytes(k['rss_bytes'])} | "
              f"{safetext.markdown_code(safetext.command(k['cmdline'], 100))} | "
              f"{safetext.markdown(oom_where(k))} |")
        for k in kills[:5]:
            for whose, held, note in oom_held(k):
                w("")
                w(f"At pid {k['pid']}'s kill {'its' if whose == 'cgroup' else 'the'} {whose} "
                  f"held {md(held)}" + (f". **{md(note)}**" if note else ""))
        for k in kills[:5]:
            if not k["top"]:
                continue
            w("")
            w(f"{safetext.markdown(oom_table_title(k))}, pid {k['pid']} killed:")
            w("")
            w("| pid | RSS | command |")
            w("| ---: | ---: | --- |")
            for p in k["top"]:
                command = (safetext.command(p["cmdline"], 100) if p.get("cmdline")
                           else safetext.terminal(p.get("comm") or p.get("name")))
                w(f"| {p['pid']}{' (killed)' if p['pid'] == k['pid'] else ''} | "
                  f"{fmt_bytes(p['rss_bytes'])} | {safetext.markdown_code(command)} |")
    if rep["programs"]:
        w("")
        w(f"#### Top programs at the peak ({_t(rep['programs_time'])})")
        w("")
        w("| program | count | RSS | PSS | swap | largest |")
        w("| --- | ---: | ---: | ---: | ---: | --- |")
        for g in rep["programs"]:
            lg = g["largest"]
            w(f"| {md(g['name'])} | {g['count']} | {fmt_bytes(g['rss_bytes'])} | "
              f"{pss_text(g)} | {fmt_bytes(g['swap_bytes'])} | "
              f"pid {lg['pid']} {fmt_bytes(lg['rss_bytes'])} |")
    if rep["growers"]:
        w("")
        w("#### Growers (leak suspects)")
        w("")
        w("| program | pid | RSS measured | while growing | over |")
        w("| --- | ---: | --- | ---: | --- |")
        for g in rep["growers"]:
            w(f"| {md(g['name'])} | {g['pid']} | {_measured_sizes(g)}"
              f" | {_growing_rate(g)} | {fmt_duration(g['duration_s'])}"
              + (f", then flat for {fmt_duration(g['flat_s'])}" if g.get("grew_until") else "")
              + " |")
    if rep.get("triggers_total"):
        w("")
        w(f"#### Triggers ({rep['triggers_total']})")
        w("")
        for row in rep.get("triggers") or []:
            w(f"- {_t(row.get('time'))}: {describe(from_row(row), safetext.markdown)}")
    un = rep["unexplained"]
    if un and un["sentence"]:
        w("")
        w(f"**Kernel memory:** {md(un['sentence'])}")
    return "\n".join(out) + "\n"


# -- command -----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="memtrail report",
        description="Explain a recording: span and gaps, peak, OOM kills with the process "
                    "table just before, top programs at the peak, growers, memory no process "
                    "explains, unit peaks, locked memory.")
    ap.add_argument("paths", nargs="+", metavar="PATH",
                    help="log directory, segment file or .gz segment; several = several runs "
                         "(segments of one sampler run are merged)")
    fmt = ap.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable (docs/report-json.md)")
    fmt.add_argument("--markdown", action="store_true", help="for a CI job summary")
    ap.add_argument("--ungroup", action="store_true",
                    help="one line per process instead of per program")
    ap.add_argument("--top", type=int, default=10, metavar="N",
                    help="programs to list (default 10, 0 = all)")
    return ap


def iter_reports(paths: Sequence[str], ungroup: bool = False, top: int = 10,
                 **parts: bool) -> Iterator[Tuple[Optional[dict], Optional[str]]]:
    """(report, None) or (None, error) per recording, one at a time.

    Streaming matters for CI fleets: `memtrail report artifacts/*` over a thousand jobs holds
    one recording's state at a time, never all of them.
    """
    errors = check_paths(paths)
    if errors:
        for err in errors:
            yield None, err
        return
    yield from _reports(group_runs(paths), ungroup, top, **parts)


def _reports(groups: List[List[str]], ungroup: bool, top: int,
             **parts: bool) -> Iterator[Tuple[Optional[dict], Optional[str]]]:
    for group in groups:
        rep = analyze(group, ungroup=ungroup, top=top, **parts)
        problem = usable(rep)
        yield (None, problem) if problem else (rep, None)


def load(paths: Sequence[str], ungroup: bool = False, top: int = 10,
         **parts: bool) -> Tuple[List[dict], List[str]]:
    """Reports for every recording in `paths`, and one-line errors for unusable inputs."""
    reports, errors = [], []
    for rep, err in iter_reports(paths, ungroup, top, **parts):
        if err:
            errors.append(err)
        else:
            reports.append(rep)
    return reports, errors


def main(argv: List[str]) -> int:
    args = _parser().parse_args(argv)
    if args.top < 0:
        print("memtrail report: --top must be >= 0", file=sys.stderr)
        return 2
    bad_paths = check_paths(args.paths)
    for err in bad_paths:
        print(f"memtrail report: {err}", file=sys.stderr)
    if bad_paths:
        return 2
    groups = group_runs(args.paths)  # read each segment's header once, not per question
    many = len(groups) > 1
    render = render_markdown if args.markdown else render_text
    rule = "\n---\n\n" if args.markdown else "\n" + "=" * 78 + "\n\n"
    shown = errors = 0
    if args.json and many:
        sys.stdout.write('{"schema": ' + json.dumps(SCHEMA) + ', "runs": [\n')
    for rep, err in _reports(groups, args.ungroup, args.top):
        if err:
            errors += 1
            print(f"memtrail report: {err}", file=sys.stderr)
            continue
        if args.json:
            sys.stdout.write(",\n" if shown else "")
            # Valid for every consumer: a byte of a command line that was not UTF-8 (a lone
            # surrogate here) becomes the visible text \xNN, as in the exports, and the rest
            # is ASCII with \u escapes, whatever the output's encoding.
            clean = json.loads(safetext.json_text(json.dumps(rep, ensure_ascii=False)))
            json.dump(clean, sys.stdout, indent=1)
        else:
            sys.stdout.write((rule if shown else "") + render(rep))
        sys.stdout.flush()
        shown += 1
    if args.json and many:
        sys.stdout.write("\n]}")
    if args.json and (shown or many):
        sys.stdout.write("\n")
    if not shown:
        return 2
    return 2 if errors else 0
