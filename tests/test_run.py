"""`memtrail run`, `memtrail record --daemon` and `memtrail stop`, end to end: real sampler,
real commands, real signals, a real OOM kill in a memory cgroup."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, log_text, wait_for

from memtrail import daemon, reader
from memtrail import run as run_module
from memtrail.model import Proc
from memtrail.report import analyze

pytestmark = pytest.mark.live
IS_ROOT = os.geteuid() == 0
PY = sys.executable
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
ENV.pop("GITHUB_STEP_SUMMARY", None)

ALLOC_AND_FREE = """
import time
b = bytearray(64 << 20)
for i in range(0, len(b), 4096):
    b[i] = 1
time.sleep(0.6)
del b
time.sleep(0.3)
"""


def memtrail(*args):
    return [PY, "-m", "memtrail", *args]


def mt(*args: str, env=None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`memtrail ARGS`, run to its end."""
    return subprocess.run(memtrail(*args), env=env or ENV, capture_output=True, text=True,
                          timeout=timeout)


def run_args(tmp_path: Path, *args: str) -> list:
    return ["run", "--dir", str(tmp_path / "log"), "--interval", "0.2", *args]


def run(tmp_path: Path, *args: str, env=None, timeout: float = 60) -> subprocess.CompletedProcess:
    return mt(*run_args(tmp_path, *args), env=env, timeout=timeout)


def last_line(logdir: Path) -> str:
    segs = reader.segments(str(logdir))
    with open(segs[-1], "rb") as fh:
        return fh.read().decode().rstrip("\n").rsplit("\n", 1)[-1]


def test_passing_gate_writes_log_summary_json_and_keeps_the_status(tmp_path):
    summary, js = tmp_path / "summary.md", tmp_path / "run.json"
    step = tmp_path / "step-summary.md"
    step.write_text("earlier step\n")
    env = dict(ENV, GITHUB_STEP_SUMMARY=str(step))
    res = run(tmp_path, "--max-used", "100T", "--no-oom", "--summary", str(summary),
              "--json", str(js), "--", PY, "-c", ALLOC_AND_FREE, env=env)
    assert res.returncode == 0, res.stderr
    assert last_line(tmp_path / "log").startswith("Z ")
    doc = json.loads(js.read_text())
    assert doc["exit_status"] == 0 and doc["command"]["exit_status"] == 0
    assert doc["gate"]["passed"] is True
    # The command's own processes: it held 64 MiB for more than two ticks.
    assert doc["command"]["tree"]["peak_rss_bytes"] >= 60 << 20
    assert doc["command"]["tree"]["largest"]["pid"] == doc["command"]["pid"]
    assert doc["oom"] == []
    assert doc["log"]["clean_end"] is True
    assert doc["report"]["span"]["ticks"] >= 3
    text = summary.read_text()
    assert "### memtrail run:" in text and "PASS" in text and "| program |" in text
    assert step.read_text() == "earlier step\n" + text  # appended, not replaced
    assert "PASS: memtrail check" in res.stderr
    assert "the command's processes peaked at" in res.stderr


def test_run_redacts_its_own_command_everywhere(tmp_path):
    """`memtrail run -- CMD --password=X`: X must not reach stderr, the summary (which may
    become $GITHUB_STEP_SUMMARY), --json or the log."""
    summary, js, step = tmp_path / "summary.md", tmp_path / "run.json", tmp_path / "step.md"
    env = dict(ENV, GITHUB_STEP_SUMMARY=str(step))
    res = run(tmp_path, "--summary", str(summary), "--json", str(js), "--full", "--", PY, "-c",
              "import time; time.sleep(0.5)", "--password=hunter2",
              "https://bob:hunter2@example.com/", env=env)
    assert res.returncode == 0, res.stderr
    assert "--password=***" in res.stderr
    for text in (res.stderr, res.stdout, summary.read_text(), step.read_text(), js.read_text(),
                 log_text(tmp_path / "log")):
        assert "hunter2" not in text
    doc = json.loads(js.read_text())
    assert doc["command"]["argv"][-2:] == ["--password=***", "https://bob:***@example.com/"]


