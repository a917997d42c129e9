#!/usr/bin/env python3
"""Benchmark memtrail's sampler against the tools people would otherwise use, in one run.

Why one script: a claim like "cheaper than atop" only means something when both are measured
on the same host, with the same processes, at the same interval, in the same run; and anyone
should be able to re-run it. It installs the peers (apt-get: atop sysstat procps; pip: psutil
into bench/out/venv), starts crowds of idle and churning processes, measures each contender's
CPU per tick from the kernel's accounting, the sampler's memory and log size, and writes
bench/RESULTS.md (+ bench/scaling.svg) and raw JSON in bench/out/.

usage: bench/run.py [--quick | --smoke] [--no-install] [--out DIR] [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import breakdown  # noqa: E402
import logsize  # noqa: E402
import measure  # noqa: E402
import render  # noqa: E402
import spawn  # noqa: E402

SAMPLER = ROOT / "src" / "memtrail" / "sampler.py"
# Steady state: on a shared host other people's memory pressure (PSI, new MemAvailable lows)
# would switch the sampler to its fast "trouble" rate and write snapshots; that is a feature,
# but not the cost being compared here, so the triggers are set out of reach.
STEADY_FLAGS = ["--psi-full-pct", "100", "--low-pct", "0", "--low-step", "1T"]
VENV = HERE / "out" / "venv"
MINIMAL_FLAGS = [  # every tier off: the PSS tier has two halves (programs and top N)
    "--top-n", "0", "--pss-top-n", "0", "--pss-programs", "0", "--no-cgroups", "--no-slab",
    "--no-kmsg",
]


def unit_launcher(py: str, tmp: Path) -> Path:
    """The sampler laid out as `memtrail install-unit` lays it out: sampler.py, its .pyc
    compiled by the same interpreter, and the launcher the unit's ExecStart runs."""
    lib = tmp / "lib-memtrail"
    lib.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLER, lib / "sampler.py")
    shutil.copy(ROOT / "systemd" / "memtrail-sampler.py", lib / "memtrail-sampler.py")
    subprocess.run([py, "-I", "-S", "-m", "py_compile", str(lib / "sampler.py")], check=True)
    return lib / "memtrail-sampler.py"


@dataclass
class Mode:
    """How much to measure: process counts, windows and ticks per window."""

    name: str
    counts: list[int]
    churn_counts: list[int]
    log_counts: list[int]  # extra log-size-only scenarios (idle and churning)
    windows: int
    fast_ticks: int  # ticks per window at the fast interval
    slow_ticks: int  # ticks per window at 1 s (atop, sadc)
    fast_s: float = 0.25
    peers: bool = True
    attempts: int = 3  # measure again when another workload moved the process count
    quiet_wait_s: float = 120.0  # wait this long for a bigger foreign crowd to go away
    big_counts: list[int] = field(default_factory=list)  # memtrail and floors only, at 1 s
    memtrail_windows: int = 0  # memtrail's own windows x ticks, when longer (0: the same)
    memtrail_ticks: int = 0


MODES = {
    "full": Mode("full", [100, 1000, 2000, 5000], [2000], [300], 5, 12, 3,
                 big_counts=[20000]),
    "quick": Mode("quick", [2000], [], [], 3, 8, 2),
    "smoke": Mode("smoke", [5], [5], [], 2, 2, 1, fast_s=0.1, peers=False, attempts=1,
                  quiet_wait_s=0),
}


SHARED_CGROUP = [False]  # --shared-cgroup


def real_python() -> str:
    """The interpreter a unit would name: /usr/bin/python3, else this one (never a shim)."""
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    return os.path.realpath(sys.executable)


