"""The broker's lease routes over HTTP (docs/API.md, "Leases"), each refusal turned into a ClientError."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from app.client.errors import ClientError, DenialReason, Denied, LeaseEnded, Unavailable, UsageError

TIMEOUT = (5.0, 60.0)  # connect, read: a grant waits on Vault, which the broker gives a few seconds
USER_AGENT = "transom-client/1"


@dataclass(frozen=True)
class LeaseView:
    """What the client needs from a lease response; ``raw`` is the response as the broker sent it."""

    id: str
    secret: str
    status: str
    expires_at: str
    ttl: int
    bounded_by: str | None
    data: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, body: Any) -> LeaseView:
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise Unavailable("the broker answered with something that is not a lease")
        data = body.get("data")
        return cls(
            id=body["id"],
            secret=str(body.get("secret", "")),
            status=str(body.get("status", "")),
            expires_at=str(body.get("expires_at", "")),
            ttl=int(body.get("ttl") or 0),
            bounded_by=body.get("bounded_by"),
            data=data if isinstance(data, dict) else None,
            raw=body,
        )

    def __repr__(self) -> str:  # never show data
        return f"LeaseView(id={self.id!r}, secret={self.secret!r}, status={self.status!r})"

    def ends_after(self, other: LeaseView) -> bool:
        """Whether this lease ends later than ``other``. Compared as instants, not as text: the broker writes
        fractions only when there are some, and "12:00:00.5Z" sorts before "12:00:00Z"."""
        mine, theirs = _instant(self.expires_at), _instant(other.expires_at)
        return mine is not None and theirs is not None and mine > theirs

    @property
    def until(self) -> str:
        """``expires_at`` to the second, for people (the README shows whole seconds)."""
        return to_the_second(self.expires_at)


@dataclass(frozen=True)
class ApprovalView:
    """A lease request that waits for people (``202``): what the client shows and polls."""

    id: str
    kind: str
    status: str
    secret: str
    required: int
    approvals: tuple[str, ...]
    approvers: tuple[str, ...]
    expires_at: str
    end_reason: str | None

    @classmethod
    def from_json(cls, body: Any) -> ApprovalView:
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise Unavailable("the broker answered with something that is not an approval request")
        approvals = [a.get("approver", "") for a in body.get("approvals") or [] if isinstance(a, dict)]
        return cls(
            id=body["id"],
            kind=str(body.get("kind", "")),
            status=str(body.get("status", "")),
            secret=str(body.get("secret", "")),
            required=int(body.get("required") or 0),
            approvals=tuple(str(a) for a in approvals),
            approvers=tuple(str(a) for a in body.get("approvers") or []),
            expires_at=str(body.get("expires_at", "")),
            end_reason=body.get("end_reason") if isinstance(body.get("end_reason"), str) else None,
        )


def to_the_second(instant: str) -> str:
    """``2026-12-01T10:00:00.123456Z`` as ``2026-12-01T10:00:00Z`` (cut, so an end is never overstated)."""
    head, dot, rest = instant.partition(".")
    return head + rest.lstrip("0123456789") if dot else instant


class BrokerClient:
    def __init__(self, base_url: str, session: requests.Session) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"the broker URL must start with http:// or https:// (got {base_url!r})")
        self.base_url = base_url.rstrip("/")
        self._session = session

    def request_lease(
        self,
        secret: str,
        token: str,
        *,
        ttl: str | None = None,
        idempotency_key: str | None = None,
        justification: str | None = None,
        approval: str | None = None,
    ) -> LeaseView | ApprovalView:
        """The lease, or (``202``) the approval request it waits for; ``approval`` claims an approved one."""
        body: dict[str, Any] = {"secret": secret}
        optional = {
            "ttl": ttl,
            "idempotency_key": idempotency_key,
            "justification": justification,
            "approval": approval,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        answer = self._call("POST", "/v1/leases", token, body, f"the lease of {secret!r}")
        if isinstance(answer, dict) and isinstance(answer.get("approval"), dict) and "id" not in answer:
            return ApprovalView.from_json(answer["approval"])
        return LeaseView.from_json(answer)

    def show_approval(self, request_id: str, token: str) -> ApprovalView:
        answer = self._call(
            "GET", f"/v1/approvals/{request_id}", token, None, f"approval request {request_id}"
        )
        return ApprovalView.from_json(answer)

    def renew_lease(self, lease_id: str, token: str, *, ttl: str | None = None) -> LeaseView:
        body = {"ttl": ttl} if ttl is not None else {}
        answer = self._call("POST", f"/v1/leases/{lease_id}/renew", token, body, f"renewing {lease_id}")
        return LeaseView.from_json(answer)

    def release_lease(self, lease_id: str, token: str) -> LeaseView:
        answer = self._call("POST", f"/v1/leases/{lease_id}/release", token, None, f"releasing {lease_id}")
        return LeaseView.from_json(answer)

    def show_lease(self, lease_id: str, token: str) -> LeaseView:
        return LeaseView.from_json(self._call("GET", f"/v1/leases/{lease_id}", token, None, lease_id))

    def _call(self, method: str, path: str, token: str, body: Any, what: str) -> Any:
        headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        try:
            response = self._session.request(
                method, self.base_url + path, json=body, headers=headers, timeout=TIMEOUT
            )
        except requests.RequestException as exc:
            raise Unavailable(
                f"{what}: cannot reach the broker at {self.base_url} ({type(exc).__name__})"
            ) from None
        if response.status_code in (200, 201, 202):
            try:
                return response.json()
            except ValueError:
                raise Unavailable(
                    f"{what}: the broker answered {response.status_code} without JSON"
                ) from None
        raise refusal(response, what)


def refusal(response: requests.Response, what: str) -> ClientError:
    """The ClientError for a non-success answer, with the problem's detail and every reason."""
    problem = _problem(response)
    status = response.status_code
    detail = str(problem.get("detail") or problem.get("title") or response.reason or "")
    reasons = tuple(_reasons(problem))
    headline = f"{what}: {detail} (HTTP {status})" if detail else f"{what}: HTTP {status}"
    if status in (401, 403):
        return Denied(f"{what} was denied: {detail} (HTTP {status})", reasons=reasons)
    if status in (400, 413, 415, 422):
        return UsageError(headline, lines=_field_errors(problem.get("errors")))
    if status == 409:
        return LeaseEnded(headline)
    if status == 429 or status >= 500:
        lines = [f"{r.code}: {r.message}" for r in reasons]
        if retry := response.headers.get("Retry-After"):
            lines.append(f"retry after {retry} s")
        return Unavailable(headline, lines=lines)
    return ClientError(headline)


def _problem(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reasons(problem: dict[str, Any]) -> list[DenialReason]:
    found = []
    for item in problem.get("reasons") or []:
        if isinstance(item, dict):
            policy = item.get("policy")
            found.append(
                DenialReason(
                    str(item.get("code", "")),
                    str(item.get("message", "")),
                    policy if isinstance(policy, str) else None,
                )
            )
    return found


def _field_errors(errors: Any, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        lines: list[str] = []
        for key, value in errors.items():
            lines.extend(_field_errors(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}"))
        return lines
    if isinstance(errors, list):
        return [f"{prefix}: {'; '.join(str(e) for e in errors)}"]
    return [f"{prefix}: {errors}"] if errors else []


def _instant(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
