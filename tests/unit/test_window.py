from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alecton.reconcile.window import Window, next_opening, windows_open
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

BERLIN = "Europe/Berlin"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def window(schedule: str, duration: str, time_zone: str | None = None) -> Window:
    spec = {"schedule": schedule, "duration": duration}
    if time_zone is not None:
        spec["timeZone"] = time_zone
    return Window.parse(spec)


# ---------------------------------------------------------------------------
# Open / closed


def test_open_inside_closed_outside() -> None:
    office = window("0 9 * * 1-5", "8h")  # 2024-07-01 is a Monday
    assert not office.is_open(at(2024, 7, 1, 8, 59, 59))
    assert office.is_open(at(2024, 7, 1, 9))  # the start is inside
    assert office.is_open(at(2024, 7, 1, 12, 30))
    assert office.is_open(at(2024, 7, 1, 16, 59, 59))
    assert not office.is_open(at(2024, 7, 1, 17))  # the end is outside
    assert not office.is_open(at(2024, 7, 6, 12))  # Saturday


def test_time_zone_defaults_to_utc() -> None:
    assert window("0 9 * * *", "1h") == Window(
        schedule="0 9 * * *", duration=timedelta(hours=1), time_zone="UTC"
    )


def test_next_open_is_now_when_open() -> None:
    office = window("0 9 * * 1-5", "8h")
    now = at(2024, 7, 1, 10, 15, 7)
    assert office.next_open(now) == now


def test_next_open_is_the_next_start() -> None:
    office = window("0 9 * * 1-5", "8h")
    assert office.next_open(at(2024, 7, 1, 8, 59, 59)) == at(2024, 7, 1, 9)
    assert office.next_open(at(2024, 7, 1, 17)) == at(2024, 7, 2, 9)
    assert office.next_open(at(2024, 7, 5, 18)) == at(2024, 7, 8, 9)  # Friday evening -> Monday


def test_next_open_is_utc() -> None:
    office = window("0 9 * * *", "1h", BERLIN)
    opens = office.next_open(at(2024, 7, 1, 12))
    assert opens == at(2024, 7, 2, 7)
    assert opens.utcoffset() == timedelta(0)


def test_window_spanning_midnight() -> None:
    night = window("0 22 * * *", "4h")
    assert night.is_open(at(2024, 7, 1, 23, 30))
    assert night.is_open(at(2024, 7, 2, 1, 59))
    assert not night.is_open(at(2024, 7, 2, 2))
    assert not night.is_open(at(2024, 7, 2, 21, 59))
    assert night.next_open(at(2024, 7, 2, 2)) == at(2024, 7, 2, 22)


def test_friday_night_window_reaches_into_saturday() -> None:
    night = window("0 22 * * 5", "6h")  # 2024-07-05 is a Friday
    assert night.is_open(at(2024, 7, 6, 3, 59))
    assert not night.is_open(at(2024, 7, 6, 4))


def test_duration_longer_than_the_period_is_always_open() -> None:
    hourly = window("0 * * * *", "2h")
    assert all(hourly.is_open(at(2024, 7, 1) + timedelta(minutes=m)) for m in range(0, 24 * 60, 7))


def test_sub_minute_duration() -> None:
    every_minute = window("* * * * *", "30s")
    assert every_minute.is_open(at(2024, 7, 1, 10, 5, 29))
    assert not every_minute.is_open(at(2024, 7, 1, 10, 5, 30))
    assert every_minute.next_open(at(2024, 7, 1, 10, 5, 30)) == at(2024, 7, 1, 10, 6)


def test_now_in_another_zone_is_the_same_instant() -> None:
    office = window("0 9 * * *", "1h")
    assert office.is_open(at(2024, 7, 1, 9, 30).astimezone(ZoneInfo(BERLIN)))


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        window("0 9 * * *", "1h").is_open(datetime(2024, 7, 1, 9, 30))


# ---------------------------------------------------------------------------
# Time zones and DST (Europe/Berlin: CET = UTC+1, CEST = UTC+2;
# 2024-03-31 02:00 CET -> 03:00 CEST, 2024-10-27 03:00 CEST -> 02:00 CET)


def test_local_start_follows_dst_in_spring() -> None:
    morning = window("0 9 * * *", "1h", BERLIN)
    assert morning.is_open(at(2024, 3, 30, 8, 30))  # winter: 09:00 CET = 08:00 UTC
    assert not morning.is_open(at(2024, 3, 30, 7, 30))
    assert morning.is_open(at(2024, 3, 31, 7, 30))  # change day, summer: 09:00 CEST = 07:00 UTC
    assert not morning.is_open(at(2024, 3, 31, 8, 30))
    assert morning.next_open(at(2024, 3, 30, 12)) == at(2024, 3, 31, 7)


