"""bench/fleet_scale.py runs end to end on a tiny archive (the figures in bench/RESULTS.md come
from the same script at 10,000 recordings)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_fleet_scale_smoke(tmp_path):
    pytest.importorskip("duckdb")
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "fleet_scale.py"), "--runs", "20",
                          "--repeat", "1", "--no-results", "--work", str(tmp_path)],
                         capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    assert "| `memtrail fleet --json` (reads the logs) |" in out
    assert "programs_at_peak.sql`, on a table of every row" in out
    assert "Live textfile writer at 2000 processes" in out
