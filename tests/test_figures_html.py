"""The HTML page follows the report's figures, and its labels and colours do not collide."""

from __future__ import annotations

import re

from scenarios import GiB, Host

from memtrail import html as mhtml


def _oom_log(directory) -> str:
    h = Host(str(directory), mem_total=8 * GiB, base_used=1 * GiB)
    h.spawn(500, ["java", "-jar", "/opt/service.jar"], 3000)
    h.spawn(501, ["/usr/bin/python3", "/srv/hog.py"], 100)
    h.spawn(502, ["postgres: writer"], 900)
    h.start_segment_tick()
    for step in range(1, 40):
        h.set_rss(501, 100 + step * 60)  # climbs to 2.4 GiB: used nears MemTotal
        if step == 30:
            h.event("low", {"available_kib": 900 * 1024, "pct": 11.0})
        h.tick(1)
    h.oom_kill_proc(501)
    h.tick(10)
    h.stop()
    return str(directory)


def _page(tmp_path) -> str:
    log = _oom_log(tmp_path / "log")
    out = tmp_path / "page.html"
    assert mhtml.main([log, "-o", str(out)]) == 0
    return out.read_text()


def test_verdict_never_names_a_process_twice(tmp_path):
    page = _page(tmp_path)
    verdict = re.search(r'<p class="verdict">(.*?)</p>', page, re.S).group(1)
    assert "the largest process on the host then was service.jar (pid 500" in verdict
    assert "Next largest: postgres (pid 502" in verdict
    assert verdict.count("pid 500") == 1  # named once as a process (the peak names programs)


def test_peak_label_keeps_clear_of_oom_labels(tmp_path):
    page = _page(tmp_path)
    mem = re.search(r'<svg[^>]*id="r1-mem".*?</svg>', page, re.S).group(0)
    peak = re.search(r'data-mark="peak".*?<text x="([\d.]+)" y="([\d.]+)" '
                     r'text-anchor="(\w+)">([^<]*)</text>', mem, re.S)
    assert peak, "no peak label"
    box = mhtml._text_box(float(peak.group(1)), float(peak.group(2)), peak.group(4),
                          peak.group(3))
    labels = re.findall(r'class="oomlabel"[^>]*><rect x="([\d.]+)" y="([\d.]+)" '
                        r'width="([\d.]+)" height="([\d.]+)"', mem)
    assert labels, "no OOM label"
    for x, y, w, h in labels:
        x, y, w, h = map(float, (x, y, w, h))
        assert not mhtml._overlaps(box, (x, y, x + w, y + h)), (box, (x, y, w, h))


def test_low_markers_are_in_the_legend_and_oranges_are_distinct(tmp_path):
    page = _page(tmp_path)
    assert 'class="lowmark"' in page
    assert 'data-key="low"' in page and "new low of available memory" in page
    colours = [c.upper() for c in mhtml.PROGRAM_COLOURS]
    assert not ({"#E69F00", "#D55E00"} <= set(colours))
    psi = re.search(r'<svg[^>]*id="r1-psi".*?</svg>', page, re.S).group(0)
    assert mhtml.OI["orange"] not in psi
