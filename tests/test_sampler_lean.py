"""The sampler's hand-written replacements for json, re and argparse, checked against them.

Why: the sampler avoids those modules to stay small in memory (docs/sampler.md), so its JSON
writer, its redaction and kernel-log matching, and its flag parser must behave exactly like the
library code they replace. The references below are the sampler's previous implementations;
hypothesis feeds both the same inputs, including lone surrogates and other odd text.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import pytest
from conftest import SAMPLER
from hypothesis import given, settings
from hypothesis import strategies as st

from memtrail import sampler as S

# --- JSON ----------------------------------------------------------------------------------------

NASTY = ["", "\udce9", "a\udcffb", "\n", '"', "\\", "\x00\x1f\x7f", "é", "€", "😀", "\u2028",
         "\ud800", "</script>", "tab\there"]
scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text() | st.sampled_from(NASTY))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text() | st.sampled_from(NASTY), inner, max_size=4),
                      max_leaves=20)


def reference_dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True)


@given(values)
@settings(max_examples=400, deadline=None)
def test_json_matches_json_dumps(obj):
    assert S._json(obj) == reference_dumps(obj)


def test_json_edge_values():
    for obj in [NASTY, {s: s for s in NASTY}, [math.inf, -math.inf, math.nan, 1e300, -0.0, 0.1],
                {"t": (1, 2)}, {3: "int key", 2.5: "float", True: "t", None: "n"}, 2 ** 70]:
        assert S._json(obj) == reference_dumps(obj)
    with pytest.raises(TypeError):
        S._json({"x": object()})


@given(st.text(max_size=12), st.lists(st.text() | st.sampled_from(NASTY), max_size=5),
       st.booleans(), st.booleans())
@settings(max_examples=300, deadline=None)
def test_command_line_comes_back_out_of_an_identity(comm, cmd, truncated, cg):
    obj = {"comm": comm, "cmd": cmd}
    if truncated:
        obj["cmd_truncated"] = True
    if cg:
        obj["cg"] = '/a "b"/,"cmd":[x]'
    ident = f"42 1000 1 0 {S._json(obj)}"
    assert S.ident_cmd(ident) == json.loads(ident[ident.index("{"):])["cmd"]


# --- redaction -----------------------------------------------------------------------------------
# Redaction outgrew the regular expressions it once replaced (issue 14): its rules are now a
# table of real command lines with properties over random input, in tests/test_redaction.py.
# The odd inputs once checked here against the expressions must still not break it.

@pytest.mark.parametrize("argv", [
    ["https://u:p@h/x", "ftp://a:b@c and s3://d:e@f"], ["1https://u:p@h", "://u:p@h", "-://u:p@h"],
    ["a://u:p:q@h", "a://u@h:p@", "a:// u:p@h", "x://u:p/@h"],
    ['{"token": "a", "password": ""}', "'token': 'x\ny'", '"token\' : "x"', "9token='x'",
     "no-token='x'", '"a" "token"="x"', "token = 'x' 'secret'='y'", "'x'token='y'"],
    ["authorization :x", "Authorizationx: y", "proxy-authorization: z", "authorİzation: a",
     "cookie", "--password\n", "---password", "--password", "x"],
])
def test_redaction_of_odd_arguments_keeps_the_shape(argv):
    got = S.redact(argv)
    assert len(got) == len(argv) and S.redact(got) == S.redact(S.redact(got))


# --- kernel log ---------------------------------------------------------------------------------

# DOTALL: a comm may hold a newline (PR_SET_NAME takes any byte but NUL, and kmsg's \x0a
# escape is undone), and the sampler's name runs to the last ")" whatever it holds
_KILLED_RE = re.compile(r"Killed process (\d+) \((.*?)\)(?= total-vm|,|\s|$)", re.DOTALL)
# The sizes after the name, in the kernel's order, each from its key's first place: the kernel
# writes each once, and the sampler reads no further
_SIZE_KEYS = (("total-vm:", "total_vm_kib"), ("anon-rss:", "anon_kib"), ("file-rss:", "file_kib"),
              ("shmem-rss:", "shmem_kib"), ("pgtables:", "pgtables_kib"))
_SIZE_RE = re.compile(r"-?\d+(?=kB)")
_UID_RE = re.compile(r"UID:(\d+)")


def reference_killed(text: str):
    at = text.find("Killed process ")
    prefix = text[:max(at, 0)]
    if at < 0 or (prefix and not (prefix.endswith("emory: ") and len(prefix) < 40)):
        return None  # only the kernel's own kill line counts, not a message quoting one
    match = _KILLED_RE.match(text, at)
    if not match:
        return None
    event = {"pid": int(match.group(1)), "name": match.group(2)}
    tail = text[match.end():]
    for key, field in _SIZE_KEYS:
        at = tail.find(key)
        size = _SIZE_RE.match(tail, at + len(key)) if at >= 0 else None
        if size:
            event[field] = int(size.group())
    uid = _UID_RE.search(text)
    if uid:
        event["uid"] = int(uid.group(1))
    return event


KPIECES = ["Killed process ", "Memory cgroup out of memory: ", "Out of memory: ", "4242", "7",
           " (", "(", ")", ") ", "),", "python3", "Web Content", " total-vm:123kB",
           ", anon-rss:", "file-rss:", "shmem-rss:", "pgtables:", "12", "kB", "MB", " UID:",
           "UID:x", "0", ",", " ", "\n", "\t", "١٢"]
ktexts = st.lists(st.sampled_from(KPIECES), max_size=14).map("".join)


@given(ktexts)
@settings(max_examples=3000, deadline=None)
def test_oom_line_parsing_matches_the_regular_expressions(text):
    if text.count("Killed process ") > 1 or text.count(")") > 1 or "\u0661" in text:
        return  # sampler._killed's documented rules: the first kill only, the name ends at the
        # last ")", ASCII digits only; the regular expressions below do not know them
    prefix = text[:text.find("Killed process ")]
    if prefix and not (prefix.endswith("emory: ") and len(prefix) < 40):
        assert S.OomParser().feed(text) is None  # a message that merely quotes a kill
        return
    event = S.OomParser().feed(text)
    expect = reference_killed(text)
    if expect is None:
        assert event is None
    else:
        event.pop("memcg_oom")
        assert list(event.items()) == list(expect.items())  # same keys, same order


# --- sizes, durations, segment names -------------------------------------------------------------

_NUMBER_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def reference_number(text):
    m = _NUMBER_RE.match(text)
    return (m.group(1), m.group(2).lower()) if m else None


@given(st.lists(st.sampled_from(["1", "0", "42", ".", "5", " ", "\t", "\n", "k", "M", "GiB",
                                 "ms", "d", "x", "-", "+", "e", "١", "²", "é", "\u00a0"]),
                max_size=8).map("".join))
@settings(max_examples=2000, deadline=None)
def test_sizes_and_durations_read_as_the_regular_expression_did(text):
    assert S._number_unit(text) == reference_number(text)


def test_segment_names():
    ok = ["memtrail-20250101T000000Z-000.log", "memtrail-20250101T000000Z-999.log.gz",
          "memtrail-20250101T000000Z-001.log.tmp", "memtrail-20250101T000000Z-001.log.gz.tmp"]
    bad = ["memtrail-20250101T000000Z-000.log.bak", "memtrail-2025010T000000Z-000.log",
           "xmemtrail-20250101T000000Z-000.log", "memtrail-20250101T000000Z-00.log",
           "memtrail-2025010１T000000Z-000.log", "memtrail-20250101T000000Z-000.log\n",
           "memtrail-20250101 000000Z-000.log", "memtrail-", ""]
    assert [S.is_segment_name(n) for n in ok] == [True] * len(ok)
    assert [S.is_segment_name(n) for n in bad] == [False] * len(bad)


# --- flags ---------------------------------------------------------------------------------------

def test_flags_by_prefix_with_equals_and_negative_values():
    cfg = S.parse_args(["--inter=0.5", "--oom-score-adj", "-500", "--rss-delta", "2M",
                        "--no-red", "--dir=/tmp/x", "--pidfile", "-"])
    assert (cfg.interval, cfg.oom_score_adj, cfg.rss_delta) == (0.5, -500, 2 << 20)
    assert cfg.no_redact is True and cfg.dir == "/tmp/x" and cfg.pidfile == "-"
    assert cfg.fast_interval == 0.1 and cfg.quiet is False


@pytest.mark.parametrize("argv, message", [
    (["--interval"], "argument --interval: expected one argument"),
    (["--dir", "--quiet"], "argument --dir: expected one argument"),
    (["--quiet=yes"], "argument --quiet: ignored explicit argument 'yes'"),
    (["--no", "x"], "ambiguous option: --no could match --no-kmsg, --no-redact"),
    (["--top-n", "-1"], "argument --top-n: not a whole number 0 or more: '-1'"),
    (["x", "--", "--dir"], "unrecognized arguments: x --dir"),
    (["-x"], "unrecognized arguments: -x"),
    (["--journal", "maybe"], "--journal must be auto, yes or no"),
])
def test_flag_errors_are_one_line_and_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        S.parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("memtrail record: ") and message in err
    assert err.endswith(" (see --help)\n") and err.count("\n") == 1


def test_help_groups_every_flag_with_its_variable_and_default(capsys):
    grouped = [flag for _title, flags in S.HELP_GROUPS for flag in flags]
    assert sorted(grouped) == sorted(opt[0] for opt in S.OPTIONS)
    with pytest.raises(SystemExit) as exit_:
        S.parse_args(["--he"])
    text = capsys.readouterr().out
    assert exit_.value.code == 0
    for flag, _kind, _default, _text in S.OPTIONS:
        assert flag in text and S._env_name(flag) in text
    assert "[MEMTRAIL_MAX_AGE, default 7d]" in text and "default 64M]" in text
    assert "below this % of" in text and max(len(line) for line in text.splitlines()) <= 100


# --- what it loads -------------------------------------------------------------------------------

def test_a_run_loads_no_heavy_module(tmp_path):
    """The memory diet holds: a whole run, started as the unit starts it (first tick, stop),
    imports none of them (`-X importtime` lists every import on stderr)."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-I", "-S", str(SAMPLER),
                          "--dir", str(tmp_path / "log"), "--duration", "0.3", "--interval",
                          "0.1", "--quiet", "--journal", "no", "--no-mlock", "--no-oom-adj"],
                         capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"})
    assert run.returncode == 0, run.stderr
    loaded = {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines()
              if line.startswith("import time:") and "|" in line}
    assert {"_json", "_socket", "zlib"} <= loaded  # the listing works
    heavy = {"re", "json", "argparse", "enum", "signal", "socket", "ctypes", "heapq",
             "selectors", "textwrap", "gettext", "struct"}
    assert loaded & heavy == set()
