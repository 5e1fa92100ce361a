"""Wiring: install the template (and lifecycle), consume every business topic, index each
batch, commit after Elasticsearch acknowledged it; keep the retention."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable
from typing import Any

from elasticsearch import AsyncElasticsearch
from elasticsearch.serializer import OrjsonSerializer

from switchboard.audit_logger import anchors, chain, documents
from switchboard.audit_logger.api import Record, Verify, build_api
from switchboard.audit_logger.config import Settings
from switchboard.audit_logger.indexer import UNAVAILABLE, AuditIndexer, ElasticsearchUnavailableError
from switchboard.audit_logger.masking import Masker
from switchboard.audit_logger.retention import Housekeeper, has_ilm, seconds
from switchboard.common import events, tls
from switchboard.common.auth import Authenticator, Principal
from switchboard.common.http import HttpServer, listening, serve_http, server_config
from switchboard.common.service import ServiceRuntime
from switchboard.events.v1 import messages_pb2 as m

logger = logging.getLogger(__name__)


def client(settings: Settings) -> AsyncElasticsearch:
    api_key = settings.elasticsearch_api_key.get_secret_value() if settings.elasticsearch_api_key else None
    # orjson: serialising bulk bodies is a good part of the logger's own work.
    # An https:// URL is verified against elasticsearch_ca_file (the system's CAs when unset)
    # with host names checked, TLS 1.2 or newer (common.tls).
    context = (
        tls.client_context(settings.elasticsearch_ca_file) if settings.elasticsearch_url.startswith("https") else None
    )
    return AsyncElasticsearch(
        settings.elasticsearch_url,
        api_key=api_key,
        request_timeout=30,
        serializer=OrjsonSerializer(),
        ssl_context=context,
    )


def masker(settings: Settings) -> Masker:
    key_file = settings.masking.fingerprint_key_file
    return Masker(
        settings.masking.kinds,
        phone_regions=settings.masking.phone_regions,
        extra_patterns=settings.masking.extra_patterns,
        fingerprint_key=key_file.read_bytes().strip() if key_file else None,
    )


def indexer(settings: Settings, es: AsyncElasticsearch) -> AuditIndexer:
    mapper = documents.Mapper(masker(settings), settings.text, settings.dataset)
    return AuditIndexer(
        es,
        settings.data_stream,
        mapper,
        chain_key=settings.chain_key.get_secret_value().encode(),
        chunk_size=settings.bulk_chunk_size,
        requests_in_flight=settings.bulk_requests_in_flight,
    )


def verifier(settings: Settings, es: AsyncElasticsearch, progress: Any = None) -> Verify:
    """Checks the chains with the chain key, and their heads against the anchors in Kafka
    (those older than the retention left out: their documents may be gone by right)."""

    async def verify(since: str | None) -> chain.Report:
        not_before = time.time() - seconds(settings.retention)
        heads = await anchors.read(settings.kafka, settings.topics.audit_anchors, settings.data_stream, not_before)
        key = settings.chain_key.get_secret_value().encode()
        return await chain.verify(es, settings.data_stream, key, since, progress, anchors=heads)

    return verify


def tune_gc() -> None:
    """Garbage collection for a process that keeps thousands of documents in flight.

    CPython runs a young collection every 700 allocations and a middle one every 10 young
    ones, and each walks every container object still alive in those generations. The
    logger allocates a few dozen dicts per event and keeps ~10 000 events' documents alive
    for about a second, so with the defaults a fifth of its CPU time went to the collector
    (measured with scripts/bench_audit.py). Young collections every 20 000 allocations,
    middle ones every 50 of those (by when most documents in flight are gone), and the
    objects alive after start-up (modules, clients) frozen out of every collection bring
    that to a few per cent. Called by the service's entry point (the process is the
    logger's own), not by :func:`serve`.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 10)


async def install(settings: Settings, es: AsyncElasticsearch) -> bool:
    """Put the index template (and ILM policy, where the cluster has ILM); whether ILM
    keeps the retention (else the service's housekeeping does)."""
    name = settings.data_stream.rsplit("-", 1)[0]  # logs-<dataset>, for every namespace
    ilm = await has_ilm(es)
    if ilm:
        policy = documents.lifecycle_policy(
            rollover_max_age=settings.rollover_max_age,
            rollover_max_size=settings.rollover_max_size,
            retention=settings.retention,
        )
        await es.ilm.put_lifecycle(name=name, policy=policy)
    template = documents.index_template(f"{name}-*", lifecycle_policy=name if ilm else None)
    await es.indices.put_index_template(name=name, **template)
    logger.info("audit index template installed", extra={"template": name, "retention_by": "ilm" if ilm else "service"})
    return ilm


def recorder(settings: Settings, runtime: ServiceRuntime) -> Record:
    """Audits the auditors: each use of the API becomes an AuditEvent on the audit topic."""

    async def record(caller: Principal, action: str, filters: dict[str, str]) -> None:
        event = m.AuditEvent(
            action=action, outcome=m.OUTCOME_SUCCESS, actor=m.Actor(user_id=caller.subject), labels=filters
        )
        envelope = events.wrap(
            event,
            conversation_key=f"{settings.service_name}:api",
            source=settings.service_name,
            tenant_id=settings.tenant_id,
        )
        await runtime.producer.send(settings.topics.audit, envelope)

    return record


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    es = client(settings)
    try:
        ilm = await install(settings, es)
        audit = indexer(settings, es)
        background: list[Awaitable[None]] = []
        if not ilm:
            keeper = Housekeeper(
                es, settings.data_stream, rollover_max_age=settings.rollover_max_age, retention=settings.retention
            )
            background.append(keeper.run(stop, settings.housekeeping_interval_s))
        async with ServiceRuntime(settings) as runtime:
            audit.anchors = anchors.Anchors(runtime.producer, settings.topics.audit_anchors, settings.data_stream)
            consumer = runtime.consumer(
                (),
                pattern=settings.topic_pattern(),
                group_id=settings.group_id,
                batch_handler=audit.index,
                prepare=audit.prepare,
                batch_concurrency=2,  # the next batch's requests go out while this one's finish
                transient=(ElasticsearchUnavailableError, *UNAVAILABLE),
                on_assigned=audit.chain.forget,
                metadata_max_age_ms=30_000,  # new plugins' request topics are read within 30 s
            )
            ready: list[Awaitable[None]] = []
            auth = settings.authenticator(Authenticator)
            if auth is None:
                logger.warning("audit API off: set SB_AUDIT_JWT_SECRET, _JWT_PUBLIC_KEY or _JWT_JWKS_URL to serve it")
            else:
                api = build_api(es, settings.data_stream, auth, recorder(settings, runtime), verifier(settings, es))
                server = HttpServer(server_config(api, settings.api_host, settings.api_port, settings.api_keepalive_s))
                background.append(serve_http(server, stop))
                ready.append(listening(server))
            await runtime.run(stop, consumer, background=background, ready=ready)
    finally:
        await es.close()
