"""The sampler's resident memory at tens of thousands of real processes, keyframes included.

Why a script of its own: the full run (bench/run.py) measures a 20,000-process crowd for a few
seconds, before the first periodic keyframe (every 300 s) and before the PSS tier has read the
crowd once, so it misses what a sampler holds after hours. Here the sampler runs with a
keyframe every few seconds, long enough for several keyframes and a whole PSS round, and its
VmRSS is read at the end. Side by side against the same crowd, in the same run: as the unit
and the script start it (the re-exec fixes glibc's mmap threshold); a fresh copy run with `-B`,
which has no .pyc and compiles itself at every start (the script compiles before its re-exec
and hands the code over); the same started as the re-exec did before that (the new image
compiling the file: a control); and with an operator's `MALLOC_ARENA_MAX=8` in the
environment, which leaves glibc's dynamic threshold in place (the control: what it held
before the fix).

    python bench/rss_big.py [N] [--seconds 60] [--keyframe 5]    (prints a markdown section)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import spawn  # noqa: E402

sys.path.insert(0, str(HERE.parent / "src"))
from measure import status_kib  # noqa: E402
from render import put_section  # noqa: E402
from run import BIG_KIB_SPAN, fit_crowd, real_python  # noqa: E402

from memtrail import sampler  # noqa: E402

SAMPLER = HERE.parent / "src" / "memtrail" / "sampler.py"


def run_sampler(python: str, env: dict, seconds: float, keyframe: float,
                start: list = None, extra: tuple = ()) -> dict:
    """Start the sampler (as a script, or by `start`: the interpreter's arguments before the
    sampler's own), let it run, read its memory and its log's keyframes."""
    logdir = Path(tempfile.mkdtemp(prefix="memtrail-rss-"))
    os.chmod(logdir, 0o700)
    argv = [python, "-I", "-S", *(start or [str(SAMPLER)]), "--dir", str(logdir), "--quiet",
            "--journal", "no", "--keyframe", f"{keyframe:g}s",
            "--psi-full-pct", "100", "--low-pct", "0", "--low-step", "1T", *extra]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        samples = []
        end = time.monotonic() + seconds
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(min(5.0, max(0.0, end - time.monotonic())))
            samples.append(status_kib(proc.pid))
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    text = "".join(p.read_text(errors="replace") for p in sorted(logdir.glob("*.log")))
    shutil.rmtree(logdir, ignore_errors=True)
    if proc.returncode != 0 or not samples or samples[-1][0] is None:
        raise SystemExit(f"sampler failed ({proc.returncode}): {err.decode()[-400:]}")
    return {"rss": samples[-1][0] / 1024, "hwm": samples[-1][1] / 1024,
            "keyframes": text.count("\nK "), "pss_rounds": text.count(" pss {"),
            "heap": "fixed" if '"heap":"mmap threshold' in text else "glibc default"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--keyframe", type=float, default=5.0)
    ap.add_argument("--results", default=str(HERE / "RESULTS.md"),
                    help="markdown file to put the section in ('-': print only)")
    args = ap.parse_args(argv)
    n = fit_crowd(args.n)
    python = real_python()
    cgroup = spawn.unit_cgroup(f"mtbench-rss-{os.getpid()}")  # as a service's workers
    crowd = spawn.start(n, kib_span=BIG_KIB_SPAN, timeout_s=600, cgroup=cgroup)
    try:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
        fixed = dict(base, MALLOC_MMAP_THRESHOLD_=sampler.HEAP_MMAP_THRESHOLD)
        fresh = Path(tempfile.mkdtemp(prefix="memtrail-copy-")) / "sampler.py"
        shutil.copy(SAMPLER, fresh)
        rows = []
        for label, env, start, extra in (
                ("as the unit and the script start it (.pyc cached)", base, None, ()),
                ("the same, --no-quiet-skip (every process read at every tick)", base, None,
                 ("--no-quiet-skip",)),
                ("a fresh copy with -B: compiled before the re-exec, handed over", base,
                 ["-B", str(fresh)], ()),
                ("control: the same copy, the re-executed image compiling it", fixed,
                 ["-B", "-c", sampler._LOAD_BY_PATH, str(fresh)], ()),
                ("control: MALLOC_ARENA_MAX=8 set, glibc's dynamic threshold",
                 dict(base, MALLOC_ARENA_MAX="8"), None, ())):
            rows.append((label, run_sampler(python, env, args.seconds, args.keyframe, start,
                                            extra)))
        shutil.rmtree(fresh.parent, ignore_errors=True)
    finally:
        crowd.stop()
        spawn.remove_cgroup(cgroup)
    lines = [
        f"## Sampler memory at {n} processes, keyframes included (`bench/rss_big.py`)", "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {n} idle processes "
        f"(bench/spawner.c{', in a cgroup of their own' if cgroup else ''}), the sampler "
        f"run as a script with {python}, a keyframe every "
        f"{args.keyframe:g} s, VmRSS after {args.seconds:g} s; the runs one after the "
        "other against the same crowd. Target (issue 17): <= 24 MiB.", "",
        "| started | heap | keyframes | PSS rounds | VmRSS (MiB) | peak VmHWM (MiB) |",
        "| --- | --- | ---: | ---: | ---: | ---: |"]
    for label, r in rows:
        lines.append(f"| {label} | {r['heap']} | {r['keyframes']} | {r['pss_rounds']} | "
                     f"{r['rss']:.1f} | {r['hwm']:.1f} |")
    text = "\n".join(lines)
    print(text)
    if args.results != "-":
        put_section(Path(args.results), "rss_big", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