def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def setup_peers(install: bool) -> tuple[dict[str, str | None], list[str]]:
    """Find (and with `install`, install) the peers; returns their paths and notes."""
    notes: list[str] = []
    want = {"atop": "atop", "sadc": "sysstat", "ps": "procps"}
    found = _find_tools()
    missing = [pkg for tool, pkg in want.items() if not found[tool]]
    if missing and install:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            log(f"apt-get install -y {' '.join(missing)}")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            cmd = ["apt-get", "install", "-y", "-q", *missing]
            r = subprocess.run(cmd, capture_output=True, env=env)
            if r.returncode != 0:
                subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env)
                r = subprocess.run(cmd, capture_output=True, env=env)
            if r.returncode != 0:
                notes.append(f"apt-get install {' '.join(missing)} failed: "
                             + r.stderr.decode(errors="replace").strip()[-200:])
            return _find_tools() | {"psutil": psutil_python(install, notes)}, notes
        notes.append(f"not installed and cannot install (need root and apt-get): {missing}")
    for tool, pkg in want.items():
        if not found[tool]:
            notes.append(f"{tool} skipped: package {pkg} not available")
    found["psutil"] = psutil_python(install, notes)
    return found, notes


def _find_tools() -> dict[str, str | None]:
    return {
        "atop": shutil.which("atop"),
        "sadc": next(
            (p for p in ("/usr/lib/sysstat/sadc", "/usr/lib64/sa/sadc", "/usr/libexec/sysstat/sadc")
             if os.access(p, os.X_OK)), None),
        "ps": shutil.which("ps"),
    }


def psutil_python(install: bool, notes: list[str]) -> str | None:
    """A python with psutil: bench/out/venv (created from the system python), else None."""
    py = VENV / "bin" / "python"
    probe = [str(py), "-c", "import psutil"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return str(py)
    if not install:
        notes.append("psutil skipped: not installed (run without --no-install)")
        return None
    log("creating bench/out/venv and pip installing psutil")
    r = subprocess.run([real_python(), "-m", "venv", str(VENV)], capture_output=True)
    if r.returncode == 0:
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "psutil"], capture_output=True)
    if r.returncode != 0 or subprocess.run(probe, capture_output=True).returncode != 0:
        notes.append("psutil skipped: venv/pip install failed: "
                     + r.stderr.decode(errors="replace").strip()[-200:])
        return None
    return str(py)


BIG_ONLY = {"memtrail", "memtrail minimal", "python floor", "python floor, fds held", "C floor",
            "C floor, fds held"}
CHURN_ONLY = {"C floor, named"}  # without newcomers it is the held floor
BIG_KIB_SPAN = 64  # each child of a big crowd touches 64-128 KiB (20,000 x 960 would be 11 GiB)


def big_mode(mode: Mode) -> Mode:
    """A big crowd: the sampler at the unit's 1 s tick next to the floors (the peers would
    take most of a second per sample), the floors over a minute, the sampler over 5.5 minutes:
    the PSS tier reads every member of the largest programs in its start-up round and then,
    while a program's memory does not move, every fifth round (a minute apart), so its cost
    per tick is a mean over that period, start-up round included."""
    return replace(mode, fast_s=1.0, peers=False, windows=4, fast_ticks=15,
                   memtrail_windows=5, memtrail_ticks=66)


