"""The sampler out of file descriptors (issue 14): a reserve for the log and periodic reads,
processes read by path past the held ones, unread processes counted (never taken for exited),
and the right words when a file cannot be opened for want of a descriptor.

The fixture tests make the shortage exactly (an EMFILE from open); the live one makes it for
real: RLIMIT_NOFILE 64 and 2000 real processes.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys

import pytest
from conftest import SAMPLER, log_text, records, wait_for
from test_sampler_unit import Clock, events, make, of

from memtrail import reader
from memtrail import sampler as S
from memtrail.report import analyze, render_text


def emfile_under(monkeypatch, root):
    """open() of anything under `root` fails with EMFILE, as when the table is full."""
    real_open = os.open
    prefix = str(root)

    def fake_open(path, *args, **kw):
        if isinstance(path, str) and path.startswith(prefix):
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, *args, **kw)
    monkeypatch.setattr(S.os, "open", fake_open)


def test_past_the_held_share_processes_are_read_by_path(fakeproc, tmp_path):
    for pid in range(100, 110):
        fakeproc.add(pid, ["worker", str(pid)])
    s = make(fakeproc, tmp_path)
    s.fd_ceiling = 0  # no descriptor may be held: every process by path
    lines = Clock().tick(s, new_segment=True)
    k = json.loads(of(lines, "K")[0].split(" ", 4)[4])
    assert k["by_path"] == 10 and k["fd_limit"] == s.fd_limit
    assert len(of(lines, "P")) == 10
    fakeproc.set_rss(105, 99999)
    lines = Clock().tick(s)
    assert [x.split()[2] for x in of(lines, "p")] == ["105"]  # still followed, by path


def test_unread_processes_are_counted_not_taken_for_exited(fakeproc, tmp_path, monkeypatch):
    for pid in range(100, 104):
        fakeproc.add(pid, ["worker", str(pid)])
    s = make(fakeproc, tmp_path)
    s.fd_ceiling = 0
    clock = Clock()
    clock.tick(s, new_segment=True)
    fakeproc.add(200, ["newcomer"])
    emfile_under(monkeypatch, fakeproc.root)
    lines = clock.tick(s)
    assert events(lines, "unread") == [{"procs": 5, "reason": "EMFILE", "fd_limit": s.fd_limit}]
    assert of(lines, "X") == [] and of(lines, "P") == []  # neither exited nor new
    assert events(clock.tick(s), "unread") == []  # said once while it lasts
    monkeypatch.undo()
    lines = clock.tick(s)
    assert events(lines, "unread") == [{"procs": 0, "reason": "EMFILE", "fd_limit": s.fd_limit}]
    assert [x.split()[2] for x in of(lines, "P")] == ["200"] and of(lines, "X") == []


def test_slabinfo_out_of_descriptors_is_not_needs_root(fakeproc, tmp_path, monkeypatch):
    fakeproc.write_slabinfo({"dentry": 1000})
    s = make(fakeproc, tmp_path)
    clock = Clock()
    emfile_under(monkeypatch, fakeproc.root)
    warns = [e["msg"] for e in events(clock.tick(s, new_segment=True), "warn")]
    assert any("out of file descriptors (EMFILE" in w for w in warns)
    assert not any("needs root" in w for w in warns)
    monkeypatch.undo()
    lines = clock.tick(s, new_segment=True)
    assert of(lines, "b")  # not given up: read once descriptors are back


def test_the_report_says_processes_could_not_be_read(fakeproc, tmp_path, monkeypatch):
    fakeproc.add(100, ["worker"])
    s = make(fakeproc, tmp_path)
    s.fd_ceiling = 0
    clock = Clock()
    text = s.header(clock.t, clock.t, "x")
    text += "\n".join(clock.tick(s, new_segment=True)) + "\n"
    emfile_under(monkeypatch, fakeproc.root)
    text += "\n".join(clock.tick(s)) + "\n"
    monkeypatch.undo()
    text += "\n".join(clock.tick(s)) + "\n"
    path = tmp_path / "memtrail-20250101T000000Z-000.log"
    path.write_text(text)
    rep = analyze([str(path)])
    assert rep["reading"]["unread_processes"] == 1
    assert "1 process(es) at a time could not be read" in render_text(rep)


CHILDREN = r"""
import os, signal, sys
n = int(sys.argv[1])
kids = []
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    kids.append(pid)
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.read()
for pid in kids:
    os.kill(pid, signal.SIGKILL)
for pid in kids:
    os.waitpid(pid, 0)
"""


def _children(n: int) -> subprocess.Popen:
    kids = subprocess.Popen([sys.executable, "-c", CHILDREN, str(n)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert kids.stdout.readline() == "ready\n"
    return kids


@pytest.mark.live
def test_rlimit_nofile_64_with_2000_processes(tmp_path):
    """Before: exit at start-up with EMFILE, keyframes of ~50 of ~2050 processes when they
    appeared later, a warning that slabinfo needs root. Now: every process, read by path past
    the held share, whether it was there at the start or came later."""
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    logdir = tmp_path / "log"
    groups = [_children(1000)]
    sampler = None
    try:
        sampler = subprocess.Popen([sys.executable, "-I", "-S", str(SAMPLER), "--dir",
                                    str(logdir), "--interval", "0.5", "--keyframe", "1",
                                    "--quiet", "--no-mlock"], preexec_fn=limit,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: logdir.is_dir() and "\nK " in log_text(logdir), timeout=60,
                 what="the first keyframe")
        groups.append(_children(1000))  # as many again, after the start

        def late_keyframe():
            ks = [r for r in records(logdir) if r.type == "K"]
            return ks and int(ks[-1].fields[0]) >= 2000
        wait_for(late_keyframe, timeout=60, what="a keyframe with all 2000 processes")
    finally:
        if sampler is not None:
            sampler.send_signal(signal.SIGTERM)
            rc = sampler.wait(60)
            err = sampler.stderr.read()
            sampler.stderr.close()
        for kids in groups:
            kids.stdin.close()
            kids.wait(60)
    assert rc == 0, err
    stats = reader.ReadStats()
    recs = records(logdir, stats)
    assert stats.problems == 0
    first, last = [r for r in recs if r.type == "K"][0], [r for r in recs if r.type == "K"][-1]
    assert int(first.fields[0]) >= 1000 and first.obj["by_path"] >= 1000 - 64
    assert int(last.fields[0]) >= 2000 and last.obj["by_path"] >= 2000 - 64
    assert last.obj["fd_limit"] == 64 and "unread" not in last.obj
    text = log_text(logdir)
    assert "needs root" not in text and " unread " not in text
    if os.geteuid() == 0:
        assert any(r.type == "b" for r in recs)  # slabinfo read within the reserve
