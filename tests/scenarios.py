"""Write v1 memtrail logs from scripted scenarios, following docs/format.md.

The analyzer's tests should not rest on hand-written expectations only: a scenario says what
happens on a simulated host ("24 nova-api workers start", "a process leaks 10 MiB a minute",
"the kernel kills the hog") and `Host` writes the log the sampler would have written for it
(ticks, thresholds, keyframes, identities repeated per segment, events). The tests then check
that the analyzer tells that story back.

This writer is deliberately independent of `memtrail.reader` (it spells the format out from the
document) so a misreading of the format on one side is caught by the other.
"""

from __future__ import annotations

import gzip
import json
import os
import time as _time
from typing import Dict, List, Optional

S_FIELDS = (
    "mem_total mem_free mem_available buffers cached shmem slab sreclaimable sunreclaim "
    "swap_total swap_free committed_as unevictable mlocked anon_pages page_tables "
    "kernel_stack hugepages_total hugepages_free hugepage_size oom_kill pgmajfault "
    "pgscan_kswapd pgscan_direct pgsteal_kswapd pgsteal_direct pswpin pswpout allocstall "
    "psi_some_us psi_full_us nprocs tick_cpu_us tick_wall_us interval_ms"
).split()
FIELDS = {
    "s": S_FIELDS,
    "K": ["nprocs", "ncgroups"],
    "P": ["pid", "start", "ppid", "uid"],
    "p": ["pid", "rss", "shared"],
    "X": ["pid"],
    "d": ["pid", "rss_anon", "rss_file", "rss_shmem", "swap", "locked"],
    "D": ["pid", "pss", "pss_anon", "pss_file", "pss_shmem", "swap", "swap_pss", "rss"],
    "C": ["cgid"],
    "c": ["cgid", "current", "peak", "oom", "oom_kill", "psi_some_us", "psi_full_us"],
    "G": ["cgid"],
    "E": ["kind"],
}
MiB = 1024  # in KiB, the log's unit
GiB = 1024 * 1024
T0 = 1763676000.0  # 2025-11-20T22:00:00Z


def _j(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True)


def _t(t: float) -> str:
    return f"{t:.3f}"


class SimProc:
    def __init__(self, pid: int, start: int, cmd: List[str], rss: int, shared: int,
                 comm: str, cg: str, ppid: int, uid: int) -> None:
        self.pid, self.start, self.cmd, self.rss, self.shared = pid, start, cmd, rss, shared
        self.comm, self.cg, self.ppid, self.uid = comm, cg, ppid, uid
        self.mcg = ""  # the v1 memory cgroup of a hybrid host, when another path
        self.written_rss: Optional[int] = None  # last `p` value
        self.detail: Optional[List[int]] = None  # rss_anon rss_file rss_shmem swap locked
        self.pss: Optional[List[int]] = None
        self.identity_written = False


