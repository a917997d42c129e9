"""`memtrail check`: exit 0 pass, 1 fail, 2 unusable, a one-paragraph verdict, JUnit XML."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import scenarios
from conftest import call_main

from memtrail import check


def _check(capsys, *args) -> tuple:
    return call_main(capsys, check.main, *args)


def test_pass_all_limits(tmp_path, capsys):
    d = scenarios.workers(str(tmp_path))
    rc, out, _ = _check(capsys, d, "--max-used", "6G", "--min-available", "50%", "--no-oom",
                        "--max-program", "nova-api=4G")
    assert rc == 0
    assert out.startswith("PASS:") and out.count("\n") == 1  # one paragraph
    assert "no OOM kill" in out and "nova-api x25 peaked at 3.1 GiB" in out


def test_fail_names_the_oom_victim_and_each_broken_limit(tmp_path, capsys):
    d = scenarios.oom(str(tmp_path))
    junit = tmp_path / "junit.xml"
    rc, out, _ = _check(capsys, d, "--max-used", "6G", "--min-available", "1G", "--no-oom",
                        "--max-program", "service.jar=2G", "--junit", str(junit))
    assert rc == 1
    assert out.startswith("FAIL:") and out.count("\n") == 1
    assert "/usr/bin/python3 /opt/jobs/hog.py --size 20G" in out
    assert "exceeded --max-used 6.0 GiB" in out and "fell below --min-available 1.0 GiB" in out
    assert "Held: service.jar x1 peaked at 1.8 GiB" in out
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "4" and suite.get("failures") == "3"
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == {"max-used", "min-available", "no-oom"}


def test_program_limit_and_unknown_program(tmp_path, capsys):
    d = scenarios.workers(str(tmp_path))
    rc, out, _ = _check(capsys, d, "--max-program", "nova-api=1G", "--max-program",
                        "ghost=1M")
    assert rc == 1
    assert "nova-api x25 peaked at 3.1 GiB" in out and "exceeded its limit 1.0 GiB" in out
    assert "ghost never ran" in out


def test_gap_is_noted_in_the_verdict(tmp_path, capsys):
    rc, out, _ = _check(capsys, scenarios.gap(str(tmp_path)), "--no-oom")
    assert rc == 0 and "not looking for 10m" in out and "torn" in out


@pytest.mark.parametrize("content", [None, b"", b"not a log\n"])
def test_unusable_input_exit_2(tmp_path, capsys, content):
    path = tmp_path / "memtrail-20260101T000000Z-000.log"
    if content is not None:
        path.write_bytes(content)
    rc, out, err = _check(capsys, str(path), "--no-oom")
    assert rc == 2 and "UNUSABLE" in out and str(path) in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["--max-used", "lots"], ["--min-available", "120%"],
                                  ["--max-program", "nova-api"]])
def test_bad_limits_exit_2(tmp_path, args):
    d = scenarios.workers(str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "memtrail", "check", d, *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "memtrail check:" in proc.stderr


def test_percent_limit_uses_memtotal(tmp_path, capsys):
    d = scenarios.oom(str(tmp_path))  # 8 GiB host, lowest available 438 MiB
    rc, out, _ = _check(capsys, d, "--min-available", "5%")
    assert rc == 0 and "5% (410 MiB)" in out
    rc, out, _ = _check(capsys, d, "--min-available", "6%")
    assert rc == 1
