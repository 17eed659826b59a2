"""Schedule expressions: ``rate(...)``, ``cron(...)`` and ``at(...)``, evaluated in UTC.

cron fields are EventBridge's six (minutes hours day-of-month month day-of-week year), evaluated
by ``croniter`` (its seven-field form: minutes hours day-of-month month day-of-week seconds year).
What stays ours is the translation: EventBridge numbers the days of the week SUN=1 .. SAT=7 where
croniter counts SUN=0. The ``L``, ``W`` and ``#`` forms are accepted but not scheduled locally
(``next_after`` returns None: run them on demand with ``python -m devstack invoke-schedule NAME``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterBadDateError, croniter

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_SPECIAL = re.compile(r"#|^L$|^LW$|\dL|\dW")  # last day, nearest weekday, nth weekday
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Schedule:
    expression: str
    every_s: int | None = None
    cron: str | None = None  # croniter's seven fields; None: run on demand only
    at: datetime | None = None

    def next_after(self, now: datetime) -> datetime | None:
        """The next firing strictly after ``now``; None when only run on demand."""
        if self.every_s is not None:
            return now + timedelta(seconds=self.every_s)
        if self.at is not None:
            return self.at if self.at > now else None
        if self.cron is None:
            return None
        try:
            fire: datetime = croniter(self.cron, now.astimezone(UTC)).get_next(datetime)
        except CroniterBadDateError:  # no firing left (a year in the past)
            return None
        return fire


def _croniter_weekdays(field: str) -> str:
    """EventBridge's SUN=1 .. SAT=7 as croniter's SUN=0 .. SAT=6 (names and steps unchanged)."""
    parts = []
    for part in field.split(","):
        body, slash, step = part.partition("/")
        parts.append(re.sub(r"\d+", lambda m: str(int(m.group()) - 1), body) + slash + step)
    return ",".join(parts)


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
        minute, hour, dom, month, dow, year = parts
        cron = " ".join([minute, hour, dom, month, _croniter_weekdays(dow), "0", year])
        if not croniter.is_valid(cron):
            raise ValueError(f"{expression}: not a valid cron expression")
        return Schedule(expression, cron=cron)
    raise ValueError(f"unsupported schedule expression {expression!r}")
