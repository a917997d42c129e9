"""Start and stop the sampler as a separate process: `memtrail run`, `record --daemon`, `stop`.

The sampler must never fork (a fork under memory pressure stalls), so backgrounding cannot live
in it. This module starts it from the outside, as its own `python -I -S sampler.py` process in a
new session (terminal signals meant for the job never reach it), and only reports success once
the sampler is really recording: its first segment (header and first tick, written in one
write) is on disk. Stopping is the mirror image: SIGTERM (on which the sampler takes one last
tick, so the state after the job ended and any OOM kill the kernel logged in the last second are
in the log, then writes the clean end record `Z`), wait for the process to go, and check that
the log ends with `Z`. Only if it does not go in time is it SIGKILLed, and the caller is told so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import IO, Callable, List, Optional, Sequence, Set

from memtrail.reader import is_segment_name

SAMPLER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sampler.py")
POLL_S = 0.02  # how often a file we wait for is looked at


class SamplerError(Exception):
    """The sampler could not be started or stopped; the message is one line for stderr."""


def sampler_argv(args: Sequence[str]) -> List[str]:
    """The sampler as its own interpreter: isolated (-I) and without site packages (-S)."""
    return [sys.executable, "-I", "-S", SAMPLER, *args]


def _base(name: str) -> str:
    return name[:-3] if name.endswith(".gz") else name


def segment_bases(directory: str) -> Set[str]:
    """Names of the segments in `directory` (`.gz` stripped, so a compressed one is the same)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return set()
    return {_base(n) for n in names if is_segment_name(n)}


def new_segments(directory: str, before: Set[str]) -> List[str]:
    """Segment paths of `directory` that were not there `before`, oldest first (a `.log` wins
    over a `.gz` of the same name, as in the reader)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    plain = {n for n in names if n.endswith(".log") and is_segment_name(n)}
    chosen = sorted(n for n in names if is_segment_name(n) and _base(n) not in before
                    and not (n.endswith(".gz") and n[:-3] in plain))
    return [os.path.join(directory, n) for n in chosen]


def _parent_death_signal() -> Optional[Callable[[], None]]:
    """A preexec function that makes the kernel SIGTERM the sampler if its starter dies
    (`memtrail run` killed with SIGKILL must not leave a recorder running forever)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError, ImportError):
        return None

    def set_pdeathsig() -> None:
        prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG

    return set_pdeathsig


@dataclass
class Recorder:
    """A sampler this process started."""

    proc: subprocess.Popen
    directory: str
    before: Set[str]  # segments that were in the directory before it started
    errors: IO[bytes]  # its stderr (an unlinked temporary file)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def segments(self) -> List[str]:
        """The segments this sampler wrote (not older runs that share the directory)."""
        return new_segments(self.directory, self.before)

    def stderr_text(self) -> str:
        try:
            self.errors.seek(0)
            text = self.errors.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        return " ".join(line.strip() for line in text.splitlines() if line.strip())


def start(sampler_args: Sequence[str], directory: str, timeout: float = 30.0,
          pidfile: Optional[str] = None, detach: bool = False) -> Recorder:
    """Start the sampler writing to `directory` and return once it is recording.

    `detach` leaves it running after this process exits (background mode); otherwise it gets
    SIGTERM from the kernel if this process dies. Raises SamplerError with the sampler's own
    message when it exits instead of recording.
    """
    directory = os.path.abspath(directory)
    before = segment_bases(directory)
    errors = tempfile.TemporaryFile()
    preexec = None if detach else _parent_death_signal()
    try:
        proc = subprocess.Popen(
            sampler_argv([*sampler_args, "--dir", directory, "--quiet"]),
            stdin=subprocess.DEVNULL, stdout=errors, stderr=errors, close_fds=True,
            start_new_session=True, preexec_fn=preexec)
    except OSError as exc:
        errors.close()
        raise SamplerError(f"cannot start the sampler ({sys.executable}): {exc}") from None
    rec = Recorder(proc, directory, before, errors)
    deadline = time.monotonic() + timeout
    try:
        while True:
            status = proc.poll()
            if status is not None:
                detail = rec.stderr_text() or f"exit status {status}"
                raise SamplerError(f"the sampler did not start: {detail}")
            segs = rec.segments()
            if segs and _size(segs[-1]) > 0 and (not pidfile or os.path.exists(pidfile)):
                return rec
            if time.monotonic() > deadline:
                _kill(proc)
                raise SamplerError(f"the sampler did not start recording within {timeout:g} s "
                                   f"(no segment in {directory})")
            time.sleep(POLL_S)
    except BaseException:
        if proc.poll() is None:  # interrupted while waiting: leave nothing behind
            _kill(proc)
        raise


