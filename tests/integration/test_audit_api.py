"""The audit query API and ``switchboard audit search`` against the real Elasticsearch."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from elasticsearch import AsyncElasticsearch

from switchboard.audit_logger import app
from switchboard.audit_logger.api import build_api
from switchboard.audit_logger.config import Settings
from switchboard.audit_logger.documents import Mapper
from switchboard.audit_logger.indexer import AuditIndexer
from switchboard.audit_logger.masking import Masker
from switchboard.common import events
from switchboard.common.auth import Authenticator, Principal
from switchboard.common.http import HttpServer, listening, serve_http, server_config
from switchboard.common.kafka import ConsumedEvent
from switchboard.events.v1 import messages_pb2 as m
from tests.conftest import Stack

pytestmark = pytest.mark.integration

CHAIN_KEY = "the integration tests' chain key"

SECRET = "integration-secret-of-32-bytes-or-more"
CLI = [sys.executable, "-m", "switchboard.cli"]


def _token(**claims: object) -> str:
    now = int(time.time())
    base = {"sub": "ann", "iss": "switchboard", "aud": "switchboard-audit", "iat": now, "exp": now + 600}
    return jwt.encode(base | claims, SECRET, algorithm="HS256")


def _intent(person: str, intent: str, i: int) -> m.ParsedIntent:
    message = m.InboundMessage(message_id=f"m-{person}-{i}", channel=m.CHANNEL_TELEGRAM, text=f"{intent} number {i}")
    return m.ParsedIntent(message=message, intent=intent, person_id=person)


SAMPLE = [
    *(_intent("p-alice", "reminder.create", i) for i in range(3)),
    _intent("p-alice", "chat", 3),
    *(_intent("p-bob", "chat", i) for i in range(2)),
]


class Api:
    def __init__(self, url: str, recorded: list[tuple[str, str, dict[str, str]]]) -> None:
        self.url = url
        self.recorded = recorded


@pytest.fixture
async def api(stack: Stack, unique: str) -> AsyncIterator[Api]:
    settings = Settings(namespace=f"a{unique}", chain_key=CHAIN_KEY)
    async with AsyncElasticsearch(stack.es_url, request_timeout=30) as es:
        await app.install(settings, es)
        batch = [
            ConsumedEvent(events.wrap(p, conversation_key="c", source="t"), "switchboard.intents.v1", 0, i, b"c", [])
            for i, p in enumerate(SAMPLE)
        ]
        assert (
            await AuditIndexer(es, settings.data_stream, Mapper(Masker()), chain_key=CHAIN_KEY.encode()).index(batch)
            == []
        )
        await es.indices.refresh(index=settings.data_stream)
        recorded: list[tuple[str, str, dict[str, str]]] = []

        async def record(caller: Principal, action: str, filters: dict[str, str]) -> None:
            recorded.append((caller.subject, action, filters))

        auth = Authenticator(issuer="switchboard", audience="switchboard-audit", secret=SECRET)
        server = HttpServer(
            server_config(build_api(es, settings.data_stream, auth, record, app.verifier(settings, es)), "127.0.0.1", 0)
        )
        stop = asyncio.Event()
        serving = asyncio.create_task(serve_http(server, stop))
        await listening(server)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield Api(f"http://127.0.0.1:{port}", recorded)
        finally:
            stop.set()
            await serving


async def test_an_auditor_filters_and_pages_and_is_audited_doing_so(api: Api) -> None:
    headers = {"Authorization": f"Bearer {_token(roles=['auditor'])}"}
    async with httpx.AsyncClient(base_url=api.url, headers=headers) as client:
        response = await client.get(
            "/v1/audit/events", params={"user": "p-alice", "intent": "reminder.create", "since": "now-1h"}
        )
        assert response.status_code == 200
        page = response.json()
        assert page["total"] == 3 and page["next"] is None
        assert {(e["user"]["id"], e["switchboard"]["intent"]) for e in page["events"]} == {
            ("p-alice", "reminder.create")
        }

        seen: list[str] = []
        after = None
        while True:  # pages of 2, newest first, each event once
            params = {"size": 2} | ({"after": after} if after else {})
            page = (await client.get("/v1/audit/events", params=params)).json()
            seen += [e["event"]["id"] for e in page["events"]]
            after = page["next"]
            if after is None:
                break
        assert len(seen) == len(set(seen)) == len(SAMPLE)

        bad = await client.get("/v1/audit/events", params={"since": "last tuesday"})
        assert bad.status_code == 400 and "bad filter" in bad.json()["detail"]
    assert api.recorded[0] == (
        "ann",
        "audit.searched",
        {"user": "p-alice", "intent": "reminder.create", "since": "now-1h"},
    )


async def test_everyone_else_is_turned_away(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as client:
        assert (await client.get("/v1/audit/events")).status_code == 401
        admin = {"Authorization": f"Bearer {_token(scope='admin chat')}"}
        assert (await client.get("/v1/audit/events", headers=admin)).status_code == 403
        assert (await client.get("/v1/audit/verify", headers=admin)).status_code == 403
    assert api.recorded == []


async def test_the_cli_prints_a_table_json_and_exports_with_progress(api: Api, tmp_path: Path) -> None:
    base = [*CLI, "audit", "search", "--audit-url", api.url, "--token", _token(roles=["auditor"])]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"}
        )

    table = await asyncio.to_thread(run, "--user", "p-alice", "--intent", "reminder.create")
    assert table.returncode == 0, table.stderr
    assert "3 of 3 audit events" in table.stdout and "reminder.create" in table.stdout and "p-bob" not in table.stdout

    as_json = await asyncio.to_thread(run, "--user", "p-bob", "--json")
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [doc["user"]["id"] for doc in lines] == ["p-bob", "p-bob"]

    out = tmp_path / "export.ndjson"
    export = await asyncio.to_thread(run, "--since", "now-1h", "--out", str(out))
    assert export.returncode == 0, export.stderr
    assert f"{len(SAMPLE)} events written" in export.stderr
    assert len(out.read_text().splitlines()) == len(SAMPLE)

    refused = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "audit", "search", "--audit-url", api.url, "--token", _token(scope="chat")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "403" in refused.stderr
