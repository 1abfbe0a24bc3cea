"""`transom apply`: a declarative file made real through the API, idempotent, validated before any write."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import PROJECT_ROOT
from tests.integration.admin.conftest import Transom

FULL = """
[[issuers]]
name = "github"
issuer = "https://token.actions.githubusercontent.com"
flavor = "github"
audiences = ["https://transom.example.com"]

[[secrets]]
name = "prod-db-static"
kind = "kv"
path = "deploy/prod"

[[secrets]]
name = "prod-vault-token"
kind = "token"
policies = ["deploy-prod"]

[[windows]]
name = "weekdays"
timezone = "Europe/Berlin"
schedule = { type = "weekly", days = ["tue", "mon"], start = "09:00", end = "16:00" }

[[policies]]
name = "deploy-prod"
issuer = "github"
secrets = ["prod-db-static", "prod-vault-token"]
repositories = ["acme/payments"]
branches = ["main"]
windows = ["weekdays"]
max_ttl = 3600

[[policies]]
name = "nightly"
issuer = "github"
secrets = ["prod-db-static"]
repositories = ["acme/payments"]
branches = ["main"]
windows = ["always"]
max_ttl = "30m"

[[freezes]]
name = "year-end"
timezone = "Europe/Berlin"
schedule = { type = "once", start = "2030-12-21T00:00:00+01:00", end = "2031-01-04T00:00:00+01:00" }
policies = ["deploy-prod"]
reason = "year-end change freeze"
"""

EVERY_KIND = ("issuers", "secrets", "windows", "freezes", "policies")
LINES = FULL.splitlines()
NIGHTLY = LINES.index("[[policies]]", LINES.index('name = "deploy-prod"')) + 1  # its header's line
WEEKDAYS = LINES.index("[[windows]]") + 1


def _snapshot(transom: Transom) -> dict[str, list[dict[str, object]]]:
    return {kind: transom.api("GET", f"/v1/{kind}?limit=500")[1]["items"] for kind in EVERY_KIND}


def test_applying_a_file_twice_changes_nothing_the_second_time(transom: Transom) -> None:
    path = transom.file("transom.toml", FULL)
    first = transom("apply", "-f", path)
    assert first.exit_code == 0, first.output
    assert "Plan: 7 to create, 0 to update, 0 to delete, 0 unchanged." in first.output
    # Written in dependency order: what a policy names exists before it, a freeze comes after its policy.
    written = [line for line in first.output.splitlines() if line.startswith("created ")]
    assert written == [
        "created issuer github",
        "created secret prod-db-static",
        "created secret prod-vault-token",
        "created window weekdays",
        "created policy deploy-prod",
        "created policy nightly",
        "created freeze year-end",
    ]
    assert transom.api("GET", "/v1/policies/deploy-prod")[1]["windows"] == ["weekdays"]
    before = _snapshot(transom)

    second = transom("apply", "-f", path)
    assert second.exit_code == 0, second.output
    assert "No changes: 7 object(s) unchanged." in second.output
    assert _snapshot(transom) == before  # not even updated_at moved


def test_durations_compare_as_seconds_and_yaml_reads_the_same(transom: Transom) -> None:
    assert transom("apply", "-f", transom.file("a.toml", FULL)).exit_code == 0
    # The same objects in YAML, max_ttl spelled differently, lists in another order, times unquoted.
    yaml_text = """
