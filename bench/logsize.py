"""Extrapolate a memtrail log's size per day (raw and gzip) from a short run at a fast tick.

Why a model rather than `bytes / seconds`: a short run is dominated by the segment's opening
keyframe, and a fast tick writes tick-driven lines (system sample, process changes) more often
than a 1 s tick would, while time-driven lines (status / PSS detail) follow the clock. So the
log is split by what drives each record, and each part is scaled to a day at a 1 s tick:
  tick-driven (s p X P c b E ...) in ticks that are not keyframes -> bytes per tick x 86400
  time-driven (d D)                                               -> bytes per second x 86400
  a periodic keyframe (its s/K/p/c/b lines)                       -> x 86400 / keyframe_s
  segment opening (header + identities P/C of the first keyframe) -> x segments per day
  the first PSS round's D lines (every member's first values)      -> once per run (left out)
  a later process's first D line (its first values)               -> with the tick-driven
A sampler writes a `D` line when a process's PSS moved, but its first round writes one for
every member of the largest programs, spread over as many ticks as its time budget needs
(several at 2000 processes). Counted as a rate, that one round became most of a modelled
day, so `D` lines before the first round's `pss` event are the start's, not the day's.
After it, a process's first `D` line comes with its arrival, as its `P` line does: the bench
replaces 1 % of a churning crowd every tick, 4 times a second at 0.25 s, so counted as a rate
those lines came 4 times as often as at the modelled 1 s tick (three quarters of the `D`
lines of the 2000-churning log of 2026-12-03 07:37 are a process's first).
Compression is measured the same way (gzip of each part, level 6 as zlib's default).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

DAY = 86400.0
TIME_DRIVEN = {"d", "D"}


@dataclass
class LogSize:
    ticks: int
    seconds: float
    tick_bytes: float  # tick-driven bytes per ordinary tick
    tick_gz: float
    time_bytes_per_s: float
    time_gz_per_s: float
    keyframe_bytes: int
    keyframe_gz: int
    opening_bytes: int
    opening_gz: int
    keyframe_s: float
    raw_per_day: float
    gz_per_day: float
    segments_per_day: float


def _gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6, mtime=0)) if data else 0


def analyze(
    log_dir: Path, rotate_size: int = 16 << 20, rotate_age_s: float = 3600.0, tick_s: float = 1.0
) -> LogSize | None:
    """Model one run's segments (plain .log only) in LOG_DIR; None without ticks."""
    segs = sorted(p for p in Path(log_dir).iterdir() if p.name.endswith(".log"))
    if not segs:
        return None
    header = b""
    opening: list[bytes] = []
    keyframe: list[bytes] = []
    ticks_lines: list[bytes] = []
    time_lines: list[bytes] = []
    times: list[float] = []
    keyframe_s = 300.0
    first_kf_time: bytes | None = None
    first_round_done = False  # the first PSS round's `pss` event seen
    figured: set[bytes] = set()  # pids with a D line already (their first values written)
    for seg in segs:
        groups: dict[bytes, list[bytes]] = {}  # a tick's time -> its lines, in log order
        with open(seg, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    continue
                parts = line.split(b" ", 2)
                if len(parts) < 2:
                    continue
                if parts[0] == b"H":
                    if not header:
                        header = line
                        try:
                            obj = json.loads(line[line.index(b"{") :])
                            keyframe_s = float(obj["settings"]["keyframe_s"])
                        except (ValueError, KeyError, TypeError):
                            pass
                    continue
                groups.setdefault(parts[1], []).append(line)
        for t, lines in groups.items():
            try:
                times.append(float(t))
            except ValueError:
                continue
            kinds = [ln.split(b" ", 1)[0].decode() for ln in lines]
            round_ends = any(k == "E" and ln.split(b" ", 3)[2:3] == [b"pss"]
                             for ln, k in zip(lines, kinds))
            if "K" in kinds:
                first_round_done = first_round_done or round_ends
                if first_kf_time is None:
                    first_kf_time = t
                    opening += [ln for ln, k in zip(lines, kinds) if k in ("P", "C", "E")]
                    keyframe += [ln for ln, k in zip(lines, kinds) if k not in ("P", "C", "E")]
                figured.update(ln.split(b" ", 3)[2] for ln, k in zip(lines, kinds) if k == "D")
                continue
            for ln, k in zip(lines, kinds):
                if k == "D":
                    pid = ln.split(b" ", 3)[2]
                    first = pid not in figured
                    figured.add(pid)
                    if not first_round_done:
                        continue  # the first round: once per run, not a rate
                    if first:  # a newcomer's first values: with its arrival, per tick
                        ticks_lines.append(ln)
                        continue
                if k in TIME_DRIVEN:
                    time_lines.append(ln)
                elif k != "Z":
                    ticks_lines.append(ln)
            first_round_done = first_round_done or round_ends
    n_ticks = sum(1 for ln in ticks_lines if ln.startswith(b"s "))
    if n_ticks == 0 or len(times) < 2:
        return None
    seconds = max(times) - min(times)
    tick_data, time_data = b"".join(ticks_lines), b"".join(time_lines)
    kf_data, open_data = b"".join(keyframe), header + b"".join(opening)
    tick_bytes = len(tick_data) / n_ticks
    tick_gz = _gz(tick_data) / n_ticks
    per_s = len(time_data) / seconds if seconds else 0.0
    per_s_gz = _gz(time_data) / seconds if seconds else 0.0
    kf_gz, open_gz = _gz(kf_data), _gz(open_data)
    ticks_day = DAY / tick_s
    kf_day = DAY / keyframe_s
    raw = tick_bytes * ticks_day + per_s * DAY + len(kf_data) * kf_day
    segs_day = max(1.0, raw / rotate_size, DAY / rotate_age_s)
    raw += len(open_data) * segs_day
    gz = tick_gz * ticks_day + per_s_gz * DAY + kf_gz * kf_day + open_gz * segs_day
    return LogSize(
        ticks=n_ticks,
        seconds=seconds,
        tick_bytes=tick_bytes,
        tick_gz=tick_gz,
        time_bytes_per_s=per_s,
        time_gz_per_s=per_s_gz,
        keyframe_bytes=len(kf_data),
        keyframe_gz=kf_gz,
        opening_bytes=len(open_data),
        opening_gz=open_gz,
        keyframe_s=keyframe_s,
        raw_per_day=raw,
        gz_per_day=gz,
        segments_per_day=segs_day,
    )


if __name__ == "__main__":
    import sys

    r = analyze(Path(sys.argv[1]))
    if r is None:
        sys.stderr.write("logsize: no ticks found\n")
        sys.exit(2)
    for k, v in r.__dict__.items():
        print(f"{k:18} {v:,.1f}" if isinstance(v, float) else f"{k:18} {v}")
