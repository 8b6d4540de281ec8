"""Checks of input values: one place for numbers, bboxes, days, hours and flags.

Every function takes the raw text a user gave (a query-string value, a CLI
flag) and returns the checked value, or raises :class:`BadParam` naming the
parameter and what is wrong with it. The HTTP layer answers a BadParam with
a 400, the CLI with an exit-2 message; this module imports nothing of the
package, so any layer may use it.

The rules are strict on purpose: ASCII digits only (no ``1_000``, no
full-width digits), finite numbers, ranges checked, day names spelled out
or abbreviated to three letters.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import Any

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
HOURS = re.compile(r"([0-9]{1,2})(?:-([0-9]{1,2}))?", re.ASCII)
TRUE, FALSE = ("true", "t", "1", "yes"), ("false", "f", "0", "no")
DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
# An ISO 8601 instant: a date, or a date and time (T or a space between), optional seconds,
# fractional seconds and offset. A "+" left unencoded in a query string arrives as a space:
# " 02:00" after the time reads as "+02:00".
INSTANT = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?"
                     r"(Z|z|[+ -][0-9]{2}(?::?[0-9]{2})?)?)?", re.ASCII)
BIGINT = 2 ** 63 - 1  # the largest integer any store takes


class BadParam(ValueError):
    """A value that does not fit what its parameter takes: the client's to fix."""

    def __init__(self, name: str, detail: str):
        super().__init__(f"{name}: {detail}")
        self.name = name
        self.detail = detail


def integer(raw: Any, name: str, lo: int | None = None, hi: int | None = BIGINT) -> int:
    text = str(raw).strip()
    if not INTEGER.fullmatch(text):
        raise BadParam(name, f"expected an integer (digits 0-9), got {_show(raw)}")
    return _within(int(text), name, lo, hi, raw)