class Host:
    """A simulated host that writes what the sampler would. Sizes in KiB, like the log."""

    def __init__(self, directory: str, host: str = "sim-1", boot_id: str = "boot-aaaa",
                 mem_total: int = 16 * GiB, base_used: int = 1 * GiB, interval: float = 1.0,
                 t0: float = T0, keyframe_s: float = 300.0, rss_delta_kib: int = 1024,
                 rss_delta_pct: float = 2.0, sampler_pid: int = 4242) -> None:
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.host, self.boot_id, self.mem_total, self.base_used = host, boot_id, mem_total, \
            base_used
        self.interval, self.t, self.keyframe_s = interval, t0, keyframe_s
        self.rss_delta_kib, self.rss_delta_pct = rss_delta_kib, rss_delta_pct
        self.sampler_pid = sampler_pid
        self.started = t0
        self.procs: Dict[int, SimProc] = {}
        self.cgroups: Dict[int, dict] = {}  # cgid -> {"path", "current", "oom_kill", written}
        self.slabs: Dict[str, int] = {}
        self.shmem = 64 * MiB
        self.page_tables = 20 * MiB
        self.anon_pages: Optional[int] = None  # KiB; None: half of used
        self.oom_kill = 0
        self.psi_some = 0
        self.psi_full = 0
        self.ticks = 0
        self.seq = 0
        self.fh = None
        self.path: Optional[str] = None
        self.pending: List[str] = []  # event lines for the next tick
        self.last_keyframe = -1e18
        self.next_start = 1000
        self._new_segment()

    # -- scripting -----------------------------------------------------------------------
    def spawn(self, pid: int, cmd: List[str], rss_mib: float, shared_mib: float = 4,
              comm: Optional[str] = None, cg: str = "/system.slice/app.service",
              ppid: int = 1, uid: int = 0, mcg: str = "") -> None:
        self.next_start += 7
        comm = comm or os.path.basename(cmd[0] if cmd else "?")[:15]
        self.procs[pid] = SimProc(pid, self.next_start, cmd, int(rss_mib * MiB),
                                  int(shared_mib * MiB), comm, cg, ppid, uid)
        self.procs[pid].mcg = mcg

    def set_rss(self, pid: int, rss_mib: float) -> None:
        self.procs[pid].rss = int(rss_mib * MiB)

    def exec_(self, pid: int, cmd: List[str], rss_mib: float) -> None:
        """The process execs another program: same pid and start, a new identity (`P`)."""
        proc = self.procs[pid]
        proc.cmd, proc.comm = cmd, os.path.basename(cmd[0])[:15]
        proc.rss = int(rss_mib * MiB)
        proc.identity_written = False

    def set_detail(self, pid: int, anon_mib: float, file_mib: float, shmem_mib: float = 0,
                   swap_mib: float = 0, locked_mib: float = 0) -> None:
        self.procs[pid].detail = [int(x * MiB) for x in
                                  (anon_mib, file_mib, shmem_mib, swap_mib, locked_mib)]

    def set_pss(self, pid: int, pss_mib: float) -> None:
        pss = int(pss_mib * MiB)
        swap = (self.procs[pid].detail or [0] * 5)[3]  # the same Swap as status reports
        self.procs[pid].pss = [pss, pss, 0, 0, swap, swap]

    def exit(self, pid: int) -> None:
        self.procs.pop(pid)
        self.pending.append(f"X {{t}} {pid}")

    def add_cgroup(self, cgid: int, path: str, current_mib: float = 0) -> None:
        self.cgroups[cgid] = {"path": path, "current": int(current_mib * MiB), "oom_kill": 0,
                              "new": True}

    def set_slab(self, name: str, mib: float) -> None:
        self.slabs[name] = int(mib * MiB)

    def oom_kill_proc(self, pid: int, constraint: str = "CONSTRAINT_NONE",
                      memcg: str = "/") -> None:
        proc = self.procs[pid]
        self.oom_kill += 1
        anon = proc.rss - proc.shared
        self.event("oom_kill", {"pid": pid, "name": proc.comm, "anon_kib": anon,
                                "file_kib": proc.shared, "shmem_kib": 0, "uid": proc.uid,
                                "constraint": constraint, "oom_memcg": memcg,
                                "task_memcg": proc.cg, "cmd": proc.cmd, "source": "kmsg"})
        self.event("oom_counter", {"delta": 1, "total": self.oom_kill})
        self.exit(pid)

    def event(self, kind: str, obj: dict) -> None:
        self.pending.append(f"E {{t}} {kind} {_j(obj)}")

    # -- time ----------------------------------------------------------------------------
    def used(self) -> int:
        return (self.base_used + sum(p.rss - p.shared for p in self.procs.values())
                + sum(self.slabs.values()) + self.shmem + self.page_tables)

    def tick(self, n: int = 1, psi_full_us: int = 0, keyframe: Optional[str] = None) -> None:
        """Write `n` ticks, advancing the clock by the interval before each but the first."""
        for _ in range(n):
            self._tick(psi_full_us, keyframe)
            keyframe = None
            self.t += self.interval

    def skip(self, seconds: float) -> None:
        """Nobody looking for `seconds` (sampler stopped, machine suspended)."""
        self.t += seconds

    def _tick(self, psi_full_us: int, keyframe: Optional[str]) -> None:
        t = _t(self.t)
        used = self.used()
        avail = max(self.mem_total - used, 0)
        slab = sum(self.slabs.values()) + 100 * MiB
        self.psi_full += psi_full_us
        self.psi_some += psi_full_us * 2
        locked = sum((p.detail or [0] * 5)[4] for p in self.procs.values())
        values = {
            "mem_total": self.mem_total, "mem_free": max(avail - 2 * GiB, 0),
            "mem_available": avail, "buffers": 50 * MiB, "cached": 2 * GiB,
            "shmem": self.shmem, "slab": slab, "sreclaimable": slab // 2,
            "sunreclaim": slab - slab // 2, "swap_total": 0, "swap_free": 0,
            "committed_as": used * 2, "unevictable": locked, "mlocked": locked,
            "anon_pages": used // 2 if self.anon_pages is None else self.anon_pages,
            "page_tables": self.page_tables, "kernel_stack": 8 * MiB,
            "hugepages_total": 0, "hugepages_free": 0, "hugepage_size": 2048,
            "oom_kill": self.oom_kill, "pgmajfault": 10, "pgscan_kswapd": 0,
            "pgscan_direct": 0, "pgsteal_kswapd": 0, "pgsteal_direct": 0, "pswpin": 0,
            "pswpout": 0, "allocstall": 0, "psi_some_us": self.psi_some,
            "psi_full_us": self.psi_full, "nprocs": len(self.procs), "tick_cpu_us": 900,
            "tick_wall_us": 1100, "interval_ms": int(self.interval * 1000),
        }
        out = ["s " + t + " " + " ".join(str(values[k]) for k in S_FIELDS)]
        out += [line.replace("{t}", t) for line in self.pending]
        self.pending = []
        if keyframe is None and self.t - self.last_keyframe >= self.keyframe_s:
            keyframe = "periodic"
        segment_start = keyframe == "segment"
        if keyframe:
            self.last_keyframe = self.t
            out.append(f"K {t} {len(self.procs)} {len(self.cgroups)} "
                       + _j({"reason": keyframe}))
        for proc in self.procs.values():
            if segment_start or not proc.identity_written:
                out.append(f"P {t} {proc.pid} {proc.start} {proc.ppid} {proc.uid} "
                           + _j({"comm": proc.comm, "cmd": proc.cmd, "cg": proc.cg,
                                 **({"mcg": proc.mcg} if proc.mcg else {})}))
                proc.identity_written = True
                proc.written_rss = None
            last = proc.written_rss
            threshold = max(self.rss_delta_kib, (last or 0) * self.rss_delta_pct / 100)
            if keyframe or last is None or abs(proc.rss - last) > threshold:
                out.append(f"p {t} {proc.pid} {proc.rss} {proc.shared}")
                proc.written_rss = proc.rss
                if proc.detail:
                    out.append(f"d {t} {proc.pid} " + " ".join(map(str, proc.detail)))
                if proc.pss:
                    out.append(f"D {t} {proc.pid} " + " ".join(map(str, proc.pss))
                               + f" {proc.rss}")
        for cgid, cg in self.cgroups.items():
            if cg["new"]:
                out.append(f"C {t} {cgid} " + _j({"path": cg["path"], "hier": "v2"}))
            if cg["new"] or keyframe:
                out.append(f"c {t} {cgid} {cg['current']} - 0 {cg['oom_kill']} 0 0")
                cg["new"] = False
        if self.slabs and (keyframe or self.ticks % 10 == 0):
            top = sorted(self.slabs.items(), key=lambda kv: -kv[1])
            out.append(f"b {t} " + " ".join(f"{k}={v}" for k, v in top))
        self.ticks += 1
        self._write("\n".join(out) + "\n")

    # -- files ---------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        assert self.fh is not None
        self.fh.write(text)
        self.fh.flush()

    def _new_segment(self) -> None:
        stamp = _time.strftime("%Y%m%dT%H%M%SZ", _time.gmtime(self.t))
        name = f"memtrail-{stamp}-{self.seq:03d}.log"
        self.seq += 1
        self.path = os.path.join(self.dir, name)
        self.fh = open(self.path, "w", encoding="ascii")
        header = {
            "format": 1, "sampler": "0.1.0-sim", "host": self.host, "boot_id": self.boot_id,
            "kernel": "6.1.0-sim", "arch": "x86_64", "page_size": 4096, "clk_tck": 100,
            "interval_s": self.interval, "clock": "realtime", "mono": 1000.0,
            "started": self.started, "pid": self.sampler_pid, "uid": 0, "segment": name,
            "proc_root": "/proc",
            "settings": {"keyframe_s": self.keyframe_s, "rss_delta_kib": self.rss_delta_kib,
                         "rss_delta_pct": self.rss_delta_pct, "redact": True},
            "fields": FIELDS,
        }
        self._write(f"H {_t(self.t)} memtrail 1 {_j(header)}\n")
        for cg in self.cgroups.values():
            cg["new"] = True

    def start_segment_tick(self) -> None:
        """The first tick of a segment carries the segment keyframe with every identity."""
        self.tick(1, keyframe="segment")

    def rotate(self, compress: bool = False) -> None:
        """Close this segment (E rotate) and open the next, as the sampler does."""
        assert self.fh is not None
        stamp = _time.strftime("%Y%m%dT%H%M%SZ", _time.gmtime(self.t))
        next_name = f"memtrail-{stamp}-{self.seq:03d}.log"
        self._write(f"E {_t(self.t - self.interval)} rotate {_j({'next': next_name})}\n")
        self.fh.close()
        old = self.path
        self._new_segment()
        if compress and old:
            self.compress(old)
        self.start_segment_tick()

    @staticmethod
    def compress(path: str) -> str:
        with open(path, "rb") as src, gzip.open(path + ".gz.tmp", "wb") as dst:
            dst.write(src.read())
        os.rename(path + ".gz.tmp", path + ".gz")
        os.remove(path)
        return path + ".gz"

    def restart(self, boot_id: Optional[str] = None) -> None:
        """The sampler stopped (or crashed) and a new run starts a new segment."""
        assert self.fh is not None
        self.fh.close()
        self.sampler_pid += 1
        self.started = self.t
        if boot_id:
            self.boot_id = boot_id
        self.cgroups = {k: dict(v, new=True) for k, v in self.cgroups.items()}
        self._new_segment()
        self.start_segment_tick()

    def stop(self, reason: str = "SIGTERM") -> None:
        assert self.fh is not None
        t = _t(self.t - self.interval)
        self._write(f"Z {t} {_j({'reason': reason, 'ticks': self.ticks})}\n")
        self.fh.close()
        self.fh = None

    def torn(self, text: str = "p 1763676999.000 4123 99") -> None:
        """A crash mid-write: a last line without its newline."""
        assert self.fh is not None
        self._write(text)
        self.fh.close()
        self.fh = None


