"""The benchmark scripts run end to end (a few processes, a couple of ticks, no apt peers).

Why: bench/run.py is run rarely and by hand, so it rots silently; this proves the crowd
starts and is cleaned up, the tick loops and the sampler are measured, and RESULTS.md renders.
No timing is asserted: only that figures exist and are sane in kind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import cold_reads  # noqa: E402
import logsize  # noqa: E402
import spawn  # noqa: E402

linux = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")


@linux
@pytest.mark.live
def test_crowd_starts_and_is_gone_after_stop():
    crowd = spawn.start(3)
    pgid = crowd.proc.pid
    members = [n for n in os.listdir("/proc") if n.isdigit() and _pgid(n) == pgid]
    assert len(members) >= 4  # the parent and its 3 children
    crowd.stop()
    assert not [n for n in os.listdir("/proc") if n.isdigit() and _pgid(n) == pgid]


@linux
@pytest.mark.live
def test_cold_reads_reads_every_child_and_lets_the_crowd_go():
    figures = cold_reads.measure(5, passes=2, gap_s=0.01)
    assert figures["processes"] == 5 and figures["passes"] == 2
    assert all(isinstance(figures[key], float) for key in (
        "hot_ms_per_pass", "spaced_ms_per_pass_mean", "spaced_over_hot"))  # figures, in kind
    assert not spawn._live  # stopped, and nothing of it left to the atexit hook


@linux
@pytest.mark.live
def test_churn_sections_times_the_samplers_methods_over_a_churning_crowd(tmp_path):
    """In a process of its own: it rewraps the sampler's methods, which must not reach the
    sampler this test session imported."""
    if spawn.compile_c("spawner", tmp_path / "bin") is None:
        pytest.skip("no C compiler: no churning crowd")
    out = subprocess.run([sys.executable, str(BENCH / "churn_sections.py"), "5", "3"],
                         capture_output=True, text=True, timeout=120, check=True)
    figures = json.loads(out.stdout)
    assert figures["processes"] == 5 and figures["ticks"] == 3 and figures["churn"]
    assert figures["sections"]["Sampler.tick_sections"]["calls_per_tick"] == 1.0
    assert figures["sections"]["Sampler.scan_processes"]["calls_per_tick"] == 1.0


@linux
@pytest.mark.live
def test_c_held_floor_reads_a_process_started_between_ticks_and_lets_go_of_it(tmp_path):
    """The held floor is the least one statm read per process a tick costs; it is only that if
    it reads what the sampler reads: newcomers (it lists /proc again when the last pid moves)
    and not the dead (their descriptor is closed on ESRCH)."""
    exe = spawn.compile_c("floor", tmp_path / "bin")
    if exe is None:
        pytest.skip("no C compiler")
    status = tmp_path / "status"
    floor = subprocess.Popen([str(exe), "0.05", str(status), "held"])
    child = None
    try:
        wait_for(lambda: _ticks(status) >= 2, 60, "2 ticks")
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                 stdin=subprocess.PIPE)
        target = f"/proc/{child.pid}/statm"
        wait_for(lambda: target in _links(floor.pid), 60, "the floor to open the newcomer's statm")
        child.stdin.close()
        child.wait(timeout=60)
        wait_for(lambda: target not in _links(floor.pid), 60,
                 "the floor to close the dead's statm")
    finally:
        if child is not None and child.poll() is None:
            child.kill()
        floor.kill()
        floor.wait()


@linux
@pytest.mark.live
def test_c_named_floor_names_a_newcomer_twice_as_the_sampler_does(tmp_path):
    """The named floor stands for the least a recorder that says who each newcomer is pays:
    it is that only if it opens what the sampler opens for a process started between two
    ticks (stat, cmdline, cgroup when first seen, and once more a tick later), and no more."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (.ci/run installs it)")
    exe = spawn.compile_c("floor", tmp_path / "bin")
    if exe is None:
        pytest.skip("no C compiler")
    status, trace = tmp_path / "status", tmp_path / "trace"
    tracer = subprocess.Popen([strace, "-qq", "-e", "trace=openat", "-o", str(trace),
                               str(exe), "0.05", str(status), "named"])
    child = None
    try:
        wait_for(lambda: _ticks(status) >= 2, 60, "2 ticks")
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                 stdin=subprocess.PIPE)
        opened = lambda f: trace.read_text().count(f'"/proc/{child.pid}/{f}"')  # noqa: E731
        wait_for(lambda: opened("cmdline") >= 2, 60, "the second look at the newcomer")
        ticks = _ticks(status)
        wait_for(lambda: _ticks(status) >= ticks + 3, 60, "3 more ticks")
        assert opened("cmdline") == 2 and opened("cgroup") == 2
        # Its names, and before them the probe by number asking whether the pid is a thread's
        # (none when other forks on the host made the floor list /proc instead)
        assert opened("stat") in (2, 3)
        assert opened("statm") == 1  # held
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        # The floor itself: killing strace would only detach it, and it would go on ticking
        for pid in _children(tracer.pid):
            os.kill(pid, signal.SIGKILL)
        tracer.kill()
        tracer.wait()


