"""IssuerConfig validation and the identity error types."""

from __future__ import annotations

from typing import Any

import pytest

from app.decision.reasons import BAD_SIGNATURE, ISSUER_UNAVAILABLE
from app.identity.errors import IssuerUnavailable, TokenRejected
from app.identity.issuer_config import IssuerConfig

VALID: dict[str, Any] = {
    "name": "github",
    "issuer": "https://token.actions.githubusercontent.com",
    "flavor": "github",
    "audiences": ("https://transom.example.com",),
    "jwks_uri": None,
    "leeway_seconds": 30,
    "claim_map": None,
}


def test_a_valid_config() -> None:
    config = IssuerConfig(**VALID)
    assert config.leeway.total_seconds() == 30
    assert hash(config) == hash(IssuerConfig(**VALID))


@pytest.mark.parametrize(
    "change",
    [
        {"name": ""},
        {"issuer": ""},
        {"flavor": "jenkins"},
        {"audiences": ()},
        {"audiences": "https://transom.example.com"},
        {"audiences": ("",)},
        {"leeway_seconds": -1},
        {"leeway_seconds": 301},
        {"leeway_seconds": True},
        {"leeway_seconds": 1.5},
        {"jwks_uri": ""},
        {"claim_map": {"repository": "repo"}},  # github has a built-in map
        {"flavor": "generic"},  # generic needs one
        {"flavor": "generic", "claim_map": {"nonsense": "x"}},
        {"flavor": "generic", "claim_map": {"repository": ""}},
        {"flavor": "generic", "claim_map": {"repository": 7}},
    ],
)
def test_invalid_configs_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        IssuerConfig(**(VALID | change))


def test_generic_claim_map_is_frozen_and_lists_become_tuples() -> None:
    source = {"repository": "ctx.repo", "branch": "git.branch", "tag": "git.tag"}
    config = IssuerConfig(**(VALID | {"flavor": "generic", "claim_map": source, "audiences": ["a", "b"]}))
    source["repository"] = "changed"
    assert config.claim_map is not None and config.claim_map["repository"] == "ctx.repo"
    with pytest.raises(TypeError):
        config.claim_map["ref"] = "x"  # type: ignore[index]
    assert config.audiences == ("a", "b")


def test_token_rejected_carries_its_code() -> None:
    error = TokenRejected(BAD_SIGNATURE, "the signature does not verify")
    assert (error.code, error.message) == (BAD_SIGNATURE, "the signature does not verify")
    assert error.reason().to_dict() == {"code": BAD_SIGNATURE, "message": "the signature does not verify"}
    with pytest.raises(ValueError):
        TokenRejected("outside_window", "not a token problem")


def test_issuer_unavailable_carries_the_issuer() -> None:
    error = IssuerUnavailable("github", "HTTP 503")
    assert (error.code, error.issuer_name, error.message) == (ISSUER_UNAVAILABLE, "github", "HTTP 503")
    assert error.reason().code == ISSUER_UNAVAILABLE
