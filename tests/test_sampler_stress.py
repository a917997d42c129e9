"""The sampler under churn, a long accelerated run, and memory pressure in its own cgroup."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import SAMPLER, log_text, records, wait_for

from memtrail import reader
from memtrail import sampler as S
from memtrail.model import Run, replay

pytestmark = [pytest.mark.live, pytest.mark.slow]

FORKER = r"""
import os, sys, time
end = time.monotonic() + float(sys.argv[1])
made = 0
while time.monotonic() < end:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    made += 1
print(made)
"""


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_process_churn_never_confuses_identities(tmp_path, sampler_factory):
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--interval", "0.02")
    s.wait_ticks(2)
    forkers = [subprocess.Popen([sys.executable, "-c", FORKER, "4"], stdout=subprocess.PIPE,
                                text=True) for _ in range(2)]
    made = sum(int(f.communicate(timeout=60)[0]) for f in forkers)
    s.wait_ticks(log_text(logdir).count("\ns ") + 3)
    assert s.stop() == 0
    print(f"{made} short-lived processes in 4 s ({made / 4:.0f}/s)")
    assert made > 1000
    stats = reader.ReadStats()
    recs = records(logdir, stats)
    assert stats.problems == 0
    live = {}  # pid -> start: a P for a live pid must be the same process (a re-check)
    reused = 0
    for rec in recs:
        if rec.type == "P":
            pid, start = rec.int("pid"), rec.int("start")
            if pid in live:
                assert live[pid] == start, f"pid {pid} changed identity without an exit"
            live[pid] = start
        elif rec.type == "X":
            pid = rec.int("pid")
            assert pid in live, f"exit of unknown pid {pid}"
            del live[pid]
            reused += 1
        elif rec.type == "p":
            assert rec.int("pid") in live, "a sample for a process with no identity"
    assert reused > 0


def test_soak_keeps_memory_flat(tmp_path, sampler_factory, fakeproc):
    """Thousands of ticks with processes coming and going: RSS must not creep."""
    for pid in range(100, 600):
        fakeproc.add(pid, ["steady", str(pid)], rss_kib=1000 + pid)
    stop = threading.Event()

    def churn():
        n = 0
        while not stop.is_set():
            pid = 10000 + n % 300
            if (fakeproc.root / str(pid)).exists():
                fakeproc.remove(pid)
            else:
                fakeproc.add(pid, ["churn", "x" * (n % 500)], start=n)
            fakeproc.set_rss(100 + n % 500, 1000 + (n * 37) % 90000)
            n += 1
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--interval", "0.005", "--proc-root", str(fakeproc.root),
                        "--no-cgroups", "--keyframe", "0.5", "--rotate-size", "256K",
                        "--max-total", "2M", "--status-every", "0.05", "--pss-every", "0.1")
    s.wait_ticks(5)
    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    samples = []
    try:
        for _ in range(16):
            time.sleep(1)  # sampling the sampler's memory once a second is the measurement
            samples.append(rss_kib(s.pid))
    finally:
        stop.set()
        worker.join()
    assert s.stop() == 0
    ticks = sum(1 for r in records(logdir) if r.type == "s")
    warm = samples[3:8]
    late = samples[-5:]
    growth = max(late) - min(warm)
    print(f"soak: RSS {samples[3]} -> {samples[-1]} KiB over {len(samples)} s, "
          f"growth {growth} KiB, ticks still on disk {ticks}")
    assert growth < 1024, samples


def _v1_memory_cgroup(name: str):
    v1 = Path("/sys/fs/cgroup/memory")
    if not v1.is_dir() or os.geteuid() != 0:
        return None
    d = v1 / name
    d.mkdir()
    return d


THRASH = r"""
import mmap, os, sys
path = sys.argv[1]
anon = bytearray(120 << 20)
for i in range(0, len(anon), 4096):
    anon[i] = 1
with open(path, "rb") as fh:
    m = mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ)
    total = 0
    while True:
        for off in range(0, len(m), 4096):
            total += m[off]
"""


CONTROL = r"""
import sys, time
interval, path = float(sys.argv[1]), sys.argv[2]
deadline = time.monotonic()
with open(path, "w") as fh:
    while True:
        deadline += interval
        wait = deadline - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        else:
            deadline = time.monotonic()  # late: no burst to catch up, as the sampler
        fh.write(f"{time.time()}\n")
        fh.flush()
