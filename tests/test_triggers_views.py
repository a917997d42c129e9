"""Trigger events in every view: report (text, markdown, JSON), HTML, tail, exports."""

from __future__ import annotations

import json
import time

import pytest
from conftest import call_main
from test_triggers import Sent

from memtrail import cli, events
from memtrail import sampler as S
from memtrail.triggers import describe, trigger

HOSTILE = "evil\x1b[2J=cmd|x.py"  # a program name that tries to act on a terminal, a sheet


@pytest.fixture
def log(fakeproc, tmp_path):
    """A recording in which rules fired: sent, rate-limited, and for a hostile name."""
    fakeproc.add(100, ["/usr/bin/python3", "/usr/bin/nova-api"], rss_kib=500 << 10)
    fakeproc.add(101, ["/usr/bin/python3", "/usr/bin/" + HOSTILE], rss_kib=500 << 10)
    argv = ["--dir", str(tmp_path / "log"), "--proc-root", str(fakeproc.root), "--kmsg", "",
            "--no-mlock", "--no-oom-adj", "--no-cgroups", "--quiet", "--journal", "no",
            "--trigger-max-per-hour", "2", "--trigger", "nova-api:rss>1G:USR2",
            "--trigger", f"{HOSTILE}:rss>1G:QUIT"]
    cfg = S.parse_args(argv)
    S.check_log_dir(cfg.dir)
    s = S.Sampler(cfg)
    Sent(s)
    t = 1_763_676_000.0
    path = tmp_path / "log" / "memtrail-20251120T220000Z-000.log"
    out = [s.header(t, t, path.name).encode()]
    for step, rss in enumerate([500, 1100, 1150, 800, 1200, 1300]):
        fakeproc.set_rss(100, rss << 10)
        fakeproc.set_rss(101, rss << 10)
        out.append(s.tick(t + step, t + step, time.process_time(), step == 0))
    out.append(f'Z {t + 6:.3f} {{"reason":"SIGTERM","ticks":6}}\n'.encode())
    path.write_bytes(b"".join(out))
    return tmp_path / "log"


def quiet(text: str) -> list:
    """The lines that speak of the hostile program's trigger: none may carry an escape."""
    lines = [line for line in text.splitlines() if "SIGQUIT" in line]
    assert lines and all("\x1b" not in line and "x1b" in line for line in lines), lines
    return lines


def test_the_log_holds_what_the_views_read(log):
    text = (next(log.iterdir())).read_text()
    results = [json.loads(line.split(" ", 3)[3])["result"] for line in text.splitlines()
               if line.startswith("E ") and " trigger " in line]
    assert results == ["sent", "sent", "rate_limited", "rate_limited"]


def test_report_text_markdown_json(log, capsys):
    rc, out, _ = call_main(capsys, cli.main, "report", str(log))
    assert rc == 0
    assert "Triggers: 4 (2 signal(s) sent)" in out
    assert "sent SIGUSR2 to nova-api (pid 100): RSS 1.1 GiB over 1.0 GiB" in out
    assert "did not send SIGUSR2 to nova-api (pid 100), rate limit reached" in out
    quiet(out)
    rc, out, _ = call_main(capsys, cli.main, "report", "--markdown", str(log))
    assert "#### Triggers (4)" in out
    quiet(out)
    rc, out, _ = call_main(capsys, cli.main, "report", "--json", str(log))
    rep = json.loads(out)
    assert rep["triggers_total"] == 4
    first = rep["triggers"][0]
    assert {k: first[k] for k in ("pid", "program", "signal", "result", "condition", "rule",
                                  "value_bytes", "line_bytes", "errno")} == {
        "pid": 100, "program": "nova-api", "signal": "SIGUSR2", "result": "sent",
        "condition": "rss", "rule": "nova-api:rss>1G:USR2", "value_bytes": 1100 << 20,
        "line_bytes": 1 << 30, "errno": 0}
    assert first["time"].endswith("Z") and isinstance(first["time_unix"], float)


def test_html_marks_them_on_the_charts(log, tmp_path, capsys):
    page = tmp_path / "r.html"
    rc, _, _ = call_main(capsys, cli.main, "html", str(log), "-o", str(page))
    assert rc == 0
    html = page.read_text()
    assert html.count('data-mark="trigger"') == 2 * 4  # memory and programs charts
    assert "Triggers (4)" in html and "sent SIGUSR2 to nova-api (pid 100)" in html
    spots = [html[i:i + 40] for i in range(len(html)) if html.startswith("SIGQUIT to ", i)]
    assert len(spots) == 2 * 4  # two triggers: two charts, the table, the full report text
    assert all("\x1b" not in s and "evil\\x1b" in s for s in spots), spots


