"""Triggers in the sampler: rule parsing, program naming as the analyzer names programs, and
when a rule fires (on a fixture /proc, where nothing is ever really sent)."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from memtrail import programs
from memtrail import sampler as S

# --- rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, program, kind, size_kib, pct, window, signame", [
    ("nova-api:rss>1G:USR2", "nova-api", "rss", 1 << 20, None, 0.0, "SIGUSR2"),
    ("java:rss>80%:QUIT", "java", "rss", None, 80.0, 0.0, "SIGQUIT"),
    ("*:low:USR2", "*", "low", None, None, 0.0, "SIGUSR2"),
    ("gunicorn:grow>300M/10m:USR1", "gunicorn", "grow", 300 << 10, None, 600.0, "SIGUSR1"),
    ("a:b:rss>512k:sigusr2", "a:b", "rss", 512, None, 0.0, "SIGUSR2"),  # ':' in a program
    ("app:RSS>1.5G:RTMIN+2", "app", "rss", int(1.5 * (1 << 20)), None, 0.0, "SIGRTMIN+2"),
])
def test_rules_parse(text, program, kind, size_kib, pct, window, signame):
    rule = S.TriggerRule(text)
    assert (rule.program, rule.kind, rule.size_kib, rule.pct, rule.window_s, rule.signame) == \
        (program, kind, size_kib, pct, window, signame)
    assert rule.safe


@pytest.mark.parametrize("argv, message", [
    (["--trigger", "x:rss>1G"], "expected PROGRAM:CONDITION:SIGNAL"),
    (["--trigger", ":rss>1G:USR2"], "expected PROGRAM:CONDITION:SIGNAL"),
    (["--trigger", "x:pss>1G:USR2"], "unknown condition"),
    (["--trigger", "x:rss>big:USR2"], "not a size"),
    (["--trigger", "x:rss>0:USR2"], "must be more than 0"),
    (["--trigger", "x:rss>120%:USR2"], "not a percentage"),
    (["--trigger", "x:grow>300M:USR2"], "grow needs a window"),
    (["--trigger", "x:rss>1G:USR3"], "unknown signal"),
    (["--trigger", "x:rss>1G:RTMIN+99"], "unknown signal"),
    (["--trigger", "x:rss>1G:TERM"], "refused without --trigger-allow-kill"),
    (["--trigger", "x:rss>1G:KILL"], "refused without --trigger-allow-kill"),
    (["--trigger", "x:rss>1G:INT"], "refused without --trigger-allow-kill"),
    (["--trigger", "x:rss>1G:HUP"], "refused without --trigger-allow-kill"),
    (["--trigger", "x:rss>1G:SEGV"], "refused without --trigger-allow-kill"),
    (["--trigger", "x:rss>1G:STOP"], "refused without --trigger-allow-kill"),
    (["--trigger", "*:low:USR2"], "none is named"),
    (["--trigger-max-per-hour", "0"], "must be more than 0"),
])
def test_bad_rules_are_one_line_and_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        S.parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("memtrail record: ") and message in err and err.count("\n") == 1


def test_a_terminating_signal_needs_the_flag():
    cfg = S.parse_args(["--trigger", "x:rss>1G:TERM", "--trigger-allow-kill"])
    assert [r.signame for r in cfg.trigger] == ["SIGTERM"]


def test_rules_from_the_variable_and_flags_that_replace_them(monkeypatch):
    monkeypatch.setenv("MEMTRAIL_TRIGGER", "nova-api:rss>1G:USR2  \n *:low:USR2")
    assert [r.text for r in S.parse_args([]).trigger] == ["nova-api:rss>1G:USR2", "*:low:USR2"]
    cfg = S.parse_args(["--trigger", "a:rss>1M:USR1", "--trigger=b:low:QUIT"])
    assert [r.text for r in cfg.trigger] == ["a:rss>1M:USR1", "b:low:QUIT"]
    monkeypatch.delenv("MEMTRAIL_TRIGGER")
    assert S.parse_args([]).trigger == []


# --- program names: the sampler's copy agrees with memtrail.programs -------------------------

REAL = [
    (["/usr/bin/python3", "/usr/bin/nova-api", "--config-file", "/etc/nova/nova.conf"], "x"),
    (["nova-api: master process [/usr/bin/nova-api]"], "nova-api"),
    (["/usr/bin/java", "-Xmx4g", "-cp", "/opt/kafka/libs/*", "kafka.Kafka", "server.prop"], "j"),
    (["java", "-jar", "/opt/app/app.jar"], "java"),
    (["java", "-m", "com.example.app/com.example.app.Main"], "java"),
    (["/opt/jdk/bin/java", "-Dx=y", "org.apache.catalina.startup.Bootstrap", "start"], "java"),
    (["/usr/bin/python3", "-m", "gunicorn", "app:app"], "python3"),
    (["gunicorn: master [app:app]"], "gunicorn"),
    (["gunicorn: worker [app:app]"], "gunicorn"),
    (["/usr/bin/python3.11", "-u", "/opt/stack/glance/bin/glance-api"], "glance-api"),
    (["python3.11", "-mpytest", "-q"], "python3.11"),
    (["/usr/bin/python3.12-dbg", "-X", "dev", "x.py"], "python3.12-dbg"),
    (["/usr/bin/pypy3", "-W", "ignore", "script.py"], "pypy3"),
    (["python3", "-c", "import time; time.sleep(9)"], "python3"),
    (["/usr/bin/python3", "/dev/fd/63"], "python3"),
    (["postgres: checkpointer"], "postgres"),
    (["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/15/main"], "postgres"),
    (["nginx: worker process"], "nginx"),
    (["nginx: master process /usr/sbin/nginx -g daemon off;"], "nginx"),
    (["-bash"], "bash"),
    (["/bin/bash", "-c", "make -j8"], "bash"),
    (["bash", "/usr/local/bin/entrypoint.sh"], "bash"),
    (["/bin/sh", "-e", "/etc/init.d/x"], "sh"),
    (["node", "--max-old-space-size", "4096", "server.js"], "node"),
    (["/usr/bin/node", "/usr/lib/node_modules/npm/bin/npm-cli.js", "install"], "npm"),
    (["ruby", "/srv/app/bin/rails", "server"], "ruby"),
    (["puma 5.6.4 (tcp://0.0.0.0:3000) [app]"], "ruby"),
    (["/usr/bin/ruby3.1", "-e", "puts 1"], "ruby3.1"),
    (["/usr/bin/perl", "-w", "/usr/sbin/munin-node"], "munin-node"),
    (["/usr/sbin/sshd", "-D"], "sshd"),
    (["sshd: root@pts/0"], "sshd"),
    (["/usr/lib/systemd/systemd", "--switched-root", "--system"], "systemd"),
    (["/usr/bin/php-fpm8.2"], "php-fpm8.2"),
    (["php-fpm: pool www"], "php-fpm"),
    (["/usr/bin/Rscript", "analysis.R"], "Rscript"),
    (["/usr/bin/gawk", "-f", "x.awk", "data"], "gawk"),
    (["/usr/bin/dockerd", "-H", "fd://"], "dockerd"),
    (["containerd-shim-runc-v2", "-namespace", "moby"], "containerd-shim"),
    (["uwsgi", "--ini", "/etc/uwsgi/app.ini", "", "", ""], "uwsgi"),
    (["", "", ""], "kworker"),
    ([], "zombie"),
    (["/: odd"], "odd"),
    (["a:b"], "a"),
    (["java", "--", "/x/y"], "java"),
    (["python3\n", "x.py"], "python3"),
    (["/usr/bin/python3", "-m"], "python3"),
    (["\u00e9: titled"], "x"),
]


@pytest.mark.parametrize("cmd, comm", REAL)
def test_program_names_agree_with_the_analyzer(cmd, comm):
    assert S.program_name(cmd, comm) == programs.program_name(cmd, comm)


_PIECES = ["python3", "python3.11", "pypy", "java", "node", "bash", "sh", "perl", "ruby2.7-x",
           "php", "-m", "-c", "-jar", "--", "-W", "-cp", "-X", "/usr/bin/", "x.py", ":", ": ",
           " ", "-", "/", ".", "1", "a", "\u00e9", "\u0661", "_", "\n", "\t", "/dev/fd/3",
           "nova-api", "com.example.Main", "--module", "-e", "-E", ""]


@settings(max_examples=600, deadline=None)
@given(hs.lists(hs.lists(hs.sampled_from(_PIECES), max_size=4).map("".join), max_size=5),
       hs.sampled_from(["", "comm", "?"]))
def test_program_names_agree_on_generated_command_lines(cmd, comm):
    assert S.program_name(cmd, comm) == programs.program_name(cmd, comm)


def test_comm_is_read_back_from_an_identity():
    ident = '7 1000 1 0 {"comm":"we\\"ird) x","cmd":["a"]}'
    assert S.ident_comm(ident) == 'we"ird) x'
    assert S.ident_comm("7 1000 1 0 {}") == "?"


# --- the engine, on a fixture /proc (never really sends) ----------------------------------


def make(fakeproc, tmp_path, *rules, extra=()):
    argv = ["--dir", str(tmp_path / "log"), "--proc-root", str(fakeproc.root), "--kmsg", "",
            "--no-mlock", "--no-oom-adj", "--no-cgroups", "--quiet", "--journal", "no",
            "--trigger-max-per-hour", "100", *extra]
    for rule in rules:
        argv += ["--trigger", rule]
    cfg = S.parse_args(argv)
    S.check_log_dir(cfg.dir)
    return S.Sampler(cfg)


class Clock:
    def __init__(self):
        self.t = 1_700_000_000.0

    def tick(self, sampler, seconds=1.0):
        self.t += seconds
        return sampler.tick(self.t, self.t, time.process_time(), False).decode().splitlines()


def triggers(lines):
    return [json.loads(line.split(" ", 3)[3]) for line in lines
            if line.startswith("E ") and line.split(" ", 3)[2] == "trigger"]


class Sent:
    """Stands in for kill(2): records what would have been sent."""

    def __init__(self, sampler, err=0):
        self.calls = []
        self.err = err
        sampler.triggers.dry_run = ""
        sampler.triggers._send = self

    def __call__(self, pid, start, signum):
        self.calls.append((pid, start, signum))
        return self.err, "test"


def test_no_rules_no_engine(fakeproc, tmp_path):
    fakeproc.add(100, ["app"])
    s = make(fakeproc, tmp_path)
    assert s.triggers is None
    lines = Clock().tick(s)
    assert triggers(lines) == [] and "triggers" not in lines[0]


def test_a_fixture_proc_root_is_a_dry_run(fakeproc, tmp_path):
    fakeproc.add(100, ["/usr/bin/python3", "/usr/bin/nova-api"], rss_kib=2 << 20)
    s = make(fakeproc, tmp_path, "nova-api:rss>1G:USR2")
    (event,) = triggers(Clock().tick(s))
    assert event["result"] == "dry_run" and "is not this system's /proc" in event["reason"]
    assert event["errno"] is None


def test_rss_rule_fires_once_per_crossing_and_rearms_below_the_hysteresis(fakeproc, tmp_path):
    fakeproc.add(100, ["/usr/bin/python3", "/usr/bin/nova-api"], rss_kib=500 << 10)
    fakeproc.add(101, ["/usr/bin/python3", "/usr/bin/nova-conductor"], rss_kib=2 << 20)
    s = make(fakeproc, tmp_path, "nova-api:rss>1G:USR2")
    sent = Sent(s)
    clock = Clock()
    assert triggers(clock.tick(s)) == []
    fakeproc.set_rss(100, 1100 << 10)
    (event,) = triggers(clock.tick(s))
    assert sent.calls == [(100, 1000, S._SIGNAL_NUMBERS["USR2"])]
    assert event == {"rule": "nova-api:rss>1G:USR2", "pid": 100, "program": "nova-api",
                     "condition": "rss", "value_kib": 1100 << 10, "line_kib": 1 << 20,
                     "signal": "SIGUSR2", "via": "test", "result": "sent", "errno": 0}
    for rss in (1000 << 10, 1200 << 10, 950 << 10, 1300 << 10):  # within 10% of the line
        fakeproc.set_rss(100, rss)
        assert triggers(clock.tick(s)) == []
    fakeproc.set_rss(100, 900 << 10)  # 12% below: re-armed
    assert triggers(clock.tick(s)) == []
    fakeproc.set_rss(100, 1100 << 10)
    assert len(triggers(clock.tick(s))) == 1 and len(sent.calls) == 2


def test_percent_of_memtotal_and_a_reused_pid_is_a_new_process(fakeproc, tmp_path):
    fakeproc.set_meminfo(total=10 << 20)
    fakeproc.add(100, ["java", "-jar", "/opt/app.jar"], rss_kib=9 << 20)
    s = make(fakeproc, tmp_path, "app.jar:rss>80%:QUIT")
    sent = Sent(s)
    clock = Clock()
    (event,) = triggers(clock.tick(s))
    assert event["line_kib"] == 8 << 20 and event["signal"] == "SIGQUIT"
    fakeproc.remove(100)
    clock.tick(s)
    fakeproc.add(100, ["java", "-jar", "/opt/app.jar"], rss_kib=9 << 20, start=5000)
    (event,) = triggers(clock.tick(s))
    assert [c[1] for c in sent.calls] == [1000, 5000]


def test_growth_within_a_window(fakeproc, tmp_path):
    fakeproc.add(100, ["gunicorn: worker [app]"], rss_kib=100 << 10)
    s = make(fakeproc, tmp_path, "gunicorn:grow>300M/10m:USR1")
    Sent(s)
    clock = Clock()
    clock.tick(s)
    for step in range(1, 8):  # +50M a minute: 300M in 6 minutes, 350M in 7
        fakeproc.set_rss(100, (100 + 50 * step) << 10)
        fired = triggers(clock.tick(s, 60.0))
        if step < 7:
            assert fired == [], step
    (event,) = fired
    assert event["condition"] == "grow" and event["window_s"] == 600.0
    assert event["value_kib"] == 350 << 10 and event["line_kib"] == 300 << 10


def test_slow_growth_never_crosses_a_growth_window(fakeproc, tmp_path):
    fakeproc.add(100, ["gunicorn: worker [app]"], rss_kib=100 << 10)
    s = make(fakeproc, tmp_path, "gunicorn:grow>300M/10m:USR1")
    Sent(s)
    clock = Clock()
    clock.tick(s)
    for step in range(1, 30):  # +20M every 100 s: 1 GiB more in the end, 120M per window
        fakeproc.set_rss(100, (100 + 20 * step) << 10)
        assert triggers(clock.tick(s, 100.0)) == []


def test_low_signals_the_largest_process_of_each_named_program(fakeproc, tmp_path):
    fakeproc.set_meminfo(total=8 << 20, avail=6 << 20)
    fakeproc.add(100, ["/usr/bin/python3", "/usr/bin/nova-api"], rss_kib=300 << 10)
    fakeproc.add(101, ["/usr/bin/python3", "/usr/bin/nova-api"], rss_kib=700 << 10)
    fakeproc.add(102, ["/usr/bin/python3", "/usr/bin/glance-api"], rss_kib=200 << 10)
    fakeproc.add(103, ["/usr/bin/bigthing"], rss_kib=4 << 20)  # named by no rule
    s = make(fakeproc, tmp_path, "*:low:USR2", "nova-api:rss>4G:USR1",
             "glance-api:rss>4G:USR1")
    sent = Sent(s)
    clock = Clock()
    assert triggers(clock.tick(s)) == []
    fakeproc.set_meminfo(total=8 << 20, avail=3 << 20)
    fired = triggers(clock.tick(s))
    assert sorted((e["pid"], e["program"], e["condition"]) for e in fired) == [
        (101, "nova-api", "low"), (102, "glance-api", "low")]
    assert {e["available_kib"] for e in fired} == {3 << 20} and "line_kib" not in fired[0]
    assert {c[0] for c in sent.calls} == {101, 102}
    assert triggers(clock.tick(s)) == []  # the same low: nothing
    fakeproc.set_meminfo(total=8 << 20, avail=2 << 20)
    assert len(triggers(clock.tick(s))) == 2  # each new low


def test_rate_limit_pid_1_and_the_sampler_itself(fakeproc, tmp_path):
    fakeproc.add(1, ["/usr/bin/app"], rss_kib=2 << 20)
    fakeproc.add(os.getpid(), ["/usr/bin/app"], rss_kib=2 << 20)
    for pid in (200, 201, 202):
        fakeproc.add(pid, ["/usr/bin/app"], rss_kib=2 << 20)
    s = make(fakeproc, tmp_path, "app:rss>1G:USR2", extra=["--trigger-max-per-hour", "2"])
    sent = Sent(s)
    fired = {e["pid"]: e for e in triggers(Clock().tick(s))}
    assert fired[1]["result"] == "refused" and fired[1]["reason"] == "pid 1"
    assert fired[os.getpid()]["result"] == "refused"
    results = sorted(fired[p]["result"] for p in (200, 201, 202))
    assert results == ["rate_limited", "sent", "sent"] and len(sent.calls) == 2


def test_a_failed_send_names_its_errno(fakeproc, tmp_path):
    fakeproc.add(200, ["/usr/bin/app"], rss_kib=2 << 20)
    s = make(fakeproc, tmp_path, "app:rss>1G:USR2")
    Sent(s, err=errno.EPERM)
    (event,) = triggers(Clock().tick(s))
    assert (event["result"], event["errno"], event["error"]) == ("failed", errno.EPERM, "EPERM")


def test_a_changed_identity_is_never_signalled(fakeproc, tmp_path):
    """The start time is read again just before sending: another process now holds the pid."""
    fakeproc.add(200, ["/usr/bin/app"], rss_kib=2 << 20, start=7777)
    s = make(fakeproc, tmp_path, "app:rss>1G:USR2")
    engine = s.triggers
    for pidfd in (True, False):
        engine.pidfd = pidfd and engine.pidfd_open is not None
        assert engine._send(200, 1234, S._SIGNAL_NUMBERS["USR2"])[0] == errno.ESRCH


def test_header_lists_the_rules(fakeproc, tmp_path):
    fakeproc.add(100, ["app"])
    s = make(fakeproc, tmp_path, "app:rss>1G:USR2")
    head = json.loads(s.header(1.0, 1.0, "x").split(" ", 4)[4])
    assert head["settings"]["triggers"]["rules"] == ["app:rss>1G:USR2"]
    assert head["settings"]["triggers"]["max_per_hour"] == 100


def test_state_is_dropped_for_processes_that_are_gone(fakeproc, tmp_path):
    for pid in range(100, 140):
        fakeproc.add(pid, ["gunicorn: worker"], rss_kib=2 << 20)
    s = make(fakeproc, tmp_path, "gunicorn:rss>1G:USR1", "gunicorn:grow>1G/1m:USR2",
             extra=["--keyframe", "5"])
    Sent(s)
    clock = Clock()
    clock.tick(s)
    for pid in range(100, 140):
        fakeproc.remove(pid)
    clock.tick(s, 10.0)
    engine = s.triggers
    assert engine.programs == {} and engine.history == {} and engine.fired == {}


def test_a_sent_signal_is_a_journal_entry(fakeproc, tmp_path):
    fakeproc.add(200, ["/usr/bin/app"], rss_kib=2 << 20)
    s = make(fakeproc, tmp_path, "app:rss>1G:USR2")
    Sent(s)
    entries = []
    s.notifier.journal = lambda kind, message, **fields: entries.append((kind, message, fields))
    Clock().tick(s)
    assert entries == [("trigger", "memtrail sent SIGUSR2 to app (pid 200): rule app:rss>1G:USR2",
                        {"trigger_rule": "app:rss>1G:USR2", "trigger_pid": 200,
                         "trigger_signal": "SIGUSR2"})]
