"""Bounded time buckets that keep the extremes, so a week at 1 s draws like an hour.

A chart is at most ~1200 pixels wide: a 7-day log at one sample a second has 604,800 points, so
points must be merged while reading, without knowing the span in advance (logs can be cut
short, have gaps, or be several segments). `Buckets` starts with one bucket per `width0`
seconds and, each time it holds more than `2 * target` buckets, doubles the width and merges
neighbours pairwise. Memory is bounded by `2 * target` buckets whatever the log's length.

Merging must not lose what an incident is about: every series keeps its **min and max** (a
10-second spike to the limit stays visible as the top of a band), the mean, and the time of
its max. Anything else a caller needs per bucket (e.g. the process table at the bucket's worst
tick) rides along as `extra` with a caller-supplied merge function.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence


class Bucket:
    """One time slice: per series min/max/sum/count and the time of the max."""

    __slots__ = ("start", "end", "n", "mins", "maxs", "sums", "counts", "max_times", "extra")

    def __init__(self, nseries: int, time: float) -> None:
        self.start = time  # first sample time in the bucket
        self.end = time  # last sample time in the bucket
        self.n = 0
        self.mins: List[Optional[float]] = [None] * nseries
        self.maxs: List[Optional[float]] = [None] * nseries
        self.sums = [0.0] * nseries
        self.counts = [0] * nseries
        self.max_times = [time] * nseries
        self.extra: Any = None

    def add(self, time: float, values: Sequence[Optional[float]]) -> None:
        if time < self.start:
            self.start = time
        if time > self.end:
            self.end = time
        self.n += 1
        mins, maxs, sums, counts = self.mins, self.maxs, self.sums, self.counts
        for i, v in enumerate(values):
            if v is None:
                continue
            lo = mins[i]
            if lo is None or v < lo:
                mins[i] = v
            hi = maxs[i]
            if hi is None or v > hi:
                maxs[i] = v
                self.max_times[i] = time
            sums[i] += v
            counts[i] += 1

    def mean(self, i: int) -> Optional[float]:
        return self.sums[i] / self.counts[i] if self.counts[i] else None

    def merge(self, other: Bucket, merge_extra: Optional[Callable[[Any, Any], Any]]) -> None:
        """Fold `other` (any order) into this bucket."""
        self.start = min(self.start, other.start)
        self.end = max(self.end, other.end)
        self.n += other.n
        for i in range(len(self.mins)):
            olo, ohi = other.mins[i], other.maxs[i]
            if olo is not None and (self.mins[i] is None or olo < self.mins[i]):
                self.mins[i] = olo
            if ohi is not None and (self.maxs[i] is None or ohi > self.maxs[i]):
                self.maxs[i] = ohi
                self.max_times[i] = other.max_times[i]
            self.sums[i] += other.sums[i]
            self.counts[i] += other.counts[i]
        if merge_extra is not None:
            self.extra = merge_extra(self.extra, other.extra)
        elif self.extra is None:
            self.extra = other.extra


class Buckets:
    """At most `2 * target` buckets over time, widths doubling as the log goes on.

    `add(time, values)` returns the bucket the sample went into, so the caller can update
    its `extra`. Buckets are aligned to `origin` (the first sample), so merging is exact.
    """

    def __init__(self, nseries: int, target: int = 300, width0: float = 1.0,
                 merge_extra: Optional[Callable[[Any, Any], Any]] = None) -> None:
        if target < 1 or width0 <= 0:
            raise ValueError("target must be >= 1 and width0 > 0")
        self.nseries = nseries
        self.target = target
        self.width = width0
        self.merge_extra = merge_extra
        self.origin: Optional[float] = None
        self.buckets: Dict[int, Bucket] = {}

    def add(self, time: float, values: Sequence[Optional[float]]) -> Bucket:
        if self.origin is None:
            self.origin = time
        index = int((time - self.origin) // self.width)
        bucket = self.buckets.get(index)
        if bucket is None:
            if len(self.buckets) >= 2 * self.target:
                self._halve()
                index = int((time - self.origin) // self.width)
                bucket = self.buckets.get(index)
            if bucket is None:
                bucket = self.buckets[index] = Bucket(self.nseries, time)
        bucket.add(time, values)
        return bucket

    def _halve(self) -> None:
        """Double the width until the buckets fit in `target` again (merging pairs)."""
        while len(self.buckets) >= self.target:
            self.width *= 2
            merged: Dict[int, Bucket] = {}
            for index in sorted(self.buckets):
                bucket = self.buckets[index]
                into = merged.get(index // 2)
                if into is None:
                    merged[index // 2] = bucket
                else:
                    into.merge(bucket, self.merge_extra)
            self.buckets = merged

    def __len__(self) -> int:
        return len(self.buckets)

    def __iter__(self) -> Iterator[Bucket]:
        """Buckets in time order (empty slices, e.g. gaps, are simply absent)."""
        for index in sorted(self.buckets):
            yield self.buckets[index]
