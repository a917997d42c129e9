#!/usr/bin/env python3
"""memtrail sampler: a fork-free memory recorder for Linux, in one standard-library file.

Copy this file to any Linux host and run `python3 -I -S sampler.py --dir /var/log/memtrail`.
It must keep recording exactly when memory runs out, which is when `ps`, `free` and shell
loops stall on fork. So it never starts a process (run as a script, it re-executes itself
once at start-up as an import of this file, see lean_reexec), imports everything before its
first tick, reads /proc through descriptors it keeps open, locks itself in memory, and writes
each tick with one writev(2) so a crash can only ever tear the last line. The log format is
docs/format.md (version 1); the analyzer (`memtrail report` and friends) reads it anywhere.

This file must not import from the rest of the memtrail package and must run on Python 3.8.

It also stays small in memory, because it is locked there: it imports only C modules and the
few pure-Python ones the interpreter has already loaded. `signal`, `socket`, `json`, `re`,
`argparse` and `ctypes` would cost about 4 MiB of resident memory between them (mostly `enum`
and the regular expression compiler), more than all the state for 2000 processes, so their C
cores are used directly (`_signal`, `_socket`, `_json`, `_ctypes`) and the flag parser, the
JSON writer and the text matching below are written out by hand.
"""

from __future__ import annotations

import _frozen_importlib_external  # already loaded: the importer's own file loader
import _signal  # `signal` without its enum layer: the same functions, signals as plain ints
import _socket  # `socket` without enum and selectors: a datagram socket and sendto are enough
import errno
import faulthandler
import itertools
import marshal  # built in: hands the compiled file to the re-executed image (lean_reexec)
import os
import resource
import select
import sys
import time
import zlib
from _operator import attrgetter, ne  # `operator` without its pure-Python layer

try:  # C JSON string codecs: exactly what json.dumps/json.loads use for strings
    from _json import encode_basestring_ascii as _json_str
    from _json import scanstring as _json_scan
except ImportError:  # PyPy, or a CPython built without the accelerator: the same functions
    from json import decoder as _json_decoder
    from json import encoder as _json_encoder
    _json_scan = getattr(_json_decoder, "py_scanstring", _json_decoder.scanstring)
    _json_str = getattr(_json_encoder, "py_encode_basestring_ascii",
                        _json_encoder.encode_basestring_ascii)

try:  # mlockall: ctypes' C core is enough (the ctypes package costs ~0.8 MiB more)
    import _ctypes
except ImportError:  # pragma: no cover - a Python built without ctypes still records
    _ctypes = None  # type: ignore

try:  # optional: systemd-python, when importable, sends notifications; the socket path is ours.
    from systemd import daemon as _sd_daemon  # type: ignore
except Exception:  # noqa: BLE001 - any failure means "not available"
    _sd_daemon = None

__version__ = "0.1.0"
FORMAT = 1

# ---------------------------------------------------------------------------------------------
# Field tables (docs/format.md). The header repeats them so every segment describes itself.

MEMINFO_KEYS = (
    (b"MemTotal", "mem_total"), (b"MemFree", "mem_free"), (b"MemAvailable", "mem_available"),
    (b"Buffers", "buffers"), (b"Cached", "cached"), (b"Shmem", "shmem"), (b"Slab", "slab"),
    (b"SReclaimable", "sreclaimable"), (b"SUnreclaim", "sunreclaim"),
    (b"SwapTotal", "swap_total"), (b"SwapFree", "swap_free"),
    (b"Committed_AS", "committed_as"), (b"Unevictable", "unevictable"),
    (b"Mlocked", "mlocked"), (b"AnonPages", "anon_pages"), (b"PageTables", "page_tables"),
    (b"KernelStack", "kernel_stack"), (b"HugePages_Total", "hugepages_total"),
    (b"HugePages_Free", "hugepages_free"), (b"Hugepagesize", "hugepage_size"),
)
# Kernel memory no field above names, added within format 1 (2026-12-02) at the end of the
# `s` line so older readers keep their positions: per-CPU allocations (4.14 on; removed memory
# cgroups the kernel has not freed yet pile up here), vmalloc (counted again from 5.3, 0 on
# 4.4-5.2), the zswap pool (5.19 on), and after them `zsmalloc`: /proc/vmstat's nr_zspages
# in KiB, the compressed pages of zram (swap or a disk in RAM) and of zswap's zsmalloc pool,
# which no meminfo field counts (4.8 on).
MEMINFO_LATE = ((b"Percpu", "percpu"), (b"VmallocUsed", "vmalloc_used"), (b"Zswap", "zswap"))
VMSTAT_KEYS = ("oom_kill", "pgmajfault", "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd",
               "pgsteal_direct", "pswpin", "pswpout", "allocstall")
FIELDS = {
    "s": [n for _k, n in MEMINFO_KEYS] + list(VMSTAT_KEYS) + [
        "psi_some_us", "psi_full_us", "nprocs", "tick_cpu_us", "tick_wall_us", "interval_ms"] + [
        n for _k, n in MEMINFO_LATE] + ["zsmalloc"],
    "K": ["nprocs", "ncgroups"],
    "P": ["pid", "start", "ppid", "uid"],
    "p": ["pid", "rss", "shared"],
    "X": ["pid"],
    "d": ["pid", "rss_anon", "rss_file", "rss_shmem", "swap", "locked"],
    "D": ["pid", "pss", "pss_anon", "pss_file", "pss_shmem", "swap", "swap_pss", "rss"],
    "C": ["cgid"],
    "m": ["cgid", "anon", "file", "shmem", "kernel", "sock"],
    "c": ["cgid", "current", "peak", "oom", "oom_kill", "psi_some_us", "psi_full_us"],
    "G": ["cgid"],
    "E": ["kind"],
}
STATUS_KEYS = (b"RssAnon", b"RssFile", b"RssShmem", b"VmSwap", b"VmLck")
SMAPS_KEYS = (b"Pss", b"Pss_Anon", b"Pss_File", b"Pss_Shmem", b"Swap", b"SwapPss")

PF_KTHREAD = 0x00200000
FD_RESERVE = 32  # descriptors never held for processes: the log, compression, periodic reads
# New pids looked at one by one rather than listing /proc: up to this many, plus a quarter of
# the known processes (a failed look is ~1.3 us, a thread's ~4.4; listing ~0.3-1.4 us a name
# plus the loop over the listing, measured at 2000 processes)
PROBE_MIN = 64
# A v2 cgroup none of whose tasks used any CPU since the last tick cannot have changed its
# processes' memory by itself, so their statm are not read that tick (Sampler.quiet_groups).
# Checked only in cgroups of QUIET_MIN processes or more (a check is a read of cpu.stat, which
# costs what a dozen statm reads do); every process is read anyway at every QUIET_EVERY-th
# tick, which bounds what only outsiders can change (docs/sampler.md lists it).
QUIET_MIN = 16
QUIET_EVERY = 10
QUIET_BACKOFF = 4  # a cgroup busy at this many checks in a row is checked every 4th tick only
OUTSIDE_HOLD_S = 3.0  # every process read this long after an outside counter moved
# /proc/vmstat counters of memory taken from or given to processes from outside them: reclaim
# (pgsteal_anon and pgsteal_file, 5.8 on, count what kswapd, direct, khugepaged and proactive
# reclaim take, each page once), swap, khugepaged filling a huge page, OOM kills. While one
# moves, every process is read at every tick.
OUTSIDE_KEYS = (b"pgsteal_anon", b"pgsteal_file", b"pswpin", b"pswpout", b"zswpin",
                b"zswpout", b"thp_collapse_alloc", b"oom_kill")
CMDLINE_MAX = 4096  # bytes of a command line kept
CMDLINE_READ = 1 << 16  # bytes read, so a secret is redacted before the cut
IDENT_MEMO = 32  # identity tails kept (Sampler.ident_memo), the oldest dropped
IDENT_MEMO_CMDLINE = 512  # ... of command lines no longer than this (bytes)
JOURNAL_IDS = {  # MESSAGE_ID values of our own, so `journalctl MESSAGE_ID=...` finds them
    "start": "6b3c1f0e2a9d4e5f8a7b6c5d4e3f2a10",
    "stop": "6b3c1f0e2a9d4e5f8a7b6c5d4e3f2a11",
    "oom_kill": "6b3c1f0e2a9d4e5f8a7b6c5d4e3f2a12",
    "trigger": "6b3c1f0e2a9d4e5f8a7b6c5d4e3f2a13",
}
S_INDEX = {name: i for i, name in enumerate(FIELDS["s"])}  # position in an `s` line's values
SIGNAL_NAMES = {_signal.SIGTERM: "SIGTERM", _signal.SIGINT: "SIGINT"}  # the stop reason

_ASCII_DIGITS = "0123456789"
_ASCII_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class Fatal(Exception):
    """A start-up problem reported as one clear line and a non-zero exit."""


def is_segment_name(name: str) -> bool:
    """`memtrail-YYYYMMDDTHHMMSSZ-NNN.log[.gz][.tmp]`: the only names the sampler manages."""
    digits = name[9:17] + name[18:24] + name[26:29]
    return (name[:9] == "memtrail-" and name[17:18] == "T" and name[24:26] == "Z-"
            and name[29:33] == ".log" and name[33:] in ("", ".gz", ".tmp", ".gz.tmp")
            and len(digits) == 17 and not digits.strip(_ASCII_DIGITS))


# ---------------------------------------------------------------------------------------------
# Settings: flags, each also from a MEMTRAIL_* environment variable (for an EnvironmentFile).

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
          "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}
_SECONDS = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


class BadValue(ValueError):
    """A setting's value is wrong; the message says what was expected."""


def _number_unit(text):
    """'1.5 GiB' -> ('1.5', 'gib'): digits, an optional fraction, optional letters; else None."""
    s = str(text).strip()
    i = 0
    while i < len(s) and (s[i].isdecimal() or s[i] == "."):
        i += 1
    number, unit = s[:i], s[i:].lstrip()
    whole, dot, fraction = number.partition(".")
    if not whole.isdecimal() or (dot and not fraction.isdecimal()):
        return None
    if unit and not (unit.isascii() and unit.isalpha()):
        return None
    return number, unit.lower()


def parse_size(text: str) -> int:
    """'100M', '1GiB', '512k', '4096' -> bytes."""
    found = _number_unit(text)
    if found is None or found[1] not in _UNITS:
        raise BadValue(f"not a size: {text!r} (examples: 4096, 512K, 100M, 2G)")
    return int(float(found[0]) * _UNITS[found[1]])


def parse_duration(text: str) -> float:
    """'0.5', '500ms', '30s', '10m', '1h', '7d' -> seconds."""
    found = _number_unit(text)
    if found is None or found[1] not in _SECONDS:
        raise BadValue(f"not a duration: {text!r} (examples: 0.5, 500ms, 30s, 10m, 1h, 7d)")
    return float(found[0]) * _SECONDS[found[1]]


def _positive(parse):
    def check(text):
        value = parse(text)
        if value <= 0:
            raise BadValue(f"must be more than 0: {text!r}")
        return value
    check.__name__ = parse.__name__
    return check


def _percent(text: str) -> float:
    try:
        value = float(str(text).rstrip("%"))
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise BadValue(f"not a percentage: {text!r}")
    return value


def _count(text: str) -> int:
    if not str(text).strip().isdigit():
        raise BadValue(f"not a whole number 0 or more: {text!r}")
    return int(text)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadValue(f"not a whole number: {text!r}") from None


# Trigger rules (`--trigger`): parsed with the other settings; what they do is in the
# "Triggers" section below.

_SIGNAL_NUMBERS = {name[3:]: getattr(_signal, name) for name in dir(_signal)
                   if name.startswith("SIG") and not name.startswith("SIG_")
                   and name not in ("SIGRTMIN", "SIGRTMAX")}
# Sent without --trigger-allow-kill: the three signals programs catch to dump their state (whose
# default action still ends a program that does not catch them: docs/triggers.md), the
# real-time signals (application-defined) and those whose default action is to do nothing.
# Everything else (HUP INT KILL TERM ABRT SEGV BUS FPE ILL TRAP SYS PIPE ALRM VTALRM PROF XCPU
# XFSZ STKFLT PWR IO STOP TSTP TTIN TTOU) ends, cores or stops its target by design.
_TRIGGER_SAFE = ("USR1", "USR2", "QUIT", "WINCH", "URG", "CONT", "CHLD", "CLD")


def parse_signal(text: str):
    """'USR2', 'SIGUSR2', 'usr2', 'RTMIN+3' -> (number, 'SIGUSR2', allowed without the flag)."""
    name = text.strip().upper()
    if name.startswith("SIG"):
        name = name[3:]
    for base, number, sign in (("RTMIN", _signal.SIGRTMIN, 1), ("RTMAX", _signal.SIGRTMAX, -1)):
        if name.startswith(base):
            offset = name[len(base) + 1:]
            if name == base:
                return number, "SIG" + name, True
            if name[len(base)] == "+-"[sign < 0] and offset.isdecimal() and offset.isascii() \
                    and int(offset) <= _signal.SIGRTMAX - _signal.SIGRTMIN:
                return number + sign * int(offset), "SIG" + name, True
    number = _SIGNAL_NUMBERS.get(name)
    if number is None:
        raise BadValue(f"unknown signal {text!r} (examples: USR2, QUIT, USR1)")
    return number, "SIG" + name, name in _TRIGGER_SAFE


class TriggerRule:
    """One `PROGRAM:CONDITION:SIGNAL` rule."""

    __slots__ = ("text", "program", "kind", "size_kib", "pct", "window_s", "signum",
                 "signame", "safe")

    def __init__(self, text: str) -> None:
        self.text = text
        parts = text.rsplit(":", 2)  # a program name may hold ':'; a condition or signal not
        if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
            raise BadValue(f"bad trigger {text!r}: expected PROGRAM:CONDITION:SIGNAL "
                           "(examples: nova-api:rss>1G:USR2, java:rss>80%:QUIT, *:low:USR2, "
                           "gunicorn:grow>300M/10m:USR1)")
        self.program, cond, sig = parts
        self.size_kib = self.pct = None
        self.window_s = 0.0
        try:
            self.signum, self.signame, self.safe = parse_signal(sig)
            self._condition(cond.strip())
        except BadValue as exc:
            raise BadValue(f"bad trigger {text!r}: {exc}") from None

    def _condition(self, cond: str) -> None:
        if cond.lower() == "low":
            self.kind = "low"
            return
        kind, sep, line = cond.partition(">")
        kind = kind.strip().lower()
        if not sep or kind not in ("rss", "grow"):
            raise BadValue(f"unknown condition {cond!r} (rss>SIZE, rss>PCT%, "
                           "grow>SIZE/DURATION or low)")
        self.kind = kind
        if kind == "grow":
            line, slash, window = line.partition("/")
            if not slash:
                raise BadValue("grow needs a window: grow>300M/10m")
            self.window_s = _positive(parse_duration)(window)
        if line.endswith("%"):
            self.pct = _percent(line)
            if not self.pct:
                raise BadValue(f"must be more than 0: {line!r}")
        else:
            self.size_kib = _positive(parse_size)(line) // 1024 or 1

    def line_kib(self, total_kib) -> int:
        """The line in KiB (a percentage is of MemTotal)."""
        if self.pct is None:
            return self.size_kib
        return int((total_kib or 0) * self.pct / 100)

    def __repr__(self) -> str:
        return f"TriggerRule({self.text!r})"


def parse_triggers(text: str) -> list:
    """One rule, or several separated by whitespace (MEMTRAIL_TRIGGER in an env file)."""
    return [TriggerRule(rule) for rule in str(text).split()]


def check_triggers(rules: list, allow_kill: bool) -> list:
    """Start-up checks that need every rule: a terminating signal without the flag, a `*`
    with no program named. A `*` stands for every program another rule names."""
    for rule in rules:
        if not rule.safe and not allow_kill:
            raise BadValue(f"trigger {rule.text!r}: {rule.signame} ends or stops a process "
                           "that does not catch it; refused without --trigger-allow-kill")
    if any(r.program == "*" for r in rules) and all(r.program == "*" for r in rules):
        raise BadValue("a '*' trigger stands for the programs the other --trigger rules "
                       "name, and none is named")
    return rules



# (flag, type, default, help). Environment: MEMTRAIL_ + flag in upper snake case.
OPTIONS = [
    ("--dir", str, None, "log directory (default: $LOGS_DIRECTORY, else ./memtrail-logs)"),
    ("--interval", _positive(parse_duration), 1.0, "seconds between ticks, fractions allowed"),
    ("--duration", parse_duration, 0.0, "stop after this long (0: run until signalled)"),
    ("--keyframe", _positive(parse_duration), 300.0, "seconds between full process keyframes"),
    ("--rss-delta", parse_size, 1 << 20,
     "write a process when its RSS moved by more than this size ..."),
    ("--rss-delta-pct", _percent, 2.0, "... or by more than this percentage, whichever is larger"),
    ("--top-n", _count, 20, "processes (largest RSS) whose /proc/PID/status detail is kept"),
    ("--status-every", _positive(parse_duration), 10.0, "seconds between status detail reads"),
    ("--pss-top-n", _count, 5, "processes whose PSS (smaps_rollup) is read"),
    ("--pss-programs", _count, 5, "largest programs whose every process gets PSS read"),
    ("--pss-every", _positive(parse_duration), 60.0, "seconds between PSS reads"),
    ("--pss-budget", _positive(parse_duration), 0.02, "most time PSS reads take per tick"),
    ("--pss-slow", _positive(parse_duration), 0.1,
     "a process whose PSS read takes (or would take) longer is skipped for a while"),
    ("--fast-interval", _positive(parse_duration), 0.1, "tick interval while in trouble"),
    ("--low-pct", _percent, 10.0, "trouble: MemAvailable below this % of MemTotal ..."),
    ("--psi-full-pct", _percent, 10.0, "... or PSI memory 'full' stall above this % of time"),
    ("--low-step", parse_size, 0, "a new MemAvailable low needs this drop (0: 1% of MemTotal)"),
    ("--slab-delta", parse_size, 64 << 20, "write top slab caches when Slab moves this much"),
    ("--slab-top-n", _count, 10, "slab caches written"),
    ("--cgroup-depth", _count, 3, "cgroup tree depth tracked (units, slices, containers)"),
    ("--cgroup-max", _count, 256, "most cgroups tracked"),
    ("--cgroup-stat-n", _count, 10,
     "largest cgroups whose make-up (memory.stat) is read at status ticks"),
    ("--cgroup-root", str, "", "memory cgroup hierarchy to track (default: found in mountinfo)"),
    ("--rotate-size", parse_size, 16 << 20, "start a new segment past this size"),
    ("--rotate-age", _positive(parse_duration), 3600.0, "start a new segment after this long"),
    ("--max-total", parse_size, 100 << 20, "delete the oldest segments beyond this total size"),
    ("--max-age", _positive(parse_duration), 7 * 86400.0, "delete segments older than this"),
    ("--fsync-every", parse_duration, 5.0, "seconds between fsyncs of the log (0: every tick)"),
    ("--proc-root", str, "/proc", "procfs to read (a fixture tree in tests)"),
    ("--kmsg", str, "/dev/kmsg", "kernel log to read OOM kills from"),
    ("--no-kmsg", bool, False, "do not read the kernel log (OOM kills still seen as counts)"),
    ("--kmsg-backlog", bool, False, "also parse kernel messages from before the start"),
    ("--no-redact", bool, False, "keep secret-looking command line values"),
    ("--no-mlock", bool, False, "do not lock the sampler in memory"),
    ("--no-oom-adj", bool, False, "do not lower the sampler's oom_score_adj"),
    ("--oom-score-adj", _integer, -900, "oom_score_adj to lower to (never raised)"),
    ("--no-cgroups", bool, False, "do not record cgroups"),
    ("--no-quiet-skip", bool, False,
     "read every process at every tick, even in cgroups where no task ran since the last"),
    ("--no-slab", bool, False, "do not read /proc/slabinfo"),
    ("--journal", str, "auto", "send start/stop/OOM entries to the journal: auto, yes, no"),
    ("--pidfile", str, "", "write the sampler's pid here (removed at a clean stop)"),
    ("--quiet", bool, False, "no start/stop lines on stderr"),
    ("--trigger", parse_triggers, [],
     "PROGRAM:CONDITION:SIGNAL, repeatable: signal a process when it crosses a line, e.g. "
     "nova-api:rss>1G:USR2, java:rss>80%:QUIT, gunicorn:grow>300M/10m:USR1, *:low:USR2 "
     "(docs/triggers.md); in the variable, rules separated by spaces"),
    ("--trigger-hysteresis", _percent, 10.0,
     "a rule fires again for a process only after its value fell this % below the line"),
    ("--trigger-max-per-hour", _positive(_count), 4, "most signals sent in any hour, all rules"),
    ("--trigger-allow-kill", bool, False,
     "allow rules whose signal ends or stops a process (TERM, KILL, INT, HUP, ...)"),
    ("--trigger-dry-run", bool, False, "record what the rules would send, send nothing"),
]
_REPEATABLE = ("--trigger",)
HELP_GROUPS = [  # --help shows the flags in these groups, in this order
    ("Where and how often", ("--dir", "--interval", "--duration", "--keyframe")),
    ("Processes", ("--rss-delta", "--rss-delta-pct", "--top-n", "--status-every",
                   "--pss-top-n", "--pss-programs", "--pss-every", "--pss-budget",
                   "--pss-slow", "--no-redact", "--no-quiet-skip")),
    ("When memory runs short", ("--fast-interval", "--low-pct", "--psi-full-pct", "--low-step")),
    ("Kernel and cgroups", ("--slab-delta", "--slab-top-n", "--no-slab", "--cgroup-depth",
                            "--cgroup-max", "--cgroup-stat-n", "--cgroup-root",
                            "--no-cgroups")),
    ("Segments and retention", ("--rotate-size", "--rotate-age", "--max-total", "--max-age",
                                "--fsync-every")),
    ("Staying alive", ("--no-mlock", "--no-oom-adj", "--oom-score-adj")),
    ("Sources", ("--proc-root", "--kmsg", "--no-kmsg", "--kmsg-backlog")),
    ("Running as a service", ("--journal", "--pidfile", "--quiet")),
    ("Triggers", ("--trigger", "--trigger-hysteresis", "--trigger-max-per-hour",
                  "--trigger-allow-kill", "--trigger-dry-run")),
]
PROG = "memtrail record"
DESCRIPTION = ("Record memory use (system, processes, cgroups, OOM kills) to a log directory, "
               "without ever forking. Every flag can also be set as an environment variable "
               "(--rss-delta -> MEMTRAIL_RSS_DELTA); a flag wins over its variable, which wins "
               "over the default.")


def _env_name(flag: str) -> str:
    return "MEMTRAIL_" + flag.lstrip("-").replace("-", "_").upper()


def _dest(flag: str) -> str:
    return flag[2:].replace("-", "_")


class Settings:
    """The effective configuration: one attribute per flag (`--rss-delta` -> `rss_delta`)."""

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()) + ")"


def _usage_error(message: str):
    """One line, not the whole usage: the operator sees it in journalctl or CI logs."""
    print(f"{PROG}: {message} (see --help)", file=sys.stderr)  # (None: stdout, if open)
    raise SystemExit(2)


def _metavar(flag: str, kind) -> str:
    if flag in ("--dir", "--proc-root", "--kmsg", "--cgroup-root", "--pidfile"):
        return "PATH"
    return {"parse_size": "SIZE", "parse_duration": "SECONDS", "_percent": "PCT",
            "_count": "N", "_integer": "N", "parse_triggers": "RULE"}.get(kind.__name__, "VALUE")


def _show_default(kind, default) -> str:
    """A default as a person would type it: 64M rather than 67108864, 7d rather than 604800."""
    if default is None or default is False or default == "" or default == []:
        return ""
    name = getattr(kind, "__name__", "")
    if name == "parse_size" and default:
        for unit, size in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
            if default % size == 0:
                return f"{default // size}{unit}"
    if name == "parse_duration" and default:
        for unit, secs in (("d", 86400), ("h", 3600)):
            if default % secs == 0:
                return f"{int(default // secs)}{unit}"
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def _wrap(text: str, width: int, indent: str) -> list:
    """Greedy word wrap (textwrap would import re)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(indent) + len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return lines


def format_help() -> str:
    """--help: the flags in groups, each with its environment variable and default."""
    width, col = 100, 28
    options = {opt[0]: opt for opt in OPTIONS}
    out = [f"usage: {PROG} [--dir PATH] [--interval SECONDS] [OPTION ...]", ""]
    out += _wrap(DESCRIPTION, width, "")
    groups = list(HELP_GROUPS)
    grouped = {flag for _title, flags in groups for flag in flags}
    rest = tuple(flag for flag in options if flag not in grouped)
    if rest:
        groups.append(("Other", rest))
    for title, flags in groups:
        out += ["", title + ":"]
        for flag in flags:
            _flag, kind, default, text = options[flag]
            left = f"  {flag}" if kind is bool else f"  {flag} {_metavar(flag, kind)}"
            shown = _show_default(kind, default)
            note = f"[{_env_name(flag)}" + (f", default {shown}]" if shown else "]")
            body = _wrap(text, width, " " * col) + [note]
            if len(left) + 2 > col:
                out.append(left)
                left = ""
            out.append(left.ljust(col) + body[0])
            out += [" " * col + line for line in body[1:]]
    daemon = _wrap("start the sampler in the background and return once it records (needs "
                   "--pidfile); `memtrail stop --pidfile PATH` ends it cleanly", width, " " * col)
    out += ["", "In the background (memtrail record only, not the standalone sampler.py):",
            "  --daemon".ljust(col) + daemon[0]] + [" " * col + line for line in daemon[1:]]
    out += ["", "Other:", "  -h, --help".ljust(col) + "show this help and exit",
            "  --version".ljust(col) + "show the version and exit"]
    return "\n".join(out) + "\n"


_SPECIAL = ("--help", "--version")


def _find_flag(arg: str):
    """The flag an argument names (exactly, or by a unique prefix as argparse allows), None
    when it names none; an ambiguous prefix is an error."""
    if arg == "-h" or arg.startswith("-h") and not arg.startswith("--"):
        return "-h"
    if not arg.startswith("--"):
        return None
    name = arg.partition("=")[0]
    known = [opt[0] for opt in OPTIONS] + list(_SPECIAL)
    if name in known:
        return name
    matches = [flag for flag in known if flag.startswith(name)]
    if len(matches) > 1:
        _usage_error(f"ambiguous option: {arg} could match {', '.join(matches)}")
    return matches[0] if matches else None


def _is_negative_number(arg: str) -> bool:
    body = arg[1:]
    whole, dot, fraction = body.partition(".")
    if dot:
        return fraction.isdecimal() and (whole == "" or whole.isdecimal())
    return body.isdecimal()


def _looks_like_flag(arg: str) -> bool:
    """argparse's rule: '-' alone, negative numbers and words with a space are values."""
    if not arg.startswith("-") or arg == "-":
        return False
    if arg == "--" or _find_flag(arg):
        return True
    return not _is_negative_number(arg) and " " not in arg