# -- scenarios ------------------------------------------------------------------------------
# Each returns the log directory; the constants next to it are what the analyzer must say.

NOVA_WORKERS = 24
NOVA_WORKER_MIB = 130


def workers(directory: str) -> str:
    """24 nova-api workers (python3 /usr/bin/nova-api) + their parent, a postgres, a shell."""
    h = Host(directory)
    h.spawn(100, ["/usr/bin/python3", "/usr/bin/nova-api"], 90, comm="nova-api")
    for i in range(NOVA_WORKERS):
        h.spawn(200 + i, [f"nova-api: worker({i})"], NOVA_WORKER_MIB, comm="nova-api",
                ppid=100)
    h.spawn(300, ["postgres", "-D", "/var/lib/postgresql"], 200,
            cg="/system.slice/postgresql.service")
    h.spawn(301, ["postgres: checkpointer"], 40, cg="/system.slice/postgresql.service")
    h.spawn(400, ["-bash"], 5, cg="/user.slice")
    h.add_cgroup(1, "/system.slice/app.service", NOVA_WORKERS * NOVA_WORKER_MIB + 90)
    h.add_cgroup(2, "/system.slice/postgresql.service", 240)
    h.start_segment_tick()
    h.tick(30)
    h.stop()
    return directory


OOM_VICTIM_CMD = ["/usr/bin/python3", "/opt/jobs/hog.py", "--size", "20G"]


