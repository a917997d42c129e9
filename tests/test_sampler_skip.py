"""The sampler skips listing /proc while the kernel says no process can have appeared, and
looks at a few new pids by number rather than listing.

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
    """A fake /proc that, like the kernel, moves /proc/loadavg's last pid at every new pid
    (and, with `forks`, /proc/stat's fork counter at every process or thread created)."""

    def __init__(self, root, own_namespace: bool = True, forks: bool = False) -> None:
        super().__init__(root)
        self.last_pid = 1
        self.forks = 1000 if forks else None
        self.sampler = None  # set to fail a removed process's held descriptor, as ESRCH does
        if own_namespace:
            (self.root / "self/status").write_text(f"Name:\tpython3\nNSpid:\t{os.getpid()}\n")
        self._loadavg()

    def _loadavg(self) -> None:
        self._write("loadavg", f"0.10 0.20 0.30 1/123 {self.last_pid}\n")
        if self.forks is not None:
            self._write("stat", "cpu  1 2 3 4\nintr 7 0 0\nctxt 99\nbtime 1700000000\n"
                                f"processes {self.forks}\nprocs_running 1\n")

    def add(self, pid, argv, bump: bool = True, fork: bool = True, **kw) -> None:
        """`bump`: the pid came from the allocator (else a chosen pid, clone3's set_tid, or
        a fake breaking the kernel's promise); `fork`: the fork counter moves."""
        super().add(pid, argv, **kw)
        if bump:
            self.last_pid = pid
        if fork and self.forks is not None:
            self.forks += 1
        self._loadavg()

    def remove(self, pid: int) -> None:
        super().remove(pid)
        st = self.sampler.procs.get(str(pid)) if self.sampler is not None else None
        if st is not None and st.fd >= 0:
            # A real exit fails the held descriptor's read (ESRCH); a fixture file stays
            # readable once opened, so a directory's descriptor takes its place (EISDIR).
            dead = os.open(self.root, os.O_RDONLY)
            os.dup2(dead, st.fd)
            os.close(dead)
        elif self.sampler is None:
            # without it, the fake kernel makes the sampler list (a thread's pid would too)
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


def test_the_log_is_the_same_byte_for_byte_when_new_pids_are_looked_at_one_by_one(
        tmp_path, listings, monkeypatch):
    """With the fork counter, a few new pids are looked at by number instead of listing:
    the same log again, and /proc listed only at the first tick, keyframes and big jumps."""
    probes = []
    real = S.Sampler._probe

    def counting(self, pids, *a):
        probes.append(pids)
        return real(self, pids, *a)
    monkeypatch.setattr(S.Sampler, "_probe", counting)
    probing = Kernel(tmp_path / "a", forks=True)
    listing = Kernel(tmp_path / "b", own_namespace=False, forks=True)
    a = make(probing.root, tmp_path, "log-a")
    b = make(listing.root, tmp_path, "log-b")
    probing.sampler, listing.sampler = a, b
    log_a = _script(probing, a)
    n_a = len(listings)
    log_b = _script(listing, b)
    assert log_a.replace(str(tmp_path / "a").encode(), b"ROOT") == \
        log_b.replace(str(tmp_path / "b").encode(), b"ROOT")
    assert b"\nP " in log_a and b"\nX " in log_a and b"\np " in log_a
    assert len(listings) - n_a == 70
    # listed: the first tick, keyframes (20 s, and the new segment), the first job's pid
    # (far above the kthread's, the last pid before it); every other new job was probed
    assert n_a <= 7 and sum(len(r) for r in probes) >= 5
    assert all(len(r) <= 9 for r in probes)


def _probing(tmp_path, pids=(100,)):
    kernel = Kernel(tmp_path / "proc", forks=True)
    for pid in pids:
        kernel.add(pid, ["app", str(pid)])
    s = make(kernel.root, tmp_path, "log")
    kernel.sampler = s
    s.tick(1_700_000_000.0, 1_700_000_000.0, 0.0, True)
    return kernel, s


def _tick(s, i: int) -> str:
    t = 1_700_000_000.0 + i
    return s.tick(t, t, 0.0, False).decode()


def test_new_pids_are_looked_at_without_listing(tmp_path, listings):
    kernel, s = _probing(tmp_path)
    assert len(listings) == 1
    kernel.add(101, ["worker", "1"])
    kernel.add(102, ["worker", "2"])
    lines = _tick(s, 1)
    assert "worker" in lines and len(listings) == 1
    assert [st.pid for st in s.order] == ["100", "101", "102"]  # in pid order, as listed
    # A thread's own pid: answered by /proc, never a process of its own
    kernel.add(103, ["app", "100"], thread=True)
    lines = _tick(s, 2)
    assert "\nP " not in lines and "103" not in s.procs and len(listings) == 1
    # pids given out to processes that are already gone: nothing, and no listing
    kernel.last_pid, kernel.forks = kernel.last_pid + 5, kernel.forks + 5
    kernel._loadavg()
    assert "\nP " not in _tick(s, 3) and len(listings) == 1
    # an exit is seen by its held descriptor, a probe or not
    kernel.remove(101)
    assert "X " in _tick(s, 4) and "101" not in s.procs and len(listings) == 1


def test_a_process_made_with_a_chosen_pid_is_listed_at_the_next_new_pid(tmp_path, listings):
    """clone3's set_tid (a checkpoint restore) gives a pid without moving the cursor, but
    counts as a fork: at the next pid, more forks than pids given out, so /proc is listed."""
    kernel, s = _probing(tmp_path)
    kernel.add(50, ["restored"], bump=False)
    assert "restored" not in _tick(s, 1)  # nothing moved the cursor: not looked for
    kernel.add(101, ["next"])
    lines = _tick(s, 2)
    assert "restored" in lines and "next" in lines and len(listings) == 2


def test_a_cursor_that_went_back_or_far_means_listing(tmp_path, listings):
    kernel, s = _probing(tmp_path, pids=(30000,))
    kernel.add(400, ["wrapped"])  # pid_max reached: the allocator starts again from 300
    assert "wrapped" in _tick(s, 1) and len(listings) == 2
    kernel.add(401, ["near"])
    assert "near" in _tick(s, 2) and len(listings) == 2
    # more pids than a look each is worth (64 and a quarter of the known processes)
    kernel.add(401 + S.PROBE_MIN + 1, ["far"])
    assert "far" in _tick(s, 3) and len(listings) == 3
    # no fork counter (another kernel's /proc/stat): the cursor alone says only that
    # something moved
    kernel.forks = None
    kernel._write("stat", "cpu  1 2 3 4\nctxt 99\n")
    kernel.add(500, ["blind"])
    assert "blind" in _tick(s, 4) and len(listings) == 4


def test_a_dead_kernel_threads_pid_given_to_a_process_is_seen(tmp_path, listings):
    """Kernel threads are never looked at again; a pid given out anew is a new task, so a
    look by number does not trust that: its own pid back, after a turn of the allocator
    (the sampler's cursor is set back by hand, where a real turn would have listed)."""
    kernel, s = _probing(tmp_path)
    kernel.add(101, [], comm="kworker/0:2", kthread=True)
    assert "kworker" not in _tick(s, 1)
    assert "101" in s.skip and len(listings) == 1
    kernel.remove(101)
    s.cursor = 100
    kernel.add(101, ["reborn"])
    assert "reborn" in _tick(s, 2) and len(listings) == 1


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
    # (Not at 101: the last pids given out are looked at once more, for a task its fork had
    # not yet put in /proc: the next test.)
    kernel.add(50, ["hidden"], bump=False)
    assert "hidden" not in s.tick(t + 3, t + 3, 0.0, False).decode()
    kernel.add(102, ["visible"])
    lines = s.tick(t + 4, t + 4, 0.0, False).decode()
    assert "hidden" in lines and "visible" in lines and len(listings) == 3


def test_a_pid_given_out_before_its_task_is_in_proc_is_looked_at_once_more(
        tmp_path, listings):
    """The kernel moves the pid cursor when it allocates the pid, and shows the task in /proc
    only at the end of the fork: a look in between finds nothing. The pid is looked at once
    more at the next tick, whether the last look was by number or a listing."""
    kernel, s = _probing(tmp_path)
    kernel.last_pid, kernel.forks = 101, kernel.forks + 1  # allocated, not yet in /proc
    kernel._loadavg()
    assert "late" not in _tick(s, 1)
    kernel.add(101, ["late"], bump=False, fork=False)  # the fork ends
    assert "late" in _tick(s, 2) and len(listings) == 1
    assert "\nP " not in _tick(s, 3)  # once more only: not at every tick
    assert s.unseen == ()
    # the same after a listing (a keyframe here), for the last pids up to the cursor
    kernel.last_pid, kernel.forks = 102, kernel.forks + 1
    kernel._loadavg()
    assert "later" not in s.tick(1_700_000_020.0, 1_700_000_020.0, 0.0, False).decode()
    assert len(listings) == 2 and 102 in s.unseen
    kernel.add(102, ["later"], bump=False, fork=False)
    assert "later" in _tick(s, 21) and len(listings) == 2


def test_a_kernel_threads_pid_is_looked_at_again_after_the_allocator_turned(tmp_path,
                                                                           listings):
    """A dead kernel thread's pid given to a process after a turn of pid_max: the listing
    that the cursor going back causes looks at kernel threads again."""
    kernel = Kernel(tmp_path / "proc", forks=True)
    kernel.add(30000, ["app"])
    kernel.add(400, [], comm="kworker/0:2", kthread=True, bump=False)
    s = make(kernel.root, tmp_path, "log")
    kernel.sampler = s
    s.tick(1_700_000_000.0, 1_700_000_000.0, 0.0, True)
    assert "400" in s.skip
    kernel.remove(400)
    kernel.add(400, ["reborn"])  # the cursor went from 30000 back to 400
    assert "reborn" in _tick(s, 1) and len(listings) == 2


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


# A sampler over the real /proc that counts its listings (`calls`): both live scripts start so
LIVE_SAMPLER = textwrap.dedent("""
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
""")

LIVE = textwrap.dedent("""
    import ctypes, json, os, signal, subprocess, sys, threading, time
""") + LIVE_SAMPLER + textwrap.dedent("""
    out = {"skip_on": s.loadavg_fd >= 0 and s.stat_fd >= 0}
    kids = []
    def tick(first=False):
        n = len(calls)
        t = time.time()
        lines = s.tick(t, time.monotonic(), time.process_time(), first).decode()
        return {"listed": len(calls) > n, "new": [l.split()[2] for l in lines.splitlines()
                                                 if l.startswith("P ")]}
    def child():
        kids.append(subprocess.Popen(["sleep", "60"]))
        pid = str(kids[-1].pid)
        # Popen returns once the exec is past its point of no return, a moment before the
        # new image's command line is set up: wait for it, so a tick never sees the child
        # half-way (the next tick's second look would write its identity again, correctly)
        while True:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read() == b"sleep\\x0060\\x00":
                        return pid
            except OSError:
                pass
            time.sleep(0.001)
    def counters():
        return s._pid_cursor(), s._fork_count()
    def clone_at(pid):
        # clone3 with set_tid, as a checkpoint restore makes a process: a chosen pid
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        want = (ctypes.c_int * 1)(pid)
        args = (ctypes.c_uint64 * 11)()
        args[4] = signal.SIGCHLD  # exit_signal
        args[8], args[9] = ctypes.addressof(want), 1  # set_tid, set_tid_size
        got = libc.syscall(435, ctypes.byref(args), ctypes.c_size_t(88))
        if got < 0:  # no clone3 (Linux < 5.5), or a filter refusing it
            print(json.dumps({"no_clone3": ctypes.get_errno()}))
            sys.exit(0)
        if got == 0:
            try:
                os.execv("/bin/sleep", ["sleep", "60"])
            finally:
                os._exit(1)
        # its exec is its own affair: wait for it, so no tick sees the copy of this process
        # before it (a new identity there, a P line, at whatever tick it lands)
        while True:
            try:
                if os.readlink(f"/proc/{got}/exe").endswith("sleep"):
                    return got
            except OSError:
                pass
            time.sleep(0.001)
    def set_last_pid(pid):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid))
    out["first"] = tick(True)
    out["quiet"] = tick()
    before = counters()
    out["chosen"] = str(clone_at(300))
    out["counters"] = [before, counters()]
    out["after_set_tid"] = tick()
    out["child"] = child()
    out["after_fork"] = tick()
    out["quiet_again"] = tick()
    th = threading.Thread(target=time.sleep, args=(0,))
    th.start(); th.join()
    out["after_thread"] = tick()
    set_last_pid(1000)
    out["far"] = child()
    out["after_far"] = tick()
    set_last_pid(500)
    out["back"] = child()
    out["after_back"] = tick()
    kids[0].kill(); kids[0].wait()
    out["after_exit"] = tick()
    out["gone"] = out["child"] not in s.procs
    os.kill(int(out["chosen"]), signal.SIGKILL)
    os.waitpid(int(out["chosen"]), 0)
    for k in kids:
        k.kill(); k.wait()
    print(json.dumps(out))
""")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="a private PID namespace needs root and unshare(1)")
def test_live_a_process_started_between_two_ticks_is_seen(tmp_path):
    """In a private PID namespace, whose cursor only its own processes move (the fork counter
    counts the whole machine's, which can only make the sampler list more)."""
    src = ROOT / "src" / "memtrail"
    res = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-I",
                          "-c", LIVE, str(src), str(tmp_path / "log")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    if "no_clone3" in out:
        pytest.skip(f"clone3 with set_tid refused here (errno {out['no_clone3']})")
    assert out["skip_on"]
    assert out["first"]["listed"]
    assert not out["quiet"]["listed"] and out["quiet"]["new"] == []
    # the kernel's side: a chosen pid moves no cursor, but is counted as a fork
    (cursor0, forks0), (cursor1, forks1) = out["counters"]
    assert out["chosen"] == "300" and cursor1 == cursor0 and forks1 > forks0
    assert not out["after_set_tid"]["listed"] and out["after_set_tid"]["new"] == []
    # the next new pid: more forks than pids given out, so /proc is listed, and both are in
    assert out["after_fork"]["listed"]
    assert sorted(out["after_fork"]["new"]) == sorted([out["child"], "300"])
    assert not out["quiet_again"]["listed"]
    assert out["after_thread"]["new"] == []  # a thread's pid is not a process
    assert out["far"] == "1001" and out["after_far"]["new"] == ["1001"]
    assert out["after_far"]["listed"]  # too many pids to look at one by one
    assert out["back"] == "501" and out["after_back"]["new"] == ["501"]
    assert out["after_back"]["listed"]  # the cursor went back
    assert not out["after_exit"]["listed"] and out["gone"]  # the held read failed: ESRCH


