"""The sampler's PSS tier: whole programs, a time budget per tick, slow targets skipped and
said so; and its program names, which must be the analyzer's."""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import time

import pytest
from test_report import PROGRAM_NAMES
from test_sampler_unit import Clock, events, make, of

from memtrail import sampler as S
from memtrail.programs import program_name


@pytest.mark.parametrize("cmd,name", PROGRAM_NAMES)
def test_sampler_names_programs_like_the_analyzer(cmd, name):
    assert S.program_name(cmd, "kworker") == program_name(cmd, "kworker") == name


def test_program_names_agree_on_random_command_lines():
    rng = random.Random(13)
    words = ["python3", "python3.11", "python", "pypy3", "perl", "ruby", "node", "nodejs",
             "java", "bash", "sh", "-bash", "dash", "zsh", "awk", "gawk", "python3-dbg",
             "python3.11a", "python3.", "pythonx", "shx", "sh-", "sh-x_1", "/usr/bin/python3",
             "-m", "-c", "-e", "-jar", "-cp", "a:b", "-X", "dev", "--", "-W", "x.py", "/srv/x.py",
             "org.x.Main", "app.jar", "/dev/fd/3", "nova-api: worker(3)", "postgres: writer",
             "/usr/sbin/nginx: master", "/: x", "a b: c", "x:y", ":", "", " ", "-", "--title",
             "ruby /srv/app/x", "python3 -m http.server", "p\u00e9rl", "python3\n", "sh-\u00e9",
             "python\u0663", "-r", "--require", "--module", "m/a.b.C", "-mhttp.server"]
    for _ in range(20000):
        cmd = [rng.choice(words) for _ in range(rng.randint(0, 5))]
        comm = rng.choice(["kworker", "", "x"])
        assert S.program_name(cmd, comm) == program_name(cmd, comm), cmd


def _pss_lines(lines):
    return sorted(int(line.split()[2]) for line in of(lines, "D"))


def test_every_member_of_the_largest_programs(fakeproc, tmp_path):
    for pid in range(200, 206):  # 6 workers of 20 MiB: 120 MiB together
        fakeproc.add(pid, ["/usr/bin/python3", "/usr/bin/nova-api"], rss_kib=20480)
    fakeproc.add(300, ["/usr/bin/big"], rss_kib=100000)  # the largest single process
    fakeproc.add(301, ["/usr/bin/small"], rss_kib=5000)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "1")
    lines = Clock().tick(s, new_segment=True)
    assert _pss_lines(lines) == [200, 201, 202, 203, 204, 205, 300]
    [round_] = events(lines, "pss")
    assert round_["programs"] == 2 and round_["planned"] == 7 and round_["read"] == 7
    assert "skipped" not in round_ and "unfinished" not in round_


def test_a_round_is_spread_over_ticks_by_the_budget(fakeproc, tmp_path):
    for pid in range(200, 210):
        fakeproc.add(pid, ["/usr/bin/worker"], rss_kib=20480)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0",
             "--pss-budget", "0.000001")  # one read a tick (the first always happens)
    clock = Clock()
    seen, rounds = [], []
    for _ in range(10):
        lines = clock.tick(s, new_segment=not seen)
        seen += _pss_lines(lines)
        rounds += events(lines, "pss")
    assert sorted(seen) == list(range(200, 210))
    assert [r["read"] for r in rounds] == [10]


def test_members_waiting_in_a_round_do_not_start_their_program_again(fakeproc, tmp_path):
    """A program read over many ticks has members not read yet at every status tick; they
    are the round's, not new members, so each process is read once a round."""
    for pid in range(200, 210):
        fakeproc.add(pid, ["/usr/bin/worker"], rss_kib=20480)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0",
             "--status-every", "1", "--pss-budget", "0.000001")  # plans every tick, 1 read
    clock = Clock()
    s.pss.force = True  # write every D line, so the lines count the reads
    seen, rounds = [], []
    for i in range(12):
        lines = clock.tick(s, new_segment=not i)
        s.pss.force = True
        seen += _pss_lines(lines)
        rounds += events(lines, "pss")
    assert sorted(seen) == list(range(200, 210))
    assert [(r["planned"], r["read"]) for r in rounds] == [(10, 10)]


