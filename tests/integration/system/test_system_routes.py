"""Health, readiness, OpenAPI and the problem+json shape of every error Flask itself raises."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.support.broker import bearer


def test_healthz_answers_without_credentials(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_reports_database_and_vault(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"database": "ok", "vault": "ok"}


def test_openapi_document_lists_every_route(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json["paths"]
    for path in (
        "/v1/issuers",
        "/v1/secrets",
        "/v1/windows",
        "/v1/freezes",
        "/v1/policies",
        "/v1/policies/{name}/evaluate",
        "/v1/leases",
        "/v1/leases/{lease_id}/renew",
        "/v1/leases/{lease_id}/release",
        "/v1/leases/revoke",
        "/v1/tokens",
    ):
        assert path in paths, path


def test_openapi_document_says_which_credential_each_route_takes(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert set(spec["components"]["securitySchemes"]) == {"brokerToken", "ciToken"}
    paths = spec["paths"]
    assert paths["/v1/leases"]["post"]["security"] == [{"ciToken": []}]
    assert paths["/v1/policies"]["post"]["security"] == [{"brokerToken": []}]
    assert paths["/v1/audit/events"]["get"]["security"] == [{"brokerToken": []}]
    assert {"ciToken": []} in paths["/v1/leases/{lease_id}"]["get"]["security"]
    assert "security" not in paths["/healthz"]["get"]


def test_openapi_document_describes_errors_as_problem_json(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    default = spec["components"]["responses"]["DEFAULT_ERROR"]
    assert list(default["content"]) == ["application/problem+json"]
    schema = default["content"]["application/problem+json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Problem"}


def _assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_unknown_route_is_problem_404(client: FlaskClient) -> None:
    _assert_problem(client.get("/v1/nothing-here"), 404)


def test_wrong_method_is_problem_405(client: FlaskClient) -> None:
    _assert_problem(client.patch("/healthz"), 405)


def test_body_over_64_kib_is_problem_413(client: FlaskClient, admin_token: str) -> None:
    body = '{"name": "' + "a" * 70_000 + '"}'
    response = client.post(
        "/v1/tokens", data=body, content_type="application/json", headers=bearer(admin_token)
    )
    _assert_problem(response, 413)


def test_non_json_body_is_problem_415(client: FlaskClient, admin_token: str) -> None:
    response = client.post(
        "/v1/tokens", data="name=x", content_type="text/plain", headers=bearer(admin_token)
    )
    _assert_problem(response, 415)


def test_malformed_json_is_problem_400(client: FlaskClient, admin_token: str) -> None:
    response = client.post(
        "/v1/tokens", data="{", content_type="application/json", headers=bearer(admin_token)
    )
    _assert_problem(response, 400)


def test_unknown_field_is_rejected_with_the_field_named(client: FlaskClient, admin_token: str) -> None:
    response = client.post(
        "/v1/tokens", json={"name": "x", "role": "auditor", "colour": "red"}, headers=bearer(admin_token)
    )
    body = _assert_problem(response, 400)
    assert "colour" in body["errors"]


def test_missing_credential_is_problem_401_with_reasons(client: FlaskClient) -> None:
    body = _assert_problem(client.get("/v1/tokens"), 401)
    assert "reasons" in body
