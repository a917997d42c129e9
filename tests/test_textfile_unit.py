"""systemd/memtrail-textfile.service: lint (any output of `systemd-analyze verify` fails),
its security exposure, and the promises docs/fleet.md makes about it, read from the file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import systemd_harness
from conftest import ROOT, wait_for

UNIT = ROOT / "systemd" / "memtrail-textfile.service"
EXPOSURE_MAX = 1.0


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    return tool


def _keys() -> dict:
    keys: dict = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), []).append(v.strip())
    return keys


def test_verify_prints_nothing(tmp_path: Path) -> None:
    shutil.copy(UNIT, tmp_path / UNIT.name)
    shutil.copy(ROOT / "systemd" / "memtrail.service", tmp_path / "memtrail.service")
    res = subprocess.run([_analyze(), "verify", str(tmp_path / UNIT.name)], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    assert (res.stdout + res.stderr).strip() == "" and res.returncode == 0


def test_security_exposure_offline() -> None:
    res = subprocess.run([_analyze(), "security", "--offline=yes", str(UNIT)],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", res.stdout + res.stderr)
    assert m, res.stdout[-2000:]
    assert float(m.group(1)) <= EXPOSURE_MAX, res.stdout


def test_unit_keeps_its_promises() -> None:
    keys = _keys()
    one = {k: v[-1] for k, v in keys.items()}
    assert one["After"] == "memtrail.service" and one["Wants"] == "memtrail.service"
    assert one["Restart"] == "always"
    assert one["DynamicUser"] == "yes" and one["NoNewPrivileges"] == "yes"
    assert one["CapabilityBoundingSet"] == "CAP_DAC_OVERRIDE"
    assert one["ProtectSystem"] == "strict"
    out = "/var/lib/prometheus/node-exporter"
    assert one["ReadWritePaths"] == "-" + out
    args = one["ExecStart"].split()
    assert args[:4] == ["/usr/bin/python3", "-I", "-S", "/usr/local/lib/memtrail/memtrail-cli.py"]
    assert args[4:] == ["export", "/var/log/memtrail", "--format", "openmetrics", "--follow",
                        "-o", out + "/memtrail.prom", "--every", "15s"]
    assert one["UMask"] == "0022"  # the collector runs as another user and must read it


@pytest.mark.root
@pytest.mark.slow
def test_textfile_unit_under_systemd() -> None:
    """Installed with `install-unit --textfile` into a real systemd (PID 1 of namespaces):
    the writer, as its dynamic user with its one capability, reads the sampler's logs (another
    dynamic user's) and keeps a 0644 file current in a root-owned directory."""
    reason = systemd_harness.unavailable_reason()
    if reason:
        pytest.skip(f"cannot boot systemd in namespaces here: {reason}")
    with systemd_harness.SystemdBox() as box:
        res = subprocess.run([sys.executable, "-m", "memtrail", "install-unit", "--textfile",
                              "--prefix", box.host_path("/")],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        assert res.returncode == 0, res.stderr
        with open(box.host_path("/etc/default/memtrail"), "a") as f:
            f.write("MEMTRAIL_INTERVAL=0.2\n")
        out_dir = "/var/lib/prometheus/node-exporter"
        box.run("mkdir", "-p", out_dir)
        box.run("chmod", "0755", out_dir)
        exec_start = _keys()["ExecStart"][-1].replace("--every 15s", "--every 300ms")
        box.write("/etc/systemd/system/memtrail-textfile.service.d/test.conf",
                  f"[Service]\nExecStart=\nExecStart={exec_start}\n")
        box.systemctl("daemon-reload")
        start = box.run("systemctl", "start", "memtrail-textfile.service", check=False,
                        timeout=60)
        assert start.returncode == 0, start.stderr
        assert box.show("memtrail", "ActiveState") == "active"  # pulled in by Wants=
        prom = Path(box.host_path(out_dir + "/memtrail.prom"))

        def fresh():
            if not prom.exists():
                return None
            text = prom.read_text()
            m = re.search(r"(?m)^memtrail_last_tick_timestamp_seconds (\S+)$", text)
            return float(m.group(1)) if m else None

        try:
            first = wait_for(fresh, 60, "memtrail.prom from the unit", 0.1)
            wait_for(lambda: (fresh() or 0) > first + 0.5, 30, "the file kept current", 0.1)
        except AssertionError:
            print(box.journal("-u", "memtrail-textfile", "-o", "cat"))
            print(box.journal("-u", "memtrail", "-o", "cat")[-3000:])
            print(box.run("ls", "-la", "/var/log/memtrail/", "/var/log/private/", out_dir,
                          check=False).stdout)
            raise
        st = prom.stat()
        assert st.st_mode & 0o777 == 0o644 and st.st_uid != 0
        assert "memtrail_memory_total_bytes " in prom.read_text()
        assert box.show("memtrail-textfile", "ActiveState") == "active"
        sec = box.run("systemd-analyze", "security", "memtrail-textfile.service", check=False)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", sec.stdout + sec.stderr)
        print(f"\nsystemd-analyze security memtrail-textfile.service: {m and m.group(1)}")
        box.systemctl("stop", "memtrail-textfile", "memtrail")
