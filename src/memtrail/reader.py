"""Stream records out of memtrail logs (docs/format.md), whatever state the files are in.

A reader is what people run a week after an incident, on a log that may have been cut by
SIGKILL, a full disk or a half-finished upload. So it never raises on content: a torn last line,
an unparseable line, a truncated gzip member or a foreign file is counted in `ReadStats` and
skipped, and the caller reports the counts. Memory stays flat: files are read line by line.

Logs also travel as CI artifacts, so a log directory may be hostile. `open_segment` is the only
way any command opens a segment: it opens without blocking and reads only regular files (a FIFO,
a device, a directory or a symlink to one with a segment's name is skipped with its reason, so
nothing hangs and /dev/zero is never read), and the `SegmentFile` it returns reads a line at most
MAX_LINE bytes at a time (a longer line is counted and skipped as it streams, never buffered),
stops a compressed file that inflates beyond MAX_RATIO times its size (a gzip bomb), and turns a
corrupt gzip's `zlib.error` into an OSError every caller already catches.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import stat
import zlib
from dataclasses import dataclass, field
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

FORMAT_MAJOR = 1
MAX_LINE = 1 << 20  # the longest line read (the sampler's longest is a few KiB)
MAX_RATIO = 200  # a gzip segment inflating more than this many times its size is refused ...
RATIO_FROM = 2 << 20  # ... once this much came out (real segments inflate 4-20x)
CHUNK = 1 << 18  # bytes read at a time by SegmentFile.lines
SEGMENT_RE = re.compile(r"^memtrail-\d{8}T\d{6}Z-\d{3}\.log(\.gz)?$")

# The v1 positional fields after `time`, used when a header lacks a name (docs/format.md).
V1_FIELDS: Dict[str, Tuple[str, ...]] = {
    "s": (
        "mem_total mem_free mem_available buffers cached shmem slab sreclaimable sunreclaim "
        "swap_total swap_free committed_as unevictable mlocked anon_pages page_tables "
        "kernel_stack hugepages_total hugepages_free hugepage_size oom_kill pgmajfault "
        "pgscan_kswapd pgscan_direct pgsteal_kswapd pgsteal_direct pswpin pswpout allocstall "
        "psi_some_us psi_full_us nprocs tick_cpu_us tick_wall_us interval_ms"
    ).split(),
    "K": ("nprocs", "ncgroups"),
    "P": ("pid", "start", "ppid", "uid"),
    "p": ("pid", "rss", "shared"),
    "X": ("pid",),
    "d": ("pid", "rss_anon", "rss_file", "rss_shmem", "swap", "locked"),
    "D": ("pid", "pss", "pss_anon", "pss_file", "pss_shmem", "swap", "swap_pss", "rss"),
    "C": ("cgid",),
    "m": ("cgid", "anon", "file", "shmem", "kernel", "sock"),
    "c": ("cgid", "current", "peak", "oom", "oom_kill", "psi_some_us", "psi_full_us"),
    "G": ("cgid",),
    "E": ("kind",),
}


class LogError(Exception):
    """An input that cannot be read at all (missing path, not a memtrail log): one clear line."""


@dataclass
class ReadStats:
    """What the reader skipped, so a report can say so instead of silently lying."""

    files: int = 0
    lines: int = 0
    torn: int = 0  # final lines without a newline (a crash or full disk mid-write)
    long: int = 0  # lines longer than MAX_LINE, skipped unread
    bad: int = 0  # lines that did not parse
    unknown: int = 0  # record types this reader does not know (newer writer): skipped
    skipped_files: List[str] = field(default_factory=list)  # "path: reason"
    truncated_files: List[str] = field(default_factory=list)  # compressed files cut short

    def add(self, other: ReadStats) -> None:
        """Count another read's lines and problems into these: a recording read in parts
        (one group of a fleet, one segment parsed by readahead's child)."""
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(mine, list):
                mine.extend(value)
            else:
                setattr(self, name, mine + value)

    @property
    def problems(self) -> int:
        return self.torn + self.bad + self.long + len(self.skipped_files) \
            + len(self.truncated_files)

    @property
    def unread_files(self) -> int:
        """Files that could not be read whole: what they covered is unknown."""
        return len(self.skipped_files) + len(self.truncated_files)

    def summary(self) -> str:
        parts = [f"{self.files} file(s), {self.lines} line(s)"]
        if self.torn:
            parts.append(f"{self.torn} torn line(s) skipped")
        if self.bad:
            parts.append(f"{self.bad} unparseable line(s) skipped")
        if self.long:
            parts.append(f"{self.long} line(s) over {MAX_LINE >> 20} MiB skipped")
        if self.skipped_files:
            parts.append(f"{len(self.skipped_files)} file(s) skipped")
        if self.truncated_files:
            parts.append(f"{len(self.truncated_files)} truncated compressed file(s)")
        return ", ".join(parts)


@dataclass
class Segment:
    """One segment file and what its header says."""

    path: str
    header: dict
    time: float
    fields: Dict[str, Tuple[str, ...]]
    bad_header: int = 0  # header values of the wrong type, read as absent (a data problem)
    _index: Dict[Tuple[str, str], int] = field(default_factory=dict, repr=False)

    def index(self, rtype: str, name: str) -> Optional[int]:
        """Position of field `name` in records of `rtype` (0 = first field after time)."""
        key = (rtype, name)
        idx = self._index.get(key, -2)
        if idx == -2:
            names = self.fields.get(rtype) or V1_FIELDS.get(rtype, ())
            idx = names.index(name) if name in names else -1
            if idx == -1 and rtype in V1_FIELDS and name in V1_FIELDS[rtype]:
                idx = V1_FIELDS[rtype].index(name)
            self._index[key] = idx
        return None if idx < 0 else idx

    @property
    def host(self) -> str:
        return str(self.header.get("host", "?"))


class Record:
    """One parsed line. `fields` are the raw tokens after the time; `obj` the trailing JSON."""

    __slots__ = ("type", "time", "fields", "obj", "segment")

    def __init__(self, rtype: str, time: float, fields: List[str], obj: Optional[dict],
                 segment: Segment) -> None:
        self.type = rtype
        self.time = time
        self.fields = fields
        self.obj = obj
        self.segment = segment

    def get(self, name: str) -> Optional[str]:
        idx = self.segment.index(self.type, name)
        if idx is None or idx >= len(self.fields):
            return None
        return self.fields[idx]

    def int(self, name: str) -> Optional[int]:
        """The field as an integer, or None when absent, written as `-`, or not a figure any
        kernel writes (`1_000`, or digits past 2**63: a hostile log's 4000-digit value would
        otherwise overflow the views' float arithmetic)."""
        raw = self.get(name)
        if raw is None or raw == "-" or len(raw) > 20 or "_" in raw:
            return None
        try:
            value = int(raw)
        except ValueError:
            return None
        return value if -INT_LIMIT < value < INT_LIMIT else None

    def __repr__(self) -> str:  # for test failures
        return f"Record({self.type!r}, {self.time}, {self.fields!r}, {self.obj!r})"


class Figures(Record):
    """An `s` record parsed ahead by readahead's child: `obj` holds the figures the model's
    `system_figures` gives for its fields under its segment's plan (a new dict each), and
    `fields` is empty. Only the model's replay of `readahead.read_packed` meets one."""

    __slots__ = ()


def is_segment_name(name: str) -> bool:
    return bool(SEGMENT_RE.match(name))


def segments(path: str) -> List[str]:
    """The segment files a path stands for, oldest first.

    A directory gives its memtrail segments (a `.log` wins over a `.log.gz` of the same name:
    that pair only exists when compression was interrupted); a file gives itself.
    """
    if os.path.isdir(path):
        try:
            names = os.listdir(path)
        except OSError as exc:
            raise LogError(f"{path}: cannot list directory: {exc.strerror}") from None
        plain = {n for n in names if n.endswith(".log") and is_segment_name(n)}
        chosen = sorted(
            n for n in names
            if is_segment_name(n) and not (n.endswith(".gz") and n[:-3] in plain)
        )
        return [os.path.join(path, n) for n in chosen]
    if os.path.exists(path):
        return [path]
    raise LogError(f"{path}: no such file or directory")


class SegmentError(OSError):
    """A segment that is not read (not a regular file, a gzip bomb, corrupt data): `strerror`
    says why in a few words, for `ReadStats` and one-line errors."""


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISSOCK, "a socket"))


