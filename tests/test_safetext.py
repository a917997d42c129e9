"""safetext: each medium's escape, by example and fuzzed (hypothesis)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import unicodedata
import xml.dom.minidom

from hypothesis import given, settings
from hypothesis import strategies as st

from memtrail import safetext

# Text that is hostile somewhere: controls of every kind, markup of every medium, bidi, bytes
# that were not UTF-8 (surrogateescape), XML-invalid characters.
HOSTILE = [
    "\x1b]0;pwned\x07", "\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\", "\x1b[2J\x1b[H",
    "ok\rFORGED", "abc\x08\x08\x08xyz", "x\nFAIL: forged line", "\u202eevil\u202c",
    "\u2066iso\u2069", "<img src=x onerror=alert(1)>", "[x](http://evil)", "<!-- hide",
    "=HYPERLINK(\"http://evil\",\"x\")", "+cmd", "-1+1", "@SUM(A1)", "\tTAB", "\rCR",
    "caf\udce9 \udcff", "\x00\x0b\x0c\ufffe\uffff", "# heading", "*em* _em_ `code`",
    "&amp; &#x3c;", "www.evil.example", "https://evil.example/x", "a@evil.example",
    ":+1: @someone #123", "\x9b31m", "\u0085nel", "\u2028ls", "\U000e0041tag", "\xadsoft",
    "a|b|c", "`` ` ``", " =lead", "back\\slash",
]

RAW_BAD = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
                     "\ufffe\uffff\ud800-\udfff\U000e0000-\U000e007f]")


def test_unsafe_list_matches_unicode_categories():
    """Every Cc, Cf, Cs, Zl, Zp code point (and the two noncharacters) is escaped, and no
    other: checked against this Python's unicodedata, so the hand-kept class stays whole."""
    wanted = {"Cc", "Cf", "Cs", "Zl", "Zp"}
    missing, extra = [], []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        cat = unicodedata.category(ch)
        hit = bool(safetext._UNSAFE.match(ch))
        should = cat in wanted or cp in (0xFFFE, 0xFFFF)
        if should and not hit:
            missing.append(f"U+{cp:04X} {cat}")
        elif hit and not should and cat != "Cn":  # unassigned in an older Unicode: fine
            extra.append(f"U+{cp:04X} {cat}")
    # Format characters added by a newer Unicode than the list knows would show up here.
    assert not missing, missing[:20]
    assert not extra, extra[:20]


def test_terminal_examples():
    t = safetext.terminal
    assert t(None) == ""
    assert t(42) == "42"
    assert t("plain text -x /a/b") == "plain text -x /a/b"
    assert t("\x1b]0;pwned\x07") == "\\x1b]0;pwned\\x07"
    assert t("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert t("\u202eevil") == "\\u202eevil"
    assert t("caf\udce9") == "caf\\xe9"
    assert t("\U000e0041") == "\\U000e0041"
    assert t("\x9b") == "\\x9b"
    assert t("naïve ☃ 日本") == "naïve ☃ 日本"  # printable non-ASCII stays as it is


def test_markdown_examples():
    md = safetext.markdown
    assert md("[x](http://evil)") == "\\[x\\]\\(http\\:\\/\\/evil\\)"
    assert md("<img src=x>") == "\\<img src\\=x\\>"
    assert md("<!-- x") == "\\<\\!\\-\\- x"
    assert md("a\n# h") == "a\\\\n\\# h"
    assert md("a|b") == "a\\|b"
    assert md("plain words 42") == "plain words 42"


def test_markdown_code_fence():
    mc = safetext.markdown_code
    assert mc("ls -l") == "`ls -l`"
    assert mc("a`b") == "`` a`b ``"
    assert mc("``x") == "``` ``x ```"
    assert mc("a|b") == "`a\\|b`"
    assert mc("") == "` `"
    assert mc("a\nb") == "`a\\nb`"


def test_csv_cell_examples():
    c = safetext.csv_cell
    for bad in ("=1+1", "+cmd", "-2", "@SUM(A1)", "\tx", "\rx", "  =x"):
        assert c(bad).startswith("'"), bad
    assert c("a\r\nb") == "a\\r\\nb"
    assert c("python3") == "python3"
    assert c(None) == ""


def test_xml_examples():
    x = safetext.xml
    assert x('<a href="x">&\'') == "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"
    assert x("\x00\x1b\ufffe") == "\\x00\\x1b\\ufffe"
    assert x("a\nb") == "a\\nb"
    assert x("a\nb<", newlines=True) == "a\nb&lt;"


def test_label_examples():
    assert safetext.label('a"b\\c\nd') == 'a\\"b\\\\c\\\\nd'


def test_json_text():
    doc = json.dumps({"cmd": "caf\udce9 \x1b"}, ensure_ascii=False)
    out = safetext.json_text(doc)
    out.encode("utf-8")  # strict
    assert json.loads(out) == {"cmd": "caf\\xe9 \x1b"}


def test_shorten_never_cuts_an_escape():
    text = safetext.terminal("abcdef\x1bghij")
    for width in range(0, len(text) + 2):
        short = safetext.shorten(text, width)
        assert "\\x1" not in short or "\\x1b" in short
        assert not re.search(r"\\(x.?|u.{0,3})\.\.\.$", short)


def test_command():
    assert safetext.command(None) == "?"
    assert safetext.command(["a", "b\nc"]) == "a b\\nc"
    assert safetext.command("one string\x07") == "one string\\x07"
    assert safetext.command(["x" * 50], 10) == "xxxxxxx..."


def test_tree():
    data = {"a\x1b": ["x\n", ("y\x07", 3)], "n": None, "k": 1.5}
    assert safetext.tree(data) == {"a\\x1b": ["x\\n", ("y\\x07", 3)], "n": None, "k": 1.5}


# -- fuzz ---------------------------------------------------------------------------------------
any_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x3000)),
    st.lists(st.sampled_from(HOSTILE + ["a", " ", "\\", "`", "|", "\n"]), max_size=8).map(
        "".join),
)


