"""`reader.read_packed` (what every whole-log command replays) against `reader.read`: the same
ticks, tables, counts and problems, line for line, whatever the log holds.

Packing a `p` line skips its own time checks because its time is written exactly as the `s`
line's before it; these tests put every kind of time, number and layout next to each other to
prove that shortcut changes nothing a command could see."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrail import reader
from memtrail.model import Run, replay_records

D_STD = '"pid","rss_anon","rss_file","rss_shmem","swap","locked"'


def _header(layout: str = '"pid","rss","shared"', started: int = 1, d: str = D_STD) -> str:
    return ('H 1700000000.000 memtrail 1 {"format":1,"host":"h","boot_id":"b",'
            f'"started":{started},"fields":{{"p":[{layout}],"d":[{d}],'
            '"s":["mem_total","mem_free","mem_available"]}}')


TIMES = ["1700000000.000", "1700000001.000", "1700000001.0", "1700000002.000", "nan",
         "1e30", "-5", "x"]
NUMS = ["100", "2048", "0", "-5", "x", "-", "0012", "1_0", "9" * 25, "7 ", ""]

line = st.one_of(
    st.builds(lambda t: f"s {t} 4000000 1000 2000", st.sampled_from(TIMES)),
    st.builds(lambda t, pid, a, b: f"p {t} {pid} {a} {b}", st.sampled_from(TIMES),
              st.sampled_from(["1", "2", "3", "x"]), st.sampled_from(NUMS),
              st.sampled_from(NUMS)),
    st.builds(lambda t, pid, a: f"p {t} {pid} {a}", st.sampled_from(TIMES),
              st.sampled_from(["1", "2"]), st.sampled_from(NUMS)),
    st.builds(lambda t, pid: f"P {t} {pid} 7 1 0 {{\"comm\":\"c{pid}\"}}",
              st.sampled_from(TIMES), st.sampled_from(["1", "2", "3"])),
    st.builds(lambda t, pid, vals: f"d {t} {pid} {' '.join(vals)}", st.sampled_from(TIMES),
              st.sampled_from(["1", "2", "3", "9"]),
              st.lists(st.sampled_from(NUMS), min_size=4, max_size=6)),
    st.builds(lambda t, pid: f"X {t} {pid}", st.sampled_from(TIMES), st.sampled_from("12")),
    st.builds(lambda t: f"K {t} 2 0 {{\"reason\":\"periodic\"}}", st.sampled_from(TIMES)),
    st.sampled_from([_header(), _header('"pid","shared","rss"', 2), _header(started=3),
                     _header(started=4, d='"pid","swap","rss_anon","rss_file","rss_shmem"'),
                     "p 1700000001.000 1 5 5 {\"x\":1}", "garbage", ""]),
)


def _outcome(records) -> tuple:
    """What a command can see of a replay: each tick's figures and table, then the run."""
    run = Run()
    ticks = []
    for tick in replay_records(records, run):
        ticks.append((tick.time, tick.rss_total,
                      [(p.pid, p.rss, old) for p, old in tick.changes],
                      [p.pid for p in tick.exited], [p.pid for p in tick.details],
                      sorted((pid, p.rss, p.shared, p.start, p.rss_anon, p.rss_file,
                              p.rss_shmem, p.swap, p.locked)
                             for pid, p in tick.procs.items())))
    return ticks, run.problems, run.orphan_records, run.ticks, run.cut_segments


def _both(tmp_path, text: str) -> None:
    path = tmp_path / "memtrail-20231114T221320Z-000.log"
    path.write_bytes(text.encode())
    plain, packed = reader.ReadStats(), reader.ReadStats()
    want = _outcome(reader.read(str(path), plain))
    got = _outcome(reader.read_packed(str(path), packed))
    assert got == want
    assert (packed.lines, packed.bad, packed.torn, packed.unknown) == \
        (plain.lines, plain.bad, plain.torn, plain.unknown)


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line, max_size=40), torn=st.booleans())
def test_packed_replay_is_the_plain_replay(tmp_path, lines, torn):
    text = "\n".join([_header(), *lines]) + ("" if torn else "\n")
    _both(tmp_path, text)


def test_packing_is_used_and_changes_nothing_on_an_ordinary_log(tmp_path):
    """The common case really is packed (ints, not a Record), and it replays the same:
    a tick whose `p` time is spelled differently, a bad number and an out-of-range `s` time
    sit among ordinary ticks (the `1e30` pair packs: the model counts its bad time)."""
    lines = [_header()]
    for t in range(5):
        lines.append(f"s 17000000{t:02d}.000 4000000 1000 2000")
        lines += [f"p 17000000{t:02d}.000 {pid} {100 * t + pid} 10" for pid in (1, 2, 3)]
        lines.append(f"d 17000000{t:02d}.000 1 {t} 2 3 4 5")
    lines += ["s 1700000005.000 4000000 1000 2000", "p 1700000005.0 1 999 10",
              "p 1700000005.000 2 x 10", "p 1700000005.000 3 77 -",
              "s 1e30 4000000 1000 2000", "p 1e30 1 5 5",
              "s 1700000006.000 4000000 1000 2000", "p 1700000006.000 1 6 6"]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "memtrail-20231114T221320Z-000.log"
    path.write_bytes(text.encode())
    items = list(reader.read_packed(str(path)))
    packed = [line for item in items if type(item) is list for line in item]
    assert sum(len(line) == 3 for line in packed) == 18  # all but the two odd ones
    assert (3, 77, 0) in packed  # `-` for shared is 0, as the model reads it
    assert [line for line in packed if len(line) == 6] == [(1, t, 2, 3, 4, 5) for t in range(5)]
    assert sum(type(item) is list for item in items) == 8  # a tick's lines in one list
    _both(tmp_path, text)