def parse_args(argv) -> Settings:
    """Flags win over MEMTRAIL_* variables, which win over defaults; bad values exit 2."""
    cfg = Settings()
    kinds = {}
    for flag, kind, default, _text in OPTIONS:
        env = _env_name(flag)
        raw = os.environ.get(env)
        if kind is bool:
            if raw is not None:
                default = raw.strip().lower() in ("1", "yes", "true", "on")
        elif raw is not None and raw != "":
            try:
                default = kind(raw)
            except ValueError as exc:
                _usage_error(f"bad value in ${env}: {exc}")
        setattr(cfg, _dest(flag), default)
        kinds[flag] = kind
    args = list(argv)
    unknown = []
    repeated = set()
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            unknown += args[i:]
            break
        flag = _find_flag(arg) if _looks_like_flag(arg) else None
        if flag is None:
            unknown.append(arg)
            continue
        explicit = arg[2:] if flag == "-h" else arg.partition("=")[2]
        has_value = len(arg) > 2 if flag == "-h" else "=" in arg
        kind = kinds.get(flag, bool)
        if kind is bool:
            if has_value:
                name = "-h/--help" if flag in ("-h", "--help") else flag
                _usage_error(f"argument {name}: ignored explicit argument {explicit!r}")
            if flag in ("-h", "--help"):  # print: nothing at all when stdout was closed
                print(format_help(), end="")
                raise SystemExit(0)
            if flag == "--version":
                print(f"memtrail sampler {__version__}")
                raise SystemExit(0)
            setattr(cfg, _dest(flag), True)
            continue
        if not has_value:
            if i >= len(args) or _looks_like_flag(args[i]):
                _usage_error(f"argument {flag}: expected one argument")
            explicit = args[i]
            i += 1
        try:
            value = kind(explicit)
        except ValueError as exc:
            _usage_error(f"argument {flag}: {exc}")
        if flag in _REPEATABLE:  # each use adds to the list, which replaces the variable's
            value = (getattr(cfg, _dest(flag)) if flag in repeated else []) + value
            repeated.add(flag)
        setattr(cfg, _dest(flag), value)
    if unknown:
        _usage_error("unrecognized arguments: " + " ".join(unknown))
    cfg.dir_managed = False
    if cfg.dir == "":
        _usage_error("--dir is empty: give the log directory's path")
    if cfg.dir is None:
        managed = os.environ.get("LOGS_DIRECTORY", "").split(":")[0]
        # systemd made this one (with DynamicUser= a root-owned link into /var/log/private):
        # trusted, so resolved; a symlink given by hand is still refused. Its mode is set by
        # LogsDirectoryMode=, which may give the group write access on purpose.
        cfg.dir = os.path.realpath(managed) if managed else "./memtrail-logs"
        cfg.dir_managed = bool(managed)
    if cfg.journal not in ("auto", "yes", "no"):
        _usage_error("--journal must be auto, yes or no")
    cfg.fast_interval = min(cfg.fast_interval, cfg.interval)
    try:
        check_triggers(cfg.trigger, cfg.trigger_allow_kill)
    except BadValue as exc:
        _usage_error(str(exc))
    return cfg


# ---------------------------------------------------------------------------------------------
# JSON out: what json.dumps(obj, separators=(",", ":"), ensure_ascii=True) writes, for the
# types the sampler writes, without the json package (it imports re).

def _json_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _json_key(key) -> str:
    """A dict key as json.dumps writes it (the sampler's keys are strings; the rest keeps the
    writer a drop-in for json.dumps, which tests compare it with)."""
    if isinstance(key, str):
        return _json_str(key)
    if key is True or key is False or key is None:
        return {True: '"true"', False: '"false"', None: '"null"'}[key]
    if isinstance(key, int):
        return '"' + int.__repr__(key) + '"'
    if isinstance(key, float):
        return '"' + _json_float(key) + '"'
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _json(obj) -> str:
    """Compact ASCII JSON: strings escaped by the C encoder json.dumps uses."""
    if isinstance(obj, str):
        return _json_str(obj)
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, int):
        return int.__repr__(obj)
    if isinstance(obj, float):
        return _json_float(obj)
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join([_json(v) for v in obj]) + "]"
    if isinstance(obj, dict):
        return "{" + ",".join([_json_key(k) + ":" + _json(v) for k, v in obj.items()]) + "}"
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def ident_cmd(ident: str):
    """The argv inside a process identity (`pid start ppid uid {"comm":..,"cmd":[..],..}`),
    read back without a JSON parser; None when it is not there."""
    at = ident.find(',"cmd":[')  # a '"' inside the escaped comm is written \", so this is it
    if at < 0:
        return None
    i = at + 8
    cmd = []
    try:
        while ident[i] != "]":
            if ident[i] != '"':
                return None
            arg, i = _json_scan(ident, i + 1)
            cmd.append(arg)
            if ident[i] == ",":
                i += 1
    except (ValueError, IndexError):
        return None
    return cmd


# ---------------------------------------------------------------------------------------------
# Secrets: command lines end up in CI artifacts that may be public.
# The matching is written out by hand (no `re`: it would cost memory, see the top). It runs
# once per new process, so it stays a few string scans per argument. The rules, and why each
# is there, are in docs/format.md ("Redaction"); tests/test_redaction.py is their table of
# real command lines, what must go and what must stay.

# The last word of a name (split on - _ . and camelCase) that says "the value is a secret".
_SECRET_WORDS = frozenset(
    "password passwd passphrase pass pwd secret token apikey credential credentials creds "
    "auth authorization cookie storepass keypass srcstorepass deststorepass srckeypass "
    "destkeypass sshpass".split())
# ... or a word that ends so (pgpassword, dbpassword, clientsecret, authtoken, xapikey).
_SECRET_ENDINGS = ("password", "passwd", "passphrase", "secret", "token", "apikey")
# ... or these last two words.
_SECRET_PAIRS = frozenset([("key", "base"), ("client", "secret"), ("secret", "key")])
# `key` alone is a secret too, but `--key`, `--private-key`, `--ssh-key` ... may name a file:
# for those a value that looks like a path stays.
_KEY_FILES = frozenset("private ssh tls ssl client server host signing gpg pgp cert".split())
_KEY_EXTENSIONS = (".pem", ".key", ".crt", ".cer", ".der", ".p12", ".pfx", ".jks", ".pub",
                   ".json", ".asc", ".gpg", ".ppk", ".kdbx", ".p8")
_QUERY_WORDS = frozenset(["sig", "signature", "x-amz-signature", "x-amz-credential"])
_SCHEME_CHARS = _ASCII_LETTERS + _ASCII_DIGITS + "+.-"
_NAME_START = _ASCII_LETTERS + "_"
_NAME_CHARS = _ASCII_LETTERS + _ASCII_DIGITS + "_.-"
_HEADERS = frozenset(["authorization", "proxy-authorization", "cookie", "set-cookie",
                      "x-api-key", "x-auth-token", "private-token", "x-vault-token"])
_TOKEN_PREFIXES = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xoxb-",
                   "xoxp-", "xoxa-", "sk-", "sk_live_", "hf_", "npm_", "pypi-")
_SPACES = " \t\n\r\v\f"

# Programs whose short options carry a password: flag -> how its value is given.
# "value": attached (-pX) or the next argument; "attached": only -pX (a bare -p prompts);
# "userpass": user:password, the user stays; "login": a value only after `login`;
# "cookie": `name=value` data is hidden, a cookie file name stays.
_MYSQL = {"-p": "value"}
_PROGRAM_FLAGS = {
    **{name: _MYSQL for name in (
        "mysql mysqldump mysqladmin mysqlimport mysqlcheck mysqlshow mysqlslap mysqlpump "
        "mysqlbinlog mysqlsh mysql_upgrade mariadb mariadb-dump mariadb-admin mariadb-import "
        "mariadb-check mariadb-show mariadb-slap mariadb-binlog mongo mongosh mongodump "
        "mongorestore mongoexport mongoimport").split()},
    "sshpass": {"-p": "value"},
    "redis-cli": {"-a": "value"},
    "curl": {"-u": "userpass", "--user": "userpass", "-U": "userpass",
             "--proxy-user": "userpass", "-b": "cookie"},
    "http": {"-a": "userpass", "--auth": "userpass"},
    "https": {"-a": "userpass", "--auth": "userpass"},
    **{name: {"-p": "login"} for name in "docker podman nerdctl buildah helm oras".split()},
    "openssl": {"-k": "value", "-K": "value"},
    **{name: {"-P": "value"} for name in "sqlcmd bcp ipmitool zip unzip".split()},
    **{name: {"-w": "value"} for name in
       "ldapsearch ldapmodify ldapadd ldapdelete ldappasswd ldapwhoami".split()},
    **{name: {"-p": "attached"} for name in "7z 7za 7zr".split()},
    "sort": {},  # --key here is a sort key, not a secret (see _secret_name's callers)
}
for _name in "ssh scp sftp rsync nc ncat socat telnet psql pg_dump python python3 node".split():
    _PROGRAM_FLAGS.setdefault(_name, {})  # `-p` there is a port: these end another's rules
# Wrappers that run a command after their own options: the command's first word ends their
# rules even when it is not a program known here (`sshpass -p X cmd -p 22`).
_WRAPPER_VALUES = {"sshpass": ("-p", "-f", "-d", "-P")}
# Programs whose settings are `NAME VALUE` pairs (`git config user.password X`, `aws configure
# set aws_secret_access_key X`): a secret name there hides the next argument.
_CONFIG_PROGRAMS = frozenset("git aws npm yarn pnpm pip pip3 conda gcloud az".split())
for _name in _CONFIG_PROGRAMS:
    _PROGRAM_FLAGS.setdefault(_name, {})
_SHELLS = frozenset("sh bash dash zsh ksh mksh ash fish busybox su runuser".split())
_NOT_KEY = frozenset(["sort"])  # programs where `key` names something else


def _suspect(text: str) -> bool:
    """Could any rule match? Every rule needs one of these (a secret word, a URL, a short
    option that carries a password somewhere): the rest, nearly every argument, is left at
    once. This keeps redaction at about the cost of the old, smaller rule set."""
    low = text.lower()
    return ("pass" in low or "key" in low or "token" in low or "secret" in low or "auth" in low
            or "pwd" in low or "cred" in low or "cookie" in low or "sig" in low or "://" in low
            or "-p" in low or "-a" in low or "-u" in low or "-w" in low or "-k" in low
            or "-b" in low)


def _words(name: str) -> list:
    """'--dbPassword' -> ['db', 'password']; 'SECRET_KEY_BASE' -> ['secret', 'key', 'base']."""
    out = []
    for part in name.replace("_", "-").replace(".", "-").split("-"):
        start = 0
        for i in range(1, len(part)):
            if part[i].isupper() and part[i - 1].islower():
                out.append(part[start:i])
                start = i
        if part:
            out.append(part[start:])
    return [w.lower() for w in out if w]


def _secret_name(name: str, prog: str = "") -> str:
    """'' when the name does not mark a secret, else how its value is one: 'key' (a key that
    may name a file: a path stays), 'auth' (only `NAME=value`: `--auth` alone is often a
    switch, as in `mongod --auth --port 1`), 'cookie' (a following `name=value` is data, a
    following word a cookie file), 'yes'."""
    if not _suspect(name):
        return ""
    words = _words(name)
    if not words or words[0] in ("no", "ask", "prompt"):  # --no-password, --ask-vault-pass
        return ""
    last = words[-1]
    if last in ("auth", "cookie"):
        return last
    if last in _SECRET_WORDS or last.endswith(_SECRET_ENDINGS) or tuple(
            words[-2:]) in _SECRET_PAIRS:
        return "yes"
    if last == "key" and prog not in _NOT_KEY:
        if len(words) == 1 or words[-2] in _KEY_FILES:
            return "key"
        return "yes"
    return ""


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~/")) or value.lower().endswith(_KEY_EXTENSIONS)


def _hide(kind: str, value: str) -> bool:
    """Is `value`, given with `NAME=` (or quoted, or as a header), a secret?"""
    return bool(kind) and (kind != "key" or not _looks_like_path(value))


def _is_name(text: str) -> bool:
    """An option or variable name: up to two dashes, a letter or '_', then [A-Za-z0-9_.-]."""
    body = text[2:] if text[:2] == "--" else text[1:] if text[:1] == "-" else text
    return body[:1] != "" and body[0] in _NAME_START and not body.strip(_NAME_CHARS)


def _looks_like_option(arg: str) -> bool:
    return arg[:1] == "-" and len(arg) > 1 and _is_name(arg)


def _scan(text: str, i: int, stop) -> int:
    """First index from i whose character is in `stop` or is whitespace (len(text) if none)."""
    n = len(text)
    while i < n and text[i] not in stop and not text[i].isspace():
        i += 1
    return i


def _token_like(user: str) -> bool:
    """A URL user that is really a token (`https://ghp_xxx@github.com/`)."""
    if user.startswith(_TOKEN_PREFIXES):
        return True
    return len(user) >= 16 and not user.isalpha() and not user.isdigit() and any(
        c.isalpha() for c in user)


def _redact_urls(arg: str) -> str:
    """`scheme://user:password@host` -> `scheme://user:***@host` (a password may hold `/` and
    `@`: it runs to the last `@` of the URL); `scheme://TOKEN@host` -> `scheme://***@host`."""
    out = []
    done = 0  # arg[:done] is decided
    k = arg.find("://")
    while k >= 0:
        j = k
        while j > done and arg[j - 1] in _SCHEME_CHARS:
            j -= 1
        nxt = arg.find("://", k + 3)
        if arg[j:k].strip(_ASCII_DIGITS + "+.-"):  # the scheme has a letter
            end = _scan(arg, k + 3, "?#")  # the URL's authority and path, up to a query
            if 0 <= nxt < end:
                end = nxt
            user_end = _scan(arg, k + 3, ":@/?#")
            if arg[user_end:user_end + 1] == ":":
                at = arg.rfind("@", user_end + 1, end)
                slash = arg.find("/", user_end + 1, end)
                port = 0 <= slash < at and arg[user_end + 1:slash].isdigit()
                if at > user_end and not port:
                    out += [arg[done:user_end + 1], "***"]
                    done = at
            elif arg[user_end:user_end + 1] == "@" and _token_like(arg[k + 3:user_end]):
                out += [arg[done:k + 3], "***"]
                done = user_end
        k = nxt
    return "".join(out) + arg[done:] if out else arg


def _redact_query(arg: str) -> str:
    """`?access_token=X&a=b` -> `?access_token=***&a=b`: secret-named query parameters."""
    out = []
    done = 0
    i = 0
    n = len(arg)
    while True:
        q = arg.find("?", i)
        a = arg.find("&", i)
        i = q if a < 0 or 0 <= q < a else a
        if i < 0:
            break
        eq = arg.find("=", i + 1)
        name = arg[i + 1:eq] if eq > 0 else ""
        i += 1
        if not name or not _is_name(name):
            continue
        kind = "yes" if name.lower() in _QUERY_WORDS else _secret_name(name)
        if kind:
            end = eq + 1
            while end < n and arg[end] not in "&#" and not arg[end].isspace():
                end += 1
            if end > eq + 1:
                out += [arg[done:eq + 1], "***"]
                done = i = end
    return "".join(out) + arg[done:] if out else arg


def _quoted_value(arg: str, i: int):
    """After a name at i: `\\s*[:=]\\s*` then a quoted value on one line -> (open, close)."""
    n = len(arg)
    while i < n and arg[i].isspace():
        i += 1
    if i >= n or arg[i] not in ":=":
        return None
    i += 1
    while i < n and arg[i].isspace():
        i += 1
    if i >= n or arg[i] not in "\"'":
        return None
    close = arg.find(arg[i], i + 1)
    if close < 0 or "\n" in arg[i + 1:close]:
        return None
    return i, close


def _redact_quoted(arg: str) -> str:
    """`"API_TOKEN": "x"` or `token='x'` inside one argument (JSON or YAML on a command line)."""
    out = []
    done = 0
    i, n = 0, len(arg)
    while i < n:
        c = arg[i]
        name_at = end = -1
        if c in "\"'":  # a quoted name: "NAME" or 'NAME', the same quote on both sides
            end = i + 1
            while end < n and arg[end] in _NAME_CHARS:
                end += 1
            if i + 1 < n and arg[i + 1] in _NAME_START and arg[end:end + 1] == c:
                name_at, value_from = i + 1, end + 1
            i += 1
        elif c in _NAME_CHARS:  # a bare name starts at the run's first letter or '_'
            end = i
            while end < n and arg[end] in _NAME_CHARS:
                if name_at < 0 and arg[end] in _NAME_START:
                    name_at = end
                end += 1
            value_from = end
            i = end
        else:
            i += 1
        if name_at < 0:
            continue
        span = _quoted_value(arg, value_from)
        if span is None:
            continue
        opening, close = span
        if close > opening + 1 and _hide(_secret_name(arg[name_at:end]),
                                         arg[opening + 1:close]):
            out += [arg[done:opening + 1], "***"]
            done = close
        i = close + 1
    return "".join(out) + arg[done:] if out else arg


def _header(arg: str) -> int:
    """Length of a leading secret header name (`Authorization`, `X-Api-Key`, `PRIVATE-TOKEN`)
    followed by `\\s*:`, else 0. A bare secret word counts only with a space after the colon
    (`token: x`), so `key:value` pairs stay."""
    end = 0
    n = len(arg)
    while end < n and (arg[end] in _ASCII_LETTERS or arg[end] in _ASCII_DIGITS
                       or arg[end] == "-" and end):
        end += 1
    if not end:
        return 0
    colon = end
    while colon < n and arg[colon] in " \t":
        colon += 1
    if arg[colon:colon + 1] != ":":
        return 0
    name = arg[:end].lower()
    if name in _HEADERS:
        return end
    if _secret_name(name) in ("yes", "auth", "cookie") and (
            "-" in name or arg[colon + 1:colon + 2] == " "):
        return end
    return 0


def _redact_value(arg: str, prog: str, depth: int) -> str:
    """One argument (or one word of a script) on its own."""
    if "://" in arg:
        arg = _redact_urls(arg)
    if "=" in arg and ("?" in arg or "&" in arg):
        arg = _redact_query(arg)
    if '"' in arg or "'" in arg:
        arg = _redact_quoted(arg)
    header = _header(arg)
    if header:
        return arg[:header] + ": ***"
    if arg[:2] == "-H":  # curl -H"Authorization: x"
        header = _header(arg[2:])
        if header:
            return arg[:2 + header] + ": ***"
    if "=" in arg:
        name, _eq, value = arg.partition("=")
        if value and _is_name(name):
            if _hide(_secret_name(name, prog), value):
                return name + "=***"
            header = _header(value)  # --header=Authorization: x, http.extraHeader=...
            if header:
                return name + "=" + value[:header] + ": ***"
            if "=" in value and depth < 4:  # --from-literal=password=x, --set a=1,b.password=x
                parts = value.split(",") if "," in value and " " not in value else [value]
                fixed = [_redact_value(p, prog, depth + 1) for p in parts]
                if fixed != parts:
                    return name + "=" + ",".join(fixed)
    if depth < 4 and (" " in arg or "\t" in arg or "\n" in arg):
        return _redact_script(arg, depth + 1)
    return arg


def _split_script(text: str) -> list:
    """Words of a shell script as (start, end, word, its first character), with None between
    commands (`;`, `&`, `|`, `(`, `)`, `<`, `>`, newline). Quotes group a word and are removed
    from `word`; `$'...'`, here-documents and the like are not understood (their words are
    still words, so the rules still see them)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\v\f":
            i += 1
            continue
        if c in ";&|()\n<>":
            if out and out[-1] is not None:
                out.append(None)
            i += 1
            continue
        start = i
        word = []
        while i < n and text[i] not in " \t\r\v\f;&|()\n<>":
            c = text[i]
            if c in "\"'":
                close = text.find(c, i + 1)
                if close < 0:
                    close = n
                inner = text[i + 1:close]
                if c == '"' and "\\" in inner:
                    inner = inner.replace('\\"', '"').replace("\\\\", "\\")
                word.append(inner)
                i = close + 1
            elif c == "\\" and i + 1 < n:
                word.append(text[i + 1])
                i += 2
            else:
                word.append(c)
                i += 1
        out.append((start, min(i, n), "".join(word), text[start]))
    return out


def _redact_script(text: str, depth: int) -> str:
    """A shell script (`sh -c`, `ssh host CMD`, a libpq `host=x password=y` string): each
    command's words go through the rules, and only the words that change are rewritten, so the
    rest of the script stays as it was."""
    words = _split_script(text)
    out = []
    done = 0
    command = []
    for item in words + [None]:
        if item is not None:
            command.append(item)
            continue
        if not command:
            continue
        fixed = _redact_args([w[2] for w in command], depth)
        for (start, end, word, first), new in zip(command, fixed):
            if new == word:
                continue
            if not new.isprintable() or " " in new or "'" in new or '"' in new:
                q = first if first in "\"'" else '"'  # one word again, as it was quoted
                if q in new:
                    q = "'" if q == '"' else '"'
                new = q + new + q
            out += [text[done:start], new]
            done = end
        command = []
    return "".join(out) + text[done:] if out else text


def _next_value(hide: str, arg: str, prog: str, depth: int) -> str:
    """The argument after a secret option (`--password X`, `mysql -p X`, `curl -u U:P`)."""
    if hide == "userpass":
        user, colon, _pw = arg.partition(":")
        return user + ":***" if colon else arg
    if arg[:2] == "--" and len(arg) > 2 or hide == "flag" and arg[:1] == "-" and len(arg) > 1:
        return _redact_value(arg, prog, depth)  # the next option: the value was omitted
    if hide == "key" and _looks_like_path(arg) or hide == "cookie" and "=" not in arg:
        return arg
    return "***"


def _redact_args(argv: list, depth: int = 0) -> list:
    out = []
    prog = ""
    flags = {}
    login = shell = script = configuring = False
    hide = ""  # how the next argument is a secret: all, key, flag, userpass
    for arg in argv:
        if hide:
            out.append(_next_value(hide, arg, prog, depth))
            hide = ""
            continue
        if script:  # after `sh -c`: a script, redacted word by word
            script = False
            out.append(_redact_script(arg, depth + 1) if depth < 4 else arg)
            continue
        base = arg.rpartition("/")[2] if arg[:1] != "-" else ""
        if base in _PROGRAM_FLAGS or base in _SHELLS:  # `sudo mysql`, `docker exec c sh -c`
            prog, flags, login, configuring = base, _PROGRAM_FLAGS.get(base, {}), False, False
            shell = base in _SHELLS
            out.append(arg)
            continue
        if shell and arg[:1] == "-":
            if arg[1:2] != "-" and "c" in arg:
                script = True
                out.append(arg)
                continue
            if arg.startswith("--command"):
                if arg[9:10] == "=":
                    out.append(arg[:10] + _redact_script(arg[10:], depth + 1))
                    continue
                script = arg == "--command"
        if arg == "login":
            login = True
        elif prog in _CONFIG_PROGRAMS and arg in ("config", "configure", "set"):
            configuring = True  # `git config NAME VALUE`, `aws configure set NAME VALUE`
        if prog in _WRAPPER_VALUES and arg[:1] != "-" and (
                not out or out[-1] not in _WRAPPER_VALUES[prog]):
            prog, flags = "", {}  # the wrapped command starts here
        if not _suspect(arg):
            out.append(arg)
            continue
        if flags and arg[:1] == "-":
            if arg[:2] == "--":
                flag, eq, value = arg.partition("=")
            else:
                flag, eq, value = arg[:2], "", arg[2:]
            how = flags.get(flag)
            if how == "login" and not login:
                how = None
            if how:
                if value:
                    if how == "userpass":
                        user, colon, _pw = value.partition(":")
                        value = user + ":***" if colon else value
                    elif how != "cookie" or "=" in value:
                        value = "***"
                    out.append(flag + eq + value)
                else:
                    out.append(arg)
                    if how != "attached":
                        hide = how if how in ("userpass", "cookie") else "flag"
                continue
        if prog == "openssl" and arg.startswith("pass:") and len(arg) > 5:
            out.append("pass:***")  # -passin/-passout/-pass pass:X (env: and file: stay)
            continue
        fixed = _redact_value(arg, prog, depth)
        out.append(fixed)
        if fixed is arg and (arg[:1] == "-" or configuring) and _is_name(arg):
            kind = _secret_name(arg, prog)
            if kind and kind != "auth":
                hide = "all" if kind == "yes" else kind
    return out


def redact(argv: list) -> list:
    """Replace secret-looking values with *** (docs/format.md, "Redaction")."""
    return _redact_args(argv)


# ---------------------------------------------------------------------------------------------
# Small readers. Every one of them returns None instead of raising for a file that went away.

def read_to_end(read, size: int, whole: bool):
    """`read(n, offset)` from the start, at most `size` bytes, or None on any error.

    One read is enough for files the kernel renders at once (meminfo, status, stat,
    smaps_rollup). Iterator-backed /proc files (slabinfo, vmstat, mountinfo) give about a page
    per read, whatever was asked: `whole` reads on to the end.
    """
    try:
        data = read(size, 0)
        if not whole:
            return data
        chunks, got = [data], len(data)
        while data and got < size:
            data = read(size - got, got)
            chunks.append(data)
            got += len(data)
        return b"".join(chunks)
    except OSError:
        return None


# errno of the last failed read_file open, and how many of them were EMFILE/ENFILE: a reader
# that got None can tell "no descriptor left" from "gone" or "needs root".
READ_ERRNO = [0, 0]
_NO_FDS = (errno.EMFILE, errno.ENFILE)
_DENIED = (errno.EACCES, errno.EPERM)  # a read refused: not root, or a hardened /proc


def _open_read(path: str):
    """A descriptor to read `path` with, or None; READ_ERRNO says why not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        READ_ERRNO[0] = exc.errno
        if exc.errno in _NO_FDS:
            READ_ERRNO[1] += 1
        return None
    READ_ERRNO[0] = 0  # a failure past the open (the process exited) is not a shortage
    return fd


def read_file(path: str, size: int = 65536, whole: bool = False):
    """A small file by path, or None (vanished process, EACCES, missing file)."""
    fd = _open_read(path)
    if fd is None:
        return None
    try:
        return read_to_end(lambda n, _offset: os.read(fd, n), size, whole)
    finally:
        os.close(fd)


def parse_kv_kib(data: bytes, keys) -> list:
    """Values (first number) of 'Key:  123 kB' lines, in the order of `keys`; None if absent.

    Looks each key up with find rather than splitting every line: the PSS tier parses one
    smaps_rollup per member of the largest programs (20,000 a minute on some hosts), and a
    key is only ever a whole line's name (the kernel escapes a newline in a process name)."""
    text = b"\n" + data
    find = text.find
    out = []
    for key in keys:
        i = find(b"\n" + key + b":")
        if i < 0:
            out.append(None)
            continue
        i += len(key) + 2
        end = find(b"\n", i)
        parts = (text[i:end] if end >= 0 else text[i:]).split(None, 1)
        try:  # inline, not _num: a call per value, a meminfo each tick and a PSS per read
            out.append(int(parts[0]) if parts else None)
        except ValueError:
            out.append(None)
    return out


