"""Quiet cgroups: the statm of processes in a v2 cgroup where no task ran since the last tick
are not read (Sampler.quiet_groups). On fixture trees (a cgroup2 mount the fixture's
mountinfo names, cpu.stat files the test moves) and on a real cgroup with real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_sampler_skip import _mask
from test_sampler_unit import Clock, make, of

from memtrail import sampler as S

CROWD = "/system.slice/crowd.service"
NO_TIERS = ("--top-n", "0", "--pss-top-n", "0", "--pss-programs", "0")  # statm reads alone


class Tree:
    """A fixture /proc whose processes live in v2 cgroups under a fixture cgroup2 mount."""

    def __init__(self, fakeproc, tmp_path: Path) -> None:
        self.proc = fakeproc
        self.cg = tmp_path / "cgroup"
        self.cg.mkdir()
        (fakeproc.root / "self/mountinfo").write_text(
            f"30 23 0:27 / {self.cg} rw,nosuid - cgroup2 cgroup2 rw\n")
        self.usage = {}
        self.reclaimed = 0

    def add(self, pid: int, cgroup: str = CROWD, rss_kib: int = 10240) -> None:
        self.proc.add(pid, ["/usr/bin/worker", str(pid)], rss_kib=rss_kib, cgroup=cgroup)
        if cgroup not in self.usage:
            (self.cg / cgroup.lstrip("/")).mkdir(parents=True, exist_ok=True)
            self.ran(cgroup, 0)

    def ran(self, cgroup: str = CROWD, usec: int = 1000) -> None:
        """Tasks in CGROUP used USEC of CPU."""
        self.usage[cgroup] = self.usage.get(cgroup, 100000) + usec
        self.proc._write(str(self.cg / cgroup.lstrip("/") / "cpu.stat"),
                         f"usage_usec {self.usage[cgroup]}\nuser_usec 0\nsystem_usec 0\n")

    def reclaim(self, pages: int = 32) -> None:
        """Pages were reclaimed from somebody: /proc/vmstat's pgsteal_file moves."""
        self.reclaimed += pages
        self.proc.set_vmstat(reclaimed=self.reclaimed)


def crowd(fakeproc, tmp_path, n: int = 20, *flags: str):
    tree = Tree(fakeproc, tmp_path)
    for pid in range(300, 300 + n):
        tree.add(pid)
    s = make(fakeproc, tmp_path, *NO_TIERS, *flags)
    clock = Clock()
    clock.tick(s, new_segment=True)  # every process read: the first tick
    clock.tick(s)  # the cgroup's first reading: a baseline
    return tree, s, clock


def kernel_crowd(tmp_path, *flags, forks: bool = False, others=()):
    """A fake kernel (its pid cursor, and with `forks` its fork counter), the crowd of 20 in
    CROWD (pids 100-119), `others` in /other.service, and a sampler over it: the sampler
    looks at new pids by number, as on a real host."""
    from test_sampler_skip import Kernel

    kernel = Kernel(tmp_path / "proc", forks=forks)
    tree = Tree(kernel, tmp_path)
    for pid in range(100, 120):
        tree.add(pid)
    for pid in others:
        tree.add(pid, "/other.service")
    s = make(kernel, tmp_path, *flags)
    kernel.sampler = s
    return kernel, tree, s, Clock()


def test_a_cgroup_where_nothing_ran_is_not_read_and_one_that_ran_is(fakeproc, tmp_path):
    tree, s, clock = crowd(fakeproc, tmp_path)
    assert s.quiet_root == str(tree.cg)
    clock.tick(s)
    assert s.quiet_skipped == 20
    fakeproc.set_rss(305, 90000)  # a worker grows: it ran, so its cgroup's CPU use moved
    tree.ran()
    lines = clock.tick(s)
    assert s.quiet_skipped == 0
    assert [line.split()[2:4] for line in of(lines, "p")] == [["305", "90000"]]
    clock.tick(s)
    assert s.quiet_skipped == 20  # quiet again


def test_what_only_an_outsider_changes_waits_at_most_quiet_every_ticks(fakeproc, tmp_path):
    """A file truncated under a mapping, ptrace writes: no counter says so. Every process is
    read at every QUIET_EVERY-th tick, so such a change is late by less than that."""
    tree, s, clock = crowd(fakeproc, tmp_path)
    fakeproc.set_rss(310, 1000)
    waited = [of(clock.tick(s), "p") for _ in range(S.QUIET_EVERY)]
    late = [lines for lines in waited if lines]
    assert [line.split()[2:4] for line in late[0]] == [["310", "1000"]]
    assert len(late) == 1 and waited.index(late[0]) >= 1  # not at once: it was skipped


