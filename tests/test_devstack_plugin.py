"""The devstack plugin (devstack/settings, devstack/plugin.sh, devstack/lib/memtrail) run by
bash through the phases stack.sh, unstack.sh and clean.sh call it in, against stubs of the
devstack functions it uses (is_service_enabled, enable_service, define_plugin, echo_summary,
$SYSTEMCTL, sudo); memtrail itself runs for real: `install-unit` into a tmp root, and the
reports of a recorded OOM kill into the log directory. Also the Zuul role's script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import scenarios
from conftest import ROOT

STUBS = r"""
set -o errexit
CALLS=$T/calls
function sudo { "$@"; }
function stub_systemctl { echo "systemctl $*" >> "$CALLS"; }
SYSTEMCTL=stub_systemctl
ENABLED_SERVICES=""
function enable_service { ENABLED_SERVICES+=" $*"; echo "enable_service $*" >> "$CALLS"; }
function disable_service { ENABLED_SERVICES=${ENABLED_SERVICES// $1/}; }
function is_service_enabled { [[ " $ENABLED_SERVICES " == *" $1 "* ]]; }
function define_plugin { echo "define_plugin $*" >> "$CALLS"; }
function echo_summary { echo "echo_summary $*" >> "$CALLS"; }
DEST=$T/opt/stack
LOGDIR=$DEST/logs
mkdir -p "$LOGDIR" "$T/root"
"""


@pytest.fixture
def env(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    log = scenarios.oom(str(tmp_path / "var-log-memtrail"))
    return {"T": str(tmp_path), "MEMTRAIL_DIR": str(ROOT),
            "MEMTRAIL_PREFIX": str(tmp_path / "root"), "MEMTRAIL_LOG_DIR": log,
            "MEMTRAIL_JOB": "nova-tempest", "MEMTRAIL_PYTHON": sys.executable,
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}


def devstack(env: dict, *phases: str, before: str = "") -> list:
    """Source settings, then plugin.sh once per "mode phase"; returns the stub calls."""
    script = STUBS + f'source "{ROOT}/devstack/settings"\n' + before
    for phase in phases:
        script += f'source "{ROOT}/devstack/plugin.sh" {phase}\n'
    res = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    calls = Path(env["T"], "calls")
    lines = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return lines


def test_settings_define_and_enable_the_plugin(env):
    assert devstack(env) == ["define_plugin memtrail", "enable_service memtrail"]


def test_stack_phases_install_start_and_report(env):
    root, out = Path(env["MEMTRAIL_PREFIX"]), Path(env["T"], "opt/stack/logs/memtrail")
    calls = devstack(env, "stack pre-install")
    assert calls[2:] == ["echo_summary Installing memtrail and starting to record memory",
                         "systemctl daemon-reload", "systemctl enable --now memtrail.service"]
    assert (root / "etc/systemd/system/memtrail.service").exists()
    assert (root / "usr/local/lib/memtrail/sampler.py").exists()
    assert "MEMTRAIL_INTERVAL=1" in (root / "etc/default/memtrail").read_text()
    # Phases with nothing to do stay quiet; `extra` writes the stack's report.
    assert devstack(env, "stack install", "stack post-config")[2:] == []
    calls = devstack(env, "stack extra", "stack test-config")
    assert calls[2:] == ["echo_summary memtrail: memory report of the stack so far"]
    assert "hog.py" in (out / "stack-report.txt").read_text()


def test_unstack_stops_and_writes_every_report(env):
    out = Path(env["T"], "opt/stack/logs/memtrail")
    calls = devstack(env, "stack pre-install", "unstack")
    assert calls[-1] == "systemctl stop memtrail.service"
    assert "hog.py" in (out / "report.txt").read_text()
    assert (out / "report.md").read_text().startswith("#")
    assert "<html" in (out / "memtrail.html").read_text()[:500].lower()
    objs = [json.loads(line) for line in (out / "memtrail.jsonl").read_text().splitlines()]
    assert {o["label_job"] for o in objs} == {"nova-tempest"}
    assert any(o["type"] == "event" and o.get("kind") == "oom_kill" for o in objs)
    assert sorted(p.name for p in (out / "logs").iterdir()) == \
        sorted(p.name for p in Path(env["MEMTRAIL_LOG_DIR"]).iterdir())
    # clean.sh: the unit and the sampler go, the reports stay.
    devstack(env, "clean")
    root = Path(env["MEMTRAIL_PREFIX"])
    assert not (root / "etc/systemd/system/memtrail.service").exists()
    assert (out / "report.txt").exists()


def test_a_disabled_plugin_does_nothing(env):
    calls = devstack(env, "stack pre-install", "stack extra", "unstack",
                     before="disable_service memtrail\n")
    assert calls == ["define_plugin memtrail", "enable_service memtrail"]
    assert not (Path(env["MEMTRAIL_PREFIX"]) / "etc").exists()


def test_collection_never_fails_the_job(env, tmp_path):
    """A recording that cannot be read: collect still returns 0 and says so."""
    env = dict(env, MEMTRAIL_LOG_DIR=str(tmp_path / "nothing-here"))
    script = STUBS + f'source "{ROOT}/devstack/settings"\ncollect_memtrail\n'
    res = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0 and "could not be written" in res.stderr


def test_zuul_role_script_collects_outside_devstack(env, tmp_path):
    """roles/memtrail-devstack-collect runs devstack/tools/collect.sh with no devstack
    functions loaded: only systemctl (stubbed on PATH here) and sudo (as root, or stubbed)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "systemctl").write_text(f'#!/bin/sh\necho "systemctl $*" >> {tmp_path}/calls\n')
    (bindir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    for f in bindir.iterdir():
        f.chmod(0o755)
    out = tmp_path / "zuul-logs" / "memtrail"
    role_env = dict(env, PATH=f"{bindir}:{env['PATH']}", MEMTRAIL_OUTPUT_DIR=str(out),
                    SYSTEMCTL="systemctl")
    res = subprocess.run(["bash", str(ROOT / "devstack/tools/collect.sh")], env=role_env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "calls").read_text() == "systemctl stop memtrail.service\n"
    assert {p.name for p in out.iterdir()} == {"report.txt", "report.md", "memtrail.html",
                                               "memtrail.jsonl", "logs"}
    tasks = (ROOT / "roles/memtrail-devstack-collect/tasks/main.yaml").read_text()
    assert "devstack/tools/collect.sh" in tasks and "failed_when: false" in tasks