SMAPS_SUMMED = (b"\nPss:", b"\nSwap:", b"\nSwapPss:")  # summed over a whole smaps (< 4.14)


def sum_smaps(path: str):
    """SMAPS_KEYS' values for a process from `/proc/PID/smaps`, for kernels without
    smaps_rollup (before 4.14: RHEL 7's 3.10): Pss, Swap and SwapPss (4.3 on) summed over its
    mappings, the rest None (Pss_Anon and its kin exist only in the rollup, 5.7 on). None
    when the process is gone, or has no mappings (a zombie).

    Read in 64 KiB pieces and summed as they come: a JVM's smaps runs to megabytes, which
    the sampler must never hold at once."""
    fd = _open_read(path)
    if fd is None:
        return None
    totals, seen, rest = [0, 0, 0], [False, False, False], b""
    try:
        while True:
            chunk = os.read(fd, 65536)
            if chunk:
                text = rest + chunk
                cut = text.rfind(b"\n") + 1
                rest, block = text[cut:], b"\n" + text[:cut]
            else:
                block, rest = b"\n" + rest, b""
            find = block.find
            for n, key in enumerate(SMAPS_SUMMED):
                i = find(key)
                while i >= 0:
                    i += len(key)
                    end = find(b"\n", i)
                    parts = block[i:end if end >= 0 else len(block)].split(None, 1)
                    try:
                        totals[n] += int(parts[0])
                        seen[n] = True
                    except (ValueError, IndexError):
                        pass  # that mapping's value is lost, never the process's sum
                    i = find(key, end) if end >= 0 else -1
            if not chunk:
                break
    except OSError:
        return None  # exited while being read
    finally:
        os.close(fd)
    if not seen[0]:
        return None
    pss, swap, swap_pss = totals
    return [pss, None, None, None, swap if seen[1] else None, swap_pss if seen[2] else None]


_ESTIMATE = tuple(S_INDEX[n] for n in ("buffers", "cached", "sreclaimable"))


def available_kib(system: list):
    """MemAvailable, or on a kernel without it (before 3.14) MemFree + Buffers + Cached -
    Shmem + SReclaimable: the sampler still ticks faster and snapshots at lows there. The
    log keeps the kernel's `-`; the analyzer makes the same estimate (model.py)."""
    avail = system[S_INDEX["mem_available"]]
    free = system[S_INDEX["mem_free"]]
    if avail is not None or free is None:
        return avail
    cache = sum(system[i] or 0 for i in _ESTIMATE) - (system[S_INDEX["shmem"]] or 0)
    return min(free + max(cache, 0), system[S_INDEX["mem_total"]] or free)


def kernel_version(release: str) -> tuple:
    """(6, 18) of `6.18.44-fc-v1045`; (0, 0) when it does not start with numbers."""
    parts = []
    for part in release.split(".")[:2]:
        digits = ""
        for ch in part:
            if not ("0" <= ch <= "9"):
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) if len(parts) == 2 else (0, 0)


def _num(raw: bytes):
    """An integer from a /proc file, or None: a kernel (or a FUSE /proc such as lxcfs in a
    container) that writes something else there costs that one value, never the sampler."""
    try:
        return int(raw)
    except ValueError:
        return None


class SystemReader:
    """meminfo, vmstat and PSI through descriptors opened once and re-read with pread."""

    def __init__(self, proc: str) -> None:
        self.meminfo = self._open(proc + "/meminfo", required=True)
        self.vmstat = self._open(proc + "/vmstat")
        self.psi = self._open(proc + "/pressure/memory")
        self.mem_keys = tuple(k for k, _n in MEMINFO_KEYS + MEMINFO_LATE)
        self.late = [None] * (len(MEMINFO_LATE) + 1)  # the last read's late fields
        self.outside = None  # the last read's OUTSIDE_KEYS values (raw)
        self.page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        # The kernel whose /proc this is (a fixture tree says which it imitates)
        raw = read_file(proc + "/sys/kernel/osrelease", 256)
        self.release = raw.decode("ascii", "replace").strip() if raw else os.uname().release
        # VmallocUsed is RAM from 5.3 on; 4.4-5.2 write a constant 0, and before 4.4 it was
        # address space (guard pages and ioremap'd device memory included): `-` there
        self.vmalloc_ok = kernel_version(self.release) >= (5, 3)

    @staticmethod
    def _open(path: str, required: bool = False):
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            if required:
                raise Fatal(f"cannot read {path}: {exc.strerror}") from None
            return None

    @staticmethod
    def _pread(fd, size: int, whole: bool = False):
        if fd is None:
            return None
        return read_to_end(lambda n, offset: os.pread(fd, n, offset), size, whole)

    def read(self) -> list:
        """The system values of an `s` line up to `psi_full_us` (None where unknown); the
        late ones (MEMINFO_LATE, zsmalloc), which go at its end, in `late`."""
        data = self._pread(self.meminfo, 8192) or b""
        values = parse_kv_kib(data, self.mem_keys)
        late = values[len(MEMINFO_KEYS):]
        del values[len(MEMINFO_KEYS):]
        if not self.vmalloc_ok:
            late[1] = None
        vm = {}
        data = self._pread(self.vmstat, 65536, whole=True)  # oom_kill sits near its end
        if data:
            for line in data.split(b"\n"):
                name, _sp, num = line.partition(b" ")
                if num:
                    vm[name] = num
        # pgsteal_anon (5.8 on) counts reclaim at a cgroup's limit too; before it, only the
        # host's own reclaim is counted: no skip there (None)
        self.outside = tuple(map(vm.get, OUTSIDE_KEYS)) if b"pgsteal_anon" in vm else None
        zspages = _num(vm[b"nr_zspages"]) if b"nr_zspages" in vm else None
        late.append(zspages * self.page_kib if zspages is not None else None)
        self.late = late
        for key in VMSTAT_KEYS:
            if key == "allocstall":
                stalls = [_num(v) for k, v in vm.items() if k.startswith(b"allocstall")]
                values.append(sum(stalls) if stalls and None not in stalls else None)
            else:
                raw = vm.get(key.encode())
                values.append(_num(raw) if raw is not None else None)
        some = full = None
        data = self._pread(self.psi, 512)
        if data:
            for line in data.split(b"\n"):
                if b"total=" in line:
                    total = _num(line.rsplit(b"total=", 1)[1])
                    if line.startswith(b"some"):
                        some = total
                    elif line.startswith(b"full"):
                        full = total
        values += [some, full]
        return values


class Lines(bytearray):
    """One section of a tick, kept as bytes.

    A 2000-process keyframe then lives in a few large buffers that go back to the OS when
    freed, instead of thousands of small strings that fragment the heap for good: it is what
    keeps the sampler's RSS flat after its first tick. Every line is ASCII (JSON is escaped).
    """

    __slots__ = ()

    def append(self, line: str) -> None:
        self += line.encode("ascii", "backslashreplace")


def _fmt(value) -> str:
    return "-" if value is None else str(value)


# ---------------------------------------------------------------------------------------------
# Processes.

class Proc:
    """What the sampler remembers of one live process: small and fixed-size, since there is
    one per process (~400 bytes with its identity string and dict entry). The rarer state
    (young processes to look at again, the top-N detail values) lives in the Sampler."""

    # Eight slots: a ninth would move every Proc up a 16-byte size class (0.3 MiB at 20,000)
    __slots__ = ("pid", "fd", "rss", "ident", "statm", "prog", "pss", "cg")

    def __init__(self, pid: str, fd: int) -> None:
        self.pid = pid  # the same string object as its key in Sampler.procs
        self.fd = fd  # open /proc/PID/statm; -1 when out of descriptors (read by path)
        self.rss = 0  # last written (ranks the top N for the detail tiers); a `p` is written
        # when RSS moves farther from it than Sampler.lim(rss)
        self.ident = ""  # "pid start ppid uid {json}" of its P line
        # statm as last read: the same bytes again cannot be a change (an idle process's
        # statm does not move), so most processes cost a pread and one comparison a tick
        self.statm = b""
        self.prog = None  # program name (program_name), found by the PSS tier when it plans
        # The PSS tier's: None never read (nor skipped); b"" looked at, nothing written yet;
        # else the values of its last `D` line, as written (short bytes: on the process, not
        # in a dict and a set beside it, which cost ~60 bytes a process at 20,000)
        self.pss = None
        self.cg = None  # its QuietGroup: its v2 cgroup, when one is tracked


class QuietGroup:
    """A v2 cgroup holding known processes: its CPU use (cpu.stat's `usage_usec`), read each
    tick before any statm, says whether any of its tasks ran since the last tick."""

    __slots__ = ("path", "fd", "usage", "members", "busy", "still", "checked", "skipped_at")

    def __init__(self, path: str) -> None:
        self.path = path  # as /proc/PID/cgroup's `0::` line gives it
        self.fd = -1  # cpu.stat, opened once the group is big enough; -2: cannot be
        self.usage = None  # `usage_usec N` as read at the last check, None: no baseline
        self.members = 0  # known processes in it
        self.busy = 0  # checks in a row that found it busy
        self.still = -1  # the tick since which every check found the same usage (-1: none)
        self.checked = -1  # the tick of its last check
        self.skipped_at = -1  # the last tick its processes were left unread


def unified_path(data: bytes) -> str:
    """The v2 (unified) path from /proc/PID/cgroup's `0::` line, or ""."""
    for line in data.split(b"\n"):
        if line.startswith(b"0::"):
            return line[3:].decode("utf-8", "surrogateescape")
    return ""


def stat_fields(data: bytes) -> list:
    """/proc/PID/stat's fields after the comm (field 3 on, `rest[0]`): the comm may contain
    spaces and ')', so they start after the last ')'."""
    return data[data.rindex(b")") + 2:].split()


def parse_stat(data: bytes):
    """(comm, ppid, flags, start, thread) from /proc/PID/stat. `thread`: a thread's own pid
    (its `exit_signal`, field 38, is -1: CLONE_THREAD), which /proc does not list but does
    answer, so a pid looked at by number may be one."""
    comm = data[data.index(b"(") + 1:data.rindex(b")")].decode("utf-8", "replace")
    rest = stat_fields(data)
    return (comm, int(rest[1]), int(rest[6]), int(rest[19]),
            len(rest) > 35 and rest[35] == b"-1")


def parse_cgroup(data: bytes):
    """(path, memory): the v2 path when it says something, else the v1 memory controller's
    path; and the v1 memory controller's path when it is another one, else "". On a hybrid
    host a memory cgroup's OOM kill names the v1 path, which the v2 one need not resemble."""
    v2 = mem = ""
    for line in data.decode("utf-8", "replace").splitlines():
        hid, _c, rest = line.partition(":")
        controllers, _c, path = rest.partition(":")
        if hid == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            mem = path
    if v2 and v2 != "/":
        return v2, (mem if mem and mem != v2 else "")
    return mem or v2, ""