@settings(max_examples=400, deadline=None)
@given(any_text)
def test_fuzz_terminal(text):
    out = safetext.terminal(text)
    out.encode("utf-8")
    assert not RAW_BAD.search(out)
    assert safetext.terminal(out) == out  # idempotent: escaping twice changes nothing
    assert "\n" not in out


@settings(max_examples=400, deadline=None)
@given(any_text)
def test_fuzz_markdown(text):
    out = safetext.markdown(text)
    out.encode("utf-8")
    assert not RAW_BAD.search(out)
    # No ASCII punctuation is left unescaped: strip escaped pairs, none may remain.
    assert not re.search(r"[!-/:-@\[-`{-~]", re.sub(r"\\[!-/:-@\[-`{-~]", "", out))


@settings(max_examples=400, deadline=None)
@given(any_text)
def test_fuzz_markdown_code(text):
    out = safetext.markdown_code(text)
    fence = re.match("`+", out).group(0)
    inner = out[len(fence):-len(fence)]
    assert out.endswith(fence)
    assert fence not in inner  # the span cannot close early
    assert not re.search(r"(?<!\\)\|", inner)
    assert not RAW_BAD.search(out)


@settings(max_examples=400, deadline=None)
@given(any_text)
def test_fuzz_csv(text):
    cell = safetext.csv_cell(text)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([cell, 1])
    line = buf.getvalue()
    assert line.count("\n") == 1 and "\r" not in line
    back = next(csv.reader(io.StringIO(line)))
    assert back == [cell, "1"]
    assert not back[0].lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r"))
    line.encode("utf-8")


@settings(max_examples=400, deadline=None)
@given(any_text)
def test_fuzz_xml_is_well_formed(text):
    doc = (f'<?xml version="1.0" encoding="UTF-8"?><r a="{safetext.xml(text)}">'
           f"{safetext.xml(text)}</r>")
    parsed = xml.dom.minidom.parseString(doc.encode("utf-8"))
    root = parsed.documentElement
    assert root.getAttribute("a") == safetext.terminal(text)
    assert root.firstChild is None or root.firstChild.data == safetext.terminal(text)


@settings(max_examples=400, deadline=None)
@given(any_text)
def test_fuzz_label(text):
    out = safetext.label(text)
    out.encode("utf-8")
    assert "\n" not in out
    assert not re.search(r'(?<!\\)(\\\\)*"', out)  # every quote is escaped


@settings(max_examples=300, deadline=None)
@given(any_text, st.integers(min_value=0, max_value=40))
def test_fuzz_shorten(text, width):
    safe = safetext.terminal(text)
    out = safetext.shorten(safe, width)
    assert len(out) <= max(width, 3) or out == safe
    assert not RAW_BAD.search(out)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(any_text, st.lists(any_text, max_size=3), max_size=4))
def test_fuzz_json_text(obj):
    out = safetext.json_text(json.dumps(obj, ensure_ascii=False))
    out.encode("utf-8")
    assert isinstance(json.loads(out), dict)


def test_cells_and_fit_count_terminal_columns():
    assert safetext.cells("nginx") == 5
    assert safetext.cells("数据库") == 6  # wide: two cells each
    assert safetext.cells("ｆｕｌｌ") == 8  # fullwidth forms
    assert safetext.cells("cafe\u0301") == 4  # a combining accent takes no cell
    assert safetext.fit("数据库", 5) == "数据 "  # the third would straddle the edge: left out
    assert safetext.fit("数据库", 5, pad=False) == "数据"
    assert safetext.fit("abc", 2) == "ab" and safetext.fit("ab", 4) == "ab  "
    assert safetext.fit("数据", 0) == "" and safetext.fit("x", -1, pad=False) == ""
