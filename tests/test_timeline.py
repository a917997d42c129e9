"""The console's logic without a terminal: the index, frames at any tick, keys, the layout."""

from __future__ import annotations

import gzip
import os

import scenarios

from memtrail import reader, safetext, timeline, top, view
from memtrail.model import replay
from memtrail.units import fmt_bytes


def _open(d: str):
    tl, player, feed = timeline.open_recording(d)
    return tl, player, feed, view.Console(d, tl, player, feed)


def test_index_has_every_tick_and_the_marks(tmp_path):
    d = scenarios.rotated(str(tmp_path / "r"))  # three segments, two gzipped
    tl, _, _, _ = _open(d)
    assert list(tl.times) == [t.time for t in replay(d)]
    d = scenarios.oom(str(tmp_path / "o"))
    tl, _, _, _ = _open(d)
    kinds = [m.kind for m in tl.marks]
    assert kinds.count("oom_kill") == 1 and "oom_counter" not in kinds  # one kill, one mark
    assert tl.oom_kills_until(tl.times[-1]) == 1 and tl.oom_kills_until(tl.times[0]) == 0


def test_gaps_are_marks(tmp_path):
    d = scenarios.gap(str(tmp_path))
    tl, _, _, _ = _open(d)
    gaps = [m for m in tl.marks if m.kind == "gap"]
    assert len(gaps) == 1 and "sampler restart" in gaps[0].text


def test_frames_by_seeking_equal_a_replay_from_the_start(tmp_path):
    d = scenarios.leak(str(tmp_path))  # 720 ticks, keyframes every 300 s (30 ticks)
    tl, player, _, _ = _open(d)
    truth = {}
    prev = None
    for i, tick in enumerate(replay(d)):
        if i in (5, 100, 101, 350, 719):
            truth[i] = (tick.time, sorted((p.pid, p.rss) for p in tick.procs.values()),
                        {p.pid: p.rss - old for p, old in tick.changes})
        prev = tick.time
    assert prev == tl.times[-1]
    for i in (350, 101, 100, 5, 719):  # out of order: seeks, steps back, steps forward
        f = player.frame(i)
        t, procs, changes = truth[i]
        assert f.time == t
        assert sorted((r.pid, r.rss) for r in f.rows if not r.exited) == procs
        assert {r.pid: r.change for r in f.rows if r.change} == changes
    seeks = player.seeks
    for i in range(99, 90, -1):  # stepping back from a seek is served by what it kept
        assert player.frame(i).time == tl.times[i]
    assert player.seeks == seeks


def test_kill_frame_shows_the_victim_marked(tmp_path):
    d = scenarios.oom(str(tmp_path))
    tl, player, _, c = _open(d)
    i = tl.find_mark(len(tl) - 1, ("oom_kill",), False)
    f = player.frame(i)
    victims = [r for r in f.rows if r.victim]
    assert [v.pid for v in victims] == [501] and victims[0].exited
    assert "hog.py --size 20G" in victims[0].command
    c.key("O")
    screen = view.text_of(c.render(80, 24))
    assert "KILLED" in screen and "HISTORY" in screen


def test_keys_move_the_position(tmp_path):
    d = scenarios.oom(str(tmp_path))  # 31 ticks, 1 s apart
    tl, _, _, c = _open(d)
    n = len(tl)
    assert c.index == n - 1 and c.cursor is None
    c.key("KEY_LEFT")
    assert c.index == n - 2
    c.key("[")
    assert c.index == 0
    c.key("]")
    assert c.index == n - 1 and c.cursor is not None
    c.key("KEY_RIGHT")
    assert c.cursor is None  # past the newest tick: live again
    c.key("p")
    assert tl.used[c.index] == max(tl.used)
    c.key("L")
    assert c.cursor is None
    for ch in "g22:00:05\n":
        c.key(ch)
    assert tl.times[c.index] == scenarios.T0 + 5
    c.key("g")
    for ch in "banana\n":
        c.key(ch)
    assert "not a time" in c.message and tl.times[c.index] == scenarios.T0 + 5


def test_filter_sort_group(tmp_path):
    d = scenarios.workers(str(tmp_path))
    _, _, _, c = _open(d)
    for ch in "/postgres\n":
        c.key(ch)
    screen = view.text_of(c.render(100, 30))
    assert "filter 'postgres' (2 of" in screen and "nova-api" not in screen.split("|")[0]
    c.key("/")
    for _ in range(8):
        c.key("KEY_BACKSPACE")
    c.key("\n")
    c.key("t")
    screen = view.text_of(c.render(100, 30))
    assert f"x{scenarios.NOVA_WORKERS + 1}" in screen
    c.key("s")
    assert c.sort == "growth"


