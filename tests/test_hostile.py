"""Hostile names and hostile files through every command and format (issue 14, analyzer side).

A log is written (tests/scenarios.py) whose host, command lines, process names, cgroup paths,
slab cache and event text carry terminal escapes, markup of every medium, formula prefixes,
bidi overrides, bytes that were not UTF-8 and XML-invalid characters. Every command and format
is run on it as a user would (a subprocess, stdout strict UTF-8 in the C locale), and what each
medium would act on must not survive. Then the files a hostile directory can hold: a FIFO, a
link to /dev/zero, a corrupt gzip, a gzip bomb, an endless line, JSON nested a million deep;
and outputs written past a planted symlink.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import resource
import subprocess
import sys
import xml.dom.minidom
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
import scenarios
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_export import parse_openmetrics

from memtrail import check, export, report, safetext

HOSTILE = [
    "\x1b]0;pwned-title\x07", "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "\x1b[2J\x1b[Hclear", "ok\rFORGED", "abc\x08\x08\x08xyz", "x\nFAIL: forged line",
    "\u202eevil\u202c", "<img src=x onerror=alert(1)>", "[x](http://evil.example)",
    "<!-- hide", '=HYPERLINK("http://evil.example","x")', "+cmd", "@x", "\tTAB", "\rCR",
    "caf\udce9-\udcff", "nul\x00vt\x0bff\x0c\ufffe", "# heading", "\x9b31mcsi",
]
# Names without "/" so each one is a program name as well (programs.py takes the basename).
PROGRAMS = [h for h in HOSTILE if "/" not in h]

# What no terminal-safe output may contain: C0 controls but newline, DEL, C1, bidi and
# invisible formatting, noncharacters, lone surrogates.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
                 "\ufffe\uffff\ud800-\udfff]")
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C", "LANG": "C",
       "NO_COLOR": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
ENV.pop("GITHUB_STEP_SUMMARY", None)


def hostile_log(directory: str, host: str = "host\x1b]0;t\x07<b>\u202e") -> str:
    h = scenarios.Host(directory, host=host)
    h.add_cgroup(5, "/evil\x1b[31m\n/<img src=x>/[l](http://e)", 10)
    for i, name in enumerate(PROGRAMS):
        h.spawn(100 + i, [name, *HOSTILE[i % len(HOSTILE):][:3]], 200 + 40 * i, comm=name[:15],
                cg="/evil\x1b[31m\n/<img src=x>/[l](http://e)")
    h.set_slab("evil\x1b]0;x\x07<img>", 3000)
    h.start_segment_tick()
    h.event("warn", {"text": "\x1b]0;pwned\x07 <img src=x> \u202e", "what": "x\nFORGED"})
    h.tick(5)
    h.set_rss(100, 3000)
    h.tick(3)
    h.oom_kill_proc(100 + len(PROGRAMS) - 1, memcg="/evil\x1b[2J<!--")
    h.tick(3)
    h.stop()
    return directory


def run(*args: str, ok=(0, 1)) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "memtrail", *args], capture_output=True,
                          env=ENV, timeout=120)
    assert proc.returncode in ok, proc.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in proc.stderr, proc.stderr.decode("utf-8", "replace")
    return proc


def text_of(data: bytes) -> str:
    return data.decode("utf-8")  # strict: valid UTF-8 or the test fails


def assert_terminal_safe(text: str, what: str) -> None:
    bad = RAW.search(text)
    assert not bad, f"{what}: raw {bad.group(0)!r} at {text[max(bad.start() - 30, 0):bad.end()]!r}"
    for line in text.splitlines():
        assert not line.startswith(("FAIL: forged", "FORGED")), (what, line)


def _outside_code(md: str) -> str:
    # A code span opens with an unescaped run of backticks and closes with a run of the same
    # length (CommonMark); an escaped backtick (a name of "`", shown as \`) opens nothing.
    return re.sub(r"(?<![\\`])(`+)(?!`)(.*?)(?<!`)\1(?!`)", "", md)


def assert_markdown_safe(md: str, what: str) -> None:
    assert_terminal_safe(md, what)
    plain = _outside_code(md)
    for pattern in (r"(?<!\\)<", r"(?<!\\)\[", r"\]\(", r"(?<!\\)!\[", r"(?<!\\)&"):
        m = re.search(pattern, plain)
        assert not m, f"{what}: {m.group(0)!r} in {plain[max(m.start() - 40, 0):m.end() + 20]!r}"
    for line in md.splitlines():
        assert not re.match(r"#{1,6} (?!memtrail|host:|OOM|Top|Growers|Trigger|Kernel)", line), \
            (what, line)


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    return hostile_log(str(tmp_path_factory.mktemp("hostile") / "log"))


def test_report_text_markdown_json(log):
    assert_terminal_safe(text_of(run("report", "--top", "0", log).stdout), "report")
    assert_markdown_safe(text_of(run("report", "--markdown", log).stdout), "report --markdown")
    raw = text_of(run("report", "--json", log).stdout)
    rep = json.loads(raw)
    assert rep["programs"]
    # strict UTF-8 and no lone surrogate escaped either (Go, Rust and jq choke on \udcXX):
    # a byte that was not UTF-8 reads as the visible text \xNN, as in the exports
    assert not re.search("[\ud800-\udfff]", json.dumps(rep, ensure_ascii=False))
    assert "\\udc" not in raw


def test_top_tail_diff_fleet(log, tmp_path):
    for args in (("top", log, "--at", "+6s", "--limit", "0"),
                 ("top", log, "--at", "-1s", "--by", "program"),
                 ("tail", "-n", "50", log),
                 ("diff", log, log, "--limit", "0"),
                 ("fleet", log)):
        out = run(*args)
        assert_terminal_safe(text_of(out.stdout), " ".join(args[:1]))
        assert_terminal_safe(text_of(out.stderr), " ".join(args[:1]) + " stderr")


def test_check_text_and_junit(log, tmp_path):
    junit = tmp_path / "junit.xml"
    out = run("check", log, "--no-oom", "--max-program", "+cmd=1M", "--junit", str(junit))
    assert_terminal_safe(text_of(out.stdout), "check")
    doc = xml.dom.minidom.parse(str(junit))  # well-formed despite the controls
    assert doc.getElementsByTagName("failure")
    assert_terminal_safe(junit.read_text("utf-8"), "junit")


def test_export_csv_jsonl_openmetrics(log, tmp_path):
    out = tmp_path / "x.csv"
    run("export", log, "--format", "csv", "-o", str(out))
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8"), newline="")))
    assert all(len(r) == len(export.CSV_COLUMNS) for r in rows)  # no row split by CR/LF
    for r in rows[1:]:
        for cell in (r[2], r[5]):  # host, program: the text cells
            assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert any(r[5] == "'+cmd" for r in rows) and any(r[5] == "'@x" for r in rows)
    jl = tmp_path / "x.jsonl"
    run("export", log, "--format", "jsonl", "-o", str(jl))
    for line in jl.read_bytes().decode("utf-8").splitlines():
        json.loads(line)
    om = text_of(run("export", log, "--format", "openmetrics").stdout)
    fams = parse_openmetrics(om)
    labels = [dict(k[1]) for f in fams.values() for k in f["samples"]]
    assert labels and all("\n" not in v and not RAW.search(v) for d in labels for v in d.values())


def test_html(log, tmp_path):
    page_path = tmp_path / "r.html"
    run("html", log, "-o", str(page_path))
    page = page_path.read_text("utf-8")
    assert not RAW.search(page.replace("\n", "")), RAW.search(page.replace("\n", ""))

    class Tags(HTMLParser):
        seen: list = []

        def handle_starttag(self, tag, attrs):
            self.seen.append(tag)
            assert not any(k.startswith("on") for k, _ in attrs), (tag, attrs)

        def handle_comment(self, data):
            raise AssertionError(f"a comment in the page: {data[:40]!r}")

    parser = Tags()
    parser.feed(page)
    assert "img" not in parser.seen and parser.seen.count("script") == 1


def test_run_stderr_and_summary(log, tmp_path):
    summary = tmp_path / "summary.md"
    name = "\x1b]0;pwned\x07<img src=x>[l](http://e)\nFORGED"
    proc = run("run", "--dir", str(tmp_path / "runlog"), "--interval", "0.2", "--summary",
               str(summary), "--", sys.executable, "-c", "import time; time.sleep(0.5)", name,
               ok=(0, 1, 2))
    assert_terminal_safe(text_of(proc.stderr), "run stderr")
    assert_markdown_safe(summary.read_text("utf-8"), "run summary")


# -- fuzz: the outputs, not only the reader -------------------------------------------------------
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12) | \
    st.sampled_from(HOSTILE)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(names, min_size=1, max_size=4), names, names)
def test_fuzz_every_view(tmp_path_factory, argv, host, cgroup):
    directory = str(tmp_path_factory.mktemp("fuzz") / "log")
    h = scenarios.Host(directory, host=host)
    h.spawn(7, [a.replace("/", "_") or "x" for a in argv], 500, comm=argv[0][:15], cg=cgroup)
    h.spawn(8, ["python3", *argv], 300, cg=cgroup)
    h.start_segment_tick()
    h.tick(3)
    h.oom_kill_proc(7, memcg=cgroup)
    h.tick(2)
    h.stop()
    rep = report.analyze([directory])
    assert_terminal_safe(report.render_text(rep), "text")
    assert_markdown_safe(report.render_markdown(rep), "markdown")
    json.dumps(rep).encode("utf-8")
    outcomes = check.evaluate(rep, 1, (None, None), True, [])
    assert_terminal_safe(safetext.terminal(check.verdict(rep, outcomes)), "verdict")
    xml.dom.minidom.parseString(check.junit([(rep, outcomes)]).encode("utf-8"))
    flt = export.Filter(None, None, None)
    for write in (export.write_csv, export.write_openmetrics):
        buf = io.StringIO()
        write([directory], flt, buf, export.ReadStats())
        buf.getvalue().encode("utf-8")
    rows = list(csv.reader(io.StringIO(_csv(directory))))
    assert all(len(r) == len(export.CSV_COLUMNS) for r in rows)


def _csv(directory: str) -> str:
    buf = io.StringIO(newline="")
    export.write_csv([directory], export.Filter(None, None, None), buf, export.ReadStats())
    return buf.getvalue()


# -- hostile files in the log directory -----------------------------------------------------------
def _good(directory: Path) -> Path:
    h = scenarios.Host(str(directory))
    h.spawn(1, ["/usr/bin/app"], 100)
    h.start_segment_tick()
    h.tick(5)
    h.stop()
    return directory


COMMANDS = (("report",), ("top", "--at", "+2s"), ("tail", "-n", "3"), ("html", "-o", "-"),
            ("check", "--no-oom"), ("export", "--format", "csv"), ("fleet",))


def _every_command(directory: Path, ok=(0, 1, 2)) -> dict:
    return {c[0]: run(*c[:1], str(directory), *c[1:], ok=ok) for c in COMMANDS}


def test_fifo_and_dev_zero_with_segment_names_are_skipped(tmp_path):
    d = _good(tmp_path / "log")
    os.mkfifo(d / "memtrail-20991231T000000Z-000.log")
    os.symlink("/dev/zero", d / "memtrail-20991231T000001Z-000.log")
    os.symlink("/dev/zero", d / "memtrail-20991231T000002Z-000.log.gz")
    outs = _every_command(d)  # each would block or eat memory: the timeout says they did not
    said = text_of(outs["report"].stdout)
    assert "a FIFO" in said and "a character device" in said
    assert "the sampler was looking the whole time" not in said



def test_header_values_of_the_wrong_type_and_non_finite_numbers_are_read_as_absent(tmp_path):
    """A header whose host is an object made every view fail on hashing it; a first tick
    dated `nan` made `top` fail on formatting it; NaN and 1e999 in a record's JSON passed
    every later comparison as false. Now each such value is absent: a header value is counted
    as a data problem, a line whose time is not a finite number is a bad line, and the rest
    of the log reads as before."""
    d = _good(tmp_path / "log")
    seg = next(d.glob("memtrail-*.log"))
    lines = seg.read_text().splitlines(keepends=True)
    head, obj = lines[0].split(" {", 1)
    header = json.loads("{" + obj)
    header.update(host={"a": 1}, boot_id=["x"], started=True, pid="12", clk_tck=[])
    header.pop("mono", None)
    header.pop("interval_s", None)
    text = json.dumps(header)[:-1] + ', "mono": NaN, "interval_s": 1e999}'
    lines[0] = f"{head} {text}\n"
    first = next(i for i, line in enumerate(lines) if line.startswith("s "))
    lines.insert(first, "s nan" + lines[first][lines[first].index(" ", 2):])
    lines.insert(first + 2, 'E 1763676001.5 gap {"from": NaN, "to": Infinity, "reason": "x"}\n')
    seg.write_text("".join(lines))
    _every_command(d)
    doc = json.loads(run("report", "--json", str(d)).stdout)
    assert doc["reading"]["data_problems"].get("bad_value") == 7, doc["reading"]
    assert doc["reading"]["bad_lines"] == 1  # the `nan` tick
    assert doc["span"]["ticks"] == 6 and doc["span"]["gaps"] == []
    assert doc["programs"][0]["name"] == "app"



def test_an_oom_event_with_values_of_the_wrong_type_is_told_without_them(tmp_path):
    """The report kept an `oom_kill` event's pid, uid, constraint and cgroup paths as written;
    a pid that was an object made `html` fail on hashing it. Each is now read as absent."""
    d = _good(tmp_path / "log")
    seg = next(d.glob("memtrail-*.log"))
    lines = seg.read_text().splitlines(keepends=True)
    third = [i for i, line in enumerate(lines) if line.startswith("s ")][2]
    when = lines[third].split(" ")[1]
    bad = {"pid": {"a": 1}, "name": ["x"], "uid": [], "constraint": {"x": 1}, "oom_memcg": 5,
           "task_memcg": [], "source": {}, "oom_score_adj": "0", "cmd": "not a list"}
    lines.insert(third + 1, f"E {when} oom_kill {json.dumps(bad)}\n")
    seg.write_text("".join(lines))
    _every_command(d)
    kill = json.loads(run("report", "--json", str(d)).stdout)["oom_kills"][0]
    assert [kill[k] for k in ("pid", "uid", "constraint", "oom_memcg", "task_memcg", "source",
                              "oom_score_adj", "cmdline")] == [None] * 8, kill
    assert kill["name"] is None and kill["program"] == "?"


def _gzip_of(text: bytes) -> bytes:
    return gzip.compress(text)


def test_corrupt_gzip_is_a_counted_skip_not_a_traceback(tmp_path):
    d = _good(tmp_path / "log")
    seg = next(d.glob("memtrail-*.log"))
    data = bytearray(_gzip_of(seg.read_bytes() * 20))
    for i in range(40, len(data) - 20, 7):  # corrupt the deflate data, keep the length
        data[i] ^= 0x5A
    (d / "memtrail-20991231T000000Z-000.log.gz").write_bytes(bytes(data))
    outs = _every_command(d)
    said = text_of(outs["report"].stdout)
    assert "corrupt" in said or "truncated" in said or "skipped" in said
    assert "the sampler was looking the whole time" not in said
    assert "unreadable" in text_of(run("report", "--markdown", str(d)).stdout)


def _gzip_bomb(path: Path, header: bytes, gib: int = 3) -> None:
    """`header` then `gib` GiB of zeros and no newline, as a ~3 MB gzip made in well under a
    second: one full-flushed deflate block of 1 MiB of zeros repeated (the trailer's CRC is
    wrong; nothing may read that far)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(bytes(1 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(bytes(1 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)
    assert again == block or len(again) <= len(block)
    with open(path, "wb") as fh:
        fh.write(head + block)
        for _ in range(gib * 1024 - 1):
            fh.write(again)
        fh.write(comp.flush())


def test_gzip_bomb_is_refused_in_bounded_memory(tmp_path):
    d = _good(tmp_path / "log")
    header = next(d.glob("memtrail-*.log")).read_bytes().split(b"\n", 1)[0] + b"\n"
    bomb = d / "memtrail-20991231T000000Z-000.log.gz"
    _gzip_bomb(bomb, header)
    assert bomb.stat().st_size < 8 << 20

    def limit():  # 1 GiB of address space: reading the bomb into memory would fail
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    for args in (("report", str(d)), ("top", str(d), "--at", "+2s"),
                 ("export", str(d), "--format", "jsonl"), ("tail", "-n", "2", str(d))):
        proc = subprocess.run([sys.executable, "-m", "memtrail", *args], capture_output=True,
                              env=ENV, timeout=300, preexec_fn=limit)
        assert b"Traceback" not in proc.stderr and b"MemoryError" not in proc.stderr, \
            proc.stderr[-2000:]
        assert proc.returncode in (0, 1, 2)
    said = text_of(run("report", str(d)).stdout)
    assert "gzip bomb" in said and "the sampler was looking the whole time" not in said


def test_endless_line_and_deep_json_are_counted_skips(tmp_path):
    d = _good(tmp_path / "log")
    seg = next(d.glob("memtrail-*.log"))
    ticks = json.loads(text_of(run("report", "--json", str(d)).stdout))["span"]["ticks"]
    lines = seg.read_bytes().split(b"\n")
    lines.insert(3, b"E 1763676001.000 warn " + b"x" * (3 << 20))  # 3 MiB, one line
    lines.insert(4, b"E 1763676001.000 warn {\"a\":" + b"[" * 500000 + b"]" * 500000 + b"}")
    seg.write_bytes(b"\n".join(lines))
    rep = json.loads(text_of(run("report", "--json", str(d)).stdout))
    assert rep["reading"]["long_lines"] == 1
    assert rep["reading"]["bad_lines"] >= 1
    assert rep["span"]["ticks"] == ticks  # everything around them was read
    out = text_of(run("tail", "-n", "10", str(d)).stdout)
    assert out.count("used") >= 5


def test_non_utf8_command_line_under_strict_c_locale(tmp_path):
    d = tmp_path / "log"
    h = scenarios.Host(str(d))
    h.spawn(1, ["/usr/bin/caf\udce9", "--name=\udcff\udcfe"], 100)
    h.start_segment_tick()
    h.tick(3)
    h.oom_kill_proc(1)
    h.tick(1)
    h.stop()
    for fmt in ("csv", "jsonl", "openmetrics"):
        out = tmp_path / f"x.{fmt}"
        run("export", str(d), "--format", fmt, "-o", str(out))
        text = out.read_bytes().decode("utf-8")  # strict
        if fmt == "jsonl":
            text = json.dumps([json.loads(line) for line in text.splitlines()])
        assert "caf\\xe9" in text.replace("\\\\", "\\")
    for args in (("report",), ("top", "--at", "+1s"), ("tail",), ("check", "--no-oom"),
                 ("fleet",), ("report", "--markdown"), ("report", "--json")):
        run(*args[:1], str(d), *args[1:])


# -- outputs: a temporary file of our own, never a planted name -----------------------------------
@pytest.mark.parametrize("how", ["html", "export", "junit", "summary"])
def test_outputs_do_not_follow_a_planted_symlink(tmp_path, how):
    d = _good(tmp_path / "log")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "out" / "result"
    target.parent.mkdir()
    os.symlink(victim, str(target) + ".tmp")  # the old fixed temporary name
    if how == "html":
        run("html", str(d), "-o", str(target))
    elif how == "export":
        run("export", str(d), "--format", "csv", "-o", str(target))
    elif how == "junit":
        run("check", str(d), "--no-oom", "--junit", str(target))
    else:
        run("run", "--dir", str(tmp_path / "runlog"), "--interval", "0.2", "--summary",
            str(target), "--", sys.executable, "-c", "pass", ok=(0, 1, 2))
    assert victim.read_text() == "precious\n"
    assert target.is_file() and not target.is_symlink() and target.stat().st_size > 0
    # A symlink at the name itself is replaced, its target left alone.
    target.unlink()
    os.symlink(victim, target)
    run("check", str(d), "--no-oom", "--junit", str(target))
    assert victim.read_text() == "precious\n" and not target.is_symlink()
    leftovers = [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")
                 and not p.is_symlink()]
    assert leftovers == []


def test_output_to_a_device_is_refused(tmp_path):
    d = _good(tmp_path / "log")
    proc = run("html", str(d), "-o", "/dev/null", ok=(2,))
    assert b"not a regular file" in proc.stderr


def test_an_output_that_is_not_utf8_gets_escapes_not_a_traceback(log):
    """A terminal or pipe in ASCII or latin-1 (PYTHONIOENCODING, an old locale): the hostile
    log's non-ASCII names come out as escapes; nothing stops halfway through a report."""
    for encoding in ("ascii", "latin-1"):
        env = {**ENV, "PYTHONIOENCODING": encoding}
        for args in (("report", log), ("report", "--json", log), ("top", log, "--at", "+6s"),
                     ("tail", "-n", "20", log), ("report", "--markdown", log)):
            proc = subprocess.run([sys.executable, "-m", "memtrail", *args], capture_output=True,
                                  env=env, timeout=120)
            assert proc.returncode in (0, 1), proc.stderr.decode("utf-8", "replace")
            assert b"Traceback" not in proc.stderr, proc.stderr.decode("utf-8", "replace")
            proc.stdout.decode(encoding)  # it is what the stream says it is
            if args[1] == "--json":
                assert json.loads(proc.stdout.decode("ascii"))["programs"]
