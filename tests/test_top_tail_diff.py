"""`memtrail top --at`, `tail [-f]` and `diff` on scenario logs (tail -f against a live writer)."""

from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest
import scenarios
from conftest import SAMPLER, call_main

from memtrail import diff, tail, top
from memtrail.timeparse import parse_time

T0 = scenarios.T0


# -- top ----------------------------------------------------------------------------------------
def _top(capsys, *args) -> tuple:
    return call_main(capsys, top.main, *args)


def test_top_at_clock_time_before_the_kill(tmp_path, capsys):
    d = scenarios.oom(str(tmp_path))
    rc, out, _ = _top(capsys, d, "--at", "22:00:20")
    assert rc == 0
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert rows[0].split()[0] == "501" and "/opt/jobs/hog.py --size 20G" in rows[0]
    assert "4.7 GiB" in rows[0]
    assert "22:00:20Z" in out.splitlines()[0]


def test_top_relative_times_and_after_the_kill(tmp_path, capsys):
    d = scenarios.oom(str(tmp_path))
    rc, out, _ = _top(capsys, d, "--at", "-5s")  # argparse would read -5s as an option
    assert rc == 0 and "hog.py" not in out and "service.jar" in out
    rc, out, _ = _top(capsys, d, "--at", "+3s", "--by", "program")
    assert rc == 0
    assert "22:00:03Z" in out
    assert any(line.startswith("service.jar") and "x1" in line for line in out.splitlines())


def test_top_by_program_groups_workers(tmp_path, capsys):
    d = scenarios.workers(str(tmp_path))
    rc, out, _ = _top(capsys, d, "--at", "+10s", "--by", "program", "--limit", "1")
    assert rc == 0
    rows = [line for line in out.splitlines() if line.startswith("nova-api")]
    assert len(rows) == 1 and f"x{scenarios.NOVA_WORKERS + 1}" in rows[0]
    assert "postgres" not in out  # --limit 1


def test_top_in_a_gap_says_so(tmp_path, capsys):
    d = scenarios.gap(str(tmp_path))
    rc, out, _ = _top(capsys, d, "--at", "+120s")
    assert rc == 0
    assert "not looking" in out and "sampler restart" in out
    assert "22:00:20Z" in out.splitlines()[0]  # the last sample before the gap


@pytest.mark.parametrize("at,msg", [("21:00", "before the recording starts"),
                                    ("banana", "not a time")])
def test_top_bad_times_exit_2(tmp_path, capsys, at, msg):
    d = scenarios.workers(str(tmp_path))
    rc, _, err = _top(capsys, d, "--at", at)
    assert rc == 2 and msg in err and err.count("\n") == 1


def test_parse_time_forms():
    end = T0 + 7200
    assert parse_time("+90s", T0, end) == T0 + 90
    assert parse_time("-5m", T0, end) == end - 300
    assert parse_time("22:30", T0, end) == T0 + 1800
    assert parse_time("2025-11-20T22:30:00Z", T0, end) == T0 + 1800
    assert parse_time("2025-11-20T23:30:00+01:00", T0, end) == T0 + 1800
    # a recording over midnight: 00:30 is the next day
    assert parse_time("00:30", T0, T0 + 4 * 3600) == T0 + 2.5 * 3600
    with pytest.raises(ValueError):
        parse_time("25:99", T0, end)


# -- tail ---------------------------------------------------------------------------------------
def test_tail_history_plain_output(tmp_path):
    d = scenarios.oom(str(tmp_path))
    out = io.StringIO()
    assert tail.run(d, False, 12, tail.Style(False), out) == 0
    text = out.getvalue()
    lines = text.splitlines()
    assert "\033[" not in text
    kill = [line for line in lines if "OOM killer killed" in line]
    assert len(kill) == 1 and "pid 501" in kill[0] and "/opt/jobs/hog.py" in kill[0]
    assert lines[-1].startswith("22:00:30")
    assert len([line for line in lines if line[:2].isdigit()]) == 12


