"""`transom audit verify --key K [--state F]` and `transom audit prove ID --key K` against a live broker: the
signature, the log's growth since a saved checkpoint, an event's leaf and inclusion, all checked by the
command itself with the pinned key and without the server's packages (docs/API.md, "Audit ledger")."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from app.cli import main
from app.tlog import merkle, note
from tests.integration.conftest import create_broker_token, rt
from tests.support.broker import bearer
from tests.support.ledger import ORIGIN, settle_and_verify
from tests.support.server import serving

SERVER_MODULES = ("flask", "sqlalchemy", "alembic", "hvac", "apscheduler", "marshmallow", "werkzeug")


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


class Auditor:
    """Runs `transom audit ...` as an auditor would: TRANSOM_URL and TRANSOM_TOKEN set, the key pinned."""

    def __init__(self, app: Flask, url: str, tmp_path: Path) -> None:
        self.app = app
        self.url = url
        self.token = create_broker_token(app, "auditor", "auditor")
        self.state = tmp_path / "log.checkpoint"
        self._names = itertools.count(1)

    def key(self) -> str:
        response = self.app.test_client().get("/v1/audit/key", headers=bearer(self.token))
        assert response.status_code == 200, response.get_json()
        return str(response.get_json()["verifier_key"])

    def __call__(self, *args: str) -> Result:
        env = {"TRANSOM_URL": self.url, "TRANSOM_TOKEN": self.token}
        result = CliRunner().invoke(main, ["audit", *args], env=env, catch_exceptions=False)
        assert self.token not in result.output
        return result

    def record_events(self, count: int) -> None:
        for _ in range(count):
            create_broker_token(self.app, "auditor", f"person-{next(self._names)}")

    def settle(self) -> int:
        """Integrate every pending event and publish a checkpoint of them; the log's size."""
        runtime = rt(self.app)
        verification = settle_and_verify(runtime.sessions, runtime.ledger_signer)
        assert verification.ok, verification
        return verification.size

    def signed(self, size: int, root: bytes) -> str:
        """A checkpoint of any size and root, signed with the broker's real key (Vault transit)."""
        signer = rt(self.app).ledger_signer
        key = signer.signing_key()
        body = note.format_checkpoint(ORIGIN, size, root)
        return note.signed_note(body, ORIGIN, key.public_key, signer.sign(body.encode(), key))


@pytest.fixture
def auditor(app: Flask, live_url: str, tmp_path: Path) -> Auditor:
    return Auditor(app, live_url, tmp_path)


def test_verify_checks_the_signature_and_that_the_log_only_grew(auditor: Auditor) -> None:
    auditor.record_events(3)
    first_size = auditor.settle()
    key = auditor.key()

    first = auditor("verify", "--key", key, "--state", str(auditor.state))
    assert first.exit_code == 0, first.output
    assert f"ok: checkpoint of size {first_size}, root " in first.output
    assert "this one is the start" in first.output
    assert auditor.state.read_text().splitlines()[1] == str(first_size)

    auditor.record_events(5)
    second_size = auditor.settle()
    second = auditor("verify", "--key", key, "--state", str(auditor.state))
    assert second.exit_code == 0, second.output
    assert f"consistent with the saved checkpoint of size {first_size}" in second.output
    assert auditor.state.read_text().splitlines()[1] == str(second_size) != str(first_size)
    assert [p.name for p in auditor.state.parent.iterdir()] == [auditor.state.name]  # no temporary left

    unchanged = auditor("verify", "--key", key, "--state", str(auditor.state), "--server")
    assert unchanged.exit_code == 0, unchanged.output
    assert f"the broker recomputed {second_size} leaves" in unchanged.output


def test_a_saved_checkpoint_the_log_contradicts_fails_with_sizes_and_roots(auditor: Auditor) -> None:
    auditor.record_events(4)
    size = auditor.settle()
    key = auditor.key()
    other_root = merkle.leaf_hash(b"another history")
    cases = {
        "bigger": (auditor.signed(size + 3, other_root), f"the log shrank from {size + 3} to {size}"),
        "same size": (auditor.signed(size, other_root), f"two different roots for size {size}: "),
        "smaller": (
            auditor.signed(size - 2, other_root),
            f"the log was rewritten or forked: the checkpoint of size {size - 2} (root ",
        ),
    }
    for name, (saved, message) in cases.items():
        auditor.state.write_text(saved)
        result = auditor("verify", "--key", key, "--state", str(auditor.state))
        assert result.exit_code == 1, (name, result.output)
        assert message in result.stderr, (name, result.stderr)
        assert auditor.state.read_text() == saved, "a contradicted state file must be kept as evidence"
    assert f"is not a prefix of size {size} (root " in result.stderr


