"""app.logs: one JSON or text line per event, with the request and lease context, never a credential."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from app.logs import LineFormatter, PlainUnlessTerminal, redact, request_id, use_line_format

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUifQ.c2lnbmF0dXJl"


def _logged(kind: str, message: str, *args: object, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    use_line_format(handler, kind)
    log = logging.getLogger("transom.test.lines")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning(message, *args, extra=extra)
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def test_a_json_line_parses_and_has_the_fields() -> None:
    token = request_id.set("req-123")
    try:
        out = _logged(
            "json", "lease %s issued", "L1", lease_id="L1", policy="deploy-prod", repository="acme/x"
        )
    finally:
        request_id.reset(token)
    assert out.count("\n") == 1
    line = json.loads(out)
    assert line["level"] == "WARNING"
    assert line["logger"] == "transom.test.lines"
    assert line["message"] == "lease L1 issued"
    assert line["request_id"] == "req-123"
    assert (line["lease_id"], line["policy"], line["repository"]) == ("L1", "deploy-prod", "acme/x")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])


def test_a_traceback_stays_on_one_json_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    use_line_format(handler, "json")
    log = logging.getLogger("transom.test.tb")
    log.propagate = False
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"bad header Bearer {JWT}")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert out.count("\n") == 1
    assert "RuntimeError" in json.loads(out)["message"]
    assert JWT not in out


def test_a_text_line_has_time_level_logger_and_request_id() -> None:
    token = request_id.set("req-9")
    try:
        out = _logged("text", "hello")
    finally:
        request_id.reset(token)
    assert re.fullmatch(r"\S+Z WARNING transom\.test\.lines request_id=req-9 hello\n", out)


@pytest.mark.parametrize(
    "secret",
    [
        "Bearer abc.def-123",
        "bearer trn_0123456789abcdef",
        "trn_AbC_123-xyz",
        JWT,
        "Authorization: Basic dXNlcjpwYXNz",
    ],
)
def test_credentials_are_redacted(secret: str) -> None:
    value = secret.split()[-1]
    assert value not in redact(f"rejected {secret} from 10.0.0.1")
    assert value not in _logged("json", "rejected %s", secret)
    assert value not in _logged("text", "rejected %s", secret)


def test_ordinary_text_is_left_alone() -> None:
    text = "lease 01HX for acme/payments on main: 3 revocation(s) failed"
    assert redact(text) == text


def test_colour_codes_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, "\x1b[33mGET /x\x1b[0m", None, None)
    for kind in ("json", "text"):
        plain = LineFormatter(kind, logging.StreamHandler(io.StringIO()))
        coloured = LineFormatter(kind, logging.StreamHandler(Terminal()))
        assert "\x1b[" not in plain.format(record) and "\\u001b" not in plain.format(record)
        assert "[33mGET" in coloured.format(record)
    foreign = PlainUnlessTerminal(logging.Formatter(), logging.StreamHandler(io.StringIO()))
    assert foreign.format(record) == "GET /x"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        LineFormatter("xml")