def fit_crowd(n: int) -> int:
    """N, or fewer when this process may not hold a descriptor per process (RLIMIT_NOFILE's
    hard limit, which only CAP_SYS_RESOURCE raises): the unit's LimitNOFILE= is 65536."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= n + 200:
        if soft < n + 200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
        return n
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard - 100


def contenders(
    tmp: Path, mode: Mode, peers: dict, slow: bool, launcher: Path | None
) -> list[measure.Contender]:
    """Everything to measure at one crowd; `slow` picks the 1 s peers (atop, sadc). Files go
    under TMP; memtrail is started through LAUNCHER (see unit_launcher), if there is one."""
    py = real_python()
    fast = mode.fast_s
    out: list[measure.Contender] = []
    if slow:
        if peers.get("atop"):
            for name, extra in (("atop", []), ("atop -a", ["-a"])):
                f = tmp / f"atop{len(extra)}.raw"
                out.append(measure.Contender(
                    name, [peers["atop"], *extra, "-w", str(f), "1"], 1.0, size_path=f,
                    note="raw log, all processes" if extra else "raw log, as the Debian service"))
        if peers.get("sadc"):
            f = tmp / "sa.data"
            out.append(measure.Contender(
                "sadc", [peers["sadc"], "1", str(f)], 1.0, size_path=f,
                note="system-wide only, no per-process data"))
        return out
    if launcher:
        for name, extra in (("memtrail", []), ("memtrail minimal", MINIMAL_FLAGS)):
            d = tmp / name.replace(" ", "-")
            out.append(measure.Contender(
                name,
                [py, "-I", "-S", str(launcher), "--dir", str(d), "--interval", str(fast),
                 "--quiet", "--journal", "no", *STEADY_FLAGS, *extra],
                fast, ticks="log", log_dir=d, size_path=d))
    st = tmp / "floor.status"
    out.append(measure.Contender(
        "python floor", [py, "-I", "-S", str(HERE / "drivers.py"), "floor", str(fast), str(st)],
        fast, ticks="status", status_file=st))
    st = tmp / "held.status"
    out.append(measure.Contender(
        "python floor, fds held",
        [py, "-I", "-S", str(HERE / "drivers.py"), "held", str(fast), str(st)],
        fast, ticks="status", status_file=st))
    exe = spawn.compile_c("floor")
    if exe:
        st = tmp / "cfloor.status"
        out.append(measure.Contender(
            "C floor", [str(exe), str(fast), str(st)], fast, ticks="status", status_file=st))
        st = tmp / "cheld.status"
        out.append(measure.Contender(
            "C floor, fds held", [str(exe), str(fast), str(st), "held"], fast, ticks="status",
            status_file=st, note="one pread per process a tick: the kernel's least"))
        st = tmp / "cnamed.status"
        out.append(measure.Contender(
            "C floor, named", [str(exe), str(fast), str(st), "named"], fast, ticks="status",
            status_file=st, note="and each newcomer's stat, cmdline, cgroup, twice"))
    if mode.peers and peers.get("psutil"):
        st = tmp / "psutil.status"
        out.append(measure.Contender(
            "psutil", [peers["psutil"], str(HERE / "drivers.py"), "psutil", str(fast), str(st)],
            fast, ticks="status", status_file=st, note="process_iter(['memory_info'])"))
    if mode.peers and peers.get("ps"):
        st = tmp / "ps.status"
        out.append(measure.Contender(
            "ps", [py, "-I", "-S", str(HERE / "drivers.py"), "ps", str(fast), str(st)],
            fast, ticks="status", status_file=st,
            note="`ps -eo pid,rss,args` forked per tick: ps + the forking loop"))
    return out


def _tolerance(n: int) -> int:
    return max(10, n // 20)


class CrowdKeeper:
    """Keeps the host at N user processes: other workloads on a shared host come and go, so
    the crowd is resized (restarted) whenever the count drifted out of tolerance."""

    def __init__(self, nprocs: int, churn: spawn.Churn | None, kib_span: int | None = None):
        self.nprocs, self.churn, self.kib_span = nprocs, churn, kib_span
        self.crowd: spawn.Crowd | None = None
        self.target = nprocs  # user processes right after the crowd started
        # The crowd lives in a cgroup of its own, as a service's workers do (not in the
        # recorders' own): where no task ran, memtrail leaves their statm unread
        self.cgroup = None if SHARED_CGROUP[0] else spawn.unit_cgroup(
            f"mtbench-crowd-{os.getpid()}")

    def ensure(self, quiet_wait_s: float = 60.0) -> int:
        """(Re)start the crowd if needed; returns the expected /proc entry count."""
        user = spawn.count_processes()
        if self.crowd is None or abs(user - self.target) > _tolerance(self.nprocs):
            if self.crowd:
                self.crowd.stop()
            deadline = time.monotonic() + quiet_wait_s
            base = spawn.count_processes()
            # Wait a little for a foreign crowd bigger than ours to go away.
            while base > self.nprocs and time.monotonic() < deadline:
                time.sleep(1)
                base = spawn.count_processes()
            self.crowd = spawn.start(max(2, self.nprocs - base), self.churn,
                                     timeout_s=120 + self.nprocs / 50, kib_span=self.kib_span,
                                     cgroup=self.cgroup)
            self.target = user = spawn.count_processes()
        return self.target + measure.proc_entries() - user  # + kernel threads

    def stop(self) -> None:
        if self.crowd:
            self.crowd.stop()
            self.crowd = None
        spawn.remove_cgroup(self.cgroup)
        self.cgroup = None


def run_scenario(
    nprocs: int, churn: bool, mode: Mode, peers: dict, only: set[str] | None, raw_dir: Path,
    kib_span: int | None = None,
) -> list[dict]:
    """One crowd size (idle or churning): every contender, fast ones then the 1 s peers.

    A contender whose run saw the process count drift (another workload on the host) is
    measured again, up to 3 attempts; the row says how many it took.
    """
    scenario = f"{nprocs} {'churn' if churn else 'idle'}"
    rows: list[dict] = []
    for slow in (False, True):
        if slow and not mode.peers:
            continue
        with tempfile.TemporaryDirectory(prefix="mtbench-") as t:
            tmp = Path(t)
            launcher = unit_launcher(real_python(), tmp) if SAMPLER.exists() and not slow else None
            names = [c.name for c in contenders(tmp, mode, peers, slow, launcher)
                     if (not only or c.name in only)
                     and (churn or c.name not in CHURN_ONLY)]
            if not names:
                continue
            interval = mode.fast_s if not slow else 1.0
            ch = spawn.Churn(int(interval * 1000), 10, 50) if churn else None
            keeper = CrowdKeeper(nprocs, ch, kib_span)
            try:
                for name in names:
                    for attempt in range(1, mode.attempts + 1):
                        # Fresh paths (log dir, raw file) for every attempt.
                        c = next(x for x in contenders(tmp / f"{attempt}", mode, peers,
                                                        slow, launcher) if x.name == name)
                        (tmp / f"{attempt}").mkdir(exist_ok=True)
                        if kib_span and name == "memtrail":  # its cgroup charge: MemoryMax=
                            c.cgroup = measure.memory_cgroup(f"mtbench-{os.getpid()}-{attempt}")
                        expected = keeper.ensure(mode.quiet_wait_s)
                        again = f", attempt {attempt}" if attempt > 1 else ""
                        log(f"{scenario}: {name} ({keeper.target} processes{again})")
                        windows, ticks = mode.windows, mode.slow_ticks if slow else \
                            mode.fast_ticks
                        if name == "memtrail" and mode.memtrail_windows:
                            windows, ticks = mode.memtrail_windows, mode.memtrail_ticks
                        res = measure.run(c, nprocs, scenario, windows, ticks,
                                          stderr_path=tmp / "stderr.txt")
                        if c.cgroup is not None:
                            try:
                                c.cgroup.rmdir()
                            except OSError:
                                pass
                        seen = res.proc_entries or [expected]
                        drift = max(abs(x - expected) for x in seen)
                        if drift <= _tolerance(nprocs) or res.error or attempt == mode.attempts:
                            break
                        log(f"  process count drifted by {drift} (another workload?): again")
                    row = res.to_json()
                    row["attempts"] = attempt
                    row["drift"] = drift
                    row["host_processes"] = keeper.target
                    row["crowd"] = keeper.crowd.kind if keeper.crowd else "-"
                    row["crowd_cgroup"] = "own" if keeper.cgroup is not None else "shared"
                    if c.log_dir and c.log_dir.exists():
                        ls = logsize.analyze(c.log_dir, tick_s=1.0)
                        row["logsize"] = ls.__dict__ if ls else None
                        keep = raw_dir / f"{name.replace(' ', '-')}-{nprocs}-{scenario.split()[1]}"
                        shutil.rmtree(keep, ignore_errors=True)
                        shutil.copytree(c.log_dir, keep)
                    rows.append(row)
                    if res.error:
                        log(f"  error: {res.error}")
                    else:
                        log(f"  median {res.median_ms:.3f} ms/tick over {res.ticks} ticks, "
                            f"rss {res.vm_rss_kib} KiB, others busy {res.host_busy_pct}%")
            finally:
                keeper.stop()
    return rows


def run_analyzer_bench() -> str:
    """bench/bench_analyzer.py's markdown (a generated day: report/top/check time and RSS)."""
    log("analyzer: bench/bench_analyzer.py --runs 1")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, str(HERE / "bench_analyzer.py"), "--runs", "1"],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return f"bench_analyzer.py failed ({r.returncode}): {r.stderr.strip()[-300:]}"
    return r.stdout.strip()


