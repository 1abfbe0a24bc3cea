"""The broker's Vault connection over TLS (``app/vault/transport.py``), against OpenBao serving HTTPS.

OpenBao's ``-dev-tls`` mode makes its own CA and a certificate for 127.0.0.1. The broker must refuse it while
that CA is not trusted (certifi's bundle, as ``requests`` did), trust it when named by ``verify`` or by
``REQUESTS_CA_BUNDLE``, and never send the broker's token to a server it has not verified.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import certifi
import pytest
import requests
from urllib3.exceptions import InsecureRequestWarning

from app.devserver.openbao import bao_binary
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
    port, token = free_port(), str(uuid.uuid4())
    log = (certs / "bao.log").open("wb")
    process = subprocess.Popen(
        [
            bao_binary(),
            "server",
            "-dev",
            "-dev-no-store-token",
            "-dev-tls",
            f"-dev-tls-cert-dir={certs}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "BAO_DEV_ROOT_TOKEN_ID": token},
    )
    vault = TlsVault(f"https://127.0.0.1:{port}", certs / "vault-ca.pem", token)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if (
                    vault.ca.exists()
                    and requests.get(f"{vault.addr}/v1/sys/health", verify=vault.ca, timeout=2).ok
                ):
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None, (certs / "bao.log").read_text()
            assert time.monotonic() < deadline, "OpenBao did not serve TLS in time"
            time.sleep(0.1)
        yield vault
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


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