class SegmentFile:
    """A segment's (gunzipped) bytes with bounded reads: see the module docstring.

    `readline()` and iteration give complete or final lines of at most MAX_LINE bytes; a
    longer line is skipped and counted in `long` (and in the `stats` given to open_segment).
    """

    def __init__(self, raw: IO[bytes], path: str, stats: Optional[ReadStats]) -> None:
        self.raw = raw
        self.path = path
        self.stats = stats
        self.long = 0
        self.tail = b""  # after lines(): a final line that had no newline (a torn write)
        self.out = 0  # bytes given out (inflated, for a gzip)
        self.compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        self.fh: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if self.compressed else raw

    def _guard(self, n: int) -> None:
        self.out += n
        if self.compressed and self.out > RATIO_FROM \
                and self.out > MAX_RATIO * max(self.raw.tell(), 1):
            raise SegmentError(errno.EFBIG, f"inflates over {MAX_RATIO}x its size "
                                            "(a gzip bomb, not a log): not read further")

    def read(self, size: int = -1, whole: bool = True) -> bytes:
        """Bytes as they come (for followers that split lines themselves); `size` bounds it.
        `whole=False` makes one underlying read at most (read1): what inflated before a cut
        gzip's end is then given out before the EOFError, not lost with it."""
        try:
            size = size if size >= 0 else MAX_LINE
            data = self.fh.read(size) if whole else self.fh.read1(size)
        except zlib.error as exc:
            raise SegmentError(errno.EIO, f"corrupt compressed data ({exc})") from None
        self._guard(len(data))
        return data

    def readline(self) -> bytes:
        try:
            while True:
                line = self.fh.readline(MAX_LINE)
                self._guard(len(line))
                if len(line) < MAX_LINE or line.endswith(b"\n"):
                    return line
                # Longer than MAX_LINE: skip the rest of it as it streams, keep nothing.
                while line and not line.endswith(b"\n"):
                    line = self.fh.readline(MAX_LINE)
                    self._guard(len(line))
                self._count_long()
                if not line:
                    return b""
        except zlib.error as exc:
            raise SegmentError(errno.EIO, f"corrupt compressed data ({exc})") from None

    def chunks(self) -> Iterator[bytes]:
        """Runs of complete lines, each ending with a newline, read CHUNK bytes at a time: the
        fast way through a whole segment (a week of log is ten million lines; `readline` costs
        a call and a bomb check per line, this costs them per chunk). A final line with no
        newline is left in `tail` (a torn write) rather than given out; a line that grows past
        MAX_LINE before its newline is skipped as it streams and counted, never held whole."""
        carry = b""
        skipping = False  # inside a line longer than MAX_LINE: drop up to its newline
        self.tail = b""
        while True:
            chunk = self.read(CHUNK, whole=False)
            if not chunk:
                break
            if skipping:
                cut = chunk.find(b"\n")
                if cut < 0:
                    continue
                chunk = chunk[cut + 1:]
                skipping = False
                self._count_long()
            if carry:
                chunk = carry + chunk
            cut = chunk.rfind(b"\n") + 1
            carry = chunk[cut:]
            if len(carry) >= MAX_LINE:
                carry, skipping = b"", True
            if cut:
                yield chunk[:cut]
        if skipping:
            self._count_long()
        self.tail = carry

    def lines(self) -> Iterator[bytes]:
        """The complete lines of `chunks()`, without their newline; a complete line over
        MAX_LINE is skipped and counted too, like `readline` does."""
        for chunk in self.chunks():
            parts = chunk.split(b"\n")
            parts.pop()  # the empty rest after the chunk's last newline
            if max(map(len, parts)) >= MAX_LINE:
                for line in parts:
                    if len(line) >= MAX_LINE:
                        self._count_long()
                parts = [line for line in parts if len(line) < MAX_LINE]
            yield from parts

    def _count_long(self) -> None:
        self.long += 1
        if self.stats is not None:
            self.stats.long += 1
            self.stats.lines += 1

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def close(self) -> None:
        try:
            self.fh.close()
        finally:
            self.raw.close()

    def __enter__(self) -> SegmentFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_segment(path: str, stats: Optional[ReadStats] = None) -> SegmentFile:
    """A segment's bytes, gunzipped when the file is gzip (by its magic, not its name).

    Opened with O_NONBLOCK and checked with fstat before anything is read: only a regular file
    is read; anything else raises SegmentError saying what it is (a FIFO would block forever,
    /dev/zero never ends)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) \
        | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise SegmentError(errno.EINVAL, f"{kind}, not a regular file: not read")
        raw = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    try:
        return SegmentFile(raw, path, stats)
    except BaseException:
        raw.close()
        raise


def _no_constant(_name: str) -> None:
    """NaN and Infinity in a record's JSON are read as null (absent): every view does
    arithmetic on what it reads, and a NaN passes every comparison as false."""
    return None


def _finite_or_none(text: str) -> Optional[float]:
    value = float(text)  # 1e999 is inf: absent too
    return value if value - value == 0.0 else None


INT_BOUND = 1 << 64


def _bounded_int_or_none(text: str) -> Optional[int]:
    """An integer past 64 bits is read as null (absent) too: no count, size or time the
    sampler writes comes near it, and 10**400 overflows the float() a view makes of it."""
    value = int(text)  # past Python's 4300-digit limit: ValueError, a malformed line
    return value if -INT_BOUND <= value <= INT_BOUND else None


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_or_none,
                            parse_int=_bounded_int_or_none)


def decode_json(text: Union[str, bytes]) -> Any:
    """The one JSON decoder for log lines (timeline.py reads lines its own way, with it too)."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")  # the sampler writes JSON escapes, never UTF-8
    return _DECODER.decode(text)


