"""`memtrail install-unit` into a temporary root: what lands where, and that it all comes out.

Run as the installed command (`python -m memtrail install-unit`), so argument errors and exit
codes are checked the way an operator meets them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLER

UNIT = ROOT / "systemd" / "memtrail.service"
ENV = ROOT / "systemd" / "memtrail.env"
DEST_SAMPLER = "usr/local/lib/memtrail/sampler.py"
DEST_UNIT = "etc/systemd/system/memtrail.service"
DEST_ENV = "etc/default/memtrail"


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memtrail", "install-unit", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_install_puts_three_files_in_place(tmp_path: Path) -> None:
    res = run("--prefix", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / DEST_SAMPLER).read_bytes() == SAMPLER.read_bytes()
    assert (tmp_path / DEST_UNIT).read_bytes() == UNIT.read_bytes()
    assert (tmp_path / DEST_ENV).read_bytes() == ENV.read_bytes()
    for rel in (DEST_SAMPLER, DEST_UNIT, DEST_ENV):
        assert (tmp_path / rel).stat().st_mode & 0o777 == 0o644, rel
    assert "systemctl daemon-reload" in res.stdout
    assert "systemctl enable --now memtrail.service" in res.stdout
    assert list((tmp_path / "etc/systemd/system").glob(".memtrail-*")) == []  # no temp files


def test_installed_sampler_runs_on_its_own(tmp_path: Path) -> None:
    """The copied file needs nothing from the package: it starts from anywhere."""
    assert run("--prefix", str(tmp_path)).returncode == 0
    res = subprocess.run([sys.executable, "-I", "-S", str(tmp_path / DEST_SAMPLER), "--version"],
                         capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "memtrail" in res.stdout


def test_reinstall_keeps_an_edited_env_file(tmp_path: Path) -> None:
    assert run("--prefix", str(tmp_path)).returncode == 0
    env = tmp_path / DEST_ENV
    env.write_text(env.read_text() + "MEMTRAIL_INTERVAL=0.5\n")
    (tmp_path / DEST_UNIT).write_text("stale\n")
    res = run("--prefix", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "MEMTRAIL_INTERVAL=0.5" in env.read_text()
    assert "kept" in res.stdout and str(env) in res.stdout
    assert (tmp_path / DEST_UNIT).read_bytes() == UNIT.read_bytes()  # the unit is updated
    again = run("--prefix", str(tmp_path))
    assert "unchanged" in again.stdout
    assert not [ln for ln in again.stdout.splitlines() if ln.startswith("install ")]


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    res = run("--prefix", str(tmp_path), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "would install" in res.stdout
    assert list(tmp_path.iterdir()) == []


def test_uninstall_reverses_install_but_keeps_logs_and_edits(tmp_path: Path) -> None:
    assert run("--prefix", str(tmp_path)).returncode == 0
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "memtrail.service").symlink_to("/etc/systemd/system/memtrail.service")
    logs = tmp_path / "var/log/memtrail"
    logs.mkdir(parents=True)
    (logs / "memtrail-20261120T221652Z-000.log").write_text("H 1.000 memtrail 1 {}\n")

    dry = run("--prefix", str(tmp_path), "--uninstall", "--dry-run")
    assert dry.returncode == 0 and "would remove" in dry.stdout
    assert (tmp_path / DEST_UNIT).exists()

    res = run("--prefix", str(tmp_path), "--uninstall")
    assert res.returncode == 0, res.stderr
    for rel in (DEST_SAMPLER, DEST_UNIT, DEST_ENV):
        assert not (tmp_path / rel).exists(), rel
    assert not os.path.lexists(wants / "memtrail.service")
    assert not (tmp_path / "usr/local/lib/memtrail").exists()
    assert (logs / "memtrail-20261120T221652Z-000.log").exists()
    assert "systemctl stop memtrail.service" in res.stdout

    # An edited settings file is the operator's: it stays.
    assert run("--prefix", str(tmp_path)).returncode == 0
    (tmp_path / DEST_ENV).write_text("MEMTRAIL_INTERVAL=2\n")
    res = run("--prefix", str(tmp_path), "--uninstall")
    assert res.returncode == 0
    assert (tmp_path / DEST_ENV).read_text() == "MEMTRAIL_INTERVAL=2\n"
    assert "kept" in res.stdout


def test_other_python(tmp_path: Path) -> None:
    res = run("--prefix", str(tmp_path), "--python", "/opt/python3.12/bin/python3")
    assert res.returncode == 0, res.stderr
    unit = (tmp_path / DEST_UNIT).read_text()
    assert ("ExecStart=/opt/python3.12/bin/python3 -I -S "
            "/usr/local/lib/memtrail/memtrail-sampler.py") in unit
    assert "warning:" in res.stdout  # that interpreter is not in the prefix


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in (["--prefix", str(tmp_path / "nope")], ["--python", "python3"],
                 ["--no-such-flag"]):
        res = run(*args)
        assert res.returncode == 2, (args, res)
        assert "Traceback" not in res.stderr
        assert res.stderr.strip(), args


def test_unwritable_prefix_fails_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "root"
    target.mkdir()
    (target / "usr").write_text("a file where a directory must go\n")
    res = run("--prefix", str(target))
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "memtrail install-unit:" in res.stderr


def test_installed_sampler_starts_from_bytecode(tmp_path):
    """The unit's launcher imports the sampler from the .pyc compiled at install time (and
    re-executes it as the script does: tests/test_systemd_unit.py)."""
    res = run("--prefix", str(tmp_path), "--python", sys.executable, timeout=120)
    assert res.returncode == 0, res.stderr
    lib = tmp_path / "usr/local/lib/memtrail"
    assert list((lib / "__pycache__").glob("sampler.*.pyc"))
    launched = subprocess.run([sys.executable, "-I", "-S", str(lib / "memtrail-sampler.py"),
                               "--version"], capture_output=True, text=True, timeout=30)
    assert launched.returncode == 0 and launched.stdout.startswith("memtrail sampler ")
    res = run("--prefix", str(tmp_path), "--uninstall")
    assert res.returncode == 0 and not lib.exists()


def test_the_wheel_carries_the_unit_files(tmp_path):
    """After a plain `pip install .`, install-unit finds them inside the package."""
    import zipfile

    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                          str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    if res.returncode != 0 and ("Could not" in res.stderr or "connection" in res.stderr.lower()):
        pytest.skip(f"cannot fetch the build backend: {res.stderr.strip().splitlines()[-1]}")
    assert res.returncode == 0, res.stderr
    wheel = next(tmp_path.glob("memtrail-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("memtrail.service", "memtrail.env", "memtrail-sampler.py"):
        assert f"memtrail/systemd/{name}" in names
    assert "memtrail/sampler.py" in names


def test_textfile_unit_on_request(tmp_path: Path) -> None:
    """--textfile adds the live textfile writer's unit and the analyzer it runs, and the
    installed copy runs on its own (no package on sys.path, `-I -S` as the unit starts it);
    uninstall takes it all out."""
    (tmp_path / "plain").mkdir()
    assert run("--prefix", str(tmp_path / "plain")).returncode == 0
    assert not (tmp_path / "plain/etc/systemd/system/memtrail-textfile.service").exists()
    res = run("--prefix", str(tmp_path), "--textfile")
    assert res.returncode == 0, res.stderr
    unit = tmp_path / "etc/systemd/system/memtrail-textfile.service"
    assert unit.read_bytes() == (ROOT / "systemd" / "memtrail-textfile.service").read_bytes()
    assert "systemctl enable --now memtrail.service memtrail-textfile.service" in res.stdout
    lib = tmp_path / "usr/local/lib/memtrail"
    assert (lib / "memtrail" / "textfile.py").exists() and (lib / "memtrail-cli.py").exists()
    out = subprocess.run([sys.executable, "-I", "-S", str(lib / "memtrail-cli.py"), "export",
                          str(ROOT / "tests/fixtures/golden/v1"), "--format", "openmetrics"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={"PATH": os.environ.get("PATH", "")})
    assert out.returncode == 0, out.stderr
    assert "memtrail_oom_kills" in out.stdout
    res = run("--prefix", str(tmp_path), "--uninstall")
    assert res.returncode == 0, res.stderr
    assert "systemctl stop memtrail-textfile.service" in res.stdout
    assert not unit.exists() and not lib.exists()
