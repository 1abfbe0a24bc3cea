"""An ES256 token without ``jti`` obtains one lease, whichever of its two valid signatures it carries
(docs/API.md, "Authentication": single use keys on the signing input): security review, finding 6."""

from __future__ import annotations

import jwt

from tests.support.broker import Broker
from tests.support.ecdsa_forgery import malleate_es256
from tests.support.oidc_issuer import OMIT


def test_a_re_encoded_ecdsa_signature_does_not_obtain_a_second_lease(broker: Broker) -> None:
    token = broker.issuer.mint({"jti": OMIT}, alg="ES256")
    twin = malleate_es256(token)  # s -> n - s: another string, the same token
    public = broker.issuer.current_key("ES256").private_key.public_key()
    for each in (token, twin):
        jwt.decode(each, public, algorithms=["ES256"], audience=broker.issuer.audience)

    first = broker.request_lease("prod-vault-token", token)
    assert first.status_code == 201, first.get_json()
    second = broker.request_lease("prod-vault-token", twin)
    assert second.status_code == 401, second.get_json()
    assert [r["code"] for r in second.get_json()["reasons"]] == ["token_replayed"]
    assert "data" not in second.get_json()
