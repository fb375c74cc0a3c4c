"""Digest schedule and duration parsing (pure, injected time)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gswarm.errors import ConfigError
from gswarm.notify.schedule import next_due, parse_duration, parse_schedule, period_seconds

UTC = timezone.utc
TUE_2213 = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC).timestamp()  # a Tuesday


def test_parse_schedule() -> None:
    assert parse_schedule("daily 08:00") == ("daily", None, 8, 0)
    assert parse_schedule("weekly fri 18:30") == ("weekly", 4, 18, 30)
    assert parse_schedule("weekly") == ("weekly", 0, 8, 0)
    assert parse_schedule("Daily") == ("daily", None, 8, 0)
    assert parse_schedule("off") is None and parse_schedule(None) is None


@pytest.mark.parametrize("bad", ["hourly", "daily mon 08:00", "weekly xyz 08:00", "daily 24:00", "daily 8"])
def test_bad_schedule(bad: str) -> None:
    with pytest.raises(ConfigError, match="notify_digest"):
        parse_schedule(bad)


def test_next_due_daily_and_weekly() -> None:
    assert next_due("daily 08:00", TUE_2213, UTC) == datetime(2023, 11, 15, 8, 0, tzinfo=UTC).timestamp()
    assert next_due("daily 23:00", TUE_2213, UTC) == datetime(2023, 11, 14, 23, 0, tzinfo=UTC).timestamp()
    assert next_due("weekly mon 08:00", TUE_2213, UTC) == datetime(2023, 11, 20, 8, 0, tzinfo=UTC).timestamp()
    assert next_due("weekly tue 22:13", TUE_2213, UTC) == datetime(2023, 11, 21, 22, 13, tzinfo=UTC).timestamp()
    exact = datetime(2023, 11, 15, 8, 0, tzinfo=UTC).timestamp()
    assert next_due("daily 08:00", exact, UTC) == exact + 86400  # strictly after now
    assert next_due("off", TUE_2213, UTC) is None
    assert (period_seconds("weekly"), period_seconds("daily 07:00")) == (7 * 86400, 86400)


def test_parse_duration() -> None:
    assert [parse_duration(x) for x in ("30m", "24h", "7d", "1w", "1h30m", "90s", "45", "1.5h")] == [
        1800, 86400, 604800, 604800, 5400, 90, 45, 5400]
    for bad in ("", "soon", "10x", "0m", "5m junk"):
        with pytest.raises(ConfigError, match="--since"):
            parse_duration(bad, "--since")
