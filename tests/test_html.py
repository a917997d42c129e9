"""`memtrail html` without a browser: self-contained, escaped, bounded, one section per run."""

from __future__ import annotations

import base64
import hashlib
import random
import re
import subprocess
import sys
from html.parser import HTMLParser

import scenarios
from conftest import ROOT

from memtrail import html as mhtml
from memtrail.downsample import Buckets
from memtrail.report import analyze
from memtrail.units import fmt_bytes


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)
        else:
            self.text.append(data)

    def all(self, tag: str, **attrs) -> list[dict]:
        return [a for t, a in self.elements if t == tag
                and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def _page(tmp_path, *logs: str, extra=()) -> tuple[str, Elements]:
    out = tmp_path / "r.html"
    assert mhtml.main([*logs, "-o", str(out), *extra]) == 0
    text = out.read_text(encoding="utf-8")
    doc = Elements()
    doc.feed(text)
    return text, doc


def test_self_contained_with_a_csp_that_allows_only_its_script(tmp_path):
    text, doc = _page(tmp_path, scenarios.oom(str(tmp_path / "log")))
    # Nothing from the network: no URLs other than the SVG namespace, no src/href/link.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert not doc.all("link") and not doc.all("img") and not doc.all("iframe")
    assert all("src" not in a and "href" not in a for _, a in doc.elements)
    csp = doc.all("meta", http_equiv="Content-Security-Policy")[0]["content"]
    assert "default-src 'none'" in csp
    assert len(doc.scripts) == 1
    digest = base64.b64encode(hashlib.sha256(doc.scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    assert "@media print" in text


def test_oom_marked_with_victim_and_tables(tmp_path):
    _, doc = _page(tmp_path, scenarios.oom(str(tmp_path / "log")))
    body = "".join(doc.text)
    assert "OOM kill: hog.py (pid 501)" in body
    assert "The kernel's OOM killer killed hog.py (pid 501" in body
    victims = doc.all("tr", **{"class": "victim"})
    assert len(victims) == 1
    assert " ".join(scenarios.OOM_VICTIM_CMD) in body
    assert "memtrail report:" in body  # the report's text sections
    assert doc.all("div", data_card="OOM kills", **{"class": "card bad"})


def test_hostile_text_is_escaped_everywhere(tmp_path):
    hostile = ['</title><script>alert(1)</script>', '"><img src=x onerror=alert(1)>',
               "</textarea></style><svg onload=alert(2)>", "&amp; &lt;"]
    h = scenarios.Host(str(tmp_path / "log"), host="<i>host</i>")
    h.spawn(10, ["/usr/bin/python3", hostile[0]], 300)
    h.spawn(11, [hostile[1], hostile[2], hostile[3]], 200)
    h.add_cgroup(1, '/system.slice/"><b>x</b>.service', 100)
    h.start_segment_tick()
    h.tick(5)
    h.oom_kill_proc(11)
    h.tick(3)
    h.stop()
    text, doc = _page(tmp_path, str(tmp_path / "log"))
    assert not doc.all("img") and not doc.all("i") and not doc.all("b")
    assert len([t for t, _ in doc.elements if t == "script"]) == 1
    assert len([t for t, _ in doc.elements if t == "svg" and "onload" in _]) == 0
    assert all(not any(k.startswith("on") for k in a) for _, a in doc.elements)
    body = "".join(doc.text)
    for item in hostile:
        assert item in body, item
    assert "<i>host</i>" in body


def test_one_section_per_recording(tmp_path):
    a = scenarios.oom(str(tmp_path / "a"))
    b = scenarios.workers(str(tmp_path / "b"))
    _, doc = _page(tmp_path, a, b)
    assert len(doc.all("section", **{"class": "run"})) == 2
    assert doc.all("svg", id="r1-mem") and doc.all("svg", id="r2-mem")
    assert "Recording 2 of 2" in "".join(doc.text)


def test_gap_is_shaded_and_breaks_the_lines(tmp_path):
    _, doc = _page(tmp_path, scenarios.gap(str(tmp_path / "log")))
    assert doc.all("rect", **{"class": "gap"})
    used = doc.all("path", id="r1-mem-used")[0]["d"]
    assert used.count("M") == 2  # one line before the gap, one after


def test_long_log_stays_small_and_keeps_a_short_peak(tmp_path):
    """A week at one sample a minute with a 1-minute spike: bounded buckets, spike drawn."""
    h = scenarios.Host(str(tmp_path / "log"), interval=60.0, mem_total=16 * scenarios.GiB)
    h.spawn(1, ["/usr/bin/postgres"], 2000)
    h.spawn(2, ["/usr/bin/node", "/srv/app.js"], 500)
    h.start_segment_tick()
    ticks = 7 * 24 * 60
    spike_at = 4321
    for i in range(ticks):
        h.set_rss(2, 500 + (i % 60) + (9000 if i == spike_at else 0))
        h.tick(1)
    h.stop()
    text, doc = _page(tmp_path, str(tmp_path / "log"))
    cols = doc.all("rect", **{"class": "col"})
    assert mhtml.TARGET_BUCKETS <= len(cols) <= 2 * mhtml.TARGET_BUCKETS
    assert len(text) < 1_500_000
    # The one-minute spike is the run's peak, labelled, and the top of one used band.
    rep = analyze([str(tmp_path / "log")])
    peak = fmt_bytes(rep["peak"]["used_bytes"])
    assert rep["peak"]["time"].startswith("2025-11-23")  # 4321 minutes after the start
    assert f"peak {peak}" in "".join(doc.text)
    tips = [t for t in doc.text if t.startswith("2025-") and "used" in t]
    assert sum(f"- {peak})" in t for t in tips) == 1


def test_buckets_bounded_and_exact_extremes():
    rng = random.Random(7)
    b = Buckets(2, target=50)
    values = []
    for i in range(100_000):
        v = rng.random()
        if i == 54_321:
            v = 1000.0
        values.append(v)
        b.add(float(i), (v, -v))
        assert len(b) <= 100
    assert 50 <= len(b) <= 100
    assert max(x.maxs[0] for x in b) == 1000.0
    assert min(x.mins[1] for x in b) == -1000.0
    assert sum(x.n for x in b) == 100_000
    assert abs(sum(x.sums[0] for x in b) - sum(values)) < 1e-6
    spike = next(x for x in b if x.maxs[0] == 1000.0)
    assert spike.max_times[0] == 54_321.0 and spike.start <= 54_321 <= spike.end


def test_bad_input_one_line_exit_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "memtrail", "html", str(tmp_path / "nope"),
                          "-o", str(tmp_path / "x.html")], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert not (tmp_path / "x.html").exists()
