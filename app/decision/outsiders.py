"""What a denied workload may learn: an outsider learns nothing of the configuration.

GitHub's issuer is shared by every repository on GitHub, so anyone can mint a token the broker verifies.
Full denial reasons would tell such a caller which secrets exist, the allowed repositories and environments,
the issuers' names and the windows with their next opening (issue 18, finding 5). So only an **insider** —
a workload whose issuer and repository (and repository id, where a policy lists ids) some policy allows, any
policy, not only those naming the secret — gets every reason; anyone else gets the single reason
``no_policy`` with a message that is the same whatever was asked (docs/API.md, "Leases").

Renewals are judged for insiders only (the renewing workload owns a lease a policy granted it), and the
admin's dry run shows every reason (admins may see the configuration): neither passes through here.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.decision.identity import WorkloadIdentity
from app.decision.identity_rules import admits_source
from app.decision.policy import Decision
from app.decision.policy_view import PolicyView
from app.decision.reasons import NO_POLICY, Reason

# Deliberately names nothing: not the secret, not a policy, not the issuer.
OUTSIDER_REASON = Reason(NO_POLICY, "no policy grants this request")


def is_insider(identity: WorkloadIdentity, policies: Iterable[PolicyView]) -> bool:
    """Whether some policy allows the workload's issuer and repository (name and, when listed, id)."""
    return any(admits_source(policy, identity) for policy in policies)


def for_requester(decision: Decision, identity: WorkloadIdentity, policies: Iterable[PolicyView]) -> Decision:
    """``decision`` as the requesting workload may see it: unchanged for a grant or an insider; for an
    outsider, a denial with only :data:`OUTSIDER_REASON`, whether or not the secret exists.

    ``policies``: every policy of the configuration (not only those naming the secret).
    """
    if decision.allowed or is_insider(identity, policies):
        return decision
    return Decision.denied([OUTSIDER_REASON])
