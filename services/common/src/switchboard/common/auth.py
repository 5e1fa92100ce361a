"""Bearer tokens (JWT, PyJWT) as every Switchboard HTTP API checks them.

An API is a resource server: tokens come from an identity provider (verified with its
JWKS URL or public key) or, for a single installation, are signed with a shared secret
(HS256; ``switchboard token`` mints them). Issuer, audience and expiry are checked. Scopes
come from the standard ``scope`` claim (space-separated) or ``scp`` (a list), roles from
``roles`` (a list, as identity providers put them).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any, TypeVar

import jwt
from pydantic_settings import BaseSettings

from switchboard.common.config import Secret

SCOPE_ADMIN = "admin"


class InvalidToken(Exception):
    """The token is not one this gateway accepts (the message says why)."""


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str]
    roles: frozenset[str] = frozenset()
    expires_at: float = math.inf  # the token's ``exp`` (Unix seconds)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or SCOPE_ADMIN in self.scopes


class Authenticator:
    """Verifies bearer tokens with exactly one of: a shared secret, a public key, a JWKS URL.

    While a shared secret is rotated, tokens signed with the ``previous_secret`` are taken
    too (a JWKS rotates by listing the old and the new key, told apart by ``kid``)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        secret: str | None = None,
        public_key: str | None = None,
        jwks_url: str | None = None,
        algorithms: list[str] | None = None,
        leeway_s: float = 30,
        previous_secret: str | None = None,
    ) -> None:
        if sum(x is not None for x in (secret, public_key, jwks_url)) != 1:
            raise ValueError("configure exactly one of a JWT secret, public key or JWKS URL")
        if previous_secret is not None and secret is None:
            raise ValueError("a previous JWT secret is only for rotating a secret")
        self._issuer = issuer
        self._audience = audience
        self._secrets = [key for key in (secret, previous_secret) if key is not None]
        self._public_key = public_key
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None
        self._algorithms = algorithms or (["HS256"] if secret is not None else ["RS256", "ES256", "EdDSA"])
        self._leeway_s = leeway_s

    async def verify(self, token: str) -> Principal:
        try:
            if self._jwks is not None:  # the key set is fetched (and cached) off the event loop
                keys: list[object] = [(await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key]
            else:
                keys = list(self._secrets) or [self._public_key]
            claims = self._decode(token, keys)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        scopes = claims.get("scope") or claims.get("scp") or ""
        if isinstance(scopes, str):
            scopes = scopes.split()
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise InvalidToken("scope claim must be a space-separated string or a list of strings")
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= 128:
            raise InvalidToken("sub must be a string of 1 to 128 characters")
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidToken("roles claim must be a list of strings")
        return Principal(subject, frozenset(scopes), frozenset(roles), float(claims["exp"]))

    def _decode(self, token: str, keys: list[object]) -> dict[str, Any]:
        """The claims of ``token``, verified with the first of ``keys`` its signature matches."""
        error: jwt.PyJWTError = jwt.InvalidKeyError("no key to verify with")
        for key in keys:
            try:
                return jwt.decode(
                    token,
                    key,  # type: ignore[arg-type]
                    algorithms=self._algorithms,
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway_s,
                    options={"require": ["exp", "sub", "iss", "aud"]},
                )
            except jwt.InvalidSignatureError as exc:
                error = exc
        raise error


A = TypeVar("A", bound=Authenticator)


class TokenSettings(BaseSettings):
    """How a service's HTTP API verifies bearer tokens (``<PREFIX>JWT_*``): one of a shared
    secret (HS256; ``switchboard token`` mints tokens with it), an identity provider's
    public key (PEM) or its JWKS URL. Each service sets its own ``jwt_audience``."""

    jwt_secret: Secret | None = None
    # While the secret is rotated: the one it replaces, still taken until its tokens expire.
    jwt_previous_secret: Secret | None = None
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str = "switchboard"
    jwt_audience: str = "switchboard"
    jwt_algorithms: list[str] | None = None

    def token_keys(self) -> list[str]:
        """The ways to verify tokens that are set (empty values count as unset)."""
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
        return [key for key in (secret, self.jwt_public_key, self.jwt_jwks_url) if key]

    def authenticator(self, kind: type[A]) -> A | None:
        """A ``kind`` verifying tokens as configured; None if nothing is."""
        if not self.token_keys():
            return None
        return kind(
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            secret=(self.jwt_secret.get_secret_value() if self.jwt_secret else "") or None,
            public_key=self.jwt_public_key or None,
            jwks_url=self.jwt_jwks_url or None,
            algorithms=self.jwt_algorithms,
            previous_secret=self.jwt_previous_secret.get_secret_value() if self.jwt_previous_secret else None,
        )