def test_verify_refuses_a_checkpoint_not_signed_by_the_pinned_key(auditor: Auditor) -> None:
    auditor.record_events(1)
    auditor.settle()
    impostor = note.verifier_key(ORIGIN, bytes(range(32)))
    result = auditor("verify", "--key", impostor)
    assert result.exit_code == 1
    assert "does not verify with the key transom/ledger+" in result.stderr

    auditor.state.write_text("not a checkpoint\n")
    saved = auditor("verify", "--key", auditor.key(), "--state", str(auditor.state))
    assert saved.exit_code == 1
    assert f"the checkpoint saved in {auditor.state} does not verify" in saved.stderr


@pytest.mark.parametrize(
    "key", ["transom/ledger", "transom/ledger+00000000+AQ==", "transom/ledger+zz+AAAA", ""]
)
def test_a_malformed_key_is_a_usage_error(auditor: Auditor, key: str) -> None:
    result = auditor("verify", "--key", key)
    assert result.exit_code == 2
    assert "Invalid value for '--key'" in result.stderr


def test_prove_recomputes_the_leaf_and_checks_its_inclusion(auditor: Auditor) -> None:
    auditor.record_events(6)
    size = auditor.settle()
    key = auditor.key()
    status, events = _events(auditor)
    assert status == 200 and len(events) == size
    for event in (events[0], events[size // 2], events[-1]):
        result = auditor("prove", str(event["id"]), "--key", key)
        assert result.exit_code == 0, result.output
        assert f"at position {event['index']}, included in the checkpoint of size {size}" in result.output


def test_prove_says_when_an_event_is_not_in_the_log_yet_or_unknown(auditor: Auditor) -> None:
    auditor.record_events(1)
    auditor.settle()
    auditor.record_events(1)  # after the last integration
    key = auditor.key()
    _, events = _events(auditor)
    pending = next(e for e in events if e["index"] is None)
    result = auditor("prove", str(pending["id"]), "--key", key)
    assert result.exit_code == 1
    assert f"event {pending['id']} is not integrated into the log yet" in result.stderr

    unknown = auditor("prove", "999999", "--key", key)
    assert unknown.exit_code == 1
    assert "(404)" in unknown.stderr and "no event with id 999999" in unknown.stderr


def test_prove_refuses_an_event_whose_content_changed_after_integration(auditor: Auditor) -> None:
    auditor.record_events(2)
    auditor.settle()
    _, events = _events(auditor)
    target = events[-1]["id"]
    with rt(auditor.app).engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # past the append-only trigger, as an intruder would be
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.exec_driver_sql(f"UPDATE audit_events SET action = 'token.forged' WHERE id = {target}")
    result = auditor("prove", str(target), "--key", auditor.key())
    assert result.exit_code == 1
    assert "the event's content does not match its leaf" in result.stderr


def test_the_auditors_commands_load_none_of_the_servers_packages(auditor: Auditor) -> None:
    auditor.record_events(2)
    auditor.settle()
    key = auditor.key()
    _, events = _events(auditor)
    for args in (
        ["verify", "--key", key, "--state", str(auditor.state)],
        ["prove", str(events[0]["id"]), "--key", key],
    ):
        loaded, code, output = _run_alone(auditor, ["audit", *args])
        assert code == 0, output
        assert loaded == [], f"transom audit {args[0]} loaded {loaded}"


def _events(auditor: Auditor) -> tuple[int, list[dict[str, object]]]:
    response = auditor.app.test_client().get("/v1/audit/events?limit=500", headers=bearer(auditor.token))
    items = response.get_json()["items"]
    return response.status_code, sorted(items, key=lambda e: e["id"])


def _run_alone(auditor: Auditor, args: list[str]) -> tuple[list[str], int, str]:
    """`transom ARGS` in a fresh interpreter: the server modules it loaded, its exit status, its output."""
    probe = f"""
import json, sys
from app.cli import main
try:
    main({args!r}, prog_name="transom")
    code = 0
except SystemExit as exc:
    code = exc.code or 0
print(json.dumps([[m for m in {list(SERVER_MODULES)!r} if m in sys.modules], code]))
"""
    env = {"TRANSOM_URL": auditor.url, "TRANSOM_TOKEN": auditor.token, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env, timeout=60
    )
    *output, last = done.stdout.strip().splitlines()
    loaded, code = json.loads(last)
    return loaded, code, "\n".join(output) + done.stderr
