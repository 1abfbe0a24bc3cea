"""Identical refusals within a window: the first is written at once, the rest become one counted summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.identity.workload import WorkloadIdentity
from app.leases.denials import DenialBursts, burst_key

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
EVENT = {"secret": "prod-db", "details": {"identity": {}}}


def test_the_first_is_written_and_the_rest_are_summarised_once_the_window_closes() -> None:
    bursts = DenialBursts(window=timedelta(minutes=1))
    assert bursts.note("k", "lease.denied", EVENT, START) is True
    bursts.opened("k", 41)
    assert [bursts.note("k", "lease.denied", EVENT, START + n * SECOND) for n in (1, 2, 3)] == [False] * 3
    assert bursts.take_due(START + 59 * SECOND) == []

    [summary] = bursts.take_due(START + 60 * SECOND)
    assert (summary.count, summary.first_event) == (3, 41)
    assert (summary.first_at, summary.last_at) == (START + SECOND, START + 3 * SECOND)
    assert bursts.take_due(START + 120 * SECOND) == []


def test_a_lone_refusal_has_no_summary_and_the_next_window_starts_afresh() -> None:
    bursts = DenialBursts(window=timedelta(minutes=1))
    assert bursts.note("k", "lease.denied", EVENT, START) is True
    assert bursts.note("k", "lease.denied", EVENT, START + 61 * SECOND) is True
    assert bursts.take_due(START + 200 * SECOND) == []


def test_memory_is_bounded_by_closing_the_oldest_burst_early() -> None:
    bursts = DenialBursts(window=timedelta(minutes=1), max_bursts=2)
    bursts.note("a", "lease.denied", EVENT, START)
    bursts.note("a", "lease.denied", EVENT, START + SECOND)
    bursts.note("b", "lease.denied", EVENT, START + SECOND)
    bursts.note("c", "lease.denied", EVENT, START + SECOND)  # "a" is closed to make room, its count kept
    [summary] = bursts.take_due(START + 2 * SECOND)
    assert summary.count == 1


def test_summaries_that_could_not_be_written_are_kept() -> None:
    bursts = DenialBursts(window=timedelta(minutes=1))
    bursts.note("k", "lease.denied", EVENT, START)
    bursts.note("k", "lease.denied", EVENT, START + SECOND)
    due = bursts.take_due(START + 60 * SECOND)
    bursts.put_back(due)
    assert bursts.take_due(START + 60 * SECOND) == due


def test_identical_means_same_identity_secret_and_reason_codes_not_messages() -> None:
    identity = WorkloadIdentity(issuer="github", repository="evil/outsider", pipeline_id="1")
    key = burst_key("lease.denied", identity, "prod-db", ["no_policy", "outside_window"])
    assert key == burst_key("lease.denied", identity, "prod-db", ["outside_window", "no_policy"])
    assert key != burst_key("lease.denied", identity, "other", ["no_policy", "outside_window"])
    other_run = WorkloadIdentity(issuer="github", repository="evil/outsider", pipeline_id="2")
    assert key != burst_key("lease.denied", other_run, "prod-db", ["no_policy", "outside_window"])
