"""What `transom apply` would change: the file validated, both sides normalized, the difference in order.

A file entry and the server's object are compared in one normalized form: each is read by the API's own
request schema (a server object, without its timestamps, is a valid request body), durations become
seconds, schedules take the calendar core's canonical form, and lists that are sets are sorted. Nothing
here talks to the server: :func:`validate` and :func:`make_plan` take what the server holds as data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from marshmallow import Schema, ValidationError

from app.admin.api_client import flatten_errors
from app.admin.config_file import KINDS, SINGULAR, Document, Entry
from app.decision import windows as cal
from app.freezes.schemas import FreezeRequestSchema
from app.issuers.schemas import IssuerRequestSchema
from app.policies.approval_rules import DEFAULT_TIMEOUT as DEFAULT_APPROVAL_TIMEOUT
from app.policies.schemas import PolicyRequestSchema
from app.policies.service import ALWAYS_WINDOW, DEFAULT_TTL_CAP
from app.secrets.schemas import SecretRequestSchema
from app.windows.schemas import WindowRequestSchema
from app.windows.service import RESERVED_NAMES

APPLY_ORDER = ("issuers", "secrets", "windows", "policies", "freezes")  # every reference points backwards
DELETE_ORDER = tuple(reversed(APPLY_ORDER))
SERVER_ONLY_FIELDS = ("created_at", "updated_at", "builtin")
KV_DEFAULT_MOUNT = "secret"  # the broker's default for a kv secret without a mount

Current = Mapping[str, Mapping[str, Mapping[str, Any]]]  # kind -> name -> the server's object


class InvalidFile(Exception):
    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = list(problems)


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    action: Literal["create", "update", "delete"]
    kind: str
    name: str
    body: dict[str, Any] | None = None  # what is sent: the entry as written (create, update)
    fields: tuple[FieldChange, ...] = ()

    @property
    def label(self) -> str:
        return f"{SINGULAR[self.kind]} {self.name}"


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]  # in the order they are applied
    unchanged: int
    kept: int = 0  # on the server, not in the file, left alone (no --prune)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)


@dataclass
class _Checked:
    canonical: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})


# --- normalized forms ---------------------------------------------------------------------------------------


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else value // timedelta(seconds=1)


def _set(values: Sequence[Any] | None) -> list[Any]:
    return sorted(dict.fromkeys(values or []))


def _schedule(data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return cal.schedule_to_dict(cal.parse_schedule(data["schedule"], data["timezone"]))
    except cal.ScheduleError as exc:
        raise ValidationError({exc.field: [exc.message]}) from None


def _issuer(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": data["name"],
        "issuer": data["issuer"],
        "flavor": data["flavor"],
        "audiences": _set(data["audiences"]),
        "jwks_uri": data.get("jwks_uri"),
        "leeway_seconds": data["leeway_seconds"],
        "claim_map": dict(sorted(data["claim_map"].items())) if data.get("claim_map") else None,
    }


def _secret(data: Mapping[str, Any]) -> dict[str, Any]:
    kind = data["kind"]
    if kind == "kv":
        keys = _set(data.get("keys")) or None
        return {"name": data["name"], "kind": kind, "mount": data.get("mount") or KV_DEFAULT_MOUNT,
                "path": data["path"], "keys": keys}  # fmt: skip
    if kind == "token":
        return {"name": data["name"], "kind": kind, "policies": _set(data["policies"]),
                "num_uses": data.get("num_uses") or 0}  # fmt: skip
    return {"name": data["name"], "kind": kind, "path": data["path"]}


def _window(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": data["name"], "timezone": data["timezone"], "schedule": _schedule(data)}


def _freeze(data: Mapping[str, Any]) -> dict[str, Any]:
    return {**_window(data), "policies": _set(data.get("policies")), "reason": data.get("reason") or ""}


def _policy(data: Mapping[str, Any]) -> dict[str, Any]:
    max_ttl: timedelta = data["max_ttl"]
    runners = data.get("runners") or {}
    events = data.get("events")
    repository_ids = data.get("repository_ids")  # strings already: the schema reads numbers as strings
    workflows, networks = data.get("workflows"), data.get("source_networks")  # networks in normal form
    return {
        "name": data["name"],
        "issuer": data["issuer"],
        "secrets": _set(data["secrets"]),
        "repositories": _set(data.get("repositories")),
        "branches": _set(data.get("branches")),
        "tags": _set(data.get("tags")),
        "require_protected_ref": bool(data.get("require_protected_ref")),
        "environments": _set(data.get("environments")),
        "runners": {
            "environments": _set(runners.get("environments")),
            "ids": _set(runners.get("ids")),
        },
        "events": None if events is None else _set(events),
        "repository_ids": None if repository_ids is None else _set(repository_ids),
        "require_protected_environment": bool(data.get("require_protected_environment")),
        "workflows": None if workflows is None else _set(workflows),
        "source_networks": None if networks is None else _set(networks),
        "windows": _set(data["windows"]),
        # Without a default_ttl the broker uses 15 minutes, or max_ttl when that is shorter.
        "default_ttl": _seconds(data.get("default_ttl") or min(DEFAULT_TTL_CAP, max_ttl)),
        "max_ttl": _seconds(max_ttl),
        "max_active": data.get("max_active"),
        "approval": _approval_rule(data.get("approval")),
        "break_glass": _approval_rule(data.get("break_glass")),
    }


def _approval_rule(rule: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``approval`` or ``break_glass`` with the broker's defaults filled in (a 30-minute timeout)."""
    if rule is None:
        return None
    shown = {
        "required": rule["required"],
        "approvers": _set(rule.get("approvers")),
        "timeout": _seconds(rule.get("timeout") or DEFAULT_APPROVAL_TIMEOUT),
    }
    if rule.get("max_ttl") is not None:
        shown["max_ttl"] = _seconds(rule["max_ttl"])
    return shown


