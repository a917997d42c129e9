"""Events as sentences: the one place that turns an `E` record into words for a person.

`tail`, `view` and `top` show events to someone in the middle of an incident; a Python dict
(`start {'pid': 25826, ...}`) makes them decode JSON in their head. Every view asks
`sentence()` here, so a new event kind is taught to all of them at once: add a function to
`_SENTENCES` (and its `SEVERITY`). Every value taken from the log goes through
`safetext.terminal`, so a hostile command line or cgroup path cannot act on the terminal.

`LowFolder` keeps the `low` events readable: while memory keeps falling the sampler writes one
each time MemAvailable drops by its step (1% of MemTotal by default), which at fast ticks is a
line every 0.1 s. A fall is shown as its first low and, once it is over, the lowest it reached.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from memtrail import safetext
from memtrail.units import fmt_bytes, fmt_duration

ALERT, WARN, INFO = "alert", "warn", "info"

SEVERITY: Dict[str, str] = {
    "oom_kill": ALERT, "cgroup_oom": ALERT, "oom_counter": ALERT, "error": ALERT,
    "low": WARN, "gap": WARN, "overrun": WARN, "clock": WARN, "warn": WARN, "rate": WARN,
    "trigger": WARN,
}


def severity(kind: str) -> str:
    """How loudly a view should show an event of this kind (colour, marker)."""
    return SEVERITY.get(kind, INFO)


def _t(value: Any) -> str:
    return safetext.terminal(value)


def _int(data: dict, key: str) -> Optional[int]:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(data: dict, key: str) -> Optional[float]:
    value = data.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def _kib(data: dict, key: str) -> Optional[int]:
    value = _int(data, key)
    return value * 1024 if value is not None else None


def _count(n: Optional[int], what: str) -> str:
    if n is None:
        return f"{what}(s)"
    return f"{n} {what}" + ("" if n == 1 else "s")


def _oom_kill(d: dict) -> str:
    from memtrail.model import oom_table, oom_victim  # model imports nothing from here

    v = oom_victim(d)
    who = f"pid {v.pid if v.pid is not None else '?'} ({_t(v.name)})"
    size = f", {fmt_bytes(v.rss_bytes)} resident" if v.rss_bytes is not None else ""
    where = ""
    if d.get("oom_memcg"):
        from memtrail.report import _memcg_memory, oom_memcg_said

        held, note = oom_memcg_said({"memcg_memory": _memcg_memory(d)})
        where = f" in cgroup {_t(d['oom_memcg'])}" + (f", which held {held}" if held else "") \
            + (f"; {note}" if note else "")
    elif d.get("constraint"):
        where = f" ({_t(d['constraint'])})"
    if d.get("host_mem") and not d.get("oom_memcg"):  # a leaking slab, a full tmpfs: said
        from memtrail.report import _host_memory, oom_host_said

        note = oom_host_said({"host_memory": _host_memory(d)})[1]
        where += f"; {note}" if note else ""
    cmd = f": {_t(v.cmdline)}" if v.cmd else " (command line never seen)"
    # The kernel's own task list at that moment: who else held the memory (a victim that
    # lived less than a tick is known only from it)
    rows = oom_table(d)
    others = [r for r in rows if r.pid != v.pid][:3]
    table = ""
    if others:
        n = _int(d, "table_rows") or len(rows)
        table = (f"; the kernel listed {_count(n, 'task')}, the largest others "
                 + ", ".join(f"{_t(r.name)} (pid {r.pid}) {fmt_bytes(r.rss_bytes)}"
                             for r in others))
    return f"OOM killer killed {who}{size}{where}{cmd}{table}"


def _cgroup_oom(d: dict) -> str:
    n = _count(_int(d, "delta"), "OOM kill")
    return f"{n} in cgroup {_t(d.get('path', '?'))}"


def _oom_counter(d: dict) -> str:
    total = _int(d, "total")
    n = _count(_int(d, "delta"), "OOM kill")
    since = f" ({total} since boot)" if total is not None else ""
    return f"the kernel counted {n}{since}"


def _low(d: dict) -> str:
    avail = fmt_bytes(_kib(d, "available_kib"))
    pct = _num(d, "pct")
    return f"new low: {avail} available" + (f" ({pct:.1f}%)" if pct is not None else "")


def _rate(d: dict) -> str:
    ms = _int(d, "interval_ms")
    every = f"every {ms / 1000:g} s" if ms is not None else "at a new rate"
    reason = d.get("reason")
    return f"now ticking {every}" + (f" ({_t(reason)})" if reason else "")


def _gap(d: dict) -> str:
    start, end = _num(d, "from"), _num(d, "to")
    span = f" for {fmt_duration(end - start)}" if start is not None and end is not None else ""
    lost = _int(d, "lost_ticks")
    ticks = f", {_count(lost, 'tick')} lost" if lost is not None else ""
    return f"not recording{span}{ticks}: {_t(d.get('reason', 'unknown reason'))}"


def _overrun(d: dict) -> str:
    took, every = _int(d, "took_ms"), _int(d, "interval_ms")
    of = f" of a {every} ms interval" if every is not None else ""
    return f"a tick took {took if took is not None else '?'} ms{of}"


def _clock(d: dict) -> str:
    jump = _num(d, "jump_s")
    return f"the wall clock jumped {jump:+.1f} s" if jump is not None \
        else "the wall clock jumped"


def _start(d: dict) -> str:
    parts = [f"sampler {_t(d.get('version', '?'))} started (pid {_t(d.get('pid', '?'))})"]
    kmsg = d.get("kmsg")
    if kmsg is not None and kmsg != "ok":
        parts.append(f"kernel log: {_t(kmsg)}")
    warnings = d.get("warnings")
    if isinstance(warnings, list) and warnings:
        parts.append(f"{_count(len(warnings), 'warning')}: " + "; ".join(_t(w) for w in warnings))
    return ", ".join(parts)


def _snapshot(d: dict) -> str:
    return f"full snapshot taken ({_t(d.get('reason', 'requested'))})"


def _warn(d: dict) -> str:
    return f"sampler warning: {_t(d.get('msg', '?'))}"


def _error(d: dict) -> str:
    return (f"a sampler tick failed and is missing ({_t(d.get('error', '?'))} in "
            f"{_t(d.get('where', '?'))}): a memtrail bug, please report it")


def _rotate(d: dict) -> str:
    nxt = d.get("next")
    return "segment closed" + (f", next {_t(nxt)}" if nxt else "")


def _trigger(d: dict) -> str:
    from memtrail.triggers import describe, trigger

    return describe(trigger(0.0, d), _t)


def _residency(d: dict) -> str:
    return (f"sampler memory lock: {_t(d.get('mlock', '?'))}, "
            f"oom_score_adj: {_t(d.get('oom_score_adj', '?'))}")


_SENTENCES: Dict[str, Callable[[dict], str]] = {
    "oom_kill": _oom_kill, "cgroup_oom": _cgroup_oom, "oom_counter": _oom_counter,
    "low": _low, "rate": _rate, "gap": _gap, "overrun": _overrun, "clock": _clock,
    "start": _start, "snapshot": _snapshot, "warn": _warn, "rotate": _rotate,
    "residency": _residency, "trigger": _trigger, "error": _error,
}


def sentence(kind: str, data: Optional[dict]) -> str:
    """One event as one line of terminal-safe text (no time: the view adds it its own way).

    A kind this analyzer does not know (a newer sampler) still reads: its name and its
    details as `key=value`.
    """
    data = data if isinstance(data, dict) else {}
    func = _SENTENCES.get(kind)
    if func is not None:
        try:
            return func(data)
        except (TypeError, ValueError, AttributeError, OverflowError):  # malformed: raw
            pass
    details = ", ".join(f"{_t(k)}={_t(v)}" for k, v in data.items())
    return f"{_t(kind)}" + (f": {details}" if details else "")


class LowFolder:
    """Folds a fall of memory into two lines: its first new low, then the lowest it reached.

    The sampler's own hysteresis decides what a new low is (a drop of `step` below the last
    one); a fall is over when MemAvailable climbs back by more than that step, or when the
    view asks (`close()`, e.g. at an OOM kill or the end of a log). Feed every tick's available
    memory and its `low` events; each call returns the sentences to show now.
    """

    def __init__(self) -> None:
        self.falling = False
        self.first: Optional[dict] = None
        self.last: Optional[dict] = None
        self.folded = 0
        self.start_time = 0.0
        self.last_time = 0.0
        self.step_kib = 0

    def low(self, when: float, data: dict, total_kib: Optional[int] = None,
            step_kib: Optional[int] = None) -> List[str]:
        """A `low` event: a sentence for the first of a fall, nothing for the rest."""
        if step_kib:
            self.step_kib = step_kib
        elif total_kib and not self.step_kib:
            self.step_kib = max(total_kib // 100, 16384)  # the sampler's default step
        if self.falling:
            self.last, self.last_time = data, when
            self.folded += 1
            return []
        self.falling, self.first, self.last = True, data, data
        self.start_time = self.last_time = when
        self.folded = 0
        return [sentence("low", data)]

    def available(self, available_kib: Optional[int]) -> List[str]:
        """Each tick's MemAvailable: ends the fall once it recovered by the sampler's step."""
        if not self.falling or available_kib is None or self.last is None:
            return []
        lowest = _int(self.last, "available_kib")
        if lowest is not None and available_kib > lowest + max(self.step_kib, 1):
            return self.close()
        return []

    def close(self) -> List[str]:
        """End the fall now; the lowest it reached, if more lows were folded into it."""
        if not self.falling:
            return []
        self.falling = False
        if not self.folded or self.last is None:
            return []
        lowest = fmt_bytes(_kib(self.last, "available_kib"))
        pct = _num(self.last, "pct")
        share = f" ({pct:.1f}%)" if pct is not None else ""
        return [f"lowest of this fall: {lowest} available{share}, "
                f"{self.folded + 1} new lows in {fmt_duration(self.last_time - self.start_time)}"]