def finite_float(raw: Union[str, bytes]) -> float:
    """A time or size from a log line: ValueError for anything but a finite number (`nan`,
    `inf` and `1e999` parse as floats, and would pass every later check as false)."""
    value = float(raw)
    if value - value != 0.0:
        raise ValueError("not a finite number")
    return value


def _split(line: str) -> Tuple[str, float, List[str], Optional[dict]]:
    """Parse one complete line; raises ValueError on anything malformed."""
    brace = line.find(" {")
    if brace >= 0:
        head, tail = line[:brace], line[brace + 1:]
        try:
            obj = decode_json(tail)
        except RecursionError:  # `[[[[...` nested a million deep
            raise ValueError("trailing JSON nested too deep") from None
        if not isinstance(obj, dict):
            raise ValueError("trailing JSON is not an object")
    else:
        head, obj = line, None
    parts = head.split(" ")
    if len(parts) < 2 or not parts[0] or not parts[0][0].isalpha():
        raise ValueError("no record type and time")
    return parts[0], finite_float(parts[1]), parts[2:], obj


KNOWN_TYPES = frozenset("sKPpXdDCcmGbEZ")
INT_LIMIT = 1 << 63  # no figure in a log is larger (Record.int)
# What read_packed gives: a record, or a list of packed `p` and `d` lines (tuples of 3 and 6)
Packed = Union[Record, List[Tuple[int, ...]]]
NAN = float("nan")


