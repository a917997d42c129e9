"""seek.py: jumping to a time gives the state a replay from the start gives (no timing here)."""

from __future__ import annotations

import os
import random

import pytest
import scenarios
from conftest import call_main

from memtrail import seek, top
from memtrail.model import replay
from memtrail.reader import ReadStats, segments

T0 = scenarios.T0


def _churning(directory: str) -> str:
    """Three segments (two gzipped), a keyframe every 20 s, churn, PID reuse, details that
    change between keyframes, an exit between keyframes, cgroups and slab lines."""
    rnd = random.Random(7)
    h = scenarios.Host(directory, keyframe_s=20.0)
    for pid in range(100, 130):
        h.spawn(pid, ["/usr/bin/app", f"--n={pid}"], rnd.uniform(10, 200))
    h.set_detail(100, 50, 20, swap_mib=3)
    h.set_pss(100, 60)
    h.add_cgroup(1, "/system.slice/app.service", 400)
    h.set_slab("dentry", 300)
    h.start_segment_tick()
    next_pid = 200
    for step in range(150):
        for pid in rnd.sample(sorted(h.procs), 5):
            h.set_rss(pid, rnd.uniform(10, 200))
        if step % 7 == 3:
            h.exit(rnd.choice(sorted(p for p in h.procs if p != 100)))
        if step % 5 == 1:
            h.spawn(next_pid, ["/bin/job", str(step)], rnd.uniform(1, 30))
            next_pid += 1
        if step == 60:  # PID reuse: 101 goes, a new 101 comes with another start
            if 101 in h.procs:
                h.exit(101)
            h.tick(1)
            h.spawn(101, ["/bin/reused"], 42)
        if step % 13 == 0:
            h.set_detail(100, 50 + step, 20, swap_mib=3 + step)
        h.cgroups[1]["current"] = int(rnd.uniform(100, 500) * scenarios.MiB)
        h.set_slab("dentry", 300 + step)
        h.tick(1)
        if step in (50, 100):
            h.rotate(compress=step == 50)
    h.stop()
    return directory


def _state(tick):
    procs = sorted((p.pid, p.start, p.rss, p.shared, tuple(p.cmd), p.uid, p.rss_anon, p.swap,
                    p.pss) for p in tick.procs.values())
    cgroups = sorted((c.cgid, c.path, c.current) for c in tick.cgroups.values())
    return (tick.time, tick.system.available, procs, cgroups, list(tick.slabs))


def _reference(paths, when):
    """The state at `when` by a replay from the start of the segment holding it."""
    files = segments(paths[0])
    i = seek.pick_segment([(f, seek.first_tick_time(f)) for f in files], when)
    found = None
    for tick in replay(files[i:]):
        if tick.time > when:
            break
        found = _state(tick)
    return found


def _sought(paths, when):
    found = None
    for tick in seek.ticks_from(paths, when):
        if tick.time > when:
            break
        found = _state(tick)
    return found


def test_seek_gives_the_state_a_replay_gives_at_every_time(tmp_path):
    d = _churning(str(tmp_path))
    names = sorted(os.listdir(d))
    assert sum(n.endswith(".gz") for n in names) == 1 and len(names) == 3
    times = [T0 - 5] + [T0 + s + frac for s in range(0, 160) for frac in (0.0, 0.5)]
    for when in times:
        assert _sought([d], when) == _reference([d], when), when


def test_seek_matches_a_full_replay_for_sizes_and_identities(tmp_path):
    d = _churning(str(tmp_path))
    full = {}
    for tick in replay([d]):
        full[tick.time] = sorted((p.pid, p.start, p.rss, p.shared, tuple(p.cmd))
                                 for p in tick.procs.values())
    for when in (T0 + 33.5, T0 + 61.0, T0 + 99.9, T0 + 120.0, T0 + 151.0):
        last = max(t for t in full if t <= when)
        for tick in seek.ticks_from([d], when):
            # the replay starts at the keyframe at or before `when` (one every 20 s)
            assert when - 21 < tick.time <= last
            break
        got = None
        for tick in seek.ticks_from([d], when):
            if tick.time > when:
                break
            got = sorted((p.pid, p.start, p.rss, p.shared, tuple(p.cmd))
                         for p in tick.procs.values())
        assert got == full[last]


def test_seek_skips_what_keyframes_restate(tmp_path):
    d = _churning(str(tmp_path))
    late = T0 + 140.0
    stats_full, stats_seek = ReadStats(), ReadStats()
    n_full = sum(1 for t in replay([d], stats_full) if t.time <= late)
    n_seek = sum(1 for t in seek.ticks_from([d], late, stats_seek) if t.time <= late)
    assert n_seek <= 21 < n_full  # a keyframe every 20 s: at most 21 ticks replayed
    assert stats_seek.lines < stats_full.lines / 3
    assert stats_seek.files == 1  # the last segment only


def test_keyframe_index_offsets_point_at_keyframe_ticks(tmp_path):
    d = _churning(str(tmp_path))
    for path in segments(d):
        index = seek.keyframes(path)
        assert index
        with seek.open_segment(path) as fh:
            data = fh.read()
        for t, offset in index:
            line = data[offset:data.index(b"\n", offset)]
            assert line.startswith(f"s {t:.3f} ".encode())
            assert b"\nK " in data[offset:data.index(b"\ns ", offset + 1)]


def test_seek_across_a_restart_gap_and_a_torn_tail(tmp_path, capsys):
    d = scenarios.gap(str(tmp_path))
    stats = ReadStats()
    ticks = list(seek.ticks_from([d], T0 + scenarios.GAP_S + 30, stats))
    assert ticks and stats.torn == 1
    rc, out, _ = call_main(capsys, top.main, d, "--at", "+120s")
    assert rc == 0 and "not looking" in out


def test_seek_on_a_foreign_file_is_a_counted_skip(tmp_path):
    d = scenarios.foreign(str(tmp_path))
    stats = ReadStats()
    list(seek.ticks_from([os.path.join(d, "memtrail-20000101T000000Z-000.log")], T0, stats))
    assert any("not a memtrail log" in s for s in stats.skipped_files)


@pytest.mark.parametrize("at", ["+0s", "+45s", "+101s", "-1s"])
def test_top_output_is_unchanged_by_seeking(tmp_path, capsys, monkeypatch, at):
    d = _churning(str(tmp_path))
    rc, fast, _ = call_main(capsys, top.main, d, "--at", at, "--limit", "0")
    assert rc == 0

    def from_the_segment_start(paths, when, stats=None):
        files = []
        for p in paths:
            files.extend(segments(p))
        i = seek.pick_segment([(f, seek.first_tick_time(f)) for f in files], when)
        for f in files[i:]:
            yield from seek._whole(f, stats if stats is not None else ReadStats())
    monkeypatch.setattr(top, "records_from", from_the_segment_start)
    rc, slow, _ = call_main(capsys, top.main, d, "--at", at, "--limit", "0")
    assert rc == 0 and fast == slow