_FORMS: dict[str, tuple[Callable[[], Schema], Callable[[Mapping[str, Any]], dict[str, Any]]]] = {
    "issuers": (IssuerRequestSchema, _issuer),
    "secrets": (SecretRequestSchema, _secret),
    "windows": (WindowRequestSchema, _window),
    "freezes": (FreezeRequestSchema, _freeze),
    "policies": (PolicyRequestSchema, _policy),
}


def normalize(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The normalized form of a file entry or a server object; ``ValidationError`` when it is invalid."""
    schema, form = _FORMS[kind]
    return form(schema().load(dict(body)))


def normalize_current(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """A server object in normalized form; one the schema would not read is compared as it is."""
    body = {k: v for k, v in obj.items() if k not in SERVER_ONLY_FIELDS}
    try:
        return normalize(kind, body)
    except (ValidationError, KeyError, TypeError):
        return body


# --- validation ---------------------------------------------------------------------------------------------


def validate(document: Document, current: Current, *, prune: bool) -> dict[str, dict[str, dict[str, Any]]]:
    """The file's objects in normalized form by kind and name, or ``InvalidFile`` with every problem.

    A reference must name an object of the file, or one on the server (without ``--prune``, which deletes
    what the file does not name).
    """
    checked = _Checked()
    problems: list[str] = []
    for entry in document.all():
        problems += _check_entry(entry, checked)
    problems += _check_unique_issuer_urls(checked)
    problems += _check_references(checked, current, prune=prune)
    if problems:
        raise InvalidFile(problems)
    return checked.canonical


def _check_entry(entry: Entry, checked: _Checked) -> list[str]:
    if not isinstance(entry.body, dict):
        return [f"{entry.label}: must be a table/mapping of fields"]
    try:
        canonical = normalize(entry.kind, entry.body)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return [f"{entry.label}: {path}: {message}" for path, message in flatten_errors(messages)]
    name = canonical["name"]
    if entry.kind == "windows" and name in RESERVED_NAMES:
        return [f"{entry.label}: the window name {name!r} is reserved by the broker ('always' is built in)"]
    earlier = checked.entries[entry.kind].get(name)
    if earlier is not None:
        return [f"{entry.label}: the name is used twice (also {earlier.kind}[{earlier.index}])"]
    checked.entries[entry.kind][name] = entry
    checked.canonical[entry.kind][name] = canonical
    return []


def _check_unique_issuer_urls(checked: _Checked) -> list[str]:
    problems = []
    seen: dict[str, str] = {}
    for name, issuer in checked.canonical["issuers"].items():
        if issuer["issuer"] in seen:
            entry = checked.entries["issuers"][name]
            problems.append(f"{entry.label}: issuer: {seen[issuer['issuer']]!r} already has the address")
        seen.setdefault(issuer["issuer"], name)
    return problems


def _check_references(checked: _Checked, current: Current, *, prune: bool) -> list[str]:
    def available(kind: str) -> set[str]:
        names = set(checked.canonical[kind])
        return names if prune else names | set(current.get(kind, {}))

    where = "in the file" if prune else "in the file or on the server"
    problems = []
    references = {
        "policies": (("issuer", "issuers"), ("secrets", "secrets"), ("windows", "windows")),
        "freezes": (("policies", "policies"),),
    }
    for kind, fields_ in references.items():
        for name, obj in checked.canonical[kind].items():
            entry = checked.entries[kind][name]
            for field_, target in fields_:
                names = [obj[field_]] if isinstance(obj[field_], str) else obj[field_]
                known = available(target) | ({ALWAYS_WINDOW} if target == "windows" else set())
                for missing in (n for n in names if n not in known):
                    problems.append(
                        f"{entry.label}: {field_}: no {SINGULAR[target]} named {missing!r} {where}"
                    )
    return problems


# --- the plan -----------------------------------------------------------------------------------------------


def make_plan(document: Document, current: Current, *, prune: bool) -> Plan:
    """Validate the file against what the server holds and list the changes in apply order."""
    desired = validate(document, current, prune=prune)
    bodies: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
    for entry in document.all():
        bodies[entry.kind][entry.body["name"]] = entry.body
    writes: list[Change] = []
    deletes: list[Change] = []
    unchanged = kept = 0
    for kind in APPLY_ORDER:
        now = {name: normalize_current(kind, obj) for name, obj in current.get(kind, {}).items()}
        for name, wanted in desired[kind].items():
            if name not in now:
                writes.append(Change("create", kind, name, bodies[kind][name]))
            elif changed := _changed_fields(now[name], wanted):
                writes.append(Change("update", kind, name, bodies[kind][name], changed))
            else:
                unchanged += 1
        for name in sorted(set(now) - set(desired[kind])):
            if prune:
                deletes.append(Change("delete", kind, name))
            else:
                kept += 1
    deletes.sort(key=lambda c: DELETE_ORDER.index(c.kind))
    return Plan(tuple(writes + deletes), unchanged, kept)


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(key, old.get(key), new.get(key))
        for key in dict.fromkeys([*new, *old])
        if old.get(key) != new.get(key)
    )


def plan_lines(plan: Plan) -> list[str]:
    """The plan as the terminal shows it: one line per change, updates with their changed fields."""
    lines = []
    for change in plan.changes:
        if change.action == "create":
            lines.append(f"  + create {change.label}")
        elif change.action == "delete":
            lines.append(f"  - delete {change.label}")
        else:
            lines.append(f"  ~ update {change.label}: {', '.join(f.field for f in change.fields)}")
            lines += [f"      {f.field}: {_shown(f.old)} -> {_shown(f.new)}" for f in change.fields]
    if not plan.changes:
        lines.append(f"No changes: {plan.unchanged} object(s) unchanged.")
    else:
        lines.append(
            f"Plan: {plan.count('create')} to create, {plan.count('update')} to update, "
            f"{plan.count('delete')} to delete, {plan.unchanged} unchanged."
        )
    if plan.kept:
        lines.append(
            f"{plan.kept} object(s) on the server are not in the file and are kept (--prune deletes them)."
        )
    return lines


def _shown(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."
