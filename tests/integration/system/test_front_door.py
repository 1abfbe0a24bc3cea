"""What a newcomer meets at the broker's address: ``/`` for browsers and programs, ``/docs``, the OpenAPI
document's schedules and other fields a client must know the shape of (issue 17)."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def test_a_browser_at_the_root_is_sent_to_the_pages(client: FlaskClient) -> None:
    response = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 302
    assert response.headers["Location"] == "/ui/"


def test_an_api_client_at_the_root_gets_where_things_are(client: FlaskClient) -> None:
    for accept in (None, "*/*", "application/json"):
        response = client.get("/", headers={"Accept": accept} if accept else {})
        assert response.status_code == 200 and response.mimetype == "application/json", accept
        assert response.get_json() == {
            "name": "transom",
            "pages": "/ui/",
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": "/healthz",
        }


def test_the_api_reference_is_served_whole_from_the_broker(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assets = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', page)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset  # same origin
        with client.get(asset) as fetched:
            assert fetched.status_code == 200, asset
            body = fetched.get_data(as_text=True)
        if asset.endswith(".css"):  # and what the stylesheets load is ours too
            css = body
            assert "data:" not in css and "http" not in re.sub(r"/\*.*?\*/", "", css, flags=re.S)
            for image in re.findall(r'url\("([^"]+)"\)', css):
                assert image.startswith("/"), image
                with client.get(image) as fetched:
                    assert fetched.status_code == 200, image
    assert "<script>" not in page and "style=" not in page

    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    sources = {source for value in policy.values() for source in value.split()}
    assert sources <= {"'self'", "'none'"}, sources
    assert client.get("/docs/swagger-ui/index.template.html").status_code == 404


def _schemas(client: FlaskClient) -> dict[str, Any]:
    schemas: dict[str, Any] = client.get("/openapi.json").get_json()["components"]["schemas"]
    return schemas


def test_the_openapi_document_describes_the_three_schedule_types(client: FlaskClient) -> None:
    schemas = _schemas(client)
    for request_schema in ("WindowRequest", "FreezeRequest"):
        one_of = schemas[request_schema]["properties"]["schedule"]["oneOf"]
        names = [ref["$ref"].rsplit("/", 1)[1] for ref in one_of]
        assert names == ["WeeklySchedule", "CronSchedule", "OnceSchedule"], request_schema
    kinds = {name: schemas[name]["properties"]["type"]["enum"] for name in names}
    assert kinds == {"WeeklySchedule": ["weekly"], "CronSchedule": ["cron"], "OnceSchedule": ["once"]}
    assert set(schemas["WeeklySchedule"]["required"]) == {"type", "days", "start", "end"}
    assert set(schemas["CronSchedule"]["required"]) == {"type", "cron", "duration"}
    assert set(schemas["OnceSchedule"]["required"]) == {"type", "start", "end"}
    assert schemas["WeeklySchedule"]["properties"]["days"]["items"]["enum"][0] == "mon"
    # Answers may also carry the built-in window's schedule.
    answered = schemas["Window"]["properties"]["schedule"]["oneOf"]
    assert {"$ref": "#/components/schemas/AlwaysSchedule"} in answered


def test_no_field_a_client_reads_is_left_untyped(client: FlaskClient) -> None:
    schemas = _schemas(client)
    runners = schemas["Policy"]["properties"]["runners"]
    assert set(runners["properties"]) == {"environments", "ids"}
    assert schemas["LeaseDetail"]["properties"]["renewable"]["type"] == "boolean"
    assert schemas["Issuer"]["properties"]["claim_map"]["additionalProperties"] == {"type": "string"}
    assert schemas["AuditEvent"]["properties"]["reasons"]["items"]["required"] == ["code", "message"]
