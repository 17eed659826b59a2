"""Schedule expressions: ``rate(...)``, ``cron(...)`` and ``at(...)``, evaluated in UTC.

cron uses EventBridge's six fields (minutes hours day-of-month month day-of-week year) with
``*``, ``?``, lists, ranges, ``/`` steps and month/day names. The ``L``, ``W`` and ``#`` forms are
accepted but not scheduled locally (``next_after`` returns None: run them on demand with
``python -m devstack invoke-schedule NAME``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_SPECIAL = re.compile(r"#|^L$|^LW$|\dL|\dW")  # last day, nearest weekday, nth weekday
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_DAYS = {d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
#: (low, high, names) of the five fields the devstack evaluates (the year field is checked apart).
_FIELDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, _MONTHS),
    (1, 7, _DAYS),
)


@dataclass(frozen=True)
class Schedule:
    expression: str
    every_s: int | None = None
    fields: tuple[frozenset[int] | None, ...] | None = None  # None per field: ``*`` / ``?``
    years: frozenset[int] | None = None
    at: datetime | None = None

    def next_after(self, now: datetime) -> datetime | None:
        """The next firing strictly after ``now``; None when only run on demand."""
        if self.every_s is not None:
            return now + timedelta(seconds=self.every_s)
        if self.at is not None:
            return self.at if self.at > now else None
        if self.fields is None:
            return None
        t = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(366 * 24 * 60):  # at most a year of minutes
            if self._fires(t):
                return t
            t += timedelta(minutes=1)
        return None

    def _fires(self, t: datetime) -> bool:
        assert self.fields is not None
        minute, hour, dom, month, dow = self.fields
        cron_dow = (t.isoweekday() % 7) + 1  # SUN=1 .. SAT=7
        return (
            (minute is None or t.minute in minute)
            and (hour is None or t.hour in hour)
            and (dom is None or t.day in dom)
            and (month is None or t.month in month)
            and (dow is None or cron_dow in dow)
            and (self.years is None or t.year in self.years)
        )


def parse_expression(expression: str) -> Schedule:
    """Parse a schedule expression; ``ValueError`` when it is not one EventBridge accepts."""
    expression = expression.strip()
    if m := _RATE.match(expression):
        value, unit = int(m.group(1)), m.group(2).rstrip("s")
        if value < 1:
            raise ValueError(f"{expression}: the rate must be positive")
        return Schedule(expression, every_s=value * _UNIT_S[unit])
    if m := _AT.match(expression):
        return Schedule(expression, at=datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC))
    if m := _CRON.match(expression):
        parts = m.group(1).split()
        if len(parts) != 6:
            raise ValueError(f"{expression}: cron takes 6 fields")
        if any(_SPECIAL.search(parts[i]) for i in (2, 4)):
            return Schedule(expression)  # valid, run on demand only locally
        fields = tuple(
            _field(p, lo, hi, names) for p, (lo, hi, names) in zip(parts[:5], _FIELDS, strict=True)
        )
        years = _field(parts[5], 1970, 2199, {})
        return Schedule(expression, fields=fields, years=years)
    raise ValueError(f"unsupported schedule expression {expression!r}")


def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int] | None:
    if text in {"*", "?"}:
        return None
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body in {"*", ""}:
            start, end = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(body, names)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise ValueError(f"cron field {text!r} out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, names: dict[str, int]) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"bad cron value {text!r}") from None