def segment_lines(path: str, stats: ReadStats) -> Iterator[bytes]:
    """The complete lines of one segment file (without newlines), counting in `stats` what
    cannot be read: an unopenable or corrupt file, a cut gzip, a torn last line."""
    try:
        fh = open_segment(path, stats)
    except OSError as exc:
        stats.skipped_files.append(f"{path}: {exc.strerror or exc}")
        return
    stats.files += 1
    with fh:
        try:
            yield from fh.lines()
        except SegmentError as exc:  # corrupt gzip data, a gzip bomb
            stats.skipped_files.append(f"{path}: {exc.strerror}")
            return
        except (EOFError, OSError) as exc:  # a truncated gzip
            stats.truncated_files.append(f"{path}: {exc}")
            return
        if fh.tail:  # only the last line can lack its newline: torn
            stats.lines += 1
            stats.torn += 1


def _records_of(path: str, stats: ReadStats, packed: bool = False) -> Iterator[Packed]:
    segment: Optional[Segment] = None
    known = KNOWN_TYPES
    tok = None  # packed: the time of the last `s` line as written, when `p` lines pack
    std_p = False  # packed: this segment's `p` layout is pid, rss, shared
    std_d = False  # packed: its `d` layout is V1's (pid and five sizes)
    taken = 0  # lines given out packed (counted in stats.lines at the end)
    batch: List[Tuple[int, ...]] = []  # packed lines in a row, given out as one list
    try:
        for raw in segment_lines(path, stats):
            if tok is not None:
                head = raw[:2]
                if head == b"p ":
                    parts = raw.split(b" ")
                    if len(parts) == 5 and parts[1] == tok:
                        try:
                            shared = parts[4]
                            batch.append((int(parts[2]), int(parts[3]),
                                          int(shared) if shared != b"-" else 0))
                            continue
                        except ValueError:
                            pass  # the model decides what a bad number is: the record
                elif head == b"d " and std_d:
                    parts = raw.split(b" ")
                    if len(parts) == 8 and parts[1] == tok:
                        try:
                            batch.append(tuple(map(int, parts[2:])))
                            continue
                        except ValueError:
                            pass  # a `-` (not known) or worse: the record
            if batch:
                taken += len(batch)
                yield batch
                batch = []
            text = raw.decode("ascii", "replace")
            if segment is not None and " {" not in text:
                # The common line (`s`, `p`, `d`: no JSON): parse_line's rules, inlined.
                parts = text.split(" ")
                rtype = parts[0]
                if rtype in known and len(parts) > 1:
                    stats.lines += 1
                    try:
                        time = float(parts[1])
                    except ValueError:
                        time = NAN
                    if time - time == 0.0:  # not nan, not infinite
                        if rtype == "s" and packed:
                            tok = parts[1].encode() if std_p else None
                        yield Record(rtype, time, parts[2:], None, segment)
                    else:
                        stats.bad += 1
                        if rtype == "s":
                            tok = None
                    continue
            rec = parse_line(raw, path, segment, stats)
            if rec is not None:
                if rec.type == "H":
                    segment = rec.segment
                    tok = None
                    std_p = segment.index("p", "rss") == 1 and segment.index("p", "shared") == 2
                    std_d = all(segment.index("d", name) == i
                                for i, name in enumerate(V1_FIELDS["d"]))
                    if segment.header["format"] > FORMAT_MAJOR:
                        stats.skipped_files.append(
                            f"{path}: format version {segment.header['format']} is newer "
                            f"than this analyzer reads ({FORMAT_MAJOR}); upgrade memtrail")
                        return
                elif rec.type == "s":
                    tok = None
                yield rec
            elif raw[:2] == b"s ":
                tok = None
            if segment is None:
                stats.skipped_files.append(f"{path}: not a memtrail log (no memtrail header)")
                return
        if batch:
            taken += len(batch)
            yield batch
    finally:
        stats.lines += taken


