"""Crontab schedules: the one parser that both config validation and the scheduler use,
so a schedule ``feedpub check`` accepts is the schedule the daemon runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# The most days each month can have (February in a leap year).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_PART = re.compile(r"(?:(\*)|([0-9]+|[a-z]+)(?:-([0-9]+|[a-z]+))?)(?:/([0-9]+))?")


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A five-field crontab schedule as the values each field allows.

    Weekdays count from 0 = Sunday to 6 = Saturday. A field is restricted when it
    does not start with ``*``; when both the day and the weekday are, a time matches
    if either does (as in crontab), otherwise both must match.
    """

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_restricted: bool
    weekday_restricted: bool
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class _Field:
    """One of the five fields: its bounds and the names allowed in place of numbers."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    # Weekdays go round: 7 is Sunday again, and a range may run past it (fri-mon).
    wraps: bool = False

    @property
    def last(self) -> int:
        """Where ``*`` and ``a/n`` end: before ``high`` when it is ``low`` again."""
        return self.high - 1 if self.wraps else self.high

    def number(self, word: str) -> int:
        if word in self.names:
            return self.low + self.names.index(word)
        if not word.isdigit() or not self.low <= int(word) <= self.high:
            raise ValueError(f"{self.name} {word!r} is out of range {self.low}-{self.high}")
        return int(word)

    def values(self, text: str) -> frozenset[int]:
        """The values a field such as ``1-5,*/15`` or ``sat-sun`` allows."""
        values: set[int] = set()
        for part in text.split(","):
            match = _PART.fullmatch(part.lower())
            if match is None:
                raise ValueError(f"{self.name} field {text!r} is not a cron field")
            star, first_word, last_word, step_text = match.groups()
            if star:
                first, last = self.low, self.last
            else:
                first = self.number(first_word)
                last = self.number(last_word) if last_word else first
                if step_text and not last_word:
                    last = self.last  # a/n runs from a to the end, as */n does
            step = int(step_text) if step_text else 1
            if step == 0:
                raise ValueError(f"{self.name} step must be at least 1")
            if first > last:
                if not self.wraps:
                    raise ValueError(
                        f"{self.name} range {first_word}-{last_word} runs backwards; "
                        f"write it as {_span(first, self.high)},{_span(self.low, last)}"
                    )
                last += self.high
            values.update(range(first, last + 1, step))
        return frozenset(v % self.high for v in values) if self.wraps else frozenset(values)


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, MONTH_NAMES),
    _Field("weekday", 0, 7, WEEKDAY_NAMES, wraps=True),
)


def parse_cron(text: str) -> CronSchedule:
    """Read five crontab fields (minute hour day month weekday).

    Raises ValueError with a sentence saying what is wrong.
    """
    fields = text.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"expected 5 cron fields (minute hour day month weekday), got {len(fields)}"
        )
    minutes, hours, days, months, weekdays = (
        field.values(value) for field, value in zip(_FIELDS, fields, strict=True)
    )
    day_restricted = not fields[2].startswith("*")
    weekday_restricted = not fields[4].startswith("*")
    # Unless the weekday may match instead, one of the days must come in one of the months.
    either = day_restricted and weekday_restricted
    if not either and min(days) > max(_MONTH_DAYS[m - 1] for m in months):
        raise ValueError(
            f"day {fields[2]!r} never comes in month {fields[3]!r}; the schedule would never run"
        )
    return CronSchedule(
        minutes, hours, days, months, weekdays, day_restricted, weekday_restricted, text
    )