def test_tail_color_rules(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert tail.use_color("auto", Tty()) is True
    assert tail.use_color("auto", io.StringIO()) is False  # not a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    assert tail.use_color("auto", Tty()) is False
    assert tail.use_color("always", io.StringIO()) is True


class _Lines:
    """Lines of a child's stdout, awaited with a deadline (no blind sleeps)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.q: queue.Queue = queue.Queue()
        self.seen: list = []
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        for line in self.seen:
            if text in line:
                return line
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen; got {self.seen[-10:]}")
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"tail ended before {text!r}; got {self.seen[-10:]}")
            self.seen.append(line)
            if text in line:
                return line


def test_tail_follow_across_rotation_and_compression(tmp_path):
    d = str(tmp_path / "log")
    h = scenarios.Host(d)
    h.spawn(10, ["/usr/bin/python3", "/usr/bin/nova-api"], 100)
    h.spawn(11, ["/usr/bin/python3", "/opt/hog.py"], 50)
    h.start_segment_tick()
    h.tick(2)  # 22:00:00 .. 22:00:02
    env = dict(os.environ, NO_COLOR="")
    proc = subprocess.Popen([sys.executable, "-m", "memtrail", "tail", "-f", "-n", "2", d],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = _Lines(proc)
        lines.wait_for("22:00:02")
        h.set_rss(10, 400)
        h.tick(1)  # 22:00:03, written while tail follows
        line = lines.wait_for("22:00:03")
        assert "+300 MiB" in line and "nova-api" in line
        first = h.path
        h.rotate(compress=True)  # 22:00:04 in a new segment; the old one is gzipped, removed
        assert not os.path.exists(first) and os.path.exists(first + ".gz")
        lines.wait_for("22:00:04")
        h.oom_kill_proc(11)
        h.tick(2)  # 22:00:05 with the kill, 22:00:06
        kill = lines.wait_for("OOM killer killed")
        assert "pid 11" in kill and "/opt/hog.py" in kill
        lines.wait_for("22:00:06")
        h.rotate(compress=False)
        h.tick(1)
        lines.wait_for("22:00:08")
        assert all("\033[" not in line for line in lines.seen)  # a pipe gets no colour
        times = [line[:8] for line in lines.seen if line[:2].isdigit()]
        assert times == sorted(times) and len(times) == len(set(times))  # no tick twice
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
        h.stop()


def test_tail_missing_dir_exit_2(tmp_path, capsys):
    assert tail.main([str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err


# -- diff ---------------------------------------------------------------------------------------
def _run_with_scheduler(directory: str, sched_mib: float, extra: bool) -> str:
    h = scenarios.Host(directory)
    h.spawn(10, ["/usr/bin/python3", "/usr/bin/airflow-scheduler"], sched_mib)
    h.spawn(11, ["postgres: checkpointer"], 40)
    h.spawn(12, ["postgres", "-D", "/db"], 100)
    if extra:
        h.spawn(13, ["/usr/bin/redis-server"], 30)
    else:
        h.spawn(14, ["/usr/bin/memcached"], 20)
    h.start_segment_tick()
    h.tick(5)
    h.stop()
    return directory


def test_diff_per_program(tmp_path, capsys):
    a = _run_with_scheduler(str(tmp_path / "a"), 56, extra=False)
    b = _run_with_scheduler(str(tmp_path / "b"), 122, extra=True)
    assert diff.main(["--json", a, b]) == 0
    d = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in d["programs"]}
    sched = rows["airflow-scheduler"]
    assert sched["a_rss_bytes"] == 56 << 20 and sched["b_rss_bytes"] == 122 << 20
    assert sched["change_bytes"] == 66 << 20
    assert rows["redis-server"]["status"] == "new"
    assert rows["memcached"]["status"] == "vanished"
    assert rows["postgres"]["a_count"] == 2 and rows["postgres"]["change_bytes"] == 0
    assert d["programs"][0]["name"] == "airflow-scheduler"  # largest absolute change first
    assert diff.main([a, b]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if "airflow-scheduler" in x)
    assert "56.0 MiB" in line and "122 MiB" in line and "+66.0 MiB" in line


def test_diff_unusable_side_exit_2(tmp_path, capsys):
    a = scenarios.workers(str(tmp_path / "a"))
    assert diff.main([a, str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


@pytest.mark.live
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="records the live /proc")
def test_tail_follows_the_real_sampler_across_rotations(tmp_path):
    """The real sampler rotating (and gzipping) every few ticks; tail -f misses nothing."""
    from memtrail.model import replay
    from memtrail.timeparse import fmt_time

    logs = tmp_path / "logs"
    logs.mkdir()  # tail -f waits in an existing directory for the first segment
    rec = subprocess.Popen([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(logs),
                            "--interval", "0.2", "--duration", "3", "--rotate-age", "0.5",
                            "--quiet"], stderr=subprocess.PIPE, text=True)
    proc = subprocess.Popen([sys.executable, "-m", "memtrail", "tail", "-f", "-n", "0",
                             str(logs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, NO_COLOR="1"))
    try:
        lines = _Lines(proc)
        assert rec.wait(timeout=60) == 0, rec.stderr.read()
        rep = json.loads(subprocess.run(
            [sys.executable, "-m", "memtrail", "report", "--json", str(logs)],
            capture_output=True, text=True, timeout=60, check=True).stdout)
        assert len(rep["segments"]) > 2  # it did rotate
        end = rep["span"]["end_unix"]
        stamp = fmt_time(end, False) + f".{int(round(end * 1000)) % 1000:03d}"
        lines.wait_for(stamp)
        ticks = [line.split()[0] for line in lines.seen if " used " in line]
        # every tick from the first one tail printed to the end, in order, none skipped or
        # repeated at a rotation
        logged = [fmt_time(t.time, False) + f".{int(round(t.time * 1000)) % 1000:03d}"
                  for t in replay(str(logs))]
        assert ticks and ticks == logged[logged.index(ticks[0]):]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr, rec.stderr):
            stream.close()
        if rec.poll() is None:
            rec.kill()
            rec.wait()
