"""Triggers against real processes: a Python program with a SIGUSR2 handler that writes a
tracemalloc snapshot grows past a line, and the snapshot appears, once per crossing.

Every child here runs a script named after this test's PID, so a rule can only ever match a
process this test started (other test runs on the host are never signalled)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLER, call_main, log_text, wait_for

from memtrail import cli
from memtrail import sampler as S

pytestmark = pytest.mark.live

CHILD = r"""
import mmap, os, signal, sys, tracemalloc
tracemalloc.start()
out = sys.argv[1]
count = 0
def dump(signum, frame):  # a heap snapshot at the moment memtrail saw the line crossed
    global count
    count += 1
    tmp = os.path.join(out, "snap-%d.tmp" % count)
    tracemalloc.take_snapshot().dump(tmp)
    os.rename(tmp, os.path.join(out, "snap-%d.bin" % count))
signal.signal(signal.SIGUSR2, dump)
chunks = []
print("ready", flush=True)
for line in sys.stdin:
    want = int(line)  # hold this many 10 MiB chunks, touched so they are resident
    while len(chunks) > want:  # mapped by hand: unmapped when freed, whatever malloc thinks
        chunks.pop().close()
    while len(chunks) < want:
        chunk = mmap.mmap(-1, 10 << 20)
        for i in range(0, len(chunk), 4096):
            chunk[i] = 1
        chunks.append(chunk)
    print("at", want, flush=True)
"""


class Child:
    def __init__(self, tmp_path: Path, tag: str) -> None:
        self.program = f"memtrail-trig-{tag}-{os.getpid()}.py"
        script = tmp_path / self.program
        script.write_text(CHILD)
        self.out = tmp_path / f"snaps-{tag}"
        self.out.mkdir()
        self.proc = subprocess.Popen([sys.executable, str(script), str(self.out)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline() == "ready\n"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def hold(self, chunks: int) -> None:
        self.proc.stdin.write(f"{chunks}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == f"at {chunks}\n"

    def snaps(self) -> list:
        return sorted(p.name for p in self.out.iterdir() if p.suffix == ".bin")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def child(tmp_path):
    made = []

    def start(tag="a"):
        c = Child(tmp_path, tag)
        made.append(c)
        return c
    yield start
    for c in made:
        c.close()


def events(logdir: Path, kind: str = "trigger") -> list:
    out = []
    for line in log_text(logdir).splitlines():
        parts = line.split(" ", 3)
        if parts[0] == "E" and parts[2] == kind:
            out.append(json.loads(parts[3]))
    return out


def rss_lines(logdir: Path, pid: int) -> list:
    return [int(line.split()[3]) for line in log_text(logdir).splitlines()
            if line.startswith("p ") and line.split()[2] == str(pid)]


def test_snapshot_taken_once_per_crossing(tmp_path, sampler_factory, child, capsys):
    c = child()
    logdir = tmp_path / "log"
    # Line 200M; re-armed only below 100M (50 % hysteresis).
    s = sampler_factory(logdir, "--interval", "0.1", "--trigger-hysteresis", "50",
                        "--trigger-max-per-hour", "100",
                        "--trigger", f"{c.program}:rss>200M:USR2")
    s.wait_ticks(2)
    assert events(logdir) == []

    def reach(chunks, low_kib, high_kib):
        seen = len(rss_lines(logdir, c.pid))
        c.hold(chunks)
        wait_for(lambda: any(low_kib <= v <= high_kib
                             for v in rss_lines(logdir, c.pid)[seen:]),
                 what=f"the child at {chunks} chunks in the log")

    reach(25, 200 << 10, 1 << 30)  # over the line: a snapshot
    wait_for(lambda: c.snaps() == ["snap-1.bin"], what="the first snapshot")
    for chunks in (16, 26, 17, 27):  # 160-180M and back over: within the hysteresis
        if chunks < 20:
            reach(chunks, 100 << 10, 200 << 10)
        else:
            reach(chunks, 200 << 10, 1 << 30)
    assert len(events(logdir)) == 1
    reach(3, 0, 100 << 10)  # well below: re-armed
    reach(25, 200 << 10, 1 << 30)
    wait_for(lambda: "snap-2.bin" in c.snaps(), what="the second snapshot")
    assert s.stop() == 0
    assert c.snaps() == ["snap-1.bin", "snap-2.bin"]
    fired = events(logdir)
    assert [(e["pid"], e["program"], e["signal"], e["result"], e["errno"]) for e in fired] == \
        [(c.pid, c.program, "SIGUSR2", "sent", 0)] * 2
    assert all(e["value_kib"] > e["line_kib"] == 200 << 10 for e in fired)
    import tracemalloc
    assert tracemalloc.Snapshot.load(str(c.out / "snap-1.bin")).traces is not None
    # ... and the views show them.
    rep = json.loads(_run(capsys, "report", "--json", str(logdir)))
    assert [(t["pid"], t["result"]) for t in rep["triggers"]] == [(c.pid, "sent")] * 2
    page = tmp_path / "r.html"
    _run(capsys, "html", str(logdir), "-o", str(page))
    assert page.read_text().count('data-mark="trigger"') == 4  # two charts, two marks
    csv = _run(capsys, "export", str(logdir), "--format", "csv")
    assert csv.count(f",trigger_sent,{c.pid},{c.program},") == 2
    assert f'program="{c.program}",signal="SIGUSR2",result="sent"}} 2' in _run(
        capsys, "export", str(logdir), "--format", "openmetrics")
    assert f"sent SIGUSR2 to {c.program} (pid {c.pid})" in _run(capsys, "tail", str(logdir))


def _run(capsys, *argv) -> str:
    rc, out, err = call_main(capsys, cli.main, *argv)
    assert rc == 0, err
    return out


def test_a_rule_for_a_program_with_no_process_does_nothing(tmp_path, sampler_factory):
    logdir = tmp_path / "log"
    nobody = f"memtrail-nobody-{os.getpid()}.py"
    s = sampler_factory(logdir, "--interval", "0.1", "--keyframe", "0.3",
                        "--trigger", f"{nobody}:rss>1K:USR2", "--trigger", "*:low:USR2",
                        "--trigger", f"{nobody}:grow>1K/1m:USR1")
    s.wait_ticks(8)  # several keyframes: every process was looked at
    assert s.stop() == 0
    assert events(logdir) == []
    head = json.loads(log_text(logdir).split("\n", 1)[0].split(" ", 4)[4])
    assert len(head["settings"]["triggers"]["rules"]) == 3


@pytest.mark.parametrize("sig", ["TERM", "KILL", "INT", "SIGHUP", "abrt"])
def test_a_terminating_signal_is_refused_without_the_flag(tmp_path, sig):
    logdir = tmp_path / "log"
    run = subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(logdir),
                          "--trigger", f"x:rss>1M:{sig}"], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "--trigger-allow-kill" in run.stderr
    assert not logdir.exists()


def test_allowed_terminating_signal_is_sent_with_the_flag(tmp_path, sampler_factory, child):
    c = child()
    s = sampler_factory(tmp_path / "log", "--interval", "0.1", "--trigger-allow-kill",
                        "--trigger", f"{c.program}:rss>1K:TERM")
    assert c.proc.wait(30) == -15  # no handler for TERM: it ended
    wait_for(lambda: events(tmp_path / "log"), what="the trigger event")
    assert s.stop() == 0
    (event,) = events(tmp_path / "log")
    assert (event["signal"], event["result"]) == ("SIGTERM", "sent")


def test_both_ways_of_sending_check_the_identity_first(tmp_path, child):
    """pidfd (Python 3.9+) and the kill(2) fallback (3.8) deliver; a start time that is not
    the process's any more is refused before anything is sent."""
    c = child()
    cfg = S.parse_args(["--trigger", f"{c.program}:rss>1G:USR2", "--dir", str(tmp_path)])
    engine = S.Triggers(cfg, "/proc")
    start = S.parse_stat(Path(f"/proc/{c.pid}/stat").read_bytes())[3]
    usr2 = S._SIGNAL_NUMBERS["USR2"]
    assert engine._send(c.pid, start + 1, usr2)[0] == S.errno.ESRCH
    assert engine._send(c.pid, start, usr2) == (0, "pidfd" if engine.pidfd else "kill")
    wait_for(lambda: c.snaps() == ["snap-1.bin"], what="the snapshot (pidfd)")
    engine.pidfd = False
    assert engine._send(c.pid, start, usr2) == (0, "kill")
    wait_for(lambda: c.snaps() == ["snap-1.bin", "snap-2.bin"], what="the snapshot (kill)")
    assert engine._send(c.pid, start + 1, usr2)[0] == S.errno.ESRCH
    c.close()
    assert engine._send(c.pid, start, usr2)[0] == S.errno.ESRCH