def test_layout_fits_80x24_and_smaller(tmp_path):
    d = scenarios.oom(str(tmp_path))
    _, _, _, c = _open(d)
    for w, h in ((80, 24), (40, 10), (200, 60)):
        lines = c.render(w, h)
        assert len(lines) == h
        assert all(sum(len(t) for t, _ in line) <= w for line in lines)
    c.key("?")
    assert "a tick back" in view.text_of(c.render(80, 24))
    c.key("x")
    assert c.help is False


def test_sparkline_puts_the_cursor_on_the_peak(tmp_path):
    d = scenarios.oom(str(tmp_path))
    tl, _, _, _ = _open(d)
    line, cell = tl.sparkline(20, tl.peak())
    assert len(line) == 20 and line[cell] == max(line)
    line, _ = tl.sparkline(20, 0, ascii_only=True)
    assert line.isascii()


def test_stale_and_stopped(tmp_path):
    d = scenarios.oom(str(tmp_path))  # ends with Z: the sampler stopped
    _, _, _, c = _open(d)
    assert "STALE: stopped (SIGTERM)" in view.text_of(c.render(80, 24))


def test_display_command_trims_rewritten_titles():
    nginx = ["nginx: worker process"] + [""] * 20
    assert timeline.display_command(nginx, "nginx") == "nginx: worker process"
    pg = ["postgres: checkpointer" + " " * 60]
    assert timeline.display_command(pg, "postgres") == "postgres: checkpointer"
    assert timeline.display_command(["a\nb"], "x") == "a\\nb"
    assert timeline.display_command([""] * 3, "kworker") == "[kworker]"


def test_an_endless_line_is_skipped_not_held(tmp_path, monkeypatch):
    """A hostile segment with a line longer than the reader's limit (no newline for megabytes):
    the console's index counts and skips it, holding at most one chunk and the limit, and
    still indexes every tick around it."""
    d = scenarios.rotated(str(tmp_path / "r"))  # the older segments are indexed by scanning
    seg = reader.segments(d)[0]
    text = gzip.decompress(open(seg, "rb").read()).split(b"\n")
    middle = len(text) // 2
    monkeypatch.setattr(reader, "MAX_LINE", 1 << 16)
    endless = os.urandom(5 << 19).hex().encode()  # 5 MiB that gzip cannot shrink much
    hostile = b"\n".join(text[:middle]) + b"\nE 1 x " + endless + b"\n" \
        + b"\n".join(text[middle:])
    with open(seg, "wb") as fh:
        fh.write(gzip.compress(hostile))
    tl, _, _, _ = _open(d)
    assert tl.stats.long == 1
    assert list(tl.times) == [t.time for t in replay(d)]


def _wide_names(directory: str) -> str:
    """A program named in CJK (pid 10, 300 MiB) beside nginx (pid 11, 200 MiB)."""
    h = scenarios.Host(directory)
    h.spawn(10, ["/opt/app/数据库服务器进程"], 300)
    h.spawn(11, ["/usr/sbin/nginx"], 200)
    h.start_segment_tick()
    h.tick(3)
    h.stop()
    return directory


def test_wide_characters_keep_the_columns(tmp_path):
    """A program named in CJK takes two cells a character: the console lays out by cells, so
    its RSS column lines up with every other row's and no line runs past the screen."""
    _, _, _, c = _open(_wide_names(str(tmp_path / "w")))
    for w in (80, 50):
        lines = c.render(w, 24)
        texts = ["".join(t for t, _ in line) for line in lines]
        assert all(safetext.cells(t) <= w for t in texts)
        for pid, mib in ((10, 300), (11, 200)):
            [row] = [t for t in texts if t.startswith(f"{pid:>7} ")]
            end = row.index(fmt_bytes(mib << 20)) + len(fmt_bytes(mib << 20))
            assert safetext.cells(row[:end]) == 7 + 1 + 14 + 1 + 9, row


def test_top_by_program_aligns_wide_names(tmp_path, capsys):
    d = _wide_names(str(tmp_path / "w"))
    assert top.main([d, "--at", "+1s", "--by", "program"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if "数据库" in line or line.startswith(("nginx", "PROGRAM"))]
    assert len(rows) == 3
    ends = {safetext.cells(r[:r.index("RSS" if r.startswith("PROGRAM") else "MiB") + 3])
            for r in rows}  # where the RSS column ends, in terminal cells
    assert len(ends) == 1, rows
