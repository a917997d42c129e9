"""Every view over the golden recording mutated the ways a corrupt or hostile log can be.

test_reader.py fuzzes the bytes (cuts, bit flips, random data): most such lines do not parse
and are counted. This fuzzes the meaning: lines that parse, with a number that is `nan`,
`-1` or 10**30, a JSON value of another type (a `host` that is an object, a `pid` that is a
list), a field missing or added, a line deleted, repeated, swapped or moved into another
segment. Each view (report in three forms, top, check, html, every export, tail, fleet, diff
and the console's frames and keys) must answer with its output or a one-line error, never a
traceback. A mutation fuzzer of this kind found the bugs fixed in 22f9303 and after.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import random
import shutil

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrail import cli, reader, timeline, view
from memtrail.reader import LogError

GOLDEN = ROOT / "tests" / "fixtures" / "golden" / "v1"
ODD_NUMBERS = ["-1", "0", "-0", "1e309", "nan", "inf", "-inf", "NaN", "3.5", "-3.5", "",
               "99999999999999999999999999", "18446744073709551616", "-", "0x10", "+5",
               "1_000", "1e-400"]
ODD_JSON = [[], {}, None, "x", 1e308, -5, True, 0, "\x1b[2J", [1, 2], {"a": {}}, 2 ** 70,
            -2 ** 70, 1.5, "NaN-literal", 10 ** 400]
OPS = ("number", "json", "header", "drop", "insert", "delete", "repeat", "swap", "move")
COMMANDS = (("report",), ("report", "--json"), ("report", "--markdown"), ("report", "--ungroup"),
            ("top", "--at", "+1s"), ("top", "--at", "+9s"),
            ("check", "--no-oom", "--max-used", "1G", "--max-program", "python3=1M"),
            ("html", "-o", "{out}"), ("export", "--format", "csv"),
            ("export", "--format", "jsonl"), ("export", "--format", "openmetrics"),
            ("tail", "-n", "5"), ("fleet",), ("diff",))
KEYS = ("G", "g", "o", "O", "n", "N", "]", "[", "right", "left", "h", "?", "e", "q")


def _golden():
    out = []
    for path in sorted(GOLDEN.iterdir()):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        out.append((path.name.replace(".gz", ""), data.decode("ascii").splitlines(True)))
    return out


LATE = {"percpu": "2048", "vmalloc_used": "26000", "zswap": "-", "zsmalloc": "8192"}
MEMCG = {"memcg_usage_kib": 204800, "memcg_limit_kib": 204800, "memcg_kmem_kib": 300,
         "memcg_stat": {"total_rss": 150000, "total_cache": 54000, "total_shmem": 50000}}


def _with_later_additions(segments):
    """The golden recording as a sampler of 2026-12-02 on would have written it: the `s`
    lines' late fields, `m` lines after `c` lines, the cgroup's stats on an OOM kill. So the
    mutations reach what format 1 gained since, not only what it began with."""
    out = []
    for name, lines in segments:
        new = []
        for line in lines:
            if line.startswith("H "):
                brace = line.index("{")
                head = json.loads(line[brace:])
                fields = head.setdefault("fields", {})
                if "s" in fields:
                    fields["s"] = list(fields["s"]) + list(LATE)
                fields["m"] = ["cgid", "anon", "file", "shmem", "kernel", "sock"]
                line = line[:brace] + json.dumps(head, separators=(",", ":")) + "\n"
            elif line.startswith("s "):
                line = line.rstrip("\n") + " " + " ".join(LATE.values()) + "\n"
            elif " oom_kill {" in line:
                brace = line.index("{")
                line = line[:brace] + json.dumps(dict(json.loads(line[brace:]), **MEMCG)) + "\n"
            new.append(line)
            if line.startswith("c "):
                _c, time, cgid = line.split()[:3]
                new.append(f"m {time} {cgid} 150000 54000 50000 300 -\n")
        out.append((name, new))
    return out


SEGMENTS = _with_later_additions(_golden())


def _json_text(value) -> str:
    text = json.dumps(value)
    return text.replace('"NaN-literal"', "NaN")  # JSON's own NaN, which Python reads


def _mutate_json(obj, rnd: random.Random) -> None:
    key = rnd.choice(list(obj)) if isinstance(obj, dict) else rnd.randrange(len(obj))
    inner = obj[key]
    if isinstance(inner, (dict, list)) and inner and rnd.random() < 0.5:
        _mutate_json(inner, rnd)
    elif isinstance(obj, dict) and rnd.random() < 0.15:
        del obj[key]
    else:
        obj[key] = rnd.choice(ODD_JSON)


def _mutate_line(line: str, op: str, rnd: random.Random) -> str:
    body = line.rstrip("\n")
    brace = body.find(" {")
    if op in ("json", "header") and brace > 0:
        obj = json.loads(body[brace + 1:])
        if obj:
            _mutate_json(obj, rnd)
        return body[:brace + 1] + _json_text(obj) + "\n"
    head, tail = (body[:brace], body[brace:]) if brace > 0 else (body, "")
    tokens = head.split(" ")
    if len(tokens) < 2:
        return line
    at = rnd.randrange(1, len(tokens))
    if op == "drop" and len(tokens) > 2:
        del tokens[at]
    elif op == "insert":
        tokens.insert(at, rnd.choice(ODD_NUMBERS))
    else:
        tokens[at] = rnd.choice(ODD_NUMBERS)
    return " ".join(tokens) + tail + "\n"


def _apply(mutations) -> list:
    segs = [(name, list(lines)) for name, lines in SEGMENTS]
    for seg_i, where, op, choice in mutations:
        rnd = random.Random(choice)
        lines = segs[seg_i % len(segs)][1]
        if not lines:
            continue
        at = 0 if op == "header" else min(int(where * len(lines)), len(lines) - 1)
        if op in ("number", "json", "header", "drop", "insert"):
            lines[at] = _mutate_line(lines[at], op, rnd)
        elif op == "delete":
            del lines[at]
        elif op == "repeat":
            lines.insert(at, lines[at])
        elif op == "swap":
            other = rnd.randrange(len(lines))
            lines[at], lines[other] = lines[other], lines[at]
        else:  # move a line into another segment
            dest = segs[rnd.randrange(len(segs))][1]
            dest.insert(rnd.randrange(len(dest) + 1), lines.pop(at))
    return segs


def _run(argv) -> int:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            return cli.main(argv)
        except SystemExit as exc:  # argparse
            return int(exc.code or 0)


def _console(directory: str) -> None:
    try:
        tl, player, feed = timeline.open_recording(directory)
    except LogError:
        return
    if not len(tl):
        return
    console = view.Console(directory, tl, player, feed)
    console.render(120, 40)
    for key in KEYS:
        console.key(key)
        console.render(100, 30)
    for at in (len(tl) - 1, 0):
        console.go(at)
        console.render(80, 24)
    console.goto("+3s")
    console.render(80, 24)


mutation = st.tuples(st.integers(0, 50), st.floats(0, 1), st.sampled_from(OPS),
                     st.integers(0, 2 ** 32))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(mutation, min_size=1, max_size=12))
def test_every_view_answers_a_mutated_recording(tmp_path_factory, mutations):
    work = tmp_path_factory.mktemp("mutated")
    directory = work / "log"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    for name, lines in _apply(mutations):
        (directory / name).write_text("".join(lines))
    d = str(directory)
    for command in COMMANDS:
        rest = [a.format(out=work / "out.html") for a in command[1:]]
        paths = [d, d] if command[0] == "diff" else [d]
        assert _run([command[0], *paths, *rest]) in (0, 1, 2), command
    _console(d)


def test_the_unmutated_golden_recording_reads_in_every_view(tmp_path):
    """The control: with no mutation each command succeeds (check's limits break: 1)."""
    d = tmp_path / "log"
    d.mkdir()
    for name, lines in SEGMENTS:
        (d / name).write_text("".join(lines))
    got = {c[0] + " " + " ".join(c[1:2]): _run([c[0], *([str(d)] * (2 if c[0] == "diff" else 1)),
                                                *[a.format(out=tmp_path / "o.html")
                                                  for a in c[1:]]]) for c in COMMANDS}
    assert got.pop("check --no-oom") == 1
    assert set(got.values()) == {0}, got
    _console(str(d))
    from memtrail.report import analyze, render_text  # the later additions are read, too

    rep = analyze([str(d)])
    assert rep["reading"]["unknown_records"] == 0 and rep["unexplained"]["percpu_bytes"]
    assert "    cgroup:     200 MiB of its 200 MiB limit: anon 146 MiB" in render_text(rep)
    assert any(u["makeup"] for u in rep["units"])


@pytest.mark.parametrize("value", [10 ** 400, -(2 ** 70), 2 ** 64 + 1])
def test_an_integer_too_large_for_a_float_is_unknown_in_every_view(tmp_path, value):
    """Found by the fuzz test above: a header's interval_s of 10**400 overflowed the float()
    the report and the console make of it (a traceback). JSON integers past 64 bits are read
    as absent, as NaN and 1e999 are."""
    d = tmp_path / "log"
    d.mkdir()
    for name, lines in SEGMENTS:
        lines = list(lines)
        head = lines[0]
        obj = json.loads(head[head.index(" {") + 1:])
        obj["interval_s"] = value
        lines[0] = head[:head.index(" {") + 1] + json.dumps(obj) + "\n"
        (d / name).write_text("".join(lines))
    for command in COMMANDS:
        rest = [a.format(out=tmp_path / "o.html") for a in command[1:]]
        paths = [str(d), str(d)] if command[0] == "diff" else [str(d)]
        assert _run([command[0], *paths, *rest]) in (0, 1), command
    _console(str(d))
    assert reader.decode_json(f'{{"a": {value}, "b": {2 ** 64}}}') == {"a": None, "b": 2 ** 64}


def test_sizes_too_large_for_the_consoles_index_are_unknown(tmp_path):
    """A MemTotal of 10**30 KiB (a corrupt line) overflowed the console's 64-bit index."""
    d = tmp_path / "log"
    d.mkdir()
    for name, lines in SEGMENTS:
        fixed = []
        for line in lines:
            if line.startswith("s "):
                parts = line.split(" ")
                parts[2] = "1" + "0" * 30
                line = " ".join(parts)
            fixed.append(line)
        (d / name).write_text("".join(fixed))
    tl, _, _ = timeline.open_recording(str(d))
    assert len(tl) and set(tl.used) == {-1}
    _console(str(d))
