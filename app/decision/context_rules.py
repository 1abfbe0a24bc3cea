"""The rules of a policy about the request's context beyond the repository and ref: which workflow asks
(``workflows``) and from which network (``source_networks``). Pure, as all of ``app/decision``: the client
address arrives as a value, already resolved through ``TRANSOM_TRUSTED_PROXY_HOPS`` by the caller.

Both are insider rules (their reasons reach only insiders, :mod:`app.decision.outsiders`). A workflow the
token does not state, and a client address that is missing or not an IP address, are unknown: a policy that
restricts the field denies (docs/ARCHITECTURE.md, "Workload identity").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from app.decision.identity import WorkloadIdentity
from app.decision.messages import listing, show
from app.decision.patterns import matches_any
from app.decision.policy_view import PolicyView
from app.decision.reasons import NETWORK_NOT_ALLOWED, WORKFLOW_NOT_ALLOWED, Reason

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(value: str | None) -> IPAddress | None:
    """``value`` as an IP address; ``None`` when absent or not an address (then it is unknown)."""
    if value is None:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def address_in_networks(address: IPAddress, networks: Iterable[str]) -> bool:
    """Whether ``address`` is in one of ``networks`` (CIDR strings). An IPv4-mapped IPv6 address
    (``::ffff:10.1.2.3``, what a dual-stack socket reports for an IPv4 client) is also its IPv4 address."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    for text in networks:
        network = ipaddress.ip_network(text, strict=False)
        if any(candidate.version == network.version and candidate in network for candidate in candidates):
            return True
    return False


def context_reasons(
    identity: WorkloadIdentity, policy: PolicyView, *, source_address: str | None
) -> list[Reason]:
    """Every context rule of ``policy`` the request fails; empty: all pass (or the policy sets none)."""
    return _check_workflow(identity, policy) + _check_network(source_address, policy)


def _check_workflow(identity: WorkloadIdentity, policy: PolicyView) -> list[Reason]:
    if policy.workflows is None:
        return []
    workflow = identity.workflow
    if workflow is not None and matches_any(policy.workflows, workflow):
        return []
    if workflow is None:
        message = f"the token states no workflow; allowed: {listing(policy.workflows)}"
    elif not policy.workflows:
        message = f"workflow {show(workflow)} is not allowed: this policy allows no workflows"
    else:
        message = f"workflow {show(workflow)} does not match any of: {listing(policy.workflows)}"
    return [Reason(WORKFLOW_NOT_ALLOWED, message, policy.name)]


def _check_network(source_address: str | None, policy: PolicyView) -> list[Reason]:
    if policy.source_networks is None:
        return []
    address = parse_address(source_address)
    if address is not None and address_in_networks(address, policy.source_networks):
        return []
    # The allowed networks are not named: the requester may hold a stolen token, and the list would tell
    # it where to go. Admins read them in the policy.
    if source_address is None:
        message = "no client address was given; this policy admits requests only from its source networks"
    elif address is None:
        message = f"client address {show(source_address)} is not an IP address; this policy requires one"
    else:
        message = f"client address {show(str(address))} is not in this policy's source networks"
    return [Reason(NETWORK_NOT_ALLOWED, message, policy.name)]