def test_only_this_pid_namespaces_proc_is_signalled(tmp_path):
    cfg = S.parse_args(["--trigger", "x:rss>1G:USR2", "--dir", str(tmp_path)])
    assert S.Triggers(cfg, "/proc").dry_run == ""
    assert S._own_pid_namespace("/proc")
    fake = tmp_path / "proc"
    fake.mkdir()
    (fake / "self").symlink_to("1")  # another namespace's /proc names another pid
    assert not S._own_pid_namespace(str(fake))


def test_triggers_never_fork_or_exec(tmp_path, child):
    """The strace test of test_sampler_live, with a rule that fires."""
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace is not installed (.ci/run installs it)")
    c = child()
    out = tmp_path / "trace"
    logdir = tmp_path / "log"
    run = subprocess.run(
        [strace, "-f", "-qq", "--seccomp-bpf", "-e",
         "trace=fork,vfork,clone,clone3,execve,execveat", "-o", str(out), sys.executable,
         "-I", "-S", str(SAMPLER), "--dir", str(logdir), "--interval", "0.05",
         "--duration", "2", "--quiet", "--trigger-max-per-hour", "100",
         "--trigger", f"{c.program}:rss>1K:USR2", "--trigger", "*:low:USR2"],
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    calls = [line for line in out.read_text().splitlines() if "(" in line]
    execs = [line for line in calls if "execve" in line]
    spawns = [line for line in calls if any(k in line for k in ("fork(", "clone(", "clone3("))]
    assert execs and all(sys.executable.split("/")[-1] in e for e in execs)  # itself only
    assert spawns == []
    # (a new low of this shared host's memory may add a second one, through the `*` rule)
    assert [(e["pid"], e["result"]) for e in events(logdir)][:1] == [(c.pid, "sent")]
    wait_for(lambda: "snap-1.bin" in c.snaps(), what="the snapshot")
