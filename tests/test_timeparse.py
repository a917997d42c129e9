"""`timeparse.iso` (the stamp of every JSON object) against the strftime text it replaced:
the same characters for any time a log can hold, rounding at a millisecond's edge included."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from memtrail.timeparse import iso


def _strftime_iso(t: float):
    try:
        dt = datetime.fromtimestamp(t, timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                 st.floats(-62_000_000_000, 253_402_300_800),
                 st.integers(0, 4_102_444_800).map(lambda s: s + 0.9995),
                 st.integers(0, 4_102_444_800).map(lambda s: s - 1e-7)))
def test_iso_is_strftime_text(t):
    assert iso(t) == _strftime_iso(t)


def test_iso_known_stamps():
    assert iso(1763596800.0) == "2025-11-20T00:00:00.000Z"
    assert iso(1763596800.9999) == "2025-11-20T00:00:00.999Z"
    assert iso(-62135596800.0) == _strftime_iso(-62135596800.0)  # year 1: strftime's text
    assert iso(None) is None and iso(float("nan")) is None
