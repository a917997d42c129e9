"""The analyzer's output files (`-o FILE`, `--junit`, `--summary`, the textfile): whole or absent.

Every file the analyzer writes is made under a fresh name in the target's own directory
(`tempfile.mkstemp`: O_CREAT|O_EXCL, mode 0600, so nothing another user planted there - a
symlink at the old fixed `FILE.tmp` name, say - is ever opened or followed), filled, fsynced,
given its final mode, and renamed over FILE in one step; then the directory is fsynced. A
reader sees the old file or the new one, never half of one; a crash leaves at most a stray
`.FILE.*.tmp`. A symlink at FILE itself is replaced, not followed: its target is left alone.

A path that names something other than a regular file (a device, a FIFO, /dev/stdout) is
refused with one line: renaming over /dev/null as root would replace the device, and `-`
already means standard output.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from typing import IO, Iterator, Optional


class OutputError(OSError):
    """A path the analyzer will not write to; `strerror` says why."""


def _umask_mode(mode: Optional[int]) -> int:
    if mode is not None:
        return mode
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_open(path: str, mode: Optional[int] = None, encoding: str = "utf-8",
                newline: Optional[str] = None) -> Iterator[IO[str]]:
    """A text file to fill; on a clean exit it replaces `path` whole (see the module docstring).
    `mode` defaults to what a plain open() would give (0666 less the umask)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(0, "not a regular file (use - for standard output)")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline=newline) as fh:
            yield fh
            fh.flush()
            os.fchmod(fh.fileno(), _umask_mode(mode))
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def write_text(path: str, text: str, mode: Optional[int] = None) -> None:
    """Write `text` (UTF-8) to `path` whole, through `atomic_open`."""
    with atomic_open(path, mode) as fh:
        fh.write(text)


def _fsync_dir(directory: str) -> None:
    """The rename survives a crash only once the directory is on disk too (best effort)."""
    try:
        dfd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
                      | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
