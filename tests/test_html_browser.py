"""The HTML report in a real browser: headless Chromium loads it, runs its script, shows it.

What a person would check by opening the page: it loads without console errors (the script ran
under the page's own Content-Security-Policy), the charts carry the expected series, the OOM
kill is marked with its victim, and hostile command lines show as text with no element injected.
Screenshots are kept in test-artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import scenarios
from conftest import ROOT
from test_html import Elements

from memtrail import html as mhtml

ARTIFACTS = ROOT / "test-artifacts"
HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror=alert(1)>'
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--disable-default-apps", "--mute-audio"]


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _find_chromium()
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        # .ci/run installs it; a bare checkout tries once, as the project's own test command.
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                            "chromium"], env=env, capture_output=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired):
            pass
        path = _find_chromium()
    if path is None:
        pytest.skip("chromium not found and could not be installed "
                    "(apt-get install chromium, as root)")
    return path


def _run(chromium: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         *args], capture_output=True, text=True, timeout=120)


def _console_lines(stderr: str) -> list[str]:
    """Console messages and uncaught errors Chromium logged for the page."""
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line or "Uncaught" in line
            or "Content Security Policy" in line or "Refused to" in line]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def hostile_oom(directory: str) -> str:
    """The OOM scenario with hostile command lines next to the hog and a hostile host name."""
    h = scenarios.Host(directory, host='web-1"><b>', mem_total=8 * scenarios.GiB)
    h.spawn(500, ["java", "-Xmx2g", "-jar", "/opt/app/service.jar"], 1800, comm="java")
    h.spawn(501, ["/usr/bin/python3", "/opt/jobs/hog.py", "--tag", HOSTILE_SCRIPT], 100,
            comm="python3")
    h.spawn(502, [HOSTILE_ATTR, "--flag"], 600, comm="evil")
    h.spawn(503, ["/usr/sbin/sshd", "-D"], 8)
    h.set_slab("dentry", 300)
    h.start_segment_tick()
    for step in range(20):
        h.set_rss(501, 100 + step * 250)
        h.tick(1, psi_full_us=50000 if step > 15 else 0)
    h.oom_kill_proc(501)
    h.tick(10)
    h.stop()
    return directory


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, chromium):
    tmp = tmp_path_factory.mktemp("browser")
    log = hostile_oom(str(tmp / "log"))
    page = tmp / "report.html"
    rc = mhtml.main([log, "-o", str(page)])
    assert rc == 0
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "html-oom-hostile.png"
    if shot.exists():
        shot.unlink()
    res = _run(chromium, tmp, "--screenshot=" + str(shot), "--window-size=1280,800",
               page.as_uri())
    assert shot.exists(), f"no screenshot: {res.stderr[-2000:]}"
    dom_res = _run(chromium, tmp, "--dump-dom", "--window-size=1280,800", page.as_uri())
    assert dom_res.returncode == 0, dom_res.stderr[-2000:]
    dom = Elements()  # the DOM Chromium dumped after the script ran
    dom.feed(dom_res.stdout)
    return {"shot": shot, "shot_stderr": res.stderr, "dom": dom, "dom_stderr": dom_res.stderr,
            "html": dom_res.stdout}


def test_console_check_catches_errors(chromium, tmp_path):
    """The console scan below is only worth something if it sees a broken page."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>throw new Error('boom-uncaught')</script>")
    res = _run(chromium, tmp_path, "--dump-dom", bad.as_uri())
    assert any("boom-uncaught" in line for line in _console_lines(res.stderr))


def test_page_loads_without_console_errors_and_script_ran(rendered):
    assert _console_lines(rendered["dom_stderr"]) == []
    assert _console_lines(rendered["shot_stderr"]) == []
    html_el = rendered["dom"].all("html")
    assert html_el and html_el[0].get("data-ready") == "1", "the inline script did not run"
    # The script turned every hover <title> of the columns into the tooltip attribute.
    cols = rendered["dom"].all("rect", **{"class": "col"})
    assert cols and all(c.get("data-tip") for c in cols)
    assert any("used" in c["data-tip"] for c in cols)


def test_screenshot_is_the_size_asked(rendered):
    assert _png_size(rendered["shot"]) == (1280, 800)
    assert rendered["shot"].stat().st_size > 20_000  # not a blank page


def test_charts_have_the_expected_series(rendered):
    dom = rendered["dom"]
    for chart in ("r1-mem", "r1-prog", "r1-psi"):
        assert dom.all("svg", id=chart), chart
    for series in ("used", "available", "cache"):
        assert dom.all("path", data_series=series, id=f"r1-mem-{series}"), series
    layers = {(a.get("data-series"), a.get("data-name"))
              for a in dom.all("path") if "layer" in a.get("class", "")}
    assert ("kernel-slab", "kernel: slab caches") in layers
    assert ("kernel-shmem", "shared memory (tmpfs, shm)") in layers
    assert ("program", "hog.py") in layers and ("program", "service.jar") in layers
    assert ("program", HOSTILE_ATTR) in layers  # a name is data, even this one
    assert ("other", "other processes") in layers
    assert dom.all("path", data_series="psi-full") and dom.all("path", data_series="psi-some")
    # The kill is drawn on every chart and labelled with its victim.
    assert len(dom.all("line", data_oom_pid="501")) == 3
    assert "OOM kill: hog.py (pid 501)" in "".join(dom.text)
    assert dom.all("g", data_mark="peak") and dom.all("g", data_mark="lowest")


def test_hostile_command_lines_show_as_text(rendered):
    dom = rendered["dom"]
    text = "".join(dom.text)
    assert HOSTILE_SCRIPT in text
    assert HOSTILE_ATTR in text
    assert 'web-1"><b>' in text
    assert dom.all("img") == []  # nothing injected
    assert dom.all("b") == []
    scripts = [a for t, a in dom.elements if t == "script"]
    assert len(scripts) == 1  # only the page's own
    assert all(not any(k.startswith("on") for k in a) for _, a in dom.elements)


def test_realistic_oom_screenshot(chromium, tmp_path):
    """The scenario a newcomer would meet: kept as test-artifacts/html-oom.png."""
    log = scenarios.oom(str(tmp_path / "log"))
    page = tmp_path / "oom.html"
    assert mhtml.main([log, "-o", str(page)]) == 0
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "html-oom.png"
    full = ARTIFACTS / "html-oom-full.png"
    shutil.copy(page, ARTIFACTS / "html-oom.html")
    for path, size in ((shot, "1280,800"), (full, "1280,2400")):
        if path.exists():
            path.unlink()
        res = _run(chromium, tmp_path, f"--screenshot={path}", f"--window-size={size}",
                   page.as_uri())
        assert path.exists(), res.stderr[-2000:]
        assert _console_lines(res.stderr) == []
    assert _png_size(shot) == (1280, 800)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
