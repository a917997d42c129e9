"""The real sampler on the live /proc: real processes, signals, crashes, faults and an OOM kill."""

from __future__ import annotations

import json
import marshal
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SAMPLER, full_disk, log_text, memory_cgroup, records, wait_for

from memtrail import reader, report, sampler

pytestmark = pytest.mark.live
IS_ROOT = os.geteuid() == 0

CHILD = r"""
import sys
tag = sys.argv[1]
sys.stdout.write("ready\n"); sys.stdout.flush()
blob = None
for line in sys.stdin:
    if line.startswith("grow"):
        blob = bytearray(int(line.split()[1]) << 20)
        for i in range(0, len(blob), 4096):
            blob[i] = 1
        sys.stdout.write("grown\n"); sys.stdout.flush()
    elif line.startswith("exit"):
        break
"""


def start_child(tag: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, tag], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    return child


def lines_of(logdir: Path, rtype: str):
    return [line for line in log_text(logdir).splitlines() if line.startswith(rtype + " ")]


def commands_of(logdir: Path, pid: str) -> list:
    """The command lines of PID's `P` lines, in order."""
    return [json.loads(line[line.index("{"):])["cmd"] for line in lines_of(logdir, "P")
            if line.split()[2] == pid]


def test_real_child_appears_grows_and_exits(tmp_path, sampler_factory):
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--interval", "0.1")
    s.wait_ticks(2)
    tag = f"memtrail-live-{os.getpid()}"
    child = start_child(tag)
    pid = str(child.pid)
    wait_for(lambda: any(line.split()[2] == pid for line in lines_of(logdir, "P")),
             what="the child's identity")
    ident = [line for line in lines_of(logdir, "P") if line.split()[2] == pid][0]
    assert json.loads(ident[ident.index("{"):])["cmd"][-1] == tag
    child.stdin.write("grow 64\n")
    child.stdin.flush()
    assert child.stdout.readline() == "grown\n"

    def grown():
        rss = [int(line.split()[3]) for line in lines_of(logdir, "p") if line.split()[2] == pid]
        return rss and max(rss) >= 64 * 1024
    wait_for(grown, what="the child's RSS growth")
    child.stdin.write("exit\n")
    child.stdin.flush()
    child.wait(10)
    wait_for(lambda: f" {pid}" in "".join(lines_of(logdir, "X")), what="the exit record")
    assert s.stop() == 0
    text = log_text(logdir)
    assert text.splitlines()[-1].startswith("Z ")
    stats = reader.ReadStats()
    records(logdir, stats)
    assert stats.problems == 0