def _children(pid: int) -> list:
    """PID's children, as the kernel lists them (strace runs in one thread)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


def _links(pid: int) -> set:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return out


def _ticks(status: Path) -> int:
    try:
        return int(status.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _pgid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None


# The logs below tick once a second of their own timestamps, from FIRST_TS to FIRST_TS + TICKS:
# logsize divides its rates by that span of the log, never by a clock
FIRST_TS, TICKS = 100, 10
LOG_SPAN = float(TICKS)


def _write_log(directory: Path, head: list, each_tick) -> list:
    """A one-segment log: a header and a keyframe at FIRST_TS, HEAD, then TICKS ticks, each
    an `s` line followed by each_tick(t, its timestamp)'s lines. Returns its lines."""
    lines = [f'H {FIRST_TS}.000 memtrail 1 {{"format":1,"settings":{{"keyframe_s":600}}}}',
             f"s {FIRST_TS}.000 1 2 3", f"K {FIRST_TS}.000 2 0 {{}}", *head]
    for t in range(1, TICKS + 1):
        ts = f"{FIRST_TS + t}.000"
        lines += [f"s {ts} 1 2 3", *each_tick(t, ts)]
    (directory / "memtrail-20261120T000000Z-000.log").write_text("\n".join(lines) + "\n")
    return lines


def test_logsize_model_separates_ticks_keyframes_and_detail(tmp_path):
    _write_log(tmp_path, ['P 100.000 7 1 1 0 {"cmd":[]}', "p 100.000 7 10 5"],
               lambda t, ts: [f"d {ts} 7 1 2 3 4 5"] if t == 5 else [])
    r = logsize.analyze(tmp_path, tick_s=1.0)
    assert r is not None
    assert r.ticks == 10
    assert r.tick_bytes == len("s 101.000 1 2 3\n")
    assert r.keyframe_s == 600
    assert r.time_bytes_per_s == len("d 105.000 7 1 2 3 4 5\n") / LOG_SPAN
    assert r.raw_per_day > r.tick_bytes * 86400
    assert 0 < r.gz_per_day < r.raw_per_day * 2


def test_logsize_counts_the_first_pss_round_once_not_as_a_rate(tmp_path):
    """The first round writes every member's D line over a few ticks; later rounds only the
    ones that moved. Modelled as a rate, that one round was most of a day's log."""
    def each_tick(t: int, ts: str) -> list:
        lines = []
        if t <= 3:  # the first round, spread over three ticks by its budget
            lines += [f"D {ts} {pid} 1 2 3 4 5 6" for pid in range(100)]
        if t == 3:
            lines.append(f'E {ts} pss {{"programs":1,"planned":300,"read":300}}')
        if t == 8:  # a later change
            lines.append(f"D {ts} 7 9 2 3 4 5 6")
        return lines

    _write_log(tmp_path, [], each_tick)
    r = logsize.analyze(tmp_path, tick_s=1.0)
    assert r is not None
    assert r.seconds == LOG_SPAN
    assert r.time_bytes_per_s == len("D 108.000 7 9 2 3 4 5 6\n") / LOG_SPAN


def test_logsize_counts_a_newcomers_first_pss_line_with_its_arrival(tmp_path):
    """After the first round, a process's first D line comes with its arrival (a churning
    crowd's newcomers, one a tick here): it scales with the ticks, as its P line does; a
    known process's later D line with the clock."""
    def each_tick(t: int, ts: str) -> list:
        lines = [f'P {ts} {200 + t} 1 1 0 {{"cmd":[]}}']
        if t % 2 == 0:  # a status tick: the newcomers since the last one, and pid 7 again
            lines += [f"D {ts} {pid} 1 2 3 4 5 6" for pid in (200 + t - 1, 200 + t)]
            lines.append(f"D {ts} 7 {t} 2 3 4 5 6")
        return lines

    lines = _write_log(tmp_path, ["D 100.000 7 1 2 3 4 5 6",
                                  'E 100.000 pss {"programs":1,"planned":1,"read":1}'],
                       each_tick)
    r = logsize.analyze(tmp_path, tick_s=1.0)
    assert r is not None and r.ticks == 10
    per_tick = [ln for ln in lines[5:] if ln[0] in "sP" or (ln[0] == "D" and " 7 " not in ln)]
    assert r.tick_bytes == sum(len(ln) + 1 for ln in per_tick) / 10
    again = [ln for ln in lines[5:] if ln.startswith("D ") and ln.split()[2] == "7"]
    assert r.time_bytes_per_s == sum(len(ln) + 1 for ln in again) / LOG_SPAN


@linux
@pytest.mark.live
@pytest.mark.slow
def test_run_py_smoke_mode_writes_json_and_markdown(tmp_path):
    out = tmp_path / "out"
    md = tmp_path / "R.md"
    res = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--smoke", "--no-install",
         "--out", str(out), "--results", str(md)],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    result = json.loads(next(out.glob("results-smoke-*.json")).read_text())
    rows = {(r["name"], r["scenario"]): r for r in result["rows"]}
    floor = rows[("python floor", "5 idle")]
    assert floor["error"] is None
    assert floor["ticks"] >= 2 and floor["median_ms"] > 0
    assert floor["vm_rss_kib"] > 0
    if (ROOT / "src" / "memtrail" / "sampler.py").exists():
        mt = rows[("memtrail", "5 idle")]
        assert mt["error"] is None, mt["error"]
        assert mt["median_ms"] > 0
        assert mt["logsize"]["ticks"] >= 2
    if shutil.which("gcc") or shutil.which("cc"):  # the C floors, held descriptors included
        for name, scenario in (("C floor", "5 idle"), ("C floor, fds held", "5 idle"),
                               ("C floor, named", "5 churn")):
            row = rows[(name, scenario)]
            assert row["error"] is None, row["error"]
            assert row["ticks"] >= 2 and row["median_ms"] > 0
        assert ("C floor, named", "5 idle") not in rows  # without newcomers: the held floor
    text = md.read_text()
    assert "## CPU per tick" in text and "python floor" in text
