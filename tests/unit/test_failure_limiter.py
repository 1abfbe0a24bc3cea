"""The failure counter behind 429: windows, holding back, forgetting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.clock import FrozenClock
from app.ratelimit import FailureLimiter

WINDOW = timedelta(minutes=1)


def _limiter(limit: int = 3, max_clients: int = 100) -> tuple[FailureLimiter, FrozenClock]:
    clock = FrozenClock(datetime(2026, 12, 1, tzinfo=UTC))
    return FailureLimiter(limit, WINDOW, clock, max_clients=max_clients), clock


def test_held_back_from_the_limit_until_the_window_ends() -> None:
    limiter, clock = _limiter()
    for _ in range(2):
        limiter.record_failure("a")
    assert limiter.retry_after("a") is None
    limiter.record_failure("a")
    assert limiter.retry_after("a") == 60
    clock.advance(timedelta(seconds=45))
    assert limiter.retry_after("a") == 15
    clock.advance(timedelta(seconds=15))
    assert limiter.retry_after("a") is None


def test_failures_of_an_old_window_do_not_count() -> None:
    limiter, clock = _limiter()
    limiter.record_failure("a")
    limiter.record_failure("a")
    clock.advance(WINDOW)
    limiter.record_failure("a")
    assert limiter.retry_after("a") is None


def test_memory_is_bounded_by_forgetting_the_oldest_clients() -> None:
    limiter, _ = _limiter(limit=1, max_clients=10)
    for n in range(25):
        limiter.record_failure(f"client-{n}")
    assert limiter.retry_after("client-0") is None  # forgotten
    assert limiter.retry_after("client-24") == 60


def test_a_failure_counts_against_every_key_unless_one_is_already_held() -> None:
    limiter, _ = _limiter(limit=2)
    assert limiter.hold_or_count(["address a", "repository r"]) is None
    assert limiter.hold_or_count(["address b", "repository r"]) is None
    assert limiter.hold_or_count(["address c", "repository r"]) == 60  # the repository reached the limit
    assert limiter.retry_after("address c") is None  # a held request counts against nothing
