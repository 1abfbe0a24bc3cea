"""The leaf of an audit event is its canonical JSON without its log position (docs/API.md, "Audit ledger"):
anyone holding the event as the API returned it recomputes the same bytes, whatever order its keys came in."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from app.tlog.canonical import canonical_json, event_leaf
from app.tlog.merkle import leaf_hash

REPOSITORY = Path(__file__).resolve().parents[3]

EVENT = {
    "id": 1041,
    "at": "2025-03-01T10:00:00Z",
    "action": "lease.granted",
    "actor": {"type": "ci", "id": "acme/payments@run-1234"},
    "secret": "prod-db",
    "reasons": [],
    "details": {"note": "déploiement — nuit", "b": 1, "a": None},
    "index": 1040,
    "leaf_hash": "ignored",
}


def test_canonical_json_sorts_keys_drops_white_space_and_keeps_unicode() -> None:
    assert (
        canonical_json({"b": [1, {"d": 2, "c": "é"}], "a": True})
        == '{"a":true,"b":[1,{"c":"é","d":2}]}'.encode()
    )


def test_the_leaf_leaves_out_the_log_position_and_nothing_else() -> None:
    leaf = event_leaf(EVENT)
    decoded = json.loads(leaf)
    assert set(decoded) == set(EVENT) - {"index", "leaf_hash"}
    assert leaf.startswith(b'{"action":"lease.granted","actor":{"id":"acme/payments@run-1234","type":"ci"}')
    assert "déploiement — nuit".encode() in leaf


def test_the_same_event_in_any_key_order_and_position_has_the_same_leaf_hash() -> None:
    shuffled = dict(reversed(list(EVENT.items())))
    shuffled["index"] = None
    shuffled["leaf_hash"] = None
    assert leaf_hash(event_leaf(shuffled)) == leaf_hash(event_leaf(EVENT))
    changed = {**EVENT, "secret": "prod-db2"}
    assert leaf_hash(event_leaf(changed)) != leaf_hash(event_leaf(EVENT))


def test_values_without_a_json_form_are_refused() -> None:
    with pytest.raises(ValueError):
        canonical_json({"ratio": math.nan})


def test_the_library_loads_nothing_but_the_standard_library() -> None:
    # The CI client and `transom audit verify` use app.tlog without the server's dependencies.
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import app.tlog.merkle, app.tlog.note, app.tlog.canonical\n"
        "print(' '.join(sorted(m.split('.')[0] for m in set(sys.modules) - before)))\n"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPOSITORY
        ).stdout.split()
    )
    assert loaded & {"flask", "sqlalchemy", "cryptography", "hvac", "requests"} == set()
    assert loaded - set(sys.stdlib_module_names) == {"app"}
