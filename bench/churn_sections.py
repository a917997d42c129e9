"""Where a churning crowd's tick goes, method by method, in the sampler's own process.

Why: bench/run.py says what a tick costs; when that misses its target, this says which part of
the tick to look at. The sampler runs in this process against a crowd (by default 2000
processes of which 1 % are replaced and 5 % resize every 0.25 s tick), and its main methods are
wrapped to add up their own CPU time (process_time; the wrapping adds about a quarter to the
total, so compare the parts with each other, not with bench/run.py's figures). Nested methods
are counted in their callers too: `_read_known` is part of `scan_processes`.

usage: bench/churn_sections.py [NPROCS] [TICKS] [--idle]   (prints JSON; run in a PID namespace
for a count of exactly the crowd: `unshare --pid --fork --mount-proc`)
"""

from __future__ import annotations

import collections
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import spawn  # noqa: E402

from memtrail import sampler as S  # noqa: E402

SECTIONS = {
    S.Sampler: ["tick_sections", "scan_processes", "_read_known", "_probe", "_admit", "_drop",
                "_listing", "recheck_young", "recheck_execed", "details", "scan_cgroups",
                "read_slab", "read_kmsg", "quiet_groups", "_identify"],
    S.PssTier: ["plan", "drain", "_read", "_faults"],
    S.SystemReader: ["read"],
}


def _wrap(cls, name: str, spent: collections.Counter, calls: collections.Counter) -> None:
    inner = getattr(cls, name)
    key = f"{cls.__name__}.{name}"

    def timed(*args, **kwargs):
        t0 = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[key] += time.process_time() - t0
            calls[key] += 1
    setattr(cls, name, timed)


def measure(nprocs: int = 2000, ticks: int = 240, churn: bool = True,
            interval: float = 0.25) -> dict:
    spent: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    for cls, names in SECTIONS.items():
        for name in names:
            _wrap(cls, name, spent, calls)
    crowd = spawn.start(nprocs, spawn.Churn(int(interval * 1000), 10, 50) if churn else None)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = S.parse_args(["--dir", tmp, "--interval", str(interval), "--quiet",
                                "--journal", "no", "--kmsg", "", "--no-mlock", "--no-oom-adj"])
            sampler = S.Sampler(cfg)
            sampler.tick(time.time(), time.monotonic(), time.process_time(), True)
            spent.clear()
            calls.clear()
            c0 = time.process_time()
            for _ in range(ticks):
                time.sleep(interval)  # the pace is the point: caches cool between ticks
                sampler.tick(time.time(), time.monotonic(), time.process_time(), False)
            total = time.process_time() - c0
    finally:
        crowd.stop()
    return {"processes": nprocs, "ticks": ticks, "churn": churn, "interval_s": interval,
            "total_ms_per_tick": round(total / ticks * 1000, 3),
            "sections": {key: {"ms_per_tick": round(spent[key] / ticks * 1000, 3),
                               "calls_per_tick": round(calls[key] / ticks, 2)}
                         for key, _ in spent.most_common()}}


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    nprocs = int(args[0]) if args else 2000
    ticks = int(args[1]) if len(args) > 1 else 240
    print(json.dumps(measure(nprocs, ticks, churn="--idle" not in argv), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
