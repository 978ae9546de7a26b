"""Windows in which an automatic (promotion) deploy may start, like Argo CD sync windows.

A window is ``{"schedule": "0 9 * * 1-5", "duration": "8h", "timeZone": "Europe/Berlin"}``:
it opens at every start time of the cron schedule and stays open for the duration. It is
open at time t when some start s satisfies s <= t < s + duration. Windows only say when a
deploy may *start*; what happens to one already running is the caller's business.

The schedule is evaluated in the window's local time (by `croniter` on zone-aware
datetimes), so `0 9 * * *` in Europe/Berlin opens at 09:00 on the wall clock in both summer
(07:00 UTC) and winter (08:00 UTC). Around DST changes croniter behaves as follows, and
this module relies on it: a start that falls into the skipped hour (02:30 on the spring
day) happens at the first minute after the jump (03:00 local); a start in the repeated hour
(02:30 on the autumn day) happens twice, once per occurrence of that wall time. The
duration is elapsed time: "8h" is eight real hours even across a DST change.

Everything here is pure: the caller passes the current time in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from alecton.api.durations import parse_duration

MIN_DURATION = timedelta(seconds=1)
MAX_DURATION = timedelta(days=7)
_FIELDS = ("schedule", "duration", "timeZone")
# A fixed instant to test once, at parse time, that a schedule ever fires ("0 9 30 2 *"
# does not); cron schedules without a year field repeat, so any instant would do.
_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """One sync window; build it with `Window.parse`, which validates every field."""

    schedule: str  # standard 5-field cron: minute hour day-of-month month day-of-week
    duration: timedelta
    time_zone: str = "UTC"  # IANA name, e.g. "Europe/Berlin"

    @classmethod
    def parse(cls, spec: Any, *, field: str = "window") -> Window:
        """The window a spec object describes.

        Raises ValueError with a message that starts with the offending field (`field` is the
        path of the object itself, so a caller can pass e.g. "spec.promotion.windows[1]").
        Fields whose value is null count as absent, as the API server treats them.
        """
        if not isinstance(spec, Mapping):
            raise ValueError(f"{field}: must be an object with schedule and duration, not {spec!r}")
        given = {key: value for key, value in spec.items() if value is not None}
        for key in given:
            if key not in _FIELDS:
                # A typo such as "timezone" would otherwise silently mean UTC.
                raise ValueError(f"{field}.{key}: not a field of a window (it takes {', '.join(_FIELDS)})")
        for key in ("schedule", "duration"):
            if key not in given:
                raise ValueError(f"{field}.{key}: required")
        time_zone = _parse_time_zone(given.get("timeZone", "UTC"), f"{field}.timeZone")
        schedule = _parse_schedule(given["schedule"], f"{field}.schedule")
        duration = _parse_window_duration(given["duration"], f"{field}.duration")
        return cls(schedule=schedule, duration=duration, time_zone=time_zone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)  # ZoneInfo caches instances by key

    def is_open(self, now: datetime) -> bool:
        """Whether a deploy may start at `now` (a timezone-aware datetime)."""
        start = self._latest_start(now)
        return start is not None and now < start + self.duration

    def open_until(self, now: datetime) -> datetime | None:
        """When the window open at `now` closes (UTC), or None when it is closed at `now`."""
        start = self._latest_start(now)
        if start is None or now >= start + self.duration:
            return None
        return start + self.duration

    def next_open(self, now: datetime) -> datetime:
        """`now` itself if the window is open, else its next start in UTC, to requeue exactly then."""
        if self.is_open(now):
            return now
        starts = croniter(self.schedule, _local(now, self.zone))
        return _utc(starts.get_next(datetime))

    def _latest_start(self, now: datetime) -> datetime | None:
        """The latest start s <= now, or None if the schedule never fired before `now`.

        Only the latest start matters: an earlier start's window ends no later than the
        latest one's, as all have the same duration. croniter's get_prev returns the latest
        start strictly before the minute its search begins in, so the search begins a
        minute after `now` and steps back over the (at most few) starts later than `now`.
        The minute is added before converting to local time: adding it to a local datetime
        is wall-clock arithmetic that resets `fold`, which would move a time in the second
        pass of a repeated (DST) hour back to the first pass.
        """
        starts = croniter(self.schedule, _local(now + timedelta(minutes=1), self.zone))
        try:
            start = starts.get_prev(datetime)
            while start > now:
                start = starts.get_prev(datetime)
        except CroniterError:  # no start within croniter's search horizon (50 years)
            return None
        return _utc(start)


def windows_open(windows: Sequence[Window], now: datetime) -> bool:
    """Whether a deploy may start at `now`: no windows means no restriction."""
    return not windows or any(window.is_open(now) for window in windows)


def next_opening(windows: Sequence[Window], now: datetime) -> datetime | None:
    """When the earliest window opens next (UTC), or None if there are no windows or one is open."""
    if windows_open(windows, now):
        return None
    return min(window.next_open(now) for window in windows)


def _local(now: datetime, zone: ZoneInfo) -> datetime:
    """`now` in the window's zone; a naive datetime is a programming error, not UTC."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, not {now!r}")
    return now.astimezone(zone)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _parse_time_zone(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: must be an IANA time zone name like Europe/Berlin, not {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError: a key that is not a relative path ("/etc/localtime", "../x").
        raise ValueError(f"{field}: unknown time zone {value!r}") from None
    return value


def _parse_schedule(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value.split()) != 5:
        raise ValueError(
            f"{field}: must be a cron expression with 5 fields "
            f"(minute hour day-of-month month day-of-week), not {value!r}"
        )
    try:
        croniter(value, _PROBE).get_next(datetime)
    except CroniterError as exc:
        raise ValueError(f"{field}: invalid cron expression {value!r}: {exc}") from None
    return value


def _parse_window_duration(value: Any, field: str) -> timedelta:
    # parse_duration is the Go-style parser the health checks use; it also rejects zero and
    # negative durations. Its message is reworded to match the other window fields.
    try:
        duration = timedelta(seconds=parse_duration(value, field=field))
    except ValueError:
        raise ValueError(
            f"{field}: must be a positive duration like 30m, 8h or 1h30m, not {value!r}"
        ) from None
    if duration < MIN_DURATION:
        # "1ns" is positive but rounds to nothing, and a window under a second is a mistake.
        raise ValueError(f"{field}: must be at least 1s, not {value!r}")
    if duration > MAX_DURATION:
        raise ValueError(f"{field}: must be at most 7 days (168h), not {value!r}")
    return duration
