#!/usr/bin/env python3
"""What the sampler's PSS tier costs: at 2000 processes, and on one process with a large heap.

usage: sudo python3 bench/pss_cost.py [--procs 2000] [--heap-mib 256,1024,4096] [--repeat 7]
                                      [--results bench/RESULTS.md]

Why: reading /proc/PID/smaps_rollup takes the target's mmap lock for a walk of its page tables
(a user measured 4.5 s on a 200 GB process), so the tier reads within a time budget and skips
a target predicted to be slow (docs/sampler.md, "The PSS tier"). This measures, side by side
in one run and as medians:
- a large heap: one smaps_rollup read against one statm read of the same process, for a heap
  of each size, with transparent huge pages refused for it (madvise NOHUGEPAGE: 4 KiB pages)
  and asked for (madvise HUGEPAGE: 2 MiB pages where the kernel finds them);
- 2000 processes: the sampler's steady tick (no PSS work), the tier's planning pass (sum of
  RSS by program, at status ticks), and a full round with default settings when the crowd is
  one program of 2000 processes (every member read), its time per read and the ticks the 20 ms
  budget spreads it over.
It writes a marked section into RESULTS.md (kept by bench/render.py when the main run rewrites
the file) and prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

import spawn  # noqa: E402

from memtrail import sampler as S  # noqa: E402

BEGIN, END = "<!-- pss_cost:begin -->", "<!-- pss_cost:end -->"

HEAP = r"""
import mmap, sys
size = int(sys.argv[1]) << 20
m = mmap.mmap(-1, size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m.madvise(mmap.MADV_NOHUGEPAGE if sys.argv[2] == "nohuge" else mmap.MADV_HUGEPAGE)
for i in range(0, size, 4096):
    m[i] = 1
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
"""


def _timed_read(path: str) -> float:
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.read(fd, 4096)
    finally:
        os.close(fd)
    return time.perf_counter() - t0


def heap(sizes, repeat: int) -> list:
    rows = []
    for mib in sizes:
        for mode in ("nohuge", "huge"):
            child = subprocess.Popen([sys.executable, "-c", HEAP, str(mib), mode],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                assert child.stdout.readline() == "ready\n"
                base = f"/proc/{child.pid}/"
                rollup, statm = [], []
                for _ in range(repeat):  # interleaved: both see the same machine load
                    rollup.append(_timed_read(base + "smaps_rollup"))
                    statm.append(_timed_read(base + "statm"))
                rss_kib = int(open(base + "statm").read().split()[1]) * os.sysconf(
                    "SC_PAGE_SIZE") // 1024
            finally:
                child.stdin.close()
                child.wait()
                child.stdout.close()
            r, s = statistics.median(rollup), statistics.median(statm)
            rows.append({"heap_mib": mib, "thp": mode, "rss_mib": rss_kib // 1024,
                         "smaps_rollup_ms": round(r * 1000, 3), "statm_ms": round(s * 1000, 4),
                         "ratio": round(r / s, 1),
                         "us_per_mib": round(r * 1e6 / max(rss_kib / 1024, 1), 3)})
    return rows


def crowd(n: int, repeat: int) -> dict:
    crowd = spawn.start(n)
    tmp = tempfile.mkdtemp(prefix=f"memtrail-pss-bench-{os.getpid()}-")
    try:
        cfg = S.parse_args(["--dir", tmp, "--no-kmsg", "--no-mlock", "--no-oom-adj", "--quiet",
                            "--journal", "no", "--no-slab", "--no-cgroups"])
        s = S.Sampler(cfg)
        mono = time.monotonic()
        s.tick(time.time(), mono, time.process_time(), True)  # identities, first round
        while s.pss.stats is not None:  # let the first round finish
            mono += 1.0
            s.tick(time.time(), mono, time.process_time(), False)
        steady, plan, rounds = [], [], []
        for _ in range(repeat):
            c0, mono = time.process_time(), time.monotonic()
            s.tick(time.time(), mono, c0, False)  # no round due: the steady tick
            steady.append(time.process_time() - c0)
            c0 = time.process_time()
            s.pss.plan(s.procs, s.top(cfg.pss_top_n), mono, True, False, [])
            plan.append(time.process_time() - c0)
            # the full round planned just now, drained as the ticks would: budget per call
            events: list = []
            ticks, c0, w0 = 0, time.process_time(), time.monotonic()
            while s.pss.stats is not None:
                s.pss.drain("0.000", mono, 1.0, [], events)
                ticks += 1
            rounds.append((time.process_time() - c0, time.monotonic() - w0, ticks,
                           events[-1][1] if events else {}))
        cpu = statistics.median(r[0] for r in rounds)
        last = rounds[-1][3]
        return {"processes": len(s.procs), "programs_read": last.get("programs"),
                "reads_per_round": last.get("read"),
                "steady_tick_cpu_ms": round(statistics.median(steady) * 1000, 2),
                "plan_cpu_ms": round(statistics.median(plan) * 1000, 2),
                "round_cpu_ms": round(cpu * 1000, 1),
                "round_wall_ms": round(statistics.median(r[1] for r in rounds) * 1000, 1),
                "round_ticks": statistics.median(r[2] for r in rounds),
                "us_per_read": round(cpu * 1e6 / max(last.get("read") or 1, 1), 1),
                "budget_ms": cfg.pss_budget * 1000, "crowd": crowd.kind}
    finally:
        crowd.stop()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)


def markdown(res: dict) -> str:
    L = [BEGIN, "## The PSS tier (`bench/pss_cost.py`)", "",
         f"Measured {res['date']} on {res['host']}, medians of {res['repeat']}, side by side in "
         "one run. Method: the script's docstring; design: docs/sampler.md.", "",
         "One process with a large heap: one `smaps_rollup` read against one `statm` read of "
         f"the same process (transparent huge pages here: `{res['thp']}`).", "",
         "| heap | THP for it | RSS | smaps_rollup | statm | ratio | per MiB of RSS |",
         "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in res["heap"]:
        L.append(f"| {r['heap_mib']} MiB | {'refused' if r['thp'] == 'nohuge' else 'asked for'} "
                 f"| {r['rss_mib']} MiB | {r['smaps_rollup_ms']} ms | {r['statm_ms']} ms | "
                 f"{r['ratio']}x | {r['us_per_mib']} us |")
    c = res["crowd"]
    L += ["", f"{c['processes']} processes, one program of about 2000 (the {c['crowd']} crowd), "
          "default settings (5 programs, 20 ms budget per tick):", "",
          "| what | CPU |", "| --- | ---: |",
          f"| steady tick of the sampler (no PSS work) | {c['steady_tick_cpu_ms']} ms |",
          f"| planning pass (every 10 s: RSS summed by program) | {c['plan_cpu_ms']} ms |",
          f"| full round: {c['reads_per_round']} reads (every 60 s) | {c['round_cpu_ms']} ms "
          f"({c['us_per_read']} us a read), spread over {c['round_ticks']:g} ticks "
          f"({c['round_wall_ms']} ms wall) |", "",
          "Averaged over a minute at a 1 s tick, a full round of every process of a 2000-process "
          f"program adds {c['round_cpu_ms'] / 60:.2f} ms per tick and the planning pass "
          f"{c['plan_cpu_ms'] / 10:.2f} ms, against {c['steady_tick_cpu_ms']} ms for the tick "
          "itself; no tick spends more than the budget (plus one read) on the tier.", END]
    return "\n".join(L) + "\n"


def splice(md_path: Path, section: str) -> None:
    text = md_path.read_text() if md_path.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    md_path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--procs", type=int, default=2000)
    ap.add_argument("--heap-mib", default="256,1024,4096")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--results", default=str(HERE / "RESULTS.md"))
    a = ap.parse_args()
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    res = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "host": os.uname().nodename,
           "repeat": a.repeat, "thp": thp.read_text().strip() if thp.exists() else "?",
           "heap": heap([int(x) for x in a.heap_mib.split(",")], a.repeat),
           "crowd": crowd(a.procs, a.repeat)}
    print(json.dumps(res, indent=1))
    if a.results:
        splice(Path(a.results), markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
