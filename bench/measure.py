"""Measure one contender's CPU per tick and memory, from its own kernel accounting.

Why this way: wall time says nothing about cost (a recorder mostly sleeps), and a single long
average hides noise. So the contender runs alone in its own process at a fixed interval; the
harness reads the kernel's CPU accounting of that process (`/proc/PID/task/*/schedstat`, the
nanosecond run time that `/proc/PID/stat` utime+stime is scaled to, plus reaped children for
peers that fork) at window boundaries placed half-way between ticks, and divides by the ticks
done in the window. Median and spread come from several windows.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import spawn

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Contender:
    """One thing to measure: a command ticking at `interval_s`.

    `ticks` is how the harness counts its ticks: "status" (a status file written by our driver
    loops: `ticks children_cpu_ns`), "log" (count `s ` lines in a memtrail log dir), or "wall"
    (elapsed time / interval, for peers we cannot instrument; windows are whole intervals).
    """

    name: str
    argv: list[str]
    interval_s: float
    ticks: str = "wall"
    status_file: Path | None = None
    log_dir: Path | None = None
    note: str = ""
    warmup_ticks: int = 3
    size_path: Path | None = None  # a file or directory whose growth per tick is recorded
    cgroup: Path | None = None  # a memory cgroup to start it in (its charge is recorded)


@dataclass
class Result:
    name: str
    nprocs: int
    scenario: str
    interval_s: float
    per_tick_ms: list[float] = field(default_factory=list)
    mean_ms: float | None = None
    ticks: int = 0
    cpu_stat_ms: float | None = None
    vm_rss_kib: int | None = None
    vm_hwm_kib: int | None = None
    error: str | None = None
    note: str = ""
    bytes_per_tick: float | None = None
    proc_entries: list[int] = field(default_factory=list)  # /proc PID entries at each window
    cg_kib: int | None = None  # memory charged to its cgroup at the end (kernel memory too)
    cg_peak_kib: int | None = None
    host_busy_pct: float | None = None  # CPU used by everything else on the host meanwhile

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.per_tick_ms) if self.per_tick_ms else None

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["median_ms"] = self.median_ms
        d["min_ms"] = min(self.per_tick_ms) if self.per_tick_ms else None
        d["max_ms"] = max(self.per_tick_ms) if self.per_tick_ms else None
        return d


def proc_entries() -> int:
    """PID entries in /proc (kernel threads included): a cheap check that the crowd held."""
    return sum(1 for n in os.listdir("/proc") if n[0].isdigit())


def host_cpu_ns() -> int:
    """CPU time used by the whole host since boot (all but idle and iowait), in ns."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = sum(v[:8]) - v[3] - v[4]  # user nice system idle iowait irq softirq steal
    return busy * 1_000_000_000 // CLK_TCK


def cpu_ns(pid: int) -> int:
    """Run time of every thread of PID, in ns (schedstat); falls back to utime+stime."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total
    except (OSError, ValueError, IndexError):
        return stat_cpu_ns(pid)


def stat_cpu_ns(pid: int, children: bool = False) -> int:
    """utime+stime (fields 14, 15; with children also 16, 17) from /proc/PID/stat, in ns."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): field N is fields[N - 3].
    t = int(fields[11]) + int(fields[12])
    if children:
        t += int(fields[13]) + int(fields[14])
    return t * 1_000_000_000 // CLK_TCK