NS_ENV = "MEMTRAIL_BENCH_NS"


def isolate(argv: list[str]) -> int | None:
    """Re-run this script in a private PID namespace with its own /proc, when root.

    Why: on a shared host other people's processes come and go (thousands at a time), and
    every contender's cost is per visible process. In a PID namespace every contender, from
    the sampler to atop and ps, sees exactly the crowd we started (host-wide files such as
    /proc/meminfo stay the host's), and when the namespace's init exits the kernel kills
    everything left in it. Returns the exit code of the isolated run, or None to run here.
    """
    if os.environ.get(NS_ENV):
        if os.getpid() != 1:
            return None
        child = os.fork()
        if child == 0:
            return None  # the real run, as PID 2; PID 1 below only reaps orphans
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda signum, _f: os.kill(child, signum))
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                return 1
            if pid == child:
                return os.waitstatus_to_exitcode(status)
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or not unshare:
        return None
    ns = [unshare, "--pid", "--fork", "--mount-proc", "--kill-child"]
    if subprocess.run([*ns, "true"], capture_output=True).returncode != 0:
        log("cannot create a PID namespace here: running on the shared /proc")
        return None
    env = dict(os.environ, **{NS_ENV: "1"})
    p = subprocess.Popen(
        [*ns, os.path.realpath(sys.executable), str(Path(__file__).resolve()), *argv], env=env)

    def forward(signum: int, _frame: object) -> None:
        # unshare ignores SIGTERM while it waits: pass it to the namespace's init ourselves.
        try:
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                for pid in f.read().split():
                    os.kill(int(pid), signum)
        except (OSError, ValueError):
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            return p.wait()
        except KeyboardInterrupt:
            continue


