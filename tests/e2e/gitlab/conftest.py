from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.live_ci_broker import live_ci_broker
from tests.integration.client.conftest import LiveBroker
from tests.support.databases import SqliteDatabases
from tests.support.openbao import OpenBaoServer


@pytest.fixture
def live(sqlite_databases: SqliteDatabases, vault: OpenBaoServer, tmp_path: Path) -> Iterator[LiveBroker]:
    with live_ci_broker(sqlite_databases.fresh(), vault, tmp_path) as served:
        yield served
