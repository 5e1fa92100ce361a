"""Who is calling: OAuth2 bearer tokens (JWT, PyJWT) on every route of the HTTP API and the
WebSocket.

Tokens are verified by :mod:`switchboard.common.auth`. Scopes: ``chat`` to talk to the
assistant, ``admin`` for the admin routes (and everything else).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from switchboard.channel_gateway.rejections import Rejected
from switchboard.common import auth as common_auth
from switchboard.common.auth import SCOPE_ADMIN, InvalidToken, Principal

SCOPE_CHAT = "chat"
__all__ = ["SCOPE_ADMIN", "SCOPE_CHAT", "Authenticator", "InvalidToken", "Principal", "requires"]


class Authenticator(common_auth.Authenticator):
    """The common token verifier, plus the gateway's answer to a refused token."""

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
