"""The leases one ``transom lease`` invocation holds: obtain them, renew them in time, release them all.

Renewal follows the lease's own length: at about two thirds of the time granted (``ttl``, measured on this
machine's monotonic clock, so a skewed wall clock does not matter; earlier for short leases, see
``renew_after``), with a fresh ID token. A lease bounded by
its window, a freeze or the policy's ``max_ttl`` cannot be moved by a renewal, so it is not renewed; a denied
renewal (the broker then revokes the lease) stops renewing it; an unanswered one is tried again while time
remains.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.client.approval_wait import ApprovalWait, wait_for_approval
from app.client.broker import ApprovalView, BrokerClient, LeaseView
from app.client.errors import ClientError, Denied, LeaseEnded, Unavailable
from app.client.report import Reporter

RENEW_AT = 2 / 3
RENEW_MARGIN = 15.0  # seconds left for fetching a fresh ID token and the renewal itself
FIXED_BOUNDS = ("window", "freeze", "max_ttl")
RELEASE_ATTEMPTS = 3
RELEASE_BACKOFF = 0.5  # seconds, doubled after each unanswered attempt
RETRY_CAP = 30.0


@dataclass
class Held:
    lease: LeaseView
    token_index: int
    expires_mono: float
    renew_at: float | None = None
    ended: bool = False


class LeaseSet:
    def __init__(
        self,
        broker: BrokerClient,
        tokens: Callable[[int], str],
        report: Reporter,
        *,
        ttl: str | None = None,
        justification: str | None = None,
        approval_wait: ApprovalWait | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._broker = broker
        self._tokens = tokens
        self._report = report
        self._ttl = ttl
        self._justification = justification  # asks for break-glass (docs/API.md)
        self._approval_wait = approval_wait or ApprovalWait()
        self._monotonic = monotonic
        self._sleep = sleep
        self.held: list[Held] = []

    @property
    def leases(self) -> list[LeaseView]:
        return [held.lease for held in self.held]

    # --- obtaining -------------------------------------------------------------------------------------

    def acquire(
        self, secrets: Sequence[str], *, idempotency_key: str | None = None, stop: Callable[[], bool]
    ) -> bool:
        """Obtain a lease for each secret, in order; False when ``stop()`` turned true on the way.

        On any refusal the error propagates; the caller releases what was obtained.
        """
        for index, secret in enumerate(secrets):
            if stop():
                return False
            # The broker scopes a key to (workload, secret), so one key serves every secret of the job.
            answer = self._broker.request_lease(
                secret,
                self._tokens(index),
                ttl=self._ttl,
                idempotency_key=idempotency_key,
                justification=self._justification,
            )
            if isinstance(answer, ApprovalView):  # 202: people approve first, and we wait
                waited = wait_for_approval(
                    self._broker,
                    functools.partial(self._tokens, index),
                    self._report,
                    answer,
                    wait=self._approval_wait,
                    ttl=self._ttl,
                    monotonic=self._monotonic,
                    sleep=self._sleep,
                    stop=stop,
                )
                if waited is None:
                    return False
                answer = waited
            lease = answer
            now = self._monotonic()
            held = Held(lease, index, expires_mono=now + lease.ttl)
            self.held.append(held)
            self._report.info(f"leased {secret} as {lease.id}, until {lease.until} ({_bound(lease)})")
        return not stop()

    # --- renewing --------------------------------------------------------------------------------------

    def plan_renewals(self) -> None:
        for held in self.held:
            self._schedule(held, announce=True)

    def next_renewal(self) -> float | None:
        due = [held.renew_at for held in self.held if held.renew_at is not None and not held.ended]
        return min(due) if due else None

    def renew_due(self) -> None:
        now = self._monotonic()
        for held in self.held:
            if held.renew_at is not None and not held.ended and held.renew_at <= now:
                self._renew(held)

    def _schedule(self, held: Held, *, announce: bool = False) -> None:
        lease = held.lease
        if lease.bounded_by in FIXED_BOUNDS:
            held.renew_at = None
            if announce:
                self._report.info(
                    f"{lease.id} ends at {lease.until}, bounded by its {_bound_name(lease)}; "
                    "a renewal cannot move that, so it will not be renewed"
                )
            return
        held.renew_at = self._monotonic() + renew_after(lease.ttl) if lease.ttl > 0 else None

    def _renew(self, held: Held) -> None:
        lease = held.lease
        try:
            renewed = self._broker.renew_lease(lease.id, self._tokens(held.token_index), ttl=self._ttl)
        except Denied as denial:
            held.renew_at = None
            self._report.warning(f"the renewal of {lease.id} was refused; it will not be renewed again")
            self._report.refusal(denial)
            return
        except LeaseEnded:
            held.renew_at, held.ended = None, True
            self._report.warning(f"{lease.id} has already ended (released, expired or revoked)")
            return
        except Unavailable as exc:
            remaining = held.expires_mono - self._monotonic()
            if remaining <= 1:
                held.renew_at = None
                self._report.warning(f"{lease.id} could not be renewed ({exc.message}); it ends now")
                return
            held.renew_at = self._monotonic() + min(RETRY_CAP, remaining / 3)
            self._report.warning(f"{lease.id} could not be renewed yet ({exc.message}); trying again")
            return
        except ClientError as exc:
            held.renew_at = None
            self._report.warning(f"{lease.id} will not be renewed: {exc.message}")
            return
        moved = renewed.ends_after(lease)
        held.lease = renewed
        held.expires_mono = self._monotonic() + renewed.ttl
        if not moved:
            held.renew_at = None
            self._report.info(f"{lease.id} cannot be extended past {renewed.until} ({_bound(renewed)})")
            return
        self._report.info(f"renewed {lease.id} until {renewed.until} ({_bound(renewed)})")
        self._schedule(held, announce=True)

    # --- releasing -------------------------------------------------------------------------------------

    def release_all(self) -> bool:
        """Release every lease not known to have ended; True when each was released or had ended."""
        ok = True
        for held in self.held:
            if not held.ended:
                ok = self._release(held) and ok
        return ok

    def _release(self, held: Held) -> bool:
        lease = held.lease
        held.renew_at = None
        delay = RELEASE_BACKOFF
        for attempt in range(1, RELEASE_ATTEMPTS + 1):
            try:
                released = self._broker.release_lease(lease.id, self._tokens(held.token_index))
            except LeaseEnded:
                held.ended = True
                self._report.info(f"{lease.id} had already ended")
                return True
            except Unavailable as exc:
                if attempt == RELEASE_ATTEMPTS:
                    self._report.warning(
                        f"could not release {lease.id} ({exc.message}); it ends by itself at {lease.until}"
                    )
                    return False
                self._sleep(delay)
                delay *= 2
                continue
            except ClientError as exc:
                self._report.warning(
                    f"could not release {lease.id}: {exc.message}; it ends by itself at {lease.until}"
                )
                return False
            held.ended = True
            if released.status == "revoking":
                self._report.info(f"released {lease.id}; the broker is still revoking it at Vault")
            else:
                self._report.info(f"released {lease.id}")
            return True
        return False


def renew_after(ttl: float) -> float:
    """Seconds after a grant to renew: 2/3 of the lease, but early enough to leave ``RENEW_MARGIN`` for a
    token and the call, and never before a third of it (short leases)."""
    return max(ttl / 3, min(ttl * RENEW_AT, ttl - RENEW_MARGIN))


def _bound_name(lease: LeaseView) -> str:
    return {"max_ttl": "policy's max_ttl", "requested": "ttl"}.get(
        lease.bounded_by or "", lease.bounded_by or "ttl"
    )


def _bound(lease: LeaseView) -> str:
    return f"bounded by the {_bound_name(lease)}"
