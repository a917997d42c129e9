"""Sizes and durations for people: "3.1 GiB", "200M" on the command line, "1h 05m".

All units are binary (K = KiB = 1024), as in /proc/meminfo and systemd's `MemoryMax=`: a
memory limit written "2G" means 2 GiB everywhere in memtrail, "MB" included, so a number
copied from a unit file or from `free -h` means the same thing here.
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_MULT = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)


def fmt_bytes(n: Optional[float], signed: bool = False) -> str:
    """`3.1 GiB`, `512 MiB`, `0 B`; `+1.2 MiB` with signed=True; `-` for unknown."""
    if n is None:
        return "-"
    sign = ""
    if n < 0:
        sign, n = "-", -n
    elif signed:
        sign = "+"
    try:
        value = float(n)
    except (OverflowError, ValueError):  # a hostile log's figure of thousands of digits
        return "-"
    unit = 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{sign}{int(value)} B"
    if value >= 100:
        return f"{sign}{value:.0f} {_UNITS[unit]}"
    return f"{sign}{value:.1f} {_UNITS[unit]}"


def parse_size(text: str) -> int:
    """`200M`, `2GiB`, `1.5g`, `4096` (bytes) -> bytes. Raises ValueError with a clear text."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (try 512M, 2G, 1.5GiB)")
    return int(float(m.group(1)) * _MULT[m.group(2).lower()])


def parse_size_or_pct(text: str) -> Tuple[Optional[int], Optional[float]]:
    """`10%` -> (None, 10.0); `512M` -> (bytes, None)."""
    stripped = text.strip()
    if stripped.endswith("%"):
        try:
            pct = float(stripped[:-1])
        except ValueError:
            raise ValueError(f"not a percentage: {text!r}") from None
        if not 0 <= pct <= 100:
            raise ValueError(f"percentage out of range: {text!r}")
        return None, pct
    return parse_size(stripped), None


def fmt_duration(seconds: Optional[float]) -> str:
    """`45 s`, `12m 05s`, `3h 02m`, `2d 04h`."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if abs(seconds) < 10 and seconds != s:
        return f"{seconds:.1f} s"
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"
