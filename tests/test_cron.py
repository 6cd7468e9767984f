from __future__ import annotations

import pytest

from feedpub.cron import CronSchedule, parse_cron

SUN, MON, TUE, WED, THU, FRI, SAT = range(7)


@pytest.mark.parametrize(
    ("weekday", "days"),
    [
        ("*", {SUN, MON, TUE, WED, THU, FRI, SAT}),
        ("mon", {MON}),
        ("0", {SUN}),
        ("7", {SUN}),  # 0 and 7 are both Sunday
        ("1-5", {MON, TUE, WED, THU, FRI}),
        ("5-7", {FRI, SAT, SUN}),
        ("sat-sun", {SAT, SUN}),  # ranges may run round the end of the week
        ("6-0", {SAT, SUN}),
        ("fri-mon", {FRI, SAT, SUN, MON}),
        ("mon-sun", {SUN, MON, TUE, WED, THU, FRI, SAT}),
        ("mon-fri/2", {MON, WED, FRI}),
        ("fri-tue/2", {FRI, SUN, TUE}),
        ("*/2", {SUN, TUE, THU, SAT}),
        ("2/2", {TUE, THU, SAT}),  # a/n runs from a to the end of the week
        ("Sat,SUN,wEd", {SAT, SUN, WED}),
    ],
)
def test_weekdays(weekday: str, days: set[int]) -> None:
    assert parse_cron(f"0 8 * * {weekday}").weekdays == days


def test_every_field_is_read_into_its_values() -> None:
    assert parse_cron("*/15 6-9,22 1,15 JAN-mar/2 mon") == CronSchedule(
        minutes=frozenset({0, 15, 30, 45}),
        hours=frozenset({6, 7, 8, 9, 22}),
        days=frozenset({1, 15}),
        months=frozenset({1, 3}),
        weekdays=frozenset({MON}),
        day_restricted=True,
        weekday_restricted=True,
        text="*/15 6-9,22 1,15 JAN-mar/2 mon",
    )


@pytest.mark.parametrize(
    ("expression", "day_restricted", "weekday_restricted"),
    [
        ("0 8 * * *", False, False),
        ("0 8 1 * *", True, False),
        ("0 8 * * mon", False, True),
        ("0 8 1-31 * 0-7", True, True),  # restricted means written without a leading *
        ("0 8 */2 * */7", False, False),
    ],
)
def test_restricted_means_not_starting_with_a_star(
    expression: str, day_restricted: bool, weekday_restricted: bool
) -> None:
    schedule = parse_cron(expression)
    assert (schedule.day_restricted, schedule.weekday_restricted) == (
        day_restricted,
        weekday_restricted,
    )


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 8 *", "expected 5 cron fields (minute hour day month weekday), got 3"),
        ("0 8 * * * *", "expected 5 cron fields (minute hour day month weekday), got 6"),
        ("60 8 * * *", "minute '60' is out of range 0-59"),
        ("0 24 * * *", "hour '24' is out of range 0-23"),
        ("0 25 * * *", "hour '25' is out of range 0-23"),
        ("0 8 0 * *", "day '0' is out of range 1-31"),
        ("0 8 * 13 *", "month '13' is out of range 1-12"),
        ("0 8 * * 8", "weekday '8' is out of range 0-7"),
        ("0 8 * * funday", "weekday 'funday' is out of range 0-7"),
        ("mon 8 * * *", "minute 'mon' is out of range 0-59"),  # names only for months, weekdays
        ("0 8 * * 1/0", "weekday step must be at least 1"),
        ("0 8 ? * *", "day field '?' is not a cron field"),
        ("0 8 1,,2 * *", "day field '1,,2' is not a cron field"),
        ("0 8 * * ١", "weekday field '١' is not a cron field"),  # only ASCII digits
        ("0 22-6 * * *", "hour range 22-6 runs backwards; write it as 22-23,0-6"),
        ("0 23-2 * * *", "hour range 23-2 runs backwards; write it as 23,0-2"),
        ("0 8 25-5 * *", "day range 25-5 runs backwards; write it as 25-31,1-5"),
        ("0 8 * nov-feb *", "month range nov-feb runs backwards; write it as 11-12,1-2"),
        ("0 8 30,31 feb *", "day '30,31' never comes in month 'feb'; the schedule would never run"),
        ("0 8 31 4,6 */2", "day '31' never comes in month '4,6'; the schedule would never run"),
    ],
)
def test_problems_are_sentences(expression: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cron(expression)
    assert str(caught.value) == problem


def test_a_day_that_never_comes_is_fine_when_the_weekday_may_match_instead() -> None:
    # Both restricted: the job runs on Mondays in February (the 30th never comes).
    assert parse_cron("0 8 30 feb mon").weekdays == {MON}
    assert parse_cron("0 8 29 feb *").days == {29}  # leap years
