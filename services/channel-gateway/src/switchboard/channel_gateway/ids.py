"""Signed ids: conversation and message ids that any replica can verify without shared state."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid


class IdSigner:
    """Makes ids ``<prefix>-<uuid hex>.<signature>`` and checks them in constant time. The
    signature covers the owner (the token's subject), so an id is only valid for its owner."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._key = secret or secrets.token_bytes(32)

    def new(self, prefix: str, owner: str) -> str:
        body = f"{prefix}-{uuid.uuid4().hex}"
        return f"{body}.{self._sign(body, owner)}"

    def valid(self, value: str, prefix: str, owner: str) -> bool:
        body, dot, signature = value.rpartition(".")
        if not dot or not body.startswith(f"{prefix}-") or len(body) > 100:
            return False
        return hmac.compare_digest(signature, self._sign(body, owner))

    def _sign(self, body: str, owner: str) -> str:
        return hmac.new(self._key, f"{owner}\n{body}".encode(), hashlib.sha256).hexdigest()[:20]
