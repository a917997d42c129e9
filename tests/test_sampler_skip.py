"""The sampler skips listing /proc while the kernel says no process can have appeared.

The fixture trees stand in for a kernel that reports its last allocated pid in /proc/loadavg
and whose /proc is the sampler's own PID namespace (`NSpid` with one entry, our pid). The live
test runs in a private PID namespace, so the counter moves only for processes it starts itself.
No timing is asserted anywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT
from fakeproc import FakeProc

from memtrail import sampler as S


class Kernel(FakeProc):
    """A fake /proc that, like the kernel, moves /proc/loadavg's last pid at every new pid."""

    def __init__(self, root, own_namespace: bool = True) -> None:
        super().__init__(root)
        self.last_pid = 1
        if own_namespace:
            (self.root / "self/status").write_text(f"Name:\tpython3\nNSpid:\t{os.getpid()}\n")
        self._loadavg()

    def _loadavg(self) -> None:
        self._write("loadavg", f"0.10 0.20 0.30 1/123 {self.last_pid}\n")

    def add(self, pid, argv, bump: bool = True, **kw) -> None:
        super().add(pid, argv, **kw)
        if bump:
            self.last_pid = pid
            self._loadavg()

    def remove(self, pid: int) -> None:
        # A real exit fails the held descriptor's read; a fixture file stays readable once
        # opened, so the fake kernel makes the sampler list (a thread's pid would do the same).
        super().remove(pid)
        self.last_pid += 1
        self._loadavg()


def make(root, tmp_path, name: str):
    cfg = S.parse_args(["--dir", str(tmp_path / name), "--proc-root", str(root), "--kmsg", "",
                        "--no-mlock", "--no-oom-adj", "--no-cgroups", "--quiet", "--journal",
                        "no", "--keyframe", "20s", "--status-every", "3s"])
    S.check_log_dir(cfg.dir)
    return S.Sampler(cfg)


@pytest.fixture
def listings(monkeypatch):
    """How many times the sampler listed a directory (only scan_processes lists)."""
    calls = []
    real = os.listdir

    def counting(path="."):
        calls.append(path)
        return real(path)
    monkeypatch.setattr(S.os, "listdir", counting)
    return calls


def _mask(data: bytes) -> bytes:
    """A tick's lines with the sampler's own CPU and wall time per tick (measured, so never
    the same twice) blanked out of its `s` line, and the PSS tier's read times (and so which
    read was slowest) out of its `pss` events."""
    cpu, wall = S.S_INDEX["tick_cpu_us"] + 2, S.S_INDEX["tick_wall_us"] + 2
    out = []
    for line in data.split(b"\n"):
        if line.startswith(b"s "):
            parts = line.split(b" ")
            parts[cpu] = parts[wall] = b"*"
            line = b" ".join(parts)
        elif line.startswith(b"E ") and line.split(b" ", 3)[2] == b"pss":
            line = re.sub(rb'"(ms|max_ms|max_pid)":[0-9.a-z]+', rb'"\1":*', line)
        out.append(line)
    return b"\n".join(out)


def _script(kernel: Kernel, sampler, ticks: int = 70) -> bytes:
    """A minute of a host: processes come, grow, shrink, go; a snapshot; a new segment."""
    t = 1_700_000_000.0
    out = []
    for pid in range(100, 140):
        kernel.add(pid, ["/usr/bin/app", str(pid)], rss_kib=10000 + pid * 100)
    kernel.add(2, [], comm="kthreadd", kthread=True)
    for i in range(ticks):
        if i % 9 == 4:
            kernel.add(200 + i, ["/bin/job", str(i)], rss_kib=5000)
        if i % 11 == 6 and (kernel.root / str(100 + i)).exists():
            kernel.remove(100 + i)
        if i % 3 == 1:
            pid = 120 + i % 17
            if (kernel.root / str(pid)).exists():
                kernel.set_rss(pid, 10000 + i * 900)
        if i == 30:
            sampler.want_snapshot = "signal"
        t += 1.0
        out.append(_mask(sampler.tick(t, t, 0.0, new_segment=i in (0, 45))))
    return b"".join(out)


