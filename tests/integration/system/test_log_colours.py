"""Werkzeug colours its request lines (``transom dev``'s server); a log file must get them as plain text."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import requests

from tests.integration.conftest import make_app, rt
from tests.support.openbao import OpenBaoServer
from tests.support.server import serving


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _served_lines(database_url: str, vault: OpenBaoServer, stream: Any) -> None:
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)  # there before the app configures logging, as a deployment's would be
    try:
        app = make_app(database_url, vault)
        with serving(app) as url:
            assert requests.get(f"{url}/no-such-page", timeout=5).status_code == 404
            assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        rt(app).engine.dispose()
    finally:
        root.removeHandler(handler)
        handler.flush()


def test_request_lines_in_a_log_file_carry_no_colour_codes(
    database_url: str, vault: OpenBaoServer, tmp_path: Path
) -> None:
    log_file = tmp_path / "broker.log"
    with log_file.open("w") as stream:
        _served_lines(database_url, vault, stream)
    text = log_file.read_text()
    assert '"GET /no-such-page HTTP/1.1" 404' in text
    assert "\x1b[" not in text


def test_a_terminal_keeps_its_colours(database_url: str, vault: OpenBaoServer) -> None:
    terminal = Terminal()
    _served_lines(database_url, vault, terminal)
    assert "\x1b[33mGET /no-such-page" in terminal.getvalue()
