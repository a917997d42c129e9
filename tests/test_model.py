"""The streaming replay (memtrail.model) on logs written by scripted scenarios."""

from __future__ import annotations

import os

import scenarios

from memtrail.model import KIB, Run, TrendTracker, replay
from memtrail.reader import ReadStats


def _replay(path):
    stats, run = ReadStats(), Run()
    ticks = []
    for tick in replay(path, stats, run):
        ticks.append((tick.time, len(tick.procs), tick.rss_total, tick.system.used,
                      [e.kind for e in tick.events], [p.pid for p in tick.exited], tick.gap))
    return ticks, run, stats


def test_workers_table_and_bytes(tmp_path):
    ticks, run, stats = _replay(scenarios.workers(str(tmp_path)))
    assert run.ticks == len(ticks) == 31
    assert stats.problems == 0
    # 24 workers + parent + 2 postgres + shell, every tick
    assert {n for _, n, *_ in ticks} == {scenarios.NOVA_WORKERS + 4}
    expected = (scenarios.NOVA_WORKERS * 130 + 90 + 200 + 40 + 5) * 1024 * KIB
    assert ticks[-1][2] == expected
    assert run.end_reason == "SIGTERM" and not run.cut_segments and not run.gaps


def test_oom_kill_event_and_exit(tmp_path):
    ticks, run, _ = _replay(scenarios.oom(str(tmp_path)))
    assert len(run.oom_kills) == 1
    kill = run.oom_kills[0]
    assert kill.data["cmd"] == scenarios.OOM_VICTIM_CMD
    at = [t for t in ticks if "oom_kill" in t[4]]
    assert len(at) == 1 and 501 in at[0][5]  # the victim left the table at that tick
    assert run.peak_time is not None and run.peak_time < kill.time
    assert run.psi_full_us == 4 * 50000


def test_gap_restart_and_torn_tail(tmp_path):
    ticks, run, stats = _replay(scenarios.gap(str(tmp_path)))
    assert len(run.gaps) == 1
    gap = run.gaps[0]
    assert gap.reason == "sampler restart"
    assert scenarios.GAP_S <= gap.seconds <= scenarios.GAP_S + 2
    assert run.sampler_runs == 2
    assert stats.torn == 1
    assert len(run.cut_segments) == 2  # neither segment ended with Z or rotate
    # the process is the same identity across the restart (same pid + start)
    assert {n for _, n, *_ in ticks} == {1}


def test_rotated_gz_segments_are_one_run(tmp_path):
    d = scenarios.rotated(str(tmp_path))
    assert sorted(f.endswith(".gz") for f in os.listdir(d)) == [False, True, True]
    ticks, run, stats = _replay(d)
    assert len(run.segments) == 3 and run.sampler_runs == 1
    assert not run.gaps and not run.cut_segments and stats.problems == 0
    assert ticks[-1][1] == 1  # spamd exited before the first rotation


def test_keyframe_drops_processes_whose_exit_was_lost(tmp_path):
    h = scenarios.Host(str(tmp_path), keyframe_s=5)
    h.spawn(10, ["a"], 10)
    h.spawn(11, ["b"], 10)
    h.start_segment_tick()
    h.tick(2)
    h.procs.pop(11)  # gone without an X line
    h.tick(6)
    h.stop()
    ticks, run, _ = _replay(str(tmp_path))
    assert ticks[2][1] == 2
    assert ticks[-1][1] == 1
    dropped = [t for t in ticks if 11 in t[5]]
    assert len(dropped) == 1


def test_pid_reuse_is_a_new_identity(tmp_path):
    h = scenarios.Host(str(tmp_path))
    h.spawn(10, ["old"], 10)
    h.start_segment_tick()
    h.tick(2)
    h.procs.pop(10)
    h.spawn(10, ["new"], 20)  # same pid, later start time, no X seen
    h.tick(2)
    h.stop()
    stats, run = ReadStats(), Run()
    seen = []
    for tick in replay(str(tmp_path), stats, run):
        seen.append((tick.procs[10].cmd, tick.procs[10].rss, [p.cmd for p in tick.exited]))
    assert seen[0][:2] == (["old"], 10 * 1024 * KIB)
    assert seen[-1][:2] == (["new"], 20 * 1024 * KIB)
    assert [["old"]] in [s[2] for s in seen]


def test_trend_tracker_spike_versus_climb():
    flat = TrendTracker(0, 100)
    for t in range(10, 600, 10):
        flat.update(t, 1000 if 300 <= t < 320 else 100)  # a 20 s spike
    slope, _, _, r2 = flat.fit(600)
    assert abs(slope * 600) < 50 and r2 < 0.1
    climb = TrendTracker(0, 100)
    for t in range(10, 600, 10):
        climb.update(t, 100 + t)
    slope, start, end, r2 = climb.fit(600)
    assert abs(slope - 1) < 0.05 and r2 > 0.99 and 500 < end - start < 620


def test_reboot_ends_every_process_of_the_old_boot(tmp_path):
    h = scenarios.Host(str(tmp_path))
    h.spawn(10, ["a"], 10)
    h.start_segment_tick()
    h.tick(3)
    h.skip(100)
    h.procs = {}
    h.spawn(20, ["b"], 20)
    h.restart(boot_id="boot-bbbb")
    h.tick(2)
    h.stop()
    ticks, run, _ = _replay(str(tmp_path))
    assert run.boot_ids == ["boot-aaaa", "boot-bbbb"]
    assert [g.reason for g in run.gaps] == ["reboot"]
    after = [t for t in ticks if t[6] is not None][0]
    assert after[5] == [10] and after[1] == 1  # pid 10 left with the old boot