def test_broken_gate_fails_a_successful_command_with_1(tmp_path):
    js = tmp_path / "run.json"
    res = run(tmp_path, "--max-used", "1M", "--json", str(js), "--", PY, "-c", "pass")
    assert res.returncode == 1, res.stderr
    assert "FAIL: memtrail check" in res.stderr and "exceeded --max-used" in res.stderr
    doc = json.loads(js.read_text())
    assert doc["gate"]["passed"] is False and doc["command"]["exit_status"] == 0


def test_a_failing_command_keeps_its_own_status_even_when_the_gate_breaks(tmp_path):
    res = run(tmp_path, "--max-used", "1M", "--", PY, "-c", "raise SystemExit(3)")
    assert res.returncode == 3, res.stderr
    assert "exited with status 3" in res.stderr and "FAIL" in res.stderr


def test_a_command_killed_by_a_signal_gives_128_plus_n(tmp_path):
    res = run(tmp_path, "--", PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert res.returncode == 128 + signal.SIGTERM, res.stderr
    assert "killed by signal 15 (SIGTERM)" in res.stderr


def test_command_not_found_and_usage_errors(tmp_path):
    res = run(tmp_path, "--", "memtrail-no-such-command-xyz")
    assert res.returncode == 127
    assert "memtrail-no-such-command-xyz: command not found" in res.stderr
    assert last_line(tmp_path / "log").startswith("Z ")  # the sampler was still stopped
    res = run(tmp_path, "--max-used", "lots", "--", "true")
    assert res.returncode == 2 and "not a size" in res.stderr
    assert "Traceback" not in res.stderr
    res = run(tmp_path)
    assert res.returncode == 2 and "no command given" in res.stderr


def test_a_sampler_that_cannot_record_means_the_command_is_not_run(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    marker = tmp_path / "ran"
    res = mt("run", "--dir", str(not_a_dir), "--", "touch", str(marker))
    assert res.returncode == 2
    assert "the sampler did not start" in res.stderr and "not a directory" in res.stderr
    assert not marker.exists()


def test_the_report_covers_only_this_run_in_a_shared_directory(tmp_path):
    js = tmp_path / "run.json"
    assert run(tmp_path, "--", PY, "-c", "pass").returncode == 0
    res = run(tmp_path, "--json", str(js), "--", PY, "-c", "pass")
    assert res.returncode == 0, res.stderr
    doc = json.loads(js.read_text())
    assert len(reader.segments(str(tmp_path / "log"))) == 2
    assert len(doc["log"]["segments"]) == 1 and doc["report"]["sampler_runs"] == 1
    assert doc["report"]["span"]["gaps"] == []


WAIT_FOR_SIGNAL = """
import signal, sys, time
got = []
signal.signal(signal.SIGINT, lambda s, f: got.append(s))
print("ready", flush=True)
deadline = time.monotonic() + 30
while not got and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.3)  # a second delivery of the same signal would land here
print("got", len(got), flush=True)
sys.exit(40 + len(got))
"""


SLEEP = "import time; print('ready', flush=True); time.sleep(30)"


def _signal_run(tmp_path, sig: int, script: str):
    """`memtrail run --json run.json -- python -c SCRIPT`; `sig` to memtrail once the command
    printed "ready". (exit status, stdout, stderr, seconds from the signal to the end)"""
    proc = subprocess.Popen(memtrail(*run_args(tmp_path, "--json", str(tmp_path / "run.json"),
                                               "--", PY, "-c", script)),
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err, time.monotonic() - sent


def test_sigint_to_memtrail_run_reaches_the_command_once_and_stops_the_sampler(tmp_path):
    status, out, err, _ = _signal_run(tmp_path, signal.SIGINT, WAIT_FOR_SIGNAL)
    assert out == "got 1\n"
    assert status == 41, err
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["command"]["signals_received"] == ["SIGINT"]
    sampler_pid = _header(tmp_path / "log")["pid"]
    assert not daemon.alive(sampler_pid)
    assert last_line(tmp_path / "log").startswith("Z ")
    assert analyze([str(tmp_path / "log")])["span"]["clean_end"] is True


def _header(logdir: Path) -> dict:
    for rec in reader.read(str(logdir)):
        if rec.type == "H":
            return rec.segment.header
    raise AssertionError("no header")


def test_sigint_kills_a_default_python_command_and_memtrail_exits_130(tmp_path):
    status, _, err, took = _signal_run(tmp_path, signal.SIGINT, SLEEP)
    assert status == 130, err
    assert took < 25  # the command did not sleep its 30 s out
    assert "killed by signal 2 (SIGINT)" in err
    assert last_line(tmp_path / "log").startswith("Z ")
    assert not daemon.alive(_header(tmp_path / "log")["pid"])


def test_sigterm_to_memtrail_run_is_passed_on(tmp_path):
    status, _, err, _ = _signal_run(tmp_path, signal.SIGTERM, SLEEP)
    assert status == 143, err
    assert last_line(tmp_path / "log").startswith("Z ")


def test_ctrl_c_on_a_terminal_reaches_the_command_once(tmp_path):
    """memtrail run in the foreground of a real (pseudo) terminal: ^C is the command's."""
    master, slave = os.openpty()
    launcher = ("import os, sys\n"
                "os.setsid()\n"
                "fd = os.open(os.ttyname(0), os.O_RDWR)\n"  # becomes the controlling terminal
                "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n")
    proc = subprocess.Popen([PY, "-c", launcher, *memtrail(*run_args(
        tmp_path, "--quiet", "--json", str(tmp_path / "run.json"), "--", PY, "-c",
        WAIT_FOR_SIGNAL))[1:]], stdin=slave, stdout=slave, stderr=slave, env=ENV)
    os.close(slave)
    out = b""
    try:
        def ready():
            nonlocal out
            try:
                out += os.read(master, 4096)
            except OSError as exc:  # EIO: every slave descriptor is closed
                raise AssertionError(f"memtrail run ended early ({proc.poll()}): {out!r}") \
                    from exc
            return b"ready\r\n" in out
        wait_for(ready, 30, "the command to start")
        os.write(master, b"\x03")  # Ctrl-C: the terminal signals its foreground process group
        assert proc.wait(60) == 41
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
    assert b"got 1" in out
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["command"]["signals_received"] == []  # the terminal's, not forwarded by us
    assert last_line(tmp_path / "log").startswith("Z ")


# -- OOM kill ----------------------------------------------------------------------------------
HOG = r"""
import glob, os, sys, time
if sys.argv[2] != "-":  # wait until the sampler has recorded who this is and who started it
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            line.startswith("P ") and line.split(" ", 3)[2] == str(os.getpid())
            for seg in glob.glob(os.path.join(sys.argv[2], "memtrail-*.log"))
            for line in open(seg, errors="replace")):
        time.sleep(0.02)
with open(sys.argv[1], "w") as fh:
    fh.write(str(os.getpid()))
chunks = []
while True:
    chunks.append(bytearray(8 << 20))
    for i in range(0, 8 << 20, 4096):
        chunks[-1][i] = 1
"""


@pytest.fixture
def memory_cgroup():
    if not IS_ROOT:
        pytest.skip("creating a memory cgroup needs root")
    v1 = Path("/sys/fs/cgroup/memory")
    v2 = Path("/sys/fs/cgroup")
    name = f"memtrail-run-test-{os.getpid()}"
    if v1.is_dir():
        cg, limit = v1 / name, "memory.limit_in_bytes"
    elif (v2 / "cgroup.controllers").exists() and "memory" in (
            v2 / "cgroup.controllers").read_text().split():
        cg, limit = v2 / name, "memory.max"
    else:
        pytest.skip("no memory cgroup controller on this host")
    try:
        cg.mkdir()
        (cg / limit).write_text(str(96 << 20))
        for swap in ("memory.memsw.limit_in_bytes", "memory.swap.max"):
            if (cg / swap).exists():
                (cg / swap).write_text(str(96 << 20) if "memsw" in swap else "0")
    except OSError as exc:
        pytest.skip(f"cannot make a memory cgroup here: {exc}")
    yield cg
    for pid in (cg / "cgroup.procs").read_text().split():
        os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while True:
        try:
            cg.rmdir()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.root
@pytest.mark.parametrize("role, wait", [("command", False), ("descendant", True),
                                        ("unseen", False)])
def test_a_command_oom_killed_in_a_memory_cgroup_is_named(tmp_path, memory_cgroup, role, wait):
    """The command itself is the victim; or a child of it the sampler saw (its parent is in
    the log); or a child that died before the sampler's next tick (parent unknown)."""
    procs = memory_cgroup / "cgroup.procs"
    pidfile = tmp_path / "hog.pid"
    hog = " ".join(f"'{a}'" for a in [PY, "-c", HOG, str(pidfile),
                                      str(tmp_path / "log") if wait else "-"])
    # The command moves itself into the cgroup, then becomes (or starts) the hog.
    script = f"echo $$ > {procs}; " + (f"exec {hog}" if role == "command" else f"{hog}; exit $?")
    js = tmp_path / "run.json"
    res = run(tmp_path, "--no-oom", "--json", str(js), "--", "sh", "-c", script)
    doc = json.loads(js.read_text())
    victim = int(pidfile.read_text())
    assert res.returncode == 137, res.stderr  # shells, too, say 128+9 for a SIGKILLed child
    assert len(doc["oom"]) == 1, res.stderr
    kill = doc["oom"][0]
    assert kill["pid"] == victim
    if role == "command":
        assert kill["role"] == "command" and victim == doc["command"]["pid"]
        assert doc["command"]["signal"] == "SIGKILL"
        assert "was killed by signal 9 (SIGKILL)" in res.stderr
        assert "KILLED BY THE OOM KILLER: python" in res.stderr
        assert f"(pid {victim}, " in res.stderr
    else:
        assert doc["command"]["signal"] is None  # sh exited 137 itself
        assert "exited with status 137" in res.stderr
        if role == "descendant":
            assert kill["role"] == "descendant"
            assert "the OOM killer killed a process of the command: python" in res.stderr
        else:  # the sampler may or may not have caught it in its one tick of life
            assert kill["role"] in ("unseen", "descendant")
            assert "the OOM killer killed a process" in res.stderr
        if kill["table"]:  # the shell moved itself into the cgroup: the kernel listed it too
            assert doc["command"]["pid"] in [b["pid"] for b in kill["beside"]], kill["beside"]
            assert "beside the command's own" in res.stderr
    assert "not the command's" not in res.stderr
    assert kill["rss_bytes"] > 60 << 20
    assert doc["command"]["tree"]["peak_rss_bytes"] >= kill["rss_bytes"]
    assert "FAIL: memtrail check" in res.stderr and "OOM kill" in res.stderr
    assert last_line(tmp_path / "log").startswith("Z ")


def test_an_unseen_victim_is_named_beside_the_commands_own_from_the_kernels_table():
    """A victim that lived less than a tick has no parent in the log; the kernel's task table
    at the kill is the evidence: the command's own processes (by pid) listed with it, largest
    first, others not, the victim itself not. The names are the kernel's (hostile text: the
    views pass the sentence through safetext)."""
    tree = run_module.CommandTree(10, None)
    tree.ever.update({10, 11})
    tree.known.update({10, 11, 50})
    table = [{"pid": 99, "name": "python3", "rss_bytes": 900 << 20},
             {"pid": 11, "name": "worker\x1b[2J", "rss_bytes": 300 << 20},
             {"pid": 50, "name": "postgres", "rss_bytes": 200 << 20},
             {"pid": 10, "name": "sh", "rss_bytes": 1 << 20}]
    kill = {"pid": 99, "time": "2025-11-20T10:00:05.000Z", "name": "python3",
            "program": "python3", "cmdline": None, "rss_bytes": 900 << 20, "table": table}
    rep = {"oom_kills": [kill, dict(kill, pid=11)]}
    got = run_module.oom_of_command(rep, tree, 1763632800.0, 1763632810.0)
    assert [(k["pid"], k["role"]) for k in got] == [(99, "unseen"), (11, "descendant")]
    assert [b["pid"] for b in got[0]["beside"]] == [11, 10]  # not postgres, not the victim
    assert [b["pid"] for b in got[1]["beside"]] == [10]
    text = run_module.oom_sentence(got[0])
    assert "the kernel's table at the kill lists it beside the command's own" in text
    assert "(pid 11, 300 MiB), sh (pid 10, 1.0 MiB)" in text and "postgres" not in text
    assert "beside" not in run_module.oom_sentence(dict(got[0], beside=[]))



def _sharing_children(kids: int, then: str) -> str:
    """A parent with 48 MiB of touched anonymous memory and `kids` forked children sharing it
    copy-on-write, which live until the parent closes their pipe; `then` is the parent's
    script in between (it has `kids`, the children's pids). No single quote: `sh -c` carries it."""
    return f"""
import os, sys
b = bytearray(48 << 20)
for i in range(0, len(b), 4096):
    b[i] = 1
r, w = os.pipe()
kids = []
for _ in range({kids}):
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # until the parent closes the pipe
        os._exit(0)
    kids.append(pid)
os.close(r)
{then}
sys.stdin.readline()
os.close(w)
for pid in kids:
    os.waitpid(pid, 0)
"""


FORKED_SERVER = _sharing_children(3, """
print(os.getpid(), *kids, flush=True)
sys.stdin.readline()
more = bytearray(3 << 20)  # the parent grows: the peak comes after the PSS reads
for i in range(0, len(more), 4096):
    more[i] = 1
print("grown", flush=True)
""")


def _records_of(logdir: Path, kind: str) -> list:
    return [line.split() for line in log_text(logdir).splitlines() if line.startswith(kind + " ")]


@contextlib.contextmanager
def _staged_run(tmp_path, command, env=ENV):
    """`memtrail run --json run.json -- COMMAND`, driven through the command's stdin and
    stdout by the block; on leaving it, "end" goes to the command and the run is awaited.
    Afterwards `proc.err` is memtrail's stderr, and run.json its document."""
    proc = subprocess.Popen(memtrail(*run_args(tmp_path, "--json", str(tmp_path / "run.json"),
                                               "--", *command)),
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield proc
        proc.stdin.write("end\n")
        proc.stdin.flush()
        _, proc.err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.err


def test_a_forked_servers_own_memory_is_said_beside_its_rss_sum(tmp_path):
    """Four processes sharing 48 MiB copy-on-write sum to ~4x48 MiB of RSS; the short report
    says what they hold (private from PSS, read for all four). The command signals its stages
    through stdin/stdout: the test waits for the sampler's PSS records of all four before the
    parent grows to its peak."""
    logdir = tmp_path / "log"
    with _staged_run(tmp_path, [PY, "-c", FORKED_SERVER],
                     dict(ENV, MEMTRAIL_PSS_EVERY="0.2")) as proc:
        pids = proc.stdout.readline().split()
        assert len(pids) == 4, pids
        wait_for(lambda: set(pids) <= {r[2] for r in _records_of(logdir, "D")}, timeout=30,
                 what="PSS records of the command's four processes")
        before = max(int(r[3]) for r in _records_of(logdir, "p") if r[2] == pids[0])
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "grown\n"
        # Its 3 MiB more recorded: the peak comes after the PSS reads. (A threshold under its
        # size before "go" let the run end before that tick, so the peak was a tick before
        # any PSS; and 8 MiB more, an eighth of its size, made its PSS stale at the peak.)
        wait_for(lambda: any(r[2] == pids[0] and int(r[3]) >= before + (1 << 10)
                             for r in _records_of(logdir, "p")), timeout=30,
                 what="a tick with the parent grown")
    err = proc.err
    tree = json.loads((tmp_path / "run.json").read_text())["command"]["tree"]
    assert tree["processes_at_peak"] == 4 and tree["peak_private_from_pss"] == 4, tree
    assert tree["peak_rss_bytes"] >= 4 * (48 << 20)
    # Each child's own share of the 48 MiB is a quarter of what its RSS says.
    assert tree["peak_private_bytes"] < tree["peak_rss_bytes"] / 2, tree
    assert "of their own (shared pages counted once: PSS read for each)" in err, err


def test_own_memory_and_program_pss_are_said_only_when_measured_and_telling():
    """No PSS read, a single process, a partial PSS sum, or sharing too small to matter: the
    RSS figure alone, as before. The kernel's figure at an OOM kill replaces the peak and
    leaves no own-memory figure for it."""
    tree = {"peak_rss_bytes": 400 << 20, "processes_at_peak": 4, "peak_private_bytes": 100 << 20,
            "peak_private_from_pss": 4}
    assert run_module._own_memory(tree) == (", holding 100 MiB of their own (shared pages "
                                            "counted once: PSS read for each)")
    assert run_module._own_memory(dict(tree, peak_private_from_pss=3)) == ""  # the rest overcount
    assert run_module._own_memory(dict(tree, peak_private_from_pss=0)) == ""
    assert run_module._own_memory(dict(tree, peak_private_bytes=380 << 20)) == ""
    assert run_module._own_memory(dict(tree, peak_private_bytes=None)) == ""
    small = dict(tree, peak_rss_bytes=12 << 20, peak_private_bytes=4 << 20)  # libraries only
    assert run_module._own_memory(small) == ""
    assert run_module._own_memory(dict(small, cgroup="/ci/job\x1b[2J", cgroup_peak_bytes=9 << 20)) \
        == ("; their memory cgroup /ci/job\x1b[2J (theirs alone) peaked at 9.0 MiB (the kernel's "
            "count: each page once, page cache included)")  # (views pass it through safetext)
    g = {"name": "gunicorn", "count": 4, "rss_bytes": 400 << 20, "pss_bytes": 120 << 20,
         "pss_count": 4}
    assert run_module._program_figure(g) == "400 MiB RSS (PSS 120 MiB)"
    assert run_module._program_figure(dict(g, pss_count=3)) == "400 MiB"
    assert run_module._program_figure(dict(g, count=1, pss_count=1)) == "400 MiB"
    assert run_module._program_figure(dict(g, pss_bytes=390 << 20)) == "400 MiB"
    assert run_module._program_figure(dict(g, pss_bytes=None, pss_count=0)) == "400 MiB"


# -- background mode ---------------------------------------------------------------------------
def record_daemon(*args: str) -> subprocess.CompletedProcess:
    """`memtrail record --daemon ARGS` (the route cli.py takes to daemon.main)."""
    return mt("record", "--daemon", *args)


def test_daemon_start_and_stop(tmp_path):
    pidfile, logdir = tmp_path / "memtrail.pid", tmp_path / "log"
    res = record_daemon("--pidfile", str(pidfile), "--dir", str(logdir), "--interval", "0.2")
    assert res.returncode == 0, res.stderr
    pid = int(pidfile.read_text())
    try:
        assert daemon.alive(pid) and daemon.is_sampler(pid)
        assert reader.segments(str(logdir))  # recording before the command returned
        assert "memtrail stop --pidfile" in res.stderr
        again = record_daemon("--pidfile", str(pidfile), "--dir", str(logdir))
        assert again.returncode == 1 and "already recording" in again.stderr
        stop = mt("stop", "--pidfile", str(pidfile))
        assert stop.returncode == 0, stop.stderr
        assert "stopped cleanly" in stop.stderr
    finally:
        if daemon.alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not daemon.alive(pid) and not pidfile.exists()
    assert last_line(logdir).startswith("Z ")
    lines = Path(reader.segments(str(logdir))[-1]).read_text().splitlines()
    last_s = [float(x.split()[1]) for x in lines if x.startswith("s ")][-1]
    assert float(lines[-1].split()[1]) - last_s < 1.0  # a last tick at the stop
    stop = mt("stop", "--pidfile", str(pidfile))
    assert stop.returncode == 2 and "no such pidfile" in stop.stderr


def test_daemon_needs_a_pidfile_and_reports_a_sampler_that_cannot_start(tmp_path):
    res = record_daemon("--dir", str(tmp_path / "log"))
    assert res.returncode == 2 and "--daemon needs --pidfile" in res.stderr
    bad = tmp_path / "file"
    bad.write_text("")
    res = record_daemon("--pidfile", str(tmp_path / "p"), "--dir", str(bad))
    assert res.returncode == 1 and "not a directory" in res.stderr
    assert "Traceback" not in res.stderr


def test_stop_kills_a_sampler_that_does_not_stop_and_says_so(tmp_path):
    pidfile, logdir = tmp_path / "memtrail.pid", tmp_path / "log"
    res = record_daemon("--pidfile", str(pidfile), "--dir", str(logdir), "--interval", "0.2")
    assert res.returncode == 0, res.stderr
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGSTOP)  # a stuck sampler: SIGTERM stays pending
    try:
        stop = mt("stop", "--pidfile", str(pidfile), "--timeout", "0.5")
    finally:
        if daemon.alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert stop.returncode == 1
    assert "was killed (SIGKILL)" in stop.stderr
    assert not daemon.alive(pid)
    assert not pidfile.exists()


def test_stop_refuses_a_pidfile_that_names_something_else(tmp_path):
    pidfile = tmp_path / "p"
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        pidfile.write_text(f"{sleeper.pid}\n")
        stop = mt("stop", "--pidfile", str(pidfile))
        assert stop.returncode == 2 and "is not a memtrail sampler" in stop.stderr
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
    stop = mt("stop", "--pidfile", str(pidfile))
    assert stop.returncode == 1 and "not running" in stop.stderr and not pidfile.exists()
    pidfile.write_text("garbage")
    stop = mt("stop", "--pidfile", str(pidfile))
    assert stop.returncode == 2 and "not a pidfile" in stop.stderr


# -- the CI recipes of docs/ci.md --------------------------------------------------------------
def _github_steps(section: str) -> list:
    """[(step name, shell text)] of every `run:` step in the yaml blocks of a docs/ci.md
    section, in order, one list per block."""
    text = (ROOT / "docs" / "ci.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in body.split("```yaml\n")[1:]]
    out = []
    for block in blocks:
        steps, name = [], None
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            if stripped.startswith("- name: "):
                name = stripped[len("- name: "):]
            elif stripped.startswith("- uses: "):
                name = None
            elif stripped.startswith("run: "):
                value = stripped[len("run: "):]
                indent = len(line) - len(line.lstrip())
                if value == "|":
                    body_lines = []
                    while i + 1 < len(lines) and (not lines[i + 1].strip() or len(
                            lines[i + 1]) - len(lines[i + 1].lstrip()) > indent):
                        i += 1
                        body_lines.append(lines[i].strip())
                    value = "\n".join(body_lines)
                steps.append((name, value))
            i += 1
        out.append(steps)
    return out


WRAPPER = """#!/bin/sh
exec {py} -m memtrail "$@"
"""
BUILD = f"{PY} -c 'b = bytearray(32 << 20); b[::4096] = b\"x\" * len(b[::4096])'"


@pytest.mark.parametrize("block", [0, 1], ids=["one-step", "several-steps"])
def test_github_actions_recipe_runs_as_written(tmp_path, block):
    steps = _github_steps("GitHub Actions")[block]
    names = [n for n, _ in steps]
    assert names[0] == "Install memtrail" and len(steps) >= 2, names
    bindir, work = tmp_path / "bin", tmp_path / "work"
    bindir.mkdir()
    work.mkdir()
    wrapper = bindir / "memtrail"
    wrapper.write_text(WRAPPER.format(py=PY))
    wrapper.chmod(0o755)
    (bindir / "make").write_text(f"#!/bin/sh\nexec {BUILD}\n")  # `make build`, `make test`
    (bindir / "make").chmod(0o755)
    summary = tmp_path / "step-summary.md"
    env = dict(ENV, PATH=f"{bindir}:{os.environ['PATH']}", RUNNER_TEMP=str(tmp_path),
               GITHUB_STEP_SUMMARY=str(summary))
    for name, script in steps[1:]:  # not the install step: memtrail is installed here
        res = subprocess.run(["bash", "-e", "-c", script], cwd=work, env=env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"step {name!r}: {res.stderr}"
    logdir = work / "memtrail-logs"
    assert reader.segments(str(logdir))
    assert last_line(logdir).startswith("Z ")
    html = (work / "memtrail.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "memtrail" in summary.read_text()
    assert not (tmp_path / "memtrail.pid").exists()  # stopped cleanly


def test_an_inherited_ignored_sigint_stays_ignored(tmp_path):
    """Started with SIGINT ignored (nohup-style, a background job of a script), `memtrail run`
    does not take Ctrl-C over: the command inherits the ignore, as it would without memtrail,
    and finishes."""
    def ignore_int():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    proc = subprocess.Popen(memtrail(*run_args(tmp_path, "--", PY, "-c", WAIT_FOR_SIGNAL.replace(
        "deadline = time.monotonic() + 30", "deadline = time.monotonic() + 1"))),
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=ignore_int)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out == "got 0\n" and proc.returncode == 40, err


SHARING_CHILDREN = _sharing_children(2, 'print("ready", flush=True)')


@pytest.mark.root
def test_a_command_in_a_memory_cgroup_of_its_own_gets_the_cgroups_peak(tmp_path,
                                                                      memory_cgroup):
    """Three processes sharing 48 MiB copy-on-write sum to ~170 MiB of RSS; the memory cgroup
    the command moved itself into held only them, and its peak (the kernel's count, each page
    once) is said beside the RSS sum, well under it."""
    procs = memory_cgroup / "cgroup.procs"  # limited to 96 MiB by the fixture: room enough
    script = f"echo $$ > {procs}; exec {PY} -c '{SHARING_CHILDREN}'"
    with _staged_run(tmp_path, ["sh", "-c", script]) as proc:
        assert proc.stdout.readline() == "ready\n"
        logdir = tmp_path / "log"
        # Until a tick has the three in the cgroup, with the command re-identified there.
        wait_for(lambda: sum(1 for line in log_text(logdir).splitlines()
                             if line.startswith("P ") and memory_cgroup.name in line) >= 3,
                 timeout=30, what="the three processes recorded in the cgroup")
    err = proc.err
    tree = json.loads((tmp_path / "run.json").read_text())["command"]["tree"]
    assert tree["cgroup"].endswith("/" + memory_cgroup.name), tree
    assert tree["peak_rss_bytes"] > 140 << 20
    assert 48 << 20 < tree["cgroup_peak_bytes"] < tree["peak_rss_bytes"] * 0.75, tree
    assert f"their memory cgroup {tree['cgroup']} (theirs alone) peaked at" in err, err
    # what that peak was made of: read as the cgroup grew (by a quarter and 16 MiB), not
    # left for the 10 s status period, which this run does not reach
    made = tree["cgroup_makeup"]
    assert 48 << 20 <= made["anon_bytes"] <= tree["cgroup_peak_bytes"], made
    assert "page cache included) (anon " in err, err


def test_a_cgroup_is_the_commands_own_only_when_no_other_process_was_seen_in_it():
    """Its peak is the command's memory only if nothing else was charged to it: another
    process in it or below it, members in two cgroups, or the root cgroup: no such figure.
    A sibling whose name merely begins the same (/ci-job2 beside /ci-job) is not inside."""
    def tree_with(member_cgs, other_cgs):
        tree = run_module.CommandTree(10, None)
        tree.everyone = [Proc(10 + i, 1, cgroup=cg) for i, cg in enumerate(member_cgs)]
        tree.others = set(other_cgs)
        return tree.own_cgroup()

    assert tree_with(["/ci-job", "/ci-job"], ["/ci-job2", "/system.slice/x"]) == "/ci-job"
    assert tree_with(["/ci-job"], ["/ci-job"]) is None
    assert tree_with(["/ci-job"], ["/ci-job/helper"]) is None
    assert tree_with(["/ci-job", "/other"], []) is None
    assert tree_with(["/"], []) is None and tree_with([""], []) is None
