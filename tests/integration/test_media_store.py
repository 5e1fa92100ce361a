"""The media store (claim check) against the stack's real S3 server (versitygw, `make up`)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from switchboard.common.media import MediaError, MediaRef, MediaStore
from switchboard.events.v1 import messages_pb2 as m
from tests.conftest import Stack

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[MediaStore]:
    media = MediaStore(stack.media_settings())
    await media.start()
    yield media
    await media.stop()


async def test_bytes_come_back_by_their_reference_and_the_hash_is_checked(store: MediaStore) -> None:
    data = os.urandom(300_000)
    ref = await store.put(data, "audio/ogg")
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.uri == f"s3://{store.settings.bucket}/sha256/{ref.sha256}"
    assert (ref.size_bytes, ref.mime_type) == (len(data), "audio/ogg")
    # The reference travels as an Attachment in an event and is read back from it.
    carried = m.Attachment.FromString(ref.attachment("note.ogg").SerializeToString())
    assert await store.get(MediaRef.of(carried)) == data
    # The same bytes again: the same object.
    assert await store.put(data, "audio/ogg") == ref


async def test_a_reference_to_other_bytes_or_to_nothing_is_refused(store: MediaStore) -> None:
    ref = await store.put(b"first", "text/plain")
    other = hashlib.sha256(b"second").hexdigest()
    with pytest.raises(MediaError, match="not a media reference"):
        MediaRef.of(m.Attachment(uri=ref.uri, sha256=other))  # the hash does not name that object
    missing = MediaRef(f"s3://{store.settings.bucket}/sha256/{other}", other, 6, "text/plain")
    with pytest.raises(MediaError, match="NoSuchKey"):
        await store.get(missing)
    with pytest.raises(MediaError, match="over the 3 allowed"):
        await store.get(ref, max_bytes=3)
    with pytest.raises(MediaError, match="not a media reference"):
        await store.get(replace(ref, uri="s3://elsewhere/../secrets"))


async def test_expire_deletes_only_what_is_older_than_the_retention(stack: Stack, unique: str) -> None:
    # A bucket of its own: expiring from two days ahead deletes everything in it.
    store = MediaStore(stack.media_settings(bucket=f"sb-expire-{unique}", retention_days=1.0))
    await store.start()
    try:
        await store.ensure_bucket()
        kept = await store.put(os.urandom(64), "image/png")
        assert await store.expire() == 0  # written just now: within the one-day retention
        assert await store.get(kept)
        assert await store.expire(now=datetime.now(UTC) + timedelta(days=2)) == 1
        with pytest.raises(MediaError, match="NoSuchKey"):
            await store.get(kept)
    finally:
        await store.stop()
