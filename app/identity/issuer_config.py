"""A registered token issuer as the identity layer needs it: pure data, validated when built.

The issuers feature (API, database row) turns its stored object into an :class:`IssuerConfig`; a config
that breaks these rules is refused here, at configuration time, not when the first token arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Literal, get_args

Flavor = Literal["github", "gitlab", "generic"]
FLAVORS: frozenset[str] = frozenset(get_args(Flavor))

MAX_LEEWAY_SECONDS = 300

# The normalized names a generic issuer's ``claim_map`` may map (docs/ARCHITECTURE.md, "Workload identity").
# ``branch`` and ``tag`` only serve to build the full ref when the token carries no ``ref`` claim
# (see app.identity.claims); the identity's branch and tag are always derived from the full ref.
CLAIM_MAP_KEYS: frozenset[str] = frozenset(
    {
        "subject",
        "repository",
        "repository_id",
        "ref",
        "ref_type",
        "branch",
        "tag",
        "ref_protected",
        "environment",
        "runner_environment",
        "runner_id",
        "pipeline_id",
        "run_attempt",
        "job_id",
        "actor",
        "event",
        "sha",
        "workflow",
        "environment_protected",
    }
)


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    name: str  # Transom's name for the issuer ("github"); lands in WorkloadIdentity.issuer
    issuer: str  # the exact ``iss`` URL tokens carry
    flavor: Flavor
    audiences: tuple[str, ...]
    jwks_uri: str | None = None  # None: discovered from {issuer}/.well-known/openid-configuration
    leeway_seconds: int = 30
    claim_map: Mapping[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        problems = config_problems(self)
        if problems:
            raise ValueError(f"invalid issuer config {self.name!r}: " + "; ".join(problems))
        object.__setattr__(self, "audiences", tuple(self.audiences))
        if self.claim_map is not None:
            object.__setattr__(self, "claim_map", MappingProxyType(dict(self.claim_map)))

    @property
    def leeway(self) -> timedelta:
        return timedelta(seconds=self.leeway_seconds)


def config_problems(config: IssuerConfig) -> list[str]:
    """Every rule the config breaks, as sentences (empty when it is valid)."""
    problems: list[str] = []
    if not isinstance(config.name, str) or not config.name:
        problems.append("name must be a non-empty string")
    if not isinstance(config.issuer, str) or not config.issuer:
        problems.append("issuer must be a non-empty URL")
    if config.flavor not in FLAVORS:
        problems.append(f"flavor must be one of {sorted(FLAVORS)}")
    audiences = config.audiences
    if isinstance(audiences, str) or not audiences or not all(isinstance(a, str) and a for a in audiences):
        problems.append("audiences must be a non-empty list of non-empty strings")
    if config.jwks_uri is not None and (not isinstance(config.jwks_uri, str) or not config.jwks_uri):
        problems.append("jwks_uri must be null or a URL")
    leeway = config.leeway_seconds
    if isinstance(leeway, bool) or not isinstance(leeway, int) or not 0 <= leeway <= MAX_LEEWAY_SECONDS:
        problems.append(f"leeway_seconds must be an integer in 0..{MAX_LEEWAY_SECONDS}")
    problems.extend(_claim_map_problems(config.flavor, config.claim_map))
    return problems


def _claim_map_problems(flavor: str, claim_map: Mapping[str, str] | None) -> list[str]:
    if claim_map is None:
        return ["the generic flavor requires a claim_map"] if flavor == "generic" else []
    if flavor != "generic":
        return [f"claim_map applies to the generic flavor only ({flavor} has a built-in map)"]
    problems: list[str] = []
    unknown = sorted(k for k in claim_map if k not in CLAIM_MAP_KEYS)
    if unknown:
        problems.append(f"claim_map has unknown keys {unknown}; allowed: {sorted(CLAIM_MAP_KEYS)}")
    bad = sorted(k for k, v in claim_map.items() if not isinstance(v, str) or not v)
    if bad:
        problems.append(f"claim_map values must be claim names (dots for nesting); bad: {bad}")
    return problems