def read_cmdline_bytes(base: str):
    """/proc/PID/cmdline as the kernel gives it, up to CMDLINE_READ bytes (so redaction sees a
    secret whole before `fit_cmdline` cuts to CMDLINE_MAX); None if unread (READ_ERRNO says
    why when the open failed)."""
    try:
        fd = os.open(base + "cmdline", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        READ_ERRNO[0] = exc.errno
        if exc.errno in _NO_FDS:
            READ_ERRNO[1] += 1
        return None
    try:
        data = os.read(fd, CMDLINE_MAX + 1)  # nearly always all of it: one read
        if len(data) > CMDLINE_MAX:
            data += read_to_end(lambda n, _o: os.read(fd, n), CMDLINE_READ - len(data),
                                True) or b""
    except OSError:
        return None
    finally:
        os.close(fd)
    return data


def split_cmdline(data: bytes):
    """(argv, truncated) from read_cmdline_bytes' bytes. Past CMDLINE_READ the last, partial
    argument is dropped (it could be half a secret no rule recognises)."""
    cut = len(data) >= CMDLINE_READ
    args = data.split(b"\0")
    if args and args[-1] == b"":
        args.pop()
    elif cut and len(args) > 1:
        args.pop()
    return [a.decode("utf-8", "surrogateescape") for a in args], cut


def fit_cmdline(args: list):
    """(args, truncated): the first CMDLINE_MAX bytes of the NUL-separated command line,
    as the kernel would have cut it; applied after redaction."""
    used = 0
    for i, arg in enumerate(args):
        size = len(arg.encode("utf-8", "surrogateescape"))
        if used + size > CMDLINE_MAX:
            room = CMDLINE_MAX - used
            head = args[:i]
            if room > 0:
                head.append(arg.encode("utf-8", "surrogateescape")[:room].decode(
                    "utf-8", "surrogateescape"))
            return head, True
        used += size + 1
    return args, False


# ---------------------------------------------------------------------------------------------
# The PSS tier: smaps_rollup for every member of the largest programs, within a time budget.

# Cost of one smaps_rollup read per MiB of a process's RSS until a read of it was timed: the
# page walk dominates on large processes (bench/pss_cost.py: 10-15 us per MiB with 4 KiB pages
# here, 0.2 with huge pages; a user saw 4.5 s on a 200 GB process, 22 us per MiB), so a huge
# process is skipped before its first read rather than stalled once to learn.
PSS_PRIOR_US_PER_MIB = 25.0
PSS_EVENT_LIST_MAX = 16  # pids listed per kind in a `pss` event (the rest are counted)
PSS_STALE_MIN_KIB = 4096  # RSS moved this much (and an eighth) since a PSS read: read again
TICK_FAILURES_MAX = 5  # ticks failing in a row that end the sampler (one is a bug said in the log)
# A full round reads a program only when its memory may have moved since its last whole read
# (PssTier.stirred); every this many full rounds it reads them all anyway, a bound on what
# only processes outside the program (sharing its files or shm) can change
PSS_REFRESH_ROUNDS = 5


class PssTier:
    """Which processes get `/proc/PID/smaps_rollup`, and when.

    A program's PSS is only worth showing when every member was read (four processes sharing
    200 MiB of shm each hold 50 MiB of it), so the tier reads whole programs: every member of
    the `pss_programs` largest programs by RSS, plus the `pss_top_n` largest processes. Reading
    smaps_rollup takes the target's mmap lock for a walk of its page tables, so: each read is
    timed; a tick spends at most `pss_budget` on the tier and the rest of a round waits for the
    next tick; a process whose read took longer than `pss_slow` (or is predicted to, from its
    RSS and the slowest cost per MiB seen so far) is skipped for a while, longer each time.
    Every round ends with a `pss` event saying what was read, how long it took and what was
    skipped, so a partial sum is known to be partial.
    """

    def __init__(self, cfg, proc: str) -> None:
        self.cfg = cfg
        self.proc = proc
        self.queue = []  # Procs to read this round, in order (largest programs first)
        self.pos = 0
        self.force = False  # a snapshot round: write every D line, changed or not
        self.backoff = {}  # pid -> (skip until this monotonic time, times backed off)
        self.cost = {}  # pid -> us per MiB of RSS its last read took (processes >= 64 MiB)
        self.stats = None  # the round being read: counters for its `pss` event
        self.rollup = True  # False once a kernel without smaps_rollup (< 4.14) was seen
        # Programs whose PSS may have moved since their last whole read: a member's statm
        # changed (its memory, or what it shares, moved: the others' shares move with it), or a
        # member exited (the others' shares grow). A new member is read anyway (st.pss None).
        self.stirred = set()
        # Each chosen program's member count when it was last planned whole: the denominator
        # of the shares its members' last figures hold (see plan: who a new member costs)
        self.whole_n = {}
        self.full_rounds = 0
        # Page faults of each chosen program's members, summed at the last full round's plan:
        # a forked worker writing to a page it still shares with its parent takes a private
        # copy (a fault) and changes both PSS without any statm moving
        self.faults = {}
        self.fault_tick = -1  # the Sampler's tick when they were read

    def gone(self, st) -> None:
        self.backoff.pop(st.pid, None)
        self.cost.pop(st.pid, None)
        if st.prog is not None:
            self.stirred.add(st.prog)  # the members left share what it shared

    def plan(self, procs: dict, ranked: list, mono: float, full: bool, force: bool,
             events: list, still=None, tick: int = 0) -> None:
        """Start a round (`full`: every member again) or top it up with members never read.

        Runs at status ticks (every few seconds), not per process per tick: one pass over the
        table to sum RSS by program. `still(st, tick)`: no task of the process's cgroup ran
        since that tick's check (Sampler.quiet_groups), so it took no page fault."""
        cfg = self.cfg
        totals = {}
        for st in procs.values():
            prog = st.prog
            if prog is None:
                prog = st.prog = _program_of(st)
            totals[prog] = totals.get(prog, 0) + st.rss
        top = sorted(totals.items(), key=_second, reverse=True)[:cfg.pss_programs]
        chosen = dict(top)
        members = [st for st in procs.values() if st.prog in chosen]
        sizes = {}
        for st in members:
            sizes[st.prog] = sizes.get(st.prog, 0) + 1
        extra = [st for st in ranked[:cfg.pss_top_n] if st.prog not in sizes]
        stirred = self.stirred

        def by_size(group: list) -> list:
            # Programs with fewer processes first: each is cheap to complete, so a program of
            # thousands (read over many ticks, or never whole) cannot keep the others partial.
            # (Sorted only when read: 6 ms at 19 900 members, at every status tick before.)
            group.sort(key=lambda st: (sizes[st.prog], st.prog, -st.rss))
            return group

        kept = 0
        kept_programs = ()
        if not full:
            # A program with a member never looked at is read again whole: sharing changed.
            # A member still waiting in the round under way is not new: counting it put a
            # program of thousands, read over many ticks, back into its own round at every
            # status tick (34,564 reads for 19,900 processes, measured).
            queued = set(self.queue[self.pos:]) if self.stats is not None else ()
            fresh = {st.prog for st in extra if st.pss is None and st not in queued}
            fresh.update(st.prog for st in members if st.pss is None and st not in queued)
            # ... unless its member count is within an eighth of the count it was last read
            # whole at: its pages' mappers are then as many as the shares its members' figures
            # hold were cut for (a pre-forking server recycling workers, a CI runner's job
            # slots), so only the new members are read; it stays stirred, and the next full
            # round reads it whole. A program that grew or shrank further is read whole now.
            whole_n = self.whole_n
            renewed = {prog for prog in fresh if prog in sizes and prog in whole_n
                       and abs(sizes[prog] - whole_n[prog]) <= whole_n[prog] >> 3}
            whole = fresh - renewed if renewed else fresh
            # A member whose RSS moved far from the RSS its last PSS figures describe is read
            # again alone, first: a process that grew 1 GiB since would show its old PSS for
            # up to a minute (the analyzer then counts it as not read: model.pss_current).
            # Its statm moved, so its program is stirred: the others need no look.
            movers = self._movers(
                [st for st in extra if st.prog in stirred]
                + by_size([st for st in members if st.prog in stirred]),
                queued, whole) if stirred else []
            if not fresh and not movers:
                return
            wanted = movers + [st for st in extra if st.prog in fresh] + by_size(
                [st for st in members if st.prog in whole
                 or (st.prog in renewed and st.pss is None and st not in queued)])
            whole = whole.intersection(sizes)
            stirred.difference_update(whole)  # read whole now
            stirred.update(renewed)
            for prog in whole:
                whole_n[prog] = sizes[prog]
            if self.stats is not None:  # a round is under way: add to it
                self.queue.extend(st for st in wanted if st not in queued)
                self.stats["planned"] = len(self.queue)
                return
        else:
            if self.stats is not None and self.pos < len(self.queue):
                # members the round this one cuts short left unread: not whole yet
                stirred.update(st.prog for st in self.queue[self.pos:] if st.prog is not None)
            self.full_rounds += 1
            faults = self._faults(members, still, tick)
            if not force and self.full_rounds % PSS_REFRESH_ROUNDS != 1:
                # A program none of whose members' statm moved, none left, and none took a
                # page fault since the last full round began has the same PSS (bar what
                # outsiders sharing its pages did): its figures stand, and idle crowds
                # (20,000 processes of one program) cost no reads. Every member must have
                # figures to stand on.
                last = self.faults
                kept_programs = {prog for prog in sizes if prog not in stirred
                                 and faults.get(prog, -1) == last.get(prog, -2)}
                if kept_programs:
                    kept_programs -= {st.prog for st in members if not st.pss}
                if kept_programs:
                    before = len(members)
                    members = [st for st in members if st.prog not in kept_programs]
                    kept = before - len(members)
            self.faults, self.fault_tick = faults, tick
            self.whole_n = sizes  # kept programs too: none gained or lost a member
            stirred.difference_update(sizes)
            stirred.intersection_update(totals)  # forget programs no process runs any more
            wanted = extra + by_size(members)
        if self.stats is not None and self.pos < len(self.queue):
            self.stats["unfinished"] += len(self.queue) - self.pos
        self._close(events)
        self.queue, self.pos, self.force = wanted, 0, force
        self.stats = {"full": full,
                      "programs": len({st.prog for st in wanted} | set(kept_programs)),
                      "planned": len(wanted), "read": 0, "ms": 0.0, "max_ms": 0.0,
                      "max_pid": None, "slow": [], "skipped": [], "unfinished": 0,
                      "gone": 0, "denied": 0, "kept": kept}

    def _faults(self, members: list, still=None, tick: int = 0) -> dict:
        """Page faults (minor and major, every thread's) of each program's members, summed;
        a program with a member whose /proc/PID/stat did not read is left out. Read before
        the round reads any member, so a fault while it reads counts against the next round.
        One small read a member a full round (2-4 us; 19 900 of them: 60-80 ms a minute),
        except in a program all of whose members sit in cgroups where no task ran since the
        last sums were read: a fault takes CPU, so its last sum stands."""
        sums = {}
        since = self.fault_tick
        if still is not None and since >= 0:
            moved = {st.prog for st in members if not still(st, since)}
            present = {st.prog for st in members}
            sums = {prog: n for prog, n in self.faults.items()
                    if prog in present and prog not in moved}
            if sums:
                members = [st for st in members if st.prog not in sums]
        broken = set()
        for st in members:
            data = read_file(f"{self.proc}/{st.pid}/stat", 1024)
            try:
                rest = stat_fields(data)  # minflt (field 10) and majflt (12)
                sums[st.prog] = sums.get(st.prog, 0) + int(rest[7]) + int(rest[9])
            except (AttributeError, ValueError, IndexError):  # None: not read
                broken.add(st.prog)
        for prog in broken:
            sums.pop(prog, None)
        return sums

    def drain(self, ts: str, mono: float, share: float, out: list, events: list) -> None:
        """Read the round's next processes until this tick's budget is spent (`share`: the
        tick's interval over the normal one, so fast ticks under pressure spend less)."""
        if self.stats is None:
            return
        cfg = self.cfg
        stats = self.stats
        queue = self.queue
        budget = cfg.pss_budget * share
        slow = cfg.pss_slow
        clock = time.monotonic
        start = clock()
        first = True
        while self.pos < len(queue) and (first or clock() - start < budget):
            st = queue[self.pos]
            pid = st.pid
            predicted = st.rss / 1024 * self.cost.get(pid, PSS_PRIOR_US_PER_MIB) / 1e6
            if not first and predicted > budget - (clock() - start) \
                    and predicted <= slow and pid not in self.backoff:
                break  # a long read starts a tick of its own, so no tick spends two
            first = False
            self.pos += 1
            if st.pss is None:
                st.pss = b""
            held = self.backoff.get(pid)
            if held is not None and mono < held[0]:
                self._note(stats["skipped"], pid, "backed off", st.rss)
                self.stirred.add(st.prog)  # not read: its program is not whole
                continue
            if predicted > slow:
                self._note(stats["skipped"], pid, f"predicted {predicted * 1000:.0f} ms",
                           st.rss)
                self.stirred.add(st.prog)
                continue
            t0 = clock()
            vals = self._read(pid, events)
            took = clock() - t0
            stats["ms"] += took * 1000
            if took * 1000 > stats["max_ms"]:
                stats["max_ms"], stats["max_pid"] = took * 1000, int(pid)
            if st.rss >= 65536:  # 64 MiB: below that the fixed cost of a read dominates
                self.cost[pid] = took * 1e6 / (st.rss / 1024)
            if took > slow:
                times = held[1] + 1 if held is not None else 1
                self.backoff[pid] = (mono + cfg.pss_every * (1 << min(times, 6)), times)
                self._note(stats["slow"], pid, f"{took * 1000:.0f} ms", st.rss)
            if vals is None:  # not readable is not gone: a sampler without root is refused
                stats["denied" if READ_ERRNO[0] in _DENIED else "gone"] += 1
                self.stirred.add(st.prog)
                continue
            stats["read"] += 1
            # Last, the RSS these figures describe (statm's, as in the `p` line), so a reader
            # can tell when they went stale, and the tier when to read the process again.
            vals.append(st.rss)
            if self.force or _moved(st.pss or None, vals, self.cfg.rss_delta // 1024):
                # kept as the line's text: a short string, where a list of ints costs ~270
                # bytes, times every member of the largest programs (20,000 on some hosts).
                # A process under PSS_STALE_MIN_KIB keeps it without its `rss`: the text of
                # a tiny process's six values fits a 48-byte object, and one more value made
                # it 64 (0.3 MiB more at 19 900 processes, measured); _movers knows why.
                text = " ".join(map(_fmt, vals))
                st.pss = (text if st.rss >= PSS_STALE_MIN_KIB
                          else text[:text.rfind(" ")]).encode()
                out.append(f"D {ts} {pid} {text}\n")
        if self.pos >= len(queue):
            self._close(events)

    def _read(self, pid: str, events: list):
        """A process's SMAPS_KEYS values, or None (gone, a zombie, or no permission)."""
        if self.rollup:
            data = read_file(f"{self.proc}/{pid}/smaps_rollup", 4096)
            if data is not None or READ_ERRNO[0] != errno.ENOENT:
                return parse_kv_kib(data, SMAPS_KEYS) if data else None
            try:  # no rollup where the process still has its smaps: a kernel before 4.14
                os.stat(f"{self.proc}/{pid}/smaps")
            except OSError:
                return None
            self.rollup = False
            events.append(("warn", {"msg": "no /proc/PID/smaps_rollup (Linux before 4.14): PSS "
                                           "is summed from /proc/PID/smaps, a slower read"}))
        return sum_smaps(f"{self.proc}/{pid}/smaps")

    def _movers(self, wanted: list, queued, fresh: set) -> list:
        """The processes of `wanted` (not queued, not of a program read whole anyway) whose
        RSS moved by more than an eighth and PSS_STALE_MIN_KIB from the RSS their last PSS
        figures describe (the last value of `st.pss`): model.pss_current's rule. A process
        read under PSS_STALE_MIN_KIB was kept without that value: it has surely moved that far
        once it is past twice the line, and is read at the next round otherwise. One backed
        off, or now predicted to read slowly, waits for the round, which says so once (here it
        would be skipped, and said, at every status tick). A loop, not a call per process: it
        runs over every member of the largest programs at each status tick (3.6 ms for 19 900,
        measured)."""
        out = []
        least = PSS_STALE_MIN_KIB
        backoff, cost, slow_us = self.backoff, self.cost, self.cfg.pss_slow * 1e6
        for st in wanted:
            text = st.pss
            if not text or st in queued or st.prog in fresh:
                continue
            if text.count(b" ") < 6:  # read under PSS_STALE_MIN_KIB, kept without its `rss`:
                at = 0  # moved past the line for sure only once beyond twice that
                if st.rss <= least << 1:
                    continue
            else:
                try:
                    at = int(text[text.rfind(b" ") + 1:])
                except ValueError:
                    continue
            moved = st.rss - at
            if (moved > least or moved < -least) and (moved > at >> 3 or -moved > at >> 3) \
                    and st.pid not in backoff \
                    and st.rss / 1024 * cost.get(st.pid, PSS_PRIOR_US_PER_MIB) <= slow_us:
                out.append(st)
        return out

    @staticmethod
    def _note(items: list, pid: str, why: str, rss: int) -> None:
        if len(items) < PSS_EVENT_LIST_MAX:
            items.append({"pid": int(pid), "why": why, "rss_kib": rss})
        else:
            items.append(None)  # counted, not listed

    def _close(self, events: list) -> None:
        """The round's `pss` event: always for a full round, else when something was missed."""
        stats, self.stats = self.stats, None
        self.queue, self.pos = [], 0
        if stats is None:
            return
        missed = stats["slow"] or stats["skipped"] or stats["unfinished"]
        if not (stats["full"] or missed):
            return
        obj = {"programs": stats["programs"], "planned": stats["planned"],
               "read": stats["read"], "ms": round(stats["ms"], 2),
               "max_ms": round(stats["max_ms"], 2), "max_pid": stats["max_pid"]}
        for key in ("slow", "skipped"):
            if stats[key]:
                listed = [x for x in stats[key] if x is not None]
                obj[key] = listed
                obj[key + "_count"] = len(stats[key])
        if stats["unfinished"]:
            obj["unfinished"] = stats["unfinished"]
        for key in ("gone", "denied", "kept"):
            if stats[key]:
                obj[key] = stats[key]
        events.append(("pss", obj))


def _second(item):
    return item[1]


def _first(item):
    return item[0]


def _program_of(st) -> str:
    """Interned: thousands of workers of one program then share one string."""
    cmd = ident_cmd(st.ident)
    return sys.intern(program_name(cmd or [], ident_comm(st.ident)))


# ---------------------------------------------------------------------------------------------
# Kernel log: OOM kills, fork-free, from /dev/kmsg.

OOM_TABLE_MAX = 1000  # rows of the kernel's task table kept per kill (the largest by RSS)
OOM_TAIL_KEYS = (("total-vm:", "total_vm_kib"), ("anon-rss:", "anon_kib"),
                 ("file-rss:", "file_kib"), ("shmem-rss:", "shmem_kib"),
                 ("pgtables:", "pgtables_kib"))
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
# The memory cgroup's own stats the kernel prints at a cgroup's OOM kill (memory.stat: v2
# names, v1 names and their hierarchical `total_` forms), kept as KiB in `memcg_stat`: what
# the cgroup's usage was made of at the kill. Others (event counters) are read past.
MEMCG_STAT_KEYS = frozenset((
    "anon file kernel kernel_stack pagetables sec_pagetables percpu sock vmalloc shmem zswap "
    "file_mapped file_dirty file_writeback swapcached slab slab_reclaimable slab_unreclaimable "
    "unevictable cache rss rss_huge mapped_file dirty writeback swap total_cache total_rss "
    "total_rss_huge total_shmem total_mapped_file total_dirty total_writeback total_swap "
    "total_unevictable").split())
# The host's memory at a host-wide kill (`active_anon:N inactive_anon:N ...`, pages), kept
# as KiB; and the largest of the unreclaimable slab caches the kernel lists when they hold
# more than all user memory (a kernel leak)
HOST_MEM_KEYS = frozenset((
    "active_anon inactive_anon active_file inactive_file unevictable dirty writeback "
    "slab_reclaimable slab_unreclaimable mapped shmem pagetables free").split())
OOM_SLABS_KEPT = 10
MEMCG_STAT_MAX = 200  # `key value` lines read after `Memory cgroup stats for` (v2: ~80)


def kmsg_unescape(raw: bytes) -> str:
    """A record's text as the kernel meant it. /dev/kmsg writes every byte below 0x20, from 0x7f
    up, and the backslash itself as `\\xNN`, so each `\\x` there is an escape: a task name with
    spaces, UTF-8 or control bytes comes back whole (bytes that are not UTF-8 as surrogates, like
    command lines)."""
    if b"\\x" in raw:
        parts = raw.split(b"\\x")
        out = [parts[0]]
        for part in parts[1:]:
            code = part[:2]
            if len(code) == 2 and code[0] in _HEXDIGITS and code[1] in _HEXDIGITS:
                out.append(bytes((int(code, 16),)))
                out.append(part[2:])
            else:
                out.append(b"\\x" + part)
        raw = b"".join(out)
    return raw.decode("utf-8", "surrogateescape")


def _colon_pairs(text: str, keys, suffix: str = "", scale: int = 1) -> dict:
    """`key:123` tokens (`key:123KB` with suffix "KB") whose key is in `keys`, the value times
    `scale`: the host's memory at a kill (`active_anon:1932541 ...`, pages) and a v1 cgroup's
    stats on one line (`cache:35124KB rss:4944KB ...`, before 5.0)."""
    out = {}
    for part in text.split():
        key, _sep, value = part.partition(":")
        if key in keys and value.endswith(suffix):
            digits = value[:len(value) - len(suffix)]
            if digits.isascii() and digits.isdigit():
                out[key] = int(digits) * scale
    return out


def _slab_row(text: str):
    """A line of the kernel's unreclaimable slab list: (name, total KiB); () for its
    heading; None when the text is something else (the list has ended)."""
    parts = text.split()
    if parts[:3] == ["Name", "Used", "Total"]:
        return ()
    if len(parts) != 3 or not parts[2].endswith("KB") or not parts[1].endswith("KB"):
        return None
    total = parts[2][:-2]
    if not (total.isascii() and total.isdigit()):
        return None
    return parts[0], int(total)


def _stat_lines(text: str, stat: dict):
    """Lines `anon 1061158912` (bytes) following a cgroup's stats header, one record each
    (6.2 on) or several in one (5.0-6.1, where printk may cut the record's last line): kept
    as KiB where MEMCG_STAT_KEYS names them. (lines read, whether every line was one): a
    text that is not such a line at all reads (0, False), the block has ended."""
    read = 0
    for line in text.split("\n"):
        if not line:
            continue
        key, sep, value = line.partition(" ")
        if not (sep and value.isascii() and value.isdigit() and key.isascii()
                and key.replace("_", "").isalnum()):
            return read, False
        if key in MEMCG_STAT_KEYS:
            stat[key] = int(value) // 1024
        read += 1
    return read, True


def _int_at(text: str, i: int):
    """(value, end) of the optionally signed decimal at text[i], else (None, i)."""
    j = i + 1 if text[i:i + 1] == "-" else i
    k = j
    while k < len(text) and "0" <= text[k] <= "9":
        k += 1
    if k == j:
        return None, i
    return int(text[i:k]), k


def _after_int(text: str, key: str):
    """The integer right after the first `key` in text (kernel-formatted text only)."""
    at = text.find(key)
    return None if at < 0 else _int_at(text, at + len(key))[0]


def _killed(text: str):
    """(pid, name, uid, tail) of a kill line, else None. Every generation's form:
    `Out of Memory: Killed process N (name).` (2.6.9-2.6.18), `Killed process N, UID U, (name)
    total-vm:...` (2.6.32), `Killed process N (name), UID U, total-vm:...` (RHEL 7),
    `Killed process N (name) total-vm:...` (3.x-4.18), `Out of memory: Killed process N (name)
    total-vm:..., UID:U pgtables:... oom_score_adj:N` (4.19 on). The name is a comm, which may
    hold spaces, parentheses and commas; the kernel writes nothing with a `)` after it, so it
    ends at the last `)`; the tail after it (sizes, uid) is the kernel's own text."""
    at = text.find("Killed process ")
    if at < 0:
        return None
    prefix = text[:at]
    if prefix and not (prefix.endswith("emory: ") and len(prefix) < 40):
        return None  # a message that merely quotes a kill
    pid, i = _int_at(text, at + 15)
    if pid is None or pid < 0:
        return None
    uid = None
    if text.startswith(", UID ", i):
        uid, i = _int_at(text, i + 6)
        if uid is None:
            return None
        i = i + 1 if text.startswith(",", i) else i
    if not text.startswith(" (", i):
        return None
    close = text.rfind(")")
    if close < i + 2:
        return None
    tail = text[close + 1:]
    if uid is None:
        found = tail.find("UID")
        if found >= 0:
            uid = _int_at(tail, found + 4)[0] if tail[found + 3:found + 4] in (":", " ") \
                else None
    return pid, text[i + 2:close], uid, tail


def _summary(body: str):
    """The fields of a 4.19+ `oom-kill:` line, read by the kernel's own key order:
    `constraint=,nodemask=,cpuset=,mems_allowed=` then `,oom_memcg=PATH` or `,global_oom`, then
    `,task_memcg=PATH,task=NAME,pid=N,uid=N`. pid and uid are taken from the end and the task
    name from the first `,task=`: a name such as `x,task_memcg=/evil` or `a,pid=1` stays one
    name and cannot change another key."""
    info = {}
    uat = body.rfind(",uid=")
    pat = body.rfind(",pid=", 0, uat) if uat >= 0 else -1
    if pat < 0:
        return None
    uid, end = _int_at(body, uat + 5)
    pid, pend = _int_at(body, pat + 5)
    if uid is None or pid is None or end != len(body) or pend != uat:
        return None
    tat = body.find(",task=")
    if tat < 0 or tat > pat:
        return None
    info["pid"], info["uid"], info["name"] = pid, uid, body[tat + 6:pat]
    head = body[:tat]
    if head.startswith("constraint="):
        cut = head.find(",")
        info["constraint"] = head[11:cut if cut >= 0 else len(head)]
    mat = head.find(",task_memcg=")
    if mat >= 0:
        info["task_memcg"] = head[mat + 12:]
        head = head[:mat]
    oat = head.find(",oom_memcg=")
    if oat >= 0:
        info["oom_memcg"] = head[oat + 11:]
    elif head.endswith(",global_oom"):
        info["global_oom"] = True
    return info


class OomParser:
    """Turns the kernel's OOM report into one `oom_kill` event per kill, line by line.

    A report is `X invoked oom-killer: gfp_mask=..., order=N, oom_score_adj=N`, the memory
    state, the task table (vm.oom_dump_tasks: `[  pid  ]   uid  tgid total_vm rss ... name`, for
    a memory cgroup exactly its tasks), the cgroup lines (`Task in /A killed as a result of limit
    of /B` before 4.19, `oom-kill:constraint=...` from 4.19) and last the kill line. The sampler
    reads the kernel log in chunks per tick, so a report may arrive across ticks: the facts are
    kept here until the kill line, and dropped at the next report's first line. The header is
    rate-limited by the kernel, so a kill line may also come alone. Memory stays bounded: the
    table keeps its `table_max` largest rows and counts the rest.
    """

    def __init__(self, page_kib: int = 4, table_max: int = OOM_TABLE_MAX) -> None:
        self.page_kib = page_kib
        self.table_max = table_max
        self.ctx = {}
        self.seq = 0

    def feed(self, text: str):
        """The `oom_kill` event completed by this line, else None."""
        ctx = self.ctx
        if text.startswith("["):
            if ctx.get("cols") is not None:
                self._row(text)
            elif text.endswith(" name") and "pid" in text[:text.find("]") + 1]:
                cols = text[text.find("]") + 1:].split()[:-1]
                ctx["cols"], ctx["rows"], ctx["nrows"] = cols, [], 0
            return None
        inv = text.rfind(" invoked oom-killer: ")
        if inv > 0:
            self._invoked(text[:inv], text[inv + 21:])
            return None
        if text.startswith("oom-kill:"):
            ctx["summary"] = _summary(text[9:])
            return None
        if text.startswith("Task in ") and " killed as a result of limit of " in text:
            task, _sep, limit = text[8:].partition(" killed as a result of limit of ")
            ctx["task_memcg"], ctx["oom_memcg"] = task, limit
            return None
        if text.startswith("Memory cgroup stats for "):  # before 4.19: the limit's cgroup first
            body = text[24:].rstrip("\n")
            if body.endswith(":"):  # `PATH:`, its stats on the lines that follow (5.0 on)
                path, rest = body[:-1], ""
            else:  # `PATH: cache:35124KB rss:4944KB ...` (before 5.0): no ": " among the pairs
                cut = body.rfind(": ")
                path, rest = (body[:cut], body[cut + 2:]) if cut >= 0 else ("", "")
            if path.startswith("/"):
                first = "stats_memcg" not in ctx
                ctx.setdefault("stats_memcg", path)
                ctx["stat_lines"] = first and not rest
                if rest:
                    # Before 5.0 the limit's cgroup comes first, then each cgroup below it,
                    # each line with its own pages only: their sum is what the limit counted.
                    stat = ctx.setdefault("memcg_stat", {})
                    for key, kib in _colon_pairs(rest, MEMCG_STAT_KEYS, "KB").items():
                        stat[key] = stat.get(key, 0) + kib
                elif first:  # 5.0 on: one block, the limit's cgroup with all below it
                    ctx["memcg_stat"] = {}
            return None
        if text.startswith("active_anon:") and "invoker" in ctx:
            # the host's memory at a host-wide kill (show_mem's first block), in pages
            ctx["host_mem"] = _colon_pairs(text, HOST_MEM_KEYS, scale=self.page_kib)
            return None
        if text.startswith("Unreclaimable slab info:") and "invoker" in ctx:
            ctx["slab_lines"] = True  # the kernel's largest unreclaimable caches follow
            ctx["unreclaimable"] = []
            return None
        if ctx.get("slab_lines"):
            row = _slab_row(text)
            if row is not None:
                if row:  # not the `Name Used Total` heading
                    top = ctx["unreclaimable"]
                    top.append(row)
                    top.sort(key=_second, reverse=True)
                    del top[OOM_SLABS_KEPT:]
                return None
            ctx["slab_lines"] = False
        if ctx.get("stat_lines"):
            read, whole = _stat_lines(text, ctx["memcg_stat"])
            ctx["stat_read"] = ctx.get("stat_read", 0) + read
            if whole and read and ctx["stat_read"] <= MEMCG_STAT_MAX:
                return None
            ctx["stat_lines"] = False
            if read:  # stats whose last line printk cut (a record holds about 1 KiB)
                return None
        if text.startswith(("memory: usage ", "kmem: usage ", "swap: usage ")):
            key = text[:text.find(":")]  # a cgroup's usage and limit at its OOM kill
            if "memcg_" + key not in ctx:
                usage, limit = _after_int(text, "usage "), _after_int(text, "limit ")
                if usage is not None:
                    ctx["memcg_" + key] = (usage, limit)
            return None
        if "invoker" in ctx and "pid" not in ctx["invoker"]:
            who = ctx["invoker"]
            if text.startswith("CPU: ") and " PID: " in text:  # 3.x on
                pid = _after_int(text, " PID: ")
            elif text.startswith("Pid: "):  # 2.6.32
                pid = _int_at(text, 5)[0]
            else:
                pid = None
            if pid is not None:
                who["pid"] = pid
        if text.find("Killed process ") < 0:
            if " Kill process " in text or text.startswith("Kill process "):
                ctx["memcg_said"] = ctx.get("memcg_said") or text.startswith("Memory cgroup ")
            return None
        killed = _killed(text)
        if killed is None:
            return None
        self.ctx = {}
        return self._event(ctx, text, *killed)

    def _invoked(self, name: str, rest: str) -> None:
        self.ctx = ctx = {}
        who = {"name": name}
        for part in rest.split(", "):
            key, sep, value = part.partition("=")
            if not sep:
                continue
            if key == "gfp_mask":
                who["gfp_mask"] = value
            elif key in ("order", "oom_score_adj"):
                number = _int_at(value, 0)[0]
                if number is not None:
                    who[key] = number
        ctx["invoker"] = who

    def _row(self, text: str) -> None:
        ctx = self.ctx
        close = text.find("]")
        inner = text[1:close].strip() if close > 0 else ""
        if not inner.isdigit():
            return
        pid = int(inner)
        values, i = {}, close + 1
        for col in ctx["cols"]:
            while text[i:i + 1] == " ":
                i += 1
            value, i = _int_at(text, i)
            if value is None:
                return
            values[col] = value
        if text[i:i + 1] != " ":
            return
        ctx["nrows"] += 1
        swap = values.get("swapents")
        adj = values.get("oom_score_adj")
        rss = values.get("rss", 0) * self.page_kib
        row = [values.get("tgid", pid), values.get("uid"), rss,
               None if swap is None else swap * self.page_kib, adj, text[i + 1:]]
        self.seq += 1
        rows = ctx["rows"]
        rows.append((-rss, self.seq, row))
        if len(rows) >= 2 * self.table_max:  # keep the largest: at most twice the cap held
            rows.sort()
            del rows[self.table_max:]

    def _event(self, ctx: dict, text: str, pid: int, name: str, uid, tail: str) -> dict:
        event = {"pid": pid, "name": name}
        for key, field in OOM_TAIL_KEYS:
            at = tail.find(key)
            if at >= 0:
                value, end = _int_at(tail, at + len(key))
                if value is not None and tail.startswith("kB", end):
                    event[field] = value
        if uid is not None:
            event["uid"] = uid
        adj = tail.find("oom_score_adj:")
        if adj >= 0 and _int_at(tail, adj + 14)[0] is not None:
            event["oom_score_adj"] = _int_at(tail, adj + 14)[0]
        memcg = text.startswith("Memory cgroup ") or bool(ctx.get("memcg_said"))
        summary = ctx.get("summary")
        if summary and summary["pid"] == pid:
            for key in ("constraint", "oom_memcg", "task_memcg"):
                if key in summary:
                    event[key] = summary[key]
            if "uid" not in event:
                event["uid"] = summary["uid"]
        else:
            for key in ("oom_memcg", "task_memcg"):
                if key in ctx:
                    event[key] = ctx[key]
            if "oom_memcg" in ctx:
                memcg = True
            elif memcg and "stats_memcg" in ctx:
                event["oom_memcg"] = ctx["stats_memcg"]
        if memcg and "constraint" not in event:
            event["constraint"] = "CONSTRAINT_MEMCG"
        event["memcg_oom"] = memcg or event.get("constraint") == "CONSTRAINT_MEMCG"
        if "invoker" in ctx:
            event["invoker"] = ctx["invoker"]
        if "memcg_memory" in ctx:
            event["memcg_usage_kib"], event["memcg_limit_kib"] = ctx["memcg_memory"]
        for key in ("kmem", "swap"):
            if "memcg_" + key in ctx:
                event[f"memcg_{key}_kib"] = ctx["memcg_" + key][0]
        if ctx.get("memcg_stat"):
            event["memcg_stat"] = ctx["memcg_stat"]
        if ctx.get("host_mem") and not event["memcg_oom"]:  # not a stale one of a report cut
            event["host_mem"] = ctx["host_mem"]
        if ctx.get("unreclaimable"):
            event["unreclaimable_slab"] = [[name, kib] for name, kib in ctx["unreclaimable"]]
        if ctx.get("cols") is not None:
            rows = sorted(ctx["rows"])[:self.table_max]
            event["table"] = [r[2] for r in rows]
            event["table_rows"] = ctx["nrows"]
            if ctx["nrows"] > len(rows):
                event["table_capped"] = True
            if "uid" not in event:  # the kill line of 2.6.33-4.18 has none; the table has
                own = [r[2][1] for r in rows if r[2][0] == pid and r[2][1] is not None]
                if own:
                    event["uid"] = own[0]
        return event


class KmsgReader:
    """Non-blocking /dev/kmsg: one record per read. A regular file (`--kmsg FILE`, tests) gives
    many records per read and may cut one between two reads: the cut part waits for the rest.
    Only the kernel's own records count (facility 0): user space writes to /dev/kmsg too."""

    READ_SIZE = 8192
    MAX_PARTIAL = 65536  # a "record" longer than this in a file is not one: dropped

    def __init__(self, path: str, backlog: bool) -> None:
        self.fd = None
        self.error = ""
        self.is_file = False
        self.partial = b""
        self.read_size = self.READ_SIZE
        if not path:
            self.error = "disabled"
            return
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            self.is_file = (os.fstat(self.fd).st_mode & 0o170000) == 0o100000
            if not backlog:
                os.lseek(self.fd, 0, os.SEEK_END)
        except OSError as exc:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            self.error = f"{path}: {exc.strerror}"

    def messages(self, limit: int = 2000):
        """Message texts available now (at most `limit` reads per tick), unescaped."""
        out = []
        if self.fd is None:
            return out
        for _ in range(limit):
            try:
                data = os.read(self.fd, self.read_size)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # the ring overwrote records we had not read
                    continue
                break  # anything else (EINVAL would only repeat): try again next tick
            if not data:
                break
            if self.is_file:
                data = self.partial + data
                cut = data.rfind(b"\n") + 1
                self.partial = data[cut:] if len(data) - cut <= self.MAX_PARTIAL else b""
                data = data[:cut]
            else:
                data = data.split(b"\n", 1)[0]  # one record; its dictionary lines follow
            for line in data.split(b"\n"):
                head, sep, text = line.partition(b";")
                if not sep or not head[:1].isdigit():
                    continue
                pri = head.split(b",", 1)[0]
                if pri.isdigit() and int(pri) >> 3 == 0:
                    out.append(kmsg_unescape(text))
        return out


# ---------------------------------------------------------------------------------------------
# Cgroups.

def cgroup_mounts(proc: str):
    """(mount point, type, super options) of each cgroup and cgroup2 mount, or None."""
    data = read_file(proc + "/self/mountinfo", 1 << 22, whole=True)
    if not data:
        return None
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        left, _sep, right = line.partition(" - ")
        parts, rparts = left.split(), right.split()
        if len(parts) < 5 or len(rparts) < 3 or not rparts[0].startswith("cgroup"):
            continue
        out.append((parts[4].replace("\\040", " "), rparts[0], rparts[2]))
    return out


def close_quietly(fd) -> None:
    """Close a descriptor we hold, if any (None or negative: none); its error is moot."""
    if fd is not None and fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def find_unified_root(proc: str):
    """Where the v2 (unified) hierarchy is mounted, with or without controllers (a hybrid
    host mounts it at /sys/fs/cgroup/unified), or None. Every non-root v2 cgroup has a
    cpu.stat, whatever its controllers."""
    for mount, kind, _opts in cgroup_mounts(proc) or ():
        if kind == "cgroup2":
            return mount.rstrip("/") or "/"
    return None


def find_memory_cgroup_root(proc: str):
    """(path, 'v2'|'v1') of the memory hierarchy, or (None, reason)."""
    mounts = cgroup_mounts(proc)
    if mounts is None:
        return None, "no mountinfo"
    v2 = v1 = None
    for mount, kind, opts in mounts:
        if kind == "cgroup2" and v2 is None:
            ctl = read_file(mount + "/cgroup.controllers") or b""
            if b"memory" in ctl.split():
                v2 = mount
        elif kind == "cgroup" and "memory" in opts.split(","):
            v1 = mount
    if v2:
        return v2, "v2"
    if v1:
        return v1, "v1"
    return None, "no memory cgroup hierarchy mounted"


def cgroup_version(root: str) -> str:
    return "v2" if os.path.exists(root + "/memory.current") or os.path.exists(
        root + "/cgroup.controllers") else "v1"


# memory.stat keys read for a cgroup's make-up (`m`): v2, then v1's hierarchical totals;
# MAKEUP_KERNEL are v2's kernel parts, summed where the kernel (before 5.18) has no `kernel`;
# `slab` stands in for its two halves, which are summed where a kernel prints only those
MAKEUP_KERNEL = (b"kernel_stack", b"pagetables", b"sec_pagetables", b"percpu", b"vmalloc",
                 b"slab")
MAKEUP_SLAB = (b"slab_reclaimable", b"slab_unreclaimable")
MAKEUP_GROWTH_KIB = 16384  # a cgroup grown this much (and a quarter) has its make-up read at once
_current = attrgetter("current")
MAKEUP_STAT = frozenset((b"anon", b"file", b"shmem", b"kernel", b"sock", b"total_rss",
                         b"total_cache", b"total_shmem") + MAKEUP_KERNEL + MAKEUP_SLAB)


class Cgroup:
    __slots__ = ("cgid", "path", "fd", "current", "lo", "hi", "counters", "makeup", "makeup_at")

    def __init__(self, cgid: int, path: str, fd: int) -> None:
        self.cgid = cgid
        self.path = path  # relative to the hierarchy root, "/" for the root
        self.fd = fd  # memory.current / memory.usage_in_bytes
        self.current = -1
        self.lo = self.hi = 0
        self.counters = (None, None, None, None, None)  # peak oom oom_kill psi_some psi_full
        self.makeup = None  # the last `m` written: anon file shmem kernel sock (KiB)
        self.makeup_at = 0  # its usage (KiB) when memory.stat was last read


class CgroupTracker:
    def __init__(self, root: str, hier: str, depth: int, limit: int) -> None:
        self.root = root.rstrip("/") or "/"
        self.hier = hier
        self.depth = depth
        self.limit = limit
        self.groups = {}  # relative path -> Cgroup
        self.next_id = 1
        self.usage_file = "memory.current" if hier == "v2" else "memory.usage_in_bytes"
        self.fd_ceiling = 1 << 30  # descriptors from here on are the sampler's reserve

    def scan(self):
        """Walk the tree: (new groups, removed groups)."""
        found = []
        todo = [("", 0)]
        while todo and len(found) < self.limit:
            rel, level = todo.pop(0)
            found.append(rel or "/")
            if level >= self.depth:
                continue
            try:
                with os.scandir(self.root + rel) as it:
                    subdirs = sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
            except OSError:
                continue
            todo.extend((rel + "/" + name, level + 1) for name in subdirs)
        new, seen = [], set()
        for rel in found:
            seen.add(rel)
            if rel in self.groups:
                continue
            path = self.root + ("" if rel == "/" else rel) + "/" + self.usage_file
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno not in _NO_FDS:
                    continue  # the v2 root has no memory.current; a group may have vanished
                fd = -1
            if fd >= self.fd_ceiling:  # keep the reserve: read this one by path
                os.close(fd)
                fd = -1
            group = Cgroup(self.next_id, rel, fd)
            self.next_id += 1
            self.groups[rel] = group
            new.append(group)
        removed = [g for rel, g in self.groups.items() if rel not in seen]
        for group in removed:
            self.drop(group)
        return new, removed

    def drop(self, group: Cgroup) -> None:
        self.groups.pop(group.path, None)
        close_quietly(group.fd)

    def read_usage(self, group: Cgroup) -> bytes:
        """memory.current (or v1 usage) from the held descriptor, else by path."""
        if group.fd >= 0:
            return os.pread(group.fd, 64, 0)
        data = read_file(self._base(group)
                         + self.usage_file, 64)
        if data is None:
            raise OSError(READ_ERRNO[0], "unreadable")
        return data

    def _base(self, group: Cgroup) -> str:
        """The cgroup's directory, with a trailing slash, for the files read by path."""
        return self.root + ("" if group.path == "/" else group.path) + "/"

    def read_makeup(self, group: Cgroup):
        """What the cgroup's usage is made of, in KiB, from its memory.stat (with all below
        it): anon, file (shmem included), shmem (tmpfs, shared memory: a kill does not free
        it), kernel (v2 `kernel`, or its parts before 5.18; v1 the kmem counter), sock (v2).
        None when unreadable."""
        base = self._base(group)
        data = read_file(base + "memory.stat", 8192)
        if not data:
            return None
        stat = {}
        for line in data.split(b"\n"):
            key, _sp, value = line.partition(b" ")
            if key in MAKEUP_STAT:
                stat[key] = _num(value)
        if self.hier == "v2":
            kernel = stat.get(b"kernel")
            if kernel is None:
                if stat.get(b"slab") is None:
                    halves = [stat[k] for k in MAKEUP_SLAB if stat.get(k) is not None]
                    stat[b"slab"] = sum(halves) if halves else None
                parts = [stat[k] for k in MAKEUP_KERNEL if stat.get(k) is not None]
                kernel = sum(parts) if parts else None
            vals = (stat.get(b"anon"), stat.get(b"file"), stat.get(b"shmem"), kernel,
                    stat.get(b"sock"))
        else:
            kmem = read_file(base + "memory.kmem.usage_in_bytes", 64)
            vals = (stat.get(b"total_rss"), stat.get(b"total_cache"), stat.get(b"total_shmem"),
                    _num(kmem) if kmem else None, None)
        return tuple(v // 1024 if v is not None else None for v in vals)

    def read_counters(self, group: Cgroup):
        base = self._base(group)
        if self.hier == "v2":
            peak = read_file(base + "memory.peak", 64)
            events = read_file(base + "memory.events", 512) or b""
            ev = dict(line.split(b" ", 1) for line in events.split(b"\n") if b" " in line)
            psi = read_file(base + "memory.pressure", 512) or b""
            some = full = None
            for line in psi.split(b"\n"):
                if b"total=" in line:
                    total = _num(line.rsplit(b"total=", 1)[1])
                    if line.startswith(b"some"):
                        some = total
                    else:
                        full = total
            return (int(peak) // 1024 if peak and peak.strip().isdigit() else None,
                    _num(ev[b"oom"]) if b"oom" in ev else None,
                    _num(ev[b"oom_kill"]) if b"oom_kill" in ev else None, some, full)
        peak = read_file(base + "memory.max_usage_in_bytes", 64)
        ctl = read_file(base + "memory.oom_control", 512) or b""
        ev = dict(line.split(b" ", 1) for line in ctl.split(b"\n") if b" " in line)
        return (int(peak) // 1024 if peak and peak.strip().isdigit() else None,
                _num(ev[b"under_oom"]) if b"under_oom" in ev else None,
                _num(ev[b"oom_kill"]) if b"oom_kill" in ev else None, None, None)


# ---------------------------------------------------------------------------------------------
# The log directory: segments, rotation, compression, retention, faults.
#
# The sampler may run as root in a directory others can reach, so every file operation in it
# goes through a descriptor of the directory itself, opened once with O_NOFOLLOW and checked
# with fstat: a name is never resolved through a path that could have been swapped for a
# symlink (renameat2 RENAME_EXCHANGE) between a check and a use. Files are created with
# O_CREAT|O_EXCL|O_NOFOLLOW, and a file is only read, compressed or deleted when lstat/fstat
# says it is a regular file owned by the sampler's user: a planted link or a stranger's file
# is left alone (docs/sampler.md, "Security").

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _dir_problem(path: str, st, managed: bool) -> str:
    """Why a directory (its fstat) is unsafe to write into, or ''."""
    if st.st_mode & 0o170000 != 0o040000:
        return f"log path {path} is not a directory"
    if st.st_uid not in (os.geteuid(), 0):
        return (f"log directory {path} is owned by uid {st.st_uid}, not by this user "
                f"(uid {os.geteuid()}) or root; refusing")
    if st.st_mode & 0o002:
        return f"log directory {path} is writable by others; refusing (chmod o-w {path})"
    if st.st_mode & 0o020 and not managed:
        return f"log directory {path} is writable by its group; refusing (chmod g-w {path})"
    return ""


def open_log_dir(path: str, managed: bool = False) -> int:
    """A descriptor of the log directory, made (0750) when missing; raises Fatal when it is a
    symlink, not ours, or writable by others (by its group too, unless systemd made it for
    `LogsDirectory=`: `managed`). What is checked is what was opened (fstat of the descriptor).

    Errors come from the open itself, not from exists()/isdir(), which say "no" for a
    directory that is there but out of reach and would send the operator the wrong way.
    """
    if not path:
        raise Fatal("the log directory is an empty path; give one with --dir")
    try:
        fd = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.mkdir(path, 0o750)
        except FileNotFoundError:
            raise Fatal(f"cannot create log directory {path}: {parent} does not exist") \
                from None
        except FileExistsError:
            pass  # made by someone else meanwhile: the open and the checks below decide
        except OSError as exc:
            raise Fatal(f"cannot create log directory {path}: {exc.strerror}") from None
        return open_log_dir(path, managed)
    except OSError as exc:
        try:
            link = os.lstat(path).st_mode & 0o170000 == 0o120000
        except OSError:
            link = False
        if link or exc.errno == errno.ELOOP:
            raise Fatal(f"log directory {path} is a symbolic link; refusing "
                        "(give the real path)") from None
        if exc.errno == errno.ENOTDIR:
            raise Fatal(f"log path {path} is not a directory") from None
        raise Fatal(f"cannot reach log directory {path}: {exc.strerror}") from None
    problem = _dir_problem(path, os.fstat(fd), managed)
    if problem:
        os.close(fd)
        raise Fatal(problem)
    return fd


def check_log_dir(path: str, managed: bool = False) -> None:
    """Make or check the directory at start-up (the writer holds its own descriptor)."""
    os.close(open_log_dir(path, managed))


def check_writable(path: str) -> None:
    """At start-up only: later, the failing open() itself says why (EROFS, ENOSPC, ...)."""
    if not os.access(path, os.W_OK | os.X_OK):
        raise Fatal(f"log directory {path} is not writable by uid {os.geteuid()}")


def _own_file(dfd, name: str):
    """lstat of `name` in the directory `dfd` (None: `name` is a path) when it is a regular
    file of the sampler's user (not a link, FIFO or a stranger's file), else None."""
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except OSError:
        return None
    if st.st_mode & 0o170000 != 0o100000 or st.st_uid != os.geteuid():
        return None
    return st


def _unlink_own(dfd, name: str) -> bool:
    """Delete `name` from the directory only when it is our own regular file."""
    if _own_file(dfd, name) is None:
        return False
    try:
        os.unlink(name, dir_fd=dfd)
        return True
    except OSError:
        return False


class Compressor:
    """gzip a closed segment a slice per tick, so a 16 MiB segment never stalls a tick.
    Works on names in the writer's directory descriptor (`dfd`, set by the writer)."""

    def __init__(self) -> None:
        self.queue = []
        self.dfd = -1
        self.src = self.dst = None
        self.name = ""
        self.obj = None
        self.retry_at = 0.0

    def add(self, name: str) -> None:
        if name not in self.queue and name != self.name:
            self.queue.append(name)

    def reset(self, dfd: int) -> None:
        """Another directory: what was queued lives in the old one."""
        self._abandon(0.0, requeue=False)
        self.queue = []
        self.dfd = dfd
        self.retry_at = 0.0

    def busy(self) -> bool:
        return bool(self.queue) or self.src is not None

    def _open(self) -> bool:
        """Open the segment (our regular file, never through a link) and a new temp file
        (O_EXCL: a planted `.gz.tmp` link or file is never written through)."""
        dfd, name = self.dfd, self.name
        self.src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                           dir_fd=dfd)
        st = os.fstat(self.src)
        if st.st_mode & 0o170000 != 0o100000 or st.st_uid != os.geteuid():
            return False
        tmp = name + ".gz.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self.dst = os.open(tmp, flags, 0o640, dir_fd=dfd)
        except FileExistsError:
            if not _unlink_own(dfd, tmp):  # a stale one of ours goes; anything else stays
                return False
            self.dst = os.open(tmp, flags, 0o640, dir_fd=dfd)
        return True

    def step(self, budget: int, now: float) -> bool:
        """Compress up to `budget` bytes; True when a segment was finished."""
        dfd = self.dfd
        if self.src is None:
            if not self.queue or now < self.retry_at:
                return False
            self.name = self.queue.pop(0)
            try:
                usable = self._open()
            except OSError:
                self._abandon(now, requeue=_own_file(dfd, self.name) is not None)
                return False
            if not usable:  # not ours, not a file, or its temp name is taken by a stranger
                self._abandon(now, requeue=False, remove_tmp=False)
                return False
            self.obj = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip member
        name = self.name
        try:
            data = os.read(self.src, budget)
            if data:
                write_all(self.dst, self.obj.compress(data))
                return False
            write_all(self.dst, self.obj.flush())
            os.fsync(self.dst)
            os.close(self.dst)
            self.dst = None
            try:  # never over a file of that name (a planted link would be replaced)
                os.stat(name + ".gz", dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                raise FileExistsError(errno.EEXIST, "compressed name taken")
            os.rename(name + ".gz.tmp", name + ".gz", src_dir_fd=dfd, dst_dir_fd=dfd)
            _unlink_own(dfd, name)
        except FileExistsError:
            self._abandon(now, requeue=False)  # stays plain: readers read it as it is
            return False
        except OSError:  # ENOSPC and friends: keep the plain segment, try again later
            self._abandon(now, requeue=True)
            return False
        os.close(self.src)
        self.src = None
        self.name = ""
        return True

    def _abandon(self, now: float, requeue: bool, remove_tmp: bool = True) -> None:
        for fd in (self.src, self.dst):
            close_quietly(fd)
        if remove_tmp and self.name:
            _unlink_own(self.dfd, self.name + ".gz.tmp")  # only ever our own file
        if requeue and self.name:
            self.queue.append(self.name)
            self.retry_at = now + 60.0  # a transient fault (ENOSPC): not at once again
        self.src = self.dst = None
        self.name = ""


class LogWriter:
    """Owns the current segment. Never raises on a write: faults become a gap record later.

    The directory is held open (`dfd`) from start-up. Each tick checks that the path still
    names it; when it does not (moved aside, removed, swapped), the path is opened again with
    the same checks and a new segment starts there; if the path is now unsafe (a symlink, a
    stranger's directory), the sampler keeps writing into the directory it holds and says so.
    """

    def __init__(self, cfg) -> None:
        self.dir = cfg.dir
        self.managed = getattr(cfg, "dir_managed", False)
        self.cfg = cfg
        self.compressor = Compressor()
        self.dfd = -1
        self.dir_ident = None  # (st_dev, st_ino) of the held directory
        self.path_seen = None  # what lstat(path) gave when we last decided about it
        self._hold(open_log_dir(self.dir, self.managed))
        self.fd = None
        self.name = ""
        self.ident = None  # (st_dev, st_ino) of the current segment
        self.size = 0
        self.opened_mono = 0.0
        self.last_sync = 0.0
        self.gap = None  # [from_time, lost_ticks, reason] while writes fail
        self.warned = ""
        self.notes = []  # messages for the log (E warn), taken by the sampler each tick
        self.total = 0  # bytes of all our segments (for STATUS)

    def _hold(self, dfd: int) -> None:
        if self.dfd >= 0:
            os.close(self.dfd)
        st = os.fstat(dfd)
        self.dfd, self.dir_ident = dfd, (st.st_dev, st.st_ino)
        self.path_seen = self.dir_ident
        self.compressor.reset(dfd)

    @property
    def path(self) -> str:
        return os.path.join(self.dir, self.name) if self.name else ""

    # -- segment life --------------------------------------------------------------------
    def rotation_due(self, mono: float) -> bool:
        return self.fd is not None and (
            self.size >= self.cfg.rotate_size
            or mono - self.opened_mono >= self.cfg.rotate_age)

    def segment_gone(self) -> bool:
        """True when the current segment was removed or replaced under us, or the directory
        path now names another directory (then held from now on, when it is safe)."""
        if self.fd is None:
            return False
        try:
            st = os.stat(self.name, dir_fd=self.dfd, follow_symlinks=False)
        except OSError:
            return True
        if (st.st_dev, st.st_ino) != self.ident:
            return True
        try:
            return self._path_moved()
        except Fatal:  # the held directory is gone and the path is unsafe: a gap follows
            return True

    def _path_moved(self) -> bool:
        """Has the directory path changed to something we now hold instead? (one lstat)"""
        try:
            st = os.lstat(self.dir)
            seen = (st.st_dev, st.st_ino)
        except OSError:
            seen = None
        if seen == self.dir_ident or (seen == self.path_seen and seen is not None):
            return False
        return self._reopen_dir(seen)

    def _reopen_dir(self, seen) -> bool:
        """Open the path again (made when missing) with the start-up checks. True when a new
        directory is held; False, keeping the old one, when the path is unsafe."""
        try:
            dfd = open_log_dir(self.dir, self.managed)
        except Fatal as exc:
            self.path_seen = seen
            try:
                alive = os.fstat(self.dfd).st_nlink > 0
            except OSError:
                alive = False
            if alive:
                self.notes.append(f"{exc}: still writing into the directory opened before")
                return False
            raise
        self._hold(dfd)
        return True

    def _new_name(self, now: float) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        for seq in range(1000):
            name = f"memtrail-{stamp}-{seq:03d}.log"
            for taken in (name, name + ".gz"):
                try:
                    os.stat(taken, dir_fd=self.dfd, follow_symlinks=False)
                    break
                except FileNotFoundError:
                    continue
            else:
                return name
        raise OSError(errno.EEXIST, "no free segment name")

    def open_segment(self, now: float, mono: float, head, body: list) -> bool:
        """Create a new segment: `head(name)` (its header, naming the file) then `body`
        (a tick's sections)."""
        try:
            if os.fstat(self.dfd).st_nlink == 0 or self.gap is not None:
                self._path_moved()  # removed: made again; refused if it became unsafe
            name = self._new_name(now)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
                         | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640, dir_fd=self.dfd)
        except (OSError, Fatal) as exc:
            self._fault(now, exc)
            return False
        first = [head(name).encode()] + body
        try:
            write_all(fd, first)
        except OSError as exc:
            os.close(fd)
            _unlink_own(self.dfd, name)  # an empty or torn new segment helps nobody
            self._fault(now, exc)
            return False
        try:
            os.fsync(fd)
        except OSError:
            pass
        st = os.fstat(fd)
        self.fd, self.name, self.ident = fd, name, (st.st_dev, st.st_ino)
        self.size = sum(len(b) for b in first)
        self.opened_mono = self.last_sync = mono
        self.gap = None
        self.warned = ""
        return True

    def close_segment(self, tail: bytes = b"", compress: bool = True) -> None:
        if self.fd is None:
            return
        if tail:
            self.write(tail, 0.0, 0.0)
        if self.fd is not None:
            try:
                os.fsync(self.fd)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None
            if compress and _own_file(self.dfd, self.name) is not None:
                self.compressor.add(self.name)

    # -- writing -------------------------------------------------------------------------
    def write(self, data, now: float, mono: float) -> bool:
        """Append one tick (bytes or its sections); on failure cut the segment back to its
        last whole tick."""
        try:
            write_all(self.fd, data)
        except OSError as exc:
            failure = exc
        else:
            size = len(data) if isinstance(data, (bytes, bytearray)) else sum(map(len, data))
            self.size += size
            self.total += size
            if mono and mono - self.last_sync >= self.cfg.fsync_every:
                try:
                    os.fdatasync(self.fd)
                except OSError:
                    pass
                self.last_sync = mono
            return True
        try:  # never leave a torn line in the middle of a segment
            os.ftruncate(self.fd, self.size)
        except OSError:
            pass
        close_quietly(self.fd)
        self.fd = None  # the next tick that can write starts a new segment
        self._fault(now, failure)
        return False

    def _fault(self, now: float, exc) -> None:
        reason = errno.errorcode.get(getattr(exc, "errno", None) or 0, "") or str(exc)
        if self.gap is None:
            self.gap = [now, 0, reason]
        self.gap[1] += 1
        if self.warned != reason and not self.cfg.quiet:
            self.warned = reason
            print(f"memtrail: cannot write to {self.dir}: {exc}; still sampling, "
                  "a gap record will follow", file=sys.stderr)

    # -- housekeeping --------------------------------------------------------------------
    def our_files(self):
        """Our segment names in the held directory, oldest first, with their lstat: regular
        files of our user only (a planted link or a stranger's file is not ours)."""
        try:
            names = os.listdir(self.dfd)
        except OSError:
            return []
        out = []
        for name in sorted(n for n in names if is_segment_name(n)):
            st = _own_file(self.dfd, name)
            if st is not None:
                out.append((name, st))
        return out

    def startup_cleanup(self) -> None:
        """Finish what a previous run left: stale temp files, uncompressed closed segments."""
        files = self.our_files()
        present = {name for name, _st in files}
        for name, _st in files:
            if name.endswith(".tmp"):
                _unlink_own(self.dfd, name)
            elif name.endswith(".log"):
                if name + ".gz" in present:
                    _unlink_own(self.dfd, name)  # compressed copy is complete (renamed after fsync)
                else:
                    self.compressor.add(name)  # a torn segment is compressed as it is

    def retention(self, now: float) -> None:
        """Delete our oldest closed segments beyond the total size or the age limit."""
        files = [(name, st.st_size, st.st_mtime) for name, st in self.our_files()
                 if not name.endswith(".tmp")]
        total = sum(f[1] for f in files)
        busy = {self.name, self.compressor.name}
        for name, size, mtime in files:  # oldest first
            if name in busy or name[:-3] in busy:
                continue
            if total > self.cfg.max_total or now - mtime > self.cfg.max_age:
                if _unlink_own(self.dfd, name):
                    total -= size
        self.total = total


def _write_joined(fd: int, views: list) -> int:
    return os.write(fd, b"".join(views))  # one write(2) all the same: a crash tears one line


_writev = getattr(os, "writev", _write_joined)  # PyPy has no os.writev


def write_all(fd: int, data) -> None:
    """Write every byte of `data` (bytes, or a list of buffers gathered by one writev) or
    raise OSError; a write that makes no progress is EIO.

    A tick's sections go out as they are: joining them first would copy the whole tick,
    twice at a segment start (join, then header + body), and at 2000 processes that first
    keyframe is about 400 KB: the copies were the sampler's peak memory.
    """
    views = [memoryview(b) for b in ([data] if isinstance(data, (bytes, bytearray)) else data)]
    views = [v for v in views if v.nbytes]
    while views:
        n = _writev(fd, views)
        if n <= 0:
            raise OSError(errno.EIO, "short write")
        while views and n >= views[0].nbytes:
            n -= views.pop(0).nbytes
        if n:
            views[0] = views[0][n:]


def write_pidfile(path: str) -> None:
    """Write our pid to `path`, which may sit in a shared directory (/tmp, /run): never
    through a symlink (O_NOFOLLOW), never into a FIFO or device (O_NONBLOCK, then fstat), never
    into a stranger's file; any refusal is one line (Fatal), before the first tick."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise Fatal(f"--pidfile {path}: cannot write it: {why}") from None
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o170000 != 0o100000:
            raise Fatal(f"--pidfile {path}: not a regular file")
        if st.st_uid != os.geteuid():
            raise Fatal(f"--pidfile {path}: owned by uid {st.st_uid}, not by this user")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError as exc:
        raise Fatal(f"--pidfile {path}: cannot write it: {exc.strerror}") from None
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# systemd: readiness, watchdog, status and journal entries with the standard library.

class Notifier:
    def __init__(self, journal_mode: str) -> None:
        self.addr = os.environ.get("NOTIFY_SOCKET", "")
        if self.addr.startswith("@"):
            self.addr = "\0" + self.addr[1:]
        self.sock = None
        if self.addr and _sd_daemon is None:
            try:
                self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
            except OSError:
                self.addr = ""
        usec = os.environ.get("WATCHDOG_USEC", "")
        wpid = os.environ.get("WATCHDOG_PID", "")
        self.watchdog = usec.isdigit() and int(usec) > 0 and (not wpid or wpid == str(os.getpid()))
        self.watchdog_s = int(usec) / 1e6 if self.watchdog else 0.0
        jpath = os.environ.get("MEMTRAIL_JOURNAL_SOCKET", "/run/systemd/journal/socket")
        use = journal_mode == "yes" or (journal_mode == "auto" and (
            "INVOCATION_ID" in os.environ or "MEMTRAIL_JOURNAL_SOCKET" in os.environ))
        self.journal_path = jpath if use and os.path.exists(jpath) else ""
        self.jsock = None
        if self.journal_path:
            try:
                self.jsock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
            except OSError:
                self.journal_path = ""

    def notify(self, text: str) -> None:
        if not self.addr:
            return
        try:
            if _sd_daemon is not None:
                _sd_daemon.notify(text)
            else:
                self.sock.sendto(text.encode("utf-8", "replace"), self.addr)
        except OSError:
            pass

    def journal(self, kind: str, message: str, priority: int = 6, **fields) -> None:
        """A structured journal entry (native protocol: KEY=value lines in one datagram)."""
        if not self.jsock:
            return
        lines = [f"MESSAGE={message}", f"MESSAGE_ID={JOURNAL_IDS[kind]}",
                 f"PRIORITY={priority}", "SYSLOG_IDENTIFIER=memtrail"]
        for key, value in fields.items():
            if value is not None:
                lines.append(f"{key.upper()}={value}".replace("\n", " "))
        try:
            self.jsock.sendto(("\n".join(lines) + "\n").encode("utf-8", "replace"),
                              self.journal_path)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# Staying alive under pressure.

def _capable(proc: str, bit: int) -> bool:
    data = read_file(proc + "/self/status") or b""
    for line in data.split(b"\n"):
        if line.startswith(b"CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def _libc_int_function(name: str):
    """`int name(int)` from the C library, called as ctypes.CDLL(None, use_errno=True) would,
    with ctypes' C core only: the errno it sets is then read by `_ctypes.get_errno()`."""
    class CInt(_ctypes._SimpleCData):
        _type_ = "i"

    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = CInt

    handle = _ctypes.dlopen(None, getattr(_ctypes, "RTLD_LOCAL", 0))
    return Function(_ctypes.dlsym(handle, name))


def trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc malloc_trim), once, before
    locking: compiling this file without a cached .pyc leaves ~4 MiB of the compiler's freed
    working memory in the heap, and the first tick's buffers add to it; locked, it would stay.

    (Run as a script, `python3 sampler.py`, CPython keeps the file's parse tree until the
    script ends, ~3 KiB per line of code, about 5.5 MiB here: no trim can return that. Importing
    the module from a .pyc, as `memtrail record` does, avoids it.)"""
    if _ctypes is None:
        return
    try:
        _libc_int_function("malloc_trim")(0)
    except (OSError, AttributeError, TypeError):  # not glibc (musl has no malloc_trim)
        pass


# glibc's mmap threshold for the re-executed sampler (see lean_reexec): buffers this large
# get pages of their own, unmapped whole when freed.
HEAP_MMAP_THRESHOLD = "131072"


def heap_setting() -> str:
    """What the residency event says of the C heap's tuning (lean_reexec sets it)."""
    value = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    return f"mmap threshold {value} bytes" if value else "glibc default"


def lock_memory() -> str:
    """mlockall where it is safe: with a finite RLIMIT_MEMLOCK and no CAP_IPC_LOCK, locking
    future pages would turn later allocations into MemoryError, so we do not."""
    if _ctypes is None:
        return "unavailable: no ctypes"
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft != resource.RLIM_INFINITY and not _capable("/proc", 14):
        return f"skipped: no CAP_IPC_LOCK and RLIMIT_MEMLOCK={soft}"
    try:
        mlockall = _libc_int_function("mlockall")
    except (OSError, AttributeError, TypeError) as exc:
        return f"unavailable: {exc}"
    for flags, label in ((1 | 2 | 4, "locked (current, future, onfault)"),
                         (1 | 2, "locked (current, future)")):
        if mlockall(flags) == 0:
            return label
        err = _ctypes.get_errno()
        if err != errno.EINVAL:  # EINVAL: MCL_ONFAULT unknown to this kernel, try without
            return f"failed: {os.strerror(err)}"
    return "failed: EINVAL"


def lower_oom_score(target: int) -> str:
    path = "/proc/self/oom_score_adj"
    current = read_file(path, 32)
    try:
        now = int(current) if current else 0
    except ValueError:
        now = 0
    if now <= target:
        return str(now)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(target).encode())
        finally:
            os.close(fd)
        return str(target)
    except OSError as exc:
        return f"{now} (lowering failed: {exc.strerror})"


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    want = min(want, 1 << 20)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            return want
        except (ValueError, OSError):
            pass
    return soft


