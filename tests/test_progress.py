"""The progress line: on a terminal only, after a delay, wiped at the end (no timing asserted:
the delay is set to zero or to forever)."""

from __future__ import annotations

import io

import scenarios

from memtrail import model, progress, reader, report


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_one_line_rewritten_then_wiped(tmp_path, monkeypatch):
    d = scenarios.rotated(str(tmp_path))
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    term = Terminal()
    replayed = model.replay_records(reader.read_packed([d]))
    ticks = list(progress.ticks(replayed, [d], "memtrail report", term))
    # every 256th tick is drawn: a short log gives none; draw one by hand through a bar
    assert ticks and term.getvalue() in ("", "\r\x1b[K")
    bar = progress.Progress("memtrail report", term, delay=0.0)
    bar.update(0.5, "2025-11-20 22:00")
    bar.done()
    out = term.getvalue()
    assert out.startswith("\rmemtrail report:  50% 2025-11-20 22:00") and out.endswith("\r\x1b[K")
    assert "\n" not in out


def test_long_replays_draw_by_recording_time(tmp_path, monkeypatch):
    d = scenarios.leak(str(tmp_path))  # 720 ticks
    monkeypatch.setattr(progress, "DELAY_S", 0.0)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    term = Terminal()
    replayed = model.replay_records(reader.read_packed([d]))
    n = sum(1 for _ in progress.ticks(replayed, [d], "x", term))
    assert n == 720
    draws = [s for s in term.getvalue().split("\r") if s.startswith("x:")]
    assert len(draws) == 2  # ticks 256 and 512
    pcts = [int(s.split("%")[0].split(":")[1]) for s in draws]
    assert 0 < pcts[0] < pcts[1] <= 100


def test_pipes_and_short_work_get_nothing(tmp_path, capsys):
    d = scenarios.workers(str(tmp_path))
    rc = report.main([d])
    assert rc == 0 and capsys.readouterr().err == ""
    plain = io.StringIO()
    bar = progress.Progress("memtrail", plain, delay=0.0)
    bar.update(0.3)
    bar.done()
    assert plain.getvalue() == ""
    bar = progress.Progress("memtrail", Terminal(), delay=3600.0)
    bar.update(0.3)
    assert not bar.shown
