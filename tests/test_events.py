"""Events as sentences (events.py), and the lows of one fall folded, in `tail`."""

from __future__ import annotations

import io

import pytest
import scenarios

from memtrail import events, tail

GOLDEN_KINDS = {
    "start": {"pid": 25826, "version": "0.1.0", "kmsg": "ok", "cgroups": "v1 /sys",
              "warnings": []},
    "snapshot": {"reason": "SIGUSR1"},
    "oom_kill": {"pid": 501, "name": "python3", "anon_kib": 204800, "file_kib": 0,
                 "shmem_kib": 0, "constraint": "CONSTRAINT_MEMCG", "oom_memcg": "/hog",
                 "cmd": ["python3", "hog.py"], "source": "kmsg"},
    "oom_counter": {"delta": 1, "total": 3},
    "cgroup_oom": {"cgid": 1, "path": "/hog", "oom_kill": 1, "delta": 1},
    "low": {"available_kib": 1048576, "pct": 12.5},
    "rate": {"interval_ms": 100, "reason": "MemAvailable 9.0%"},
    "overrun": {"took_ms": 1500, "interval_ms": 1000},
    "gap": {"from": 1000.0, "to": 1600.0, "lost_ticks": 599, "reason": "ENOSPC"},
    "clock": {"jump_s": -3600.0},
    "warn": {"msg": "/proc/slabinfo unreadable"},
    "rotate": {"next": "memtrail-x.log"},
    "residency": {"mlock": "ok", "oom_score_adj": "-900"},
}


@pytest.mark.parametrize("kind", sorted(GOLDEN_KINDS))
def test_every_kind_reads_as_a_sentence_not_a_dict(kind):
    text = events.sentence(kind, GOLDEN_KINDS[kind])
    assert "{" not in text and "'" not in text and text.strip() == text and text


def test_sentences_say_the_facts():
    assert events.sentence("start", GOLDEN_KINDS["start"]) == \
        "sampler 0.1.0 started (pid 25826)"
    assert events.sentence("snapshot", {"reason": "SIGUSR1"}) == \
        "full snapshot taken (SIGUSR1)"
    kill = events.sentence("oom_kill", GOLDEN_KINDS["oom_kill"])
    assert kill == ("OOM killer killed pid 501 (python3), 200 MiB resident in cgroup /hog: "
                    "python3 hog.py")
    kill = events.sentence("oom_kill", dict(GOLDEN_KINDS["oom_kill"], memcg_usage_kib=204800,
                                            memcg_limit_kib=204800,
                                            memcg_stat={"anon": 102400, "file": 102400,
                                                        "shmem": 100000, "kernel": 0}))
    assert kill.startswith("OOM killer killed pid 501 (python3), 200 MiB resident in cgroup "
                           "/hog, which held 200 MiB of its 200 MiB limit: anon 100 MiB, "
                           "shmem/tmpfs 97.7 MiB, page cache 2.3 MiB, kernel 0 B (the "
                           "kernel's count at the kill); 97.7 MiB of it was tmpfs")
    assert events.sentence("gap", GOLDEN_KINDS["gap"]) == \
        "not recording for 10m 00s, 599 ticks lost: ENOSPC"
    assert events.sentence("low", GOLDEN_KINDS["low"]) == "new low: 1.0 GiB available (12.5%)"
    assert events.sentence("rate", GOLDEN_KINDS["rate"]) == \
        "now ticking every 0.1 s (MemAvailable 9.0%)"


def test_unknown_or_malformed_events_still_read_and_stay_safe():
    assert events.sentence("newer_kind", {"a": 1}) == "newer_kind: a=1"
    assert events.sentence("low", {"available_kib": "lots"}) == "new low: - available"
    assert events.sentence("oom_kill", "not a dict") == \
        "OOM killer killed pid ? (?) (command line never seen)"
    hostile = events.sentence("oom_kill", {"pid": 1, "name": "x\x1b]0;pwn\x07",
                                           "cmd": ["rm\n-rf", "\u202e"]})
    assert "\x1b" not in hostile and "\n" not in hostile and "\u202e" not in hostile
    assert "\\x1b" in hostile and "\\n" in hostile
    assert "\x1b" not in events.sentence("\x1b[2J", {"\x1b": "\x1b"})


def test_severity():
    assert events.severity("oom_kill") == events.ALERT
    assert events.severity("low") == events.WARN
    assert events.severity("start") == events.INFO


def _falling(directory: str) -> str:
    """Memory falls 1.5% a tick for 10 ticks (a low each), recovers, then falls again."""
    h = scenarios.Host(directory, mem_total=8 * scenarios.GiB)
    h.spawn(10, ["/usr/bin/python3", "/opt/hog.py"], 100)
    h.start_segment_tick()
    total = h.mem_total

    def grow(mib: float) -> None:
        h.set_rss(10, mib)
        avail = total - h.used()
        h.event("low", {"available_kib": avail, "pct": round(100 * avail / total, 2)})
        h.tick(1)

    for step in range(1, 11):
        grow(100 + step * 125)  # 1.5% of 8 GiB a tick: a low each time
    h.set_rss(10, 100 + 10 * 125 - 200)  # gives back 200 MiB: more than the 1% step
    h.tick(3)
    grow(100 + 12 * 125)
    h.tick(2)
    h.stop()
    return directory


def test_tail_folds_a_fall_into_its_first_and_lowest_low(tmp_path):
    d = _falling(str(tmp_path))
    out = io.StringIO()
    tail.run(d, False, 100, tail.Style(False), out)
    lows = [line for line in out.getvalue().splitlines() if "low" in line]
    assert len(lows) == 3, lows  # not 11 lines
    assert "new low" in lows[0] and "new low" in lows[2]
    assert "lowest of this fall" in lows[1] and "10 new lows in 9 s" in lows[1]
    assert "new low" in lows[2]


def test_low_folder_ends_a_fall_on_recovery_by_the_sampler_step():
    f = events.LowFolder()
    assert f.low(1.0, {"available_kib": 1000000}, total_kib=8000000) == [
        "new low: 977 MiB available"]
    assert f.low(1.1, {"available_kib": 900000}) == []
    assert f.available(900000 + 80000) == []  # 1% of 8 GB is the step: not yet recovered
    out = f.available(900000 + 80001)
    assert len(out) == 1 and "lowest of this fall: 879 MiB" in out[0]
    assert f.close() == []  # said once


def test_a_kill_sentence_names_the_kernels_largest_other_tasks():
    """tail and view say who else held the memory at the kill, from the kernel's own table
    (a victim that lived less than a tick is known only from it); its names are hostile."""
    data = dict(GOLDEN_KINDS["oom_kill"], table_rows=5, table=[
        [501, 1000, 204800, 0, 0, "python3"], [77, 0, 1048576, 0, 0, "java"],
        [78, 0, 2048, 0, 0, "sshd"], [79, 0, 524288, 0, 0, "evil\x1b[2J"],
        [80, 0, 1024, 0, 0, "cron"], ["bad row"]])
    kill = events.sentence("oom_kill", data)
    assert kill.endswith("; the kernel listed 5 tasks, the largest others java (pid 77) "
                         "1.0 GiB, evil\\x1b[2J (pid 79) 512 MiB, sshd (pid 78) 2.0 MiB")
    assert "\x1b" not in kill
