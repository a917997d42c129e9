"""The sampler's systemd protocol, seen from outside: sd_notify datagrams and journal entries.

The sampler is run as systemd would run it (`python -I -S sampler.py`, `$NOTIFY_SOCKET`,
`$WATCHDOG_USEC`), but the sockets are ours: a datagram socket bound at a path or at an
abstract name stands in for systemd's notify socket, another for the journal's native socket
(`$MEMTRAIL_JOURNAL_SOCKET`). What systemd needs from a Type=notify service with a watchdog:
READY=1 only once the first tick is on disk, STATUS= lines, WATCHDOG=1 every tick and only from
the process named by $WATCHDOG_PID, STOPPING=1 at the end, all sent by the main process itself
(NotifyAccess=main). What the journal gets: a start and a stop entry with our MESSAGE_ID, never
the per-tick data.
"""

from __future__ import annotations

import array
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import List, Optional, Tuple

import pytest
from conftest import SAMPLER, wait_for

from memtrail import reader

pytestmark = pytest.mark.live

IDS = {
    "start": "6b3c1f0e2a9d4e5f8a7b6c5d4e3f2a10",
    "stop": "6b3c1f0e2a9d4e5f8a7b6c5d4e3f2a11",
}
STATUS_RE = re.compile(r"^tick [\d.]+s, \d+ procs, MemAvailable (\d+|\?)%, log [\d.]+ MB$")


class Listener:
    """A datagram socket standing in for systemd's; records (sender pid, payload) pairs."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.got: List[Tuple[int, bytes]] = []

    def receive(self, until, timeout: float = 15.0) -> None:
        """Read datagrams until `until(self.got)` is true; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not until(self.got):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; received so far: {self.got!r}")
            self.sock.settimeout(left)
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(
                    1 << 16, socket.CMSG_SPACE(struct.calcsize("3i")))
            except socket.timeout:
                continue
            pid = 0
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = array.array("i", payload[:12])[0]
            self.got.append((pid, data))

    def messages(self) -> List[str]:
        return [d.decode() for _p, d in self.got]

    def lines(self) -> List[str]:
        """Every assignment received, one per line (a datagram may carry several)."""
        return [ln for m in self.messages() for ln in m.split("\n")]

    def close(self) -> None:
        self.sock.close()


