"""The canonical JSON of an audit event: the bytes its Merkle leaf hashes (docs/API.md, "Audit ledger")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Assigned when the event is integrated into the log, so not part of what the leaf commits to.
LOG_POSITION_FIELDS = frozenset({"index", "leaf_hash"})


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON with sorted keys, no white space and no ASCII escaping; NaN and infinities are refused."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode()


def event_leaf(event: Mapping[str, Any]) -> bytes:
    """The leaf of an event as the API shows it: its canonical JSON without `index` and `leaf_hash`."""
    return canonical_json({key: value for key, value in event.items() if key not in LOG_POSITION_FIELDS})