def test_local_start_follows_dst_in_autumn() -> None:
    morning = window("0 9 * * *", "1h", BERLIN)
    assert morning.is_open(at(2024, 10, 26, 7, 30))  # summer
    assert not morning.is_open(at(2024, 10, 27, 7, 30))  # change day, winter
    assert morning.is_open(at(2024, 10, 27, 8, 30))
    assert morning.next_open(at(2024, 10, 26, 12)) == at(2024, 10, 27, 8)


def test_duration_is_elapsed_time_across_a_dst_change() -> None:
    # Midnight CET on the spring day is 23:00 UTC; eight real hours end at 07:00 UTC,
    # which the wall clock already shows as 09:00 CEST.
    night = window("0 0 * * *", "8h", BERLIN)
    assert night.is_open(at(2024, 3, 31, 6, 59))
    assert not night.is_open(at(2024, 3, 31, 7))


def test_start_in_the_skipped_hour_happens_after_the_jump() -> None:
    # 02:30 does not exist on 2024-03-31 in Berlin; the start moves to 03:00 CEST = 01:00 UTC.
    w = window("30 2 * * *", "30m", BERLIN)
    assert w.next_open(at(2024, 3, 30, 12)) == at(2024, 3, 31, 1)
    assert w.is_open(at(2024, 3, 31, 1, 15))
    assert not w.is_open(at(2024, 3, 31, 1, 30))
    assert w.next_open(at(2024, 3, 31, 2)) == at(2024, 4, 1, 0, 30)  # 02:30 CEST again


def test_start_in_the_repeated_hour_happens_twice() -> None:
    # 02:30 happens twice on 2024-10-27 in Berlin: 00:30 UTC (CEST) and 01:30 UTC (CET).
    w = window("30 2 * * *", "15m", BERLIN)
    assert w.next_open(at(2024, 10, 26, 12)) == at(2024, 10, 27, 0, 30)
    assert w.is_open(at(2024, 10, 27, 0, 40))
    assert not w.is_open(at(2024, 10, 27, 1))
    assert w.next_open(at(2024, 10, 27, 1)) == at(2024, 10, 27, 1, 30)
    assert w.is_open(at(2024, 10, 27, 1, 40))
    assert w.next_open(at(2024, 10, 27, 2)) == at(2024, 10, 28, 1, 30)


# ---------------------------------------------------------------------------
# Several windows


def test_no_windows_means_always_open() -> None:
    assert windows_open([], at(2024, 7, 1))
    assert next_opening([], at(2024, 7, 1)) is None


def test_several_windows_open_when_any_is_open() -> None:
    morning = window("0 9 * * *", "1h")
    evening = window("0 18 * * *", "2h")
    both = [morning, evening]
    assert windows_open(both, at(2024, 7, 1, 9, 30))
    assert windows_open(both, at(2024, 7, 1, 19, 30))
    assert not windows_open(both, at(2024, 7, 1, 12))
    assert next_opening(both, at(2024, 7, 1, 9, 30)) is None
    assert next_opening(both, at(2024, 7, 1, 12)) == at(2024, 7, 1, 18)
    assert next_opening(both, at(2024, 7, 1, 21)) == at(2024, 7, 2, 9)


def test_several_windows_in_different_zones() -> None:
    berlin = window("0 9 * * *", "1h", BERLIN)  # 07:00 UTC in summer
    new_york = window("0 9 * * *", "1h", "America/New_York")  # 13:00 UTC in summer
    both = [berlin, new_york]
    assert next_opening(both, at(2024, 7, 1, 8)) == at(2024, 7, 1, 13)
    assert next_opening(both, at(2024, 7, 1, 14)) == at(2024, 7, 2, 7)


# ---------------------------------------------------------------------------
# Parsing