def test_a_new_member_gets_its_whole_program_read_again(fakeproc, tmp_path):
    for pid in (200, 201):
        fakeproc.add(pid, ["/usr/bin/worker"], rss_kib=20480)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0",
             "--status-every", "1", "--rss-delta", "1G")
    clock = Clock()
    assert _pss_lines(clock.tick(s, new_segment=True)) == [200, 201]
    assert _pss_lines(clock.tick(s)) == []  # unchanged: nothing written
    fakeproc.add(202, ["/usr/bin/worker"], rss_kib=20480)
    for pid in (200, 201):  # the new member shares their pages: their PSS drops
        fakeproc._write(f"{pid}/smaps_rollup", "Pss: 1 kB\nPss_Anon: 1 kB\n")
    assert _pss_lines(clock.tick(s)) == [200, 201, 202]


def test_a_huge_process_is_skipped_before_it_is_read_and_the_log_says_so(fakeproc, tmp_path):
    fakeproc.add(200, ["/usr/bin/db"], rss_kib=200 << 20)  # 200 GiB: seconds of page walk
    fakeproc.add(201, ["/usr/bin/db"], rss_kib=10240)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0")
    lines = Clock().tick(s, new_segment=True)
    assert _pss_lines(lines) == [201]
    [round_] = events(lines, "pss")
    assert round_["skipped_count"] == 1
    assert round_["skipped"][0]["pid"] == 200
    assert round_["skipped"][0]["why"].startswith("predicted")


def test_a_slow_read_backs_its_process_off(fakeproc, tmp_path, monkeypatch):
    fakeproc.add(200, ["/usr/bin/app"], rss_kib=20480)
    fakeproc.add(201, ["/usr/bin/app"], rss_kib=10240)
    real = S.read_file

    def slow_for_200(path, *args, **kw):
        if path.endswith("/200/smaps_rollup"):
            time.sleep(0.03)
        return real(path, *args, **kw)
    monkeypatch.setattr(S, "read_file", slow_for_200)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0",
             "--pss-slow", "0.01", "--pss-every", "1", "--pss-budget", "1")
    clock = Clock()
    first = clock.tick(s, new_segment=True)
    [round_] = events(first, "pss")
    assert [x["pid"] for x in round_["slow"]] == [200]
    assert _pss_lines(first) == [200, 201]  # what a slow read returned is still written
    fakeproc.set_rss(201, 12000)  # the program's memory moved: the next round reads it again
    again = clock.tick(s, seconds=1.0)
    [round_] = events(again, "pss")
    assert round_["skipped"][0] == {"pid": 200, "why": "backed off", "rss_kib": 20480}


def test_the_report_says_which_processes_were_not_read(fakeproc, tmp_path):
    from memtrail.report import analyze, render_text

    fakeproc.add(200, ["/usr/bin/db"], rss_kib=200 << 20)
    fakeproc.add(201, ["/usr/bin/db"], rss_kib=10240)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0")
    clock = Clock()
    lines = [clock.tick(s, new_segment=True), clock.tick(s)]
    log = tmp_path / "log" / "memtrail-20231114T221321Z-000.log"
    log.write_text(s.header(clock.t - 1, clock.t - 1, log.name)
                   + "".join("\n".join(t) + "\n" for t in lines))
    rep = analyze([str(log)])
    assert rep["pss_tier"]["skipped"] == [{"pid": 200, "why": "predicted 5120 ms"}]
    [g] = [g for g in rep["programs"] if g["name"] == "db"]
    assert g["pss_count"] == 1 and g["count"] == 2
    text = render_text(rep)
    assert "PSS not read for 1 process(es)" in text and "pid 200 (predicted 5120 ms)" in text
    assert "(1 of 2)" in text


def test_a_member_whose_values_did_not_move_is_not_written_again(fakeproc, tmp_path):
    """The tier keeps each member's last written values (as their text, on the process) and
    writes a `D` line in the next round only for one that moved by more than the change
    threshold, or whose Swap appeared."""
    for pid in range(200, 204):
        fakeproc.add(pid, ["/usr/bin/worker"], rss_kib=20480)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0",
             "--pss-every", "5s", "--status-every", "5s")
    clock = Clock()
    assert _pss_lines(clock.tick(s, new_segment=True)) == [200, 201, 202, 203]
    fakeproc.add(201, ["/usr/bin/worker"], rss_kib=20480 + 8192)  # Pss +4 MiB: moved
    fakeproc.add(202, ["/usr/bin/worker"], rss_kib=20480 + 2)  # Pss +1 KiB: did not
    (fakeproc.root / "203" / "smaps_rollup").write_text(
        "Rss: 20480 kB\nPss: 10240 kB\nPss_Anon: 10240 kB\nPss_File: 0 kB\n"
        "Pss_Shmem: 0 kB\nSwapPss: 0 kB\n")  # Swap gone from the file: a value vanished
    written = []
    for _ in range(6):
        written += _pss_lines(clock.tick(s))
    assert written == [201, 203]


