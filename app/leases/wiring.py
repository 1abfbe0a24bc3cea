"""What views and pages need to reach the lease service (configuration views too, after a change)."""

from __future__ import annotations

from app.leases.denials import request_refusals
from app.leases.service import LeaseService
from app.ratelimit import app_limiter, client_address
from app.request_context import config_snapshot, db_session, runtime


def lease_service() -> LeaseService:
    rt = runtime()
    address = client_address()  # after TRANSOM_TRUSTED_PROXY_HOPS (the app factory's ProxyFix)
    refusals = request_refusals(address, app_limiter(), rt.clock)
    return LeaseService(
        db_session(),
        rt.vault,
        rt.clock,
        config=lambda _session: config_snapshot(),
        refusals=refusals,
        source_address=address,
        notify=rt.settings.notify_webhook_url is not None,
    )