"""


@pytest.mark.root
def test_ticks_keep_their_pace_under_memory_pressure(tmp_path, sampler_factory):
    """Sampler and a page-cache thrasher share a 200 MiB cgroup: ticks stay on time.

    Judged by what the sampler itself recorded (no gap, no missed tick) and against a control
    measured beside it in the same cgroup and the same seconds: a trivial loop that sleeps to
    the same deadlines. A neighbour using the CPU (2 cores shared by a whole CI) stretches the
    control's ticks as much as the sampler's, so an absolute bound (an earlier version asserted
    p95 <= 2x and saw 2.15 on a loaded machine) tests the neighbours, not the sampler. The
    absolute figures are printed; bench/ is where they are measured on a quiet machine.
    """
    name = f"memtrail-pressure-{os.getpid()}"
    try:
        cg = _v1_memory_cgroup(name)
    except OSError as exc:
        pytest.skip(f"cannot create a memory cgroup: {exc}")
    if cg is None:
        pytest.skip("needs root and a cgroup v1 memory hierarchy (this host's layout)")
    thrash = control = None
    try:
        (cg / "memory.limit_in_bytes").write_text(str(200 << 20))
        big = tmp_path / "big"
        with open(big, "wb") as fh:  # real data, then out of the page cache: re-reads do I/O
            chunk = os.urandom(1 << 20)
            for _ in range(300):
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        procs = str(cg / "cgroup.procs")

        def join_cgroup():
            with open(procs, "w") as fh:
                fh.write(str(os.getpid()))
        logdir = tmp_path / "log"
        interval = 0.2
        control_log = tmp_path / "control"  # first: it must cover every tick of the sampler
        control = subprocess.Popen([sys.executable, "-c", CONTROL, str(interval),
                                    str(control_log)], preexec_fn=join_cgroup)
        wait_for(lambda: control_log.exists() and control_log.read_text().count("\n") >= 2,
                 timeout=60, what="the control ticking")
        sampler = subprocess.Popen([sys.executable, "-I", "-S", str(SAMPLER), "--dir",
                                    str(logdir), "--interval", str(interval), "--quiet"],
                                   preexec_fn=join_cgroup)
        thrash = subprocess.Popen([sys.executable, "-c", THRASH, str(big)],
                                  preexec_fn=join_cgroup)
        wait_for(lambda: logdir.exists() and log_text(logdir).count("\ns ") >= 40
                 and control_log.exists() and control_log.read_text().count("\n") >= 40,
                 timeout=60, what="40 ticks under pressure, of the sampler and the control")
        sampler.terminate()
        assert sampler.wait(30) == 0
        control.kill()
        control.wait()
        lines = log_text(logdir).splitlines()
        ticks = [line.split() for line in lines if line.startswith("s ")][2:]
        # Pace is judged against the interval in force (`interval_ms`, by its place in the
        # header's fields): under PSI stall the sampler rightly ticks faster.
        at = 2 + S.S_INDEX["interval_ms"]
        ratios = sorted((float(b[1]) - float(a[1])) / (int(a[at]) / 1000)
                        for a, b in zip(ticks, ticks[1:]))
        median = statistics.median(ratios)
        p95 = ratios[int(len(ratios) * 0.95)]
        fast = sum(t[at] != ticks[0][at] for t in ticks)
        majfault = [r.int("pgmajfault") for r in records(logdir) if r.type == "s"]
        print(f"pressure: tick spacing / interval: median {median:.3f}, p95 {p95:.3f} over "
              f"{len(ticks)} ticks ({fast} at the fast rate), major faults "
              f"{majfault[-1] - majfault[0]}")
        # The control's spacing over the same seconds (its clock is the same realtime).
        wall = [float(line) for line in control_log.read_text().split()]
        first, last = float(ticks[0][1]), float(ticks[-1][1])
        spans = sorted((b - a) / interval for a, b in zip(wall, wall[1:])
                       if first <= a and b <= last)
        c_median = statistics.median(spans)
        c_p95 = spans[int(len(spans) * 0.95)]
        print(f"control beside it: median {c_median:.3f}, p95 {c_p95:.3f} over {len(spans)}")
        # What the sampler recorded: a stall of its ticks (its own `gap` record, or ticks
        # further apart than the model's threshold) is allowed only when the control beside it
        # stalled over the same seconds too: the machine stopped both (on a loaded 2-core host
        # a 1.4 s stall of everything was seen), not the sampler alone.
        run = Run()
        list(replay(str(logdir), run=run))
        for gap in run.gaps:
            assert wall[0] <= gap.start, "the control did not cover the stall"
            shared = max((b - a for a, b in zip(wall, wall[1:])
                          if a < gap.end and b > gap.start), default=0.0)
            print(f"sampler stall {gap.seconds:.2f} s ({gap.reason}); control's: {shared:.2f} s")
            assert shared >= 0.5 * gap.seconds - interval, (gap, shared)
        # Against the control: no later than a trivial loop under the same load (a 50% margin
        # and 0.1 interval for the noise of 40 samples).
        assert median <= max(1.1, c_median * 1.5)
        assert p95 <= max(2.0, c_p95 * 1.5 + 0.1)
        start = [json.loads(line[line.index("{"):]) for line in lines if " residency " in line]
        assert start and start[0]["mlock"].startswith("locked")
    finally:
        for proc in (thrash, control):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        for _ in range(50):
            try:
                cg.rmdir()
                break
            except OSError:
                time.sleep(0.1)