def test_a_member_whose_rss_moved_far_is_read_again_alone_at_the_next_status_tick(fakeproc,
                                                                                  tmp_path):
    """Its last PSS no longer describes it (the analyzer would count it as not read until the
    next round, a minute on): it is read again at the next status tick, by itself, and its
    `D` line ends with the RSS (KiB) the figures describe. A member that moved less than an
    eighth and 4 MiB waits for the round, as does the rest of its program."""
    for pid in range(200, 204):
        fakeproc.add(pid, ["/usr/bin/worker"], rss_kib=20480)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0",
             "--pss-every", "1h", "--status-every", "5s")
    clock = Clock()
    first = of(clock.tick(s, new_segment=True), "D")
    assert sorted(int(d.split()[2]) for d in first) == [200, 201, 202, 203]
    assert {d.split()[-1] for d in first} == {"20480"}
    fakeproc.add(201, ["/usr/bin/worker"], rss_kib=20480 + (1 << 20))  # grew 1 GiB
    fakeproc.add(202, ["/usr/bin/worker"], rss_kib=20480 + 2048)  # 2 MiB: under the line
    written = []
    for _ in range(12):  # two status ticks (1 s a tick), and no PSS round (1 h)
        written += of(clock.tick(s), "D")
    assert [d.split()[2] for d in written] == ["201"], written
    fields = written[0].split()
    assert int(fields[-1]) == 20480 + (1 << 20) and int(fields[3]) == (20480 + (1 << 20)) // 2


def test_a_mover_backed_off_or_predicted_slow_waits_for_the_round(fakeproc, tmp_path):
    """Read again at a status tick, it would only be skipped again, and said in a `pss` event
    at every status tick: it waits for the round, which says so once a round."""
    for pid in (200, 201):
        fakeproc.add(pid, ["/usr/bin/worker"], rss_kib=20480)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0",
             "--pss-every", "1h", "--status-every", "2s", "--pss-slow", "0.5")
    clock = Clock()
    assert _pss_lines(clock.tick(s, new_segment=True)) == [200, 201]
    s.pss.backoff["200"] = (float("inf"), 1)  # a slow read backed it off
    fakeproc.add(200, ["/usr/bin/worker"], rss_kib=20480 + (1 << 20))
    fakeproc.add(201, ["/usr/bin/worker"], rss_kib=40 << 20)  # 40 GiB: predicted 1 s at 25 us/MiB
    lines = []
    for _ in range(8):
        lines += clock.tick(s)
    assert _pss_lines(lines) == [] and events(lines, "pss") == []


def test_a_tiny_process_is_kept_without_its_rss_and_counts_as_moved_past_twice_the_line(
        fakeproc, tmp_path):
    """Its `D` line has the `rss` field like any other; the tier's own copy of its values
    does not (the memory of 20,000 small processes). Read at 1 MiB, it is read again at a
    status tick once past 8 MiB; at 6 MiB it waits for the round."""
    for pid in (200, 201):
        fakeproc.add(pid, ["/usr/bin/tiny"], rss_kib=1024)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0",
             "--pss-every", "1h", "--status-every", "2s")
    clock = Clock()
    first = of(clock.tick(s, new_segment=True), "D")
    assert [d.split()[-1] for d in first] == ["1024", "1024"]
    assert all(st.pss.count(b" ") == 5 for st in s.procs.values() if st.pss)
    fakeproc.add(200, ["/usr/bin/tiny"], rss_kib=6 << 10)
    fakeproc.add(201, ["/usr/bin/tiny"], rss_kib=9 << 10)
    lines = []
    for _ in range(6):
        lines += clock.tick(s)
    assert _pss_lines(lines) == [201]


def _reads(monkeypatch):
    """The pids whose smaps_rollup the tier read, in order."""
    pids = []
    real = S.PssTier._read

    def counting(self, pid, events_):
        pids.append(int(pid))
        return real(self, pid, events_)
    monkeypatch.setattr(S.PssTier, "_read", counting)
    return pids


