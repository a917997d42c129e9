"""Where the sampler's memory and CPU go, at one process count (default 2000).

Why: a figure that misses its target is only useful with the breakdown that says what would
close the gap. Memory: the sampler is started in several ways against the same crowd (as the
unit starts it; without mlockall; imported from a cached .pyc instead of compiled as a script;
plus malloc_trim after warm-up) next to the bare interpreter and its imports, and its Python
heap is measured with tracemalloc. CPU: cProfile over many ticks, top functions by own time.

usage: bench/breakdown.py [NPROCS]   (prints JSON; bench/run.py puts it in RESULTS.md)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import spawn  # noqa: E402

SAMPLER = HERE.parent / "src" / "memtrail" / "sampler.py"
ARGS = ["--interval", "0.25", "--quiet", "--journal", "no"]  # + the caller's steady flags

# Run the sampler as an imported module (its .pyc cached), optionally calling malloc_trim
# once warm: shows what compiling the script at every start, and freed-but-kept heap, cost.
LAUNCH = r"""
import sys, signal
sys.path.insert(0, sys.argv[1])
import sampler
if sys.argv[2] == "trim":
    import ctypes
    libc = ctypes.CDLL(None)
    signal.signal(signal.SIGALRM, lambda *a: libc.malloc_trim(0))
    signal.setitimer(signal.ITIMER_REAL, 2.5)
sys.exit(sampler.main(sys.argv[3:]))
"""

TRACE = r"""
import sys, signal, tracemalloc, json
sys.path.insert(0, sys.argv[1])
out = sys.argv[2]
tracemalloc.start(1)
import sampler
def snap(*a):
    s = tracemalloc.take_snapshot()
    stats = s.statistics("lineno")
    total = sum(x.size for x in stats)
    mine = [x for x in stats if x.traceback[0].filename.endswith("sampler.py")]
    top = [[f"sampler.py:{x.traceback[0].lineno}", x.size, x.count] for x in mine[:8]]
    with open(out, "w") as f:
        json.dump({"total": total, "sampler_data": sum(x.size for x in mine), "top": top,
                   "nprocs": len(sampler_obj[0].procs) if sampler_obj else None}, f)
sampler_obj = []
_orig = sampler.Sampler.__init__
def init(self, cfg):
    _orig(self, cfg)
    sampler_obj.append(self)
sampler.Sampler.__init__ = init
signal.signal(signal.SIGALRM, snap)
signal.setitimer(signal.ITIMER_REAL, 3.0)
sys.exit(sampler.main(sys.argv[3:]))
"""

PROFILE = r"""
import sys, cProfile, pstats, json, signal
sys.path.insert(0, sys.argv[1])
out = sys.argv[2]
import sampler
p = cProfile.Profile()
# Start after the warm-up (first sight of every process), so the profile is the steady tick.
signal.signal(signal.SIGALRM, lambda *a: p.enable())
signal.setitimer(signal.ITIMER_REAL, 3.0)
try:
    sampler.main(sys.argv[3:])
finally:
    p.disable()
    st = pstats.Stats(p)
    rows = []
    for (fn, line, name), (cc, nc, tt, ct, _) in st.stats.items():
        rows.append([f"{fn.rsplit('/', 1)[-1]}:{line}({name})", nc, tt, ct])
    rows.sort(key=lambda r: -r[2])
    json.dump({"total_s": sum(r[2] for r in rows), "top": rows[:15]}, open(out, "w"))
