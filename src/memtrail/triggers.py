"""Trigger events (`E trigger`, docs/triggers.md) read once, for every view.

A trigger is the sampler signalling a process that crossed a line, so the heap dump it asked for
lines up with a moment in the recording. The report lists them, the HTML marks them, `tail`
prints them, exports carry them: all read the event here, defensively (a log is untrusted
input), and say it with `describe`, which takes the medium's escaping as an argument so every
string from the log passes the safe-text layer of the view that shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from memtrail.units import fmt_bytes, fmt_duration

MAX_LISTED = 200  # triggers kept per recording in the report (all are counted)
RESULTS = ("sent", "failed", "gone", "rate_limited", "refused", "dry_run")


def _int(data: dict, key: str) -> Optional[int]:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(data: dict, key: str) -> Optional[str]:
    value = data.get(key)
    return str(value) if isinstance(value, (str, int, float)) and value != "" else None


@dataclass(frozen=True)
class Trigger:
    time: float
    rule: str
    pid: Optional[int]
    program: str
    condition: str  # rss, grow, low (or a newer one)
    value_bytes: Optional[int]  # the RSS, or for `grow` the growth within the window
    line_bytes: Optional[int]  # absent for `low`
    window_s: Optional[float]
    signal: str
    result: str  # sent, failed, gone, rate_limited, refused, dry_run
    errno: Optional[int]
    error: Optional[str]
    reason: Optional[str]
    available_bytes: Optional[int] = None  # `low`: the new low of MemAvailable

    @property
    def sent(self) -> bool:
        return self.result == "sent"

    @property
    def outcome(self) -> str:
        """`result` where a name or a label is built from it: one of RESULTS, else `other`."""
        return self.result if self.result in RESULTS else "other"

    def as_dict(self) -> dict:
        """The report's JSON row (docs/report-json.md)."""
        return {"time_unix": self.time, "pid": self.pid, "program": self.program,
                "rule": self.rule, "condition": self.condition,
                "value_bytes": self.value_bytes, "line_bytes": self.line_bytes,
                "window_s": self.window_s, "signal": self.signal, "result": self.result,
                "errno": self.errno, "error": self.error, "reason": self.reason,
                "available_bytes": self.available_bytes}


def trigger(time: float, data: object) -> Trigger:
    d = data if isinstance(data, dict) else {}
    value, line, avail = _int(d, "value_kib"), _int(d, "line_kib"), _int(d, "available_kib")
    window = d.get("window_s")
    return Trigger(
        time=time, rule=_str(d, "rule") or "?", pid=_int(d, "pid"),
        program=_str(d, "program") or "?", condition=_str(d, "condition") or "?",
        value_bytes=value * 1024 if value is not None else None,
        line_bytes=line * 1024 if line is not None else None,
        window_s=float(window) if isinstance(window, (int, float))
        and not isinstance(window, bool) and window > 0 else None,
        signal=_str(d, "signal") or "?", result=_str(d, "result") or "?",
        errno=_int(d, "errno"), error=_str(d, "error"), reason=_str(d, "reason"),
        available_bytes=avail * 1024 if avail is not None else None)


_NOT_SENT = {
    "rate_limited": "rate limit reached", "refused": "refused", "dry_run": "dry run",
    "gone": "the process had exited or its pid was reused", "failed": "failed",
}


def describe(t: Trigger, clean: Callable[[object], str]) -> str:
    """One sentence; `clean` makes each string from the log safe for the medium
    (safetext.terminal, safetext.markdown, or str where the caller escapes the whole)."""
    who = f"{clean(t.program)} (pid {t.pid if t.pid is not None else '?'})"
    if t.condition == "rss":
        why = f"RSS {fmt_bytes(t.value_bytes)} over {fmt_bytes(t.line_bytes)}"
    elif t.condition == "grow":
        within = f" within {fmt_duration(t.window_s)}" if t.window_s else ""
        why = f"grew {fmt_bytes(t.value_bytes)}{within}, over {fmt_bytes(t.line_bytes)}"
    elif t.condition == "low":
        why = f"its largest process ({fmt_bytes(t.value_bytes)}) at a new low of available " \
              f"memory" + (f" ({fmt_bytes(t.available_bytes)})" if t.available_bytes else "")
    else:
        why = clean(t.condition)
    rule = f" [rule {clean(t.rule)}]"
    if t.sent:
        return f"sent {clean(t.signal)} to {who}: {why}{rule}"
    outcome = _NOT_SENT.get(t.result, clean(t.result))
    if t.error or t.errno:
        outcome += f" ({clean(t.error or t.errno)})"
    if t.reason:
        outcome += f": {clean(t.reason)}"
    return f"did not send {clean(t.signal)} to {who}, {outcome}; {why}{rule}"


def from_row(row: dict) -> Trigger:
    """A report row (`as_dict`, plus its ISO `time`) back into a Trigger, for the renderers."""
    return Trigger(time=row.get("time_unix") or 0.0, rule=row.get("rule") or "?",
                   pid=row.get("pid"), program=row.get("program") or "?",
                   condition=row.get("condition") or "?", value_bytes=row.get("value_bytes"),
                   line_bytes=row.get("line_bytes"), window_s=row.get("window_s"),
                   signal=row.get("signal") or "?", result=row.get("result") or "?",
                   errno=row.get("errno"), error=row.get("error"), reason=row.get("reason"),
                   available_bytes=row.get("available_bytes"))
