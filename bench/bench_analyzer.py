"""Time the analyzer on a day-long log and measure its peak memory.

Target (issue 6): a day at a 1 s tick with 500 processes is reported in under 10 s with under
200 MB RSS. Each command runs in a child process; wall time is measured around it and peak RSS
is the child's own `ru_maxrss` (from wait4, so nothing else is counted).

    python bench/bench_analyzer.py [--dir DIR] [--hours 24] [--procs 500] [--runs 3]

Generates the log with bench/gen_day.py when DIR holds none, then prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(argv: list) -> tuple:
    """(wall seconds, peak RSS MiB, exit code) of one child run."""
    # stderr to a file, not a pipe: waiting with wait4 (for the child's own peak RSS) while a
    # pipe fills up would deadlock a child that reports a lot of problems.
    with open(os.devnull, "wb") as null, tempfile.TemporaryFile() as errfile:
        t0 = time.perf_counter()
        child = subprocess.Popen(argv, stdout=null, stderr=errfile)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        errfile.seek(0)
        err = errfile.read().decode(errors="replace")
    if child.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({child.returncode}): {err.strip()}")
    return wall, usage.ru_maxrss / 1024.0, child.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(HERE, "out", "day-log"))
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--procs", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    if not os.path.isdir(args.dir) or not os.listdir(args.dir):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, os.path.join(HERE, "gen_day.py"), args.dir,
                        "--hours", str(args.hours), "--procs", str(args.procs)], check=True)
        print(f"generated {args.dir} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    files = sorted(os.listdir(args.dir))
    size = sum(os.path.getsize(os.path.join(args.dir, f)) for f in files)
    py = [sys.executable, "-m", "memtrail"]
    commands = [
        ("report (text)", py + ["report", args.dir]),
        ("report --json", py + ["report", "--json", args.dir]),
        ("top --at 12:00", py + ["top", args.dir, "--at", "12:00"]),
        ("check --no-oom --max-used 100G", py + ["check", args.dir, "--no-oom",
                                                  "--max-used", "100G"]),
    ]
    print(f"Log: {len(files)} segment(s), {size / 1e6:.1f} MB on disk, "
          f"{args.hours:g} h at 1 s, ~{args.procs} processes; Python {sys.version.split()[0]}")
    print("")
    print("| command | best wall (s) | worst wall (s) | peak RSS (MiB) |")
    print("| --- | ---: | ---: | ---: |")
    for label, cmd in commands:
        results = [measure(cmd) for _ in range(args.runs)]
        walls = [r[0] for r in results]
        rss = max(r[1] for r in results)
        print(f"| `memtrail {label}` | {min(walls):.2f} | {max(walls):.2f} | {rss:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
