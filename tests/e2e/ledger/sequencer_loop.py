"""A bare sequencer process for the kill -9 test: integrates the log's backlog in batches until the queue is
empty, then exits 0. Its connections carry ``application_name`` ``APPLICATION`` so the test can see, in
pg_stat_activity, when it is in the middle of a batch.

    python -m tests.e2e.ledger.sequencer_loop DATABASE_URL BATCH
"""

from __future__ import annotations

import sys

from sqlalchemy.engine import make_url

from app.audit.sequencer import integrate_batch
from app.clock import SystemClock
from app.db import make_engine, make_session_factory

APPLICATION = "transom-ledger-kill-test"


def main(database_url: str, batch: int) -> None:
    url = make_url(database_url).update_query_dict({"application_name": APPLICATION})
    engine = make_engine(url.render_as_string(hide_password=False), pool_size=1)
    sessions = make_session_factory(engine)
    clock = SystemClock()
    while integrate_batch(sessions, clock, limit=batch).pending_left:
        pass
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
