"""Shared helpers: run the real sampler, read what it wrote."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLER = ROOT / "src" / "memtrail" / "sampler.py"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from memtrail import reader  # noqa: E402

# A suite started as a background job of a non-interactive shell (`bash .ci/run &` in a CI
# script, a loop under nohup) inherits SIGINT and SIGQUIT ignored (POSIX), and every program
# it starts inherits that too: `memtrail run` then rightly leaves an ignored Ctrl-C ignored,
# and the tests of how it passes Ctrl-C on could not send one. The tests choose the
# disposition they exercise: deliverable, unless a test ignores it itself.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def memory_cgroup(name: str):
    """A fresh child memory cgroup, v2 where it has the memory controller, else v1:
    (dir, procs file, limit file), or None. Swap is off in a v2 one, so a hog is killed
    rather than swapped out."""
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists() and "memory" in (
            v2 / "cgroup.controllers").read_text().split():
        d = v2 / name
        d.mkdir()
        if (d / "memory.swap.max").exists():
            (d / "memory.swap.max").write_text("0")
        return d, d / "cgroup.procs", d / "memory.max"
    v1 = Path("/sys/fs/cgroup/memory")
    if v1.is_dir():
        d = v1 / name
        d.mkdir()
        return d, d / "cgroup.procs", d / "memory.limit_in_bytes"
    return None


@contextlib.contextmanager
def full_disk(tmp_path: Path, sampler_factory, fakeproc):
    """A real sampler (ten fixture processes, a tick every 50 ms) recording onto a 512 KiB
    tmpfs that is then filled up: yields (sampler, mount, filler) before the first tick that
    hits ENOSPC; unmounted afterwards. Skipped unless root may mount a tmpfs."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0750", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        for pid in range(100, 110):
            fakeproc.add(pid, ["worker", str(pid)])
        s = sampler_factory(mnt, "--interval", "0.05", "--rotate-size", "1M", "--proc-root",
                            str(fakeproc.root), "--no-cgroups", quiet=False)
        s.wait_stderr("recording to")
        s.wait_ticks(2)
        filler = mnt / "filler"
        with open(filler, "wb", buffering=0) as fh:  # fill the disk
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError:
                pass
        yield s, mnt, filler
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def wait_for(predicate, timeout: float = 10.0, what: str = "condition", every: float = 0.02):
    """Poll until predicate() is truthy (every `every` s); the events we wait for are files and
    exits."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def call_main(capsys, main, *args) -> tuple:
    """(exit code, stdout, stderr) of a command's main() run in-process."""
    rc = main(list(args))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def records(path, stats=None):
    return list(reader.read(str(path), stats))


def log_text(path: Path) -> str:
    """All segment text of a log directory (plain and gz), in order."""
    import gzip

    out = []
    for seg in reader.segments(str(path)):
        opener = gzip.open if seg.endswith(".gz") else open
        with opener(seg, "rb") as fh:
            out.append(fh.read().decode("ascii"))
    return "".join(out)


class SamplerProc:
    """A real sampler process (the real interpreter, never the pyenv shim)."""

    def __init__(self, logdir: Path, *args: str, env: dict = None, wrap=(),
                 quiet: bool = True) -> None:
        self.logdir = Path(logdir)
        full_env = dict(os.environ)
        full_env.update(env or {})
        cmd = [*wrap, sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(logdir),
               *(["--quiet"] if quiet else []), *args]
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ticks(self, n: int, timeout: float = 15.0) -> None:
        def enough():
            if self.proc.poll() is not None:
                raise AssertionError(f"sampler exited early: {self.proc.stderr.read()!r}")
            try:
                return log_text(self.logdir).count("\ns ") >= n
            except (OSError, EOFError, reader.LogError):
                return False
        wait_for(enough, timeout, f"{n} ticks")

    def wait_stderr(self, needle: str, timeout: float = 15.0) -> str:
        """Block until the sampler says `needle` on stderr (needs quiet=False)."""
        import select

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stderr], [], [], 0.1)
            if ready:
                line = self.proc.stderr.readline().decode()
                if needle in line:
                    return line
                if not line:
                    break
        raise AssertionError(f"the sampler never said {needle!r}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def sampler_factory():
    started = []

    def start(logdir, *args, **kw):
        s = SamplerProc(logdir, *args, **kw)
        started.append(s)
        return s
    yield start
    for s in started:
        if s.proc.poll() is None:
            s.kill()


@pytest.fixture
def fakeproc(tmp_path):
    from fakeproc import FakeProc

    return FakeProc(tmp_path / "proc")
