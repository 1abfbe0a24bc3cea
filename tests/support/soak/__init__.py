"""The soak: Transom as deployed, under mixed lease load for a long while, then audited end to end.

Two ``transom serve`` (gunicorn, 2 workers each) and two ``transom worker`` processes share one scratch
PostgreSQL database; a private OpenBao dev server (so no other test's tokens are in its inventory) runs the
database engine on the same PostgreSQL; the test OIDC issuer is registered as ``github``. A bounded pool of
client threads requests leases of three kinds (``kv``, ``token``, ``dynamic`` at ``database/creds/deployer``)
with TTLs of 5-30 s, each request to either API process at random, and follows a plan per lease: let it
expire, release it, renew then release or let expire, an admin revoke, or a renew/release sent at the very
instant it expires (the race with the workers, where 409 is a correct answer). One worker is SIGKILLed and
started again every ``kill_every`` seconds; every ``snapshot_every`` seconds OpenBao's live credentials are
compared with the database.

The load stops after ``duration`` seconds or ``leases`` lease requests; the workers then get until the last
expiry plus a claim timeout and a margin to end everything, and the checks run (``run._check``). The result
is a :class:`SoakReport` (``render()`` gives Markdown, ``ok`` the verdict). ``scripts/soak.py`` and the short
test both call :func:`run_soak`.

Secret values (tokens, passwords, kv values) stay in the clients' memory: nothing here prints or logs them.

The package follows the soak's parts: ``options`` (the knobs), ``cluster`` (the processes), ``load`` (the
clients), ``inventory`` (Vault against the database), ``rss`` (memory), ``checks``, ``report`` and ``run``.
"""

from tests.support.soak.options import SoakOptions
from tests.support.soak.report import SoakReport
from tests.support.soak.run import run_soak

__all__ = ["SoakOptions", "SoakReport", "run_soak"]
