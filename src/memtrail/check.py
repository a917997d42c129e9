"""`memtrail check`: a CI gate with a clear verdict and an exit code.

0 when every limit held, 1 when one was broken, 2 when the input cannot tell (missing, empty or
foreign log): a gate that cannot see must not pass silently. The verdict is one paragraph a
person can paste into a ticket; `--junit FILE` writes the same as JUnit XML, one test case per
limit, for CI systems that display those.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple, TypeVar

from memtrail import output
from memtrail.report import _t as _report_t
from memtrail.report import load
from memtrail.safetext import terminal, xml
from memtrail.units import fmt_bytes, fmt_duration, parse_size, parse_size_or_pct


@dataclass
class Outcome:
    """One limit checked against one recording."""

    name: str  # e.g. "max-used"
    passed: bool
    text: str  # one sentence


def _t(iso_text: Optional[str]) -> str:
    return _report_t(iso_text, "?")


def evaluate(rep: dict, max_used: Optional[int], min_avail: Tuple[Optional[int],
             Optional[float]], no_oom: bool, max_program: List[Tuple[str, int]]) -> List[Outcome]:
    out: List[Outcome] = []
    peak = rep["peak"]
    if max_used is not None:
        used = peak["used_bytes"]
        ok = used is not None and used <= max_used
        out.append(Outcome("max-used", ok,
                           f"peak used {fmt_bytes(used)} at {_t(peak['time'])} "
                           + ("<=" if ok else "exceeded") + f" --max-used {fmt_bytes(max_used)}"))
    size, pct = min_avail
    if size is not None or pct is not None:
        low = rep["lowest_available"]
        total = peak["total_bytes"]
        limit = size if size is not None else (pct or 0) / 100 * (total or 0)
        label = fmt_bytes(size) if size is not None else f"{pct:g}% ({fmt_bytes(limit)})"
        ok = low["bytes"] is not None and low["bytes"] >= limit
        out.append(Outcome("min-available", ok,
                           f"lowest available {fmt_bytes(low['bytes'])} at {_t(low['time'])} "
                           + (">=" if ok else "fell below") + f" --min-available {label}"))
    if no_oom:
        kills = rep["oom_kills"]
        unit_kills = sum(u["oom_kills"] for u in rep["units"])
        counter = rep["oom_counter"]
        n = max(len(kills), counter, unit_kills)
        if n == 0:
            out.append(Outcome("no-oom", True, "no OOM kill"))
        else:
            detail = "; ".join(
                f"pid {k['pid']} {k['name']} ({fmt_bytes(k['rss_bytes'])}) at {_t(k['time'])}: "
                + (" ".join(k["cmdline"]) if k["cmdline"] else
                   "command line never seen (it lived less than one tick)")
                for k in kills[:3])
            out.append(Outcome("no-oom", False,
                               f"{n} OOM kill(s)" + (f": {detail}" if detail else
                                                     " (counted by the kernel; no details: "
                                                     "the sampler could not read /dev/kmsg)")))
    peaks = {p["name"]: p for p in rep["program_peaks"]}
    for name, limit in max_program:
        p = peaks.get(name)
        if p is None:
            out.append(Outcome(f"max-program {name}", True,
                               f"program {name} never ran (limit {fmt_bytes(limit)})"))
            continue
        ok = p["peak_rss_bytes"] <= limit
        out.append(Outcome(f"max-program {name}", ok,
                           f"{name} x{p['count']} peaked at {fmt_bytes(p['peak_rss_bytes'])} "
                           f"at {_t(p['time'])} " + ("<=" if ok else "exceeded")
                           + f" its limit {fmt_bytes(limit)}"))
    return out


def verdict(rep: dict, outcomes: List[Outcome]) -> str:
    failed = [o for o in outcomes if not o.passed]
    span = rep["span"]
    head = ("FAIL" if failed else "PASS") + f": memtrail check of {rep['label']} " \
        f"({', '.join(rep['hosts']) or '?'}, {fmt_duration(span['duration_s'])}, " \
        f"{span['ticks']} ticks)"
    parts = [head + "."]
    if failed:
        parts.append("Broken: " + "; ".join(o.text for o in failed) + ".")
    passed = [o for o in outcomes if o.passed]
    if passed:
        parts.append("Held: " + "; ".join(o.text for o in passed) + ".")
    if not outcomes:
        parts.append(f"No limit given; peak used {fmt_bytes(rep['peak']['used_bytes'])}, "
                     f"{len(rep['oom_kills'])} OOM kill(s).")
    if span["gaps"]:
        parts.append(f"Note: the sampler was not looking for "
                     f"{fmt_duration(span['gap_seconds'])} ({len(span['gaps'])} gap(s)).")
    r = rep["reading"]
    if r["torn_lines"] or r["bad_lines"] or r["skipped_files"] or r["truncated_files"]:
        parts.append(f"Note: reading problems ({r['torn_lines']} torn, {r['bad_lines']} bad "
                     f"line(s), {len(r['skipped_files']) + len(r['truncated_files'])} "
                     f"file(s) skipped or truncated).")
    return " ".join(parts)


def junit(results: List[Tuple[dict, List[Outcome]]]) -> str:
    cases = []
    total = failures = 0
    for rep, outcomes in results:
        for o in outcomes:
            total += 1
            body = ""
            if not o.passed:
                failures += 1
                body = f'<failure message="{xml(o.text)}">{xml(o.text)}</failure>'
            cases.append(f'  <testcase classname="{xml("memtrail." + rep["label"])}" '
                         f'name="{xml(o.name)}">{body}<system-out>{xml(o.text)}'
                         f"</system-out></testcase>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuite name="memtrail check" tests="{total}" failures="{failures}" '
            f'errors="0">\n'
            + "\n".join(cases) + "\n</testsuite>\n")


T = TypeVar("T")


def _arg(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from a parser that raises ValueError with a clear text."""
    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def _parse_program_limit(text: str) -> Tuple[str, int]:
    name, sep, size = text.rpartition("=")
    if not sep or not name:
        raise ValueError(f"expected NAME=SIZE, got {text!r}")
    return name, parse_size(size)


