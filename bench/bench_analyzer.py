"""Time the analyzer on a week-long log and measure its peak memory.

Targets (issue 17): a 7-day recording at a 1 s tick with 500 processes; `report`, `check`,
`html` and `export --format jsonl` each in at most 30 s and 100 MiB peak RSS, `top --at` any
time in at most 3 s. Each command runs in a child process; wall time is measured around it,
CPU is the user and system time of that child and of any process it waited for (the analyzer
parses a long log in a forked child of its own: readahead.py), and peak RSS is the largest
`ru_maxrss` of those processes (from wait4, so nothing else is counted). The machine is
shared: read walls as upper bounds. `report` also runs with MEMTRAIL_READ_AHEAD=0, in one
process: the control for what the second core buys.

    python bench/bench_analyzer.py [--dir DIR] [--days 7] [--procs 500] [--runs 3]
                                   [--python pypy3]

`--python` runs the commands under another interpreter (this checkout's src/ on its path),
e.g. Debian's pypy3; the console's jump table is then left out.

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
SRC = os.path.join(os.path.dirname(HERE), "src")
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    p for p in (SRC, os.environ.get("PYTHONPATH")) if p))


def measure(argv: list, env: dict = ENV) -> tuple:
    """(wall seconds, CPU seconds, peak RSS MiB, exit code) of one child run."""
    # stderr to a file, not a pipe: waiting with wait4 (for the child's own peak RSS) while a
    # pipe fills up would deadlock a child that reports a lot of problems.
    with open(os.devnull, "wb") as null, tempfile.TemporaryFile() as errfile:
        t0 = time.perf_counter()
        child = subprocess.Popen(argv, stdout=null, stderr=errfile, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        errfile.seek(0)
        err = errfile.read().decode(errors="replace")
    if child.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({child.returncode}): {err.strip()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, child.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(HERE, "out", "week-log"))
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--procs", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter to run the commands with (default: this one)")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.dir) or not os.listdir(args.dir):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, os.path.join(HERE, "gen_day.py"), args.dir,
                        "--days", str(args.days), "--procs", str(args.procs)], check=True)
        print(f"generated {args.dir} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    files = sorted(os.listdir(args.dir))
    size = sum(os.path.getsize(os.path.join(args.dir, f)) for f in files)
    py = [args.python, "-m", "memtrail"]
    version = subprocess.run([args.python, "-c", "import platform; print("
                              "platform.python_implementation(), platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    html_out = os.path.join(tempfile.gettempdir(), f"memtrail-bench-{os.getpid()}.html")
    whole, top = (30.0, 100.0), (3.0, 100.0)  # (seconds, MiB) wanted
    first = 1763596800.0  # gen_day's start: 2025-11-20T00:00:00Z
    last = first + args.days * 86400

    def at(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    one_core = dict(ENV, MEMTRAIL_READ_AHEAD="0")
    commands = [
        ("report (text)", py + ["report", args.dir], whole),
        ("report (text), one process", py + ["report", args.dir], whole, one_core),
        ("report --json", py + ["report", "--json", args.dir], whole),
        ("check --no-oom --max-used 100G", py + ["check", args.dir, "--no-oom",
                                                  "--max-used", "100G"], whole),
        ("check ... --max-program mysqld=4G", py + ["check", args.dir, "--no-oom", "--max-used",
                                                     "100G", "--max-program", "mysqld=4G"],
         whole),
        ("html", py + ["html", args.dir, "-o", html_out], whole),
        ("export --format jsonl", py + ["export", args.dir, "--format", "jsonl"], whole),
    ] + [(f"top --at {at(t)}", py + ["top", args.dir, "--at", at(t)], top)
         for t in (first + 3600 + 17, (first + last) / 2 + 1234, last - 3600 - 5)]
    print(f"Log: {len(files)} segment(s), {size / 1e6:.1f} MB on disk, "
          f"{args.days:g} days at 1 s, ~{args.procs} processes; {version} "
          f"({args.python}); best and worst of {args.runs} run(s)")
    print("")
    print("| command | best wall (s) | worst wall (s) | CPU (s) | peak RSS (MiB) | wanted | |")
    print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
    try:
        for label, cmd, (want_s, want_mib), *env in commands:
            results = [measure(cmd, *env) for _ in range(args.runs)]
            walls = [r[0] for r in results]
            cpu = min(r[1] for r in results)
            rss = max(r[2] for r in results)
            ok = min(walls) <= want_s and rss <= want_mib
            verdict = "control" if env else "met" if ok else "**missed**"  # not a target
            print(f"| `memtrail {label}` | {min(walls):.2f} | {max(walls):.2f} | {cpu:.1f} | "
                  f"{rss:.1f} | <= {want_s:g} s, <= {want_mib:g} MiB | {verdict} |")
    finally:
        if os.path.exists(html_out):
            os.remove(html_out)
    print("")
    sys.stdout.flush()
    if args.python != sys.executable:
        return 0
    # The console's jumps on the same log (its own table, with a side-by-side ratio).
    subprocess.run([sys.executable, os.path.join(HERE, "view_jump.py"), "--dir", args.dir],
                   check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
