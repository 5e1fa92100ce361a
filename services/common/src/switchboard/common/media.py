"""Media held outside Kafka (the claim check): voice notes, pictures and spoken replies.

The bytes go to an S3 bucket under their SHA-256 (``sha256/<hex>``); an event carries only an
``Attachment`` with that reference, the hash, the size and the media type. Whoever reads the
event fetches the bytes with :meth:`MediaStore.get`, which checks the hash: a reference can
be copied anywhere, but only the bytes that made it come back. The same bytes stored twice
are one object. :meth:`MediaStore.expire` deletes what is older than the retention.

Any S3 API serves: the local stack's versitygw, MinIO, Ceph or a cloud bucket. The client is
aiobotocore (botocore's requests and signing, asyncio I/O).
"""

from __future__ import annotations

import base64
import hashlib
import re
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError
from pydantic import BaseModel

from switchboard.common.config import Secret
from switchboard.events.v1 import messages_pb2 as m

_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>sha256/(?P<sha256>[0-9a-f]{64}))$")


class MediaSettings(BaseModel):
    """Where media are kept, and for how long."""

    endpoint_url: str = "http://127.0.0.1:19400"
    bucket: str = "switchboard-media"
    region: str = "us-east-1"
    access_key: str = "switchboard"
    secret_key: Secret | None = None
    retention_days: float = 30.0


class MediaError(Exception):
    """A reference that is malformed, names nothing, or whose bytes do not match its hash."""


def _located(uri: str, sha256: str) -> re.Match[str]:
    """``uri``'s bucket and key, when it names the object of the bytes hashed ``sha256``."""
    found = _URI.match(uri)
    if found is None or found["sha256"] != sha256:
        raise MediaError(f"not a media reference: {uri!r}")
    return found


@dataclass(frozen=True)
class MediaRef:
    """Where one piece of media is and what it is."""

    uri: str
    sha256: str
    size_bytes: int
    mime_type: str

    def attachment(self, file_name: str = "") -> m.Attachment:
        return m.Attachment(
            uri=self.uri, sha256=self.sha256, size_bytes=self.size_bytes, mime_type=self.mime_type, file_name=file_name
        )

    @classmethod
    def of(cls, attachment: m.Attachment) -> MediaRef:
        _located(attachment.uri, attachment.sha256)
        return cls(attachment.uri, attachment.sha256, attachment.size_bytes, attachment.mime_type)


class MediaStore:
    """put / get / expire against one bucket; :meth:`start` before use, :meth:`stop` after."""

    def __init__(self, settings: MediaSettings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def start(self) -> None:
        if self.settings.secret_key is None:
            raise ValueError("media store: no secret key (set <PREFIX>MEDIA__SECRET_KEY)")
        client = get_session().create_client(
            "s3",
            endpoint_url=self.settings.endpoint_url,
            region_name=self.settings.region,
            aws_access_key_id=self.settings.access_key,
            aws_secret_access_key=self.settings.secret_key.get_secret_value(),
            config=AioConfig(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )
        self._client = await self._stack.enter_async_context(client)

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (a deployment may also make it beforehand)."""
        try:
            await self._client.head_bucket(Bucket=self.settings.bucket)
        except ClientError:
            await self._client.create_bucket(Bucket=self.settings.bucket)

    async def stop(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def put(self, data: bytes, mime_type: str) -> MediaRef:
        digest = hashlib.sha256(data)
        key = f"sha256/{digest.hexdigest()}"
        # The store checks the bytes it received against the hash (a torn upload is refused).
        await self._client.put_object(
            Bucket=self.settings.bucket,
            Key=key,
            Body=data,
            ContentType=mime_type,
            ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
        )
        return MediaRef(f"s3://{self.settings.bucket}/{key}", digest.hexdigest(), len(data), mime_type)

    async def get(self, ref: MediaRef, max_bytes: int | None = None) -> bytes:
        found = _located(ref.uri, ref.sha256)
        if max_bytes is not None and ref.size_bytes > max_bytes:
            raise MediaError(f"{ref.uri} is {ref.size_bytes} bytes, over the {max_bytes} allowed")
        try:
            response = await self._client.get_object(Bucket=found["bucket"], Key=found["key"])
        except ClientError as error:
            raise MediaError(f"{ref.uri}: {error.response.get('Error', {}).get('Code', error)}") from error
        async with response["Body"] as body:
            data: bytes = await body.read()
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise MediaError(f"{ref.uri}: the bytes do not match their hash")
        return data

    async def expire(self, now: datetime | None = None) -> int:
        """Delete every object older than the retention; how many were deleted."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.settings.retention_days)
        deleted = 0
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.settings.bucket, Prefix="sha256/"):
            for item in page.get("Contents", []):
                if item["LastModified"] < cutoff:
                    await self._client.delete_object(Bucket=self.settings.bucket, Key=item["Key"])
                    deleted += 1
        return deleted
