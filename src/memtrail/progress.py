"""A one-line progress indicator on stderr for commands that replay a long recording.

A week of log takes a report tens of seconds; silence that long looks like a hang. So when
stderr is a terminal and the work has taken more than about two seconds, one line (rewritten
in place, never scrolled) says how far the replay is, and it is wiped when the work is done.
Pipes, files and CI logs get nothing: their output stays exactly what it was.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar

T = TypeVar("T")
DELAY_S = 2.0  # say nothing for work shorter than this
EVERY_S = 0.25  # redraw at most this often


class Progress:
    """Shows `fraction` of the work done, once the work has taken DELAY_S, if `stream` is a
    terminal. `update()` is cheap enough to call per tick."""

    def __init__(self, label: str, stream: Optional[IO[str]] = None,
                 delay: Optional[float] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.enabled = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.enabled = False
        self.label = label
        self.start = time.monotonic()
        self.delay = DELAY_S if delay is None else delay
        self.next_draw = self.start + self.delay
        self.shown = False

    def update(self, fraction: float, detail: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self.next_draw:
            return
        self.next_draw = now + EVERY_S
        pct = max(0.0, min(fraction, 1.0)) * 100
        line = f"{self.label}: {pct:3.0f}%" + (f" {detail}" if detail else "")
        self.stream.write("\r" + line[:79] + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def _spans(paths: Sequence[str]) -> List[Tuple[float, float]]:
    """(first tick time, start of the next segment) of every segment: the recording's layout
    from one line per segment, so progress costs no extra pass over the log."""
    from memtrail.seek import segment_starts  # seek imports the model, which imports this

    starts = [t for _p, t in segment_starts(paths) if t is not None]
    if not starts:
        return []
    spans = list(zip(starts, starts[1:]))
    last = starts[-1]
    typical = max((b - a for a, b in spans), default=3600.0)
    spans.append((last, last + typical))  # the last segment's length is a guess
    return spans


def ticks(items: Iterable[T], paths: Sequence[str], label: str = "memtrail",
          stream: Optional[IO[str]] = None) -> Iterator[T]:
    """`items` (ticks, with a `.time`) passed through, with a progress line by their time."""
    bar = Progress(label, stream)
    if not bar.enabled:
        yield from items
        return
    spans = _spans(paths)
    total = sum(b - a for a, b in spans) or 1.0
    done_before = []  # recording time covered by the segments before each one
    acc = 0.0
    for a, b in spans:
        done_before.append(acc)
        acc += b - a
    k = 0
    n = 0
    try:
        for item in items:
            yield item
            n += 1
            if n & 255:
                continue
            t = getattr(item, "time", None)
            if t is None or not spans:
                continue
            while k + 1 < len(spans) and t >= spans[k + 1][0]:
                k += 1
            a, b = spans[k]
            covered = done_before[k] + min(max(t - a, 0.0), b - a)
            bar.update(covered / total, time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)))
    finally:
        bar.done()