def _quiet_crowd(fakeproc, tmp_path, monkeypatch):
    for pid in range(200, 204):
        fakeproc.add(pid, ["/usr/bin/worker"], rss_kib=20480)
    fakeproc.add(300, ["/usr/bin/other"], rss_kib=8000)
    s = make(fakeproc, tmp_path, "--pss-programs", "2", "--pss-top-n", "0",
             "--pss-every", "60")
    return s, Clock(), _reads(monkeypatch)


def _full_round(s, clock, first=False):
    lines = clock.tick(s, new_segment=True) if first else clock.tick(s, seconds=60.0)
    return [r for r in events(lines, "pss")]


def test_a_program_whose_memory_did_not_move_keeps_its_figures(fakeproc, tmp_path, monkeypatch):
    """An idle crowd costs no reads between refreshes: the same PSS, said as `kept`."""
    s, clock, reads = _quiet_crowd(fakeproc, tmp_path, monkeypatch)
    [first] = _full_round(s, clock, first=True)
    assert sorted(reads) == [200, 201, 202, 203, 300] and "kept" not in first
    for _ in range(S.PSS_REFRESH_ROUNDS - 1):
        reads.clear()
        [round_] = _full_round(s, clock)
        assert reads == [] and round_["kept"] == 5 and round_["planned"] == 0
        assert round_["programs"] == 2 and round_["read"] == 0
    reads.clear()
    [refresh] = _full_round(s, clock)  # every PSS_REFRESH_ROUNDS-th: all read again
    assert sorted(reads) == [200, 201, 202, 203, 300] and "kept" not in refresh


def test_a_member_whose_memory_moved_has_its_whole_program_read(fakeproc, tmp_path, monkeypatch):
    """A worker touching more of a shared segment lowers the others' shares, though their
    statm did not move: the whole program is read, and only that program."""
    s, clock, reads = _quiet_crowd(fakeproc, tmp_path, monkeypatch)
    _full_round(s, clock, first=True)
    fakeproc.set_rss(202, 30000)
    reads.clear()
    [round_] = _full_round(s, clock)
    assert sorted(reads) == [200, 201, 202, 203] and round_["kept"] == 1
    reads.clear()
    [round_] = _full_round(s, clock)  # quiet again
    assert reads == [] and round_["kept"] == 5


def test_a_member_that_exited_has_its_program_read_again(fakeproc, tmp_path, monkeypatch):
    s, clock, reads = _quiet_crowd(fakeproc, tmp_path, monkeypatch)
    _full_round(s, clock, first=True)
    fakeproc.remove(203)  # a fixture tree lists the exit (the listing diff)
    reads.clear()
    _full_round(s, clock)
    assert sorted(reads) == [200, 201, 202]


def _renewing_crowd(fakeproc, tmp_path, monkeypatch, n: int):
    for pid in range(200, 200 + n):
        fakeproc.add(pid, ["/usr/bin/worker"], rss_kib=20480)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0",
             "--status-every", "1", "--pss-every", "60", "--rss-delta", "1G")
    clock = Clock()
    _full_round(s, clock, first=True)
    return s, clock, _reads(monkeypatch)


def test_a_recycled_worker_is_read_alone_and_its_program_whole_at_the_next_round(
        fakeproc, tmp_path, monkeypatch):
    """A pre-forking server replacing a worker keeps as many mappers of its pages as the
    shares its workers' figures were cut for: at the status tick only the new worker is read
    (not its 15 siblings, every 10 s while workers come and go); the program stays stirred,
    so the next full round reads it whole rather than keeping it."""
    s, clock, reads = _renewing_crowd(fakeproc, tmp_path, monkeypatch, 16)
    fakeproc.remove(203)
    fakeproc.add(216, ["/usr/bin/worker"], rss_kib=20480)
    clock.tick(s)
    assert reads == [216]
    assert "worker" in s.pss.stirred
    reads.clear()
    for _ in range(5):
        clock.tick(s)
    assert reads == []
    [round_] = _full_round(s, clock)
    assert sorted(reads) == sorted(set(range(200, 217)) - {203}) and "kept" not in round_