def test_a_real_shell_that_execs_later_gets_its_new_identity(tmp_path, sampler_factory):
    """`sh` waits (as an entrypoint waits for its database), then execs another program:
    the sampler, which has recorded the shell for several ticks, writes the new identity."""
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--interval", "0.1")
    s.wait_ticks(2)
    tag = f"memtrail-exec-{os.getpid()}"
    shell = subprocess.Popen(["/bin/sh", "-c", f'read x; exec {sys.executable} -c "$x" {tag}'],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid = str(shell.pid)

    def idents():
        return commands_of(logdir, pid)
    wait_for(lambda: idents(), what="the shell's identity")
    seen = log_text(logdir).count("\ns ")
    s.wait_ticks(seen + 3)  # no longer young: only the code-size rule can see the exec
    assert idents()[-1][0] == "/bin/sh"
    shell.stdin.write("import sys; print('ready', flush=True); sys.stdin.read()\n")
    shell.stdin.flush()
    assert shell.stdout.readline() == "ready\n"  # the exec is done
    wait_for(lambda: idents()[-1][-1] == tag, what="the new identity")
    assert idents()[-1][0] == sys.executable
    shell.stdin.close()
    shell.wait(10)
    assert s.stop() == 0


def test_a_real_exec_of_the_same_interpreter_gets_its_new_identity(tmp_path, sampler_factory):
    """A Python launcher that execs Python again (same binary, same code size in statm):
    seen by its stack's new address at the next status tick."""
    aslr = Path("/proc/sys/kernel/randomize_va_space")
    if (aslr.exists() and aslr.read_text().strip() == "0") or \
            Path("/proc/self/stat").read_text().rsplit(") ", 1)[1].split()[25] == "0":
        pytest.skip("no stack address to compare (ASLR off, or hidden by the kernel)")
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--interval", "0.1", "--status-every", "0.3", "--top-n", "100000")
    s.wait_ticks(2)
    tag = f"memtrail-reexec-{os.getpid()}"
    code = ("import os, sys; sys.stdin.readline(); os.execv(sys.executable, [sys.executable, "
            "'-c', 'import sys; print(\"ready\", flush=True); sys.stdin.read()', sys.argv[2]])")
    child = subprocess.Popen([sys.executable, "-c", code, "launcher", tag], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    pid = str(child.pid)

    def idents():
        return commands_of(logdir, pid)
    wait_for(lambda: idents(), what="the launcher's identity")
    seen = log_text(logdir).count("\ns ")
    s.wait_ticks(seen + 3)  # no longer young
    assert idents()[-1][-2:] == ["launcher", tag]
    text_before = Path(f"/proc/{pid}/statm").read_text().split()[3]
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline() == "ready\n"  # the exec is done
    assert Path(f"/proc/{pid}/statm").read_text().split()[3] == text_before  # same code size
    wait_for(lambda: "launcher" not in idents()[-1], what="the new identity")
    assert idents()[-1][-1] == tag and idents()[-1][-2].endswith("sys.stdin.read()")
    child.stdin.close()
    child.wait(10)
    assert s.stop() == 0


def test_sampler_never_forks_and_execs_only_itself_once_before_sampling(tmp_path):
    """Run as a script it re-executes itself once, at start-up, as an import of the same file
    (sampler.lean_reexec): that execve, of the same interpreter, is the only one after the
    start, it comes before /proc/meminfo is first opened (before any tick), and nothing is
    ever forked or cloned."""
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace is not installed (.ci/run installs it)")
    out = tmp_path / "trace"
    run = subprocess.run(
        # --seccomp-bpf: only the traced calls stop the tracee, so a host with thousands of
        # processes does not slow every pread down.
        [strace, "-f", "-qq", "-s", "1024", "--seccomp-bpf", "-e",
         "trace=fork,vfork,clone,clone3,execve,execveat,open,openat", "-o", str(out),
         sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(tmp_path / "log"),
         "--interval", "0.05", "--duration", "3", "--quiet", "--rotate-age", "0.5"],
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    calls = [line for line in out.read_text().splitlines() if "(" in line]
    execs = [i for i, c in enumerate(calls) if "execve" in c]
    spawns = [c for c in calls if any(k in c for k in ("fork(", "clone(", "clone3("))]
    assert spawns == []
    assert len(execs) == 2  # strace starting it, and its one re-exec
    first, second = (calls[i] for i in execs)
    assert f'execve("{sys.executable}"' in first and f'execve("{sys.executable}"' in second
    assert '"-c"' in second and "SourceFileLoader" in second and str(SAMPLER) in second
    # The script compiled (or loaded) itself before the exec and handed the code over in a
    # memfd: the new image never opens the file or a .pyc, so it never compiles it again.
    assert "marshal.loads" in second
    own = (str(SAMPLER), str(SAMPLER.parent / "__pycache__" / "sampler."))
    assert not [c for c in calls[execs[1] + 1:] if any(name in c for name in own)]
    meminfo = [i for i, c in enumerate(calls) if '/meminfo"' in c]
    assert meminfo and min(meminfo) > execs[1]  # re-executed before the first tick
    assert len({c.split()[0] for c in calls}) == 1  # one pid throughout: an exec, not a child
    assert len(list((tmp_path / "log").iterdir())) >= 2  # it rotated and compressed meanwhile


def test_a_copied_script_reexecutes_as_an_import_of_itself(tmp_path):
    """The single file copied anywhere under any name: one re-exec, same pid, same flags."""
    copy = tmp_path / "bin dir" / "my-sampler.py"
    copy.parent.mkdir()
    shutil.copy(SAMPLER, copy)
    logdir = tmp_path / "log"
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-B", str(copy), "--dir", str(logdir),
                             "--interval", "0.1", "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_for(lambda: log_text(logdir).count("\ns ") >= 2 if logdir.exists() else False,
                 what="two ticks")
        argv = open(f"/proc/{proc.pid}/cmdline", "rb").read().split(b"\0")[:-1]
        assert argv[0].decode() == sys.executable and argv[1:5] == [b"-I", b"-S", b"-B", b"-c"]
        assert b"SourceFileLoader" in argv[5] and argv[6] == str(copy).encode()
        assert argv[7].isdigit() and argv[8:] == [
            b"--dir", str(logdir).encode(), b"--interval", b"0.1", b"--quiet"]
        # the compiled code came in a memfd, closed once read
        fds = os.listdir(f"/proc/{proc.pid}/fd")
        assert not [fd for fd in fds if "memtrail-sampler-code" in _link(proc.pid, fd)]
        header = json.loads(log_text(logdir).split("\n", 1)[0].split(" ", 4)[4])
        assert header["pid"] == proc.pid
        # the new image starts with glibc's mmap threshold fixed, and says so
        env = open(f"/proc/{proc.pid}/environ", "rb").read().split(b"\0")
        assert b"MALLOC_MMAP_THRESHOLD_=131072" in env
        wait_for(lambda: " residency " in log_text(logdir), what="the residency event")
        assert '"heap":"mmap threshold 131072 bytes"' in log_text(logdir)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    assert not (copy.parent / "__pycache__").exists()  # -B was kept
    assert log_text(logdir).splitlines()[-1].startswith("Z ")


def test_a_script_started_with_stderr_closed_writes_nothing_astray(tmp_path):
    """`python3 sampler.py 2>&-`: the handed-over code's descriptor must not take fd 2, or
    the new image would adopt it as stderr and, once it is closed and reused, print its
    start-up line into whatever file got the number next (a log segment)."""
    logdir = tmp_path / "log"
    proc = subprocess.Popen(
        ["sh", "-c", 'exec "$@" 2>&-', "sh", sys.executable, "-I", "-S", str(SAMPLER),
         "--dir", str(logdir), "--interval", "0.1"], stdout=subprocess.PIPE)
    try:
        wait_for(lambda: logdir.exists() and " residency " in log_text(logdir),
                 what="the residency event")
        argv = open(f"/proc/{proc.pid}/cmdline", "rb").read().split(b"\0")
        assert int(argv[argv.index(str(SAMPLER).encode()) + 1]) >= 3
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    text = log_text(logdir)
    assert "recording to" not in text and text.splitlines()[-1].startswith("Z ")
    stats = reader.ReadStats()
    records(logdir, stats)
    assert stats.problems == 0


def _link(pid: int, fd: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:  # closed meanwhile
        return ""


def test_the_compiled_code_handed_over_is_this_files(tmp_path, monkeypatch):
    """What the new image runs: the file's own code, from an inheritable memfd at offset 0;
    without a usable descriptor the command line falls back to loading the file by path."""
    copy = tmp_path / "my-sampler.py"
    shutil.copy(SAMPLER, copy)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # -B: nothing written
    os.close(sampler.compiled_code_fd(str(copy)))
    assert not (tmp_path / "__pycache__").exists()
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    fd = sampler.compiled_code_fd(str(copy))
    assert fd >= 0
    try:
        assert os.get_inheritable(fd) and os.lseek(fd, 0, os.SEEK_CUR) == 0
        code = marshal.loads(os.read(fd, 1 << 24))
        assert code.co_filename == str(copy) and "lean_reexec" in code.co_names
        args = sampler.lean_reexec_argv(str(copy), ["--quiet"], fd)
        assert args[-3:] == [str(copy), str(fd), "--quiet"] and "marshal" in args[-4]
    finally:
        os.close(fd)
    assert (tmp_path / "__pycache__").exists()  # and the importer cached it, as an import does
    args = sampler.lean_reexec_argv(str(copy), ["--quiet"])
    assert args[-2:] == [str(copy), "--quiet"] and "exec_module" in args[-3]


def test_the_reexec_leaves_an_operators_malloc_tuning_alone(tmp_path):
    """MALLOC_* or GLIBC_TUNABLES set by the operator (or the unit's Environment=) win."""
    logdir = tmp_path / "log"
    env = dict(os.environ, MALLOC_ARENA_MAX="2")
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(logdir),
                             "--interval", "0.1", "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: logdir.exists() and " residency " in log_text(logdir),
                 what="the residency event")
        environ = open(f"/proc/{proc.pid}/environ", "rb").read().split(b"\0")
        assert b"MALLOC_ARENA_MAX=2" in environ
        assert not [v for v in environ if v.startswith(b"MALLOC_MMAP_THRESHOLD_")]
        assert '"heap":"glibc default"' in log_text(logdir)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()


def test_module_and_import_runs_do_not_reexecute(tmp_path):
    """`python3 -m memtrail.sampler` and `memtrail record` import it: no exec, same result."""
    for argv in ([sys.executable, "-m", "memtrail.sampler"],
                 [sys.executable, "-m", "memtrail", "record"]):
        logdir = tmp_path / argv[-1].replace(".", "-")
        env = dict(os.environ, PYTHONPATH=str(SAMPLER.parent.parent))
        proc = subprocess.Popen([*argv, "--dir", str(logdir), "--interval", "0.1", "--quiet"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda d=logdir: d.exists() and log_text(d).count("\ns ") >= 2,
                     what="two ticks")
            cmdline = open(f"/proc/{proc.pid}/cmdline", "rb").read().split(b"\0")
            assert b"-c" not in cmdline and cmdline[1:3] == [b"-m", argv[2].encode()]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
        assert log_text(logdir).splitlines()[-1].startswith("Z ")


def test_signals_snapshot_reopen_and_clean_end(tmp_path, sampler_factory):
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--interval", "0.2")
    s.wait_ticks(2)
    os.kill(s.pid, signal.SIGUSR1)
    wait_for(lambda: '"reason":"signal"' in log_text(logdir), what="a SIGUSR1 snapshot")
    text = log_text(logdir)
    assert "E " in text and '"reason":"SIGUSR1"' in text
    os.kill(s.pid, signal.SIGHUP)
    wait_for(lambda: len(reader.segments(str(logdir))) == 2, what="a new segment on SIGHUP")
    assert s.stop(signal.SIGINT) == 0
    segs = reader.segments(str(logdir))
    first = log_text(logdir).split("\nH ")[0]
    assert first.rstrip("\n").splitlines()[-1].startswith("E ") and " rotate " in first
    last = open(segs[-1]).read().splitlines()
    assert last[0].startswith("H ") and last[-1].startswith("Z ")
    assert json.loads(last[-1].split(" ", 2)[2])["reason"] == "SIGINT"


def test_sigkill_at_random_moments_never_corrupts_the_log(tmp_path, sampler_factory, fakeproc):
    for pid in range(100, 400):  # 300 processes: sizeable ticks, independent of the host
        fakeproc.add(pid, ["worker", "--id", str(pid)])
    logdir = tmp_path / "log"
    rng = random.Random(7)
    runs = 8
    for run in range(runs):
        s = sampler_factory(logdir, "--interval", "0.01", "--keyframe", "0.05", "--proc-root",
                            str(fakeproc.root), "--no-cgroups")
        wait_for(lambda n=run + 1: logdir.exists() and len(reader.segments(str(logdir))) == n,
                 what="this run's own segment")
        time.sleep(rng.uniform(0.0, 0.3))  # the moment is the point: random, not awaited
        s.kill()
    segs = reader.segments(str(logdir))
    assert len(segs) == runs  # every restart began a new segment
    assert sum(seg.endswith(".gz") for seg in segs) >= runs - 2  # earlier ones compressed
    stats = reader.ReadStats()
    recs = records(logdir, stats)
    assert stats.bad == 0 and stats.skipped_files == [] and stats.truncated_files == []
    assert stats.torn <= runs
    assert sum(r.type == "H" for r in recs) == runs
    assert sum(r.type == "s" for r in recs) >= runs


def test_rotation_compression_and_retention(tmp_path, sampler_factory, fakeproc):
    for pid in range(100, 120):  # a small fixed process table: sizes that do not depend on the host
        fakeproc.add(pid, ["worker", str(pid)])
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--interval", "0.02", "--rotate-size", "8K",
                        "--max-total", "24K", "--keyframe", "0.1", "--proc-root",
                        str(fakeproc.root), "--no-cgroups")
    s.wait_ticks(1)
    wait_for(lambda: sum(n.endswith(".gz") for n in os.listdir(logdir)) >= 3,
             timeout=30, what="three compressed segments")
    first = sorted(os.listdir(logdir))[0]

    def retention_ran():
        names = sorted(os.listdir(logdir))
        return names[0] != first and names
    wait_for(retention_ran, timeout=30, what="the oldest segment to be deleted")
    (logdir / "notes.txt").write_text("not ours")
    assert s.stop() == 0
    names = sorted(os.listdir(logdir))
    assert "notes.txt" in names  # never touches a file that is not its own
    ours = [n for n in names if reader.is_segment_name(n)]
    closed = [n for n in ours[:-1]]
    assert all(n.endswith(".gz") for n in closed[:-1])
    assert sum((logdir / n).stat().st_size for n in closed) <= 24 * 1024
    for name in ours:
        assert stat.S_IMODE((logdir / name).stat().st_mode) == 0o640
    stats = reader.ReadStats()
    recs = records(logdir, stats)
    assert stats.problems == 0
    assert sum(r.type == "H" for r in recs) == len(ours)  # each segment stands alone


def test_directory_modes_and_refusals(tmp_path):
    def run(path, *extra):
        return subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(path),
                               "--duration", "0.2", "--quiet", *extra],
                              capture_output=True, text=True, timeout=30)
    fresh = tmp_path / "fresh"
    assert run(fresh).returncode == 0
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o750
    link = tmp_path / "link"
    link.symlink_to(fresh)
    bad = run(link)
    assert bad.returncode == 1 and "symbolic link" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    bad = run(open_dir)
    assert bad.returncode == 1 and "writable by others" in bad.stderr
    bad = run(tmp_path / "no" / "such" / "parent")
    assert bad.returncode == 1 and "does not exist" in bad.stderr


