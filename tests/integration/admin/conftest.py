"""The admin commands against a live broker: the test app served over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from app.cli import main
from tests.support.broker import bearer
from tests.support.server import serving


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


@dataclass
class Transom:
    """Runs `transom ...` as a user would, with TRANSOM_URL and TRANSOM_TOKEN set."""

    app: Flask
    url: str
    token: str
    tmp_path: Path

    def __call__(self, *args: str, input: str | None = None, env: dict[str, Any] | None = None) -> Result:
        environment = {"TRANSOM_URL": self.url, "TRANSOM_TOKEN": self.token, **(env or {})}
        result = CliRunner().invoke(main, list(args), env=environment, input=input, catch_exceptions=False)
        assert self.token not in result.output, "a command printed the broker token"
        return result

    def file(self, name: str, text: str) -> str:
        path = self.tmp_path / name
        path.write_text(text)
        return str(path)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = self.app.test_client().open(path, method=method, json=body, headers=bearer(self.token))
        return response.status_code, response.get_json(silent=True)

    def names(self, kind: str) -> set[str]:
        status, page = self.api("GET", f"/v1/{kind}?limit=500")
        assert status == 200, page
        return {item["name"] for item in page["items"]}


@pytest.fixture
def transom(app: Flask, live_url: str, admin_token: str, tmp_path: Path) -> Transom:
    return Transom(app, live_url, admin_token, tmp_path)