def test_a_program_that_grew_past_an_eighth_is_read_whole_at_once(fakeproc, tmp_path,
                                                                  monkeypatch):
    """Two new workers among 16 (an eighth) cut the others' shares by a ninth at most: only
    they are read; a third moves the count past an eighth of the count at the last whole
    read, and the whole program is read, the new count then the reference."""
    s, clock, reads = _renewing_crowd(fakeproc, tmp_path, monkeypatch, 16)
    for pid in (216, 217):
        fakeproc.add(pid, ["/usr/bin/worker"], rss_kib=20480)
    clock.tick(s)
    assert sorted(reads) == [216, 217]
    reads.clear()
    fakeproc.add(218, ["/usr/bin/worker"], rss_kib=20480)
    clock.tick(s)
    assert sorted(reads) == list(range(200, 219))
    assert s.pss.whole_n == {"worker": 19} and "worker" not in s.pss.stirred
    reads.clear()
    for pid in (200, 201):  # shrinking counts as well as growing: 17 of 19
        fakeproc.remove(pid)
    fakeproc.add(219, ["/usr/bin/worker"], rss_kib=20480)
    clock.tick(s)
    assert reads == [219]


def test_a_small_program_renews_only_at_the_same_count(fakeproc, tmp_path, monkeypatch):
    """Under eight members an eighth is no member at all: a worker replaced is read alone, a
    worker added has the program read whole (two workers sharing 500 MiB hold 250 MiB each;
    a third makes it 167)."""
    s, clock, reads = _renewing_crowd(fakeproc, tmp_path, monkeypatch, 2)
    fakeproc.remove(201)
    fakeproc.add(202, ["/usr/bin/worker"], rss_kib=20480)
    clock.tick(s)
    assert reads == [202]
    reads.clear()
    fakeproc.add(203, ["/usr/bin/worker"], rss_kib=20480)
    clock.tick(s)
    assert sorted(reads) == [200, 202, 203]


def test_a_snapshot_and_a_member_never_read_mean_reading_all(fakeproc, tmp_path, monkeypatch):
    s, clock, reads = _quiet_crowd(fakeproc, tmp_path, monkeypatch)
    _full_round(s, clock, first=True)
    s.want_snapshot = "signal"
    reads.clear()
    clock.tick(s, seconds=1.0)
    assert sorted(reads) == [200, 201, 202, 203, 300]
    # a member whose read failed has no figures to keep: its program is read
    s.procs["201"].pss = b""
    reads.clear()
    _full_round(s, clock)
    assert sorted(reads) == [200, 201, 202, 203]


def test_the_report_counts_kept_figures_and_shows_the_programs_pss(fakeproc, tmp_path,
                                                                    monkeypatch):
    """Kept figures are the last ones read: the program's PSS is whole, as before."""
    from memtrail.report import analyze

    s, clock, reads = _quiet_crowd(fakeproc, tmp_path, monkeypatch)
    lines = [clock.tick(s, new_segment=True)] + [clock.tick(s, seconds=60.0) for _ in range(2)]
    log = tmp_path / "log" / "memtrail-20231114T221321Z-000.log"
    log.write_text(s.header(clock.t - 1, clock.t - 1, log.name)
                   + "".join("\n".join(t) + "\n" for t in lines))
    rep = analyze([str(log)])
    assert rep["pss_tier"]["rounds"] == 3 and rep["pss_tier"]["reads"] == 5
    assert rep["pss_tier"]["kept"] == 10
    [g] = [g for g in rep["programs"] if g["name"] == "worker"]
    assert g["pss_count"] == 4 == g["count"]


def test_a_round_left_unfinished_leaves_its_programs_to_be_read(fakeproc, tmp_path, monkeypatch):
    """The next full round reads a program whose members the last one did not reach (they
    hold figures from before its memory moved), and the tier forgets programs nobody runs."""
    for pid in range(200, 204):
        fakeproc.add(pid, ["/usr/bin/worker"], rss_kib=20480)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0",
             "--pss-every", "3")
    reads = _reads(monkeypatch)
    clock = Clock()
    clock.tick(s, new_segment=True)  # round 1: all four, every one with figures
    assert sorted(reads) == [200, 201, 202, 203]
    s.cfg.pss_budget = 0.000001  # from now on one read a tick
    fakeproc.set_rss(200, 30000)  # the program's memory moved
    s.pss.stirred.add("gone-soon")
    clock.tick(s, seconds=1.0)
    clock.tick(s, seconds=1.0)
    reads.clear()
    for _ in range(3):  # round 2 reads three of the four, then round 3 begins
        clock.tick(s, seconds=1.0)
    assert len(reads) == 3
    reads.clear()
    lines = clock.tick(s, seconds=1.0)
    [round2] = events(lines, "pss")
    assert round2["unfinished"] == 1 and round2["planned"] == 4
    assert len(reads) == 1  # round 3 reads the program again, rather than keeping it
    assert "gone-soon" not in s.pss.stirred


