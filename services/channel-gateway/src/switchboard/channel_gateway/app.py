"""Wiring: the HTTP API, the producer of inbound events and the view of outbound replies."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable

from pydantic import SecretStr

from switchboard.channel_gateway import rejections
from switchboard.channel_gateway.api import create_api
from switchboard.channel_gateway.auth import Authenticator
from switchboard.channel_gateway.config import Settings
from switchboard.channel_gateway.dedupe import Deliveries, SeenDeliveries
from switchboard.channel_gateway.idempotency import IdempotencyKeys
from switchboard.channel_gateway.ids import IdSigner
from switchboard.channel_gateway.intake import Intake
from switchboard.channel_gateway.media_checks import MediaLimits
from switchboard.channel_gateway.media_uploads import MediaUploads
from switchboard.channel_gateway.mqtt import MqttChannel
from switchboard.channel_gateway.outbound import OutboundView
from switchboard.channel_gateway.ratelimit import RateLimiter
from switchboard.channel_gateway.replies import Replies
from switchboard.channel_gateway.targets import ReplyTargets
from switchboard.channel_gateway.websocket import sockets_first, websocket_app
from switchboard.common import events, postgres, tls
from switchboard.common.http import HttpServer, listening, serve_http, server_config
from switchboard.common.lifecycle import sleep_unless_stopped
from switchboard.common.media import MediaStore
from switchboard.common.service import ServiceRuntime
from switchboard.events.v1 import messages_pb2 as m

logger = logging.getLogger(__name__)


async def _housekeeping(stop: asyncio.Event, *jobs: Callable[[], Awaitable[object]], every_s: float = 60.0) -> None:
    """Run each of ``jobs`` every ``every_s`` until ``stop``; a failed round is logged and retried."""
    while not stop.is_set():
        for job in jobs:
            try:
                await job()
            except Exception:  # e.g. PostgreSQL briefly away: the next round will do
                logger.exception("housekeeping failed", extra={"job": getattr(job, "__qualname__", repr(job))})
        await sleep_unless_stopped(stop, every_s)


async def _media(
    settings: Settings, resources: contextlib.AsyncExitStack, background: list[Awaitable[None]], stop: asyncio.Event
) -> MediaUploads | None:
    """Voice notes and pictures, when the media store is configured: its client, and the
    hourly deletion of what is older than its retention (idempotent on every replica)."""
    if settings.media.secret_key is None:
        return None
    store = MediaStore(settings.media)
    await store.start()
    resources.push_async_callback(store.stop)
    background.append(_housekeeping(stop, store.expire, every_s=3600))
    limits = MediaLimits(settings.max_media_bytes, settings.max_voice_s, settings.max_image_pixels)
    return MediaUploads(store, limits)


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    secret = settings.id_secret.get_secret_value().encode() if settings.id_secret else None
    if secret is None:
        logger.warning("SB_GATEWAY_ID_SECRET not set: ids are valid on this process only")
    signer = IdSigner(secret)
    replies = Replies(settings.reply_ttl_s, settings.max_cached_replies)
    view = OutboundView(settings.kafka, settings.topics.outbound, replies, replay_s=settings.reply_ttl_s)

    async with contextlib.AsyncExitStack() as resources, ServiceRuntime(settings) as runtime:

        async def publish(message: m.InboundMessage, conversation_id: str) -> None:
            envelope = events.wrap(
                message, conversation_key=conversation_id, source=settings.service_name, tenant_id=settings.tenant_id
            )
            await runtime.producer.send(settings.topics.inbound, envelope)
            logger.info(
                "message accepted",
                extra={
                    "message_id": message.message_id,
                    "channel": m.Channel.Name(message.channel),
                    "conversation": conversation_id,
                },
            )

        async def tell(message: m.InboundMessage, conversation_id: str, text: str) -> None:
            reply = m.OutboundMessage(
                message_id=f"{message.message_id}:refused",
                in_reply_to=message.message_id,
                channel=message.channel,
                channel_chat_id=message.channel_chat_id,
                text=text,
                final=True,
            )
            envelope = events.wrap(
                reply, conversation_key=conversation_id, source=settings.service_name, tenant_id=settings.tenant_id
            )
            await runtime.producer.send(settings.topics.outbound, envelope)

        record = rejections.RejectionLog(
            runtime.producer,
            settings.topics.audit,
            settings.service_name,
            settings.tenant_id,
            window_s=settings.rejection_window_s,
        )
        routers, consumers, background = [], [], [record.run(stop)]
        ready: list[Awaitable[None]] = []  # what must be up before the gateway reports SERVING
        assert settings.database_url is not None  # checked by Settings
        pool = await postgres.connect(
            settings.database_url.get_secret_value(),
            settings.database_schema,
            "switchboard.channel_gateway",
            settings.pool_size,
        )
        resources.push_async_callback(postgres.close, pool)
        limiter = RateLimiter(pool, settings.rate_limit_per_minute)
        seen = SeenDeliveries(pool, settings.dedupe_keep_s)
        targets = ReplyTargets(pool, settings.dedupe_keep_s)
        idempotency = IdempotencyKeys(pool)
        deliveries = Deliveries(seen, limiter, targets, publish, record, tell)
        background.append(_housekeeping(stop, seen.purge, limiter.purge, targets.purge, idempotency.purge))
        modes = {"http": "on", "telegram": settings.telegram_mode, "feishu": settings.feishu_mode}
        modes["mqtt"] = "on" if settings.mqtt_host else "off"
        uploads = await _media(settings, resources, background, stop)
        modes["media"] = "on" if uploads is not None else "off"
        # A platform's SDK is imported only when its channel is on: aiogram and lark-oapi
        # take seconds to import (tens of seconds on a busy two-core machine), which every
        # replica would otherwise pay at each start before it can serve.
        if settings.telegram_mode != "off":
            from switchboard.channel_gateway.telegram import TelegramChannel

            assert settings.telegram_bot_token  # checked by Settings
            telegram = TelegramChannel(
                settings.telegram_bot_token.get_secret_value(),
                _secret(settings.telegram_webhook_secret),
                deliveries,
                api_url=settings.telegram_api_url,
            )
            resources.push_async_callback(telegram.close)
            if settings.telegram_mode == "webhook":
                await telegram.start(settings.telegram_webhook_url)
                routers.append(telegram.router())
            else:
                leader = postgres.AdvisoryLock(pool, f"{settings.database_schema}:telegram-polling")
                resources.push_async_callback(leader.release)
                background.append(telegram.poll(stop, leader.held))
            consumers.append(
                runtime.consumer(
                    [settings.topics.outbound], group_id=settings.telegram_group_id, handler=telegram.deliver
                )
            )

        if settings.feishu_mode != "off":
            from switchboard.channel_gateway.feishu import FeishuChannel, LongConnection

            assert settings.feishu_app_id and settings.feishu_app_secret  # checked by Settings
            feishu = FeishuChannel(
                settings.feishu_app_id,
                settings.feishu_app_secret.get_secret_value(),
                deliveries,
                targets,
                verification_token=_secret(settings.feishu_verification_token),
                encrypt_key=_secret(settings.feishu_encrypt_key),
                api_url=settings.feishu_api_url,
                card_interval_s=settings.feishu_card_interval_s,
            )
            await feishu.start()
            if settings.feishu_mode == "webhook":
                routers.append(feishu.router())
            else:
                background.append(LongConnection(feishu).run(stop))
            consumers.append(
                runtime.consumer([settings.topics.outbound], group_id=settings.feishu_group_id, handler=feishu.deliver)
            )

        if settings.mqtt_host:
            assert settings.mqtt_password is not None  # checked by Settings

            async def publish_result(result: m.DeviceCommandResult | m.DeviceState) -> None:
                envelope = events.wrap(
                    result,
                    conversation_key=f"device:{result.device_id}",
                    source=settings.service_name,
                    tenant_id=settings.tenant_id,
                )
                await runtime.producer.send(settings.topics.device_results, envelope)

            mqtt = MqttChannel(
                host=settings.mqtt_host,
                port=settings.mqtt_port,
                username=settings.mqtt_username,
                password=settings.mqtt_password.get_secret_value(),
                client_id=settings.mqtt_client_id,
                namespace=settings.mqtt_namespace,
                share_group=settings.mqtt_share_group,
                session_expiry_s=settings.mqtt_session_expiry_s,
                deliveries=deliveries,
                targets=targets,
                record_rejection=record,
                max_bytes=settings.max_body_bytes,
                max_chars=settings.max_text_chars,
                publish_result=publish_result,
                tls_context=tls.client_context(settings.mqtt_ca_file) if settings.mqtt_tls else None,
            )
            background.append(mqtt.run(stop))
            ready.append(mqtt.connected())
            consumers.append(
                runtime.consumer(
                    [settings.topics.outbound, settings.topics.device_commands],
                    group_id=settings.mqtt_group_id,
                    handler=mqtt.deliver,
                )
            )

        auth = settings.authenticator(Authenticator)
        assert auth is not None  # Settings insists on exactly one way to verify tokens
        intake = Intake(
            signer,
            publish,
            limiter,
            idempotency,
            max_text_chars=settings.max_text_chars,
            per_minute=settings.rate_limit_per_minute,
        )
        sockets = websocket_app(
            auth,
            signer,
            replies,
            intake,
            record,
            max_wait_s=settings.max_wait_s,
            max_queued=settings.ws_max_queued,
            heartbeat_s=settings.ws_heartbeat_s,
        )
        api = create_api(
            settings,
            signer,
            replies,
            auth,
            intake,
            channels=routers,
            record_rejection=record,
            channel_modes=modes,
            media=uploads,
        )
        config = server_config(
            sockets_first(api, sockets),
            settings.http_host,
            settings.http_port,
            settings.http_keepalive_s,
            # The Sans-I/O websockets protocol: no per-connection reader task and buffers.
            ws="websockets-sansio",
            ws_max_size=settings.max_body_bytes,
            ws_ping_interval=None,  # the application's heartbeat does this
            # Chat frames are short: compressing them costs more CPU than it saves, and a
            # zlib context per socket (tens of KiB) is most of a session's memory.
            ws_per_message_deflate=False,
        )
        await view.start()
        # What start-up made (modules, clients, settings) lives as long as the process: out
        # of every collection from now on, so a full one walks only the sockets and replies.
        gc.freeze()
        # Collect the young generation less often (sockets and replies allocate fast, and
        # most of it dies young) and the whole heap much less often: a full collection with
        # tens of thousands of sockets held stops the process for a second or more.
        gc.set_threshold(50_000, 20, 50)
        try:
            http = HttpServer(config)
            background += [view.run(stop), serve_http(http, stop)]
            ready.append(listening(http))  # CI caught a request refused between SERVING and listen()
            await runtime.run(stop, *consumers, background=background, ready=ready)
        finally:
            await view.stop()
