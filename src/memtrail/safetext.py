"""The one place where a string from a log becomes safe to show.

Command lines, process names, cgroup paths and hosts in a log are written by whoever can start a
process on the recorded host. They reach a reviewer's terminal, a CI page (markdown), a
spreadsheet (CSV), a JUnit file (XML), an HTML report and Prometheus labels. Every view passes
each such string through the function for its medium, and through nothing else, so one review
of this file covers every output.

All functions take any ``str`` (including lone surrogates from ``surrogateescape``, which the
log uses for bytes that were not UTF-8) and return a string that encodes as UTF-8 and that the
medium shows as plain text. Nothing is dropped silently: a character that would act is shown as
a visible escape (``\\x1b``, ``\\u202e``), so a reader sees that something odd was there.
"""

from __future__ import annotations

import html as _html
import re
from typing import Optional

# C0 controls, DEL, C1 controls; bidi embeddings/overrides/isolates and marks; zero-width and
# line/paragraph separators; the BOM; and lone surrogates (undecodable bytes).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb"
    "\ud800-\udfff]"
)


def _visible(match: re.Match) -> str:
    ch = match.group(0)
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\x{code:02x}")
    return f"\\u{code:04x}"


def terminal(text: Optional[object]) -> str:
    """Plain text for a terminal or a plain-text file: no control, bidi or invisible character
    survives, so a name cannot move the cursor, set the title, forge a line or reorder text."""
    if text is None:
        return ""
    return _UNSAFE.sub(_visible, str(text))


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~&:=\"'])")


def markdown(text: Optional[object]) -> str:
    """Text inside markdown (also inside a table cell): every character markdown or the HTML it
    may contain would act on is backslash-escaped, so links, images, raw HTML, headings,
    emphasis and comments all show as the characters they are."""
    return _MD_SPECIAL.sub(r"\\\1", terminal(text))


def markdown_code(text: Optional[object]) -> str:
    """Text for a markdown code span: backticks cannot close it and `|` cannot split a table.
    Prefer ``markdown()``; this keeps command lines readable where a code span is wanted."""
    return "`" + terminal(text).replace("`", "'").replace("|", "\\|") + "`"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\\")


def csv_cell(text: Optional[object]) -> str:
    """A CSV cell that a spreadsheet cannot run as a formula and that cannot split a row: controls
    are escaped visibly and a leading =, +, -, @ (or an escaped control) gets a ' in front.
    Numbers are not text: write them as numbers, not through this."""
    if text is None:
        return ""
    raw = str(text)
    safe = terminal(raw)
    if raw.startswith(_FORMULA_START) or safe.startswith(_FORMULA_START):
        safe = "'" + safe
    return safe


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml(text: Optional[object]) -> str:
    """Character data or an attribute value for XML or HTML: markup characters escaped, quotes
    included, and every control or invisible character shown visibly (characters XML forbids
    would make the file not well-formed; bidi ones would reorder what a reader sees)."""
    return _html.escape(terminal(text), quote=True)


html = xml


def label(text: Optional[object]) -> str:
    """A Prometheus/OpenMetrics label value (without the quotes): backslash, quote and newline
    escaped as the exposition format says, every other control escaped visibly first."""
    safe = terminal(text)  # newlines are already \n here, as two characters
    return safe.replace("\\", "\\\\").replace('"', '\\"')


def shorten(text: str, width: int) -> str:
    """Cut safe text to `width` characters with '...', never inside a visible escape."""
    if width <= 0 or len(text) <= width:
        return text
    cut = text[: max(width - 3, 0)]
    tail = cut.rfind("\\", max(len(cut) - 6, 0))
    if tail != -1 and not re.fullmatch(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|[ntr\\])", cut[tail:]):
        cut = cut[:tail]
    return cut + "..."


def command(cmd, width: int = 0, missing: str = "?") -> str:
    """An argv list as one line of terminal-safe text, optionally cut to `width`."""
    if not cmd:
        return missing
    text = " ".join(terminal(a) for a in cmd)
    return shorten(text, width) if width else text
