"""Read a long recording on two cores: a forked child parses the segments while the parent
replays them.

A week of log is ten million lines. Parsing them (gunzip, split, ints) is about a fifth of a
report's time and needs nothing from the replay, so on a machine with a second core a child
process does it ahead of the model and hands over what `reader.read_packed` would give, as
marshal frames through a pipe: a tick's packed lines stay a list of int tuples, a record
becomes (type, time, fields, obj), and unpacking that in C costs the parent a fraction of
parsing it.

The model's replay also hands the child its reader of `s` lines, and the child sends the
usual `s` line as its figures (`reader.Figures`), leaving the replay only their checks.

The parent gets exactly the items and the ReadStats an in-process read gives, those figures
aside (tests compare the items, and the replays, on hostile logs). If the child cannot
start or dies (killed, out of memory), the parent reads the rest itself from where the child
stopped: slower, never different.

Only the analyzer does this: the sampler never forks. No child where there is no fork
(Windows), under PyPy, on one CPU, for a log too small to pay for the fork, or with
MEMTRAIL_READ_AHEAD=0; MEMTRAIL_READ_AHEAD=1 forces one (tests use it on small logs).
"""

from __future__ import annotations

import marshal
import os
import signal
import struct
import sys
from typing import IO, Callable, Iterator, List, Optional, Sequence

from memtrail.reader import (
    Figures,
    Packed,
    ReadStats,
    Record,
    Segment,
    _header_record,
    _records_of,
    segments,
)

# The model's reader of `s` lines under a header at a time (model.system_reader): the
# figures of a line (or None: not the usual line), or None for a header the model won't apply
SystemReader = Callable[[Segment, float], Optional[Callable[[List[str]], Optional[dict]]]]

MIN_BYTES = 4 << 20  # below this much log (on disk), the fork costs more than it saves
CHUNK_LINES = 4096  # lines per frame: big enough to amortise a frame, small enough to stream
_FRAME = struct.Struct("<cI")


def wanted(seg_paths: Sequence[str], env: Optional[dict] = None,
           implementation: str = sys.implementation.name) -> bool:
    """Whether reading these segments ahead in a child is worth it here. Under PyPy it is
    not: its JIT parses a line quicker than its marshal hands one over (a day's report
    2.3 s alone, 2.9 s with a child, and more memory)."""
    env = os.environ if env is None else env
    choice = env.get("MEMTRAIL_READ_AHEAD", "")
    if choice == "0" or not hasattr(os, "fork"):
        return False
    if choice == "1":
        return True
    if implementation != "cpython":
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    if cpus < 2:
        return False
    total = 0
    for path in seg_paths:
        try:
            total += os.stat(path).st_size
        except OSError:
            continue
        if total >= MIN_BYTES:
            return True
    return False


def _send(out: IO[bytes], kind: bytes, payload: bytes) -> None:
    out.write(_FRAME.pack(kind, len(payload)))
    out.write(payload)


def _child(fd: int, seg_paths: Sequence[str], packed: bool,
           system: Optional[SystemReader]) -> None:
    """Frames: b"C" a chunk of items (marshal), b"S" the end of one segment file with its
    ReadStats.

    An item is a list of packed lines, a record as (type, time, fields, obj), or an `s`
    record's figures as ("s", time, None, figures): worked out here (the model's own
    function) when the line is the usual one and the model reads it under the plan of the
    record's own segment, i.e. it applied that segment's header (`system` says whether it
    will); the model then only checks them against each other."""
    plan_seg: Optional[Segment] = None  # the segment whose header the model applies last
    figures = None
    with os.fdopen(fd, "wb", buffering=1 << 16) as out:
        for path in seg_paths:
            st = ReadStats()
            chunk: list = []
            lines = 0
            for item in _records_of(path, st, packed):
                if type(item) is list:
                    lines += len(item)
                    chunk.append(item)
                else:
                    lines += 1
                    rtype = item.type
                    values = None
                    if rtype == "s":
                        if figures is not None and item.segment is plan_seg:
                            values = figures(item.fields)
                    elif rtype == "H" and system is not None:
                        reads = system(item.segment, item.time)
                        if reads is not None:
                            plan_seg, figures = item.segment, reads
                    chunk.append(("s", item.time, None, values) if values is not None
                                 else (rtype, item.time, item.fields, item.obj))
                if lines >= CHUNK_LINES:
                    _send_chunk(out, chunk)
                    chunk, lines = [], 0
            if chunk:
                _send_chunk(out, chunk)
            _send(out, b"S", marshal.dumps(vars(st)))


