"""What the configuration blueprints (issuers, secrets, windows, freezes, policies, tokens) share.

Every route of theirs is of one of a few kinds, and a kind always has the same method, the same roles
(admins change configuration, auditors read it too: docs/API.md, "Issuers, secrets, windows, freezes,
policies"), the same success status and the same documented problem answers. A named :class:`Preset` says
so once; each blueprint still writes out its routes, one decorated function each. A change that governs
leases commits first, then re-evaluates them (:func:`commit_then_reevaluate`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from flask_smorest import Blueprint
from marshmallow import Schema

from app.approvals.wiring import end_ungranted_requests
from app.auth import require_admin, require_reader
from app.leases.wiring import lease_service
from app.request_context import current_actor, db_session
from app.schemas import page_of, problem_responses

T = TypeVar("T")
View = Callable[..., Any]
SchemaArg = type[Schema] | Schema


@dataclass(frozen=True)
class Preset:
    """A kind of route: method, path (``None``: the route names it), roles, success status, and the problem
    statuses it documents (their meanings: ``app.schemas.PROBLEM_MEANINGS``)."""

    method: str
    path: str | None
    role: Callable[[View], View]
    status: int
    problems: tuple[int, ...]

    def without(self, *statuses: int) -> Preset:
        return replace(self, problems=tuple(s for s in self.problems if s not in statuses))

    def __call__(
        self,
        bp: Blueprint,
        answer: SchemaArg | None = None,
        *,
        path: str | None = None,
        body: SchemaArg | None = None,
        query: SchemaArg | None = None,
    ) -> Callable[[View], View]:
        """Route the view on ``bp``: ``answer`` under the success status, the problems documented; the JSON
        ``body`` or the ``query`` string loaded (a 400 when invalid); the caller's role checked first."""
        rule = path if path is not None else self.path
        if rule is None:
            raise TypeError(f"a {self.method} route of this kind names its path")

        def route(view: View) -> View:
            view = problem_responses(bp, *self.problems)(view)
            view = bp.response(self.status, answer)(view)
            if query is not None:
                view = bp.arguments(query, location="query", error_status_code=400)(view)
            if body is not None:
                view = bp.arguments(body, error_status_code=400)(view)
            return bp.route(rule, methods=[self.method])(self.role(view))  # type: ignore[no-any-return]

        return route


CREATED = Preset("POST", "", require_admin, 201, (400, 401, 403, 409, 413, 415, 503))
LISTED = Preset("GET", "", require_reader, 200, (400, 401, 403, 503))  # one page: query=PageQuerySchema
FETCHED = Preset("GET", "/<name>", require_reader, 200, (401, 403, 404, 503))
REPLACED = Preset("PUT", "/<name>", require_admin, 200, (400, 401, 403, 404, 409, 413, 415, 503))
DELETED = Preset("DELETE", "/<name>", require_admin, 204, (401, 403, 404, 409, 503))  # 409: still named
QUERIED = Preset("GET", None, require_reader, 200, (400, 401, 403, 404, 503))  # a read with a query string
EVALUATED = Preset("POST", None, require_admin, 200, (400, 401, 403, 404, 413, 415, 503))  # a dry run


def replacing(schema: type[Schema]) -> Schema:
    """A PUT body: the name may be left out (the path names the object)."""
    return schema(partial=("name",))


class Lister(Protocol):
    def __call__(self, *, limit: int, before_id: int | None) -> Sequence[Any]: ...


def paged(query: dict[str, Any], list_objects: Lister) -> dict[str, Any]:
    """One page of a configuration list, newest first (``query``: a loaded ``PageQuerySchema``)."""
    return page_of(query, lambda limit, before: list_objects(limit=limit, before_id=before))


def committed(result: T) -> T:
    """Commit the request's change (and its ledger event); answer ``result``."""
    db_session().commit()
    return result


def commit_then_reevaluate(result: T, *, policies: Set[str] | None) -> T:
    """Commit the change, then re-evaluate at once the active leases it governs: those under ``policies``
    (``None``: every policy; empty: none). Committed first, so that no lease ends because of a change that
    did not happen (docs/API.md: every change re-evaluates the leases it governs at once)."""
    committed(result)
    if policies is None or policies:
        lease_service().reevaluate_active_leases(
            policies=None if policies is None else set(policies), actor=current_actor()
        )
        end_ungranted_requests(policies=None if policies is None else set(policies))
    return result