def number(raw: Any, name: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    else:
        text = str(raw).strip()
        if not NUMBER.fullmatch(text):
            raise BadParam(name, f"expected a number, got {_show(raw)}")
        value = float(text)
    if not math.isfinite(value):
        raise BadParam(name, f"expected a finite number, got {_show(raw)}")
    return _within(value, name, lo, hi, raw)


def boolean(raw: Any, name: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text not in TRUE + FALSE:
        raise BadParam(name, f"expected true or false (t/f, yes/no, 1/0), got {_show(raw)}")
    return text in TRUE


def choice(raw: Any, name: str, choices) -> str:
    if raw not in tuple(choices):
        raise BadParam(name, f"expected one of {', '.join(choices)}, got {_show(raw)}")
    return raw


def bbox(raw: str | None, name: str = "bbox") -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` in degrees, or None when absent."""
    if raw is None or raw == "":
        return None
    parts = str(raw).split(",")
    if len(parts) != 4:
        raise BadParam(name, f"expected minlon,minlat,maxlon,maxlat, got {_show(raw)}")
    minx, maxx = (number(parts[k], name, -180, 180) for k in (0, 2))
    miny, maxy = (number(parts[k], name, -90, 90) for k in (1, 3))
    if minx > maxx or miny > maxy:
        raise BadParam(name, "min must not exceed max (minlon,minlat,maxlon,maxlat)")
    return (minx, miny, maxx, maxy)


def days(raw: str | None, name: str = "days") -> list[int] | None:
    """Day names (``Mon`` or ``Monday``, any case) or numbers 0 (Monday)..6, comma-separated."""
    if raw is None or raw == "":
        return None
    out = []
    for token in str(raw).split(","):
        token = token.strip()
        lower = token.lower()
        if INTEGER.fullmatch(token) and len(token) == 1 and 0 <= int(token) <= 6:
            out.append(int(token))
            continue
        found = [i for i, d in enumerate(DAYS) if lower in (d.lower(), d[:3].lower())]
        if not found:
            raise BadParam(name, f"expected day names (Mon..Sun or Monday..Sunday) or numbers "
                                 f"0 (Monday)..6, got {_show(token)}")
        out.append(found[0])
    return sorted(set(out))


def hours(raw: str | None, name: str = "hours") -> tuple[int, int] | None:
    """``START-END`` in whole hours 0..23, inclusive; START > END wraps past midnight;
    one hour ``17`` is ``17-17``."""
    if raw is None or raw == "":
        return None
    match = HOURS.fullmatch(str(raw).strip())
    if not match:
        raise BadParam(name, f"expected an hour (17) or START-END in hours (8-17, 22-4), got {_show(raw)}")
    start = int(match.group(1))
    end = start if match.group(2) is None else int(match.group(2))
    if not (0 <= start <= 23 and 0 <= end <= 23):
        raise BadParam(name, f"hours run from 0 to 23, got {_show(raw)}")
    return (start, end)


def date(raw: Any, name: str) -> datetime.date:
    """A calendar date, ``YYYY-MM-DD``."""
    if isinstance(raw, datetime.date) and not isinstance(raw, datetime.datetime):
        return raw
    match = DATE.fullmatch(str(raw).strip())
    try:
        if match:
            return datetime.date(*(int(g) for g in match.groups()))
    except ValueError:
        pass
    raise BadParam(name, f"expected a date YYYY-MM-DD, got {_show(raw)}")


def instant(raw: Any, name: str) -> datetime.datetime:
    """An ISO 8601 date or date-time (``2021-01-08``, ``2021-01-08T17:58:48.25+01:00``) as a
    naive datetime in UTC (a value without an offset is taken as it is, as the stores keep
    time). Fractional seconds beyond microseconds are cut."""
    if isinstance(raw, datetime.datetime):
        value = raw
    else:
        match = INSTANT.fullmatch(str(raw).strip())
        if not match:
            raise BadParam(name, f"expected an ISO 8601 date or date-time (2021-01-08, 2021-01-08T17:58:48, "
                                 f"optional .fraction and Z or +HH:MM), got {_show(raw)}")
        day, hh, mm, ss, frac, offset = match.groups()
        try:
            value = datetime.datetime.combine(date(day, name), datetime.time(
                int(hh or 0), int(mm or 0), int(ss or 0), int((frac or "0")[:6].ljust(6, "0"))))
            if offset and offset not in "Zz":
                sign = -1 if offset[0] == "-" else 1
                digits = offset[1:].replace(":", "")
                delta = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
                if delta >= datetime.timedelta(hours=24):
                    raise ValueError("offset")
                value = value.replace(tzinfo=datetime.timezone(sign * delta))
        except (ValueError, BadParam):
            raise BadParam(name, f"not a valid date-time: {_show(raw)}") from None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def text(raw: Any, name: str) -> str:
    """A text value for comparing with stored text: any characters but NUL, which no
    database text holds (PostgreSQL refuses it outright)."""
    value = str(raw)
    if "\x00" in value:
        raise BadParam(name, "text values cannot hold NUL (\\0) characters")
    return value


def values(args, name: str) -> list:
    """Every value of a query parameter given several times (none when absent)."""
    return args.getlist(name) if hasattr(args, "getlist") else [args[name]] if name in args else []


def single(args, name: str) -> str | None:
    """The one value of a query parameter (None when absent); repeated ones are refused."""
    values = args.getlist(name) if hasattr(args, "getlist") else [args[name]] if name in args else []
    if len(values) > 1:
        raise BadParam(name, f"given {len(values)} times; give it once")
    return values[0] if values else None


def _within(value, name, lo, hi, raw):
    if lo is not None and value < lo:
        raise BadParam(name, f"must be at least {_bound(lo)}, got {_show(raw)}")
    if hi is not None and value > hi:
        raise BadParam(name, f"must be at most {_bound(hi)}, got {_show(raw)}")
    return value


def _bound(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _show(raw: Any) -> str:
    """The value as it was given, cut short: error messages must stay small."""
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."