def test_a_round_read_over_many_ticks_can_still_be_kept_after(fakeproc, tmp_path, monkeypatch):
    """Status ticks that fall while a round is being read do not count its members still
    waiting as left unread (a 19 900-member program was read every minute that way)."""
    for pid in range(200, 204):
        fakeproc.add(pid, ["/usr/bin/worker"], rss_kib=20480)
    s = make(fakeproc, tmp_path, "--pss-programs", "1", "--pss-top-n", "0", "--status-every",
             "1", "--pss-every", "10", "--pss-budget", "0.000001")  # one read a tick
    reads = _reads(monkeypatch)
    clock = Clock()
    clock.tick(s, new_segment=True)
    for _ in range(9):
        clock.tick(s, seconds=1.0)
    assert sorted(reads) == [200, 201, 202, 203]
    reads.clear()
    [round_] = events(clock.tick(s, seconds=1.0), "pss")
    assert reads == [] and round_["kept"] == 4


def _fault(fakeproc, pid: int, n: int) -> None:
    """Give a process N more minor page faults (field 10 of its stat)."""
    path = fakeproc.root / str(pid) / "stat"
    data = path.read_bytes()
    cut = data.rindex(b")") + 2
    rest = data[cut:].split()
    rest[7] = str(int(rest[7]) + n).encode()
    path.write_bytes(data[:cut] + b" ".join(rest) + b"\n")


def test_a_member_that_took_a_page_fault_has_its_program_read(fakeproc, tmp_path, monkeypatch):
    """A forked worker writing to a page it shares with its parent gets a private copy: no
    statm field moves (the page was resident in both), but both PSS do. The fault does
    show, in /proc/PID/stat, so the program is read again."""
    s, clock, reads = _quiet_crowd(fakeproc, tmp_path, monkeypatch)
    _full_round(s, clock, first=True)
    reads.clear()
    assert _full_round(s, clock)[0]["kept"] == 5
    _fault(fakeproc, 201, 16)
    reads.clear()
    [round_] = _full_round(s, clock)
    assert sorted(reads) == [200, 201, 202, 203] and round_["kept"] == 1
    reads.clear()
    assert _full_round(s, clock)[0]["kept"] == 5 and reads == []
    # a member whose stat cannot be read: nothing to compare, so its program is read
    (fakeproc.root / "202" / "stat").unlink()
    reads.clear()
    _full_round(s, clock)
    assert sorted(reads) == [200, 201, 202, 203]


COW_PAIR = r"""
import mmap, os, signal
buf = mmap.mmap(-1, 32 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, len(buf), 4096):
    buf[i] = 1  # resident, then shared with the child after the fork
r, w = os.pipe()
child = os.fork()
if child == 0:
    def write_all(target, out):
        for i in range(0, len(target), 4096):
            target[i] = 2  # a private copy of every page: no statm field moves
        os.write(out, b"written\n")
    # the same code once on a page of its own, so its code pages are in before the look
    null = os.open(os.devnull, os.O_WRONLY)
    write_all(mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS), null)
    signal.signal(signal.SIGUSR1, lambda *_: write_all(buf, 1))
    os.write(w, b"c")
    while True:
        signal.pause()
os.read(r, 1)
os.write(1, f"{child}\n".encode())
os.wait()
"""