def oom(directory: str) -> str:
    """A hog grows until the kernel kills it; a big java stands by."""
    h = Host(directory, mem_total=8 * GiB)
    h.spawn(500, ["java", "-Xmx2g", "-jar", "/opt/app/service.jar"], 1800, comm="java")
    h.spawn(501, OOM_VICTIM_CMD, 100, comm="python3")
    h.spawn(502, ["/usr/sbin/sshd", "-D"], 8)
    h.start_segment_tick()
    for step in range(20):
        h.set_rss(501, 100 + step * 250)
        h.tick(1, psi_full_us=50000 if step > 15 else 0)
    h.oom_kill_proc(501)
    h.tick(10)
    h.stop()
    return directory


LEAK_MIB_PER_HOUR = 60.0


def leak(directory: str) -> str:
    """One process leaks 1 MiB a minute over 2 h (sampled every 10 s); one spikes briefly."""
    h = Host(directory, interval=10.0)
    h.spawn(600, ["/usr/bin/node", "/srv/app/server.js"], 300, comm="node")
    h.spawn(601, ["/usr/bin/ruby", "/srv/worker/bin/sidekiq"], 400, comm="ruby")
    h.spawn(602, ["nginx: worker process"], 30, comm="nginx")
    h.start_segment_tick()
    for step in range(1, 720):
        h.set_rss(600, 300 + step * 10 / 60.0)
        # sidekiq spikes by 1 GiB for 20 s once, then returns: not a leak.
        h.set_rss(601, 1400 if 300 <= step < 302 else 400)
        h.tick(1)
    h.stop()
    return directory