def test_the_log_is_the_same_byte_for_byte_with_and_without_listing(tmp_path, listings):
    skipping, listing = Kernel(tmp_path / "a"), Kernel(tmp_path / "b", own_namespace=False)
    a = make(skipping.root, tmp_path, "log-a")
    b = make(listing.root, tmp_path, "log-b")
    assert a.loadavg_fd >= 0 and b.loadavg_fd < 0
    log_a = _script(skipping, a)
    n_a = len(listings)
    log_b = _script(listing, b)
    n_b = len(listings) - n_a
    assert log_a.replace(str(tmp_path / "a").encode(), b"ROOT") == \
        log_b.replace(str(tmp_path / "b").encode(), b"ROOT")
    assert b"\nP " in log_a and b"\nX " in log_a and b"\np " in log_a
    assert n_b == 70 and n_a < 40  # most ticks of the idle minute never listed /proc


def test_a_pid_taken_again_between_two_ticks_is_seen_at_the_next(tmp_path, listings):
    """A process exits and its pid goes to a new one before the next tick: that listing
    holds the name, so it counted as known, and only its held descriptor's read fails (ESRCH
    on a live kernel; a directory's descriptor stands in for it here). The sampler lists again
    on the next tick, where the name is new, rather than waiting for the next pid."""
    kernel = Kernel(tmp_path / "k")
    s = make(kernel.root, tmp_path, "log")
    kernel.add(100, ["/usr/bin/app"], rss_kib=10000)
    kernel.add(150, ["/usr/bin/other"], rss_kib=10000)  # the last pid: 150
    t = 1_700_000_000.0
    s.tick(t, t, 0.0, new_segment=True)
    kernel.add(100, ["/usr/bin/newcomer"], rss_kib=20000)  # pid 100 again: the counter moved
    dead = os.open(kernel.root, os.O_RDONLY)  # reads fail, as a reaped process's statm does
    os.close(s.procs["100"].fd)
    s.procs["100"].fd = dead
    second = s.tick(t + 1, t + 1, 0.0, new_segment=False)
    assert b"X " in second and b"newcomer" not in second
    third = s.tick(t + 2, t + 2, 0.0, new_segment=False)  # the pid counter did not move
    assert b"P " in third and b"newcomer" in third


def test_a_process_is_seen_exactly_when_the_kernel_says_one_appeared(tmp_path, listings):
    kernel = Kernel(tmp_path / "proc")
    kernel.add(100, ["app"])
    s = make(kernel.root, tmp_path, "log")
    t = 1_700_000_000.0
    s.tick(t, t, 0.0, True)
    assert len(listings) == 1
    s.tick(t + 1, t + 1, 0.0, False)
    assert len(listings) == 1  # nothing allocated a pid: no listing
    # A pid allocated with no new process in /proc (a thread, or one that already exited):
    # listed, nothing new written.
    kernel.last_pid += 1
    kernel._loadavg()
    lines = s.tick(t + 2, t + 2, 0.0, False).decode()
    assert len(listings) == 2 and "\nP " not in lines
    # The fake can break the kernel's promise: a process without a pid allocation is not
    # looked for, which shows the listing is really skipped; the next pid brings it in.
    kernel.add(101, ["hidden"], bump=False)
    assert "hidden" not in s.tick(t + 3, t + 3, 0.0, False).decode()
    kernel.add(102, ["visible"])
    lines = s.tick(t + 4, t + 4, 0.0, False).decode()
    assert "hidden" in lines and "visible" in lines and len(listings) == 3