LIVE_PROBES = textwrap.dedent("""
    import json, os, subprocess, sys, time
""") + LIVE_SAMPLER + textwrap.dedent("""
    t = time.time()
    s.tick(t, time.monotonic(), time.process_time(), True)
    rows, kids = [], []
    for i in range(20):
        kids.append(subprocess.Popen(["sleep", "60"]))
        n = len(calls)
        t = time.time()
        lines = s.tick(t, time.monotonic(), time.process_time(), False).decode()
        rows.append({"child": str(kids[-1].pid), "listed": len(calls) > n,
                     "new": [l.split()[2] for l in lines.splitlines() if l.startswith("P ")]})
    for k in kids:
        k.kill(); k.wait()
    print(json.dumps({"rows": rows, "ns": os.readlink("/proc/self/ns/pid")}))
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/ns/pid"), reason="no PID namespaces")
def test_live_new_processes_are_found_by_number_on_the_real_proc(tmp_path):
    """On the machine's own /proc: each child started between two ticks is in the next one,
    and (in the initial PID namespace, where the cursor and the fork counter count the same
    processes) most are found by looking at the new pids rather than listing /proc."""
    src = ROOT / "src" / "memtrail"
    res = subprocess.run([sys.executable, "-I", "-c", LIVE_PROBES, str(src),
                          str(tmp_path / "log")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for row in out["rows"]:
        assert row["child"] in row["new"]
    if out["ns"] == "pid:[4026531836]":  # the initial namespace (PROC_PID_INIT_INO)
        # a fork anywhere between the two counters' reads makes a tick list: not all
        # twenty are looked at by number on a busy host, but some are
        assert any(not row["listed"] for row in out["rows"])
