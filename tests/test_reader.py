"""The reader: torn, corrupt, compressed, foreign and future input, and a fuzzer on top."""

from __future__ import annotations

import gzip
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrail import reader

HEADER = ('H 1700000000.000 memtrail 1 {"format":1,"host":"h","fields":{"p":["pid","rss",'
          '"shared"],"s":["mem_total","mem_free","mem_available"]}}\n')
BODY = (
    "s 1700000000.000 1000 500 800\n"
    "P 1700000000.000 42 100 1 0 {\"comm\":\"a\",\"cmd\":[\"a\",\"b c\"]}\n"
    "p 1700000000.000 42 2048 512\n"
    "s 1700000001.000 1000 400 700\n"
    "X 1700000001.000 42\n"
    "Z 1700000001.000 {\"reason\":\"SIGTERM\",\"ticks\":2}\n"
)
GOOD = (HEADER + BODY).encode()


def write(path, data: bytes, compress: bool = False) -> str:
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        with open(path, "wb") as fh:
            fh.write(data)
    return str(path)


def read_all(path):
    stats = reader.ReadStats()
    return list(reader.read(str(path), stats)), stats


def test_a_clean_segment(tmp_path):
    recs, stats = read_all(write(tmp_path / "memtrail-20231114T221320Z-000.log", GOOD))
    assert [r.type for r in recs] == ["H", "s", "P", "p", "s", "X", "Z"]
    assert stats.problems == 0 and stats.lines == 7
    p = recs[3]
    assert (p.int("pid"), p.int("rss"), p.int("shared")) == (42, 2048, 512)
    assert recs[2].obj["cmd"] == ["a", "b c"] and recs[4].int("mem_available") == 700
    assert recs[0].segment.host == "h"


def test_a_torn_last_line_is_skipped_never_misread(tmp_path):
    torn = GOOD + b"p 1700000002.000 42 99"  # would parse as rss=99 if misread
    recs, stats = read_all(write(tmp_path / "x.log", torn))
    assert stats.torn == 1 and [r.int("rss") for r in recs if r.type == "p"] == [2048]


def test_bad_lines_are_counted_and_skipped(tmp_path):
    data = GOOD.replace(b"s 1700000001.000", b"s notatime") + b"P 1.0 1 2 3 4 {broken json\n"
    recs, stats = read_all(write(tmp_path / "x.log", data))
    assert stats.bad == 2 and sum(r.type == "s" for r in recs) == 1


def test_unknown_types_and_extra_fields_are_skipped(tmp_path):
    data = GOOD + b"Q 1700000002.000 future record\np 1700000002.000 42 4096 512 77 88\n"
    recs, stats = read_all(write(tmp_path / "x.log", data))
    assert stats.unknown == 1 and stats.bad == 0
    assert recs[-1].int("rss") == 4096  # extra positional fields do not disturb the known ones


def test_gz_segments_and_a_directory_in_order(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    write(d / "memtrail-20231114T221320Z-000.log.gz", GOOD, compress=True)
    write(d / "memtrail-20231114T221321Z-000.log", GOOD.replace(b'"h"', b'"h2"'))
    write(d / "notes.txt", b"not ours")
    write(d / "memtrail-20231114T221322Z-000.log.gz.tmp", b"half written")
    recs, stats = read_all(d)
    assert [r.segment.host for r in recs if r.type == "H"] == ["h", "h2"]
    assert stats.files == 2 and stats.problems == 0


def test_interrupted_compression_reads_the_plain_copy_once(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    write(d / "memtrail-20231114T221320Z-000.log", GOOD)
    write(d / "memtrail-20231114T221320Z-000.log.gz", GOOD, compress=True)
    recs, _stats = read_all(d)
    assert sum(r.type == "H" for r in recs) == 1


def test_a_truncated_gz_keeps_what_it_had(tmp_path):
    blob = gzip.compress(GOOD * 50)
    path = write(tmp_path / "x.log.gz", blob[: len(blob) // 2])
    recs, stats = read_all(path)
    assert len(stats.truncated_files) == 1 and recs and recs[0].type == "H"


def test_foreign_and_future_files_are_reported(tmp_path):
    _recs, stats = read_all(write(tmp_path / "a.log", b"hello world\n"))
    assert "not a memtrail log" in stats.skipped_files[0]
    future = GOOD.replace(b"memtrail 1 {\"format\":1", b"memtrail 2 {\"format\":2")
    recs, stats = read_all(write(tmp_path / "b.log", future))
    assert "newer" in stats.skipped_files[0] and recs == []  # the whole segment is skipped


def test_missing_paths_are_one_line_errors(tmp_path):
    missing = str(tmp_path / "nope")
    assert reader.check_paths([missing]) == [f"{missing}: no such file or directory"]
    (tmp_path / "empty").mkdir()
    assert "no memtrail segments" in reader.check_paths([str(tmp_path / "empty")])[0]


def test_unreadable_file_is_skipped(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = write(tmp_path / "x.log", GOOD)
    os.chmod(path, 0)
    _recs, stats = read_all(path)
    assert stats.skipped_files


def _check_never_raises(tmp_path, data: bytes, compress: bool):
    path = write(tmp_path / ("f.log.gz" if compress else "f.log"), data, compress)
    stats = reader.ReadStats()
    for rec in reader.read(path, stats):
        assert rec.type and isinstance(rec.time, float)
        for name in ("pid", "rss", "mem_total"):
            rec.int(name)


FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(GOOD)), compress=st.booleans())
def test_fuzz_truncated(tmp_path, cut, compress):
    _check_never_raises(tmp_path, GOOD[:cut], compress)


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 7)),
                      min_size=1, max_size=8))
