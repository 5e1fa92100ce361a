"""Voice notes and pictures in, from any channel: checked, put in the media store, described.

A channel hands over the bytes it received (an HTTP upload, a Telegram or Feishu download);
what comes back is the message kind and an ``Attachment`` naming the stored bytes by their
hash (claim check, docs/media.md), ready for the inbound event. Only checked media are stored.
"""

from __future__ import annotations

import asyncio

from switchboard.channel_gateway.media_checks import MediaLimits, check
from switchboard.common.media import MediaStore
from switchboard.events.v1 import messages_pb2 as m


class MediaUploads:
    def __init__(self, store: MediaStore, limits: MediaLimits) -> None:
        self.store = store
        self.limits = limits

    async def take(self, data: bytes, file_name: str = "") -> tuple[m.MessageKind.ValueType, m.Attachment]:
        """(kind, attachment) of checked and stored media; raises Rejected with the reason."""
        # Decoding a voice note to check it is CPU work: off the event loop.
        checked = await asyncio.to_thread(check, data, self.limits)
        ref = await self.store.put(data, checked.mime_type)
        attachment = ref.attachment(file_name[:255])
        attachment.duration_ms = checked.duration_ms
        return checked.kind, attachment
