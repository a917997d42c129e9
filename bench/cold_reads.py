"""What one pread of /proc/PID/statm costs back to back, and at the sampler's pace.

Why: the churning target of issue 17 compares the sampler with loops that read every statm each
tick, and on some machines even the C loop over held descriptors takes most of the budget. This
says where that cost lies: the same 2000 reads on held descriptors, measured as a tight series
of passes (the kernel's task and mm structures stay in the CPU caches) and as passes 0.25 s
apart (the bench's tick: between passes the host's other work evicts them). The two are taken
in the same run, alternating, so a busier minute moves both. CPU is the process's own, from
time.process_time (CLOCK_PROCESS_CPUTIME_ID: the kernel brings the running task's count up to
date when asked, where getrusage counts in scheduler ticks and /proc's schedstat, which the
harness reads for a process between ticks, lags for a running one), never a wall-clock time.

usage: bench/cold_reads.py [NPROCS] [PASSES]   (prints JSON)
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import spawn  # noqa: E402


def _passes(fds: list, n: int) -> float:
    """CPU ms per pass over N passes in a row, each one pread of every descriptor, as the
    sampler's table loop does it (in C, via map)."""
    t0 = time.process_time()
    for _ in range(n):
        list(map(os.pread, fds, itertools.repeat(256), itertools.repeat(0)))
    return (time.process_time() - t0) / n * 1000


def measure(nprocs: int = 2000, passes: int = 40, gap_s: float = 0.25) -> dict:
    crowd = spawn.start(nprocs)
    try:
        kids = []
        for task in Path(f"/proc/{crowd.proc.pid}/task").iterdir():
            kids += (task / "children").read_text().split()
        fds = [os.open(f"/proc/{pid}/statm", os.O_RDONLY) for pid in kids]
        hot, spaced = [], []
        try:
            for _ in range(passes):
                hot.append(_passes(fds, 20))  # 20 in a row: caches stay warm
                time.sleep(gap_s)  # the pause is the point: what the tick's gap does to caches
                spaced.append(_passes(fds, 1))
        finally:
            for fd in fds:
                os.close(fd)
    finally:
        crowd.stop()
    # the mean of the spaced passes is the figure (a tick's cost is its mean), the median beside
    hot_ms, spaced_ms = statistics.median(hot), statistics.fmean(spaced)
    return {"processes": len(fds), "passes": passes, "gap_s": gap_s,
            "hot_ms_per_pass": round(hot_ms, 3),
            "spaced_ms_per_pass_mean": round(spaced_ms, 3),
            "spaced_ms_per_pass_median": round(statistics.median(spaced), 3),
            "spaced_over_hot": round(spaced_ms / hot_ms, 2)}


def main(argv: list[str]) -> int:
    nprocs = int(argv[0]) if argv else 2000
    passes = int(argv[1]) if len(argv) > 1 else 40
    print(json.dumps(measure(nprocs, passes)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
