"""The fleet paths at scale: `memtrail fleet --json` and the shipped DuckDB queries
(docs/sql/duckdb/) over N generated CI recordings (default 10,000), and the live textfile
writer's cost per update at 2000 processes. Writes its section of bench/RESULTS.md (between
the `fleet_scale` markers; bench/render.py rewrites the rest of that file).

usage: python3 bench/fleet_scale.py [--runs N] [--repeat R] [--work DIR] [--no-results]

Medians of R runs, each command in a fresh process (wall time, and peak RSS from
getrusage(RUSAGE_CHILDREN) of a wrapper that only starts it). The archive is made by
tests/archive_gen.py (five job names, OOM kills in some, one recording = a few ticks of ~5
processes, JSON lines exported in-process) and kept in --work for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
BEGIN, END = "<!-- fleet_scale:begin -->", "<!-- fleet_scale:end -->"

# Runs argv[1:] and prints: exit status, wall seconds, peak RSS of the child in KiB.
MEASURE = r"""
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t
print(rc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""

# Runs every shipped DuckDB query over the archive; prints one JSON object of timings.
DUCK = r"""
import json, resource, sys, time
import duckdb
sql, archive, days, mode = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"SET VARIABLE archive = '{archive}'")
con.execute(f"SET VARIABLE days = {days}")
view = open(f"{sql}/archive.sql").read()
if mode != "view":  # read the files once into a table, then query it
    view = view.replace("CREATE OR REPLACE VIEW memtrail", "CREATE OR REPLACE TABLE memtrail")
if mode == "summary":  # only the rows the shipped queries read
    view = view.replace("\n});", "\n}) WHERE type IN ('summary', 'peak_program', 'event');")
    assert "WHERE type IN" in view
out = {}
t = time.perf_counter()
con.execute(view)
out["load"] = [time.perf_counter() - t, 0]
for name in ("oom_jobs", "oom_victims", "peak_by_job", "programs_at_peak"):
    t = time.perf_counter()
    rows = con.execute(open(f"{sql}/{name}.sql").read()).fetchall()
    out[name] = [time.perf_counter() - t, len(rows)]
out["rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
"""


def measure(argv: list) -> tuple:
    res = subprocess.run([sys.executable, "-c", MEASURE, *argv], env=ENV, capture_output=True,
                         text=True, check=True)
    rc, wall, rss = res.stdout.split()
    return int(rc), float(wall), int(rss)


def archive(work: Path, runs: int) -> float:
    import archive_gen

    marker = work / f"made-{runs}"
    if marker.exists():
        return float(marker.read_text())
    t = time.perf_counter()
    archive_gen.make_archive(str(work), runs)
    took = time.perf_counter() - t
    marker.write_text(f"{took:.1f}")
    return took


def textfile_cost(work: Path, nprocs: int = 2000, updates: int = 40) -> dict:
    """Per update (what `--follow` does every --every seconds): render the file from the live
    state, and write it whole (temp name, fsync, rename); per tick: fold one tick in."""
    from scenarios import GiB, Host

    from memtrail import textfile

    log = work / "textfile-log"
    if not log.exists():
        h = Host(str(log), mem_total=16 * GiB)
        for i in range(nprocs):
            h.spawn(1000 + i, [f"/usr/bin/prog-{i % 150}", f"--worker={i}"], 5 + i % 40,
                    comm=f"prog-{i % 150}")
        h.start_segment_tick()
        for step in range(updates):
            for i in range(0, nprocs, 50):  # 2% of the processes move each tick
                h.set_rss(1000 + (i + step) % nprocs, 10 + (step * 7 + i) % 60)
            h.tick(1)
        h.stop()
    state = textfile.LiveState()
    live = textfile.Live(str(log), state, idle_flush=0)
    t = time.process_time()
    live.poll()  # read, parse and replay every tick of the log, fold each into the state
    per_tick = (time.process_time() - t) / max(live.replayer.run.ticks, 1)
    out = work / "textfile" / "memtrail.prom"
    out.parent.mkdir(exist_ok=True)
    renders, writes = [], []
    for _ in range(updates):
        t = time.process_time()
        text = state.render(time.time())
        renders.append(time.process_time() - t)
        t = time.perf_counter()
        textfile.write_atomic(str(out), text)
        writes.append(time.perf_counter() - t)
    return {"procs": len(state.tick.procs), "render_ms": statistics.median(renders) * 1e3,
            "write_ms": statistics.median(writes) * 1e3,
            "tick_ms": per_tick * 1e3, "bytes": len(text),
            "series": sum(1 for ln in text.splitlines() if not ln.startswith("#"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", default="/tmp/memtrail-fleet-bench")
    ap.add_argument("--no-results", action="store_true", help="print, do not edit RESULTS.md")
    a = ap.parse_args()
    work = Path(a.work) / str(a.runs)
    work.mkdir(parents=True, exist_ok=True)
    made = archive(work, a.runs)
    files = list((work / "archive").rglob("*.jsonl"))
    size = sum(f.stat().st_size for f in files)
    fleet = [measure([sys.executable, "-m", "memtrail", "fleet", "--json",
                      str(work / "logs")]) for _ in range(a.repeat)]
    assert all(r[0] == 0 for r in fleet), fleet
    duck: dict = {"view": [], "table": [], "summary": []}
    for _ in range(a.repeat):
        for mode in duck:
            res = subprocess.run([sys.executable, "-c", DUCK, str(ROOT / "docs/sql/duckdb"),
                                  f"{work}/archive/**/*.jsonl", "10", mode], env=ENV,
                                 capture_output=True, text=True, check=True)
            duck[mode].append(json.loads(res.stdout.strip().splitlines()[-1]))
    tf = textfile_cost(work)
    med = statistics.median
    import duckdb

    lines = [
        BEGIN,
        "## Fleet scale (`bench/fleet_scale.py`)",
        "",
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python "
        f"{sys.version.split()[0]}, DuckDB {duckdb.__version__}. The machine is shared with "
        "7 other sessions working at the same time (2 cores): medians of "
        f"{a.repeat} runs, each in a fresh process; read the figures as orders of magnitude.",
        "",
        f"Archive: {a.runs} generated CI recordings (5 job names; `tests/archive_gen.py`, "
        f"made in {made:.0f} s), {len(files)} JSON-lines files, {size / 1e6:.1f} MB.",
        "",
        "| over the archive | wall (s) | peak RSS (MiB) | rows |",
        "| --- | ---: | ---: | ---: |",
        f"| `memtrail fleet --json` (reads the logs) | {med(r[1] for r in fleet):.2f} | "
        f"{med(r[2] for r in fleet) / 1024:.1f} | {a.runs} |",
    ]
    label = {"view": "over the view (each query reads every file)",
             "table": "on a table of every row",
             "summary": "on a table of the summary, peak_program and event rows"}
    load = {"table": "every row into a table (`CREATE TABLE` for `VIEW` in archive.sql)",
            "summary": "only the summary, peak_program and event rows into a table "
                       "(and a `WHERE type IN (...)`)"}
    for mode, runs in duck.items():
        if mode in load:
            lines.append(f"| DuckDB: load {load[mode]} | "
                         f"{med(d['load'][0] for d in runs):.2f} | | |")
        for name in ("oom_jobs", "oom_victims", "peak_by_job", "programs_at_peak"):
            lines.append(f"| DuckDB `{name}.sql`, {label[mode]} | "
                         f"{med(d[name][0] for d in runs):.2f} | | {runs[0][name][1]} |")
        lines.append(f"| DuckDB, {label[mode]}: the process's peak RSS | | "
                     f"{med(d['rss_kib'] for d in runs) / 1024:.1f} | |")
    lines += [
        "",
        f"Live textfile writer at {tf['procs']} processes (`export --follow`), per update: "
        f"render {tf['render_ms']:.2f} ms of CPU, write whole + fsync + rename "
        f"{tf['write_ms']:.2f} ms wall ({tf['series']} series, {tf['bytes']} bytes); following "
        f"the log (read, parse, replay, fold in) {tf['tick_ms']:.2f} ms of CPU per tick (the "
        "first segment's keyframe included). At the default `--every 15s` and a 1 s tick that "
        f"is {(tf['render_ms'] + 15 * tf['tick_ms']) / 150:.2f}% of one core.",
        END,
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not a.no_results:
        path = HERE / "RESULTS.md"
        old = path.read_text()
        if BEGIN in old:
            head, rest = old.split(BEGIN, 1)
            old = head + rest.split(END, 1)[1].lstrip("\n")
        path.write_text(old.rstrip("\n") + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
