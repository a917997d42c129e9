"""The one place where a string from a log becomes safe to show.

Command lines, process names, cgroup paths, slab names, hosts and event details in a log are
written by whoever can start a process (or name a cgroup, or set a hostname) on the recorded
host. They reach a reviewer's terminal, a CI page (markdown), a spreadsheet (CSV), a JUnit file
(XML), an HTML report, Prometheus labels and JSON pipelines. Every view passes each such string
through the function for its medium, and through nothing else, so one review of this file
covers every output.

All functions take any value (``None`` gives ``""``; a lone surrogate from ``surrogateescape``,
which the log uses for bytes that were not UTF-8, is fine) and return a string that encodes as
strict UTF-8 and that the medium shows as plain text. Nothing is dropped silently: a character
that would act is shown as a visible escape (``\\x1b``, ``\\u202e``, ``\\xff`` for a byte that
was not UTF-8), so a reader sees that something odd was there.

Not escaped: a backslash itself. Command lines are full of them (regular expressions, Windows
paths) and doubling each would make every one of those harder to read; the price is that a
name can contain the four characters ``\\x1b``, which then look like an escaped ESC. That
fools nobody's terminal, only a reader's guess at what the bytes were.
"""

from __future__ import annotations

import html as _html
import re
import unicodedata
from typing import Any, Callable, Optional

# Characters that act instead of showing, or show as nothing: C0 controls, DEL and C1 controls
# (Cc); every format character (Cf: soft hyphen, bidi marks, embeddings, overrides and
# isolates, zero-width characters, invisible operators, the BOM, interlinear annotation, tag
# characters); the line and paragraph separators (Zl, Zp); the noncharacters U+FFFE/U+FFFF
# (not XML); lone surrogates (Cs: bytes that were not UTF-8, which strict UTF-8 cannot encode).
# tests/test_safetext.py checks this list against unicodedata for every code point.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ufffe\uffff"
    "\ud800-\udfff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]"
)
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _visible(match: re.Match) -> str:
    ch = match.group(0)
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return _NAMED.get(ch) or f"\\x{code:02x}"
    if code > 0xFFFF:
        return f"\\U{code:08x}"
    return f"\\u{code:04x}"


def terminal(text: Optional[object]) -> str:
    """Plain text for a terminal or a plain-text file: no control, bidi or invisible character
    survives, so a name cannot move the cursor, set the title, make a hyperlink, ring the
    bell, forge a line (a newline shows as ``\\n``) or reorder what is shown."""
    if text is None:
        return ""
    text = text if isinstance(text, str) else str(text)
    if text.isascii() and text.isprintable():  # the common case, ~10x faster than the regex
        return text
    return _UNSAFE.sub(_visible, text)


# Every ASCII punctuation character: CommonMark lets each be backslash-escaped, and then it is
# literal. Escaping all of them (not a hand-picked few) also stops what no list remembers:
# GFM autolinks (`http:`, `www.`, `a@b.c`), emoji shortcodes, `@mentions`, `#123` references,
# entities (`&amp;`), tables (`|`), HTML (`<`), comments (`<!--`), setext underlines.
_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def markdown(text: Optional[object]) -> str:
    """Inline markdown text, also inside a table cell: every character markdown (or the HTML it
    may contain) would act on is backslash-escaped, so links, images, raw HTML, headings,
    emphasis, autolinks and comments show as the characters they are."""
    return _MD_SPECIAL.sub(r"\\\1", terminal(text))


def markdown_code(text: Optional[object], table: bool = True) -> str:
    """A markdown code span (monospace, nothing inside is markup): fenced with more backticks
    than the text holds, so it cannot be closed early. In a table cell (`table`), `|` is
    escaped so it cannot split the row (GFM unescapes it there; outside a table the backslash
    would show)."""
    safe = terminal(text)
    if table:
        safe = safe.replace("|", "\\|")
    if not safe:
        return "` `"
    runs = re.findall("`+", safe)
    fence = "`" * (max((len(r) for r in runs), default=0) + 1)
    if runs or safe[0] == " " or safe[-1] == " ":
        safe = f" {safe} "  # a space pads a backtick at either end; one is stripped each side
    return f"{fence}{safe}{fence}"


