"""A CSV export of 100,000 events streams in flat memory: its peak stays far below what buffering needs."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.integration.audit.ledger_fill import fill, integrate
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import bearer
from tests.support.openbao import OpenBaoServer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EVENTS = 100_000
# The export is about 35 MiB; buffering it, or the ORM rows behind it (several times that), cannot fit.
PEAK_BOUND = 12 * 1024 * 1024


@pytest.fixture
def filled_app(postgres_url: str, openbao: OpenBaoServer) -> Iterator[Flask]:
    app = make_app(postgres_url, openbao)
    started = time.perf_counter()
    fill(rt(app).engine, EVENTS, chunk=10_000)
    integrate(rt(app).engine)  # every row then carries its position and leaf hash too
    print(f"\nfilled and integrated {EVENTS} events in {time.perf_counter() - started:.1f}s")
    yield app
    rt(app).engine.dispose()


def test_csv_export_of_100k_events_streams_in_flat_memory(filled_app: Flask) -> None:
    token = create_broker_token(filled_app, "auditor")
    client = filled_app.test_client()
    rows = 0
    size = 0
    tail = b""
    started = time.perf_counter()
    tracemalloc.start()
    try:
        response = client.get("/v1/audit/events?format=csv", headers=bearer(token), buffered=False)
        assert response.status_code == 200
        for chunk in response.response:
            size += len(chunk)
            rows += chunk.count(b"\n")
            tail = chunk
        response.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started

    events = EVENTS + 1  # and the token's own token.created
    assert rows == events + 1  # the header row; no value of these events holds a newline
    assert size > 2.5 * PEAK_BOUND, "the export must be much larger than the bound for the bound to mean much"
    assert peak < PEAK_BOUND, f"peak {peak / 2**20:.1f} MiB while streaming {size / 2**20:.0f} MiB"
    last_line = tail.decode().strip().splitlines()[-1]
    assert last_line.split(",")[0] == "1"  # newest first: the export ends with the first event
    print(f"\n{rows - 1} events, {size / 2**20:.0f} MiB in {elapsed:.1f}s, peak {peak / 2**20:.1f} MiB")