def test_fuzz_bit_flips(tmp_path, flips):
    data = bytearray(GOOD)
    for pos, bit in flips:
        data[pos] ^= 1 << bit
    _check_never_raises(tmp_path, bytes(data), False)


@FUZZ
@given(data=st.binary(max_size=2000), compress=st.booleans())
def test_fuzz_random_bytes(tmp_path, data, compress):
    _check_never_raises(tmp_path, HEADER.encode() + data, compress)
    _check_never_raises(tmp_path, data, False)


@FUZZ
@given(blob_cut=st.integers(min_value=1, max_value=400), flip=st.integers(0, 399))
def test_fuzz_corrupt_gzip(tmp_path, blob_cut, flip):
    blob = bytearray(gzip.compress(GOOD * 3))
    if flip < len(blob):
        blob[flip] ^= 0x40
    path = write(tmp_path / "c.log.gz", bytes(blob[:blob_cut]))
    stats = reader.ReadStats()
    list(reader.read(path, stats))
    assert stats.files + len(stats.skipped_files) >= 1


def test_a_foreign_file_is_one_skipped_file_not_also_a_bad_line(tmp_path):
    _recs, stats = read_all(write(tmp_path / "a.log", b"hello world\nmore\n"))
    assert stats.bad == 0 and len(stats.skipped_files) == 1


def test_parse_line_for_line_at_a_time_readers():
    stats = reader.ReadStats()
    head = reader.parse_line(HEADER.encode(), "x", None, stats)
    assert head.type == "H"
    rec = reader.parse_line(b"p 1.000 42 2048 512\n", "x", head.segment, stats)
    assert rec.int("rss") == 2048
    assert reader.parse_line(b"p nonsense\n", "x", head.segment, stats) is None
    assert stats.bad == 1



def _by_readline(path):
    """The line-at-a-time oracle: complete lines (no newline), the torn tail, long count."""
    stats = reader.ReadStats()
    out = []
    with reader.open_segment(path, stats) as fh:
        while True:
            line = fh.readline()
            if not line:
                return out, b"", stats.long
            if not line.endswith(b"\n"):
                return out, line, stats.long
            out.append(line[:-1])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(0, 40), max_size=30), torn=st.integers(0, 40),
       compress=st.booleans())
def test_chunked_lines_match_readline(tmp_path, monkeypatch, lengths, torn, compress):
    """SegmentFile.lines (whole chunks, split at once: the fast path of every command) gives
    the lines readline gives, whatever falls on a chunk boundary, with a long line skipped and
    counted in both. Tiny chunks and a tiny MAX_LINE put every case on a boundary."""
    monkeypatch.setattr(reader, "CHUNK", 7)
    monkeypatch.setattr(reader, "MAX_LINE", 16)
    data = b"".join(bytes([97 + i % 26]) * n + b"\n" for i, n in enumerate(lengths))
    data += b"z" * torn
    path = write(tmp_path / "x.log", data, compress)
    want, want_tail, want_long = _by_readline(path)
    stats = reader.ReadStats()
    with reader.open_segment(path, stats) as fh:
        got = list(fh.lines())
        tail = fh.tail
    assert got == want
    assert stats.long == want_long == sum(n >= 16 for n in lengths) + (torn >= 16)
    assert tail == want_tail


def test_chunked_reading_counts_like_line_reading(tmp_path):
    """The reader's counts (lines, torn, bad) and records are those of a line-at-a-time
    reading of the same bytes (seek.py's catch-up reads lines one at a time)."""
    data = GOOD + b"p 1700000001.000 7 x\n" + b"bogus\n" + b"p 1700000001.000 8 1 1"
    path = write(tmp_path / "x.log", data)
    recs, stats = read_all(path)
    assert [r.type for r in recs] == ["H", "s", "P", "p", "s", "X", "Z", "p"]
    assert (stats.lines, stats.torn, stats.bad) == (10, 1, 1)