def test_exports_carry_them(log, capsys):
    rc, out, _ = call_main(capsys, cli.main, "export", str(log), "--format", "csv")
    rows = [r.split(",") for r in out.splitlines() if ",trigger_" in r]
    assert [(r[3], r[4]) for r in rows] == [("trigger_sent", "100"), ("trigger_sent", "101"),
                                           ("trigger_rate_limited", "100"),
                                           ("trigger_rate_limited", "101")]
    assert all("\x1b" not in r[5] for r in rows) and rows[1][5].startswith("evil\\x1b")
    rc, out, _ = call_main(capsys, cli.main, "export", str(log), "--format", "jsonl")
    objs = [json.loads(line) for line in out.splitlines()]
    trig = [o for o in objs if o["type"] == "event" and o["kind"] == "trigger"]
    assert [(o["pid"], o["trigger_signal"], o["trigger_result"]) for o in trig][:2] == [
        (100, "SIGUSR2", "sent"), (101, "SIGQUIT", "sent")]
    assert trig[0]["trigger_value_bytes"] == 1100 << 20
    rc, out, _ = call_main(capsys, cli.main, "export", str(log), "--format", "openmetrics")
    assert 'memtrail_triggers{host="' in out
    assert 'program="nova-api",signal="SIGUSR2",result="sent"} 1' in out
    assert 'result="rate_limited"} 1' in out
    quiet(out)


def test_tail_says_a_sentence(log, capsys):
    rc, out, _ = call_main(capsys, cli.main, "tail", "-n", "100", str(log))
    assert rc == 0
    assert "sent SIGUSR2 to nova-api (pid 100): RSS 1.1 GiB over 1.0 GiB" in out
    quiet(out)


def test_sentences_for_every_outcome_and_a_malformed_event():
    base = {"rule": "a:grow>300M/10m:USR1", "pid": 7, "program": "a", "condition": "grow",
            "value_kib": 350 << 10, "line_kib": 300 << 10, "window_s": 600.0,
            "signal": "SIGUSR1"}
    said = {r: events.sentence("trigger", dict(base, result=r, errno=e, error=n))
            for r, e, n in (("sent", 0, None), ("failed", 1, "EPERM"), ("gone", 3, "ESRCH"),
                            ("dry_run", None, None))}
    assert said["sent"] == ("sent SIGUSR1 to a (pid 7): grew 350 MiB within 10m 00s, over "
                            "300 MiB [rule a:grow>300M/10m:USR1]")
    assert "failed (EPERM)" in said["failed"] and "pid was reused" in said["gone"]
    assert said["dry_run"].startswith("did not send SIGUSR1 to a (pid 7), dry run")
    assert events.severity("trigger") == events.WARN
    low = trigger(1.0, {"condition": "low", "value_kib": 1024, "pid": 3, "program": "p",
                        "signal": "SIGUSR2", "result": "sent", "rule": "*:low:USR2"})
    assert "at a new low of available memory" in describe(low, str)
    odd = events.sentence("trigger", {"pid": "x", "value_kib": [1], "window_s": True})
    assert odd.startswith("did not send ? to ? (pid ?)")


def test_view_marks_them_as_sentences(log):
    from memtrail import timeline

    tl, _player, _feed = timeline.open_recording(str(log))
    marks = [m for m in tl.marks if m.kind == "trigger"]
    assert len(marks) == 4
    assert marks[0].text.startswith("sent SIGUSR2 to nova-api (pid 100)")
    assert all("\x1b" not in m.text for m in marks)


def test_the_live_textfile_counts_them(log):
    """`export --follow` (the node_exporter textfile): a counter per program, signal and result
    since the recording began, the hostile name a safe label value."""
    from memtrail import textfile
    from memtrail.model import replay

    state = textfile.LiveState()
    for tick in replay(str(log)):
        state.add(tick)
    text = state.render(time.time())
    assert "# TYPE memtrail_triggers_total counter" in text
    assert 'memtrail_triggers_total{program="nova-api",signal="SIGUSR2",result="sent"} 1' \
        in text
    assert 'memtrail_triggers_total{program="nova-api",signal="SIGUSR2",result="rate_limited"}' \
        ' 1' in text
    quiet(text)