# ---------------------------------------------------------------------------------------------
# Triggers: signal a process when it crosses a line, so its own heap dump (a Guru Meditation
# Report, a tracemalloc snapshot, a JVM class histogram) is taken at the moment that matters
# (docs/triggers.md). The sampler only ever calls kill(2) or pidfd_send_signal(2): no fork,
# no exec. Nothing here runs per tick unless a rule is configured.

# Program names, as the analyzer gives them (memtrail/programs.py, which this file cannot
# import and which uses `re`): the same rules written out by hand; tests compare the two on a
# table of real command lines and on generated ones.
_INTERPRETERS = ("python", "pypy", "perl", "ruby", "node", "nodejs", "php", "lua", "luajit",
                 "tclsh", "bash", "sh", "dash", "zsh", "ksh", "Rscript", "deno", "bun", "java",
                 "jruby", "gawk", "awk")
_OPTS_WITH_ARG = {
    "python": ("-W", "-X", "-Q"),
    "perl": ("-I", "-M", "-m", "-x"),
    "ruby": ("-I", "-r", "-E", "-C", "-F"),
    "node": ("-r", "--require", "--import", "--loader", "--experimental-loader",
             "--inspect-port", "--title", "--max-old-space-size"),
    "java": ("-cp", "-classpath", "--class-path", "-p", "--module-path", "--add-opens",
             "--add-exports", "--add-modules", "-splash", "--add-reads", "--patch-module"),
    "bash": ("-o", "-O", "--rcfile", "--init-file"),
}
_FAMILY_OF = {"pypy": "python", "nodejs": "node", "zsh": "bash", "dash": "bash", "ksh": "bash",
              "sh": "bash"}