def test_parse_fields() -> None:
    parsed = Window.parse({"schedule": "0 9 * * 1-5", "duration": "1h30m", "timeZone": BERLIN})
    assert parsed == Window(schedule="0 9 * * 1-5", duration=timedelta(hours=1, minutes=30), time_zone=BERLIN)
    assert window("* * * * *", "90s").duration == timedelta(seconds=90)
    assert window("* * * * *", "168h").duration == timedelta(days=7)
    assert Window.parse({"schedule": "0 9 * * *", "duration": "1h", "timeZone": None}).time_zone == "UTC"
    assert window("0 9 * * MON-FRI", "1h").schedule == "0 9 * * MON-FRI"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0 9 * * *", r"^window: must be an object"),
        ({"duration": "1h"}, r"^window\.schedule: required$"),
        ({"schedule": "0 9 * * *"}, r"^window\.duration: required$"),
        ({"schedule": "0 9 * * *", "duration": "1h", "timezone": "UTC"}, r"^window\.timezone: not a field"),
        (
            {"schedule": "0 9 * *", "duration": "1h"},
            r"^window\.schedule: must be a cron expression with 5 fields",
        ),
        (
            {"schedule": "0 0 9 * * *", "duration": "1h"},
            r"^window\.schedule: must be a cron expression with 5",
        ),
        (
            {"schedule": "@daily", "duration": "1h"},
            r"^window\.schedule: must be a cron expression with 5 fields",
        ),
        ({"schedule": 9, "duration": "1h"}, r"^window\.schedule: must be a cron expression"),
        (
            {"schedule": "0 25 * * *", "duration": "1h"},
            r"^window\.schedule: invalid cron expression '0 25 \* \* \*'",
        ),
        ({"schedule": "a b c d e", "duration": "1h"}, r"^window\.schedule: invalid cron expression"),
        ({"schedule": "0 0 30 2 *", "duration": "1h"}, r"^window\.schedule: invalid cron expression"),
        ({"schedule": "0 9 * * *", "duration": "0s"}, r"^window\.duration: must be a positive duration"),
        ({"schedule": "0 9 * * *", "duration": "-1h"}, r"^window\.duration: must be a positive duration"),
        ({"schedule": "0 9 * * *", "duration": "soon"}, r"^window\.duration: must be a positive duration"),
        ({"schedule": "0 9 * * *", "duration": "1d"}, r"^window\.duration: must be a positive duration"),
        ({"schedule": "0 9 * * *", "duration": 3600}, r"^window\.duration: must be a positive duration"),
        ({"schedule": "0 9 * * *", "duration": "1ns"}, r"^window\.duration: must be at least 1s"),
        ({"schedule": "0 9 * * *", "duration": "168h1s"}, r"^window\.duration: must be at most 7 days"),
        (
            {"schedule": "0 9 * * *", "duration": "1h", "timeZone": "Mars/Base"},
            r"^window\.timeZone: unknown time zone 'Mars/Base'$",
        ),
        (
            {"schedule": "0 9 * * *", "duration": "1h", "timeZone": "/etc/localtime"},
            r"^window\.timeZone: unknown",
        ),
        ({"schedule": "0 9 * * *", "duration": "1h", "timeZone": ""}, r"^window\.timeZone: must be an IANA"),
    ],
)
def test_parse_errors_name_the_field(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Window.parse(spec)


def test_parse_error_uses_the_callers_path() -> None:
    with pytest.raises(ValueError, match=r"^spec\.promotion\.windows\[1\]\.duration: "):
        Window.parse({"schedule": "0 9 * * *", "duration": "forever"}, field="spec.promotion.windows[1]")


# ---------------------------------------------------------------------------
# Properties, weighted towards the Berlin DST changes of 2024

_instants = st.one_of(
    st.datetimes(min_value=datetime(2024, 3, 31, 0), max_value=datetime(2024, 3, 31, 3)),
    st.datetimes(min_value=datetime(2024, 10, 27, 0), max_value=datetime(2024, 10, 27, 3)),
    st.datetimes(min_value=datetime(2024, 3, 30), max_value=datetime(2024, 4, 1)),
    st.datetimes(min_value=datetime(2024, 10, 26), max_value=datetime(2024, 10, 28)),
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2024, 12, 31)),
).map(lambda naive: naive.replace(tzinfo=UTC))
_windows = st.builds(
    window,
    st.sampled_from(["0 9 * * *", "30 2 * * *", "*/20 * * * *", "0 22 * * 5", "15 1,3 * * *", "0 0 1 * *"]),
    st.sampled_from(["1s", "59s", "10m", "45m", "90m", "3h"]),
    st.sampled_from(["UTC", BERLIN, "America/New_York"]),
)


def starts_between(w: Window, begin: datetime, end: datetime) -> list[datetime]:
    """Every start in [begin, end] in UTC, found going forward, as an independent check of
    the backwards search `is_open` does. (In UTC because adding a duration to a local time
    in the second pass of a repeated hour would land in the first pass.)"""
    found = []
    starts = croniter(w.schedule, (begin - timedelta(minutes=1)).astimezone(w.zone))
    while (start := starts.get_next(datetime).astimezone(UTC)) <= end:
        if start >= begin:
            found.append(start)
    return found


@settings(max_examples=200, deadline=None)
@given(_windows, _instants)
def test_is_open_agrees_with_a_forward_enumeration(w: Window, now: datetime) -> None:
    recent = starts_between(w, now - w.duration - timedelta(hours=3), now)
    assert w.is_open(now) == any(start <= now < start + w.duration for start in recent)


@settings(max_examples=200, deadline=None)
@given(_windows, _instants, st.floats(0, 1))
def test_next_open_is_the_first_open_moment(w: Window, now: datetime, fraction: float) -> None:
    opens = w.next_open(now)
    assert opens >= now
    assert w.is_open(opens)
    if opens > now:
        assert not w.is_open(now)
        assert not w.is_open(opens - timedelta(microseconds=1))
        assert not w.is_open(now + (opens - now) * fraction * 0.999)
