"""Linking a person's accounts across channels: offer, claim, confirm.

1. ``/link`` on account A (the person whose conversation is to be shared) offers a one-time
   code: 128 random bits, valid ``link_code_ttl_s``. The offer goes to the ``links`` topic,
   keyed by the code.
2. ``/link <code>`` on account B claims it. A person may claim at most
   ``link_claims_per_hour`` times an hour, right or wrong (a right claim leaves nothing to
   try again), so codes cannot be guessed even where they are short-lived and many.
3. Nothing is linked yet: A is asked, in its own conversation, whether B (named by its
   channel and id) may share it. ``/link allow <code>`` from A's person, and only from it,
   confirms; the link then goes back to ``resolve`` keyed by B's identity, which records it.
   A code whose claim was not confirmed expires with it; a code is used once.

Every step is audited: ``identity.link.offer``, ``.claim``, ``.lockout``, ``.refused`` and,
once ``resolve`` records it, ``identity.link``.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.intent_parser.config import Settings
from switchboard.intent_parser.handlers import Parser, language_of

COMMAND = re.compile(r"^\s*/link(?:@\w+)?(?:\s+(?P<allow>allow))?(?:\s+(?P<code>\S+))?\s*$", re.IGNORECASE)

# Headers of the parser's own records on its links and users topics.
LINK_OFFER = "switchboard.link.offer"  # person offering a code (value: person id)
LINK_EXPIRES = "switchboard.link.expires"  # unix seconds
LINK_CLAIM = "switchboard.link.claim"  # channel identity claiming a code
LINK_ALLOW = "switchboard.link.allow"  # person confirming the claim of its code
LINK_TO = "switchboard.link.to"  # person the claiming identity is now linked to

CLAIM_WINDOW_S = 3600


def new_code() -> str:
    """A one-time code: 128 random bits, 26 base32 letters and digits (lower case)."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


class Reply(Protocol):
    async def __call__(
        self, envelope: envelope_pb2.Envelope, message: m.InboundMessage, text: str, why: str = "", role: str = "reply"
    ) -> None: ...


Audit = Callable[..., Awaitable[None]]
Send = Callable[..., Awaitable[Any]]


def _pack(envelope: envelope_pb2.Envelope) -> str:
    return base64.b64encode(envelope.SerializeToString()).decode()


def _unpack(packed: str) -> tuple[envelope_pb2.Envelope, m.InboundMessage]:
    envelope = envelope_pb2.Envelope.FromString(base64.b64decode(packed))
    return envelope, envelope.inbound_message


def identity_of(envelope: envelope_pb2.Envelope, message: m.InboundMessage) -> str:
    """The sender's channel identity (``telegram:42``), or its conversation's when it has none."""
    return message.sender.user_id or f"conversation:{envelope.conversation_key}"