def test_live_a_forked_worker_writing_its_shared_pages_has_its_pss_read_again(tmp_path,
                                                                              monkeypatch):
    """Real processes: a parent touches 32 MiB and forks; its child then writes every page
    (copy on write). Their statm do not move, their PSS does, and the round after reads
    them again rather than keeping what it read before."""
    script = tmp_path / "cowpair.py"  # a program of its own: nothing else moves it
    script.write_text(COW_PAIR)
    pair = subprocess.Popen([sys.executable, "-I", str(script)], stdout=subprocess.PIPE)
    child = ""
    try:
        child = pair.stdout.readline().decode().strip()
        parent = pair.pid
        cfg = S.parse_args(["--dir", str(tmp_path / "log"), "--kmsg", "", "--no-mlock",
                            "--no-oom-adj", "--no-cgroups", "--quiet", "--journal", "no",
                            "--pss-programs", "1000", "--pss-top-n", "0", "--pss-budget", "10"])
        S.check_log_dir(cfg.dir)
        s = S.Sampler(cfg)
        reads = _reads(monkeypatch)
        clock = Clock()
        clock.tick(s, new_segment=True)
        assert int(child) in reads and parent in reads
        reads.clear()
        clock.tick(s, seconds=60.0)
        assert int(child) not in reads and parent not in reads  # quiet: kept
        statm = open(f"/proc/{child}/statm").read()
        pss_before = s.procs[child].pss
        os.kill(int(child), signal.SIGUSR1)
        assert pair.stdout.readline() == b"written\n"
        assert open(f"/proc/{child}/statm").read() == statm  # the kernel's side
        reads.clear()
        lines = clock.tick(s, seconds=60.0)
        assert int(child) in reads and parent in reads
        assert s.procs[child].pss != pss_before
        assert any(line.split()[2] == child for line in of(lines, "D"))
    finally:
        if child:
            os.kill(int(child), signal.SIGKILL)
        pair.kill()
        pair.wait()


RECYCLER = r"""
import mmap, os, signal, sys
buf = mmap.mmap(-1, 32 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, len(buf), 4096):
    buf[i] = 1  # resident, then shared with every worker forked after
def worker():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b"c")
        while True:
            signal.pause()
    os.read(r, 1)  # up and waiting: what it touches after the fork is touched
    os.close(r)
    os.close(w)
    return pid
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "fork":
        print(worker(), flush=True)
    else:  # kill PID: gone and reaped before the answer
        os.kill(int(cmd[1]), signal.SIGKILL)
        os.waitpid(int(cmd[1]), 0)
        print("ok", flush=True)
"""


def _pss_kib(pid) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))


def test_live_a_recycled_worker_leaves_its_siblings_shares_where_they_were(tmp_path,
                                                                           monkeypatch):
    """The rule's premise on the real kernel. A parent touches 32 MiB and forks three
    workers: four mappers, 8 MiB of it in each one's PSS. A worker killed and another forked
    in its place leaves the others' PSS where it was, and the sampler reads only the new
    one at the status tick; a fifth worker (the control, in the same run) takes 1.6 MiB
    from each, and the sampler reads the whole program again."""
    # a program of its own: a worker left by another run would be a member of it
    script = tmp_path / f"recycler{secrets.token_hex(4)}.py"
    script.write_text(RECYCLER)
    boss = subprocess.Popen([sys.executable, "-I", str(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1)

    forked = []

    def ask(cmd: str) -> str:
        boss.stdin.write(cmd + "\n")
        boss.stdin.flush()
        answer = boss.stdout.readline().strip()
        if cmd == "fork":
            forked.append(answer)
        return answer
    try:
        workers = [ask("fork") for _ in range(3)]
        members = {str(boss.pid), *workers}
        cfg = S.parse_args(["--dir", str(tmp_path / "log"), "--kmsg", "", "--no-mlock",
                            "--no-oom-adj", "--no-cgroups", "--quiet", "--journal", "no",
                            "--pss-programs", "1000", "--pss-top-n", "0", "--pss-budget", "10",
                            "--status-every", "1", "--pss-every", "1h"])
        S.check_log_dir(cfg.dir)
        s = S.Sampler(cfg)
        reads = _reads(monkeypatch)
        clock = Clock()
        clock.tick(s, new_segment=True)
        assert members <= {str(p) for p in reads}
        siblings = [str(boss.pid), *workers[1:]]
        before = [_pss_kib(pid) for pid in siblings]

        assert ask(f"kill {workers[0]}") == "ok"
        newcomer = ask("fork")
        reads.clear()
        clock.tick(s)
        after = [_pss_kib(pid) for pid in siblings]
        assert [str(p) for p in reads if str(p) in members | {newcomer}] == [newcomer]
        moved = max(abs(a - b) for a, b in zip(after, before))
        assert moved < 512, (before, after)  # KiB: the same four mappers of 32 MiB

        fifth = ask("fork")
        reads.clear()
        clock.tick(s)
        grown = [_pss_kib(pid) for pid in siblings]
        assert min(a - g for a, g in zip(after, grown)) > 1024, (after, grown)  # 8 -> 6.4 MiB
        assert {*siblings, newcomer, fifth} <= {str(p) for p in reads}
    finally:
        for pid in forked:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass
        boss.kill()
        boss.wait()
