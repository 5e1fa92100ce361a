"""Who is calling: OAuth2 bearer tokens (JWT, PyJWT) on every route of the HTTP API and the
WebSocket.

The gateway is a resource server: tokens come from an identity provider (verified with its
JWKS URL or public key) or, for a single installation, are signed with a shared secret
(HS256; ``switchboard token`` mints them). Issuer, audience and expiry are checked. Scopes
come from the standard ``scope`` claim (space-separated) or ``scp`` (a list): ``chat`` to
talk to the assistant, ``admin`` for the admin routes (and everything else).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import jwt
from fastapi import HTTPException, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from switchboard.channel_gateway.rejections import Rejected

SCOPE_CHAT = "chat"
SCOPE_ADMIN = "admin"


class InvalidToken(Exception):
    """The token is not one this gateway accepts (the message says why)."""


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or SCOPE_ADMIN in self.scopes


class Authenticator:
    """Verifies bearer tokens with exactly one of: a shared secret, a public key, a JWKS URL."""

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
    ) -> None:
        if sum(x is not None for x in (secret, public_key, jwks_url)) != 1:
            raise ValueError("configure exactly one of a JWT secret, public key or JWKS URL")
        self._issuer = issuer
        self._audience = audience
        self._secret = secret
        self._public_key = public_key
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None
        self._algorithms = algorithms or (["HS256"] if secret is not None else ["RS256", "ES256", "EdDSA"])
        self._leeway_s = leeway_s

    async def verify(self, token: str) -> Principal:
        try:
            if self._jwks is not None:  # the key set is fetched (and cached) off the event loop
                key: object = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
            else:
                key = self._secret if self._secret is not None else self._public_key
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
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
        return Principal(subject, frozenset(scopes))

    async def authorize(self, token: str, scope: str) -> Principal:
        """The caller behind ``token`` if it may use ``scope``; else Rejected with 401 (the
        token is not valid) or 403 (valid, without the scope)."""
        try:
            caller = await self.verify(token)
        except InvalidToken as exc:
            raise Rejected(status.HTTP_401_UNAUTHORIZED, f"invalid token: {exc}") from exc
        if not caller.allows(scope):
            raise Rejected(status.HTTP_403_FORBIDDEN, f"the token lacks the {scope!r} scope")
        return caller


_bearer = HTTPBearer(bearerFormat="JWT", auto_error=False, description="OAuth2 access token (JWT)")


def requires(auth: Authenticator, scope: str) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the caller, if its token is valid and carries ``scope``; else
    401 (no or bad token) or 403 (valid token, scope missing), with WWW-Authenticate."""

    async def principal(credentials: HTTPAuthorizationCredentials | None = Security(_bearer)) -> Principal:  # noqa: B008
        if credentials is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing bearer token (Authorization: Bearer <JWT>)",
                headers={"WWW-Authenticate": 'Bearer realm="switchboard"'},
            )
        try:
            return await auth.authorize(credentials.credentials, scope)
        except Rejected as exc:
            challenge = (
                'Bearer realm="switchboard", error="invalid_token"'
                if exc.status == status.HTTP_401_UNAUTHORIZED
                else f'Bearer error="insufficient_scope", scope="{scope}"'
            )
            raise HTTPException(exc.status, exc.detail, headers={"WWW-Authenticate": challenge}) from exc

    return principal
