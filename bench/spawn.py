"""Start and always clean up a crowd of idle (or churning) processes for the benchmarks.

Why a separate module: every benchmark needs "a host with N processes", and a leaked crowd of
5000 processes would poison every later measurement, so starting and stopping live in one place
with process-group kills, an atexit hook and parent-death signals in the children.

With gcc, the crowd is `spawner.c` (tiny C children, distinctive argv, ~0.2-1 MiB touched each).
Without it, a small Python parent forks children that `pause()` (same argv, shared pages).
"""

from __future__ import annotations

import atexit
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

_live: list[subprocess.Popen] = []


@dataclass
class Churn:
    """Per period: `exit_permille` of the crowd exits and is replaced, `rss_permille` resizes."""

    period_ms: int = 1000
    exit_permille: int = 10
    rss_permille: int = 50


@dataclass
class Crowd:
    """A running crowd; `stop()` kills the whole process group and waits for it to be gone."""

    proc: subprocess.Popen
    kind: str

    def stop(self) -> None:
        stop_group(self.proc, timeout=20)
        if self.proc in _live:
            _live.remove(self.proc)


def stop_group(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM (a clean stop, for recorders that write an end record), SIGKILL to the process
    group PROC leads, then wait until the kernel has torn the whole group down."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    # The children die with the leader; wait until they are gone so the next measurement sees
    # the process count it asked for.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _group_alive(proc.pid):
        time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


@atexit.register
def _cleanup() -> None:
    for proc in list(_live):
        stop_group(proc, timeout=20)
    _live.clear()


def compile_c(source: str, out_dir: Path = OUT / "bin") -> Path | None:
    """Compile bench/SOURCE.c with gcc (cached by mtime); None when no C compiler is present."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        return None
    src = HERE / f"{source}.c"
    exe = out_dir / source
    if exe.exists() and exe.stat().st_mtime >= src.stat().st_mtime:
        return exe
    out_dir.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([cc, "-O2", "-Wall", "-o", str(exe), str(src)], capture_output=True)
    if res.returncode != 0:
        sys.stderr.write(res.stderr.decode(errors="replace"))
        return None
    return exe


_PY_CROWD = r"""
import os, signal, sys, time, ctypes
n = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
kids = []
for i in range(n):
    pid = os.fork()
    if pid == 0:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        libc.prctl(15, b"mt-bench-idle")  # PR_SET_NAME
        buf = bytearray(64 * 1024 + (i % 16) * 32 * 1024)
        while True:
            signal.pause()
    kids.append(pid)
print("ready", n, flush=True)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
try:
    while True:
        signal.pause()
finally:
    for pid in kids:
        os.kill(pid, signal.SIGKILL)
"""


def start(n: int, churn: Churn | None = None, timeout_s: float = 120.0,
          kib_span: int | None = None, cgroup: Path | None = None) -> Crowd:
    """Start N processes in their own process group and wait until all are up. Each C child
    touches 64 KiB + up to `kib_span` (default 960) KiB: big crowds use a small span.
    `cgroup`: a v2 cgroup directory the crowd starts in (as a service's workers live in the
    service's cgroup), made by unit_cgroup."""
    exe = compile_c("spawner")
    env = dict(os.environ)
    if kib_span:
        env["MEMTRAIL_BENCH_KIB_SPAN"] = str(kib_span)
    if exe is not None:
        argv = [str(exe), str(n)]
        if churn:
            argv += [str(churn.period_ms), str(churn.exit_permille), str(churn.rss_permille)]
        kind = "c"
    else:
        if churn:
            raise RuntimeError("churn needs the C spawner (gcc)")
        argv = [sys.executable, "-I", "-S", "-c", _PY_CROWD, str(n)]
        kind = "python-fork"
    join = None
    if cgroup is not None:
        procs_files = [str(p / "cgroup.procs") for p in [cgroup, *_COMPANIONS.get(cgroup, [])]]

        def join() -> None:  # in the child, before exec: its children are born there
            for name in procs_files:
                with open(name, "w") as fh:
                    fh.write("0")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, start_new_session=True, env=env,
                            preexec_fn=join)
    _live.append(proc)
    crowd = Crowd(proc, kind)
    line = b""
    deadline = time.monotonic() + timeout_s
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or proc.poll() is not None:
                    raise RuntimeError(f"crowd of {n} did not start (got {line!r})")
                if sel.select(left):
                    chunk = os.read(proc.stdout.fileno(), 64)
                    if not chunk:
                        raise RuntimeError(f"crowd of {n} exited early (got {line!r})")
                    line += chunk
    except BaseException:
        crowd.stop()
        raise
    return crowd


_COMPANIONS: dict[Path, list[Path]] = {}  # a unit cgroup -> its v1 memory twin


def unit_cgroup(name: str) -> Path | None:
    """A new v2 cgroup for a crowd, as a systemd unit would have (None when there is no
    writable v2 hierarchy: not root, or no cgroup2 mount). On a hybrid host it also gets a
    v1 memory cgroup of the same name, as systemd makes one in each hierarchy: otherwise its
    processes' identities would name two different paths (their `mcg`), 50-odd bytes more
    per process than on any real host. Remove both with remove_cgroup."""
    try:
        with open("/proc/self/mountinfo") as fh:
            mounts = [line.split(" - ") for line in fh]
    except OSError:
        return None
    v2 = None
    twins = []
    for left, right in (m for m in mounts if len(m) == 2):
        kind, opts = right.split()[0], right.split()[2] if len(right.split()) > 2 else ""
        if kind == "cgroup2" and v2 is None:
            v2 = Path(left.split()[4]) / name
        elif kind == "cgroup" and "memory" in opts.split(","):
            twins.append(Path(left.split()[4]) / name)
    if v2 is None:
        return None
    made = []
    for path in [v2, *twins]:
        try:
            path.mkdir()
        except FileExistsError:
            pass
        except OSError:
            if path == v2:
                return None
            continue
        made.append(path)
    _COMPANIONS[v2] = made[1:]
    return v2


def remove_cgroup(path: Path | None) -> None:
    """rmdir a unit_cgroup and its twin (once empty: after the crowd is gone)."""
    if path is None:
        return
    for p in [path, *_COMPANIONS.pop(path, [])]:
        try:
            p.rmdir()
        except OSError:
            pass


def count_processes() -> int:
    """User-space processes now (kernel threads excluded: they have an empty cmdline)."""
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if f.read(1):
                        n += 1
            except OSError:
                pass
    return n


if __name__ == "__main__":
    c = start(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
    try:
        print("processes now:", count_processes())
    finally:
        c.stop()
    print("after stop:", count_processes())
