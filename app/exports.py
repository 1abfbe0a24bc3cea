"""Streamed CSV and JSON Lines exports in constant memory: rows are read and written in batches."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from flask import Response, stream_with_context

MIMETYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
# What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection"); docs/API.md, GET /v1/leases.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse_formula(text: str) -> str:
    """``text``, prefixed with ``'`` when a spreadsheet would run it as a formula.

    Repositories, refs, branches and pipeline ids come from ID tokens, including outsiders' refused ones, so
    every CSV cell goes through here; JSON and JSON Lines keep the values exactly.
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_cell(value: Any) -> Any:
    """One CSV cell: objects and lists as compact JSON, every text defused; empty stays empty."""
    if value is None:
        return None
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return defuse_formula(str(value))


def _render(rows: Iterable[dict[str, Any]], fmt: str, columns: Sequence[str]) -> Iterator[str]:
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: csv_cell(value) for key, value in row.items()})
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_response(
    rows: Callable[[], Iterable[dict[str, Any]]], fmt: str, columns: Sequence[str], filename: str
) -> Response:
    """A streamed download; ``rows`` is called inside the streaming context, so it may open a session."""
    body = stream_with_context(_render(rows(), fmt, columns))
    response = Response(body, mimetype=MIMETYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response
