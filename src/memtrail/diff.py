"""`memtrail diff A B`: two recordings side by side, per program (baseline vs change).

The question it answers: "the threaded scheduler peaked at 122 MB, the old one at 56 MB: which
programs got bigger, which are new, which are gone?" Each program's own peak over its run (the
sum of its processes' RSS) and its process count then, sorted by the size of the change.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, List, Optional

from memtrail.report import SCHEMA, iter_reports
from memtrail.safetext import tree
from memtrail.units import fmt_bytes


def compare(a: dict, b: dict) -> dict:
    """The diff of two report dicts (see `memtrail.report.analyze`)."""
    pa: Dict[str, dict] = {p["name"]: p for p in a["program_peaks"]}
    pb: Dict[str, dict] = {p["name"]: p for p in b["program_peaks"]}
    rows = []
    for name in set(pa) | set(pb):
        x, y = pa.get(name), pb.get(name)
        ra = x["peak_rss_bytes"] if x else 0
        rb = y["peak_rss_bytes"] if y else 0
        rows.append({
            "name": name,
            "a_rss_bytes": ra if x else None, "a_count": x["count"] if x else None,
            "b_rss_bytes": rb if y else None, "b_count": y["count"] if y else None,
            "change_bytes": rb - ra,
            "change_pct": round(100 * (rb - ra) / ra, 1) if x and ra else None,
            "status": "new" if not x else "vanished" if not y else "both",
        })
    rows.sort(key=lambda r: (-abs(r["change_bytes"]), r["name"]))

    def side(rep: dict) -> dict:
        return {"label": rep["label"], "hosts": rep["hosts"], "start": rep["span"]["start"],
                "duration_s": rep["span"]["duration_s"],
                "peak_used_bytes": rep["peak"]["used_bytes"],
                "lowest_available_bytes": rep["lowest_available"]["bytes"],
                "oom_kills": len(rep["oom_kills"]),
                "gaps": len(rep["span"]["gaps"])}

    sa, sb = side(a), side(b)
    used_a, used_b = sa["peak_used_bytes"], sb["peak_used_bytes"]
    return {"schema": SCHEMA.replace("report", "diff"), "a": sa, "b": sb,
            "peak_used_change_bytes": (used_b - used_a) if used_a is not None
            and used_b is not None else None,
            "programs": rows}


def _pct(row: dict) -> str:
    if row["status"] == "new":
        return "new"
    if row["status"] == "vanished":
        return "vanished"
    return f"{row['change_pct']:+.0f}%" if row["change_pct"] is not None else ""


def render(d: dict, limit: int) -> str:
    d = tree(d)  # every string from the logs terminal-safe
    a, b = d["a"], d["b"]
    out = [f"memtrail diff:  A = {a['label']}", f"                B = {b['label']}", ""]

    def row3(label: str, x: str, y: str, z: str = "") -> str:
        return f"  {label:<20} {x:>14} {y:>14}  {z}"

    out.append(row3("", "A", "B", "change"))
    change = d["peak_used_change_bytes"]
    out.append(row3("peak used", fmt_bytes(a["peak_used_bytes"]), fmt_bytes(b["peak_used_bytes"]),
                    fmt_bytes(change, signed=True) if change is not None else ""))
    out.append(row3("lowest available", fmt_bytes(a["lowest_available_bytes"]),
                    fmt_bytes(b["lowest_available_bytes"])))
    out.append(row3("OOM kills", str(a["oom_kills"]), str(b["oom_kills"])))
    out.append(row3("gaps", str(a["gaps"]), str(b["gaps"])))
    out.append("")
    rows = d["programs"][:limit] if limit else d["programs"]
    width = max([7] + [len(r["name"]) for r in rows])
    out.append(f"  {'PROGRAM':<{width}}  {'A peak':>9} {'n':>4}  {'B peak':>9} {'n':>4}  "
               f"{'CHANGE':>10}")
    for r in rows:
        na = "" if r["a_count"] is None else f"x{r['a_count']}"
        nb = "" if r["b_count"] is None else f"x{r['b_count']}"
        out.append(f"  {r['name']:<{width}}  {fmt_bytes(r['a_rss_bytes']):>9} {na:>4}  "
                   f"{fmt_bytes(r['b_rss_bytes']):>9} {nb:>4}  "
                   f"{fmt_bytes(r['change_bytes'], signed=True):>10}  {_pct(r)}")
    if limit and len(d["programs"]) > limit:
        out.append(f"  ... {len(d['programs']) - limit} more (--limit 0 shows all)")
    return "\n".join(out) + "\n"


def _load(path: str) -> Optional[dict]:
    """The report of one recording (a path is one recording), or None after saying why."""
    for rep, err in iter_reports([path], growth=False):  # diff compares no growth
        if err:
            print(f"memtrail diff: {err}", file=sys.stderr)
        return rep
    return None


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="memtrail diff",
        description="Two recordings side by side per program: peak RSS and count in each, "
                    "the change, new and vanished programs; largest change first.")
    ap.add_argument("a", metavar="A", help="baseline recording (directory or segment)")
    ap.add_argument("b", metavar="B", help="the recording to compare with it")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--limit", type=int, default=25, metavar="N",
                    help="programs to show (default 25, 0 = all)")
    args = ap.parse_args(argv)
    a = _load(args.a)
    b = _load(args.b) if a is not None else None
    if a is None or b is None:
        return 2
    d = compare(a, b)
    if args.json:
        json.dump(d, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(d, args.limit))
    return 0