def test_reclaim_anywhere_reads_every_process(fakeproc, tmp_path):
    """kswapd takes pages from processes that did not run: while /proc/vmstat's reclaim or
    swap counters move, no cgroup is skipped."""
    tree, s, clock = crowd(fakeproc, tmp_path)
    clock.tick(s)
    assert s.quiet_skipped == 20
    fakeproc.set_rss(301, 4000)
    tree.reclaim()
    lines = clock.tick(s)
    assert s.quiet_skipped == 0
    assert [line.split()[2:4] for line in of(lines, "p")] == [["301", "4000"]]


def test_the_log_is_the_same_byte_for_byte_with_and_without_the_skip(fakeproc, tmp_path):
    """Where every change comes with CPU used in its cgroup, as the kernel guarantees, the
    skip changes nothing recorded: the same lines as reading every process every tick."""
    logs = []
    for flags in ((), ("--no-quiet-skip",)):
        root = tmp_path / ("on" if not flags else "off")
        root.mkdir()
        from fakeproc import FakeProc
        fp = FakeProc(root / "proc")
        tree, s, clock = crowd(fp, root, 24, *flags)
        quiet_seen = 0
        out = []
        for step in range(40):
            if step % 7 == 3:
                fp.set_rss(300 + step % 24, 20000 + 5000 * step)
                tree.ran()
            if step % 11 == 5:
                fp.set_rss(300 + (step * 5) % 24, 3000 + 1000 * step)
                tree.ran(usec=1)
                tree.add(400 + step, "/other.service")  # a new process in a new cgroup
            out += _mask("\n".join(clock.tick(s)).encode()).split(b"\n")
            quiet_seen += s.quiet_skipped
        logs.append((out, quiet_seen))
    (on, skipped), (off, none) = logs
    assert skipped > 0 and none == 0
    assert on == off


def test_small_cgroups_and_the_root_are_read_every_tick(fakeproc, tmp_path):
    tree = Tree(fakeproc, tmp_path)
    for pid in range(300, 300 + S.QUIET_MIN - 1):
        tree.add(pid, "/small.service")
    for pid in range(400, 430):
        tree.add(pid, "/")
    s = make(fakeproc, tmp_path)
    clock = Clock()
    for _ in range(5):
        clock.tick(s)
        assert s.quiet_skipped == 0
    assert "/" not in s.qgroups
    assert s.qgroups["/small.service"].members == S.QUIET_MIN - 1


def test_members_are_counted_in_and_out(fakeproc, tmp_path):
    """Exits leave the count; a cgroup with no known process left is forgotten and its
    descriptor closed; a process that exec'd into another cgroup moves."""
    tree, s, clock = crowd(fakeproc, tmp_path)
    clock.tick(s)
    group = s.qgroups[CROWD]
    assert group.members == 20 and group.fd >= 0
    fd = group.fd
    for pid in range(300, 310):
        fakeproc.remove(pid)
    tree.ran()
    clock.tick(s)
    assert group.members == 10
    (tree.cg / "next.service").mkdir()
    fakeproc._write("315/cgroup", "0::/next.service\n")
    fakeproc._write("315/cmdline", b"/usr/bin/other\0")
    fakeproc._write("315/statm", "5000 2500 512 99 0 10 0\n")  # a new code size: an exec
    tree.ran()
    clock.tick(s)
    assert group.members == 9 and s.qgroups["/next.service"].members == 1
    for pid in range(310, 320):
        if pid != 315:
            fakeproc.remove(pid)
    tree.ran()
    clock.tick(s)
    assert CROWD not in s.qgroups
    with pytest.raises(OSError):
        os.fstat(fd)


def test_the_skip_can_be_turned_off_and_the_header_says_which(fakeproc, tmp_path):
    for flags, want in (((), {"min": S.QUIET_MIN, "every": S.QUIET_EVERY}),
                        (("--no-quiet-skip",), None),
                        (("--no-cgroups",), {"min": S.QUIET_MIN, "every": S.QUIET_EVERY})):
        tree, s, clock = crowd(fakeproc, tmp_path, 20, *flags)
        clock.tick(s)
        assert s.quiet_skipped == (20 if want else 0)
        head = s.header(0.0, 0.0, "x")
        assert json.loads(head.split(" ", 4)[4])["settings"]["quiet_skip"] == want
        shutil.rmtree(tree.cg)  # the next round makes its own


# -- a real cgroup ---------------------------------------------------------------------------