_NUMBER = (int, float)
# The header keys readers use, and the JSON types they must have (docs/format.md). A key of
# another type is removed, so every reader can take `header.get(key)` as either absent or
# right: a `host` that is an object once made every view fail on hashing it.
HEADER_TYPES: Dict[str, Tuple[type, ...]] = {
    "sampler": (str,), "host": (str,), "boot_id": (str,), "kernel": (str,), "arch": (str,),
    "clock": (str,), "segment": (str,), "proc_root": (str,), "page_size": (int,),
    "clk_tck": (int,), "pid": (int,), "uid": (int,), "interval_s": _NUMBER, "mono": _NUMBER,
    "started": _NUMBER, "settings": (dict,), "fields": (dict,),
}


def _header_record(time: float, fields: List[str], obj: Optional[dict],
                   path: str) -> Record:
    header = obj or {}
    try:
        header["format"] = int(header.get("format", fields[1] if len(fields) > 1 else 1))
    except (TypeError, ValueError, OverflowError):
        raise ValueError("bad format version") from None
    bad = [key for key, types in HEADER_TYPES.items() if key in header and (
        not isinstance(header[key], types) or isinstance(header[key], bool))]
    for key in bad:
        del header[key]
    raw_fields = header.get("fields")
    names = {k: tuple(v) for k, v in raw_fields.items()
             if isinstance(v, list) and all(isinstance(n, str) for n in v)} \
        if isinstance(raw_fields, dict) else {}
    seg = Segment(path=path, header=header, time=time, fields=names, bad_header=len(bad))
    return Record("H", time, fields, header, seg)