def test_log_directory_removed_while_running(tmp_path, sampler_factory):
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--interval", "0.05")
    s.wait_ticks(2)
    shutil.rmtree(logdir)
    wait_for(lambda: logdir.exists() and "removed or replaced" in log_text(logdir),
             what="a new segment after the directory was removed")
    assert s.stop() == 0
    assert log_text(logdir).splitlines()[-1].startswith("Z ")



@pytest.mark.root
def test_disk_full_keeps_sampling_and_logs_a_gap(tmp_path, sampler_factory, fakeproc):
    with full_disk(tmp_path, sampler_factory, fakeproc) as (s, mnt, filler):
        before = log_text(mnt).count("\ns ")
        s.wait_stderr("cannot write")  # a tick hit ENOSPC
        assert s.proc.poll() is None  # still sampling
        filler.unlink()
        wait_for(lambda: " gap " in log_text(mnt), what="a gap record once space returned")
        gap = [line for line in log_text(mnt).splitlines() if " gap " in line][0]
        obj = json.loads(gap[gap.index("{"):])
        assert obj["reason"] == "ENOSPC" and obj["lost_ticks"] >= 1
        assert s.stop() == 0
        stats = reader.ReadStats()
        records(mnt, stats)
        assert stats.bad == 0
        assert log_text(mnt).count("\ns ") > before



