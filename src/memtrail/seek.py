"""Jump to a moment of a recording without replaying it from the start.

A week at a 1 s tick is tens of millions of records; `memtrail top --at` and a viewer's "go to"
need the state at one moment, and replaying a week to get it costs a minute. The format makes
a shortcut exact: each segment stands alone (its first tick repeats every identity), and a
keyframe tick (`K`) repeats every process's RSS, so the process table at any tick follows from
the segment's header, the records that carry state a keyframe does not repeat (identities,
exits, `d`/`D` details, cgroups, slab), and everything from the last keyframe tick before it.

So `records_from` picks the segment holding the time by its first tick (one line read per
segment), skims that segment up to the last keyframe at or before the time without parsing the
per-tick `s`/`p` lines, and streams every record from that keyframe tick to the end of the
recording. Fed to a `model.Replayer`, the ticks from there on carry the same processes, sizes
and details as a replay from the start of that segment would. What it cannot know is what came
before the segment: `d`/`D` figures last written in an earlier segment, and the `Run` summary
(peaks, counts) of the time skipped, which a seeking view does not show.
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Sequence, Tuple

from memtrail.model import Replayer, Run, Tick
from memtrail.reader import (
    FORMAT_MAJOR,
    ReadStats,
    Record,
    Segment,
    finite_float,
    open_segment,
    parse_line,
    segment_lines,
    segments,
)

# First bytes of the lines a keyframe tick restates (or that only matter within their own
# tick): skipped, unparsed, before the keyframe a seek starts from.
_RESTATED = (b"s ", b"p ", b"K ", b"E ", b"Z ")


def first_tick_time(path: str) -> Optional[float]:
    """Time of a segment's first tick (its header's), reading only its first lines."""
    try:
        with open_segment(path) as fh:
            for _ in range(50):
                line = fh.readline()
                if not line.endswith(b"\n"):
                    return None
                parts = line.split(b" ", 2)
                if len(parts) >= 2 and parts[0] in (b"H", b"s"):
                    return finite_float(parts[1])
    except (OSError, EOFError, ValueError):
        return None
    return None


def segment_starts(paths: Sequence[str]) -> List[Tuple[str, Optional[float]]]:
    """Every segment file of `paths`, oldest first, with its first tick time (None: unreadable
    or empty; such a file is still read in order, it just cannot be jumped to)."""
    files: List[str] = []
    for path in paths:
        files.extend(segments(path))
    return [(f, first_tick_time(f)) for f in files]


def pick_segment(starts: Sequence[Tuple[str, Optional[float]]], when: float) -> int:
    """Index of the segment holding `when`: the last one that starts at or before it (the
    first one when `when` is before them all)."""
    chosen = 0
    for i, (_path, start) in enumerate(starts):
        if start is not None and start <= when:
            chosen = i
    return chosen


def _tick_time(raw: bytes) -> Optional[float]:
    try:
        return finite_float(raw[2:raw.index(b" ", 2)])
    except ValueError:
        return None


class _Segment:
    """Records of one segment, with the reader's rules (a header first, a newer format
    refused, foreign files skipped) on lines given one at a time."""

    def __init__(self, path: str, stats: ReadStats) -> None:
        self.path = path
        self.stats = stats
        self.segment: Optional[Segment] = None
        self.refused = False

    def record(self, raw: bytes) -> Optional[Record]:
        rec = parse_line(raw, self.path, self.segment, self.stats)
        if rec is not None and rec.type == "H":
            self.segment = rec.segment
            if self.segment.header["format"] > FORMAT_MAJOR:
                self.stats.skipped_files.append(
                    f"{self.path}: format version {self.segment.header['format']} is newer "
                    f"than this analyzer reads ({FORMAT_MAJOR}); upgrade memtrail")
                self.refused = True
                return None
        if self.segment is None:
            self.stats.skipped_files.append(f"{self.path}: not a memtrail log (no memtrail "
                                            "header)")
            self.refused = True
            return None
        return rec


def _skim(path: str, when: float, stats: ReadStats) -> Iterator[Record]:
    """One segment's records with everything a later keyframe at or before `when` restates
    left out. Lines since the last such keyframe are held (at most one keyframe interval's
    worth) until the next keyframe or the first tick after `when` settles their fate."""
    seg = _Segment(path, stats)
    held: List[bytes] = []  # lines since the current tick's `s` (or since the start)
    tick_start = 0  # index in `held` of the last `s` line
    seeking = True
    for raw in segment_lines(path, stats):
        if seeking:
            head = raw[:2]
            if head == b"s ":
                t = _tick_time(raw)
                if t is not None and t > when:
                    seeking = False  # the answer lies in what is held: give it all
                    for line in held:
                        rec = seg.record(line)
                        if rec is not None:
                            yield rec
                        if seg.refused:
                            return
                    held = []
                else:
                    tick_start = len(held)
            elif head == b"K " and tick_start < len(held) and held[tick_start][:2] == b"s ":
                t = _tick_time(raw)
                if t is not None and t <= when:
                    # A keyframe at or before `when`: what came before its tick is needed
                    # only for the state a keyframe does not repeat.
                    for line in held[:tick_start]:
                        if line[:2] not in _RESTATED:
                            rec = seg.record(line)
                            if rec is not None:
                                yield rec
                            if seg.refused:
                                return
                    del held[:tick_start]
                    tick_start = 0
            if seeking:
                held.append(raw)
                if seg.segment is None and len(held) == 1:
                    # the header comes first: parse it now, so a foreign file stops here
                    rec = seg.record(raw)
                    held.pop()
                    if rec is not None:
                        yield rec
                    if seg.refused:
                        return
                continue
        rec = seg.record(raw)
        if rec is not None:
            yield rec
        if seg.refused:
            return
    for line in held:
        rec = seg.record(line)
        if rec is not None:
            yield rec
        if seg.refused:
            return


def _whole(path: str, stats: ReadStats) -> Iterator[Record]:
    seg = _Segment(path, stats)
    for raw in segment_lines(path, stats):
        rec = seg.record(raw)
        if rec is not None:
            yield rec
        if seg.refused:
            return


def records_from(paths: Sequence[str] | str, when: float,
                 stats: Optional[ReadStats] = None) -> Iterator[Record]:
    """The records that rebuild a recording's state at `when`, and every one after.

    The segment holding `when`, skimmed up to its last keyframe at or before `when` (only
    records a keyframe does not repeat), then everything to the end of the recording. The
    first `s` record is the tick a replay starts from: at or before `when`, unless `when` is
    before the recording. Raises `reader.LogError` for a path that does not exist.
    """
    if isinstance(paths, str):
        paths = [paths]
    stats = stats if stats is not None else ReadStats()
    starts = segment_starts(paths)
    first = pick_segment(starts, when)
    for i, (path, _start) in enumerate(starts[first:]):
        yield from (_skim(path, when, stats) if i == 0 else _whole(path, stats))


def keyframes(path: str) -> List[Tuple[float, int]]:
    """(time, byte offset of its `s` line) of every keyframe tick of one segment, offsets in
    the uncompressed text: an index a viewer can build once and bisect on later jumps."""
    out: List[Tuple[float, int]] = []
    offset = 0
    tick: Optional[Tuple[float, int]] = None
    try:
        with open_segment(path) as fh:
            for raw in fh:
                head = raw[:2]
                if head == b"s ":
                    t = _tick_time(raw)
                    tick = (t, offset) if t is not None else None
                elif head == b"K " and tick is not None:
                    out.append(tick)
                    tick = None
                offset += len(raw)
    except (OSError, EOFError):  # a cut or corrupt file: the keyframes before the cut
        pass
    return out


def ticks_from(paths: Sequence[str] | str, when: float, stats: Optional[ReadStats] = None,
               run: Optional[Run] = None) -> Iterator[Tick]:
    """Ticks from the last keyframe at or before `when` to the end of the recording (the model's
    live tables, as `model.replay` gives them). `run` only sums what was replayed."""
    rp = Replayer(run)
    started = False
    for rec in records_from(paths, when, stats):
        if not started and rec.type == "s":
            started = True
            rp.discard_pending()  # exits and events of the skimmed part belong to no tick
        tick = rp.feed(rec)
        if tick is not None:
            yield tick
    tick = rp.finish()
    if tick is not None:
        yield tick