def _word_chars(text: str) -> bool:
    """`\\w+` of a str pattern: one or more letters, digits or '_' (any script)."""
    return text != "" and all(c.isalnum() or c == "_" for c in text)


def _interpreter_tail(rest: str) -> bool:
    """What may follow an interpreter's name: `(\\d+(\\.\\d+)*[a-z]?)?(-\\w+)?$`."""
    if rest.endswith("\n"):  # `$` also matches before a final newline
        rest = rest[:-1]
    i, n = 0, len(rest)
    if i < n and rest[i].isdecimal():
        while i < n and rest[i].isdecimal():
            i += 1
        while i + 1 < n and rest[i] == "." and rest[i + 1].isdecimal():
            i += 1
            while i < n and rest[i].isdecimal():
                i += 1
        if i < n and "a" <= rest[i] <= "z":
            i += 1
    return i == n or (rest[i] == "-" and _word_chars(rest[i + 1:]))


def _is_interpreter(base: str) -> bool:
    return any(base.startswith(name) and _interpreter_tail(base[len(name):])
               for name in _INTERPRETERS)


def _family(name: str) -> str:
    for fam in ("python", "pypy", "perl", "ruby", "nodejs", "node", "java", "bash", "zsh",
                "dash", "ksh", "sh"):
        if name.startswith(fam):
            return _FAMILY_OF.get(fam, fam)
    return name


def _script_of(interp: str, args: list):
    """The script/module/jar an interpreter runs, or None (`python3 -c ...`, a bare shell)."""
    fam = _family(interp)
    with_arg = _OPTS_WITH_ARG.get(fam, ())
    i = 0
    while i < len(args):
        arg = args[i]
        if fam == "python" and arg == "-m" and i + 1 < len(args):
            return args[i + 1]
        if fam == "python" and arg.startswith("-m") and len(arg) > 2:
            return arg[2:]
        if fam == "java" and arg == "-jar" and i + 1 < len(args):
            return os.path.basename(args[i + 1])
        if fam == "java" and arg in ("-m", "--module") and i + 1 < len(args):
            return args[i + 1].split("/")[-1].rsplit(".", 1)[-1]
        if arg in ("-c", "-e", "-E") and fam in ("python", "bash", "perl", "ruby", "node"):
            return None
        if arg == "--":
            return os.path.basename(args[i + 1]) if i + 1 < len(args) else None
        if arg.startswith("-"):
            i += 2 if arg in with_arg else 1
            continue
        if fam == "java":
            return arg.rsplit(".", 1)[-1] if "/" not in arg else os.path.basename(arg)
        if arg.startswith(("/dev/fd/", "/proc/", "/dev/stdin")):
            return None
        return os.path.basename(arg) or None
    return None


def _title(first: str):
    """`NAME: ...` (a process title the program set itself) -> NAME, else None; the analyzer's
    `^([^\\s:/][^\\s:]*|/[^\\s:]+): `."""
    colon = first.find(":")
    name = first[:colon]
    if colon <= 0 or first[colon + 1:colon + 2] != " " or any(c.isspace() for c in name):
        return None
    if name[0] == "/" and len(name) < 2:
        return None
    return name


def program_name(cmd: list, comm: str = "?") -> str:
    """The program a process belongs to: exactly memtrail.programs.program_name."""
    args = list(cmd)
    while args and args[-1] == "":
        args.pop()
    if not args:
        return comm or "?"
    first = args[0]
    title = _title(first)
    if title is not None:
        return os.path.basename(title.lstrip("-")) or comm
    if len(args) == 1 and " " in first.strip():
        args = first.split()
        first = args[0]
    base = os.path.basename(first).lstrip("-")
    if not base:
        return comm or "?"
    if _is_interpreter(base):
        script = _script_of(base, args[1:])
        if script:
            return script
    return base


def ident_comm(ident: str) -> str:
    """The kernel's name inside a process identity, without a JSON parser."""
    at = ident.find('{"comm":"')
    if at < 0:
        return "?"
    try:
        return _json_scan(ident, at + 9)[0]
    except (ValueError, IndexError):
        return "?"


def _own_pid_namespace(proc_root: str) -> bool:
    """Whether pids under this /proc are the ones kill(2) takes here: its `self` names us. A
    /proc mounted from another PID namespace (a host's, seen from a container) does not."""
    try:
        return os.readlink(proc_root + "/self") == str(os.getpid())
    except OSError:
        return False


def _ident_start(ident: str) -> str:
    return ident.split(" ", 2)[1]


class Triggers:
    """Evaluates the rules against the processes whose RSS was written this tick (and, at a
    new MemAvailable low, the largest process of each named program), and sends signals.

    Once per process per rule crossing: a rule fires, then waits until the value falls back
    below the line by `--trigger-hysteresis` percent before it may fire again for that
    process. A global limit (`--trigger-max-per-hour`) caps every signal sent; a crossing
    past the limit is recorded, not sent, and counts as that crossing.
    """

    def __init__(self, cfg, proc_root: str) -> None:
        self.cfg = cfg
        self.rules = list(cfg.trigger)
        self.keep = 1.0 - cfg.trigger_hysteresis / 100.0
        self.max_per_hour = cfg.trigger_max_per_hour
        named = []
        for rule in self.rules:
            if rule.program != "*" and rule.program not in named:
                named.append(rule.program)
        self.by_program = {}  # program -> [(rule index, rule)] for rss and grow rules
        self.low = []  # (rule index, rule, program) for low rules
        for i, rule in enumerate(self.rules):
            for program in (named if rule.program == "*" else [rule.program]):
                if rule.kind == "low":
                    self.low.append((i, rule, program))
                else:
                    self.by_program.setdefault(program, []).append((i, rule))
        windows = [r.window_s for r in self.rules if r.kind == "grow"]
        self.keep_s = max(windows, default=0.0)  # grow history kept this long ...
        self.bucket_s = max(min(windows, default=1.0) / 16, self.keep_s / 64)  # ... in these
        self.changed = []  # Procs whose RSS was written this tick (filled by the scan)
        self.programs = {}  # pid -> (ident, program)
        self.fired = {}  # (rule index, pid) -> start of the process it fired for
        self.history = {}  # pid -> (start, [[t0, min_kib, last_kib], ...]) for grow rules
        self.sent = []  # monotonic times of the signals sent in the last hour
        self.own_pid = os.getpid()
        self.dry_run = ""
        if cfg.trigger_dry_run:
            self.dry_run = "--trigger-dry-run"
        elif os.path.realpath(proc_root) != "/proc":
            self.dry_run = f"proc root {proc_root} is not this system's /proc"
        elif not _own_pid_namespace(proc_root):
            self.dry_run = f"{proc_root} belongs to another PID namespace"
        # Python 3.9+ (the sampler runs on 3.8 too: then kill(2) after a start-time check)
        self.pidfd_open = getattr(os, "pidfd_open", None)
        self.pidfd_send = getattr(_signal, "pidfd_send_signal", None)
        self.pidfd = self.pidfd_open is not None and self.pidfd_send is not None
        self.proc = proc_root

    def settings(self) -> dict:
        """The header's `settings.triggers`: what a reader needs to explain an event."""
        return {"rules": [r.text for r in self.rules],
                "hysteresis_pct": self.cfg.trigger_hysteresis,
                "max_per_hour": self.max_per_hour, "dry_run": self.dry_run or None}

    def program(self, st) -> str:
        cached = self.programs.get(st.pid)
        if cached is not None and cached[0] is st.ident:
            return cached[1]
        cmd = ident_cmd(st.ident)
        program = program_name(cmd or [], ident_comm(st.ident))
        self.programs[st.pid] = (st.ident, program)
        return program

    def evaluate(self, procs: dict, total_kib, low_kib, mono: float, prune: bool,
                 events: list, notifier) -> None:
        """`low_kib`: MemAvailable when this tick is a new low, else None."""
        changed, self.changed = self.changed, []
        by_program = self.by_program
        for st in changed:
            rules = by_program.get(self.program(st))
            if rules:
                self._check(st, rules, total_kib, mono, events, notifier)
        if low_kib is not None and self.low:
            largest = {}
            wanted = {program for _i, _r, program in self.low}
            for st in procs.values():
                program = self.program(st)
                if program in wanted and (program not in largest
                                          or st.rss > largest[program].rss):
                    largest[program] = st
            for i, rule, program in self.low:
                st = largest.get(program)
                if st is not None:
                    self._fire(i, rule, st, program, st.rss, None, mono, events, notifier,
                               low_kib)
        if prune or len(self.programs) > 2 * len(procs) + 64:
            self._prune(procs)

    def _check(self, st, rules, total_kib, mono, events, notifier) -> None:
        pid, rss = st.pid, st.rss
        start = None
        lows = None
        for i, rule in rules:
            line = rule.line_kib(total_kib)
            if rule.kind == "rss":
                value = rss
            else:
                if lows is None:
                    lows = self._grow(st, mono)
                value = rss - lows.get(rule.window_s, rss)
            key = (i, pid)
            if start is None:
                start = _ident_start(st.ident)
            if self.fired.get(key) == start:  # fired for this process: re-armed below the band
                if value <= line * self.keep:
                    del self.fired[key]
                continue
            if value > line:
                self.fired[key] = start
                self._fire(i, rule, st, self.program(st), value, line, mono, events, notifier)

    def _grow(self, st, mono: float) -> dict:
        """Record this RSS; {window_s: the lowest RSS within that window} for the grow rules.
        Kept in at most ~64 buckets per process (each the lowest and the last value seen in
        its stretch of time), so the window is measured to 1/16 of its length."""
        start = _ident_start(st.ident)
        entry = self.history.get(st.pid)
        if entry is None or entry[0] != start:
            entry = self.history[st.pid] = (start, [])
        buckets = entry[1]
        rss = st.rss
        if buckets and mono - buckets[-1][0] < self.bucket_s:
            last = buckets[-1]
            last[1] = min(last[1], rss)
            last[2] = rss
        else:
            buckets.append([mono, rss, rss])
        while len(buckets) > 1 and buckets[1][0] <= mono - self.keep_s:
            buckets.pop(0)  # the first one left holds the value in force at the window start
        lows = {}  # window -> lowest RSS within it
        for rule in self.rules:
            if rule.kind != "grow" or rule.window_s in lows:
                continue
            since = mono - rule.window_s
            low = rss
            for k, (t0, lowest, last) in enumerate(buckets):
                nxt = buckets[k + 1][0] if k + 1 < len(buckets) else mono + 1
                if nxt <= since:
                    continue
                low = min(low, last if t0 < since else lowest)
            lows[rule.window_s] = low
        return lows

    def _fire(self, i, rule, st, program, value, line, mono, events, notifier,
              available=None) -> None:
        pid = int(st.pid)
        event = {"rule": rule.text, "pid": pid, "program": program, "condition": rule.kind,
                 "value_kib": value}
        if line is not None:
            event["line_kib"] = line
        if available is not None:
            event["available_kib"] = available
        if rule.window_s:
            event["window_s"] = rule.window_s
        event["signal"] = rule.signame
        cutoff = mono - 3600.0
        while self.sent and self.sent[0] <= cutoff:
            self.sent.pop(0)
        err = None
        if pid == 1 or pid == self.own_pid:
            result = "refused"
            event["reason"] = "pid 1" if pid == 1 else "the sampler itself"
        elif self.dry_run:
            result = "dry_run"
            event["reason"] = self.dry_run
        elif len(self.sent) >= self.max_per_hour:
            result = "rate_limited"
            event["reason"] = f"{self.max_per_hour} signals in the last hour"
        else:
            self.sent.append(mono)
            err, via = self._send(pid, int(_ident_start(st.ident)), rule.signum)
            event["via"] = via
            result = "sent" if err == 0 else "gone" if err == errno.ESRCH else "failed"
        event["result"] = result
        event["errno"] = err
        if err:
            event["error"] = errno.errorcode.get(err, str(err))
        events.append(("trigger", event))
        if result == "sent":
            notifier.journal("trigger", f"memtrail sent {rule.signame} to {program} (pid {pid}):"
                             f" rule {rule.text}", trigger_rule=rule.text, trigger_pid=pid,
                             trigger_signal=rule.signame)

    def _start_of(self, pid: int):
        data = read_file(f"{self.proc}/{pid}/stat", 1024)
        try:
            return parse_stat(data)[3] if data else None
        except (ValueError, IndexError):
            return None

    def _send(self, pid: int, start: int, signum: int):
        """(errno, how): 0 when sent. The process must still be the one the rule saw (pid and
        start time): with a pidfd (Python 3.9+, Linux 5.3+), opened before the start time is
        checked, nothing can take its place between the check and the signal; without one, the
        check is made just before kill(2) and a PID reused in between is the remaining risk."""
        if self.pidfd:
            try:
                fd = self.pidfd_open(pid)
            except OSError as exc:
                if exc.errno not in (errno.ENOSYS, errno.EPERM, errno.EINVAL):
                    return exc.errno, "pidfd"
                self.pidfd = False  # a kernel without pidfd_open (or a seccomp filter)
            else:
                try:
                    if self._start_of(pid) != start:
                        return errno.ESRCH, "pidfd"
                    self.pidfd_send(fd, signum)
                    return 0, "pidfd"
                except OSError as exc:
                    return exc.errno or errno.EIO, "pidfd"
                finally:
                    os.close(fd)
        if self._start_of(pid) != start:
            return errno.ESRCH, "kill"
        try:
            os.kill(pid, signum)
            return 0, "kill"
        except OSError as exc:
            return exc.errno or errno.EIO, "kill"

    def _prune(self, procs: dict) -> None:
        """Forget processes that are gone (or whose pid now names another process)."""
        for pid in [p for p in self.programs if p not in procs]:
            del self.programs[pid]
        for pid, (start, _b) in list(self.history.items()):
            st = procs.get(pid)
            if st is None or _ident_start(st.ident) != start:
                del self.history[pid]
        for key, start in list(self.fired.items()):
            st = procs.get(key[1])
            if st is None or _ident_start(st.ident) != start:
                del self.fired[key]


# ---------------------------------------------------------------------------------------------
# The sampler.