HOG = r"""
import sys, time
sys.stdout.write("in\n"); sys.stdout.flush()
sys.stdin.readline()
chunks = []
while True:
    chunks.append(bytearray(8 << 20))
    for i in range(0, 8 << 20, 4096):
        chunks[-1][i] = 1
    time.sleep(0.01)
"""


@pytest.mark.root
def test_oom_kill_in_a_memory_cgroup_is_recorded_without_a_gap(tmp_path, sampler_factory):
    if not IS_ROOT:
        pytest.skip("creating memory cgroups needs root")
    name = f"memtrail-test-{os.getpid()}"
    try:
        made = memory_cgroup(name)
    except OSError as exc:
        pytest.skip(f"cannot create a memory cgroup here: {exc}")
    if made is None:
        pytest.skip("no memory cgroup controller on this host")
    cgdir, procs_file, limit_file = made
    hog = None
    try:
        limit_file.write_text(str(96 << 20))
        memsw = cgdir / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(96 << 20))
        logdir = tmp_path / "log"
        interval = 0.2
        s = sampler_factory(logdir, "--interval", str(interval))
        s.wait_ticks(2)
        hog = subprocess.Popen([sys.executable, "-c", HOG, "memtrail-hog-marker"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert hog.stdout.readline() == "in\n"
        procs_file.write_text(str(hog.pid))
        wait_for(lambda: "P " in log_text(logdir) and "memtrail-hog-marker" in log_text(logdir),
                 what="the hog's identity in the log")
        s.wait_ticks(log_text(logdir).count("\ns ") + 2)  # past start-up's first keyframe
        go = time.time()
        hog.stdin.write("go\n")
        hog.stdin.flush()
        assert hog.wait(60) == -signal.SIGKILL
        # /dev/kmsg tells every recorder of every kill on the host (another test may OOM-kill
        # its own hog meanwhile): ours is the event with our hog's pid.
        def our_kill():
            return [(float(line.split()[1]), json.loads(line[line.index("{"):]))
                    for line in log_text(logdir).splitlines() if " oom_kill " in line
                    and json.loads(line[line.index("{"):]).get("pid") == hog.pid]

        wait_for(our_kill, timeout=15, what="the OOM event")
        s.wait_ticks(log_text(logdir).count("\ns ") + 3)
        assert s.stop() == 0
        lines = log_text(logdir).splitlines()
        kill_time, kill = our_kill()[0]
        assert kill["cmd"][-1] == "memtrail-hog-marker"
        assert kill.get("anon_kib", 0) > 32 * 1024
        assert any(" oom_counter " in line for line in lines)
        times = [float(line.split()[1]) for line in lines if line.startswith("s ")
                 and go - interval <= float(line.split()[1]) <= kill_time + 1.0]  # the kill
        # What the sampler itself says, not a pace a busy neighbour could break: it kept
        # ticking through the kill (ticks before and after it) and recorded no gap.
        assert min(times) < kill_time < max(times)
        assert not any(" gap " in line for line in lines)
        gaps = [b - a for a, b in zip(times, times[1:])]
        print(f"largest gap between ticks around the OOM kill: {max(gaps):.3f}s "
              f"(interval {interval}s)")
    finally:
        if hog and hog.poll() is None:
            hog.kill()
            hog.wait()
        for _ in range(50):
            try:
                cgdir.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def test_stop_signal_takes_a_last_tick(tmp_path, sampler_factory):
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--interval", "30")
    s.wait_ticks(1)
    assert s.stop() == 0
    lines = log_text(logdir).splitlines()
    ticks = [float(line.split()[1]) for line in lines if line.startswith("s ")]
    end = float(lines[-1].split()[1])
    assert len(ticks) == 2 and end - ticks[-1] < 1.0  # the moment of the stop is in the log


@pytest.mark.root
def test_slab_breakdown_names_the_largest_caches(tmp_path):
    if not IS_ROOT:
        pytest.skip("/proc/slabinfo needs root")
    with open("/proc/slabinfo", "rb") as fh:
        full = fh.read()
    sizes = {}
    for line in full.split(b"\n")[2:]:
        parts = line.split()
        if len(parts) >= 15:
            sizes[parts[0].decode()] = int(parts[14]) * int(parts[5]) * os.sysconf(
                "SC_PAGE_SIZE") // 1024
    run = subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(tmp_path),
                          "--duration", "0.3", "--quiet"], capture_output=True, timeout=60)
    assert run.returncode == 0
    line = [x for x in log_text(tmp_path).splitlines() if x.startswith("b ")][0]
    top_name, top_kib = line.split()[2].split("=")
    assert int(top_kib) >= max(sizes.values()) * 0.8  # the largest (it may move a little)