def test_a_keyframe_always_lists(tmp_path, listings):
    kernel = Kernel(tmp_path / "proc")
    kernel.add(100, ["app"])
    s = make(kernel.root, tmp_path, "log")
    t = 1_700_000_000.0
    s.tick(t, t, 0.0, True)
    kernel.add(101, ["unannounced"], bump=False)
    for i in range(1, 20):
        assert "unannounced" not in s.tick(t + i, t + i, 0.0, False).decode()
    assert "unannounced" in s.tick(t + 20, t + 20, 0.0, False).decode()  # keyframe: 20 s
    assert len(listings) == 2


def test_a_name_that_could_not_be_read_is_tried_again(tmp_path, listings):
    kernel = Kernel(tmp_path / "proc")
    kernel.add(100, ["app"])
    s = make(kernel.root, tmp_path, "log")
    t = 1_700_000_000.0
    s.tick(t, t, 0.0, True)
    kernel.add(101, ["late"])
    os.unlink(kernel.root / "101" / "stat")  # looked at mid-creation: no identity yet
    assert "late" not in s.tick(t + 1, t + 1, 0.0, False).decode()
    kernel.add(101, ["late"], bump=False)
    assert "late" in s.tick(t + 2, t + 2, 0.0, False).decode()
    assert len(listings) == 3


def test_not_our_pid_namespace_means_always_listing(tmp_path, listings):
    kernel = Kernel(tmp_path / "proc", own_namespace=False)
    (kernel.root / "self/status").write_text(f"NSpid:\t{os.getpid() + 7}\t{os.getpid()}\n")
    s = make(kernel.root, tmp_path, "log")
    assert s.loadavg_fd < 0
    t = 1_700_000_000.0
    for i in range(3):
        s.tick(t + i, t + i, 0.0, i == 0)
    assert len(listings) == 3


LIVE = textwrap.dedent("""
    import json, os, subprocess, sys, threading, time
    sys.path.insert(0, sys.argv[1])
    import sampler as S
    calls = []
    real = os.listdir
    def counting(path="."):
        calls.append(path)
        return real(path)
    S.os.listdir = counting
    cfg = S.parse_args(["--dir", sys.argv[2], "--kmsg", "", "--no-mlock", "--no-oom-adj",
                        "--no-cgroups", "--no-slab", "--quiet", "--journal", "no"])
    S.check_log_dir(cfg.dir)
    s = S.Sampler(cfg)
    out = {"skip_on": s.loadavg_fd >= 0}
    def tick(first=False):
        n = len(calls)
        t = time.time()
        lines = s.tick(t, time.monotonic(), time.process_time(), first).decode()
        return {"listed": len(calls) > n, "new": [l.split()[2] for l in lines.splitlines()
                                                 if l.startswith("P ")]}
    out["first"] = tick(True)
    out["quiet"] = tick()
    child = subprocess.Popen(["sleep", "30"])
    out["child"] = str(child.pid)
    out["after_fork"] = tick()
    out["quiet_again"] = tick()
    th = threading.Thread(target=time.sleep, args=(0,))
    th.start(); th.join()
    out["after_thread"] = tick()
    child.kill(); child.wait()
    out["after_exit"] = tick()
    out["gone"] = out["child"] not in s.procs
    print(json.dumps(out))
""")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="a private PID namespace needs root and unshare(1)")
def test_live_a_process_started_between_two_ticks_is_seen(tmp_path):
    src = ROOT / "src" / "memtrail"
    res = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-I",
                          "-c", LIVE, str(src), str(tmp_path / "log")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["skip_on"]
    assert out["first"]["listed"]
    assert not out["quiet"]["listed"] and out["quiet"]["new"] == []
    assert out["after_fork"]["listed"] and out["after_fork"]["new"] == [out["child"]]
    assert not out["quiet_again"]["listed"]
    assert out["after_thread"]["listed"] and out["after_thread"]["new"] == []
    assert not out["after_exit"]["listed"] and out["gone"]  # the held read failed: ESRCH
