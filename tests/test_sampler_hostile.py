"""The root sampler against a hostile neighbour in its log directory (issue 14): planted links,
strangers' files, a directory swapped for a symlink while it runs, unsafe directories.

Why live and as root: the attacks are about what root follows and deletes; they are made with
real symlinks, real ownership and a real renameat2(RENAME_EXCHANGE) race.
"""

from __future__ import annotations

import ctypes
import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import SAMPLER, wait_for

pytestmark = [pytest.mark.live, pytest.mark.root]
IS_ROOT = os.geteuid() == 0
NOBODY = 65534
needs_root = pytest.mark.skipif(not IS_ROOT, reason="the attacks are on a root sampler")


def run_sampler(logdir, *extra, env=None):
    return subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(logdir),
                           "--duration", "0.3", "--quiet", "--no-kmsg", *extra],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def segment_texts(logdir: Path) -> str:
    """What the sampler wrote, read without following any link."""
    out = []
    for name in sorted(os.listdir(logdir)):
        path = logdir / name
        if path.is_symlink() or not path.is_file() or path.stat().st_uid != os.geteuid():
            continue
        data = path.read_bytes()
        out.append(gzip.decompress(data) if name.endswith(".gz") else data)
    return b"".join(out).decode("ascii", "replace")


@needs_root
def test_a_planted_segment_link_is_neither_compressed_nor_deleted(tmp_path):
    """A link named like an old segment, pointing at a secret: at start-up the sampler
    compresses leftover segments; it must not read the secret into a .gz, nor remove the link."""
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$hash-of-the-root-password:19000::::::\n")
    secret.chmod(0o600)
    logdir = tmp_path / "log"
    logdir.mkdir(mode=0o750)
    link = logdir / "memtrail-20200101T000000Z-000.log"
    link.symlink_to(secret)
    stranger = logdir / "memtrail-20200101T000000Z-001.log"  # a file of another user
    stranger.write_text("not the sampler's\n")
    os.chown(stranger, NOBODY, NOBODY)
    old = time.time() - 30 * 86400  # both far past --max-age: retention would delete them
    os.utime(stranger, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    run = run_sampler(logdir, "--max-age", "1d")
    assert run.returncode == 0, run.stderr
    names = os.listdir(logdir)
    assert link.is_symlink() and stranger.exists()
    assert not any(n.startswith("memtrail-20200101") and n.endswith(".gz") for n in names)
    assert "hash-of-the-root-password" not in segment_texts(logdir)
    assert secret.read_text().startswith("root:$6$")


@needs_root
def test_a_planted_temp_link_is_not_written_through_on_rotation(tmp_path):
    """`<current>.log.gz.tmp` planted as a link to a file: rotation (SIGHUP) compresses the
    current segment into that name; the target must stay as it was."""
    target = tmp_path / "passwd"
    target.write_text("root:x:0:0:root:/root:/bin/bash\n")
    before = target.read_bytes()
    logdir = tmp_path / "log"
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(logdir),
                             "--interval", "0.05", "--quiet", "--no-kmsg"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        current = wait_for(lambda: logdir.is_dir() and [
            n for n in os.listdir(logdir) if n.endswith(".log")], what="the first segment")[0]
        (logdir / (current + ".gz.tmp")).symlink_to(target)
        for _ in range(2):  # the first rotation meets the link; the second goes on normally
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: len([n for n in os.listdir(logdir) if n.endswith(".log")]) >= 2,
                     what="a new segment after SIGHUP")
        wait_for(lambda: sum(n.endswith(".gz") for n in os.listdir(logdir)) >= 1, timeout=30,
                 what="another closed segment compressed")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
        proc.stderr.close()
    assert rc == 0
    assert target.read_bytes() == before
    assert (logdir / (current + ".gz.tmp")).is_symlink()  # left alone, not deleted either
    assert (logdir / current).is_file()  # that segment stays plain: readers read it as it is


def _renameat2():
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        pytest.skip("no renameat2 in this C library")
    fn = libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