# The limit options' types, shared with `memtrail run`.
_size = _arg(parse_size)
_size_or_pct = _arg(parse_size_or_pct)
_program_limit = _arg(_parse_program_limit)


class Parser(argparse.ArgumentParser):
    """Bad arguments exit 2, as unusable input does: 1 is kept for "a limit broke"."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def add_gate_arguments(group) -> None:
    """The limits, shared by `memtrail check` and `memtrail run`."""
    group.add_argument("--max-used", type=_size, metavar="SIZE",
                       help="fail if used memory (MemTotal - MemAvailable) ever exceeded SIZE")
    group.add_argument("--min-available", type=_size_or_pct, metavar="SIZE|PCT",
                       default=(None, None),
                       help="fail if MemAvailable ever fell below SIZE or PCT%% of MemTotal")
    group.add_argument("--no-oom", action="store_true", help="fail on any OOM kill")
    group.add_argument("--max-program", type=_program_limit, action="append", default=[],
                       metavar="NAME=SIZE",
                       help="fail if program NAME (all its processes) peaked above SIZE; "
                            "repeatable")


def main(argv: List[str]) -> int:
    ap = Parser(prog="memtrail check",
                 description="A CI gate: exit 0 when every limit held, 1 when one broke, "
                             "2 when the log cannot tell.")
    ap.add_argument("paths", nargs="+", metavar="PATH")
    add_gate_arguments(ap)
    ap.add_argument("--junit", metavar="FILE", help="also write JUnit XML to FILE")
    args = ap.parse_args(argv)
    # Only what the limits read is worked out: without --max-program, no per-program
    # bookkeeping (most of a week's analysis), and never the growth trends.
    reports, errors = load(args.paths, top=0, growth=False, programs=bool(args.max_program))
    for err in errors:
        print(f"memtrail check: {err}", file=sys.stderr)
    if errors or not reports:
        print("UNUSABLE: memtrail check cannot tell: the log is missing, empty or not a "
              "memtrail log (see above).")
        return 2
    results = []
    failed = False
    for rep in reports:
        outcomes = evaluate(rep, args.max_used, args.min_available, args.no_oom,
                            args.max_program)
        results.append((rep, outcomes))
        failed = failed or any(not o.passed for o in outcomes)
        print(terminal(verdict(rep, outcomes)))
    if args.junit:
        try:
            output.write_text(args.junit, junit(results))
        except OSError as exc:
            print(f"memtrail check: cannot write {args.junit}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
    return 1 if failed else 0
