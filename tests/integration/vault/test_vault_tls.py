"""The broker's Vault connection over TLS (``app/vault/transport.py``), against OpenBao serving HTTPS.

OpenBao's ``-dev-tls`` mode makes its own CA and a certificate for 127.0.0.1. The broker must refuse it while
that CA is not trusted (certifi's bundle, as ``requests`` did), trust it when named by ``verify`` or by
``REQUESTS_CA_BUNDLE``, and never send the broker's token to a server it has not verified.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import certifi
import pytest
from urllib3.exceptions import InsecureRequestWarning

from app.devserver.openbao import spawn_dev_server, terminate, wait_healthy
from app.vault.hvac_backend import HvacBackend
from app.vault.port import VaultUnavailable
from tests.support.processes import free_port

pytestmark = pytest.mark.vault


@dataclass(frozen=True)
class TlsVault:
    addr: str
    ca: Path
    root_token: str


@pytest.fixture(scope="module")
def tls_vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsVault]:
    certs = tmp_path_factory.mktemp("bao-tls")
    port, token, log_path = free_port(), str(uuid.uuid4()), certs / "bao.log"
    with log_path.open("wb") as log:
        process = spawn_dev_server(port, token, log, options=("-dev-tls", f"-dev-tls-cert-dir={certs}"))
        vault = TlsVault(f"https://127.0.0.1:{port}", certs / "vault-ca.pem", token)
        try:
            deadline = time.monotonic() + 30
            while not vault.ca.exists():  # written at start, before the listener answers
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)
            wait_healthy(process, vault.addr, 30, log_path, verify=str(vault.ca))
            yield vault
        finally:
            terminate(process, 10)


@pytest.fixture
def no_bundle_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_bundle_in_environment")
def test_an_untrusted_certificate_is_refused_before_any_token_is_sent(tls_vault: TlsVault) -> None:
    with (
        HvacBackend(tls_vault.addr, token=tls_vault.root_token, timeout=5) as backend,
        pytest.raises(VaultUnavailable) as caught,
    ):
        backend.health()

    assert caught.value.error_class == "connection_error"
    assert tls_vault.root_token not in str(caught.value)


@pytest.mark.usefixtures("no_bundle_in_environment")
def test_the_ca_named_by_verify_is_trusted(tls_vault: TlsVault) -> None:
    with HvacBackend(
        tls_vault.addr, token=tls_vault.root_token, timeout=5, verify=str(tls_vault.ca)
    ) as backend:
        backend.health()
        assert backend.call("GET", "auth/token/lookup-self")["data"]["id"] == tls_vault.root_token


def test_the_ca_named_by_requests_ca_bundle_is_trusted(
    tls_vault: TlsVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_vault.ca))
    with HvacBackend(tls_vault.addr, token=tls_vault.root_token, timeout=5) as backend:
        backend.health()


@pytest.mark.usefixtures("no_bundle_in_environment")
def test_a_ca_for_another_server_does_not_make_this_one_trusted(tls_vault: TlsVault, tmp_path: Path) -> None:
    """Any other CA file (here certifi's public roots, copied) leaves OpenBao's own CA untrusted."""
    other = tmp_path / "public-roots.pem"
    other.write_bytes(Path(certifi.where()).read_bytes())
    with (
        HvacBackend(tls_vault.addr, token=tls_vault.root_token, timeout=5, verify=str(other)) as backend,
        pytest.raises(VaultUnavailable) as caught,
    ):
        backend.health()
    assert caught.value.error_class == "connection_error"


@pytest.mark.usefixtures("no_bundle_in_environment")
def test_verification_turned_off_connects_to_any_certificate(tls_vault: TlsVault) -> None:
    """``verify=False`` (never the default; no setting offers it) does what it says, and warns each time."""
    with (
        HvacBackend(tls_vault.addr, token=tls_vault.root_token, timeout=5, verify=False) as backend,
        pytest.warns(InsecureRequestWarning),
    ):
        backend.health()
