"""`readahead`: a forked child parses the log while the parent replays it. What the parent
gets must be what it would have parsed itself (items, stats, every view's bytes), also when
the child dies at any moment, and no child may outlive the read.

The children here are real forks and die by real signals; frames are made small so a few
hundred lines cross many of them."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import scenarios
from conftest import wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hostile import ENV, hostile_log
from test_packed import _header, line
from test_pypy import _outputs

from memtrail import model, readahead, reader


def _norm(items) -> list:
    """Items as comparable values: a record by everything a reader of it can see."""
    out = []
    for item in items:
        if type(item) is list:
            out.append(("packed", item))
        else:
            seg = item.segment
            out.append((item.type, item.time, item.fields, item.obj, seg.path, seg.header,
                        seg.time, seg.fields))
    return out


def _plain(paths) -> tuple:
    stats = reader.ReadStats()
    return _norm(reader.read_packed(paths, stats)), vars(stats)


def _ahead(paths) -> tuple:
    stats = reader.ReadStats()
    return _norm(readahead.read_packed(paths, stats)), vars(stats)


@pytest.fixture
def forced(monkeypatch):
    monkeypatch.setenv("MEMTRAIL_READ_AHEAD", "1")
    monkeypatch.setattr(readahead, "CHUNK_LINES", 3)


def _children() -> list:
    """This process's live children, from the kernel (no ps)."""
    pids = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as fh:
                pids += [int(p) for p in fh.read().split()]
        except OSError:
            pass
    return pids


def _write_segments(directory: Path, bodies, gz_mask=()) -> str:
    directory.mkdir(exist_ok=True)
    for i, body in enumerate(bodies):
        name = f"memtrail-20231114T2213{i:02d}Z-{i:03d}.log"
        data = body.encode()
        if i in gz_mask:
            (directory / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return str(directory)


def _big(directory: Path, ticks: int = 400, files: int = 3) -> str:
    bodies = []
    for f in range(files):
        lines = [_header(started=f + 1)]
        for t in range(ticks):
            stamp = f"{1700000000 + f * ticks + t}.000"
            lines.append(f"s {stamp} 4000000 1000 2000")
            lines += [f"p {stamp} {pid} {t + pid} 10" for pid in range(1, 6)]
            if t % 50 == 0:
                lines.append(f'P {stamp} 1 7 1 0 {{"comm":"c{t}"}}')
        bodies.append("\n".join(lines) + "\n")
    return _write_segments(directory, bodies, gz_mask={1})


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.tuples(st.lists(line, max_size=30), st.booleans(), st.booleans()),
                      min_size=1, max_size=3))
def test_the_child_gives_what_the_parent_would_parse(tmp_path_factory, forced, files):
    """Hostile lines of every kind, torn last lines, gzip and plain files, a truncated gzip:
    the same items in the same order, the same Segment for each record, the same stats."""
    directory = tmp_path_factory.mktemp("log")
    bodies, gz = [], set()
    for i, (lines, torn, zipped) in enumerate(files):
        bodies.append("\n".join([_header(started=i), *lines]) + ("" if torn else "\n"))
        if zipped:
            gz.add(i)
    path = _write_segments(directory, bodies, gz)
    if gz:  # cut one gzip short: a truncated file, counted, its lines up to the cut kept
        victim = directory / sorted(os.listdir(directory))[-1]
        data = victim.read_bytes()
        if victim.name.endswith(".gz") and len(data) > 30:
            victim.write_bytes(data[:-9])
    assert _ahead(path) == _plain(path)


def test_a_real_log_crosses_many_frames_and_reads_the_same(tmp_path, forced):
    path = _big(tmp_path / "log")
    items, stats = _ahead(path)
    assert (items, stats) == _plain(path)
    assert stats["files"] == 3 and stats["lines"] == 3 * (1 + 400 * 6 + 8)
    assert sum(kind == "packed" for kind, *_ in items) == 3 * 400


def _header_at(time: str, started: int, s_layout: str) -> str:
    return (f'H {time} memtrail 1 {{"format":1,"host":"h","boot_id":"b","started":{started},'
            f'"fields":{{"p":["pid","rss","shared"],"s":[{s_layout}]}}}}')


S_LAYOUTS = ['"mem_total","mem_free","mem_available"', '"mem_free","mem_total"',
             '"mem_total","mem_free","mem_available","hugepages_total","hugepage_size"']
header = st.builds(_header_at, st.sampled_from(["1700000000.000", "1700000000.500", "nan", "5"]),
                   st.integers(0, 2), st.sampled_from(S_LAYOUTS))