class Links:
    """The ``/link`` command (on the person's partition) and the ``links`` agent (on the code's)."""

    def __init__(
        self,
        settings: Settings,
        parser: Parser,
        codes: Any,  # the "codes" table: code -> offer (and its claim)
        send_link: Send,  # to the links topic
        send_user: Send,  # to the users topic (``resolve``)
        reply: Reply,
        audit: Audit,
    ) -> None:
        self._settings = settings
        self._parser = parser
        self._codes = codes
        self._send_link = send_link
        self._send_user = send_user
        self._reply = reply
        self._audit = audit

    async def command(
        self,
        envelope: envelope_pb2.Envelope,
        message: m.InboundMessage,
        person: str,
        context: dict[str, Any],
        language: str,
    ) -> bool:
        """Handle ``message`` if it is a /link command (the caller saves ``context``)."""
        match = COMMAND.match(message.text)
        if match is None:
            return False
        code, now = match["code"], sent_at(envelope)
        value = envelope.SerializeToString()
        if match["allow"]:
            if code is None:
                await self._reply(envelope, message, self._parser.reply("link.invalid", language), "command")
            else:
                await self._send_link(key=code.encode()[:64], value=value, headers=[(LINK_ALLOW, person.encode())])
            return True
        if code is None:
            code = new_code()
            expires = now + self._settings.link_code_ttl_s
            headers = [(LINK_OFFER, person.encode()), (LINK_EXPIRES, str(expires).encode())]
            await self._send_link(key=code.encode(), value=value, headers=headers)
            minutes = max(1, self._settings.link_code_ttl_s // 60)
            await self._reply(
                envelope, message, self._parser.reply("link.code", language, code=code, minutes=minutes), "command"
            )
            await self._audit(envelope, message, "identity.link.offer", "code offered", {}, m.OUTCOME_SUCCESS)
            return True
        claims = [t for t in context.get("link_claims", []) if now - t < CLAIM_WINDOW_S]
        if len(claims) >= self._settings.link_claims_per_hour:
            minutes = max(1, (min(claims) + CLAIM_WINDOW_S - now + 59) // 60)
            await self._reply(
                envelope, message, self._parser.reply("link.locked", language, minutes=minutes), "command"
            )
            await self._audit(
                envelope, message, "identity.link.lockout", f"{len(claims)} claims in the last hour: locked out", {}
            )
            return True
        context["link_claims"] = [*claims, now]
        identity = identity_of(envelope, message)
        await self._send_link(key=code.encode()[:64], value=value, headers=[(LINK_CLAIM, identity.encode())])
        return True

    async def handle(
        self, envelope: envelope_pb2.Envelope, message: m.InboundMessage, code: str, headers: dict
    ) -> None:
        """An offer, a claim or a confirmation of one code (records keyed by the code)."""
        if LINK_OFFER in headers:
            self._codes[code] = {
                "person": headers[LINK_OFFER].decode(),
                "expires": int(headers[LINK_EXPIRES]),
                "offer": _pack(envelope),
            }
            return
        offer = self._codes[code]
        language = language_of(message.text, "en") or "en"
        if not offer or offer["expires"] < sent_at(envelope):
            await self._refuse(envelope, message, language, "unknown or expired code")
            return
        if LINK_CLAIM in headers:
            await self._claimed(envelope, message, code, offer, headers[LINK_CLAIM].decode(), language)
            return
        if headers.get(LINK_ALLOW, b"").decode() != offer["person"] or "claim" not in offer:
            await self._refuse(envelope, message, language, "confirmed by another person, or before any claim")
            return
        del self._codes[code]
        claim, _ = _unpack(offer["claim"])
        await self._send_user(
            key=offer["claimant"].encode(),
            value=claim.SerializeToString(),
            headers=[(LINK_TO, offer["person"].encode())],
        )
        await self._reply(envelope, message, self._parser.reply("link.allowed", language), "command")

    async def _claimed(
        self,
        envelope: envelope_pb2.Envelope,
        message: m.InboundMessage,
        code: str,
        offer: dict[str, Any],
        claimant: str,
        language: str,
    ) -> None:
        """Keep the (latest) claim and ask the offering account to confirm it."""
        self._codes[code] = {**offer, "claimant": claimant, "claim": _pack(envelope)}
        offered, offer_message = _unpack(offer["offer"])
        who = f"{m.Channel.Name(message.channel).removeprefix('CHANNEL_').lower()} {claimant}"
        ask = self._parser.reply("link.ask", language_of(offer_message.text, "en") or "en", who=who, code=code)
        # In the offering conversation, as a new message of this claim's (its own ids).
        await self._reply(offered, offer_message, ask, "command", role=f"link.ask:{envelope.event_id}")
        await self._reply(envelope, message, self._parser.reply("link.wait", language), "command")
        await self._audit(
            envelope, message, "identity.link.claim", f"claimed; {offer['person']} asked", {}, m.OUTCOME_SUCCESS
        )

    async def _refuse(
        self, envelope: envelope_pb2.Envelope, message: m.InboundMessage, language: str, why: str
    ) -> None:
        await self._reply(envelope, message, self._parser.reply("link.invalid", language), "command")
        await self._audit(envelope, message, "identity.link.refused", why, {}, m.OUTCOME_FAILURE)


def sent_at(envelope: envelope_pb2.Envelope) -> int:
    """When the message was sent (unix seconds): the same answer when it is handled again."""
    return envelope.occurred_at.seconds or int(time.time())