class Sampler:
    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.proc = cfg.proc_root.rstrip("/") or "/"
        self.sys = SystemReader(self.proc)
        self.page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        self.shift = self.page_kib.bit_length() - 1  # pages -> KiB by a shift
        self.clk_tck = os.sysconf("SC_CLK_TCK")
        self.procs = {}  # pid string -> Proc
        self.young = []  # Procs first seen last tick: their command line is read once more
        self.execed = []  # Procs whose statm's code size changed this tick: a new image
        self.detail_vals = {}  # pid -> last written `d` values (top N only)
        # pid -> its stack's start address (/proc/PID/stat field 28), top N only: exec
        # places a new stack, at a new random address, and nothing else moves it
        self.stacks = {}
        self.pss = PssTier(cfg, self.proc)
        self.stirred = self.pss.stirred  # the same set, changed in place only
        self.rss_delta_kib = cfg.rss_delta // 1024
        self.rss_delta_pct = cfg.rss_delta_pct
        self.skip = set()  # /proc names that are not user processes (kthreads, "self", ...)
        # Listing /proc is a third of a tick; it is skipped while no pid was allocated in our
        # namespace since the last listing (scan_processes).
        self.loadavg_fd = self.stat_fd = -1
        self.same_ns = self._same_pid_namespace()
        if self.same_ns:
            try:
                self.loadavg_fd = os.open(self.proc + "/loadavg", os.O_RDONLY | os.O_CLOEXEC)
                self.stat_fd = os.open(self.proc + "/stat", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass
        self.stat_size = 16384  # bytes of /proc/stat read to reach `processes` (grows)
        self.cursor = None  # /proc/loadavg's last pid, read just before the last listing
        self.forks = None  # /proc/stat's fork counter, read with it
        self.must_list = False
        # Pids given out that were not there when looked at: a task is found in /proc only
        # at the end of its fork, after its pid was allocated (and the cursor moved), so each
        # is looked at once more at the next tick
        self.unseen = ()
        # v2 cgroups of known processes, by path; those where no task ran since the last
        # tick have their processes' statm left unread (quiet_groups)
        self.quiet_root = None if cfg.no_quiet_skip else find_unified_root(self.proc)
        self.qgroups = {}
        self.unified = ""  # the v2 path of the process _identify last read
        # (comm, command line bytes, cgroup bytes) -> (identity JSON, v2 path): a forking
        # server's new workers, and the look again at each new process a tick later, share
        # them; redacting and encoding is most of what a new process costs (bench/RESULTS.md)
        self.ident_memo = {}
        self.outside = None  # /proc/vmstat's outside counters at the last tick
        self.outside_at = -1e18  # when they last moved (monotonic)
        self.mono = 0.0  # this tick's monotonic time
        self.quiet_skipped = 0  # processes left unread at the last tick
        self._unskipped_last = None  # (table, quiet set, what _unskipped gave)
        self.order = None  # known Procs in the last listing's order, or None: rebuild it
        self.fds = []  # their statm descriptors, in that order
        self._listed = []  # that listing (Procs and new names), to rebuild it from
        self.writer = LogWriter(cfg)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.fd_limit = soft if soft != resource.RLIM_INFINITY else 1 << 30
        self.fd_ceiling = self.fd_limit - FD_RESERVE  # statm/cgroup descriptors stop below
        self.unread = 0  # processes not read at the last tick for want of a descriptor
        self.unread_said = 0  # ... as the last `unread` event said
        self.unparsed_said: set = set()  # kinds of /proc file already said not to parse
        self.failed_ticks = 0  # ticks in a row that raised (see _tick_failed)
        self.kmsg = KmsgReader("" if cfg.no_kmsg else cfg.kmsg, cfg.kmsg_backlog)
        self.oom = OomParser(self.page_kib)
        self.notifier = Notifier(cfg.journal)
        self.cgroups = None
        self.cg_note = ""
        if not cfg.no_cgroups:
            root, hier = (cfg.cgroup_root, cgroup_version(cfg.cgroup_root)) if cfg.cgroup_root \
                else find_memory_cgroup_root(self.proc)
            if root:
                self.cgroups = CgroupTracker(root, hier, cfg.cgroup_depth, cfg.cgroup_max)
                self.cgroups.fd_ceiling = self.fd_ceiling
            else:
                self.cg_note = hier
        self.slab_path = "" if cfg.no_slab else self.proc + "/slabinfo"
        self.slab_at = None  # Slab (KiB) when the last `b` was written
        self.ticks = 0
        self.interval = cfg.interval
        self.trouble = False
        self.lowest = None
        self.low_step = cfg.low_step // 1024
        self.last_keyframe = -1e18
        self.last_status = -1e18
        self.last_pss = -1e18
        self.last_cg_scan = -1e18
        self.prev = None  # (wall, mono, psi_full) of the previous tick
        self.oom_total = None
        self.events = []  # (kind, obj) for this tick
        self.warnings = []
        self.want_snapshot = ""
        self.want_rotate = False
        self.stop_reason = ""
        self.started = time.time()
        self.boot_id = (read_file(self.proc + "/sys/kernel/random/boot_id", 64)
                        or b"").decode().strip()
        self.status_line = ""
        self.announced = set()  # pids whose P was written this tick
        self.announced_cg = set()  # cgids whose C was written this tick
        self.triggers = Triggers(cfg, self.proc) if cfg.trigger else None

    # -- header ----------------------------------------------------------------------------
    def header(self, now: float, mono: float, segment: str) -> str:
        uts = os.uname()
        cfg = self.cfg
        head = {
            "format": FORMAT, "sampler": __version__, "host": uts.nodename,
            "boot_id": self.boot_id, "kernel": self.sys.release, "arch": uts.machine,
            "page_size": self.page_kib * 1024, "clk_tck": self.clk_tck,
            "interval_s": cfg.interval, "clock": "realtime", "mono": round(mono, 3),
            "started": round(self.started, 3), "pid": os.getpid(), "uid": os.geteuid(),
            "segment": segment, "proc_root": self.proc, "python": sys.version.split()[0],
            "settings": {
                "rss_delta_kib": cfg.rss_delta // 1024, "rss_delta_pct": cfg.rss_delta_pct,
                "keyframe_s": cfg.keyframe, "top_n": cfg.top_n,
                "status_every_s": cfg.status_every, "pss_top_n": cfg.pss_top_n,
                "pss_every_s": cfg.pss_every, "pss_programs": cfg.pss_programs,
                "pss_budget_ms": round(cfg.pss_budget * 1000, 3),
                "pss_slow_ms": round(cfg.pss_slow * 1000, 3), "fast_interval_s": cfg.fast_interval,
                "low_pct": cfg.low_pct, "psi_full_pct": cfg.psi_full_pct,
                "low_step_kib": self.low_step, "slab_delta_kib": cfg.slab_delta // 1024,
                "slab_top_n": cfg.slab_top_n, "cgroup_depth": cfg.cgroup_depth,
                "cgroup_max": cfg.cgroup_max, "cgroup_stat_n": cfg.cgroup_stat_n,
                "redact": not cfg.no_redact,
                "cgroup_root": self.cgroups.root if self.cgroups else None,
                "cgroup_hier": self.cgroups.hier if self.cgroups else None,
                "quiet_skip": ({"min": QUIET_MIN, "every": QUIET_EVERY}
                               if self.quiet_root is not None else None),
            },
            "fields": FIELDS,
        }
        if self.triggers is not None:
            head["settings"]["triggers"] = self.triggers.settings()
        return f"H {now:.3f} memtrail {FORMAT} {_json(head)}\n"

    # -- processes ---------------------------------------------------------------------------
    def lim(self, rss: int) -> int:
        """How far (KiB) RSS may move from the last written `rss` before a `p` is due:
        computed for changed statm only, rather than kept on each process."""
        return max(self.rss_delta_kib, int(rss * self.rss_delta_pct / 100))

    def _identify(self, name: str, fd: int):
        """Identity of a new process (its `P` tail), False for a kernel thread, 0 for a
        thread's own pid (looked at by number), None if gone."""
        base = f"{self.proc}/{name}/"
        data = read_file(base + "stat", 1024)
        if not data:
            return None
        try:
            comm, ppid, flags, start, thread = parse_stat(data)
        except (ValueError, IndexError):
            return None
        if thread:  # a thread's own pid, looked at by number: not a process, and never
            return 0  # listed, so not kept in `skip` either
        if flags & PF_KTHREAD:  # the flag alone: in a PID namespace pid 2 is a user process
            return False
        try:
            uid = os.fstat(fd).st_uid if fd >= 0 else os.stat(base).st_uid
        except OSError:
            return None
        raw = read_cmdline_bytes(base)
        if raw is None and READ_ERRNO[0] in _NO_FDS:
            return None  # try again with a descriptor, rather than record no command line
        cg = read_file(base + "cgroup", 4096)
        key = (comm, raw, cg)
        memo = self.ident_memo
        known = memo.get(key)
        if known is None:
            known = self._ident_tail(comm, raw, cg)
            if raw is not None and len(raw) <= IDENT_MEMO_CMDLINE:
                if len(memo) >= IDENT_MEMO:
                    del memo[next(iter(memo))]  # the oldest
                memo[key] = known
        self.unified = known[1]
        return f"{name} {start} {ppid} {uid} {known[0]}"

    def _ident_tail(self, comm: str, raw, cg) -> tuple:
        """(the identity's JSON, the v2 path) from the comm, the command line's and
        /proc/PID/cgroup's bytes: what _identify keeps in `ident_memo`."""
        truncated = False
        cmd = None
        if raw is not None:
            cmd, truncated = split_cmdline(raw)
            cmd, cut = fit_cmdline(cmd if self.cfg.no_redact else redact(cmd))
            truncated = truncated or cut
        obj = {"comm": comm, "cmd": [] if cmd is None else cmd}
        if truncated:
            obj["cmd_truncated"] = True
        unified = ""
        if cg:
            obj["cg"], memory = parse_cgroup(cg)
            if memory:
                obj["mcg"] = memory
            if self.quiet_root is not None:
                unified = unified_path(cg)
        return _json(obj), unified

    # -- quiet cgroups -----------------------------------------------------------------------
    def _join(self, st: Proc, path: str) -> None:
        """Put a process in its v2 cgroup's count (the root's processes are never skipped:
        the root's CPU use is the whole host's)."""
        old = st.cg
        new = None
        if self.quiet_root is not None and path not in ("", "/"):
            new = self.qgroups.get(path)
            if new is None:
                new = self.qgroups[path] = QuietGroup(path)
        if new is old:
            return
        if old is not None:
            self._leave(old)
        if new is not None:
            new.members += 1
            new.usage = None  # a new member: no baseline that covers it yet
            new.still = -1
        st.cg = new

    def regroup(self, ts: str, out_new: list) -> None:
        """At keyframes: processes moved to another cgroup since they were identified.
        Their CPU use then shows in the new cgroup, not in the one they are counted in, which
        could stay quiet while they change: each checked cgroup's `cgroup.procs` (in our PID
        namespace only: it lists pids as the reader sees them) is compared with the processes
        counted in it, and one missing from it has its identity read again (with its new
        cgroup). A zombie stays counted (its cgroup file still names the old one)."""
        if not self.same_ns:
            return
        listed = {}
        for group in self.qgroups.values():
            if group.fd >= 0:
                data = read_file(f"{self.quiet_root}{group.path}/cgroup.procs", 1 << 20,
                                 whole=True)
                if data is not None:
                    listed[group] = set(data.decode("ascii", "replace").split())
        if not listed:
            return
        for st in list(self.procs.values()):
            pids = listed.get(st.cg)
            if pids is None or st.pid in pids or not self._alive(st):
                continue  # (gone: its pid may be another's now; the scan drops it)
            data = read_file(f"{self.proc}/{st.pid}/cgroup", 4096)
            path = unified_path(data) if data is not None else st.cg.path
            if path != st.cg.path:
                self._reidentify(st, ts, out_new)
                self._join(st, path)  # (its identity may not name v2 paths: a hybrid host)

    def _still_since(self, st: Proc, tick: int) -> bool:
        """Did no task of the process's cgroup run since the check at `tick` (this tick's
        check included)? Then the process took no page fault in between."""
        group = st.cg
        return (group is not None and 0 <= group.still <= tick
                and group.checked == self.ticks)  # (a backoff tick did not look)

    def _leave(self, group: QuietGroup) -> None:
        group.members -= 1
        group.usage = None
        group.still = -1
        if group.members <= 0:
            self.qgroups.pop(group.path, None)
            close_quietly(group.fd)

    def quiet_groups(self, force: bool) -> set:
        """The cgroups where no task used any CPU since the last tick: their processes' statm
        cannot have moved by their own doing, and are not read this tick.

        A process changes its own memory only by running (a fault, mmap, brk, exit), and every
        nanosecond a task runs is added to its cgroup's `usage_usec`, which is read before any
        statm: equal to the last reading, no task there ran in between, and each process's
        statm is what it was when last read (after the last reading). Accounting that lags
        (a task running when read) shows at the next tick, which then reads them. From
        outside: reclaim and swap (/proc/vmstat's counters, OUTSIDE_KEYS: while they move,
        every process is read), and what has no counter (another process writing into one's
        memory through ptrace or process_vm_writev, a file truncated under a mapping, a process
        moved to another cgroup) waits at most QUIET_EVERY ticks: every process is read then,
        at keyframes, and while memory is short. `force`: read every process this tick.
        Called only while groups are tracked (`qgroups`, which only a quiet_root fills)."""
        outside = self.sys.outside
        now = self.mono
        if outside != self.outside and self.outside is not None:
            # the OOM reaper frees a victim's memory 2 s after the kill (5.18 on), when no
            # counter moves: every process is read for a while after any outside change
            self.outside_at = now
        force = (force or self.trouble or outside is None
                 or now - self.outside_at < OUTSIDE_HOLD_S or self.ticks % QUIET_EVERY == 0)
        self.outside = outside
        quiet = set()
        ticks = self.ticks
        for group in self.qgroups.values():
            if group.members < QUIET_MIN:  # (its count moved by _join/_leave: no baseline)
                continue
            if group.busy >= QUIET_BACKOFF and ticks % QUIET_BACKOFF:
                # Not checked this tick, so its processes are read; its last reading stays:
                # equal at the next check, nothing ran since it, and every read in between
                # came after it
                continue
            if group.fd == -1:
                group.fd = self._open_cpu_stat(group)
            if group.fd < 0:  # (no reading since it was last opened: no baseline)
                continue
            try:
                data = os.pread(group.fd, 64, 0)
            except OSError:  # removed (and maybe made again under the same path): reopen
                os.close(group.fd)
                group.fd = -1
                data = b""
            group.checked = ticks
            usage = data[:data.find(b"\n")] if data.startswith(b"usage_usec ") else None
            if usage is not None and usage == group.usage:
                group.busy = 0
                if not force:
                    quiet.add(group)
                    group.skipped_at = ticks
            else:
                if group.usage is not None:  # a first reading is not "busy"
                    group.busy += 1
                group.still = ticks if usage is not None else -1
            group.usage = usage
        return quiet

    def _open_cpu_stat(self, group: QuietGroup) -> int:
        """The group's cpu.stat descriptor; -1 to try again next tick (out of descriptors),
        -2 never: no cpu.stat (a kernel before 4.15), or a threaded cgroup, whose process's
        other threads may run in its sibling cgroups, outside its CPU use."""
        base = f"{self.quiet_root}{group.path}/"
        kind = read_file(base + "cgroup.type", 64)
        if kind is None and READ_ERRNO[0] in _NO_FDS:
            return -1
        if kind is not None and kind.strip() == b"threaded":  # ("domain threaded" counts
            return -2  # the threads of its threaded children in its own CPU use)
        try:
            fd = os.open(base + "cpu.stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            return -1 if exc.errno in _NO_FDS else -2
        if fd >= self.fd_ceiling:  # keep the reserve: tried again next tick
            os.close(fd)
            return -1
        return fd

    def _open_statm(self, name: str) -> int:
        """A held descriptor of the process's statm, or -1: read by path each tick. Held ones
        stop below `fd_ceiling`, so FD_RESERVE descriptors stay for the log, the directory,
        compression and the periodic reads (status, cmdline, slabinfo, cgroup counters)."""
        try:
            fd = os.open(f"{self.proc}/{name}/statm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in _NO_FDS:
                return -1
            raise
        if fd >= self.fd_ceiling:
            os.close(fd)
            return -1
        return fd

    def _read_statm_by_path(self, st: Proc):
        data = read_file(f"{self.proc}/{st.pid}/statm", 256)
        if not data:
            if READ_ERRNO[0] in _NO_FDS:
                raise BlockingIOError(READ_ERRNO[0], "no descriptor")  # not read, not gone
            raise ProcessLookupError(st.pid)
        return data

    def _same_pid_namespace(self) -> bool:
        """Is the /proc we read the one of our own PID namespace? Only then does every process
        it lists take a pid from our namespace's allocator, which /proc/loadavg reports.
        `NSpid` lists a task's pid in each namespace from the /proc mount's down to its own:
        one entry, ours, means they are the same (a fixture tree has no such line)."""
        data = read_file(self.proc + "/self/status", 4096)
        for line in (data or b"").split(b"\n"):
            if line.startswith(b"NSpid:"):
                return line[6:].split() == [str(os.getpid()).encode()]
        return False

    def _pid_cursor(self):
        """The last pid the kernel allocated in our namespace (the last field of
        /proc/loadavg), or None when it cannot be told."""
        try:
            data = os.pread(self.loadavg_fd, 128, 0)
            return int(data[data.rfind(b" "):]) if data.endswith(b"\n") else None
        except (OSError, ValueError):
            return None

    def _fork_count(self):
        """Processes and threads created since boot, in every namespace (/proc/stat's
        `processes`), or None. The line follows one per CPU and the interrupt counts, so a
        many-core host's file outgrows the first guess: the read grows until it is found."""
        if self.stat_fd < 0:
            return None
        while True:
            try:
                data = os.pread(self.stat_fd, self.stat_size, 0)
            except OSError:
                return None
            at = data.find(b"\nprocesses ")
            end = data.find(b"\n", at + 11) if at >= 0 else -1
            if end >= 0:
                try:
                    return int(data[at + 11:end])
                except ValueError:
                    return None
            if len(data) < self.stat_size or self.stat_size >= 1 << 22:
                return None  # not there (a fixture tree, another kernel): the cursor alone
            self.stat_size <<= 1

    def _listing(self, keyframe: bool):
        """The names in /proc; None when no process can have appeared since the last look; a
        pair of pids to look at one by one instead (those allocated since, when they are all
        the new processes or threads, and those to look at once more); False when /proc
        cannot be listed.

        The pid cursor (/proc/loadavg) says whether a pid was allocated in our namespace since
        the last look: unmoved, nothing new (the listing is skipped). Moved forward by a few,
        the pids between are the only ones given out, unless the allocator went round
        `pid_max` or a process was created with a chosen pid (clone3's set_tid, which moves no
        cursor): either way more were created than the cursor moved, which the fork counter
        says, and then /proc is listed. Listed anyway at a keyframe, after a new name could
        not be looked at (it is tried again), and when unsure."""
        cursor = self._pid_cursor() if self.loadavg_fd >= 0 else None
        unseen, self.unseen = self.unseen, ()
        forks = None
        if (cursor is not None and self.cursor is not None and not keyframe
                and not self.must_list):
            if cursor == self.cursor:
                return ((), unseen) if unseen else None
            gap = cursor - self.cursor
            if 0 < gap <= PROBE_MIN + (len(self.procs) >> 2):
                forks = self._fork_count()
                if forks is not None and self.forks is not None \
                        and 0 <= forks - self.forks <= gap:
                    fresh = range(self.cursor + 1, cursor + 1)
                    self.cursor, self.forks = cursor, forks
                    return (fresh, unseen)
        if keyframe or (cursor is not None and self.cursor is not None
                        and cursor < self.cursor):
            # A kernel thread's pid goes to a new task only after the allocator turned
            # round pid_max: then, and at every keyframe, kernel threads are looked at again
            self.skip = {name for name in self.skip if not name.isdigit()}
        self.cursor = cursor  # read before listing: a process started after it moves it
        if forks is None and cursor is not None:
            forks = self._fork_count()
        self.forks = forks
        self.must_list = False
        try:
            return os.listdir(self.proc)
        except OSError:
            self.cursor = None
            return False

    def scan_processes(self, ts: str, keyframe: bool, out_x: list, out_p: list,
                       out_new: list, initial: bool) -> None:
        """The per-tick hot loop: one pread per known process, a write only on change."""
        procs = self.procs
        shift = self.shift
        pread = os.pread
        watch = self.triggers.changed if self.triggers is not None else None
        quiet = self.quiet_groups(keyframe) if self.qgroups else ()  # before any statm
        self.quiet_skipped = 0
        names = self._listing(keyframe)
        if names is False:
            return
        if names is None or names.__class__ is tuple:
            self._read_known(ts, out_x, out_p, watch, quiet)
            if names is not None:  # new pids, and those last tick did not find yet
                self._probe(names[0], ts, out_new, out_p, watch, initial, True, quiet, out_x)
                self._probe(names[1], ts, out_new, out_p, watch, initial, False, quiet, out_x)
            return
        skip = self.skip
        stirred = self.stirred
        gone = []
        new = []
        listed = []  # the listing's order: Procs, and the names of new ones
        unread = 0  # processes not read this tick for want of a descriptor
        skipped = 0  # ... and in a quiet cgroup
        for name in names:
            st = procs.get(name)
            if st is None:
                if name not in skip:
                    new.append(name)
                    listed.append(name)
                continue
            listed.append(st)
            if quiet and st.cg in quiet:
                skipped += 1
                continue
            try:
                data = pread(st.fd, 256, 0)
            except OSError:
                try:  # fd -1 (past the held ones) reads by path; ESRCH: it has exited
                    if st.fd >= 0:
                        raise
                    data = self._read_statm_by_path(st)
                except BlockingIOError:
                    unread += 1
                    if st.cg is not None:  # not read: its cgroup cannot vouch for it
                        st.cg.usage = None
                    continue
                except OSError:
                    gone.append(name)
                    # Listed but gone: reaped since the listing, or its pid already taken
                    # by a new process this listing counted as known: list again next tick
                    self.must_list = True
                    continue
            if data == st.statm:
                if not keyframe:
                    continue
                fields = data.split(b" ", 4)
            else:  # (a keyframe keeps what is unchanged: 20,000 fresh objects each keyframe
                # would scatter the heap the long-lived ones live in)
                fields = data.split(b" ", 4)
                if _new_image(st.statm, fields):
                    self.execed.append(st)
                st.statm = data
                if st.prog is not None:
                    stirred.add(st.prog)
            try:
                rss = int(fields[1]) << shift
                if keyframe or abs(rss - st.rss) > self.lim(st.rss):
                    shared = int(fields[2]) << shift
                    st.rss = rss
                    out_p.append(f"p {ts} {name} {st.rss} {shared}\n")
                    if watch is not None:
                        watch.append(st)
            except (ValueError, IndexError):
                self._unparsed("statm", name, data)  # its last figures stand
        # Exits show as ESRCH on the held descriptor; a listing diff also catches processes
        # read by path and fixture trees (whose files stay readable once opened).
        listed_names = set(names)
        gone.extend(procs.keys() - listed_names)
        skip.intersection_update(listed_names)
        if self.cursor is not None:  # the last pids given out, not yet in /proc: once more
            self.unseen = tuple(pid for pid in range(max(1, self.cursor - 3), self.cursor + 1)
                                if str(pid) not in listed_names)
        if gone:
            self._drop(gone, ts, out_x)
        unread += self._admit(new, ts, out_new, out_p, watch, initial, [])
        self.unread = unread
        self.quiet_skipped = skipped
        if new:
            self.order, self._listed = None, listed
        else:
            self._set_order(listed if not gone else
                            [st for st in listed if procs.get(st.pid) is st])

    def _read_known(self, ts: str, out_x: list, out_p: list, watch, quiet=()) -> None:
        """Every known process's statm, in the last listing's order, without those gone
        since and those in `quiet` cgroups (quiet_groups): no listing this tick."""
        procs = self.procs
        pread = os.pread
        order = self.order
        if order is None:  # processes joined at the last listing: put them in its order
            order = []
            for x in self._listed:
                st = procs.get(x) if x.__class__ is str else x
                if st is not None and procs.get(st.pid) is st:
                    order.append(st)
            self._set_order(order)
            self._listed = []
        # The table in C loops, a slice at a time (so a 20,000-process tick never holds
        # 20,000 reads at once); only what changed reaches Python code. A read that fails (an
        # exit's ESRCH, or fd -1: read by path) stops `map` at that process only: `extend`
        # keeps the reads before it, a None stands for it, and the loop goes on from the next.
        fds = self.fds
        if quiet:
            known = len(order)
            order, fds = self._unskipped(order, fds, quiet)
            self.quiet_skipped = known - len(order)
        changed = []
        for i in range(0, len(order), 1024):
            part = order[i:i + 1024]
            datas = []
            reads = map(pread, fds[i:i + 1024], _repeat(256), _repeat(0))
            while True:
                try:
                    datas.extend(reads)
                    break
                except OSError:
                    datas.append(None)
            changed += itertools.compress(zip(part, datas), map(ne, datas, map(_statm, part)))
        moved = self._statm_changed
        gone = []
        unread = 0  # processes not read this tick for want of a descriptor
        for st, data in changed:
            if data is None:
                if st.fd >= 0:  # its held descriptor fails: it has exited
                    gone.append(st.pid)
                    continue
                try:
                    data = self._read_statm_by_path(st)
                except BlockingIOError:
                    unread += 1
                    if st.cg is not None:  # not read: its cgroup cannot vouch for it
                        st.cg.usage = None
                    continue
                except OSError:
                    gone.append(st.pid)
                    continue
                if data == st.statm:
                    continue
            moved(st, data, ts, out_p, watch)
        self.unread = unread
        if gone:
            last = self.ticks - 1
            for pid in gone:
                group = procs[pid].cg
                if group is not None and group.skipped_at == last:
                    # left unread since its last read: exited maybe ticks ago, and its pid
                    # may be a new process's already, which only a listing finds
                    self.must_list = True
            self._drop(gone, ts, out_x, from_table=True)

    def _unskipped(self, order: list, fds: list, quiet: set) -> tuple:
        """The table without the processes of `quiet` cgroups, and their descriptors. An idle
        host's quiet set is the same tick after tick: the last one is kept while the table
        (the same list: what changes it in place resets `_unskipped_last`) and the set are
        (0.56 ms a tick at 20,000 otherwise)."""
        last = self._unskipped_last
        if last is not None and last[0] is order and last[1] == quiet:
            return last[2], last[3]
        keep = [st.cg not in quiet for st in order]
        kept = list(itertools.compress(order, keep)), list(itertools.compress(fds, keep))
        self._unskipped_last = (order, frozenset(quiet), *kept)
        return kept

    def _admit(self, new: list, ts: str, out_new: list, out_p: list, watch,
               initial: bool, missing: list) -> int:
        """Take in new /proc names: a held statm descriptor, an identity (`P`) and a first
        `p` line each. Returns how many could not be read for want of a descriptor; the names
        not there (exited, or not yet in /proc) go to `missing`."""
        procs, skip = self.procs, self.skip
        shift = self.shift
        pread = os.pread
        unread = 0
        for name in new:
            if not name.isdigit():
                skip.add(name)
                continue
            try:
                fd = self._open_statm(name)
            except OSError as exc:  # exited between listdir and open, or not readable
                if exc.errno not in (errno.ENOENT, errno.ESRCH):
                    self.must_list = True  # tried again at every tick, as before
                else:
                    missing.append(name)
                continue
            short = READ_ERRNO[1]
            try:
                data = pread(fd, 256, 0) if fd >= 0 else read_file(
                    f"{self.proc}/{name}/statm", 256)
                ident = self._identify(name, fd) if data else None
            except OSError:
                ident = None
            if not ident:
                if READ_ERRNO[1] != short:
                    unread += 1  # not a kernel thread, not gone: seen again next tick
                if fd >= 0:
                    os.close(fd)
                if ident is False:
                    skip.add(name)  # kernel thread: not looked at again until a listing
                    # after a turn of the pid allocator (_listing)
                elif ident is None:
                    self.must_list = True  # there a moment ago: look again next tick
                continue
            fields = data.split(b" ", 3)
            try:
                rss, shared = int(fields[1]) << shift, int(fields[2]) << shift
            except (ValueError, IndexError):
                self._unparsed("statm", name, data)
                if fd >= 0:
                    os.close(fd)
                self.must_list = True  # looked at again next tick
                continue
            st = Proc(name, fd)
            st.ident = ident
            st.statm = data
            if self.unified:
                self._join(st, self.unified)
            if not initial:
                self.young.append(st)
            st.rss = rss
            procs[name] = st
            self.announced.add(name)
            out_new.append(f"P {ts} {st.ident}\n")
            out_p.append(f"p {ts} {name} {st.rss} {shared}\n")
            if watch is not None:
                watch.append(st)
        return unread

    def _probe(self, pids, ts: str, out_new: list, out_p: list, watch, initial: bool,
               fresh: bool, quiet=(), out_x=None) -> None:
        """Pids looked at one by one (_listing): those that are processes join the table,
        after the known ones (a listing orders by pid). `fresh`: given out since the last
        look; those not there yet are looked at once more next tick. A known one is a
        long-lived pid the allocator stepped over, unless it sits in a `quiet` cgroup, left
        unread this tick: reaped by a parent outside its cgroup (no CPU used in it), its pid
        may be given out again already, so it is looked at."""
        procs, skip = self.procs, self.skip
        new = []
        dead = []
        for pid in pids:
            name = str(pid)
            st = procs.get(name)
            if st is None:
                skip.discard(name)  # a dead kernel thread's pid, given out again
                new.append(name)
            elif quiet and st.cg in quiet and not self._alive(st):
                dead.append(name)
                new.append(name)
        if dead:
            self._drop(dead, ts, out_x, from_table=True)
        if not new:
            return
        missing = []
        self.unread += self._admit(new, ts, out_new, out_p, watch, initial, missing)
        if fresh and missing:
            self.unseen = tuple(map(int, missing))
        joined = [st for st in map(procs.get, new) if st is not None]
        if joined:  # in place: a copy of a 20,000-process table is 0.45 ms
            self._unskipped_last = None  # the same list, changed
            self.order.extend(joined)
            self.fds.extend(map(_fd, joined))

    def _alive(self, st: Proc) -> bool:
        """Is the process this Proc describes still there (not another one with its pid)?"""
        if st.fd >= 0:
            try:
                os.pread(st.fd, 256, 0)
                return True
            except OSError:
                return False
        data = read_file(f"{self.proc}/{st.pid}/stat", 1024)
        if data is None and READ_ERRNO[0] in _NO_FDS:
            return True  # cannot tell: as before, a known pid
        try:
            return stat_fields(data)[19] == _ident_start(st.ident).encode()
        except (AttributeError, ValueError, IndexError):
            return False

    def _statm_changed(self, st: Proc, data: bytes, ts: str, out_p: list, watch) -> None:
        """A process whose statm changed: a `p` line when its RSS left its band."""
        fields = data.split(b" ", 4)
        if _new_image(st.statm, fields):
            self.execed.append(st)
        st.statm = data
        if st.prog is not None:
            self.stirred.add(st.prog)  # its PSS, and its program's, may have moved
        try:
            rss = int(fields[1]) << self.shift
            if abs(rss - st.rss) > self.lim(st.rss):
                shared = int(fields[2]) << self.shift
                st.rss = rss
                out_p.append(f"p {ts} {st.pid} {rss} {shared}\n")
                if watch is not None:
                    watch.append(st)
        except (ValueError, IndexError):
            self._unparsed("statm", st.pid, data)  # its last figures stand

    def _set_order(self, order: list) -> None:
        self.order = order
        self.fds = list(map(_fd, order))

    def _drop(self, gone: list, ts: str, out_x: list, from_table: bool = False) -> None:
        """Forget processes that exited; their `X` lines in pid order. `from_table`: they
        leave the table too (`order`, `fds`), whose survivors are the next reads' order (a
        listing sets the order itself)."""
        procs = self.procs
        dropped = []
        for name in sorted(set(gone), key=int):
            st = procs.pop(name, None)
            if st is None:
                continue
            dropped.append(st)
            self.detail_vals.pop(name, None)
            self.pss.gone(st)
            if st.cg is not None:
                self._leave(st.cg)
            if st.fd >= 0:
                os.close(st.fd)
            out_x.append(f"X {ts} {name}\n")
        if not from_table:
            return
        order = self.order
        if len(dropped) <= 64:
            # A few exits a tick (a churning host): out of the table in place, rather than a
            # copy of it and of its descriptors every tick
            self._unskipped_last = None  # the same list, changed
            fds = self.fds
            try:
                for st in dropped:
                    i = order.index(st)
                    del order[i], fds[i]
                return
            except ValueError:  # not in the table (joined this tick): filtered below
                pass
        self._set_order([st for st in order if procs.get(st.pid) is st])

    def _tick_failed(self, exc: Exception) -> None:
        """A bug in a tick (a /proc or a kernel format the sampler did not foresee): the
        recording goes on. The tick is lost and said in an `error` event, which the next tick
        writes; the segment is closed, so the next one restates every identity (the lost tick
        may have taken in processes whose `P` lines went with it). TICK_FAILURES_MAX ticks
        failing in a row end the sampler with the traceback (systemd restarts the unit)."""
        self.failed_ticks += 1
        if self.failed_ticks >= TICK_FAILURES_MAX:
            raise exc
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_name}:{tb.tb_lineno}" if tb is not None else "?"
        error = f"{type(exc).__name__}: {exc}"[:300]
        self.events.append(("error", {"error": error, "where": where,
                                      "in_a_row": self.failed_ticks}))
        print(f"memtrail: a tick failed ({error}, at {where}); the recording goes on "
              f"(please report it)", file=sys.stderr, flush=True)

    def _unparsed(self, what: str, pid: str, data: bytes) -> None:
        """A /proc file that did not parse (a kernel or a FUSE /proc writing something else):
        said once per kind of file, in a `warn` event with an example, then skipped quietly."""
        if what not in self.unparsed_said:
            self.unparsed_said.add(what)
            self.events.append(("warn", {"msg": f"/proc/{pid}/{what} did not parse "
                                         f"({data[:60]!r}): skipped, here and wherever it "
                                         f"happens again (said once)"}))

    def recheck_young(self, ts: str, out_new: list) -> list:
        """A process first seen right after fork may exec a moment later: look once more.
        Returns those looked at (recheck_execed need not read them again this tick)."""
        young, self.young = self.young, []
        for st in young:
            self._reidentify(st, ts, out_new)
        return young

    def recheck_execed(self, ts: str, out_new: list, rechecked: list) -> None:
        """Processes that exec'd later in life (a shell that waits, then `exec`s the server:
        an entrypoint's usual end). statm's fourth field, `text` (the code size), is set by
        exec alone, so a change there is a new program image: its identity is read again, and
        the memory from this tick on is the new program's, not the shell's.
        An exec of the same binary (a program re-executing itself) keeps the code size and is
        not seen here: recheck_stacks sees it in the largest processes."""
        execed, self.execed = self.execed, []
        procs = self.procs
        done = set(rechecked) if rechecked else ()
        for st in execed:
            if st in done:
                continue
            if procs.get(st.pid) is st:
                self._reidentify(st, ts, out_new)

    def recheck_stacks(self, top: list, ts: str, out_new: list) -> None:
        """An exec of the same binary (a Python launcher exec'ing `python3 -m server`, a
        daemon re-executing itself with new arguments) keeps statm's code size, so
        recheck_execed misses it. It does place a new stack, at a new random address (ASLR):
        /proc/PID/stat's `startstack` moves on exec and at no other time, while a program
        rewriting its own title (postgres, setproctitle) leaves it be. So the largest
        processes, at each status tick, have that one field compared: their identity is read
        again when it moved, and when one first joins them (it may have exec'd since it was
        first seen). Only the top N: one small read each every status period. Where the
        field reads 0 (another user's process, without root; ASLR off gives equal values)
        nothing is told."""
        stacks, before = {}, self.stacks
        announced = self.announced
        for st in top:
            data = read_file(f"{self.proc}/{st.pid}/stat", 1024)
            try:
                mark = stat_fields(data)[25]
            except (AttributeError, ValueError, IndexError):  # None: gone, or unreadable
                continue
            if mark == b"0":
                continue
            stacks[st.pid] = mark
            last = before.get(st.pid)
            if last is None and st.pid not in announced:
                # First among the largest: an exec since it was first seen, or only a title
                # it rewrote (postgres); the latter keeps its program, and its PSS figures
                self._reidentify(st, ts, out_new, keep_program=True)
            elif last is not None and last != mark:
                self._reidentify(st, ts, out_new)
        self.stacks = stacks

    def _reidentify(self, st: Proc, ts: str, out_new: list, keep_program: bool = False) -> bool:
        """Read a process's identity again; a `P` line (and True) when it changed.
        `keep_program`: when it is still the same program, it keeps its PSS state (a title
        rewritten, not a new image)."""
        fresh = self._identify(st.pid, st.fd)
        if not fresh or fresh == st.ident:
            return False
        st.ident = fresh
        self._join(st, self.unified)
        if not (keep_program and st.prog is not None and _program_of(st) == st.prog):
            if st.prog is not None:
                self.stirred.add(st.prog)  # it left its program, as an exit does
            st.prog = None
            st.pss = None  # a new member for the PSS tier: its new program is read again
        self.announced.add(st.pid)
        out_new.append(f"P {ts} {st.ident}\n")
        return True

    def top(self, n: int) -> list:
        """The n largest by RSS (ties in table order, as heapq.nlargest gives them)."""
        return sorted(self.procs.values(), key=_by_rss, reverse=True)[:n] if n else []

    def details(self, ts: str, mono: float, snapshot: bool, do_status: bool, do_pss: bool,
                out: list, out_new: list) -> None:
        """Tiered detail: status for the top N; the PSS tier plans at status ticks (whole
        programs, see PssTier) and reads a budgeted share of its round every tick."""
        cfg = self.cfg
        if do_status or do_pss:
            ranked = self.top(max(cfg.top_n if do_status else 0, cfg.pss_top_n))
            if do_status:
                self.recheck_stacks(ranked[:cfg.top_n], ts, out_new)
                last = self.detail_vals
                for st in ranked[:cfg.top_n]:
                    data = read_file(f"{self.proc}/{st.pid}/status", 4096)
                    if not data:
                        continue
                    vals = parse_kv_kib(data, STATUS_KEYS)
                    if snapshot or _moved(last.get(st.pid), vals, self.rss_delta_kib):
                        last[st.pid] = vals
                        out.append(f"d {ts} {st.pid} " + " ".join(map(_fmt, vals)) + "\n")
            self.pss.plan(self.procs, ranked, mono, do_pss, snapshot, self.events,
                          self._still_since, self.ticks)
        self.pss.drain(ts, mono, self.interval / cfg.interval, out, self.events)

    # -- cgroups, slab, kernel log -------------------------------------------------------------
    def scan_cgroups(self, ts: str, keyframe: bool, rescan: bool, counters: bool,
                     out: list) -> None:
        tracker = self.cgroups
        if tracker is None:
            return
        if rescan:
            new, removed = tracker.scan()
            for group in removed:
                out.append(f"G {ts} {group.cgid}\n")
            for group in new:
                obj = {"path": group.path, "hier": tracker.hier}
                self.announced_cg.add(group.cgid)
                out.append(f"C {ts} {group.cgid} {_json(obj)}\n")
        lim = self.rss_delta_kib
        stepped = []  # cgroups whose oom_kill counter went up this tick
        grown = []  # (growth, cgroup) of those that grew far since their make-up was read
        for group in list(tracker.groups.values()):
            try:
                raw = os.pread(group.fd, 64, 0) if group.fd >= 0 else tracker.read_usage(group)
                current = int(raw) // 1024
            except (OSError, ValueError) as exc:
                if getattr(exc, "errno", None) in _NO_FDS:
                    continue  # not gone: no descriptor to read it with this tick
                tracker.drop(group)
                out.append(f"G {ts} {group.cgid}\n")
                continue
            fresh = group.current < 0
            changed = fresh or keyframe or current > group.hi or current < group.lo
            if fresh:  # growth counts from the first reading: a cgroup seen big waits its turn
                group.makeup_at = current
            growth = current - group.makeup_at
            if growth >= MAKEUP_GROWTH_KIB and current * 4 >= group.makeup_at * 5 \
                    and group.path != "/":
                grown.append((growth, group, current))
            if counters or fresh or keyframe:
                before = group.counters
                group.counters = tracker.read_counters(group)
                if before[2] is not None and group.counters[2] is not None \
                        and group.counters[2] > before[2]:
                    self.events.append(("cgroup_oom", {
                        "cgid": group.cgid, "path": group.path, "oom_kill": group.counters[2],
                        "delta": group.counters[2] - before[2]}))
                    stepped.append(group)
                changed = changed or group.counters[1:3] != before[1:3]
            if changed:
                group.current = current
                group.lo, group.hi = current - lim, current + lim
                out.append(f"c {ts} {group.cgid} {current} "
                           + " ".join(map(_fmt, group.counters)) + "\n")
        if self.cfg.cgroup_stat_n and (counters or keyframe or grown):
            self._makeup(ts, keyframe, counters or keyframe, stepped, grown, out)

    def _makeup(self, ts: str, keyframe: bool, status: bool, stepped: list, grown: list,
                out: list) -> None:
        """`m` lines: what the largest cgroups' usage is made of (and a cgroup's whose OOM
        counter just stepped) at status ticks, and at once for one that grew by a quarter
        and MAKEUP_GROWTH_KIB since its last reading, when a part moved past the change
        threshold. A CI job's cgroup at 7.9 of 8 GiB then says whether that was its
        processes, a tmpfs they filled, page cache or the kernel's."""
        tracker = self.cgroups
        n = self.cfg.cgroup_stat_n
        ranked = sorted((g for g in tracker.groups.values() if g.path != "/" and g.current >= 0),
                        key=_current, reverse=True)[:n] if status else []
        grown.sort(key=_first, reverse=True)
        now = {g: current for _growth, g, current in grown[:n]}  # this tick's usage
        chosen = ranked + [g for g in stepped if g not in ranked]
        chosen += [g for g in now if g not in chosen]
        lim = self.rss_delta_kib
        for group in chosen:
            vals = tracker.read_makeup(group)
            group.makeup_at = now.get(group, max(group.current, 0))
            if vals is None:
                continue
            old = group.makeup
            if keyframe or old is None or any(
                    (a is None) != (b is None) or (a is not None and abs(a - b) > lim)
                    for a, b in zip(vals, old)):
                group.makeup = vals
                out.append(f"m {ts} {group.cgid} " + " ".join(map(_fmt, vals)) + "\n")

    def read_slab(self, ts: str, slab_kib, keyframe: bool, out: list) -> None:
        if not self.slab_path or slab_kib is None:
            return
        delta = self.cfg.slab_delta // 1024
        if not keyframe and self.slab_at is not None and abs(slab_kib - self.slab_at) < delta:
            return
        data = read_file(self.slab_path, 1 << 22, whole=True)
        if data is None:
            err = READ_ERRNO[0]
            if err in _NO_FDS:  # not a permission problem: try again at the next chance
                self.events.append(("warn", {"msg": "/proc/slabinfo not read: out of file "
                                             f"descriptors ({errno.errorcode[err]}, limit "
                                             f"{self.fd_limit})"}))
                return
            self.slab_path = ""
            why = ("needs root" if err in (errno.EACCES, errno.EPERM)
                   else errno.errorcode.get(err, str(err)))
            self.events.append(("warn", {"msg": f"/proc/slabinfo unreadable ({why}): "
                                         "no slab cache breakdown"}))
            return
        caches = []
        for line in data.split(b"\n")[2:]:
            parts = line.split()
            if len(parts) >= 15:
                try:
                    kib = int(parts[14]) * int(parts[5]) * self.page_kib
                except ValueError:
                    continue
                caches.append((kib, parts[0].decode("ascii", "replace")))
        self.slab_at = slab_kib
        top = sorted(caches, reverse=True)[:self.cfg.slab_top_n]
        if top:
            out.append(f"b {ts} " + " ".join(f"{name}={kib}" for kib, name in top) + "\n")

    def read_kmsg(self) -> None:
        for text in self.kmsg.messages():
            event = self.oom.feed(text)
            if event is None:
                continue
            st = self.procs.get(str(event["pid"]))
            event["cmd"] = ident_cmd(st.ident) if st is not None else None
            event["source"] = "kmsg"
            self.events.append(("oom_kill", event))
            self.notifier.journal(
                "oom_kill", f"OOM killer killed {event['name']} (pid {event['pid']})"
                f"{': ' + ' '.join(event['cmd']) if event['cmd'] else ''}", priority=3,
                oom_victim_pid=event["pid"], oom_victim_name=event["name"],
                oom_victim_cmdline=" ".join(event["cmd"] or []) or None,
                oom_victim_anon_kib=event.get("anon_kib"),
                oom_constraint=event.get("constraint"), oom_memcg=event.get("oom_memcg"))

    # -- one tick ------------------------------------------------------------------------------
    def tick(self, now: float, mono: float, cpu0: float, new_segment: bool) -> bytes:
        """One tick's lines as one buffer (for tests and tools; the loop uses tick_sections)."""
        return b"".join(self.tick_sections(now, mono, cpu0, new_segment))

    def tick_sections(self, now: float, mono: float, cpu0: float, new_segment: bool) -> list:
        """Collect one tick: its lines in order, in a few buffers written with one writev.
        A segment start gets every identity."""
        cfg = self.cfg
        ts = f"{now:.3f}"
        self.mono = mono
        initial = self.ticks == 0
        snapshot = self.want_snapshot
        self.want_snapshot = ""
        periodic = mono - self.last_keyframe >= cfg.keyframe
        self.read_kmsg()  # before the scan, so a victim's command line is still known
        system = self.sys.read()
        avail, total = available_kib(system), system[S_INDEX["mem_total"]]
        low = self._rate_and_lows(now, mono, system, avail)
        if low:
            snapshot = snapshot or "low"
        if snapshot == "signal":
            self.events.append(("snapshot", {"reason": "SIGUSR1"}))
        reason = ("segment" if new_segment else snapshot) or ("periodic" if periodic else "")
        keyframe = bool(reason)
        if keyframe:
            self.last_keyframe = mono
        self.announced, self.announced_cg = set(), set()
        out_x, out_p, out_new = Lines(), Lines(), Lines()
        out_detail, out_cg, out_slab = Lines(), Lines(), Lines()
        young = self.recheck_young(ts, out_new)  # first seen last tick, before new ones join
        if keyframe and self.qgroups:
            self.regroup(ts, out_new)
        self.scan_processes(ts, keyframe, out_x, out_p, out_new, initial)
        if self.execed:
            self.recheck_execed(ts, out_new, young)
        if self.triggers is not None:
            self.triggers.evaluate(self.procs, total, avail if low else None, mono, keyframe,
                                   self.events, self.notifier)
        if self.unread != self.unread_said:  # when it starts, changes and ends (0)
            self.unread_said = self.unread
            self.events.append(("unread", {"procs": self.unread, "reason": "EMFILE",
                                           "fd_limit": self.fd_limit}))
        do_status = snapshot or initial or mono - self.last_status >= cfg.status_every
        do_pss = snapshot or initial or mono - self.last_pss >= cfg.pss_every
        if do_status:
            self.last_status = mono
        if do_pss:
            self.last_pss = mono
        self.details(ts, mono, bool(snapshot) or initial, do_status, do_pss, out_detail,
                     out_new)
        oom_now = system[S_INDEX["oom_kill"]]
        oom_step = self.oom_total is not None and oom_now is not None and oom_now > self.oom_total
        if oom_step:
            self.events.append(("oom_counter", {"delta": oom_now - self.oom_total,
                                                "total": oom_now}))
        if oom_now is not None:
            self.oom_total = oom_now
        rescan = keyframe or mono - self.last_cg_scan >= 10.0
        if rescan:
            self.last_cg_scan = mono
        self.scan_cgroups(ts, keyframe, rescan, do_status or oom_step, out_cg)
        self.read_slab(ts, system[S_INDEX["slab"]], keyframe, out_slab)

        cpu = time.process_time() - cpu0
        wall = time.monotonic() - mono
        system += [len(self.procs), int(cpu * 1e6), int(wall * 1e6), int(self.interval * 1000),
                   *self.sys.late]
        head = Lines()
        head.append("s " + ts + " " + " ".join(map(_fmt, system)) + "\n")
        for kind, obj in self.events:
            head.append(f"E {ts} {kind} {_json(obj)}\n")
        self.events = []
        head += out_x
        if keyframe:
            ncg = len(self.cgroups.groups) if self.cgroups else 0
            kobj = {"reason": reason}
            by_path = sum(1 for st in self.procs.values() if st.fd < 0)
            if by_path:  # past the descriptor limit's share: read by path (slower, complete)
                kobj["by_path"] = by_path
                kobj["fd_limit"] = self.fd_limit
            if self.unread:
                kobj["unread"] = self.unread
            head.append(f"K {ts} {len(self.procs)} {ncg} {_json(kobj)}\n")
            if new_segment:  # every identity again, so this segment stands alone
                for name, st in self.procs.items():
                    if name not in self.announced:
                        head.append(f"P {ts} {st.ident}\n")
                if self.cgroups:
                    for g in self.cgroups.groups.values():
                        if g.cgid not in self.announced_cg:
                            obj = {"path": g.path, "hier": self.cgroups.hier}
                            head.append(f"C {ts} {g.cgid} {_json(obj)}\n")
        self.ticks += 1
        quiet = f" ({self.quiet_skipped} idle, unread)" if self.quiet_skipped else ""
        self.status_line = (f"tick {self.interval:g}s, {len(self.procs)} procs{quiet}, "
                            f"MemAvailable "
                            f"{100 * avail // total if avail is not None and total else '?'}%, "
                            f"log {self.writer.total / 1e6:.1f} MB")
        return [head, out_new, out_p, out_detail, out_cg, out_slab]

    def _rate_and_lows(self, now: float, mono: float, system: list, avail) -> bool:
        """Adapt the interval to the host's state; True at a new low of MemAvailable."""
        cfg = self.cfg
        total = system[S_INDEX["mem_total"]]
        psi_full = system[S_INDEX["psi_full_us"]]
        full_pct = 0.0
        if self.prev is not None:
            pwall, pmono, pfull = self.prev
            dt = mono - pmono
            jump = (now - pwall) - dt
            if abs(jump) > 1.0:
                self.events.append(("clock", {"jump_s": round(jump, 3)}))
            if dt > 2 * self.interval + 1.0:
                self.events.append(("gap", {"from": round(pwall, 3), "to": round(now, 3),
                                            "lost_ticks": int(dt / self.interval) - 1,
                                            "reason": "sampler not scheduled (stopped or "
                                                      "suspended)"}))
            if psi_full is not None and pfull is not None and dt > 0:
                full_pct = 100.0 * (psi_full - pfull) / (dt * 1e6)
        self.prev = (now, mono, psi_full)
        if not total or avail is None:
            return False
        pct = 100.0 * avail / total
        if self.trouble:
            calm = pct > cfg.low_pct * 1.2 and full_pct < cfg.psi_full_pct / 2
            if calm:
                self.trouble = False
                self._set_interval(cfg.interval, "recovered")
        elif pct < cfg.low_pct or full_pct > cfg.psi_full_pct:
            self.trouble = True
            why = (f"MemAvailable {pct:.1f}%" if pct < cfg.low_pct
                   else f"PSI full {full_pct:.1f}%")
            self._set_interval(cfg.fast_interval, why)
        step = self.low_step or max(total // 100, 16384)
        if self.lowest is None:
            self.lowest = avail
        elif avail < self.lowest - step:
            self.lowest = avail
            self.events.append(("low", {"available_kib": avail, "pct": round(pct, 2)}))
            return True
        return False

    def _set_interval(self, interval: float, reason: str) -> None:
        if interval != self.interval:
            self.interval = interval
            self.events.append(("rate", {"interval_ms": int(interval * 1000),
                                         "reason": reason}))

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> int:
        cfg = self.cfg
        writer = self.writer
        rfd, wfd = os.pipe()
        for fd in (rfd, wfd):
            os.set_blocking(fd, False)
        # poll, not select: select() refuses a descriptor past 1023, and a sampler started
        # with many inherited descriptors (or in a process that holds many) gets one
        waker = select.poll()
        waker.register(rfd, select.POLLIN)
        _signal.set_wakeup_fd(wfd)
        for sig, handler in ((_signal.SIGTERM, self._on_stop), (_signal.SIGINT, self._on_stop),
                             (_signal.SIGHUP, self._on_hup), (_signal.SIGUSR1, self._on_usr1)):
            _signal.signal(sig, handler)
        writer.startup_cleanup()
        if self.kmsg.fd is None and cfg.kmsg and not cfg.no_kmsg:
            self.warnings.append(f"kernel log unreadable ({self.kmsg.error}): OOM kills are "
                                 "seen through /proc/vmstat oom_kill only, without names")
        self.events.append(("start", {
            "pid": os.getpid(), "version": __version__,
            "kmsg": "ok" if self.kmsg.fd is not None else self.kmsg.error,
            "cgroups": (f"{self.cgroups.hier} {self.cgroups.root}" if self.cgroups
                        else self.cg_note or "disabled"),
            "warnings": self.warnings}))
        next_mono = time.monotonic()
        deadline = next_mono + cfg.duration if cfg.duration > 0 else None
        ready = False
        while True:
            # A stop signal gets one last tick, so the log ends with the moment of the stop
            # (`memtrail run` stops the sampler right after its command ended or was killed).
            final = bool(self.stop_reason)
            now, mono, cpu0 = time.time(), time.monotonic(), time.process_time()
            if writer.fd is not None:
                if writer.segment_gone():
                    writer.close_segment(compress=False)
                    self.events.append(("warn", {"msg": "the log segment was removed or "
                                                 "replaced; started a new one"}))
                elif self.want_rotate or writer.rotation_due(mono):
                    writer.close_segment(f"E {now:.3f} rotate {{}}\n".encode())
            self.want_rotate = False
            if writer.notes:
                self.events += [("warn", {"msg": msg}) for msg in writer.notes]
                writer.notes = []
            new_segment = writer.fd is None
            try:
                data = self.tick_sections(now, mono, cpu0, new_segment)
                self.failed_ticks = 0
            except Exception as exc:  # noqa: BLE001 - a bug must not end the recording
                self._tick_failed(exc)
                if writer.fd is not None:
                    writer.close_segment(f"E {now:.3f} rotate {{}}\n".encode())
                data = None
            if data is None:
                pass  # the failed tick is lost; its `error` event goes out with the next
            elif not new_segment:
                writer.write(data, now, mono)  # a failure closes it: next tick starts anew
            else:
                gap = ""
                if writer.gap is not None:
                    start, lost, why = writer.gap
                    gap = f"E {now:.3f} gap " + _json({
                        "from": round(start, 3), "to": round(now, 3), "lost_ticks": lost,
                        "reason": why}) + "\n"

                def head(name, now=now, mono=mono, gap=gap):
                    return self.header(now, mono, name) + gap
                if writer.open_segment(now, mono, head, data):
                    writer.retention(now)
                elif not ready:
                    raise Fatal(f"cannot write to log directory {cfg.dir}: {writer.gap[2]}")
            if writer.compressor.busy() and not self.trouble:
                if writer.compressor.step(256 << 10, mono):
                    writer.retention(now)
            if not ready:
                ready = True
                self._after_first_tick()
            if final:
                break
            if self.notifier.addr:
                msg = "STATUS=" + self.status_line
                self.notifier.notify("WATCHDOG=1\n" + msg if self.notifier.watchdog else msg)
            took = time.monotonic() - mono
            if took > self.interval:
                self.events.append(("overrun", {"took_ms": int(took * 1000),
                                                "interval_ms": int(self.interval * 1000)}))
            if deadline is not None and time.monotonic() >= deadline:
                self.stop_reason = "duration reached"
                break
            # Pace on the monotonic clock; after an overrun, go on from now (no catch-up burst).
            next_mono += self.interval
            wait = next_mono - time.monotonic()
            if wait < 0:
                next_mono, wait = time.monotonic(), 0.0
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            while wait > 0 and not (self.stop_reason or self.want_snapshot or self.want_rotate):
                # A long interval must not starve systemd's watchdog: ping at half its period.
                nap = min(wait, self.notifier.watchdog_s / 2) if self.notifier.watchdog else wait
                if waker.poll(nap * 1000):  # ms, rounded up
                    break
                wait = next_mono - time.monotonic()
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                if wait > 0 and self.notifier.watchdog:
                    self.notifier.notify("WATCHDOG=1")
            try:
                while os.read(rfd, 64):
                    pass
            except OSError:
                pass
        return self._finish()

    def _after_first_tick(self) -> None:
        """Warm-up done (every code path of a tick has run once): now lock and protect."""
        cfg = self.cfg
        trim_heap()
        self.mlock = "disabled" if cfg.no_mlock else lock_memory()
        self.oom_adj = "disabled" if cfg.no_oom_adj else lower_oom_score(cfg.oom_score_adj)
        if not self.mlock.startswith(("locked", "disabled")):
            self.events.append(("warn", {"msg": f"memory not locked: {self.mlock}"}))
        self.events.append(("residency", {"mlock": self.mlock, "oom_score_adj": self.oom_adj,
                                          "heap": heap_setting()}))
        self.notifier.notify("READY=1\nSTATUS=" + self.status_line)
        self.notifier.journal("start", f"memtrail started recording to {cfg.dir}",
                              memtrail_dir=os.path.abspath(cfg.dir), memtrail_pid=os.getpid())
        if not cfg.quiet:
            print(f"memtrail: recording to {cfg.dir} every {cfg.interval:g}s "
                  f"(pid {os.getpid()}, {len(self.procs)} processes, memory {self.mlock})",
                  file=sys.stderr)

    def _finish(self) -> int:
        now = time.time()
        self.notifier.notify("STOPPING=1")
        events = "".join(f"E {now:.3f} {k} {_json(o)}\n" for k, o in self.events)
        end = f"Z {now:.3f} {_json({'reason': self.stop_reason, 'ticks': self.ticks})}\n"
        if self.writer.fd is not None:
            self.writer.write((events + end).encode(), now, 0.0)
        self.writer.close_segment(compress=False)
        self.notifier.journal("stop", f"memtrail stopped ({self.stop_reason}) after "
                              f"{self.ticks} ticks", memtrail_ticks=self.ticks)
        if self.cfg.pidfile:
            _unlink_own(None, self.cfg.pidfile)  # only while it is still our own file
        if not self.cfg.quiet:
            print(f"memtrail: stopped ({self.stop_reason}) after {self.ticks} ticks",
                  file=sys.stderr)
        return 0

    def _on_stop(self, signum, _frame) -> None:
        self.stop_reason = SIGNAL_NAMES.get(signum, f"signal {signum}")

    def _on_hup(self, _signum, _frame) -> None:
        self.want_rotate = True

    def _on_usr1(self, _signum, _frame) -> None:
        # Only a flag: the tick that takes the snapshot records the event. Appending to
        # self.events here could land between a tick writing its events and clearing them.
        self.want_snapshot = "signal"


_fd = attrgetter("fd")
_statm = attrgetter("statm")
_repeat = itertools.repeat


def _by_rss(st: Proc) -> int:
    return st.rss


def _new_image(old: bytes, fields: list) -> bool:
    """Did statm's `text` (its fourth field, the code size, which only exec sets) change?
    `fields`: the new statm split at its first four spaces. See Sampler.recheck_execed.
    A statm of zeros is a process that exited (a zombie has no memory left), not a new
    image: read again, its command line is empty already."""
    return fields[3:4] != old.split(b" ", 4)[3:4] and fields[0] != b"0"


def _moved(before, after, lim: int) -> bool:
    """Did any value move past `lim` (or appear, or vanish)? `before` is a list, or the bytes
    of the values as written (`123 - 45`, the PSS tier's)."""
    if before is None:
        return True
    if isinstance(before, bytes):
        before = [None if x == b"-" else int(x) for x in before.split()]
    for a, b in zip(before, after):
        if (a is None) != (b is None) or (a is not None and abs(a - b) > lim):
            return True
    return False


def main(argv=None) -> int:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    if sys.stderr is not None:  # None: started with stderr closed (`2>&-`)
        faulthandler.enable()  # a watchdog SIGABRT then shows where it was stuck (journal)
    try:
        check_log_dir(cfg.dir, cfg.dir_managed)
        check_writable(cfg.dir)
        raise_fd_limit()
        sampler = Sampler(cfg)
        if cfg.pidfile:
            write_pidfile(cfg.pidfile)
        return sampler.run()
    except Fatal as exc:
        print(f"memtrail: {exc}", file=sys.stderr)
        return 1


def lean_reexec_argv(path: str, argv: list, code_fd: int = -1):
    """The command line that runs the file `path` as an imported module, or None. With
    `code_fd`, a descriptor holding the file's compiled code (compiled_code_fd), the new image
    runs that code rather than compiling the file again.

    CPython keeps the parse tree of a script for as long as the script runs (it is freed when
    the module's code returns, which a recorder's never does): about 5.5 MiB, locked in memory
    with the rest by mlockall. A module's tree is freed once it is compiled, and not built at
    all when __pycache__ has it. The module is loaded by its path with the importer's own
    loader (already in memory), so sys.path is untouched and no other file can stand in for
    it. The interpreter's flags (-I, -S, -B, -O, -X, -W) are kept, and it is sys.executable,
    never a `python3` looked up on PATH (that may be a shim that forks).
    """
    if not sys.executable:
        return None
    flags = sys.flags
    opts = []
    if flags.isolated:
        opts.append("-I")
    else:
        opts += ["-E"] * bool(flags.ignore_environment) + ["-s"] * bool(flags.no_user_site)
    opts += (["-S"] * bool(flags.no_site) + ["-B"] * bool(flags.dont_write_bytecode)
             + ["-O"] * flags.optimize)
    for key, value in getattr(sys, "_xoptions", {}).items():
        opts += ["-X", key if value is True else f"{key}={value}"]
    for warning in sys.warnoptions:
        opts += ["-W", warning]
    if code_fd >= 0:
        return [sys.executable, *opts, "-c", _LOAD_CODE, os.path.abspath(path), str(code_fd),
                *argv]
    return [sys.executable, *opts, "-c", _LOAD_BY_PATH, os.path.abspath(path), *argv]


# The re-executed program: load the file named by its first argument as module `sampler` and
# run it with the rest (`ps` still shows .../sampler.py, and `memtrail stop` still knows it).
_LOAD_BY_PATH = (
    "import sys, _frozen_importlib as b, _frozen_importlib_external as e; "
    "l = e.SourceFileLoader('sampler', sys.argv.pop(1)); "
    "m = b.module_from_spec(b.spec_from_loader(l.name, l)); "
    "sys.modules[l.name] = m; l.exec_module(m); sys.exit(m.main())")

# The same, running the code the script compiled before the exec: read from the inherited
# descriptor that follows the path, then closed.
_LOAD_CODE = (
    "import sys, posix, marshal, _frozen_importlib as b, _frozen_importlib_external as e; "
    "l = e.SourceFileLoader('sampler', sys.argv.pop(1)); f = int(sys.argv.pop(1)); "
    "m = b.module_from_spec(b.spec_from_loader(l.name, l)); sys.modules[l.name] = m; "
    "d = b''.join(iter(lambda: posix.read(f, 1 << 20), b'')); posix.close(f); "
    "exec(marshal.loads(d), m.__dict__); del d; sys.exit(m.main())")


def compiled_code_fd(path: str) -> int:
    """A descriptor (memfd, inherited by the exec) holding this file's compiled code, or -1.

    Why: compiling a 4000-line file leaves the compiler's freed working memory scattered
    through the heap, among objects that live on: a sampler that compiled itself at start-up
    held 2-3 MiB more for good (7 MiB more at 20,000 processes) than one that loaded a
    `.pyc` (bench/RESULTS.md). That is every start of a copy run with `-B`, from a read-only
    directory, or new. Compiled here, in the image the exec is about to discard (and written
    to __pycache__ when the importer may), the sampler itself only unmarshals it."""
    memfd_create = getattr(os, "memfd_create", None)  # Linux 3.17, glibc 2.27
    if memfd_create is None:
        return -1
    try:
        loader = _frozen_importlib_external.SourceFileLoader("sampler", path)
        data = marshal.dumps(loader.get_code("sampler"))
        fd = memfd_create("memtrail-sampler-code", 0)  # no MFD_CLOEXEC: the exec inherits it
    except (OSError, ImportError, ValueError):
        return -1
    spare = []  # closed on the way out: the numbers 0-2 it got first, or all of it on failure
    try:
        while fd < 3:  # never 0-2: with stdio closed, the new image would take it for stderr
            spare.append(fd)
            fd = os.dup(fd)
        os.set_inheritable(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        spare.append(fd)
        fd = -1
    for x in set(spare):
        os.close(x)
    return fd


def lean_reexec() -> None:
    """Run as a script (or by the unit's launcher), become an import of this same file: once,
    at start-up, before any sampling; an exec (same pid, descriptors and environment), never
    a fork. The only exec the sampler ever makes. When it cannot, it simply runs on as it is.

    The new image also starts with glibc's mmap threshold fixed (MALLOC_MMAP_THRESHOLD_,
    unless the environment already tunes malloc). Left dynamic, glibc raises it each time a
    large block is freed, so a keyframe's buffers (~4 MiB of lines at 20,000 processes) end
    up in the main heap, which keeps what they free: measured over a 20,000-process tree,
    31 MiB resident against 26 MiB fixed (bench/RESULTS.md). It must be set before the
    interpreter starts (mallopt() from Python, after start-up, did not give the same). The
    sampler runs nothing, so no other program inherits it."""
    if not sys.executable:
        return
    code_fd = compiled_code_fd(__file__)
    args = lean_reexec_argv(__file__, sys.argv[1:], code_fd)
    env = os.environ
    if not any(k.startswith("MALLOC_") or k == "GLIBC_TUNABLES" for k in env):
        env = dict(env, MALLOC_MMAP_THRESHOLD_=HEAP_MMAP_THRESHOLD)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: started with that descriptor closed
                stream.flush()
        os.execve(args[0], args, env)
    except OSError:
        if code_fd >= 0:
            os.close(code_fd)


if __name__ == "__main__":
    if __spec__ is None:  # `python3 sampler.py`, not `python3 -m memtrail.sampler`
        lean_reexec()
    sys.exit(main())
