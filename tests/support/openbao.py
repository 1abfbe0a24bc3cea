"""A real OpenBao server for tests: ``bao server -dev`` on a free loopback port.

Dev mode keeps everything in memory and starts unsealed with KV v2 mounted at ``secret/``. Consequences:

- ``stop()`` then ``start()`` comes back on the SAME address with the same root token, but EMPTY: every
  mount, policy, token and lease is gone (``generation`` counts the starts, so fixtures can tell that their
  setup must be redone). Use it to simulate "Vault is down".
- ``pause()``/``resume()`` (SIGSTOP/SIGCONT) keep the state: the port still accepts connections, nothing
  answers. Use it, with a short client timeout, to simulate "Vault hangs".
- ``seal()``/``unseal()`` keep the state too: a sealed Vault answers 503.

The server's output goes to a log file (``log_path``), never to pytest's output. Starting, waiting for health
and stopping are ``transom dev``'s own (``app/devserver/openbao.py``); what is here is what tests add.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import hvac
import psycopg
from psycopg import sql

from app.devserver.openbao import (
    DevServerProcess,
    OpenBaoError,
    bao_binary,
    ledger_key_requests,
    spawn_dev_server,
    terminate,
    token_role_settings,
    wait_healthy,
)
from app.devserver.ports import free_port_pair
from app.vault.port import TOKEN_GUARD_HCL, TOKEN_GUARD_POLICY

DEPLOY_PROD_POLICY = "deploy-prod"
DEPLOY_PROD_HCL = """
path "secret/data/deploy/*" {
  capabilities = ["read"]
}
"""
TOKEN_ROLE = "transom-lease"  # the broker's default TRANSOM_VAULT_TOKEN_ROLE
TOKEN_ROLE_MAX_TTL = "24h"
DATABASE_MOUNT = "database"
DATABASE_CONNECTION = "transom-test-pg"
DATABASE_ROLE = "deployer"
DATABASE_ROLE_DEFAULT_TTL = 3600
DATABASE_ROLE_MAX_TTL = 7200
CREATE_ROLE_SQL = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"


class OpenBaoServer(DevServerProcess):
    def __init__(self, *, log_dir: Path | None = None, binary: str | None = None) -> None:
        super().__init__()
        self.binary = binary or bao_binary()
        self.port = free_port_pair()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.root_token = f"transom-test-{secrets.token_hex(12)}"
        # Tags the PostgreSQL roles this server's database engine creates, so cleanup finds only ours.
        self.tag = secrets.token_hex(3)
        self.generation = 0
        self.paused = False
        self._baseline_generation = -1
        self._baseline_pg: Mapping[str, Any] | None = None
        directory = log_dir or Path(tempfile.mkdtemp(prefix="openbao-"))
        self.log_path = directory / f"openbao-{self.port}.log"
        self._client: hvac.Client | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            raise RuntimeError("OpenBao is already running")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop(); appends across restarts
        self._process = spawn_dev_server(self.port, self.root_token, self._log, binary=self.binary)
        self.paused = False
        try:
            wait_healthy(self._process, self.addr, timeout, self.log_path)
        except OpenBaoError as exc:
            self.stop()
            raise OpenBaoError(f"{exc}:\n{self.log_tail()}") from None
        except BaseException:
            self.stop()
            raise
        self.generation += 1

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; by PID. All state is lost (dev mode)."""
        self._close_client()
        process, self._process = self._process, None
        if process is not None:
            if self.paused and process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a stopped process would not act on SIGTERM
            terminate(process, timeout)
        self.paused = False
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the port accepts connections but nothing answers; state is kept."""
        if self._process is None or not self.running:
            raise RuntimeError("OpenBao is not running")
        self._process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self._process is not None and self.paused:
            self._process.send_signal(signal.SIGCONT)
        self.paused = False

    def ensure_up(self) -> None:
        """Resume or (re)start as needed: what a fixture calls before handing the server to a test."""
        self.resume()
        if not self.running:
            self.stop()  # reap a dead process and close its log
            self.start()
        elif self.client().sys.read_seal_status()["sealed"]:
            self.unseal()

    def seal(self) -> None:
        self.client().sys.seal()

    def unseal(self) -> None:
        keys = re.findall(rb"Unseal Key: (\S+)", self.log_path.read_bytes())  # the log spans restarts
        if not keys:
            raise RuntimeError("no unseal key in the OpenBao log")
        self.client().sys.submit_unseal_key(keys[-1].decode())

    def __enter__(self) -> OpenBaoServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- clients -------------------------------------------------------------------------------------------

    def client(self) -> hvac.Client:
        """An hvac client with the root token; owned by the server, closed by ``stop()``."""
        if self._client is None:
            self._client = hvac.Client(url=self.addr, token=self.root_token, timeout=10)
        return self._client

    @contextlib.contextmanager
    def client_for(self, token: str) -> Iterator[hvac.Client]:
        """An hvac client acting as ``token``, closed on exit."""
        client = hvac.Client(url=self.addr, token=token, timeout=10)
        try:
            yield client
        finally:
            client.adapter.close()

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.adapter.close()
            self._client = None

    # -- setup helpers -------------------------------------------------------------------------------------

    def ensure_baseline(self, pg: Mapping[str, Any] | None) -> None:
        """Up, unsealed, and with the setup tests may rely on: KV v2 at ``secret/`` (dev mode's own), the
        ``deploy-prod`` policy, the token role ``transom-lease`` allowing it and, when ``pg`` is given, the
        database engine. Redone only after a (re)start, so tests must not change these; they may add their
        own mounts, roles and policies."""
        self.ensure_up()
        # Once given, the database engine stays part of the baseline: a test that restarts OpenBao and asks
        # for the baseline without ``pg`` must not leave it out for the tests after it.
        pg = pg if pg is not None else self._baseline_pg
        self._baseline_pg = pg
        if self._baseline_generation == self.generation:
            return
        self.write_policy(DEPLOY_PROD_POLICY, DEPLOY_PROD_HCL)
        self.write_token_role(TOKEN_ROLE, [DEPLOY_PROD_POLICY])
        self.create_ledger_key()
        if pg is not None:
            self.enable_database_engine(pg)
        self._baseline_generation = self.generation

    # -- writing configuration ---------------------------------------------------------------------------

    def write_policy(self, name: str, hcl: str) -> None:
        self.client().sys.create_or_update_policy(name=name, policy=hcl)

    def write_token_role(self, name: str, allowed_policies: list[str]) -> None:
        """The token role the broker issues ``token`` secrets through, and the guard policy it adds to every
        token (README, "Vault")."""
        self.write_policy(TOKEN_GUARD_POLICY, TOKEN_GUARD_HCL.read_text())
        self.client().write_data(
            f"auth/token/roles/{name}", data=token_role_settings(allowed_policies, TOKEN_ROLE_MAX_TTL)
        )

    def create_ledger_key(self) -> None:
        """The audit log's signing key, as `transom dev` creates it (transit at ``transit``, ed25519)."""
        if "transit/" not in self.client().sys.list_mounted_secrets_engines()["data"]:
            for method, path, body in ledger_key_requests():
                self.client().adapter.request(method, f"/v1/{path}", json=body)

    def write_kv(self, path: str, data: Mapping[str, Any], mount: str = "secret") -> None:
        self.client().secrets.kv.v2.create_or_update_secret(path=path, secret=dict(data), mount_point=mount)

    def enable_auth(self, method: str, path: str | None = None) -> None:
        """Enable an auth method unless it is mounted already."""
        mounted = self.client().sys.list_auth_methods()["data"]
        if f"{path or method}/" not in mounted:
            self.client().sys.enable_auth_method(method, path=path)

    def enable_database_engine(
        self,
        pg: Mapping[str, Any],
        *,
        default_ttl: int = DATABASE_ROLE_DEFAULT_TTL,
        max_ttl: int = DATABASE_ROLE_MAX_TTL,
    ) -> None:
        """Mount the database engine at ``database/`` on the local PostgreSQL, with the role ``deployer``.

        ``pg``: psycopg connection parameters (host, port, user, dbname). The server runs with trust auth, so
        the admin password Vault sends is ignored and any password a created role logs in with works too:
        tests prove credentials through ``pg_roles`` (existence, VALID UNTIL), not through a login.
        """
        client = self.client()
        if f"{DATABASE_MOUNT}/" not in client.sys.list_mounted_secrets_engines()["data"]:
            client.sys.enable_secrets_engine("database", path=DATABASE_MOUNT)
        host, port = pg.get("host", "127.0.0.1"), pg.get("port", 5432)
        user, dbname = pg.get("user", "postgres"), pg.get("dbname", "postgres")
        client.write_data(
            f"{DATABASE_MOUNT}/config/{DATABASE_CONNECTION}",
            data={
                "plugin_name": "postgresql-database-plugin",
                "connection_url": f"postgresql://{{{{username}}}}:{{{{password}}}}@{host}:{port}/{dbname}"
                "?sslmode=disable",
                "username": user,
                "password": "ignored-by-trust-auth",
                "allowed_roles": [DATABASE_ROLE],
                "username_template": f"{self.role_prefix}{{{{.RoleName}}}}-{{{{random 10}}}}",
                "verify_connection": True,
            },
        )
        client.write_data(
            f"{DATABASE_MOUNT}/roles/{DATABASE_ROLE}",
            data={
                "db_name": DATABASE_CONNECTION,
                "creation_statements": [CREATE_ROLE_SQL],
                "default_ttl": default_ttl,
                "max_ttl": max_ttl,
            },
        )

    @property
    def role_prefix(self) -> str:
        """The name prefix of the PostgreSQL roles this server's database engine creates."""
        return f"v-tt{self.tag}-"

    def drop_database_roles(self, pg: Mapping[str, Any]) -> int:
        """Drop the PostgreSQL roles this server created and did not revoke (a dev restart forgets them)."""
        with psycopg.connect(**pg, autocommit=True) as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (self.role_prefix,)
                )
            ]
            for name in names:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        return len(names)
