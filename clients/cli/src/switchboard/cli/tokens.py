"""Access tokens for a single installation: HS256 JWTs signed with the gateway's secret
(``SB_GATEWAY_JWT_SECRET``). With an identity provider, get tokens from it instead."""

from __future__ import annotations

import time

import jwt

ISSUER = "switchboard"
AUDIENCE = "switchboard-gateway"


def mint(
    secret: str, subject: str, scopes: list[str], *, ttl_s: int = 3600, issuer: str = ISSUER, audience: str = AUDIENCE
) -> str:
    now = int(time.time())
    claims = {"sub": subject, "scope": " ".join(scopes), "iss": issuer, "aud": audience, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm="HS256")
