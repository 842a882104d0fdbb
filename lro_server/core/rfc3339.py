"""RFC 3339 timestamps to and from INT64 microseconds since the Unix epoch.

The stores keep times as INT64 microseconds in both dialects, so filters and page
tokens work on integers; this module is the one place that converts text.
"""

from __future__ import annotations

import datetime
import re

_PATTERN = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)
#: Range of representable instants: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z.
MIN_MICROS = (datetime.datetime(1, 1, 1, tzinfo=datetime.UTC) - _EPOCH) // _MICROSECOND
MAX_MICROS = (datetime.datetime.max.replace(tzinfo=datetime.UTC) - _EPOCH) // _MICROSECOND


def to_micros(text: str) -> int:
    """Parse an RFC 3339 timestamp (offset required) into microseconds since the epoch.

    Raises:
        ValueError: Not RFC 3339, an impossible date, out of range, or digits finer
            than a microsecond (rounding them would make ``<`` and ``<=`` disagree).
    """
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ValueError("not an RFC 3339 timestamp")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    fraction = fraction or ""
    if fraction[6:].strip("0"):
        raise ValueError("finer than microseconds")
    if offset in ("Z", "z"):
        zone = datetime.UTC
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if minutes >= 60:
            raise ValueError("invalid offset")
        sign = -1 if offset[0] == "-" else 1
        zone = datetime.timezone(sign * datetime.timedelta(hours=hours, minutes=minutes))
    moment = datetime.datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second),
        int(fraction[:6].ljust(6, "0")), tzinfo=zone,
    )  # fmt: skip
    micros = (moment - _EPOCH) // _MICROSECOND
    if not MIN_MICROS <= micros <= MAX_MICROS:  # an offset can push year 1 or 9999 over
        raise ValueError("out of range")
    return micros


def from_micros(micros: int) -> str:
    """RFC 3339 text in UTC (``Z``), fractional digits only as many as needed.

    Raises:
        ValueError: ``micros`` is outside ``MIN_MICROS`` .. ``MAX_MICROS``.
    """
    if not MIN_MICROS <= micros <= MAX_MICROS:
        raise ValueError("out of range")
    moment = _EPOCH + datetime.timedelta(microseconds=micros)
    # Not strftime: glibc prints year 1 as "1", RFC 3339 wants four digits.
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"