def status_kib(pid: int) -> tuple[int | None, int | None]:
    """(VmRSS, VmHWM) in KiB."""
    rss = hwm = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def memory_cgroup(name: str) -> Path | None:
    """A new memory cgroup (v1 memory controller, else cgroup2), or None when we cannot."""
    for base in (Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")):
        if (base / "cgroup.procs").exists() and (
                (base / "memory.usage_in_bytes").exists() or (base / "cgroup.controllers").exists()
                and "memory" in (base / "cgroup.controllers").read_text()):
            try:
                (base / name).mkdir()
                return base / name
            except FileExistsError:  # left by a killed run (in a PID namespace pids repeat)
                try:
                    (base / name).rmdir()  # only if empty: else another run's
                    (base / name).mkdir()
                    return base / name
                except OSError:
                    return None
            except OSError:
                return None
    return None


def cgroup_kib(cg: Path) -> tuple[int | None, int | None]:
    """(charged now, peak) in KiB: user and kernel memory (v1 counts kmem in usage)."""
    out: list[int | None] = []
    for names in (("memory.usage_in_bytes", "memory.current"),
                  ("memory.max_usage_in_bytes", "memory.peak")):
        value = None
        for n in names:
            try:
                value = int((cg / n).read_text()) // 1024
                break
            except (OSError, ValueError):
                continue
        out.append(value)
    return out[0], out[1]


def path_size(path: Path) -> int:
    """Size of a file, or the total size of the files directly inside a directory."""
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def _read_status(path: Path) -> tuple[int, int]:
    try:
        parts = path.read_text().split()
        return int(parts[0]), int(parts[1])
    except (OSError, ValueError, IndexError):
        return 0, 0


class LogTickCounter:
    """Counts `s ` lines appended to the newest segments of a memtrail log directory."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.offsets: dict[str, int] = {}
        self.count = 0
        self.partial: dict[str, bytes] = {}

    def __call__(self) -> int:
        try:
            names = sorted(n for n in os.listdir(self.log_dir) if n.endswith(".log"))
        except OSError:
            return self.count
        for name in names:
            off = self.offsets.get(name, 0)
            try:
                with open(self.log_dir / name, "rb") as f:
                    f.seek(off)
                    new = f.read()
            except OSError:
                continue
            self.offsets[name] = off + len(new)
            data = self.partial.get(name, b"") + new
            cut = data.rfind(b"\n") + 1
            self.partial[name] = data[cut:]
            body = data[:cut]
            self.count += body.count(b"\ns ") + (1 if body.startswith(b"s ") else 0)
        return self.count


def _wait_until(t: float) -> None:
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)


def _find_phase(interval: float, cpu: Callable[[], int]) -> float:
    """Monotonic time at which a tick started (CPU moved after a quiet spell), or now.

    Windows then end half an interval later, so no window boundary cuts a tick in two.
    """
    deadline = time.monotonic() + 3 * interval + 0.5
    last = cpu()
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.002)
        now, c = time.monotonic(), cpu()
        if c - last > 100_000 and now - quiet_since >= min(0.02, interval / 4):
            return now
        if c != last:
            quiet_since = now
        last = c
    return time.monotonic()


def run(
    c: Contender,
    nprocs: int,
    scenario: str,
    windows: int,
    window_ticks: int,
    stderr_path: Path | None = None,
) -> Result:
    """Start the contender, warm it up, measure `windows` windows, stop it (SIGTERM, group)."""
    res = Result(c.name, nprocs, scenario, c.interval_s, note=c.note)
    err_f = open(stderr_path or os.devnull, "wb")
    cg = c.cgroup

    def join_cgroup() -> None:  # in the child, before exec: charged from its first page
        if cg is not None:
            with open(cg / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))

    try:
        proc = subprocess.Popen(
            c.argv, stdout=subprocess.DEVNULL, stderr=err_f, start_new_session=True,
            preexec_fn=join_cgroup if cg is not None else None,
        )
    except OSError as e:
        res.error = f"cannot start: {e}"
        err_f.close()
        return res
    try:
        _measure(c, proc, res, windows, window_ticks)
    finally:
        spawn.stop_group(proc, timeout=10)
        err_f.close()
    if res.error and stderr_path:
        err = stderr_path.read_bytes().decode(errors="replace").strip()
        if err:
            res.error += ": " + err[-300:].replace("\n", " | ")
    return res


def _measure(c: Contender, proc: subprocess.Popen, res: Result, windows: int, wt: int) -> None:
    pid = proc.pid
    counter: Callable[[], int] | None = None  # None: "wall", ticks are whole intervals

    def cpu() -> int:
        return cpu_ns(pid)

    if c.ticks == "status" and c.status_file:
        sf = c.status_file

        def counter() -> int:
            return _read_status(sf)[0]

        def cpu() -> int:
            return cpu_ns(pid) + _read_status(sf)[1]
    elif c.ticks == "log" and c.log_dir:
        counter = LogTickCounter(c.log_dir)

    # Warm-up: let imports, the first full scan and first-seen identities pass.
    t_start = time.monotonic()
    deadline = t_start + 60 + c.warmup_ticks * c.interval_s * 4
    if counter is not None:
        while counter() < c.warmup_ticks:
            if proc.poll() is not None:
                res.error = f"exited during warm-up ({proc.returncode})"
                return
            if time.monotonic() > deadline:
                res.error = "no ticks seen during warm-up"
                return
            time.sleep(min(0.05, c.interval_s / 4))
    else:
        _wait_until(t_start + c.warmup_ticks * c.interval_s + 0.2)
    if proc.poll() is not None:
        res.error = f"exited during warm-up ({proc.returncode})"
        return
    phase = _find_phase(c.interval_s, cpu)
    t = phase + c.interval_s / 2
    _wait_until(t)
    cpu0, ticks0 = cpu(), counter() if counter else 0
    host0, wall0 = host_cpu_ns(), time.monotonic()
    res.proc_entries.append(proc_entries())
    stat0 = stat_cpu_ns(pid, children=True)
    size0 = path_size(c.size_path) if c.size_path else None
    first_cpu, first_ticks = cpu0, ticks0
    for _ in range(windows):
        t += wt * c.interval_s
        _wait_until(t)
        if proc.poll() is not None:
            res.error = f"exited during measurement ({proc.returncode})"
            break
        cpu1 = cpu()
        ticks1 = counter() if counter else ticks0 + wt
        res.proc_entries.append(proc_entries())
        n = ticks1 - ticks0
        if n > 0:
            res.per_tick_ms.append((cpu1 - cpu0) / n / 1e6)
        cpu0, ticks0 = cpu1, ticks1
    if proc.poll() is None:
        res.ticks = ticks0 - first_ticks
        if res.ticks:
            res.mean_ms = (cpu0 - first_cpu) / res.ticks / 1e6
            res.cpu_stat_ms = (stat_cpu_ns(pid, children=True) - stat0) / res.ticks / 1e6
            if c.size_path:
                res.bytes_per_tick = (path_size(c.size_path) - size0) / res.ticks
        res.vm_rss_kib, res.vm_hwm_kib = status_kib(pid)
        if c.cgroup is not None:
            res.cg_kib, res.cg_peak_kib = cgroup_kib(c.cgroup)
        others = host_cpu_ns() - host0 - (cpu0 - first_cpu)
        cores = os.cpu_count() or 1
        res.host_busy_pct = round(100 * others / ((time.monotonic() - wall0) * 1e9 * cores), 1)