# What a spreadsheet runs as a formula when a cell starts with it (OWASP's list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: Optional[object]) -> str:
    """A CSV cell that a spreadsheet cannot run as a formula and that cannot split a row:
    controls (CR and LF included) are escaped visibly, and a cell starting with =, +, -, @, a
    tab or CR (after any leading spaces) gets a ' in front. Numbers are not text: write
    them as numbers, not through this."""
    if text is None:
        return ""
    raw = text if isinstance(text, str) else str(text)
    safe = terminal(raw)
    if raw.lstrip(" ").startswith(_FORMULA_START):
        safe = "'" + safe
    return safe


def xml(text: Optional[object], newlines: bool = False) -> str:
    """Character data or an attribute value for XML or HTML: markup characters escaped, quotes
    included, and every control or invisible character shown visibly (characters XML forbids
    would make the file not well-formed; bidi ones would reorder what a reader sees).

    `newlines=True` keeps line breaks, for multi-line text the program composed itself (a
    tooltip, a `<pre>` block) out of pieces that went through ``terminal()`` already."""
    if newlines and text is not None:
        return "\n".join(xml(line) for line in str(text).split("\n"))
    return _html.escape(terminal(text), quote=True)


html = xml


def label(text: Optional[object]) -> str:
    """A Prometheus/OpenMetrics label value (without the quotes): backslash, quote and newline
    escaped as the exposition format says, every other control escaped visibly first."""
    safe = terminal(text)  # a newline is already `\n` here, as two characters
    return safe.replace("\\", "\\\\").replace('"', '\\"')


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(encoded: str) -> str:
    """A JSON document made with ``ensure_ascii=False``, made valid UTF-8: a lone surrogate (a
    byte that was not UTF-8 in the log) becomes the visible text ``\\xNN`` inside its string.

    JSON escapes control characters itself; only lone surrogates, which it writes raw with
    ensure_ascii=False and which strict UTF-8 cannot encode, need this. Surrogates occur only
    inside JSON strings, so the replacement (an escaped backslash, `\\\\xNN`) is always in one.
    """
    if encoded.isascii():
        return encoded
    return _SURROGATE.sub(lambda m: "\\" + _visible(m), encoded)


def shorten(text: str, width: int) -> str:
    """Cut safe text to `width` characters with '...', never inside a visible escape."""
    if width <= 0 or len(text) <= width:
        return text
    cut = text[: max(width - 3, 0)]
    tail = cut.rfind("\\", max(len(cut) - 9, 0))
    if tail != -1 and not re.fullmatch(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[ntr])",
                                       cut[tail:]):
        cut = cut[:tail]
    return cut + "..."


def _cells(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def cells(text: str) -> int:
    """Terminal cells safe text takes: a CJK (East Asian wide or fullwidth) character two, a
    combining mark none, the rest one. Columns of a full-screen view are laid out by this, not
    by len(): a program named in Chinese would push every later column right."""
    return len(text) if text.isascii() else sum(map(_cells, text))


def fit(text: str, width: int, pad: bool = True) -> str:
    """Safe text cut to at most `width` cells (a wide character that would straddle the edge
    is left out), padded with spaces to exactly `width` unless `pad` is False."""
    if text.isascii():
        cut = text[:max(width, 0)]
        return cut.ljust(width) if pad else cut
    used, out = 0, []
    for char in text:
        n = _cells(char)
        if used + n > width:
            break
        used += n
        out.append(char)
    cut = "".join(out)
    return cut + " " * (width - used) if pad else cut


def command(cmd: Any, width: int = 0, missing: str = "?") -> str:
    """An argv list (or an already joined command line) as one line of terminal-safe text,
    optionally cut to `width`."""
    if not cmd:
        return missing
    text = terminal(cmd) if isinstance(cmd, str) else " ".join(terminal(a) for a in cmd)
    return shorten(text, width) if width else text


def tree(value: Any, fn: Callable[[Any], str] = terminal) -> Any:
    """A copy of a JSON-like value (dicts, lists, tuples) with every string, keys included,
    passed through `fn`: a view renders the copy, and a field added to the data later is safe
    in that view without anyone remembering to escape it."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {(fn(k) if isinstance(k, str) else k): tree(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(tree(v, fn) for v in value)
    return value
