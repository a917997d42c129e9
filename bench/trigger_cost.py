"""What triggers cost per tick: the sampler of `main` (or any git revision), this tree with no
rules, and this tree with rules that match every process of a churning crowd, ticked in turn in
one process on the same /proc, so the three see the same host. Medians of CPU per tick and
their ratios; never an absolute time alone.

    sudo python3 bench/trigger_cost.py [--procs 2000] [--rounds 150] [--base REV] [--idle]

The rules can never fire (a 100G line, and --trigger-dry-run): what is measured is the
evaluation (program names, growth history), not a signal.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import spawn  # noqa: E402

SAMPLER = HERE.parent / "src" / "memtrail" / "sampler.py"
COMMON = ["--no-kmsg", "--no-mlock", "--no-oom-adj", "--quiet", "--journal", "no",
          "--rss-delta", "4K", "--rss-delta-pct", "0"]
RULES = ["--trigger-dry-run", "--trigger", "memtrail-bench-idle:rss>100G:USR2",
         "--trigger", "memtrail-bench-idle:grow>100G/10m:USR1", "--trigger", "*:low:USR2"]


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make(module, logdir: str, extra: list):
    cfg = module.parse_args(["--dir", logdir, *COMMON, *extra])
    module.check_log_dir(cfg.dir)
    return module.Sampler(cfg)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=150)
    ap.add_argument("--base", default="main", help="git revision of the baseline sampler")
    ap.add_argument("--idle", action="store_true",
                    help="an idle crowd (the sampler's quiet-table path) instead of churn")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="memtrail-trigcost-") as tmp:
        base_src = subprocess.run(["git", "show", f"{args.base}:src/memtrail/sampler.py"],
                                  capture_output=True, check=True, cwd=HERE.parent).stdout
        (Path(tmp) / "base_sampler.py").write_bytes(base_src)
        base = load(Path(tmp) / "base_sampler.py", "base_sampler")
        this = load(SAMPLER, "this_sampler")
        churn = None if args.idle else spawn.Churn(period_ms=1000, exit_permille=10,
                                                   rss_permille=100)
        crowd = spawn.start(args.procs, churn)
        try:
            samplers = {"base": make(base, f"{tmp}/a", []), "no rules": make(this, f"{tmp}/b", []),
                        "rules": make(this, f"{tmp}/c", RULES)}
            cpu = {name: [] for name in samplers}
            now = time.time()
            for s in samplers.values():  # first ticks: identities, keyframe
                s.tick(now, time.monotonic(), time.process_time(), True)
            for i in range(args.rounds):
                order = list(samplers.items())
                order = order[i % 3:] + order[:i % 3]  # who goes first rotates
                for name, s in order:
                    c0 = time.process_time()
                    s.tick(time.time(), time.monotonic(), c0, False)
                    cpu[name].append(time.process_time() - c0)
                time.sleep(0.05)
            engine = samplers["rules"].triggers
        finally:
            crowd.stop()
    med = {name: statistics.median(v) * 1000 for name, v in cpu.items()}
    print(f"{args.procs} crowd processes, {args.rounds} rounds, "
          + ("idle" if args.idle else "1% replaced and 10% resized per second"))
    for name, m in med.items():
        print(f"  {name:9s} median CPU per tick {m:7.3f} ms  ratio to base "
              f"{m / med['base']:.3f}")
    print(f"  programs cached {len(engine.programs)}, growth histories {len(engine.history)}")


if __name__ == "__main__":
    main()
