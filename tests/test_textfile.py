"""The live textfile writer (`export --format openmetrics --follow`): what node_exporter's
textfile collector asks of the file (Prometheus text format, one HELP/TYPE per family, no
timestamps, written whole under a name it ignores), bounded label sets, counts "since the
recording began" that survive a restart of the writer and reset with a new sampler run,
rotation followed; and the command itself against a real sampler."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, wait_for
from scenarios import GiB, Host

from memtrail import textfile

APP = "/system.slice/app.service"
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"(,|$)')


def parse(text: str) -> dict:
    """Strict Prometheus text format (what expfmt.TextParser accepts, and stricter): returns
    {family: {"type", "help", "samples": [(labels dict, value)]}}."""
    fams: dict = {}
    current = None
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in fams, f"{name}: a second HELP (family split)"
            fams[name] = {"help": line.split(" ", 3)[3], "type": None, "samples": []}
            current = name
        elif line.startswith("# TYPE "):
            _, _, name, mtype = line.split(" ")
            assert name == current and fams[name]["type"] is None
            assert mtype in ("gauge", "counter")
            fams[name]["type"] = mtype
        else:
            assert not line.startswith("#"), f"unexpected comment {line!r} (# EOF, # UNIT?)"
            m = SAMPLE.match(line)
            assert m, f"not a sample (or it has a timestamp): {line!r}"
            name, _, body, value = m.groups()
            assert name == current, f"{name} outside its family"
            if fams[name]["type"] == "counter":
                assert name.endswith("_total")
            labels = {}
            pos = 0
            while body and pos < len(body):
                lm = LABEL.match(body, pos)
                assert lm, f"bad labels in {line!r}"
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
            float(value)
            key = tuple(sorted(labels.items()))
            assert key not in [tuple(sorted(s[0].items())) for s in fams[name]["samples"]]
            fams[name]["samples"].append((labels, float(value)))
    return fams


def value(fams: dict, name: str, **labels: str):
    for lab, v in fams.get(name, {"samples": []})["samples"]:
        if lab == labels:
            return v
    return None


def _host(directory: Path, **kw) -> Host:
    h = Host(str(directory), mem_total=8 * GiB, **kw)
    h.spawn(100, ["/usr/bin/python3", "/usr/bin/nova-api"], 300, comm="nova-api")
    h.spawn(101, ["/usr/bin/python3", "/usr/bin/nova-api"], 250, comm="nova-api")
    h.spawn(102, ["/usr/sbin/mysqld"], 500, comm="mysqld")
    for i in range(12):
        h.spawn(200 + i, [f"/usr/bin/tool-{i}"], 5 + i, comm=f"tool-{i}")
    h.add_cgroup(1, "/system.slice/nova-api.service", 550)
    h.start_segment_tick()
    return h


def _render(live: textfile.Live) -> dict:
    live.poll()
    return parse(live.state.render(live.state.tick.time + 2.0))


def test_file_is_prometheus_text_with_bounded_labels(tmp_path):
    h = _host(tmp_path / "log")
    h.spawn(300, ["/usr/bin/python3", "/opt/we\"ird\\job\nname.py"], 900, comm="python3")
    h.tick(3, psi_full_us=200000)
    h.oom_kill_proc(300)
    h.tick(2)
    live = textfile.Live(str(tmp_path / "log"), textfile.LiveState(programs=3), idle_flush=0)
    fams = _render(live)
    assert value(fams, "memtrail_oom_kills_total", program=r'we\"ird\\job\\nname.py',
                 unit="/system.slice/app.service") == 1
    assert value(fams, "memtrail_memory_pressure_full_seconds_total") == pytest.approx(0.6)
    assert fams["memtrail_sampler_gaps_total"]["type"] == "counter"
    progs = {lab["program"]: v for lab, v in fams["memtrail_program_rss_bytes"]["samples"]}
    assert len(progs) == 4 and "other" in progs  # top 3 + other
    assert progs["nova-api"] == 550 * 1024 * 1024
    assert value(fams, "memtrail_program_processes", program="nova-api") == 2
    assert sum(progs.values()) == sum(
        v for _, v in fams["memtrail_program_rss_bytes"]["samples"])
    assert value(fams, "memtrail_unit_memory_bytes",
                 unit="/system.slice/nova-api.service") == 550 * 1024 * 1024
    assert "memtrail_process_rss_bytes" not in fams  # no pid labels unless asked
    assert value(fams, "memtrail_last_tick_age_seconds") == 2.0
    tool = shutil.which("promtool")
    if tool:
        res = subprocess.run([tool, "check", "metrics"], input=live.state.render(0),
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and res.stdout + res.stderr == "", res.stdout + res.stderr


def test_processes_only_on_request(tmp_path):
    h = _host(tmp_path / "log")
    h.tick(1)
    live = textfile.Live(str(tmp_path / "log"), textfile.LiveState(processes=2), idle_flush=0)
    fams = _render(live)
    rows = fams["memtrail_process_rss_bytes"]["samples"]
    assert [(lab["pid"], lab["program"]) for lab, _ in rows] == [("102", "mysqld"),
                                                                ("100", "nova-api")]


def test_follows_rotation_and_counts_since_the_recording_began(tmp_path):
    log = tmp_path / "log"
    h = _host(log)
    h.spawn(300, ["/usr/bin/java", "-jar", "/opt/es.jar"], 900, comm="java")
    h.tick(2)
    h.oom_kill_proc(300)
    h.tick(1)
    h.rotate(compress=True)
    live = textfile.Live(str(log), textfile.LiveState(), idle_flush=0)
    fams = _render(live)
    assert value(fams, "memtrail_oom_kills_total", program="es.jar", unit=APP) == 1
    before = value(fams, "memtrail_last_tick_timestamp_seconds")
    # More ticks, a rotation with compression, another kill: followed.
    h.spawn(301, ["/usr/bin/java", "-jar", "/opt/es.jar"], 900, comm="java")
    h.tick(2)
    h.rotate(compress=True)
    h.oom_kill_proc(301)
    h.tick(2)
    fams = _render(live)
    assert value(fams, "memtrail_oom_kills_total", program="es.jar", unit=APP) == 2
    assert value(fams, "memtrail_last_tick_timestamp_seconds") == pytest.approx(h.t - 1.0)
    assert value(fams, "memtrail_last_tick_timestamp_seconds") > before
    # A writer started now (a restart of the unit) counts from the same beginning.
    again = _render(textfile.Live(str(log), textfile.LiveState(), idle_flush=0))
    assert value(again, "memtrail_oom_kills_total", program="es.jar", unit=APP) == 2
    # A new sampler run is a new recording: counters start again.
    h.restart()
    h.tick(2)
    fams = _render(live)
    assert value(fams, "memtrail_oom_kills_total", program="es.jar", unit=APP) is None
    assert value(fams, "memtrail_recording_start_timestamp_seconds") == h.started
    fresh = _render(textfile.Live(str(log), textfile.LiveState(), idle_flush=0))
    assert value(fresh, "memtrail_sampler_gaps_total") == 0
    assert value(fresh, "memtrail_recording_start_timestamp_seconds") == h.started


def test_written_whole_under_a_name_the_collector_ignores(tmp_path, monkeypatch):
    target = tmp_path / "memtrail.prom"
    target.write_text("old\n")
    names = []
    real_replace = os.replace

    def spy(src, dst):
        names.append((os.path.basename(src), os.stat(src).st_size))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    textfile.write_atomic(str(target), "memtrail_x 1\n")
    assert target.read_text() == "memtrail_x 1\n"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    (tmp_name, size), = names
    assert not tmp_name.endswith(".prom") and size == len("memtrail_x 1\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memtrail.prom"]


@pytest.mark.parametrize("args, msg", [
    (["--format", "csv", "--follow", "-o", "x.prom"], "needs --format openmetrics"),
    (["--format", "openmetrics", "--follow"], "needs -o DIR/NAME.prom"),
    (["--format", "openmetrics", "--follow", "-o", "x.txt"], "needs -o DIR/NAME.prom"),
    (["--format", "openmetrics", "--follow", "-o", "x.prom", "--every", "soon"], "--every"),
])
def test_bad_follow_arguments_are_one_line(tmp_path, args, msg):
    (tmp_path / "log").mkdir()
    res = subprocess.run([sys.executable, "-m", "memtrail", "export", str(tmp_path / "log"),
                          *args], env=ENV, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and msg in res.stderr and len(res.stderr.splitlines()) == 1


@pytest.mark.live
def test_follow_a_real_sampler_across_a_new_segment(tmp_path, sampler_factory):
    logdir, out = tmp_path / "log", tmp_path / "textfile" / "memtrail.prom"
    out.parent.mkdir()
    s = sampler_factory(logdir, "--interval", "0.2")
    s.wait_ticks(2)
    writer = subprocess.Popen([sys.executable, "-m", "memtrail", "export", str(logdir),
                               "--format", "openmetrics", "--follow", "-o", str(out),
                               "--every", "200ms"], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        def last_tick():
            if not out.exists():
                return None
            return value(parse(out.read_text()), "memtrail_last_tick_timestamp_seconds")

        first = wait_for(last_tick, timeout=30, what="the textfile")
        os.kill(s.pid, signal.SIGHUP)  # a new segment
        wait_for(lambda: len(list(logdir.glob("memtrail-*"))) >= 2, what="a second segment")
        segments_then = len(list(logdir.glob("memtrail-*")))
        wait_for(lambda: (last_tick() or 0) > first + 1.0, timeout=30,
                 what="ticks of the new segment in the textfile")
        assert segments_then >= 2
        fams = parse(out.read_text())
        assert value(fams, "memtrail_memory_total_bytes") > 0
        assert [p.name for p in out.parent.iterdir()] == ["memtrail.prom"]
    finally:
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(30) == 0, writer.stderr.read()
    assert s.stop() == 0


def test_a_process_that_execs_is_labelled_with_its_new_program(tmp_path):
    log = tmp_path / "log"
    h = _host(log)
    h.spawn(300, ["/bin/sh", "/wait-for-db.sh"], 60)  # among the 4 largest
    h.tick(2)
    live = textfile.Live(str(log), textfile.LiveState(processes=4), idle_flush=0)
    fams = _render(live)
    assert value(fams, "memtrail_process_rss_bytes", pid="300", program="wait-for-db.sh")
    h.exec_(300, ["/usr/lib/postgresql/16/bin/postgres", "-D", "/data"], 800)
    h.tick(2)
    fams = _render(live)
    rows = {lab["pid"]: lab["program"] for lab, _ in fams["memtrail_process_rss_bytes"]["samples"]}
    assert rows["300"] == "postgres"
    progs = {lab["program"] for lab, _ in fams["memtrail_program_rss_bytes"]["samples"]}
    assert "postgres" in progs and "wait-for-db.sh" not in progs
