"""The systemd unit: lint, security exposure, and the sampler run by a real systemd.

`systemd-analyze verify` exits 0 on a misspelt key or a bad value and only prints a warning,
so the lint test fails on any output at all. The integration tests boot systemd as PID 1 of
private namespaces (tests/systemd_harness.py), install the unit with `memtrail install-unit
--prefix` into that box, and check what an operator relies on: readiness, status, the watchdog
restarting a stuck sampler, USR1 snapshots, a clean end record on stop, the journal entry, and
that the sandbox still lets every read the sampler needs through (and that each capability in
the bounding set is really needed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import systemd_harness
from conftest import ROOT, records, wait_for

from memtrail import reader

UNIT = ROOT / "systemd" / "memtrail.service"
ENV = ROOT / "systemd" / "memtrail.env"
# `systemd-analyze security` exposure of the unit (0 = best, 10 = worst). What is left is what
# the job needs: reading every process (ProtectProc, ProcSubset, PrivateUsers, CAP_SYS_PTRACE,
# CAP_DAC_READ_SEARCH), the kernel log (ProtectKernelLogs, CAP_SYSLOG, /dev/kmsg), mlockall
# (CAP_IPC_LOCK), the notify/journal sockets (AF_UNIX) and group-readable logs (UMask=0027).
EXPOSURE_MAX = 1.3
START_ID = "6b3c1f0e2a9d4e5f8a7b6c5d4e3f2a10"  # the sampler's MESSAGE_ID for "start"
CAPS = ("CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_SYSLOG", "CAP_IPC_LOCK")


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    return tool


def _verify(path: Path) -> str:
    res = subprocess.run([_analyze(), "verify", str(path)], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    return (res.stdout + res.stderr).strip() + ("" if res.returncode == 0 else
                                               f"\n(exit status {res.returncode})")


def _exposure(text: str) -> float:
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", text)
    assert m, f"no exposure level in:\n{text[-2000:]}"
    return float(m.group(1))


# -- lint, without systemd running -------------------------------------------------------------

def test_verify_prints_nothing(tmp_path: Path) -> None:
    """Any warning at all (a misspelt key, a bad value, a missing binary) fails the test."""
    shutil.copy(UNIT, tmp_path / "memtrail.service")
    assert _verify(tmp_path / "memtrail.service") == ""


def test_verify_output_catches_what_its_exit_code_misses(tmp_path: Path) -> None:
    """The control for the test above: a misspelt key only shows up in the output."""
    bad = tmp_path / "memtrail.service"
    bad.write_text(UNIT.read_text().replace("WatchdogSec=", "WatchdogSecs="))
    res = subprocess.run([_analyze(), "verify", str(bad)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0  # the exit code says nothing ...
    assert "WatchdogSecs" in res.stdout + res.stderr  # ... the output does


def test_security_exposure_offline() -> None:
    res = subprocess.run([_analyze(), "security", "--offline=yes", str(UNIT)],
                         capture_output=True, text=True, timeout=60)
    score = _exposure(res.stdout + res.stderr)
    assert score <= EXPOSURE_MAX, res.stdout


def test_unit_keeps_its_promises() -> None:
    """The settings the README promises operators, read from the file itself."""
    keys: dict = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), []).append(v.strip())
    one = {k: v[-1] for k, v in keys.items()}
    assert one["Type"] == "notify"
    assert one["Restart"] == "always"
    assert one["ExecStart"] == "/usr/bin/python3 -I -S /usr/local/lib/memtrail/memtrail-sampler.py"
    assert one["LogsDirectory"] == "memtrail"
    assert one["EnvironmentFile"] == "-/etc/default/memtrail"
    assert int(one["OOMScoreAdjust"]) <= -900
    assert set(one["CapabilityBoundingSet"].split()) == set(CAPS)
    for key in ("WatchdogSec", "MemoryMin", "MemoryLow", "MemoryMax", "Nice"):
        assert key in one
    for key in ("ProtectKernelLogs", "ProtectProc", "ProcSubset", "PrivateUsers"):
        assert key not in one, f"{key}= would hide what the sampler must read"


def test_env_file_lists_every_sampler_setting() -> None:
    """Each flag of the sampler is in the EnvironmentFile, so every setting is changeable there."""
    text = ENV.read_text()
    from memtrail import sampler

    flags = [opt[0] for opt in sampler.OPTIONS]
    assert "--interval" in flags
    names = ["MEMTRAIL_" + f[2:].replace("-", "_").upper() for f in flags]
    missing = [n for n in names if not re.search(rf"(?m)^#?{n}=", text)]
    assert missing == []
    active = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert active == [], "the shipped settings file must only hold comments (the defaults)"


# -- under a real systemd -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def box():
    reason = systemd_harness.unavailable_reason()
    if reason:
        pytest.skip(f"cannot boot systemd in namespaces here: {reason}")
    with systemd_harness.SystemdBox() as b:
        yield b


# Runs under the unit's sandbox; reports every read and call the sampler depends on.
PROBE = r'''
import json, os, socket
out = {}
def attempt(name, fn):
    try:
        out[name] = fn()
    except Exception as exc:
        out[name] = "ERR " + type(exc).__name__ + ": " + str(exc)
def read(path):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return len(os.read(fd, 8192))
    finally:
        os.close(fd)
def mlock():
    import ctypes  # under MemoryDenyWriteExecute=yes
    libc = ctypes.CDLL(None, use_errno=True)
    return "ok" if libc.mlockall(1 | 2 | 4) == 0 else "errno %d" % ctypes.get_errno()
def other_users():
    pid = open("/run/probe-target.pid").read().strip()
    return read("/proc/%s/smaps_rollup" % pid) and read("/proc/%s/cmdline" % pid)
def write_log():
    path = os.path.join(os.environ["LOGS_DIRECTORY"], "probe.tmp")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.write(fd, b"x\n")
    os.close(fd)
    os.unlink(path)
    return "ok"
attempt("slabinfo", lambda: read("/proc/slabinfo"))
attempt("meminfo", lambda: read("/proc/meminfo"))
attempt("psi", lambda: read("/proc/pressure/memory"))
attempt("pid1_smaps_rollup", lambda: read("/proc/1/smaps_rollup"))
attempt("other_user_smaps_rollup", other_users)
attempt("kmsg", lambda: read("/dev/kmsg"))
attempt("mlockall", mlock)
attempt("cgroupfs", lambda: read("/sys/fs/cgroup/cgroup.procs"))
attempt("write_log", write_log)
attempt("uid", os.geteuid)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
print("PROBE " + json.dumps(out), flush=True)
'''


def _probe(box, name: str, drop: str = "") -> dict:
    """Run PROBE under a copy of the unit (minus capability `drop`), return its report."""
    text = UNIT.read_text()
    text = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/usr/bin/python3 -I -S /opt/probe.py", text)
    text = re.sub(r"(?m)^Restart=.*$", "Restart=no", text)
    if drop:
        text = re.sub(r"(?m)^(CapabilityBoundingSet=|AmbientCapabilities=)(.*)$",
                      lambda m: m.group(1) + " ".join(w for w in m.group(2).split() if w != drop),
                      text)
    box.write(f"/etc/systemd/system/{name}.service", text)
    box.systemctl("daemon-reload")
    box.systemctl("start", f"{name}.service", check=False)
    lines = [ln for ln in box.journal("-u", name, "-o", "cat").splitlines()
             if ln.startswith("PROBE ")]
    assert lines, box.journal("-u", name, "-o", "cat")
    return json.loads(lines[-1][6:])


@pytest.fixture(scope="module")
def probe_ready(box):
    """The probe script, and a process of another user to read (a non-root, other uid)."""
    box.write("/opt/probe.py", PROBE)
    box.run("systemd-run", "--unit=probe-target", "--uid=nobody", "sleep", "300")
    pid = wait_for(lambda: box.show("probe-target", "MainPID") not in ("", "0")
                   and box.show("probe-target", "MainPID"), 15, "the probe target's pid", 0.05)
    box.write("/run/probe-target.pid", pid + "\n")
    return True


@pytest.mark.root
def test_sandbox_lets_every_read_through(box, probe_ready) -> None:
    out = _probe(box, "probe-all")
    for key in ("slabinfo", "meminfo", "psi", "pid1_smaps_rollup", "other_user_smaps_rollup",
                "kmsg", "cgroupfs"):
        assert isinstance(out[key], int) and out[key] > 0, (key, out)
    assert out["mlockall"] == "ok", out
    assert out["write_log"] == "ok", out
    assert out["uid"] != 0, "DynamicUser=yes: the sampler must not run as root"


@pytest.mark.root
@pytest.mark.parametrize("cap,needed_for", [
    ("CAP_SYS_PTRACE", "pid1_smaps_rollup"),
    ("CAP_DAC_READ_SEARCH", "slabinfo"),
    ("CAP_SYSLOG", "kmsg"),
    ("CAP_IPC_LOCK", "mlockall"),
])
def test_each_capability_is_needed(box, probe_ready, cap: str, needed_for: str) -> None:
    """Without the capability, the read it is there for fails: none of them is spare."""
    out = _probe(box, "probe-no-" + cap.lower().replace("_", "-"), drop=cap)
    value = out[needed_for]
    assert isinstance(value, str) and (value.startswith("ERR") or value.startswith("errno")), out


def _segments(box) -> list:
    """The log directory of the unit, from the host side of the box."""
    return reader.segments(box.host_path("/var/log/memtrail"))


@pytest.mark.root
def test_sampler_under_systemd(box) -> None:
    # Install exactly as an operator would, into the box's root.
    res = subprocess.run([sys.executable, "-m", "memtrail", "install-unit",
                          "--prefix", box.host_path("/")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "systemctl enable --now memtrail.service" in res.stdout
    # Faster ticks through the EnvironmentFile; a short watchdog through a drop-in.
    with open(box.host_path("/etc/default/memtrail"), "a") as f:
        f.write("MEMTRAIL_INTERVAL=0.2\n")
    box.write("/etc/systemd/system/memtrail.service.d/test.conf",
              "[Service]\nWatchdogSec=3s\nRestartSec=200ms\n")
    box.systemctl("daemon-reload")

    # Type=notify: `start` returns once READY=1 came, after the first tick is on disk.
    start = box.run("systemctl", "start", "memtrail.service", check=False, timeout=60)
    journal = box.journal("-u", "memtrail", "-o", "cat")
    assert start.returncode == 0, f"start failed: {start.stderr}\n{journal}"
    assert box.show("memtrail", "ActiveState") == "active"
    assert box.show("memtrail", "SubState") == "running"
    assert box.show("memtrail", "StatusText").startswith("tick 0.2s,")
    assert box.show("memtrail", "WatchdogUSec") == "3s"
    assert box.show("memtrail", "OOMScoreAdjust") == "-999"
    assert box.show("memtrail", "MemoryMax") == str(256 << 20)
    assert box.show("memtrail", "LimitNOFILE") == "65536"
    first_pid = box.show("memtrail", "MainPID")

    # The log directory fills.
    def ticks() -> int:
        segs = _segments(box)
        return sum(r.type == "s" for r in records(segs[-1])) if segs else 0
    wait_for(lambda: ticks() >= 3, 15, "3 ticks in /var/log/memtrail", 0.05)
    recs = records(_segments(box)[-1])
    start_ev = [r for r in recs if r.type == "E" and r.fields[:1] == ["start"]]
    assert start_ev and start_ev[0].obj["kmsg"] == "ok", start_ev
    residency = [r.obj for r in recs if r.type == "E" and r.fields[:1] == ["residency"]]
    assert residency and residency[0]["mlock"].startswith("locked"), residency
    # The launcher made the sampler's one re-exec: the same pid, now running the handed-over
    # code, with the heap setting the script gets (docs/sampler.md).
    assert residency[0]["heap"] == "mmap threshold 131072 bytes", residency
    argv = Path(box.host_path(f"/proc/{first_pid}/cmdline")).read_bytes().split(b"\0")
    assert b"-c" in argv and b"/usr/local/lib/memtrail/sampler.py" in argv, argv

    # The start entry is in the journal, with our MESSAGE_ID and fields.
    entries = [json.loads(ln) for ln in box.journal(
        "-u", "memtrail", "-o", "json", "MESSAGE_ID=" + START_ID).splitlines() if ln]
    assert entries, box.journal("-u", "memtrail", "-o", "cat")
    assert entries[0]["MEMTRAIL_PID"] == first_pid

    # SIGUSR1 through systemd -> a snapshot event and a keyframe.
    box.systemctl("kill", "-s", "USR1", "--kill-who=main", "memtrail")

    def snapshot():
        recs = records(_segments(box)[-1])
        return [r for r in recs if r.type == "E" and r.fields[:1] == ["snapshot"]] and \
            [r for r in recs if r.type == "K" and r.obj and r.obj.get("reason") == "signal"]
    wait_for(snapshot, 15, "a snapshot after SIGUSR1", 0.05)

    # Memory of the sampler under the unit (MemoryCurrent needs a memory controller, which the
    # box lacks; the process's own figures are reported instead).
    status = Path(box.host_path(f"/proc/{first_pid}/status")).read_text()
    rss_kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    print(f"\nsampler under the unit: VmRSS {rss_kib} KiB, MemoryCurrent "
          f"{box.show('memtrail', 'MemoryCurrent')}")
    assert rss_kib * 1024 < 128 << 20

    # A stuck sampler (SIGSTOP) is killed by the watchdog and restarted.
    box.systemctl("kill", "-s", "STOP", "--kill-who=main", "memtrail")
    wait_for(lambda: (
        int(box.show("memtrail", "NRestarts") or 0) >= 1
        and box.show("memtrail", "ActiveState") == "active"
        and box.show("memtrail", "MainPID") not in ("0", first_pid)),
        30, "a restart after the watchdog fired", 0.2)
    journal = box.journal("-u", "memtrail", "-o", "cat")
    assert "Watchdog timeout" in journal, journal
    assert "Failed with result 'watchdog'" in journal, journal

    # A clean stop ends the newest segment with a `Z` record.
    box.systemctl("stop", "memtrail")
    assert box.show("memtrail", "ActiveState") == "inactive"
    segs = _segments(box)
    assert len(segs) >= 2, "the restarted sampler must start a new segment"
    last = records(segs[-1])
    assert last[-1].type == "Z" and last[-1].obj["reason"] == "SIGTERM", last[-1]

    # The exposure score of the unit as loaded by this systemd.
    sec = box.run("systemd-analyze", "security", "memtrail.service", check=False)
    score = _exposure(sec.stdout + sec.stderr)
    print(f"systemd-analyze security memtrail.service: {score}")
    assert score <= EXPOSURE_MAX


def _segments_now(box) -> set:
    """The unit's segments by name without `.gz` (a stop compresses the last one), none
    before systemd made its LogsDirectory."""
    try:
        return {os.path.basename(seg).removesuffix(".gz") for seg in _segments(box)}
    except reader.LogError:
        return set()


def _trigger_results(box, old: set) -> list:
    """(result, error, event) of every `E trigger` event in the unit's segments not in
    `old`."""
    return [(r.obj.get("result"), r.obj.get("error"), r.obj) for seg in _segments(box)
            if os.path.basename(seg).removesuffix(".gz") not in old for r in records(seg)
            if r.type == "E" and r.fields[:1] == ["trigger"]]


@pytest.mark.root
def test_signals_to_other_users_need_the_documented_cap_kill_drop_in(box, probe_ready) -> None:
    """docs/triggers.md: the shipped unit cannot signal another user's process (EPERM, recorded
    as `failed`); the two-line drop-in it gives makes the same rule's signal `sent`. The
    target is a real process of another uid (`sleep` as nobody, which ignores WINCH)."""
    if not os.path.exists(box.host_path("/etc/systemd/system/memtrail.service")):
        res = subprocess.run([sys.executable, "-m", "memtrail", "install-unit",
                              "--prefix", box.host_path("/")],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
    box.systemctl("stop", "memtrail", check=False)
    with open(box.host_path("/etc/default/memtrail"), "a") as f:
        f.write("MEMTRAIL_INTERVAL=0.2\nMEMTRAIL_TRIGGER=sleep:rss>1K:WINCH\n")
    box.write("/etc/systemd/system/memtrail.service.d/test.conf",
              "[Service]\nWatchdogSec=0\nRestart=no\n")
    drop_in = "/etc/systemd/system/memtrail.service.d/kill.conf"
    for granted, want in ((False, ("failed", "EPERM")), (True, ("sent", None))):
        if granted:  # exactly the drop-in docs/triggers.md gives
            box.write(drop_in, "[Service]\nCapabilityBoundingSet=CAP_KILL\n"
                               "AmbientCapabilities=CAP_KILL\n")
        box.systemctl("daemon-reload")
        old = _segments_now(box)
        start = box.run("systemctl", "start", "memtrail.service", check=False, timeout=60)
        assert start.returncode == 0, box.journal("-u", "memtrail", "-o", "cat")
        wait_for(lambda old=old: _trigger_results(box, old), 20, "a trigger event", 0.05)
        box.systemctl("stop", "memtrail")
        results = _trigger_results(box, old)
        assert results[0][:2] == want, results
    os.remove(box.host_path(drop_in))
    box.systemctl("daemon-reload")