s_line = st.builds(lambda t, vals: f"s {t} {' '.join(vals)}".rstrip(),
                   st.sampled_from(["1700000001.000", "1700000002.000", "1e30"]),
                   st.lists(st.sampled_from(["4000000", "100", "0", "-5", "-", "x", "99999999"]),
                            max_size=6))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.lists(st.one_of(header, s_line, line), max_size=25), min_size=1,
                      max_size=3))
def test_figures_worked_out_ahead_replay_the_same(tmp_path_factory, forced, files):
    """With the model's system reader the child works out the usual `s` lines' figures. Under
    headers the model applies or refuses (an impossible time, the same segment twice), with
    layouts that change and `s` lines of every shape, the replay is the in-process one: each
    tick's figures, tables and the problems counted."""
    directory = tmp_path_factory.mktemp("log")
    bodies = ["\n".join([_header_at("1700000000.000", i, S_LAYOUTS[i % 3]), *lines]) + "\n"
              for i, lines in enumerate(files)]
    path = _write_segments(directory, bodies)
    plain = list(reader.read_packed(path))
    ahead = list(readahead.read_packed(path, None, model.system_reader))
    assert len(ahead) == len(plain)
    for mine, theirs in zip(ahead, plain):
        if mine.__class__ is reader.Figures:
            assert theirs.type == "s" and theirs.time == mine.time
    assert _system_ticks(ahead) == _system_ticks(plain)


def _system_ticks(items) -> tuple:
    run = model.Run()
    ticks = [(tick.time, sorted(vars(tick.system).items()), tick.rss_total,
              sorted((pid, p.rss) for pid, p in tick.procs.items()))
             for tick in model.replay_records(items, run)]
    return ticks, run.problems, run.orphan_records, run.ticks, run.segments


def test_the_usual_s_lines_come_as_figures(tmp_path, forced):
    path = _big(tmp_path / "log", ticks=30, files=2)
    items = list(readahead.read_packed(path, None, model.system_reader))
    figures = [i for i in items if i.__class__ is reader.Figures]
    assert len(figures) == 60 and all(i.fields == [] for i in figures)
    assert figures[0].obj == {"total": 4000000 * 1024, "free": 1000 * 1024,
                              "available": 2000 * 1024}
    assert _system_ticks(items) == _system_ticks(list(reader.read_packed(path)))