def test_log_directory_replaced_while_running(tmp_path, sampler_factory):
    logdir = tmp_path / "log"
    s = sampler_factory(logdir, "--interval", "0.05")
    s.wait_ticks(2)
    logdir.rename(tmp_path / "log.old")  # an operator moves it aside and makes a new one
    logdir.mkdir(mode=0o750)
    wait_for(lambda: any(n.endswith(".log") for n in os.listdir(logdir)),
             what="a segment in the new directory")
    assert s.stop() == 0
    assert log_text(logdir).splitlines()[-1].startswith("Z ")
    assert "removed or replaced" in log_text(logdir)
    stats = reader.ReadStats()
    records(tmp_path / "log.old", stats)
    assert stats.bad == 0  # what was written before the move is intact


@pytest.mark.root
def test_read_only_filesystem_is_a_gap_not_an_exit(tmp_path, sampler_factory, fakeproc):
    """The log directory moved aside and a read-only filesystem mounted at its path: new
    segments fail with EROFS until it is writable again. (The sampler holds its directory
    open and writes beneath any later mount on the same directory, and a filesystem cannot
    be remounted read-only while its segment is open for writing: so a new one.)"""
    if not IS_ROOT:
        pytest.skip("mounts need root")
    logdir = tmp_path / "log"
    fakeproc.add(100, ["worker"])
    s = sampler_factory(logdir, "--interval", "0.05", "--proc-root", str(fakeproc.root),
                        "--no-cgroups", quiet=False)
    s.wait_stderr("recording to")
    logdir.rename(tmp_path / "log.old")
    logdir.mkdir(mode=0o750, exist_ok=True)  # the sampler may have made it again already
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8M,mode=0750,ro", "tmpfs",
                       str(logdir)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        s.wait_stderr("cannot write")
        assert s.proc.poll() is None
        subprocess.run(["mount", "-o", "remount,rw", str(logdir)], check=True)
        wait_for(lambda: " gap " in log_text(logdir), what="a gap record after the remount")
        gap = [x for x in log_text(logdir).splitlines() if " gap " in x][0]
        assert json.loads(gap[gap.index("{"):])["reason"] == "EROFS"
        assert s.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(logdir)])


