"""`memtrail fleet DIR...`: hundreds of recordings (one per CI job or host) in one table.

The question it answers is "which jobs run out of memory, and why": one row per recording (peak
used, lowest available, OOM kills and their victims, the top program) and a roll-up across all
of them (which programs are the OOM victims, which are the top consumers, percentiles of the
peak). Artifacts pile up by the thousand, so it streams: recordings are found one at a time
(a directory tree is walked lazily), each is analyzed in one pass by `report.analyze`, reduced
to its summary row, and its report is dropped before the next one is read. Memory grows with the
number of rows (a few hundred bytes each), never with the size of the logs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from memtrail import __version__
from memtrail.reader import LogError, is_segment_name
from memtrail.report import analyze, group_runs, usable
from memtrail.safetext import tree
from memtrail.timeparse import iso
from memtrail.units import fmt_bytes, fmt_duration

SCHEMA = "memtrail.fleet/1"
TOP_PER_RUN = 3  # programs of each run that count as its top consumers
PERCENTILES = (50, 90, 99)


# -- finding recordings ------------------------------------------------------------------------
def _file_runs(files: List[str]) -> Iterator[Tuple[str, List[str]]]:
    return ((", ".join(g), g) for g in group_runs(files))


def find_runs(paths: Sequence[str], errors: List[str]) -> Iterator[Tuple[str, List[str]]]:
    """(label, paths) per recording, lazily. A directory holding segments is one recording;
    one without is searched below for directories that do (an unpacked artifact tree);
    consecutive segment files of one sampler run are one recording."""
    files: List[str] = []
    several = len(paths) > 1
    for path in paths:
        if not os.path.isdir(path):
            if os.path.exists(path):
                files.append(path)
            else:
                errors.append(f"{path}: no such file or directory")
            continue
        yield from _file_runs(files)
        files = []
        found = False
        for dirpath, dirnames, filenames in os.walk(path, onerror=None):
            dirnames.sort()
            if any(is_segment_name(n) for n in filenames):
                found = True
                # Below one given directory, the path inside it names the job.
                rel = os.path.relpath(dirpath, path)
                label = dirpath if several or rel == "." else rel
                yield (label, [dirpath])
        if not found:
            errors.append(f"{path}: no memtrail segments (memtrail-*.log[.gz]) in it or below")
    yield from _file_runs(files)


# -- one row per recording ---------------------------------------------------------------------
def summarize(label: str, rep: dict) -> dict:
    """The fleet row of one report dict (the report itself is not kept)."""
    span, peak = rep["span"], rep["peak"]
    kills = rep["oom_kills"]
    unit_kills = sum(u["oom_kills"] for u in rep["units"])
    victims = [str(k["program"]) for k in kills]
    top = rep["program_peaks"][:TOP_PER_RUN]
    return {
        "run": label,
        "hosts": rep["hosts"],
        "start": span["start"], "end": span["end"], "duration_s": span["duration_s"],
        "ticks": span["ticks"], "gap_seconds": span["gap_seconds"],
        "clean_end": span["clean_end"],
        "total_bytes": peak["total_bytes"],
        "peak_used_bytes": peak["used_bytes"], "peak_time": peak["time"],
        "lowest_available_bytes": rep["lowest_available"]["bytes"],
        "oom_kills": max(len(kills), rep["oom_counter"], unit_kills),
        "oom_victims": victims,
        "top_programs": [{"name": p["name"], "peak_rss_bytes": p["peak_rss_bytes"]}
                         for p in top],
        "error": None,
    }


def error_row(label: str, reason: str) -> dict:
    return {"run": label, "error": reason}


# -- the roll-up -------------------------------------------------------------------------------
@dataclass
class Consumer:
    runs_top: int = 0  # runs where it was the top program
    runs: int = 0  # runs where it was among the top TOP_PER_RUN
    max_peak: int = 0
    max_run: str = ""
    peaks: List[int] = field(default_factory=list)


@dataclass
class Rollup:
    """Across recordings: kept as counters and one number per run, never as reports."""

    runs: int = 0
    unusable: int = 0
    runs_with_oom: int = 0
    oom_kills: int = 0
    peaks: List[Tuple[int, str]] = field(default_factory=list)  # (peak used, run)
    lows: List[Tuple[int, str]] = field(default_factory=list)
    victims: Dict[str, List[int]] = field(default_factory=dict)  # name -> [kills, runs]
    consumers: Dict[str, Consumer] = field(default_factory=dict)

    def add(self, row: dict) -> None:
        self.runs += 1
        if row["error"]:
            self.unusable += 1
            return
        label = row["run"]
        if row["peak_used_bytes"] is not None:
            self.peaks.append((row["peak_used_bytes"], label))
        if row["lowest_available_bytes"] is not None:
            self.lows.append((row["lowest_available_bytes"], label))
        if row["oom_kills"]:
            self.runs_with_oom += 1
            self.oom_kills += row["oom_kills"]
        for name in set(row["oom_victims"]):
            entry = self.victims.setdefault(name, [0, 0])
            entry[0] += row["oom_victims"].count(name)
            entry[1] += 1
        for i, prog in enumerate(row["top_programs"]):
            c = self.consumers.setdefault(prog["name"], Consumer())
            c.runs += 1
            c.runs_top += i == 0
            c.peaks.append(prog["peak_rss_bytes"])
            if prog["peak_rss_bytes"] > c.max_peak:
                c.max_peak, c.max_run = prog["peak_rss_bytes"], label

    def result(self, top: int) -> dict:
        peaks = sorted(self.peaks)
        lows = sorted(self.lows)
        victims = sorted(self.victims.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        consumers = sorted(self.consumers.items(),
                           key=lambda kv: (-kv[1].runs_top, -kv[1].max_peak, kv[0]))
        if top:
            victims, consumers = victims[:top], consumers[:top]
        return {
            "runs": self.runs, "usable_runs": self.runs - self.unusable,
            "unusable_runs": self.unusable,
            "runs_with_oom_kills": self.runs_with_oom, "oom_kills": self.oom_kills,
            "peak_used": {
                **{f"p{p}_bytes": percentile([v for v, _ in peaks], p) for p in PERCENTILES},
                "max_bytes": peaks[-1][0] if peaks else None,
                "max_run": peaks[-1][1] if peaks else None,
            },
            "lowest_available": {
                "min_bytes": lows[0][0] if lows else None,
                "min_run": lows[0][1] if lows else None,
                "p50_bytes": percentile([v for v, _ in lows], 50),
            },
            "oom_victims": [{"name": n, "kills": k, "runs": r} for n, (k, r) in victims],
            "top_consumers": [
                {"name": n, "runs_top": c.runs_top, "runs_in_top": c.runs,
                 "max_peak_rss_bytes": c.max_peak, "max_run": c.max_run,
                 "median_peak_rss_bytes": percentile(sorted(c.peaks), 50)}
                for n, c in consumers],
        }


def percentile(values: Sequence[int], pct: float) -> Optional[int]:
    """Nearest-rank percentile of sorted `values` (an actual run's figure, never interpolated)."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[rank - 1]


# -- output ------------------------------------------------------------------------------------
def _day(value: Optional[str]) -> str:
    return value[:16].replace("T", " ") + "Z" if value else "-"


def render_text(rows: List[dict], roll: dict) -> str:
    rows, roll = tree(rows), tree(roll)  # every string from the logs terminal-safe
    out: List[str] = []
    w = out.append
    width = min(48, max([3] + [len(r["run"]) for r in rows]))
    hw = min(16, max([4] + [len(",".join(r.get("hosts") or [])) for r in rows]))
    w(f"{'RUN':<{width}}  {'HOST':<{hw}}  {'START':<17}  {'SPAN':>7}  {'PEAK USED':>19}  "
      f"{'LOW AVAIL':>9}  {'OOM':>3}  {'VICTIMS':<20}  TOP PROGRAM")
    for r in rows:
        label = r["run"] if len(r["run"]) <= width else "..." + r["run"][-(width - 3):]
        if r["error"]:
            w(f"{label:<{width}}  unusable: {r['error']}")
            continue
        host = ",".join(r["hosts"])[:hw]
        used = fmt_bytes(r["peak_used_bytes"]) + (
            f" / {fmt_bytes(r['total_bytes'])}" if r["total_bytes"] else "")
        victims = ",".join(sorted(set(r["oom_victims"]))) or ("?" if r["oom_kills"] else "-")
        top = r["top_programs"][0] if r["top_programs"] else None
        w(f"{label:<{width}}  {host:<{hw}}  {_day(r['start']):<17}  "
          f"{fmt_duration(r['duration_s']):>7}  {used:>19}  "
          f"{fmt_bytes(r['lowest_available_bytes']):>9}  {r['oom_kills'] or '-':>3}  "
          f"{victims[:20]:<20}  "
          + (f"{top['name']} {fmt_bytes(top['peak_rss_bytes'])}" if top else "-")
          + ("" if r["clean_end"] else "  (cut short)"))
    w("")
    pu, la = roll["peak_used"], roll["lowest_available"]
    w(f"{roll['runs']} run(s)" + (f", {roll['unusable_runs']} unusable" if roll["unusable_runs"]
                                 else "")
      + f"; {roll['runs_with_oom_kills']} with OOM kills ({roll['oom_kills']} kill(s))")
    if pu["max_bytes"] is not None:
        w("peak used: " + ", ".join(f"p{p} {fmt_bytes(pu[f'p{p}_bytes'])}" for p in PERCENTILES)
          + f", max {fmt_bytes(pu['max_bytes'])} ({pu['max_run']})")
    if la["min_bytes"] is not None:
        w(f"lowest available: min {fmt_bytes(la['min_bytes'])} ({la['min_run']}), "
          f"median {fmt_bytes(la['p50_bytes'])}")
    w("")
    w("OOM victims across runs")
    if roll["oom_victims"]:
        nw = max(7, min(32, max(len(v["name"]) for v in roll["oom_victims"])))
        w(f"  {'PROGRAM':<{nw}}  {'KILLS':>5}  {'RUNS':>5}")
        for v in roll["oom_victims"]:
            w(f"  {v['name'][:nw]:<{nw}}  {v['kills']:>5}  {v['runs']:>5}")
    else:
        w("  none")
    w("")
    w(f"Top consumers across runs (programs among each run's top {TOP_PER_RUN} by peak RSS)")
    if roll["top_consumers"]:
        nw = max(7, min(32, max(len(c["name"]) for c in roll["top_consumers"])))
        w(f"  {'PROGRAM':<{nw}}  {'TOP IN':>6}  {'TOP-3 IN':>8}  {'MEDIAN PEAK':>11}  "
          f"{'MAX PEAK':>9}  MAX IN")
        for c in roll["top_consumers"]:
            w(f"  {c['name'][:nw]:<{nw}}  {c['runs_top']:>6}  {c['runs_in_top']:>8}  "
              f"{fmt_bytes(c['median_peak_rss_bytes']):>11}  "
              f"{fmt_bytes(c['max_peak_rss_bytes']):>9}  {c['max_run']}")
    else:
        w("  none")
    return "\n".join(out) + "\n"


_SORTS = {
    "run": None,
    "peak": lambda r: -(r.get("peak_used_bytes") or -1),
    "low": lambda r: r.get("lowest_available_bytes") if r.get("lowest_available_bytes")
    is not None else float("inf"),
    "oom": lambda r: -(r.get("oom_kills") or 0),
}


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="memtrail fleet",
        description="Many recordings (one directory per CI job or host) as one table: peak "
                    "used, lowest available, OOM kills and victims, top program; then which "
                    "programs are the OOM victims and the top consumers across runs, and "
                    "percentiles of the peak. A directory without segments is searched below "
                    "for directories with them (an unpacked artifact tree). Exit 0 when at "
                    "least one recording could be read, 2 otherwise.")
    ap.add_argument("paths", nargs="+", metavar="DIR")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--top", type=int, default=10, metavar="N",
                    help="programs in each roll-up list (default 10, 0 = all)")
    ap.add_argument("--sort", choices=sorted(_SORTS), default="run",
                    help="row order: run (as given), peak, low (lowest available), oom")
    args = ap.parse_args(argv)
    if args.top < 0:
        print("memtrail fleet: --top must be >= 0", file=sys.stderr)
        return 2
    errors: List[str] = []
    rows: List[dict] = []
    roll = Rollup()
    for label, paths in find_runs(args.paths, errors):
        try:
            rep = analyze(paths, top=TOP_PER_RUN, growth=False)  # a row shows no growth
        except LogError as exc:
            row = error_row(label, str(exc))
        else:
            problem = usable(rep)
            row = error_row(label, problem.split(": ", 1)[-1]) if problem else \
                summarize(label, rep)
            del rep
        rows.append(row)
        roll.add(row)
    for err in errors:
        print(f"memtrail fleet: {err}", file=sys.stderr)
    key = _SORTS[args.sort]
    if key is not None:
        rows.sort(key=lambda r: (r["error"] is not None, key(r) if not r["error"] else 0))
    summary = roll.result(args.top)
    if args.json:
        json.dump({"schema": SCHEMA, "generator": f"memtrail {__version__}",
                   "generated": iso(time.time()), "runs": rows,
                   "rollup": summary}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif rows:
        sys.stdout.write(render_text(rows, summary))
    return 0 if summary["usable_runs"] else 2