@needs_root
def test_directory_swapped_for_a_symlink_never_redirects_writes(tmp_path):
    """RENAME_EXCHANGE swaps the log directory with a symlink to the attacker's directory,
    again and again, while the sampler starts segments as fast as it can; nothing may ever be
    written into the attacker's directory, and the sampler keeps recording."""
    renameat2 = _renameat2()
    exchange, at_fdcwd = 2, -100  # RENAME_EXCHANGE, AT_FDCWD
    logdir = tmp_path / "log"
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chmod(theirs, 0o777)
    swap = tmp_path / "swap"
    swap.symlink_to(theirs)
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(logdir),
                             "--interval", "0.01", "--rotate-size", "4K", "--quiet",
                             "--no-kmsg"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    swaps = [0]
    stop = threading.Event()

    def attack():
        a, b = bytes(logdir), bytes(swap)
        deadline = time.monotonic() + 4.0  # bounded in time, whatever happens
        while not stop.is_set() and time.monotonic() < deadline:
            if renameat2(at_fdcwd, a, at_fdcwd, b, exchange) != 0:
                err = ctypes.get_errno()
                if err in (22, 38):  # EINVAL/ENOSYS: this filesystem or kernel cannot
                    return
                continue
            swaps[0] += 1
            time.sleep(0.0005)
    try:
        wait_for(lambda: logdir.is_dir() and any(n.endswith(".log") for n in os.listdir(logdir)),
                 what="the first segment")
        attacker = threading.Thread(target=attack)
        attacker.start()
        attacker.join(10)
        stop.set()
        if swaps[0] == 0:
            pytest.skip("RENAME_EXCHANGE is not supported here")
        if logdir.is_symlink():  # put things back as they were
            renameat2(at_fdcwd, bytes(logdir), at_fdcwd, bytes(swap), exchange)
        assert proc.poll() is None, proc.stderr.read()
        assert os.listdir(theirs) == []
        segments = lambda: [n for n in os.listdir(logdir) if n.endswith(".log")]  # noqa: E731
        before = set(segments())
        wait_for(lambda: set(segments()) - before, timeout=30, what="recording to go on")
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
        proc.stderr.close()
    assert rc == 0
    assert os.listdir(theirs) == []
    assert swaps[0] > 10


@needs_root
@pytest.mark.parametrize("setup, needle", [
    (lambda d: os.chown(d, NOBODY, NOBODY), "owned by uid 65534"),
    (lambda d: os.chmod(d, 0o770), "writable by its group"),
    (lambda d: os.chmod(d, 0o757), "writable by others"),
])
def test_unsafe_directories_are_refused_in_one_line(tmp_path, setup, needle):
    logdir = tmp_path / "log"
    logdir.mkdir(mode=0o750)
    setup(logdir)
    run = run_sampler(logdir)
    assert run.returncode == 1
    assert needle in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert os.listdir(logdir) == []


def test_group_writable_logs_directory_from_systemd_is_accepted(tmp_path):
    """LogsDirectoryMode= may give the group write access: that directory is systemd's."""
    logdir = tmp_path / "log"
    logdir.mkdir()
    os.chmod(logdir, 0o770)
    run = subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--duration", "0.2",
                          "--quiet", "--no-kmsg"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "LOGS_DIRECTORY": str(logdir)})
    assert run.returncode == 0, run.stderr
    assert any(n.endswith(".log") for n in os.listdir(logdir))


def test_empty_dir_is_one_clear_line(tmp_path):
    run = subprocess.run([sys.executable, "-I", "-S", str(SAMPLER), "--dir", ""],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 2
    assert "--dir is empty" in run.stderr and "does not exist" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def _pidfile_cases():
    def link(tmp):
        victim = tmp / "victim"
        victim.write_text("precious\n")
        (tmp / "memtrail.pid").symlink_to(victim)
        return "it is a symbolic link"

    def fifo(tmp):
        os.mkfifo(tmp / "memtrail.pid")
        return "No such device or address"  # a FIFO with no reader: refused, never waited on

    def stranger(tmp):
        (tmp / "memtrail.pid").write_text("1\n")
        os.chown(tmp / "memtrail.pid", NOBODY, NOBODY)
        return "owned by uid 65534"

    def missing(tmp):
        return "No such file or directory"  # its directory does not exist
    return [link, fifo, stranger, missing]


@needs_root
@pytest.mark.parametrize("plant", _pidfile_cases(), ids=["symlink", "fifo", "stranger", "missing"])
def test_a_planted_pidfile_is_refused_in_one_line(tmp_path, plant):
    """--pidfile often names a shared directory (/tmp, /run): the sampler (root) writes its pid
    only into its own regular file, never through a link or into a FIFO, and says why not in
    one line before recording anything."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    needle = plant(shared)
    pidfile = shared / "memtrail.pid" if plant.__name__ != "missing" else \
        shared / "gone" / "memtrail.pid"
    logdir = tmp_path / "log"
    run = run_sampler(logdir, "--pidfile", str(pidfile))
    assert run.returncode == 1, run.stderr
    assert needle in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "Traceback" not in run.stderr
    if plant.__name__ == "symlink":
        assert (shared / "victim").read_text() == "precious\n"
    if plant.__name__ == "stranger":
        assert (shared / "memtrail.pid").read_text() == "1\n"


def test_an_own_pidfile_is_written_and_removed_at_a_clean_stop(tmp_path):
    pidfile = tmp_path / "memtrail.pid"
    pidfile.write_text("stale\n")
    logdir = tmp_path / "log"
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(SAMPLER), "--dir", str(logdir),
                             "--quiet", "--no-kmsg", "--pidfile", str(pidfile)],
                            stderr=subprocess.PIPE)
    try:
        wait_for(lambda: pidfile.read_text() == f"{proc.pid}\n", what="the pid written")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.stderr.read()
        proc.stderr.close()
    assert not pidfile.exists()