@pytest.mark.parametrize("frames", [0, 1, 2, 5, 40, 200, 401, 402, 403, 900])
def test_a_child_that_dies_after_any_frame_changes_nothing(tmp_path, forced, monkeypatch,
                                                          frames):
    """The child exits (as a kill would end it) after `frames` frames, or halfway through
    the next one: the parent reads on from exactly where it stopped."""
    path = _big(tmp_path / "log")
    want = _plain(path)
    send = readahead._send
    sent = [0]

    def dying(out, kind, payload):
        if sent[0] == frames:
            out.write(readahead._FRAME.pack(kind, len(payload)) + payload[:len(payload) // 2])
            out.flush()
            os._exit(9)
        sent[0] += 1
        send(out, kind, payload)

    monkeypatch.setattr(readahead, "_send", dying)
    assert _ahead(path) == want
    assert _children() == []


def test_a_child_killed_by_a_signal_mid_read(tmp_path, forced):
    """SIGKILL from outside (the OOM killer's way) while the child is blocked on a full pipe:
    the parent finishes the read itself, with the same result, and reaps the child."""
    path = _big(tmp_path / "log", ticks=3000)
    want = _plain(path)
    stats = reader.ReadStats()
    items = readahead.read_packed(path, stats)
    got = _norm([next(items)])
    (child,) = _children()
    os.kill(child, signal.SIGKILL)
    got += _norm(items)
    assert (got, vars(stats)) == want
    assert _children() == []


def test_stopping_early_leaves_no_child(tmp_path, forced):
    path = _big(tmp_path / "log", ticks=3000)
    items = readahead.read_packed(path)
    next(items)
    assert len(_children()) == 1
    items.close()
    assert _children() == []


def test_no_child_unless_it_pays(tmp_path, monkeypatch):
    path = _big(tmp_path / "log", ticks=20, files=1)
    segs = reader.segments(path)
    assert not readahead.wanted(segs, {})  # a small log
    assert not readahead.wanted(segs, {"MEMTRAIL_READ_AHEAD": "0"})
    assert readahead.wanted(segs, {"MEMTRAIL_READ_AHEAD": "1"})
    monkeypatch.setattr(readahead, "MIN_BYTES", 1)
    cpus = len(os.sched_getaffinity(0))
    assert readahead.wanted(segs, {}, "cpython") == (cpus > 1)  # one CPU: no core to spare
    assert not readahead.wanted(segs, {}, "pypy")  # its JIT parses quicker than marshal
    assert readahead.wanted(segs, {"MEMTRAIL_READ_AHEAD": "1"}, "pypy")
    assert not readahead.wanted(segs, {"MEMTRAIL_READ_AHEAD": "0"})
    monkeypatch.delattr(os, "fork")  # Windows
    assert not readahead.wanted(segs, {"MEMTRAIL_READ_AHEAD": "1"})
    assert not readahead.wanted(segs, {})


def test_no_fork_means_the_parent_reads(tmp_path, forced, monkeypatch):
    path = _big(tmp_path / "log", ticks=50)

    def refuse():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    assert _ahead(path) == _plain(path)


@pytest.mark.parametrize("make", [scenarios.oom, scenarios.leak, hostile_log])
def test_every_view_writes_the_same_bytes_with_a_child(tmp_path, make):
    """Through the command line, every view: the child neither changes the output nor
    writes any of its own (its copy of the parent's unflushed stdout is never flushed)."""
    log = make(str(tmp_path / "log"))
    want = _outputs(sys.executable, log, tmp_path, {"MEMTRAIL_READ_AHEAD": "0"})
    got = _outputs(sys.executable, log, tmp_path, {"MEMTRAIL_READ_AHEAD": "1"})
    assert want["report"][0] == 0 and want["report"][1]
    for name in want:
        assert got[name] == want[name], name


def _state(pid: int):
    """The kernel's state letter for pid, or None once it is gone (reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0]
    except OSError:
        return None


@pytest.mark.parametrize("how", ["ctrl-c", "reader gone"])
def test_an_interrupted_command_takes_its_child_with_it(tmp_path, how):
    """Ctrl-C reaches the whole process group; `memtrail report | head` closes the pipe. In
    both cases the command exits without a traceback and its child is gone, not a zombie."""
    path = _big(tmp_path / "log", ticks=20000, files=2)
    env = {**ENV, "MEMTRAIL_READ_AHEAD": "1"}
    if how == "ctrl-c":
        args = ["report", path]
    else:  # a reader that takes a little and leaves
        args = ["export", path, "--format", "csv"]
    proc = subprocess.Popen([sys.executable, "-m", "memtrail", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        children = f"/proc/{proc.pid}/task/{proc.pid}/children"
        found: list = []

        def child_running() -> bool:
            try:
                with open(children) as fh:
                    found[:] = [int(p) for p in fh.read().split()]
            except OSError:
                return False
            return bool(found)
        wait_for(child_running, 60, "the read-ahead child to start")
        child = found[0]
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.stdout.readline()
            proc.stdout.close()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"Traceback" not in err, err.decode("utf-8", "replace")
    assert proc.returncode in (0, 1, 130), (proc.returncode, err)
    wait_for(lambda: _state(child) is None, 60, f"child {child} to be gone")


def test_the_child_holds_none_of_the_commands_stdio(tmp_path, forced):
    """The pipe the command writes to ends when the command does: the child's own fds 0-2
    are /dev/null, read from the kernel while it runs."""
    path = _big(tmp_path / "log", ticks=3000)
    items = readahead.read_packed(path)
    next(items)
    (child,) = _children()
    try:
        for fd in (0, 1, 2):
            assert os.readlink(f"/proc/{child}/fd/{fd}") == os.devnull
    finally:
        items.close()


def test_the_deepest_json_a_line_may_hold_crosses_the_pipe(tmp_path, forced):
    """json.loads refuses nesting past the recursion limit (a bad line); anything it takes,
    marshal carries: the item, not a fallback, reaches the parent."""
    depth = 900
    deep = '{"a":' * depth + "1" + "}" * depth
    body = "\n".join([_header(), "s 1700000001.000 4000000 1000 2000",
                      f"E 1700000001.000 warn {deep}", "p 1700000001.000 1 5 5"]) + "\n"
    path = _write_segments(tmp_path / "log", [body])
    items, stats = _ahead(path)
    assert (items, stats) == _plain(path)
    assert [i for i in items if i[0] == "E"] and stats["bad"] == 0


def test_files_the_reader_refuses_are_counted_the_same(tmp_path, forced):
    """A foreign file, a FIFO and an empty gzip named like segments, between good ones: the
    child says what it skipped and why, as the parent would have."""
    path = _big(tmp_path / "log", ticks=40, files=2)
    directory = Path(path)
    (directory / "memtrail-20231114T221250Z-000.log").write_text("not a memtrail log\n")
    os.mkfifo(directory / "memtrail-20231114T221251Z-000.log")
    (directory / "memtrail-20231114T221399Z-000.log.gz").write_bytes(b"")
    items, stats = _ahead(path)
    assert (items, stats) == _plain(path)
    assert len(stats["skipped_files"]) >= 2 and stats["files"] >= 2