def parse_line(raw: bytes, path: str, segment: Optional[Segment],
               stats: ReadStats) -> Optional[Record]:
    """The record of one complete line (with its newline), or None; counts what it skips.

    For readers that get lines one at a time (`memtrail tail -f`). Pass the segment of the
    last header seen; before any header only a header line gives a record, and other lines
    are not counted as bad: the caller reports the whole file as foreign instead.
    """
    stats.lines += 1
    try:
        rtype, time, fields, obj = _split(raw.decode("ascii", "replace").rstrip("\n"))
        if rtype == "H" and fields[:1] == ["memtrail"]:
            # A header opens a segment; a second one inside a file (concatenated segments)
            # opens the next.
            return _header_record(time, fields, obj, path)
    except ValueError:
        if segment is not None:
            stats.bad += 1
        return None
    if segment is None:
        return None
    if rtype not in KNOWN_TYPES:
        stats.unknown += 1
        return None
    return Record(rtype, time, fields, obj, segment)


def read_path(path: str, stats: Optional[ReadStats] = None) -> Iterator[Record]:
    """Every record of one path (directory, segment or .gz), oldest first."""
    stats = stats if stats is not None else ReadStats()
    for seg_path in segments(path):
        yield from _records_of(seg_path, stats)


def read(paths: Sequence[str] | str, stats: Optional[ReadStats] = None) -> Iterator[Record]:
    """Every record of several paths, one after another (call per path for separate runs)."""
    return _read(paths, stats, False)


def read_packed(paths: Sequence[str] | str,
                stats: Optional[ReadStats] = None) -> Iterator[Packed]:
    """`read`, with most `p` and `d` lines packed. A `(pid, rss_kib, shared_kib)` tuple of
    ints (`-` for shared given as 0) stands for a well-formed `p` line of the standard layout
    written at the same time, character for character, as the `s` line before it; a tuple
    `(pid, rss_anon, rss_file, rss_shmem, swap, locked)` (KiB, every one known) for such a
    `d` line. Such a line is valid exactly when that `s` line's time is, so the model can
    skip its checks. Packed lines in a row come as one list, in order: ten million `p` lines
    a week are then three ints each in a tick's list, not a decoded, split `Record` handed
    over one at a time (model.replay_records takes both); anything else is a `Record` as
    `read` gives it."""
    return _read(paths, stats, True)


def _read(paths: Sequence[str] | str, stats: Optional[ReadStats],
          packed: bool) -> Iterator[Packed]:
    if isinstance(paths, str):
        paths = [paths]
    stats = stats if stats is not None else ReadStats()
    for path in paths:
        for seg_path in segments(path):  # read_path's loop, one generator fewer per record
            yield from _records_of(seg_path, stats, packed)


def check_paths(paths: Iterable[str]) -> List[str]:
    """One-line errors for paths that cannot be read at all (for a CLI to print and exit 2)."""
    errors = []
    for path in paths:
        try:
            if not segments(path):
                errors.append(f"{path}: no memtrail segments (memtrail-*.log[.gz]) here")
        except LogError as exc:
            errors.append(str(exc))
    return errors