"""


def _status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "VmLck"):
                out[k] = int(v.split()[0])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Pss", "Pss_Anon", "Pss_File"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def _run(argv: list[str], settle_s: float) -> dict:
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        time.sleep(settle_s)
        if p.poll() is not None:
            return {"error": p.stderr.read().decode(errors="replace")[-300:]}
        return _status(p.pid)
    finally:
        spawn.stop_group(p, timeout=10)


def memory(py: str, tmp: Path, args: list[str]) -> list[dict]:
    """RSS of each way of starting the sampler, and of the interpreter alone."""
    src = tmp / "src"
    src.mkdir()
    shutil.copy(SAMPLER, src / "sampler.py")
    subprocess.run([py, "-I", "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                    "import sampler", str(src)], check=True)  # writes the .pyc
    imports = ("import _signal, _socket, _json, _ctypes, errno, faulthandler, os, resource, "
               "select, sys, time, zlib, signal")
    cases = [
        ("bare interpreter (-I -S)", [py, "-I", "-S", "-c", "import signal; signal.pause()"]),
        ("interpreter + the sampler's imports",
         [py, "-I", "-S", "-c", imports + "; signal.pause()"]),
        ("sampler run as a script (python3 sampler.py)",
         [py, "-I", "-S", str(src / "sampler.py")]),
        ("sampler as a script, --no-mlock",
         [py, "-I", "-S", str(src / "sampler.py"), "--no-mlock"]),
        ("sampler imported from .pyc, run in place (python3 -m memtrail.sampler, memtrail record)",
         [py, "-I", "-S", "-c", LAUNCH, str(src), "-"]),
        ("sampler from .pyc + malloc_trim once warm",
         [py, "-I", "-S", "-c", LAUNCH, str(src), "trim"]),
    ]
    rows = []
    for i, (label, argv) in enumerate(cases):
        if "sampler" in label:
            argv = [*argv, "--dir", str(tmp / f"log{i}"), *args]
        row = {"case": label, **_run(argv, 4.0)}
        rows.append(row)
    return rows


def heap(py: str, tmp: Path, args: list[str]) -> dict:
    out = tmp / "trace.json"
    src = tmp / "src"
    _run([py, "-I", "-S", "-c", TRACE, str(src), str(out), "--dir", str(tmp / "logt"),
          "--no-mlock", *args], 4.5)
    try:
        return json.loads(out.read_text())
    except (OSError, ValueError):
        return {}


def cpu(py: str, tmp: Path, args: list[str], seconds: float = 18.0) -> dict:
    out = tmp / "prof.json"
    src = tmp / "src"
    p = subprocess.Popen([py, "-I", "-S", "-c", PROFILE,
                          str(src), str(out), "--dir", str(tmp / "logp"), *args],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    time.sleep(seconds)
    spawn.stop_group(p, timeout=30)  # SIGTERM: the profile is written on the way out
    try:
        res = json.loads(out.read_text())
    except (OSError, ValueError):
        return {"error": p.stderr.read().decode(errors="replace")[-300:] if p.stderr else ""}
    # Ticks profiled: those written 3 s or more after the first one.
    times = []
    for seg in (tmp / "logp").glob("*.log"):
        times += [float(ln.split()[1]) for ln in seg.open("rb") if ln.startswith(b"s ")]
    res["ticks"] = sum(1 for t in times if t >= min(times, default=0) + 3.0)
    return res


def _source_line(ref: str, source: Path) -> str:
    """'sampler.py:1217' -> that line of the copy that ran, stripped (line numbers drift)."""
    try:
        n = int(ref.rsplit(":", 1)[1].split("(")[0])
        return source.read_text().splitlines()[n - 1].strip()[:90]
    except (OSError, ValueError, IndexError):
        return ""


def run_all(nprocs: int, py: str, steady_flags: list[str]) -> dict:
    """Memory cases, Python heap and a CPU profile against one crowd of `nprocs`, the sampler
    run with ARGS + `steady_flags` (bench/run.py's STEADY_FLAGS)."""
    if not SAMPLER.exists():
        return {"error": "sampler not present"}
    crowd = spawn.start(max(2, nprocs - spawn.count_processes()))
    args = [*ARGS, *steady_flags]
    try:
        with tempfile.TemporaryDirectory(prefix="mtprof-") as t:
            tmp = Path(t)
            result = {"nprocs": spawn.count_processes(), "memory": memory(py, tmp, args)}
            result["heap"] = heap(py, tmp, args)
            for row in result["heap"].get("top", []):
                row.append(_source_line(row[0], tmp / "src" / "sampler.py"))
            result["cpu"] = cpu(py, tmp, args)
            return result
    finally:
        crowd.stop()


if __name__ == "__main__":
    import run

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(json.dumps(run_all(n, run.real_python(), run.STEADY_FLAGS), indent=1))