def _cgroup2_child(name: str):
    if os.geteuid() != 0:
        return None
    root = S.find_unified_root("/proc")
    if root is None:
        return None
    path = Path(root) / name
    try:
        path.mkdir()
    except OSError:
        return None
    return path


GROWER = r"""
import sys
sys.stdout.write("ready\n"); sys.stdout.flush()
blob = None
for line in sys.stdin:
    blob = bytearray(int(line) << 20)
    for i in range(0, len(blob), 4096):
        blob[i] = 1
    sys.stdout.write("grown\n"); sys.stdout.flush()
"""


@pytest.mark.live
def test_a_real_idle_cgroup_is_skipped_and_a_worker_that_grows_is_seen_at_once(tmp_path):
    """Real processes in a real v2 cgroup: sleepers and one worker blocked on a pipe. While
    none runs, their statm are not read; the worker growing 64 MiB is in the very next tick,
    since growing took CPU in that cgroup."""
    cg = _cgroup2_child(f"memtrail-quiet-{os.getpid()}")
    if cg is None:
        pytest.skip("needs root and a writable cgroup2 mount")
    procs_file = str(cg / "cgroup.procs")

    def join() -> None:
        with open(procs_file, "w") as fh:
            fh.write("0")
    kids = []
    try:
        for _ in range(S.QUIET_MIN + 2):
            kids.append(subprocess.Popen(["sleep", "600"], preexec_fn=join))
        worker = subprocess.Popen([sys.executable, "-c", GROWER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, preexec_fn=join)
        kids.append(worker)
        assert worker.stdout.readline() == "ready\n"
        cfg = S.parse_args(["--dir", str(tmp_path / "log"), "--kmsg", "", "--no-mlock",
                            "--no-oom-adj", "--quiet", "--journal", "no", *NO_TIERS])
        S.check_log_dir(cfg.dir)
        s = S.Sampler(cfg)
        group = f"/{cg.name}"

        def tick(first=False):
            now = time.time()
            return s.tick(now, time.monotonic(), time.process_time(), first).decode().splitlines()
        tick(True)
        members = s.qgroups[group].members
        assert members == len(kids)
        # Quiet ticks come unless the host reclaims memory (then every process is read, as
        # it must be: reclaim takes pages from sleepers). Ticks at a sampler's pace until one
        # is quiet; every QUIET_EVERY-th reads all anyway.
        unquiet = reclaiming = 0
        while s.quiet_skipped < members and unquiet < 60:
            before = s.outside
            time.sleep(0.1)
            tick()
            unquiet += s.quiet_skipped < members
            reclaiming += s.outside != before
        if s.quiet_skipped < members:
            assert reclaiming >= unquiet - unquiet // S.QUIET_EVERY - 1, \
                "never quiet, though the host did not reclaim"
            pytest.skip("the host reclaimed memory at every tick: every process was read")
        worker.stdin.write("64\n")
        worker.stdin.flush()
        assert worker.stdout.readline() == "grown\n"
        lines = tick()
        rss = [int(line.split()[3]) for line in lines
               if line.startswith("p ") and line.split()[2] == str(worker.pid)]
        assert rss and rss[-1] >= 64 * 1024
    finally:
        for kid in kids:
            kid.kill()
            kid.wait()
        cg.rmdir()


def test_a_pid_given_again_after_a_quiet_reap_is_the_new_process(tmp_path):
    """A worker reaped by a parent outside its cgroup makes no CPU show there, so its quiet
    cgroup's processes stay unread. When the allocator, gone round `pid_max`, gives its pid to
    a new process, the sampler looks at the old one rather than take the pid for a known
    process: the old one's `X` and the new one's `P` come that tick."""
    kernel, tree, s, clock = kernel_crowd(tmp_path, *NO_TIERS, forks=True)
    clock.tick(s, new_segment=True)
    tree.add(90, "/other.service")  # the allocator went round: pids from 90 on again
    clock.tick(s)
    for _ in range(2 * S.QUIET_EVERY):
        clock.tick(s)
        if s.quiet_skipped == 20 and s.ticks % S.QUIET_EVERY:
            break
    assert s.quiet_skipped == 20
    kernel.remove(105)  # reaped from outside: no CPU in its cgroup
    tree.add(105, "/other.service")  # its pid, given to a new process
    lines = clock.tick(s)
    assert of(lines, "X") == [f"X {clock.t:.3f} 105"]
    [ident] = of(lines, "P")
    assert ident.split()[2] == "105" and "/other.service" in ident
    assert s.procs["105"].cg is s.qgroups.get("/other.service")


def test_a_process_moved_to_another_cgroup_is_regrouped_at_the_keyframe(tmp_path):
    """Moved after it was identified (systemd-run --scope, a container runtime): its CPU use
    shows in its new cgroup. At the keyframe its old cgroup's `cgroup.procs` no longer lists
    it: its identity is read again, with the new cgroup, and it is counted there."""
    kernel, tree, s, clock = kernel_crowd(tmp_path, "--keyframe", "30s", others=(200,))
    clock.tick(s, new_segment=True)
    crowd_dir = tree.cg / CROWD.lstrip("/")
    (crowd_dir / "cgroup.procs").write_text("".join(f"{p}\n" for p in range(100, 120)))
    (tree.cg / "other.service/cgroup.procs").write_text("200\n")
    for _ in range(5):
        assert of(clock.tick(s), "P") == []
    kernel._write("107/cgroup", "0::/other.service\n")  # moved: no exec, no new code size
    (crowd_dir / "cgroup.procs").write_text("".join(f"{p}\n" for p in range(100, 120)
                                                     if p != 107))
    seen = []
    for _ in range(30):
        lines = clock.tick(s)
        seen += of(lines, "P")
        if of(lines, "K"):
            break
    [ident] = seen
    assert ident.split()[2] == "107" and json.loads(ident.split(" ", 6)[6])["cg"] == \
        "/other.service"
    assert s.procs["107"].cg is s.qgroups["/other.service"]
    assert s.qgroups[CROWD].members == 19


def test_a_quiet_programs_page_faults_are_not_read_again(fakeproc, tmp_path, monkeypatch):
    """The PSS tier's full rounds sum a program's page faults (copy on write moves PSS with no
    statm change). Where none of its members' cgroups used CPU since the last sums, no fault
    can have happened: the sum stands and no member's /proc/PID/stat is read."""
    tree, s, clock = crowd(fakeproc, tmp_path, 20, "--pss-programs", "1", "--pss-every", "5s")
    stats = []
    real = S.read_file

    def counting(path, *a, **kw):
        if path.endswith("/stat") and "/proc/" in path:
            stats.append(path)
        return real(path, *a, **kw)
    monkeypatch.setattr(S, "read_file", counting)
    rounds = []
    for _ in range(12):
        stats.clear()
        events = [e for e in of(clock.tick(s), "E") if " pss " in e]
        if events:
            rounds.append((json.loads(events[0].split(" ", 3)[3]), len(stats)))
    assert rounds and all(n == 0 for _e, n in rounds[1:]), rounds
    assert rounds[-1][0].get("kept") == 20
    tree.ran()  # something ran there: the sums are read again
    fakeproc.set_rss(303, 30000)
    for _ in range(6):
        stats.clear()
        clock.tick(s)
        if stats:
            break
    assert len(stats) >= 20


def test_a_busy_cgroup_is_checked_less_and_skipped_again_once_quiet(fakeproc, tmp_path):
    """Busy at QUIET_BACKOFF checks in a row, a cgroup is checked at every QUIET_BACKOFF-th
    tick only (its processes read at the others); once quiet again it is skipped again."""
    tree, s, clock = crowd(fakeproc, tmp_path)
    reads = []
    real = s.quiet_groups

    def counting(force):
        before = s.qgroups[CROWD].usage
        out = real(force)
        reads.append(s.qgroups[CROWD].usage is not before)
        return out
    s.quiet_groups = counting
    for _ in range(3 * S.QUIET_BACKOFF):  # a busy stretch: CPU used at every tick
        tree.ran()
        clock.tick(s)
        assert s.quiet_skipped == 0
    assert s.qgroups[CROWD].busy >= S.QUIET_BACKOFF
    assert reads[-S.QUIET_BACKOFF:].count(True) == 1  # checked once in QUIET_BACKOFF ticks
    skipped = []
    while len(skipped) < 3 * S.QUIET_BACKOFF and not skipped.count(20):
        clock.tick(s)
        skipped.append(s.quiet_skipped)
    assert 20 in skipped and len(skipped) <= 2 * S.QUIET_BACKOFF + 1, skipped


def test_reclaim_keeps_every_process_read_for_a_while(fakeproc, tmp_path):
    """The OOM reaper frees a victim's memory 2 s after the kill, when no counter moves: after
    any outside counter moved, every process is read for OUTSIDE_HOLD_S."""
    tree, s, clock = crowd(fakeproc, tmp_path)
    clock.tick(s)
    assert s.quiet_skipped == 20
    tree.reclaim()
    held = []
    for _ in range(int(S.OUTSIDE_HOLD_S) + 3):
        clock.tick(s, seconds=1.0)
        held.append(s.quiet_skipped)
    assert held[:int(S.OUTSIDE_HOLD_S)] == [0] * int(S.OUTSIDE_HOLD_S)
    assert 20 in held[int(S.OUTSIDE_HOLD_S):]


def test_a_quiet_exit_found_late_makes_the_next_tick_list(tmp_path):
    """Reaped while its cgroup was left unread, a process's exit shows at the next read of its
    cgroup, ticks later; its pid may be a new process's by then, which no cursor shows: the
    next tick lists /proc."""
    kernel, tree, s, clock = kernel_crowd(tmp_path, *NO_TIERS, forks=True)
    clock.tick(s, new_segment=True)
    for _ in range(2 * S.QUIET_EVERY):
        clock.tick(s)
        if s.quiet_skipped == 20:
            break
    kernel.remove(105)  # reaped from outside: no CPU in its cgroup
    for _ in range(S.QUIET_EVERY):
        lines = clock.tick(s)
        if of(lines, "X"):
            break
    assert of(lines, "X") == [f"X {clock.t:.3f} 105"]
    assert s.must_list


def test_the_keyframe_does_not_regroup_a_process_that_is_gone(tmp_path):
    """Missing from its cgroup's cgroup.procs because it exited (its pid maybe another's
    now): not given a new identity, but dropped by the keyframe's read."""
    kernel, tree, s, clock = kernel_crowd(tmp_path, "--keyframe", "30s")
    clock.tick(s, new_segment=True)
    crowd_dir = tree.cg / CROWD.lstrip("/")
    (crowd_dir / "cgroup.procs").write_text("".join(f"{p}\n" for p in range(100, 120)
                                                     if p != 107))
    kernel.remove(107)
    kernel.add(107, ["/usr/bin/other"], cgroup="/system.slice/other.service", bump=False)
    lines = []
    for _ in range(35):
        out = clock.tick(s)
        lines += out
        if of(out, "K"):
            break
    lines += clock.tick(s)  # the listing after the old one's exit finds the new one
    p107 = [line for line in of(lines, "P") if line.split()[2] == "107"]
    x107 = [line for line in of(lines, "X") if line.split()[2] == "107"]
    assert x107  # the old one ends
    assert p107 and all("/other.service" in line for line in p107)  # the new one's only


def test_fault_sums_stand_only_for_programs_chosen_now_and_checked_this_tick(fakeproc,
                                                                            tmp_path):
    tree, s, clock = crowd(fakeproc, tmp_path)
    clock.tick(s)
    s.ticks -= 1  # as during that tick, where the PSS tier plans
    group = s.qgroups[CROWD]
    st = s.procs["300"]
    assert s._still_since(st, s.ticks - 1)
    group.checked -= 1  # a backoff tick: not looked at this tick
    assert not s._still_since(st, s.ticks - 1)
    tier = s.pss
    tier.faults, tier.fault_tick = {"gone": 5, st.prog or "x": 7}, s.ticks - 1
    st.prog = st.prog or "x"
    group.checked = s.ticks
    sums = tier._faults([st], s._still_since, s.ticks)
    assert "gone" not in sums


def test_an_exit_and_a_newcomer_in_one_tick_keep_the_table_read_right(tmp_path):
    """A busy service replaces a worker every tick (one exit, one new process: the table as
    long as before) beside a quiet crowd: the table is changed in place, and the reads that
    leave the quiet crowd out must follow it (a newcomer's growth is seen the next tick)."""
    kernel, tree, s, clock = kernel_crowd(tmp_path, *NO_TIERS, forks=True, others=(200, 201))
    clock.tick(s, new_segment=True)
    for _ in range(3):
        clock.tick(s)
    pid = 202
    for _ in range(S.QUIET_EVERY + 2):
        kernel.remove(pid - 2)
        tree.add(pid, "/other.service")
        lines = clock.tick(s)
        assert [line.split()[2] for line in of(lines, "X")] == [str(pid - 2)]
        assert [line.split()[2] for line in of(lines, "P")] == [str(pid)]
        kernel.set_rss(pid - 1, 70000 + 4 * pid)  # last tick's newcomer grows
        lines = clock.tick(s)
        assert [line.split()[2:4] for line in of(lines, "p")] == \
            [[str(pid - 1), str(70000 + 4 * pid)]]
        pid += 1
    assert s.quiet_skipped == 20 or s.ticks % S.QUIET_EVERY == 0
    assert sorted(s.procs) == sorted(str(p) for p in [*range(100, 120), pid - 2, pid - 1])
