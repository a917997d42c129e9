"""The sampler over a fixture /proc whose files say something unexpected between ticks.

A kernel (or a FUSE /proc such as lxcfs in a container) may write a file the sampler does not
expect: a value that is not a number, a line missing, a file empty or cut short. The sampler
must go on ticking: a value it cannot read is unknown, a process whose statm does not parse
keeps its last figures, and the log says so once. A mutation fuzzer of this kind found five
ways for one such file to end the sampler (statm, meminfo, vmstat, PSI and status values).
"""

from __future__ import annotations

import json
import os
import random

import pytest
from conftest import log_text
from fakeproc import FakeProc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sampler_unit import Clock, events, make, of

from memtrail import reader, report
from memtrail import sampler as S

ODD = ["", "\n", "-1", "99999999999999999999999", "nan", "x", "\x00", "1 2", " ", "0",
       "18446744073709551615", "\u0663", "1e9", "kB", ":"]


def _mutate(path, rnd: random.Random) -> None:
    data = path.read_text(errors="surrogateescape")
    r = rnd.random()
    if r < 0.15:
        data = ""
    elif r < 0.3:
        data = data[: rnd.randrange(len(data) + 1)]
    elif r < 0.5:
        lines = data.splitlines(True)
        if lines:
            del lines[rnd.randrange(len(lines))]
        data = "".join(lines)
    else:
        tokens = data.split(" ")
        tokens[rnd.randrange(len(tokens))] = rnd.choice(ODD)
        data = " ".join(tokens)
    path.write_text(data, errors="surrogateescape")


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2 ** 32), st.lists(st.integers(1, 3), min_size=1, max_size=6))
def test_the_sampler_ticks_on_over_unexpected_proc_files(tmp_path_factory, seed, bursts):
    rnd = random.Random(seed)
    base = tmp_path_factory.mktemp("fuzz")
    # older kernels' shapes too: smaps summed before 4.14, no Pss_Anon before 5.7, no PSI
    fakeproc = FakeProc(base / "proc", kernel=rnd.choice([(3, 10), (4, 19), (6, 6)]))
    for pid in range(100, 108):
        fakeproc.add(pid, [f"/usr/bin/app{pid % 3}"], rss_kib=rnd.choice([1024, 20480, 200000]))
    s = make(fakeproc, base, "--status-every", "1", "--pss-every", "2", "--keyframe", "3s")
    clock = Clock()
    assert of(clock.tick(s, new_segment=True), "s")
    files = sorted(p for p in fakeproc.root.rglob("*") if p.is_file())
    for burst in bursts:
        for _ in range(burst):
            _mutate(rnd.choice(files), rnd)
        assert len(of(clock.tick(s), "s")) == 1  # a tick, whatever the files said
    _release(s)


def _release(s) -> None:
    """The descriptors one in-process sampler holds (the process's end closes them in real
    use): 150 examples would otherwise hold thousands, past a default limit of 1024."""
    fds = [st.fd for st in s.procs.values()]
    fds += [getattr(s.sys, name, -1) for name in ("meminfo", "vmstat", "psi")]
    fds += [s.writer.fd, getattr(s.writer, "dfd", -1)]
    for fd in fds:
        if isinstance(fd, int) and fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def test_a_statm_that_does_not_parse_keeps_the_last_figures_and_is_said_once(fakeproc,
                                                                             tmp_path):
    fakeproc.add(100, ["/usr/bin/app"], rss_kib=20480)
    fakeproc.add(101, ["/usr/bin/other"], rss_kib=20480)
    s = make(fakeproc, tmp_path)
    clock = Clock()
    assert len(of(clock.tick(s, new_segment=True), "p")) == 2
    for pid in (100, 101):
        (fakeproc.root / str(pid) / "statm").write_text("x y z 1 0 10 0\n")
    lines = clock.tick(s)
    warns = [e for e in events(lines, "warn") if "statm did not parse" in e["msg"]]
    assert len(warns) == 1 and of(lines, "p") == [] and of(lines, "X") == []
    fakeproc.add(102, ["/usr/bin/late"], rss_kib=4096)
    (fakeproc.root / "102" / "statm").write_text("nan\n")
    lines = clock.tick(s, seconds=3)
    assert events(lines, "warn") == [] and of(lines, "P") == []  # not said twice; 102 waits
    fakeproc.set_rss(100, 40960)
    fakeproc.set_rss(102, 4096)
    lines = clock.tick(s)
    assert sorted(line.split()[2] for line in of(lines, "p")) == ["100", "102"]


def _flaky_scan(monkeypatch, fails) -> list:
    """Make the sampler's process scan raise at the calls numbered in `fails` (1-based): a bug
    of its own, injected where a real one would surface."""
    real = S.Sampler.scan_processes
    calls = []

    def scan(self, *args, **kwargs):
        calls.append(1)
        if len(calls) in fails:
            raise RuntimeError(f"injected at scan {len(calls)}")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(S.Sampler, "scan_processes", scan)
    return calls


def test_a_tick_that_raises_is_said_and_the_recording_goes_on(fakeproc, tmp_path, monkeypatch):
    """The failed tick is lost, an `error` event says why, and a new segment restates every
    identity; the report counts it. Before, the exception ended the sampler."""
    fakeproc.add(100, ["/usr/bin/app"], rss_kib=20480)
    s = make(fakeproc, tmp_path, "--interval", "0.05", "--duration", "2")
    calls = _flaky_scan(monkeypatch, {3})
    assert s.run() == 0
    assert len(calls) >= 4  # at least one tick after the failure (a stop takes a last one)
    logdir = tmp_path / "log"
    text = log_text(logdir)
    [error] = [line for line in text.splitlines() if line.startswith("E ") and " error " in line]
    data = json.loads(error[error.index("{"):])
    assert data["error"] == "RuntimeError: injected at scan 3" and data["in_a_row"] == 1
    assert data["where"].startswith("scan:")
    segs = reader.segments(str(logdir))
    assert len(segs) == 2  # closed at the failure; the next one restates the process
    with open(segs[1]) as fh:
        second = fh.read()
    assert "\nP " in second and " error " in second and "\nZ " in second
    rep = report.analyze([str(logdir)])
    assert rep["span"]["tick_errors"] == 1
    assert "1 tick(s) failed in the sampler and are missing from the log" in \
        report.render_text(rep)


def test_ticks_failing_in_a_row_end_the_sampler_with_the_error(fakeproc, tmp_path,
                                                                monkeypatch):
    """A bug that fails every tick is not hidden: after TICK_FAILURES_MAX in a row the
    sampler ends with the exception (under systemd the unit is restarted)."""
    fakeproc.add(100, ["/usr/bin/app"], rss_kib=20480)
    s = make(fakeproc, tmp_path, "--interval", "0.01", "--duration", "5")
    calls = _flaky_scan(monkeypatch, set(range(3, 100)))
    with pytest.raises(RuntimeError, match="injected"):
        s.run()
    assert len(calls) == 2 + S.TICK_FAILURES_MAX