def _kill(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


# -- stopping ----------------------------------------------------------------------------------
@dataclass
class Stopped:
    """How a stop went: `clean` when the log ends with the `Z` end record."""

    clean: bool
    killed: bool  # had to be SIGKILLed
    segment: Optional[str]  # the last segment it wrote, if known
    message: str


def stat_fields(pid: int) -> List[bytes]:
    """The fields of /proc/PID/stat after the command name (the state first); [] when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return []
    return stat[stat.rfind(b")") + 2:].split()


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its parent counts as gone)."""
    state = stat_fields(pid)[:1]
    return bool(state) and state[0] not in (b"Z", b"X")


def is_sampler(pid: int) -> bool:
    """Whether `pid` looks like a memtrail sampler (a stale pidfile may name anything)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    return any(a.endswith(b"sampler.py") or a in (b"memtrail.sampler", b"record")
               or a.endswith(b"/memtrail") for a in argv)


def open_segment(pid: int) -> Optional[str]:
    """The segment file the sampler `pid` has open (the one it writes), via /proc/PID/fd."""
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return None
    found = []
    for fd in fds:
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.endswith(".log") and is_segment_name(os.path.basename(target)):
            found.append(target)
    return max(found, key=os.path.basename) if found else None


def _newest(directory: str) -> Optional[str]:
    segs = new_segments(directory, set())
    plain = [s for s in segs if s.endswith(".log")]
    return plain[-1] if plain else (segs[-1] if segs else None)


def ends_clean(segment: Optional[str]) -> bool:
    """Whether the segment's last line is a complete `Z` end record."""
    if not segment:
        return False
    try:
        with open(segment, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            tail = fh.read()
    except OSError:
        return False
    if not tail.endswith(b"\n"):
        return False
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return last.startswith(b"Z ")


def stop(pid: int, timeout: float = 30.0, proc: Optional[subprocess.Popen] = None) -> Stopped:
    """SIGTERM (the sampler takes a last tick, then writes `Z`), wait up to `timeout` s for it
    to go; SIGKILL only past that."""
    segment = open_segment(pid)
    killed = False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    if not _wait_gone(pid, proc, timeout):
        killed = True
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_gone(pid, proc, 10.0)
    if segment is not None and not os.path.exists(segment):  # compressed after a rotation
        segment = _newest(os.path.dirname(segment))
    clean = ends_clean(segment)
    if killed:
        message = (f"the sampler (pid {pid}) did not stop within {timeout:g} s of SIGTERM and "
                   f"was killed (SIGKILL): its log has no end record")
    elif clean:
        message = f"the sampler (pid {pid}) stopped cleanly"
    elif segment is None:
        message = f"the sampler (pid {pid}) stopped; its log could not be found to check"
    else:
        message = f"the sampler (pid {pid}) stopped but {segment} does not end with 'Z'"
    return Stopped(clean and not killed, killed, segment, message)


def _wait_gone(pid: int, proc: Optional[subprocess.Popen], timeout: float) -> bool:
    if proc is not None:
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


# -- `memtrail record --daemon` ----------------------------------------------------------------
def main(argv: List[str]) -> int:
    """`memtrail record --daemon --pidfile F [sampler flags]`: record in the background."""
    args = [a for a in argv if a != "--daemon"]
    if any(a in ("-h", "--help") for a in args):
        print("memtrail record --daemon --pidfile FILE [sampler flags]: start the sampler in "
              "the background and return once it is recording; `memtrail stop --pidfile FILE` "
              "ends it cleanly. Sampler flags: `memtrail record --help`.")
        return 0
    from memtrail.sampler import parse_args  # validates every flag exactly as the sampler will

    cfg = parse_args(args)
    if not cfg.pidfile:
        print("memtrail record: --daemon needs --pidfile FILE (memtrail stop --pidfile FILE "
              "ends the recording)", file=sys.stderr)
        return 2
    pidfile = os.path.abspath(cfg.pidfile)
    running = read_pidfile(pidfile)
    if running is not None and alive(running) and is_sampler(running):
        print(f"memtrail record: already recording (pid {running} in {pidfile})",
              file=sys.stderr)
        return 1
    try:
        rec = start([*without_flags(args, ("--pidfile", "--dir")), "--pidfile", pidfile],
                    cfg.dir, pidfile=pidfile, detach=True)
    except SamplerError as exc:
        print(f"memtrail record: {exc}", file=sys.stderr)
        return 1
    print(f"memtrail: recording to {rec.directory} every {cfg.interval:g}s in the background "
          f"(pid {rec.pid}); stop with: memtrail stop --pidfile {pidfile}", file=sys.stderr)
    return 0


def without_flags(args: Sequence[str], flags: Sequence[str]) -> List[str]:
    """`args` without `flags` and their values (`--dir D`, `--dir=D`, or a prefix argparse
    would take, `--pid F`): the daemon passes those itself, as absolute paths, so the
    sampler's command line (what `ps` and the pidfile check show) names each once."""
    from memtrail.sampler import _find_flag, _looks_like_flag

    out: List[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        flag = _find_flag(arg) if _looks_like_flag(arg) else None
        if flag in flags:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def read_pidfile(path: str) -> Optional[int]:
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