@pytest.mark.root
def test_unprivileged_user_records_and_says_what_it_could_not(tmp_path):
    if not IS_ROOT or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop to nobody")
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="memtrail-nobody-", dir="/tmp"))  # reachable by nobody
    base.chmod(0o755)
    logdir = base / "log"
    logdir.mkdir(mode=0o750)
    os.chown(logdir, 65534, 65534)
    run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(logdir),
                          "--duration", "1", "--interval", "0.2", "--quiet",
                          "--status-every", "0.2", "--pss-every", "0.2"],
                         capture_output=True, text=True, timeout=60)
    if "Permission denied" in run.stderr and "python" in run.stderr:
        pytest.skip(f"nobody cannot run {sys.executable} here")
    assert run.returncode == 0, run.stderr
    text = log_text(logdir)
    assert text.splitlines()[-1].startswith("Z ")
    assert '"kmsg":"/dev/kmsg: Permission denied"' in text or " oom_counter" not in text
    assert "slabinfo unreadable" in text and "memory not locked" in text
    # root's largest processes refuse their smaps_rollup: said as refused, never as gone
    pss = [json.loads(x[x.index("{"):]) for x in text.splitlines() if " pss {" in x]
    assert pss and all(e.get("denied", 0) >= 1 for e in pss), pss
    rep = report.analyze([str(logdir)])
    assert rep["pss_tier"]["denied"] == max(e["denied"] for e in pss)
    assert "a round: the sampler ran without root" in report.render_text(rep)
    stats = reader.ReadStats()
    recs = records(logdir, stats)
    assert stats.problems == 0 and sum(r.type == "P" for r in recs) > 1  # others' processes too
    shutil.rmtree(base)


