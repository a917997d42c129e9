"""End to end, with the real engines: a live recording, `memtrail export --follow` keeping a
textfile current, Debian's `prometheus-node-exporter` reading that directory and Debian's
`prometheus` scraping it (every port on 127.0.0.1, chosen free now; data in a tmp dir; all
stopped after). A process is OOM-killed in a memory cgroup; a PromQL query through
Prometheus's HTTP API must return the kill with the victim's program, and the shipped
MemtrailOOMKill alert must fire for it. Needs root (cgroups); .ci/run installs both packages."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, log_text, memory_cgroup, wait_for

ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
RULES = ROOT / "docs" / "prometheus" / "memtrail-rules.yml"
HOG = r"""
import sys, time
sys.stdout.write("in\n"); sys.stdout.flush()
sys.stdin.readline()
chunks = []
while True:
    chunks.append(bytearray(8 << 20))
    for i in range(0, 8 << 20, 4096):
        chunks[-1][i] = 1
    time.sleep(0.01)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read().decode())


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False



class Daemons:
    """Processes started by this test, stopped (and reaped) in reverse order."""

    def __init__(self) -> None:
        self.procs = []

    def start(self, args, log: Path, **kw) -> subprocess.Popen:
        fh = open(log, "w")
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, **kw)
        fh.close()
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.mark.root
@pytest.mark.live
@pytest.mark.slow
def test_oom_kill_reaches_prometheus_through_node_exporter(tmp_path, sampler_factory):
    exporter = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    prometheus = shutil.which("prometheus")
    if exporter is None or prometheus is None:
        pytest.skip("needs prometheus-node-exporter and prometheus (Debian packages; "
                    ".ci/run installs them)")
    if os.geteuid() != 0:
        pytest.skip("creating memory cgroups needs root")
    name = f"memtrail-prom-test-{os.getpid()}"
    try:
        made = memory_cgroup(name)
    except OSError as exc:
        pytest.skip(f"cannot create a memory cgroup here: {exc}")
    if made is None:
        pytest.skip("no memory cgroup controller on this host")
    cgdir, _procs, limit_file = made
    logdir, textdir = tmp_path / "log", tmp_path / "textfile"
    textdir.mkdir()
    script = tmp_path / f"memtrail-hog-{os.getpid()}.py"
    script.write_text(HOG)
    node_port, prom_port = _free_port(), _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        "  - job_name: node\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{node_port}']}}]\n")
    api = f"http://127.0.0.1:{prom_port}"
    daemons = Daemons()
    hog = None
    try:
        limit_file.write_text(str(96 << 20))
        memsw = cgdir / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(96 << 20))
        sampler = sampler_factory(logdir, "--interval", "0.2")
        sampler.wait_ticks(2)
        daemons.start([sys.executable, "-m", "memtrail", "export", str(logdir), "--format",
                       "openmetrics", "--follow", "-o", str(textdir / "memtrail.prom"),
                       "--every", "500ms"], tmp_path / "writer.log", env=ENV)
        daemons.start([exporter, f"--web.listen-address=127.0.0.1:{node_port}",
                       "--collector.disable-defaults", "--collector.textfile",
                       f"--collector.textfile.directory={textdir}"],
                      tmp_path / "node-exporter.log")
        daemons.start([prometheus, f"--config.file={config}",
                       f"--storage.tsdb.path={tmp_path / 'data'}",
                       f"--web.listen-address=127.0.0.1:{prom_port}"],
                      tmp_path / "prometheus.log")
        wait_for(lambda: (textdir / "memtrail.prom").exists(), timeout=60,
                 what="the textfile")
        wait_for(lambda: _ready(f"{api}/-/ready"), timeout=60, what="Prometheus ready")

        def query(expr: str) -> list:
            url = f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            return _get(url)["data"]["result"]

        wait_for(lambda: query("memtrail_memory_total_bytes"), timeout=60,
                 what="a scrape with memtrail's figures")
        assert query("node_textfile_scrape_error")[0]["value"][1] == "0"

        hog = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
        assert hog.stdout.readline() == "in\n"
        (cgdir / "cgroup.procs").write_text(str(hog.pid))
        wait_for(lambda: script.name in log_text(logdir), what="the hog in the log")
        hog.stdin.write("go\n")
        hog.stdin.flush()
        assert hog.wait(60) == -signal.SIGKILL
        wait_for(lambda: " oom_kill " in log_text(logdir), timeout=15, what="the OOM event")

        # Another test on this host may OOM-kill its own hog meanwhile, and /dev/kmsg tells
        # every recorder: pick our victim's series by its program.
        kills = wait_for(lambda: [k for k in query("memtrail_oom_kills_total")
                                  if k["metric"].get("program") == script.name], timeout=60,
                         what="memtrail_oom_kills_total for our hog in Prometheus")
        labels = kills[0]["metric"]
        assert labels["unit"].endswith(name), labels
        assert kills[0]["value"][1] == "1"

        def alert():
            alerts = _get(f"{api}/api/v1/alerts")["data"]["alerts"]
            return [a for a in alerts if a["labels"].get("alertname") == "MemtrailOOMKill"
                    and a["state"] == "firing" and a["labels"].get("program") == script.name]

        fired = wait_for(alert, timeout=60, what="the MemtrailOOMKill alert firing")
        assert fired[0]["labels"]["program"] == script.name
        print(f"Prometheus: {labels} = 1; alert {fired[0]['annotations']['summary']}")
        assert sampler.stop() == 0
    finally:
        if hog is not None and hog.poll() is None:
            hog.kill()
            hog.wait()
        daemons.stop()
        for _ in range(50):
            try:
                cgdir.rmdir()
                break
            except OSError:
                time.sleep(0.1)