def _start(tmp_path: Path, env: dict, python: str = sys.executable,
           flags: Tuple[str, ...] = ("-I", "-S")) -> subprocess.Popen:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    clean.update(env)
    return subprocess.Popen(
        [python, *flags, str(SAMPLER), "--dir", str(tmp_path / "logs"), "--interval", "0.1",
         "--no-slab", "--no-cgroups", "--kmsg", "", "--quiet"],
        env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _count(got, assignment: bytes) -> int:
    return sum(assignment in d.split(b"\n") for _p, d in got)


def _stopping(got) -> bool:
    return bool(got) and got[-1][1] == b"STOPPING=1"


def _notify_run(proc: subprocess.Popen, listener: Listener, *until) -> Tuple[int, str]:
    """Receive until each condition of `until` holds in turn, stop the sampler (SIGTERM) and
    receive up to its STOPPING=1; its exit status and stderr. Closes the listener."""
    try:
        for condition in until:
            listener.receive(condition)
        code, err = _stop(proc)
        listener.receive(_stopping)
    finally:
        if proc.poll() is None:
            _stop(proc)
        listener.close()
    return code, err


def _stop(proc: subprocess.Popen) -> Tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return proc.returncode, err


def _ticks_on_disk(logs: Path) -> int:
    if not logs.is_dir():
        return 0
    return sum(1 for seg in reader.segments(str(logs)) for r in reader.read_path(seg)
               if r.type == "s")


def _parse_journal(data: bytes) -> dict:
    """The journal's native protocol: KEY=value lines, or KEY\\n<le64 length><bytes>\\n."""
    fields = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            key = line
            size = struct.unpack("<Q", data[nl + 1:nl + 9])[0]
            value = data[nl + 9:nl + 9 + size]
            i = nl + 9 + size + 1
        fields[key.decode()] = value.decode()
    return fields


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_ready_status_watchdog_stopping(tmp_path: Path, kind: str) -> None:
    if kind == "path":
        address = str(tmp_path / "notify")
        env_value = address
    else:
        name = "memtrail-test-" + uuid.uuid4().hex
        address, env_value = "\0" + name, "@" + name
    listener = Listener(address)
    logs = tmp_path / "logs"
    proc = _start(tmp_path, {"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "3000000"})
    ready_ticks: List[int] = []

    def until_ready(got):
        if _count(got, b"READY=1"):
            if not ready_ticks:
                ready_ticks.append(_ticks_on_disk(logs))  # as soon as READY arrives
            return True
        return False
    # Then watchdog pings keep coming, tick after tick.
    code, err = _notify_run(proc, listener, until_ready,
                            lambda got: _count(got, b"WATCHDOG=1") >= 5)
    assert code == 0, err
    assert ready_ticks[0] >= 1, "READY=1 came before the first tick was on disk"
    msgs = listener.messages()
    lines = listener.lines()
    assert lines.index("READY=1") < lines.index("WATCHDOG=1")
    statuses = [ln[7:] for ln in lines if ln.startswith("STATUS=")]
    assert statuses and all(STATUS_RE.match(s) for s in statuses), statuses
    assert msgs[-1] == "STOPPING=1" and lines.count("STOPPING=1") == 1
    assert lines.count("READY=1") == 1
    # NotifyAccess=main: every datagram comes from the sampler's own pid, not a helper.
    assert {pid for pid, _d in listener.got} == {proc.pid}


@pytest.mark.parametrize("env", [
    {},  # no watchdog configured
    {"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"},  # the watchdog is for another process
    {"WATCHDOG_USEC": "0"},
])
def test_no_watchdog_pings_unless_asked(tmp_path: Path, env: dict) -> None:
    listener = Listener(str(tmp_path / "notify"))
    proc = _start(tmp_path, {"NOTIFY_SOCKET": str(tmp_path / "notify"), **env})
    code, err = _notify_run(proc, listener,
                            lambda got: sum(d.startswith(b"STATUS=") for _p, d in got) >= 3)
    assert code == 0, err
    lines = listener.lines()
    assert "READY=1" in lines
    assert "WATCHDOG=1" not in lines


def test_a_missing_notify_socket_does_not_stop_recording(tmp_path: Path) -> None:
    """systemd restarted or the socket vanished: the sampler keeps recording regardless."""
    proc = _start(tmp_path, {"NOTIFY_SOCKET": str(tmp_path / "absent"),
                             "WATCHDOG_USEC": "3000000",
                             "MEMTRAIL_JOURNAL_SOCKET": str(tmp_path / "absent-journal")})
    def ticks() -> int:
        assert proc.poll() is None, proc.communicate()
        return _ticks_on_disk(tmp_path / "logs")
    wait_for(lambda: ticks() >= 3, 15, "3 ticks", 0.05)
    code, err = _stop(proc)
    assert code == 0, err
    last = list(reader.read(str(tmp_path / "logs")))[-1]
    assert last.type == "Z"


def test_journal_gets_start_and_stop_entries_only(tmp_path: Path) -> None:
    journal = Listener(str(tmp_path / "journal"))
    logs = tmp_path / "logs"
    proc = _start(tmp_path, {"MEMTRAIL_JOURNAL_SOCKET": str(tmp_path / "journal")})
    try:
        journal.receive(lambda got: len(got) >= 1)
        # several ticks, still one entry
        wait_for(lambda: _ticks_on_disk(logs) >= 5, 15, "5 ticks", 0.05)
        code, err = _stop(proc)
        journal.receive(lambda got: len(got) >= 2)
    finally:
        if proc.poll() is None:
            _stop(proc)
        journal.close()
    assert code == 0, err
    entries = [_parse_journal(d) for _p, d in journal.got]
    assert [e["MESSAGE_ID"] for e in entries] == [IDS["start"], IDS["stop"]]
    start, stop = entries
    for e in entries:
        assert e["SYSLOG_IDENTIFIER"] == "memtrail"
        assert e["PRIORITY"].isdigit()
        assert e["MESSAGE"].startswith("memtrail ")
    assert start["MEMTRAIL_PID"] == str(proc.pid)
    assert start["MEMTRAIL_DIR"] == str(logs.resolve())
    assert int(stop["MEMTRAIL_TICKS"]) >= 5
    assert {pid for pid, _d in journal.got} == {proc.pid}


def test_no_journal_outside_systemd(tmp_path: Path) -> None:
    """Run by hand (no $INVOCATION_ID, no test socket): nothing is sent to the journal.

    Observed through the notify socket's companion: with MEMTRAIL_JOURNAL=no even a given test
    socket stays silent.
    """
    journal = Listener(str(tmp_path / "journal"))
    proc = _start(tmp_path, {"MEMTRAIL_JOURNAL_SOCKET": str(tmp_path / "journal"),
                             "MEMTRAIL_JOURNAL": "no"})
    try:
        wait_for(lambda: _ticks_on_disk(tmp_path / "logs") >= 3, 15, "3 ticks", 0.05)
        code, err = _stop(proc)
    finally:
        if proc.poll() is None:
            _stop(proc)
    journal.sock.settimeout(0)
    try:
        stray: Optional[bytes] = journal.sock.recv(1 << 16)
    except BlockingIOError:
        stray = None
    journal.close()
    assert code == 0, err
    assert stray is None


def _python_with_systemd() -> Optional[str]:
    for python in (sys.executable, "/usr/bin/python3"):
        if not os.access(python, os.X_OK):
            continue
        probe = subprocess.run([python, "-I", "-c", "import systemd.daemon"],
                               capture_output=True, timeout=30)
        if probe.returncode == 0:
            return python
    return None


def test_notify_through_systemd_python(tmp_path: Path) -> None:
    """When systemd-python is importable the sampler uses it; systemd must see the same."""
    python = _python_with_systemd()
    if python is None:
        pytest.skip("systemd-python not installed (apt-get install python3-systemd)")
    listener = Listener(str(tmp_path / "notify"))
    proc = _start(tmp_path, {"NOTIFY_SOCKET": str(tmp_path / "notify"),
                             "WATCHDOG_USEC": "3000000"}, python=python, flags=("-I",))
    code, err = _notify_run(proc, listener, lambda got: _count(got, b"WATCHDOG=1") >= 2)
    assert code == 0, err
    lines = listener.lines()
    assert lines.index("READY=1") < lines.index("WATCHDOG=1")