def test_three_ways_to_run_it_are_one_program(tmp_path):
    ways = {
        "script": [sys.executable, "-I", "-S", str(SAMPLER)],
        "module": [sys.executable, "-m", "memtrail.sampler"],
        "command": [sys.executable, "-m", "memtrail", "record"],
    }
    for name, argv in ways.items():
        run = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=30)
        assert run.returncode == 0 and run.stdout.startswith("memtrail sampler "), name
        logdir = tmp_path / name
        run = subprocess.run([*argv, "--dir", str(logdir), "--duration", "0.3", "--quiet",
                              "--interval", "0.1"], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, (name, run.stderr)
        first = log_text(logdir).splitlines()[0]
        assert first.startswith("H ") and " memtrail 1 " in first, name


@pytest.mark.root
def test_an_unreachable_parent_is_not_called_missing(tmp_path):
    if not IS_ROOT or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop to nobody")
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          sys.executable, "-I", "-S", str(SAMPLER), "--dir",
                          str(closed / "log"), "--duration", "0.2"],
                         capture_output=True, text=True, timeout=60)
    if "memtrail" not in run.stderr and "Permission denied" in run.stderr:
        pytest.skip(f"nobody cannot run {sys.executable} here")
    assert run.returncode == 1 and "Permission denied" in run.stderr
    assert "does not exist" not in run.stderr and len(run.stderr.splitlines()) == 1


def test_each_header_names_its_own_segment(tmp_path):
    run = subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(tmp_path),
                          "--duration", "1", "--interval", "0.1", "--rotate-age", "0.3",
                          "--quiet"], capture_output=True, timeout=60)
    assert run.returncode == 0
    segs = reader.segments(str(tmp_path))
    assert len(segs) >= 2
    for seg in segs:
        head = next(r for r in reader.read(seg) if r.type == "H")
        assert head.obj["segment"] == os.path.basename(seg).replace(".gz", "")