def machine() -> dict:
    """What the figures depend on: kernel, cores, memory, CPU model, python."""
    info = {
        "kernel": platform.release(),
        "cores": os.cpu_count(),
        "python": subprocess.run([real_python(), "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True).stdout.strip(),
        "python_path": real_python(),
    }
    try:
        with open("/proc/meminfo") as f:
            info["mem_gib"] = round(int(f.readline().split()[1]) / 1048576, 1)
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    r = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %cI", "--",
                        "src/memtrail/sampler.py"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--",
                            "src/memtrail/sampler.py"]).returncode
    info["sampler_commit"] = (r.stdout.strip() or "?") + (" + local changes" if dirty else "")
    for tool, args in (("atop", ["-V"]), ("ps", ["--version"])):
        if shutil.which(tool):
            r = subprocess.run([tool, *args], capture_output=True, text=True)
            first = (r.stdout or r.stderr).strip().splitlines()[0]
            info[f"{tool}_version"] = (" ".join(first.replace("Version:", "atop").split()[:2])
                                       if tool == "atop" else first)
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="2000 idle processes only (< 2 min)")
    g.add_argument("--smoke", action="store_true", help="a few processes, no peers (tests)")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get / pip install")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="raw JSON and logs")
    ap.add_argument("--results", type=Path, default=None,
                    help="markdown results (default: bench/RESULTS.md; none with --smoke)")
    ap.add_argument("--only", default="", help="comma-separated contender names")
    ap.add_argument("--no-isolate", action="store_true",
                    help="do not run in a private PID namespace (see isolate())")
    ap.add_argument("--analyzer", action="store_true",
                    help="also run bench/bench_analyzer.py (always in full mode)")
    ap.add_argument("--shared-cgroup", action="store_true",
                    help="keep the crowd in the bench's own cgroup (default: one of its own, "
                         "as a service's, where memtrail skips the processes of an idle one)")
    ap.add_argument("--profile", action="store_true",
                    help="also break down the sampler's memory and CPU (always in full mode)")
    a = ap.parse_args(argv)
    SHARED_CGROUP[0] = a.shared_cgroup
    if not a.no_isolate:
        code = isolate(sys.argv[1:] if argv is None else argv)
        if code is not None:
            return code
    # SIGTERM/SIGHUP: unwind like Ctrl-C so every crowd and contender is cleaned up.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _f: sys.exit(128 + signum))
    mode = MODES["quick" if a.quick else "smoke" if a.smoke else "full"]
    started = time.monotonic()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    a.out.mkdir(parents=True, exist_ok=True)
    raw_dir = a.out / f"logs-{stamp}"
    raw_dir.mkdir(parents=True, exist_ok=True)
    if mode.peers:
        peers, notes = setup_peers(not a.no_install)
    else:
        peers, notes = {}, ["smoke mode: peers not measured"]
    if not SAMPLER.exists():
        notes.append(f"memtrail skipped: {SAMPLER} does not exist yet")
    probe = None if a.shared_cgroup else spawn.unit_cgroup(f"mtbench-probe-{os.getpid()}")
    if probe is not None:
        spawn.remove_cgroup(probe)
        notes.append("each crowd runs in a v2 cgroup of its own, as a service's workers do: "
                     "memtrail leaves the statm of a cgroup where no task ran since its last "
                     "tick unread, and reads every process at every 10th tick (each window "
                     "holds one or two such ticks); --shared-cgroup measures without")
    else:
        notes.append("each crowd shares the bench's cgroup (--shared-cgroup, or no writable "
                     "cgroup2 mount): memtrail reads every process at every tick")
    scenarios = [(n, False) for n in mode.counts] + [(n, True) for n in mode.churn_counts]
    if spawn.compile_c("spawner") is None:
        notes.append("no C compiler: crowd is forked Python children, no churn, no C floor")
        scenarios = [s for s in scenarios if not s[1]]
    only = {s.strip() for s in a.only.split(",") if s.strip()} or None
    rows: list[dict] = []
    for n, churn in scenarios:
        rows += run_scenario(n, churn, mode, peers, only, raw_dir)
    for n in mode.big_counts:
        fit = fit_crowd(n)
        if fit < n:
            notes.append(f"{n} processes: measured with {fit}, as many as this machine's "
                         f"RLIMIT_NOFILE hard limit lets one process hold a descriptor for "
                         f"(raising it needs CAP_SYS_RESOURCE)")
        big = big_mode(mode)
        rows += run_scenario(fit, False, big, peers, BIG_ONLY & (only or BIG_ONLY), raw_dir,
                             kib_span=BIG_KIB_SPAN)
    for n in mode.log_counts:
        for churn in (False, True):
            sel = {"memtrail", "atop", "atop -a"} & (only or {"memtrail", "atop", "atop -a"})
            rows += run_scenario(n, churn, mode, peers, sel, raw_dir)
    prof = None
    if SAMPLER.exists() and (a.profile or mode.name == "full"):
        log("profile: where the sampler's memory and CPU go at 2000 processes")
        prof = breakdown.run_all(2000, real_python(), STEADY_FLAGS)
    analyzer = None
    if (HERE / "bench_analyzer.py").exists() and (a.analyzer or mode.name == "full"):
        analyzer = run_analyzer_bench()
    result = {
        "profile": prof,
        "analyzer": analyzer,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "mode": mode.name,
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine(),
        "fast_interval_s": mode.fast_s,
        "windows": mode.windows,
        "fast_ticks": mode.fast_ticks,
        "slow_ticks": mode.slow_ticks,
        "minimal_flags": MINIMAL_FLAGS,
        "steady_flags": STEADY_FLAGS,
        "notes": notes,
        "isolated": bool(os.environ.get(NS_ENV)),
        "rows": rows,
    }
    out_json = a.out / f"results-{mode.name}-{stamp}.json"
    out_json.write_text(json.dumps(result, indent=1))
    log(f"raw results: {out_json} ({result['duration_s']} s)")
    results = a.results if a.results else (None if a.smoke else HERE / "RESULTS.md")
    if results:
        render.write(result, results)
        log(f"wrote {results}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
