"""How long "open? until when?" takes for a policy of 10 windows and 5 freezes, against a bare zoneinfo call.

    .venv/bin/python scripts/bench_windows.py [--instants N] [--runs R] [--seed S]

Each run decides N random instants of 2027 (the expansion cache is warm after the first run, so the median
is the steady state of a long-running broker; the first run is shown as well).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from app.decision.intervals import Interval
from app.decision.ttl import bound_expiry
from app.decision.windows import (
    CronSchedule,
    OnceSchedule,
    WeeklySchedule,
    ZonedSchedule,
    clear_cache,
    next_freeze_start,
    next_opening,
    open_interval,
)

WEEKDAYS = frozenset(range(5))
YEAR_START = datetime(2027, 1, 1, tzinfo=UTC)

WINDOWS = [
    ZonedSchedule("berlin-office", "Europe/Berlin", WeeklySchedule(WEEKDAYS, clock(9), clock(16))),
    ZonedSchedule("berlin-night", "Europe/Berlin", WeeklySchedule(frozenset({5}), clock(22), clock(6))),
    ZonedSchedule("new-york", "America/New_York", WeeklySchedule(WEEKDAYS, clock(9), clock(17))),
    ZonedSchedule("kolkata", "Asia/Kolkata", WeeklySchedule(frozenset({0, 2, 4}), clock(10), clock(12, 30))),
    ZonedSchedule("lord-howe", "Australia/Lord_Howe", WeeklySchedule(frozenset({6}), clock(1), clock(3))),
    ZonedSchedule("friday-night", "Europe/Berlin", CronSchedule("0 22 * * 5", timedelta(hours=3))),
    ZonedSchedule("every-4h", "UTC", CronSchedule("0 */4 * * *", timedelta(minutes=30))),
    ZonedSchedule("nightly", "Europe/Berlin", CronSchedule("30 2 * * *", timedelta(hours=1))),
    ZonedSchedule(
        "launch",
        "UTC",
        OnceSchedule(datetime(2027, 6, 1, 6, tzinfo=UTC), datetime(2027, 6, 3, 18, tzinfo=UTC)),
    ),
    ZonedSchedule("sydney", "Australia/Sydney", WeeklySchedule(WEEKDAYS, clock(8), clock(18))),
]
FREEZES = [
    ZonedSchedule(
        "year-end",
        "UTC",
        OnceSchedule(datetime(2027, 12, 20, tzinfo=UTC), datetime(2028, 1, 4, tzinfo=UTC)),
    ),
    ZonedSchedule("wednesday-sync", "America/New_York", WeeklySchedule(frozenset({2}), clock(12), clock(13))),
    ZonedSchedule("month-start", "Europe/Berlin", CronSchedule("0 0 1 * *", timedelta(days=1))),
    ZonedSchedule("sunday", "UTC", WeeklySchedule(frozenset({6}), clock(0), clock(0))),
    ZonedSchedule("patch-tuesday", "America/Los_Angeles", CronSchedule("0 10 * * 2#2", timedelta(hours=8))),
]


def decide_open(t: datetime) -> Interval | None:
    return open_interval(WINDOWS, FREEZES, t)


def decide_fully(t: datetime) -> object:
    """What a grant or a denial needs: the expiry and its bound, or the next opening."""
    interval = open_interval(WINDOWS, FREEZES, t)
    if interval is None:
        return next_opening(WINDOWS, FREEZES, t)
    next_freeze = next_freeze_start(FREEZES, t, timedelta(days=35))
    return bound_expiry(t, timedelta(minutes=30), t + timedelta(hours=1), interval, next_freeze)


BERLIN = ZoneInfo("Europe/Berlin")


def convert(t: datetime) -> object:
    return t.astimezone(BERLIN)


def per_call_us(fn: Callable[[datetime], object], instants: Sequence[datetime]) -> float:
    began = time.perf_counter()
    for t in instants:
        fn(t)
    return (time.perf_counter() - began) / len(instants) * 1e6


def measure(name: str, fn: Callable[[datetime], object], instants: Sequence[datetime], runs: int) -> float:
    clear_cache()
    figures = [per_call_us(fn, instants) for _ in range(runs)]
    median = statistics.median(figures)
    shown = ", ".join(f"{f:.1f}" for f in figures)
    print(f"{name:<34} median {median:8.2f} µs  (runs: {shown}; first run fills the cache)")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instants", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2027)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    seconds_in_year = 365 * 86400
    instants = [YEAR_START + timedelta(seconds=rng.uniform(0, seconds_in_year)) for _ in range(args.instants)]
    opened = sum(decide_open(t) is not None for t in instants[:2000])
    print(f"{len(WINDOWS)} windows, {len(FREEZES)} freezes, {args.instants} instants in 2027", end=", ")
    print(f"{args.runs} runs each")
    print(f"(about {opened / min(2000, len(instants)):.0%} of the instants are open)")

    baseline = measure("bare zoneinfo conversion", convert, instants, args.runs)
    only_open = measure("open_interval", decide_open, instants, args.runs)
    full = measure("open_interval + expiry/next opening", decide_fully, instants, args.runs)
    print(f"ratio open_interval / zoneinfo: {only_open / baseline:.0f}x")
    print(f"ratio full decision / zoneinfo: {full / baseline:.0f}x")


if __name__ == "__main__":
    main()