SLAB_CACHE = "nfs_inode_cache"
SLAB_MIB = 2560


def slab(directory: str) -> str:
    """A host where kernel memory (2.5 GiB of nfs_inode_cache) outweighs every process."""
    h = Host(directory)
    h.spawn(700, ["/usr/bin/rsync", "-a", "/mnt/nfs/", "/backup/"], 60)
    h.spawn(701, ["/usr/sbin/sshd", "-D"], 8)
    h.set_slab("dentry", 300)
    h.set_slab(SLAB_CACHE, 100)
    h.start_segment_tick()
    for step in range(1, 31):
        h.set_slab(SLAB_CACHE, 100 + step * (SLAB_MIB - 100) / 30)
        h.tick(1)
    h.tick(5)
    h.stop()
    return directory


GAP_S = 600.0


def gap(directory: str) -> str:
    """Ten minutes where the sampler was stopped, then a new sampler run; ends torn."""
    h = Host(directory)
    h.spawn(800, ["/usr/bin/python3", "-m", "http.server"], 50)
    h.start_segment_tick()
    h.tick(20)
    h.skip(GAP_S)
    h.restart()
    h.tick(20)
    h.torn()
    return directory


def rotated(directory: str) -> str:
    """Three segments of one run: the first two rotated and gzip-compressed."""
    h = Host(directory)
    h.spawn(900, ["/usr/bin/perl", "/usr/local/bin/spamd"], 80)
    h.spawn(901, ["/usr/bin/java", "-jar", "/opt/kafka.jar"], 900)
    h.start_segment_tick()
    h.tick(10)
    h.exit(900)
    h.rotate(compress=True)
    h.tick(10)
    h.rotate(compress=True)
    h.tick(10)
    h.stop()
    return directory


def foreign(directory: str) -> str:
    """A directory with a memtrail-named file that is not a memtrail log, next to a real one."""
    workers(directory)
    with open(os.path.join(directory, "memtrail-20000101T000000Z-000.log"), "w") as fh:
        fh.write("this is not a memtrail log\nat all\n")
    return directory