def _send_chunk(out: IO[bytes], chunk: list) -> None:
    # Everything a record holds is marshal's (a JSON object's depth is json's own recursion
    # limit, below marshal's); were anything refused, the child would end and the parent
    # read on by itself
    _send(out, b"C", marshal.dumps(chunk))


def _start(seg_paths: Sequence[str], packed: bool,
           system: Optional[SystemReader]) -> Optional[tuple]:
    try:
        rfd, wfd = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(rfd)
        os.close(wfd)
        return None
    if pid == 0:  # the child: never returns into the caller's code
        code = 1
        try:
            os.close(rfd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: gone, no traceback
            # Hold none of the command's stdio: whoever reads its output (a pipe, a CI log)
            # sees the end when the command ends, whatever the child is doing.
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            _child(wfd, seg_paths, packed, system)
            code = 0
        except BaseException:  # noqa: BLE001 - the parent reads on by itself
            pass
        finally:
            os._exit(code)  # no atexit, no flush of the parent's buffered output
    os.close(wfd)
    return pid, os.fdopen(rfd, "rb", buffering=1 << 16)


def _frame(src: IO[bytes]) -> Optional[tuple]:
    head = src.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    kind, size = _FRAME.unpack(head)
    payload = src.read(size)
    if len(payload) < size:
        return None
    return kind, payload


def _stop(pid: int, src: IO[bytes]) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    src.close()
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass


def read_segments(seg_paths: Sequence[str], stats: ReadStats, packed: bool,
                  system: Optional[SystemReader] = None) -> Iterator[Packed]:
    """`_records_of` over each segment file in turn, parsed in a child when one starts (with
    `system`, the usual `s` records come as `Figures`)."""
    started = _start(seg_paths, packed, system)
    done_files = 0
    given = 0  # items of the current file given out
    last_len = 0  # the length of the last one, when it was a list of packed lines
    if started is not None:
        pid, src = started
        try:
            segment = None
            while done_files < len(seg_paths):
                frame = _frame(src)
                if frame is None:
                    break  # the child died: read on here
                kind, payload = frame
                if kind == b"S":
                    stats.add(ReadStats(**marshal.loads(payload)))
                    done_files += 1
                    given = last_len = 0
                    segment = None
                    continue
                if kind != b"C":
                    break  # not a frame of ours: read on here
                try:
                    items = marshal.loads(payload)
                except (EOFError, ValueError, TypeError):  # a torn frame: read on here
                    break
                path = seg_paths[done_files]
                for item in items:
                    if type(item) is list:
                        given += 1
                        last_len = len(item)
                        yield item
                        continue
                    rtype, time, fields, obj = item
                    if fields is None:
                        rec = Figures(rtype, time, [], obj, segment)
                    elif rtype == "H":
                        rec = _header_record(time, fields, obj, path)
                        segment = rec.segment
                    else:
                        rec = Record(rtype, time, fields, obj, segment)
                    given += 1
                    last_len = 0
                    yield rec
        finally:
            _stop(pid, src)
    for index in range(done_files, len(seg_paths)):
        yield from _rest(seg_paths[index], stats, packed, given, last_len)
        given = last_len = 0


def _rest(path: str, stats: ReadStats, packed: bool, skip: int,
          last_len: int) -> Iterator[Packed]:
    """One file read here, without its first `skip` items (the child gave them). A live
    file may have grown since: the last list given may have more lines now."""
    st = ReadStats()
    try:
        for n, item in enumerate(_records_of(path, st, packed), 1):
            if n < skip:
                continue
            if n == skip:
                if type(item) is list and len(item) > last_len:
                    yield item[last_len:]
                continue
            yield item
    finally:
        stats.add(st)


def read_packed(paths: Sequence[str] | str, stats: Optional[ReadStats] = None,
                system: Optional[SystemReader] = None) -> Iterator[Packed]:
    """`reader.read_packed`, each path's segments parsed ahead in a child when `wanted`, and
    with `system` (the model's) the usual `s` records as `Figures`."""
    if isinstance(paths, str):
        paths = [paths]
    stats = stats if stats is not None else ReadStats()
    for path in paths:
        seg_paths = segments(path)
        if wanted(seg_paths):
            yield from read_segments(seg_paths, stats, True, system)
        else:
            for seg_path in seg_paths:
                yield from _records_of(seg_path, stats, True)


__all__: List[str] = ["read_packed", "read_segments", "wanted"]
