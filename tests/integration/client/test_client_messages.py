"""What the CI client says when something is off: a URL with /v1, a lease length out of range; what it keeps
(a renewal's length) and how it shows leases (a header, whole seconds)."""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.client.conftest import LiveBroker

LEASE_COMMANDS = ("exec", "request", "renew", "release", "show")


def test_a_url_ending_in_v1_says_what_the_url_should_look_like(live: LiveBroker) -> None:
    done = live.client(
        "lease", "request", "--secret", "prod-db-static", env=live.env(TRANSOM_URL=live.url + "/v1/")
    )

    assert done.returncode == 2
    assert f"without /v1: use '{live.url}'" in done.stderr
    assert live.leases() == []


@pytest.mark.parametrize("ttl", ["0", "0s", "4"])
def test_a_lease_length_below_the_minimum_names_the_range(live: LiveBroker, ttl: str) -> None:
    done = live.client("lease", "request", "--secret", "prod-db-static", "--ttl", ttl)

    assert done.returncode == 2
    assert "invalid duration" not in done.stderr
    assert "a lease lasts at least 5s" in done.stderr


def test_a_bare_number_of_seconds_is_a_lease_length(live: LiveBroker) -> None:
    done = live.client("lease", "request", "--secret", "prod-db-static", "--ttl", "90", "--format", "json")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["leases"][0]["ttl"] == 90


def test_renew_without_ttl_keeps_the_lease_length(live: LiveBroker) -> None:
    requested = live.client(
        "lease", "request", "--secret", "prod-db-static", "--ttl", "2m", "--format", "json"
    )
    assert requested.returncode == 0, requested.stderr
    lease_id = json.loads(requested.stdout)["leases"][0]["id"]

    renewed = live.client("lease", "renew", lease_id, "--format", "json")

    assert renewed.returncode == 0, renewed.stderr
    lease = json.loads(renewed.stdout)["leases"][0]
    assert lease["renewals"] == 1
    assert lease["ttl"] == 120  # not the policy's default_ttl of 15m


def test_show_prints_a_header_and_whole_seconds(live: LiveBroker) -> None:
    requested = live.client("lease", "request", "--secret", "prod-db-static", "--format", "json")
    lease_id = json.loads(requested.stdout)["leases"][0]["id"]

    shown = live.client("lease", "show", lease_id)

    assert shown.returncode == 0, shown.stderr
    header, row = shown.stdout.splitlines()
    assert header == "id\tsecret\tstatus\texpires_at\tbounded_by"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row.split("\t")[3])


def test_every_lease_command_names_its_url_setting_and_only_its_own_options(live: LiveBroker) -> None:
    for command in LEASE_COMMANDS:
        helped = live.client("lease", command, "--help")
        assert helped.returncode == 0, helped.stderr
        text = " ".join(helped.stdout.split())
        assert "--url URL" in text and "[env: TRANSOM_URL]" in text
        if command in ("renew", "release", "show"):
            assert "--secret" not in text, command