issuers:
  - name: github
    issuer: https://token.actions.githubusercontent.com
    flavor: github
    audiences: [https://transom.example.com]
secrets:
  - {name: prod-db-static, kind: kv, path: deploy/prod, mount: secret}
  - {name: prod-vault-token, kind: token, policies: [deploy-prod], num_uses: 0}
windows:
  - name: weekdays
    timezone: Europe/Berlin
    schedule: {type: weekly, days: [mon, tue], start: 09:00, end: 16:00}
policies:
  - name: deploy-prod
    issuer: github
    secrets: [prod-vault-token, prod-db-static]
    repositories: [acme/payments]
    branches: [main]
    windows: [weekdays]
    max_ttl: 1h
    default_ttl: 15m
  - name: nightly
    issuer: github
    secrets: [prod-db-static]
    repositories: [acme/payments]
    branches: [main]
    windows: [always]
    max_ttl: 1800
freezes:
  - name: year-end
    timezone: Europe/Berlin
    schedule: {type: once, start: 2030-12-20T23:00:00Z, end: 2031-01-04T00:00:00+01:00}
    policies: [deploy-prod]
    reason: year-end change freeze
"""
    result = transom("apply", "-f", transom.file("same.yaml", yaml_text))
    assert result.exit_code == 0, result.output
    assert "No changes: 7 object(s) unchanged." in result.output


def test_a_changed_field_is_an_update_that_names_it(transom: Transom) -> None:
    assert transom("apply", "-f", transom.file("a.toml", FULL)).exit_code == 0
    changed = FULL.replace(
        'branches = ["main"]\nwindows = ["weekdays"]',
        'branches = ["main", "release/*"]\nwindows = ["weekdays"]',
    )
    assert changed != FULL
    result = transom("apply", "-f", transom.file("b.toml", changed))
    assert result.exit_code == 0, result.output
    assert "~ update policy deploy-prod: branches" in result.output
    assert 'branches: ["main"] -> ["main","release/*"]' in result.output
    assert "Plan: 0 to create, 1 to update, 0 to delete, 6 unchanged." in result.output
    assert transom.api("GET", "/v1/policies/deploy-prod")[1]["branches"] == ["main", "release/*"]


def test_prune_deletes_what_the_file_no_longer_names(transom: Transom) -> None:
    assert transom("apply", "-f", transom.file("a.toml", FULL)).exit_code == 0
    # Drop the freeze, the policy it names, the window only that policy uses, and the token secret.
    smaller = FULL.split("[[windows]]")[0].replace(
        '[[secrets]]\nname = "prod-vault-token"\nkind = "token"\npolicies = ["deploy-prod"]\n', ""
    ) + FULL.split("[[policies]]")[2].split("[[freezes]]")[0].join(["[[policies]]", ""])
    path = transom.file("smaller.toml", smaller)

    kept = transom("apply", "-f", path)
    assert kept.exit_code == 0, kept.output
    assert "No changes: 3 object(s) unchanged." in kept.output
    assert "4 object(s) on the server are not in the file and are kept (--prune deletes them)." in kept.output
    assert transom.names("freezes") == {"year-end"}

    dry = transom("apply", "-f", path, "--prune", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert transom.names("freezes") == {"year-end"}

    pruned = transom("apply", "-f", path, "--prune")
    assert pruned.exit_code == 0, pruned.output
    # Deleted in reverse dependency order: the freeze before the policy it names, that before its window.
    assert [line for line in pruned.output.splitlines() if line.startswith("deleted ")] == [
        "deleted freeze year-end",
        "deleted policy deploy-prod",
        "deleted window weekdays",
        "deleted secret prod-vault-token",
    ]
    assert {kind: transom.names(kind) for kind in EVERY_KIND} == {
        "issuers": {"github"},
        "secrets": {"prod-db-static"},
        "windows": set(),
        "freezes": set(),
        "policies": {"nightly"},
    }
    assert "No changes" in transom("apply", "-f", path, "--prune").output


def test_dry_run_prints_the_plan_and_changes_nothing(transom: Transom) -> None:
    result = transom("apply", "-f", transom.file("a.toml", FULL), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "(dry run)" in result.output
    assert "+ create policy deploy-prod" in result.output
    assert "created" not in result.output
    assert all(transom.names(kind) == set() for kind in EVERY_KIND)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        pytest.param(
            "broken.toml",
            FULL.replace('name = "nightly"', 'name = "nightly'),
            [f"broken.toml:{NIGHTLY + 1}:", f"TOML syntax error at line {NIGHTLY + 1}"],
            id="toml-syntax",
        ),
        pytest.param(
            "broken.yaml",
            "issuers:\n  - name: github\n    flavor: [github\nsecrets: []\n",
            ["broken.yaml:", "YAML syntax error at line"],
            id="yaml-syntax",
        ),
        pytest.param(
            "unknown.toml",
            FULL.replace('name = "nightly"', 'name = "nightly"\ncolour = "blue"'),
            [f'policy "nightly" (policies[1], line {NIGHTLY}): colour: Unknown field.'],
            id="unknown-field",
        ),
        pytest.param(
            "missing.toml",
            FULL.replace('max_ttl = "30m"\n', ""),
            [f'policy "nightly" (policies[1], line {NIGHTLY}): max_ttl: Missing data for required field.'],
            id="missing-field",
        ),
        pytest.param(
            "dangling.toml",
            FULL.replace(
                'secrets = ["prod-db-static"]\nrepositories', 'secrets = ["prod-db-statik"]\nrepositories'
            ),
            [
                f'policy "nightly" (policies[1], line {NIGHTLY}): '
                "secrets: no secret named 'prod-db-statik' in the file or on the server"
            ],
            id="dangling-reference",
        ),
        pytest.param(
            "schedule.toml",
            FULL.replace('start = "09:00"', 'start = "9:00"'),
            [f'window "weekdays" (windows[0], line {WEEKDAYS}): schedule.start: must be a local time HH:MM'],
            id="bad-schedule",
        ),
    ],
)
def test_an_invalid_file_changes_nothing_and_names_the_fault(
    transom: Transom, name: str, text: str, expected: list[str]
) -> None:
    result = transom("apply", "-f", transom.file(name, text))
    assert result.exit_code == 1, result.output
    for fragment in expected:
        assert fragment in result.output
    assert "nothing was changed" in result.output.lower()
    assert all(transom.names(kind) == set() for kind in EVERY_KIND)


def test_every_problem_of_a_file_is_listed(transom: Transom) -> None:
    text = FULL.replace('name = "nightly"', 'name = "nightly"\ncolour = "blue"').replace(
        'windows = ["weekdays"]', 'windows = ["weekdayz"]'
    )
    result = transom("apply", "-f", transom.file("two.toml", text))
    assert result.exit_code == 1
    assert "2 problem(s); nothing was changed" in result.output
    assert "windows: no window named 'weekdayz'" in result.output
    assert "colour: Unknown field." in result.output


def test_a_reference_to_an_object_on_the_server_is_fine_unless_pruning(transom: Transom) -> None:
    assert transom("apply", "-f", transom.file("a.toml", FULL)).exit_code == 0
    only_policy = "[[policies]]" + FULL.split("[[policies]]")[2].split("[[freezes]]")[0]
    path = transom.file("policy.toml", only_policy.replace('max_ttl = "30m"', 'max_ttl = "20m"'))
    pruning = transom("apply", "-f", path, "--prune")
    assert pruning.exit_code == 1
    assert "issuer: no issuer named 'github' in the file" in pruning.output
    assert transom.api("GET", "/v1/policies/nightly")[1]["max_ttl"] == 1800

    result = transom("apply", "-f", path)
    assert result.exit_code == 0, result.output
    assert transom.api("GET", "/v1/policies/nightly")[1]["max_ttl"] == 1200


def test_a_refusal_midway_stops_and_shows_the_servers_problem(transom: Transom) -> None:
    text = FULL.replace(
        "[[secrets]]",
        '[[issuers]]\nname = "plain"\nissuer = "http://ci.example.com"\nflavor = "gitlab"\n'
        'audiences = ["transom"]\n\n[[secrets]]',
        1,
    )
    result = transom("apply", "-f", transom.file("refused.toml", text))
    assert result.exit_code == 1
    assert "created issuer github" in result.output
    assert (
        "the broker refused to create issuer plain; stopped there (1 of 8 change(s) applied" in result.output
    )
    assert "issuer: must be https://" in result.output
    assert transom.names("issuers") == {"github"}
    assert transom.names("secrets") == set()


def test_the_example_file_applies_cleanly(transom: Transom) -> None:
    path = str(Path(PROJECT_ROOT) / "config" / "transom.example.toml")
    first = transom("apply", "-f", path)
    assert first.exit_code == 0, first.output
    assert "Plan: 9 to create" in first.output
    assert transom.names("issuers") == {"github", "gitlab"}
    assert transom.names("secrets") == {"prod-db-static", "prod-vault-token", "prod-db"}
    assert transom.names("policies") == {"deploy-prod", "gitlab-migrations"}
    assert "No changes: 9 object(s) unchanged." in transom("apply", "-f", path).output


def test_a_missing_token_is_a_usage_error(transom: Transom) -> None:
    result = transom("apply", "-f", transom.file("a.toml", FULL), env={"TRANSOM_TOKEN": None})
    assert result.exit_code == 2
    assert "TRANSOM_TOKEN is not set and no --token given" in result.output


def test_an_auditor_may_plan_but_not_apply(transom: Transom, auditor_token: str) -> None:
    path = transom.file("a.toml", FULL)
    dry = transom("apply", "-f", path, "--dry-run", env={"TRANSOM_TOKEN": auditor_token})
    assert dry.exit_code == 0, dry.output
    refused = transom("apply", "-f", path, env={"TRANSOM_TOKEN": auditor_token})
    assert refused.exit_code == 1
    assert "Forbidden (403)" in refused.output
    assert auditor_token not in refused.output
    assert transom.names("issuers") == set()
