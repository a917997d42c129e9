"""The shipped alert rules (docs/prometheus/): `promtool check rules` accepts them and
`promtool test rules` proves each alert fires when it should and stays quiet otherwise; a
control proves the unit tests can fail."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import ROOT

RULES = ROOT / "docs" / "prometheus" / "memtrail-rules.yml"
TESTS = ROOT / "docs" / "prometheus" / "memtrail-rules.test.yml"


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool not installed (apt-get install prometheus; .ci/run does)")
    return tool


def _run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([_promtool(), *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_rules_check():
    res = _run("check", "rules", str(RULES))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "4 rules found" in res.stdout


def test_rules_unit_tests_pass():
    res = _run("test", "rules", TESTS.name, cwd=TESTS.parent)
    assert res.returncode == 0, res.stdout + res.stderr


def test_rules_unit_tests_catch_a_broken_rule(tmp_path):
    """The control: a stale threshold of 1000 s and an OOM rule without its first-kill half
    must fail the same tests."""
    text = RULES.read_text()
    broken = text.replace("> 120", "> 1000").replace(
        "or (memtrail_oom_kills_total unless memtrail_oom_kills_total offset 10m)", "")
    assert broken != text
    (tmp_path / RULES.name).write_text(broken)
    shutil.copy(TESTS, tmp_path / TESTS.name)
    res = _run("test", "rules", TESTS.name, cwd=tmp_path)
    assert res.returncode != 0
    assert "MemtrailRecorderStale" in res.stdout + res.stderr
    assert "MemtrailOOMKill" in res.stdout + res.stderr
