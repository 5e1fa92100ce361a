"""The audit query API (HTTP, served by the audit logger on ``SB_AUDIT_API_PORT``).

    GET /v1/audit/events?user=…&since=now-7d&intent=…&channel=…&action=…&conversation=…&q=…&size=100&after=…
    GET /v1/audit/verify?since=now-1d

Only auditors: a bearer token (verified like the gateway's, audience ``switchboard-audit``)
whose ``roles`` claim or scopes hold ``auditor``. ``admin`` does not grant it: those who run
the platform do not read its audit trail unless they are also auditors. Every search is
itself audited (an ``audit.searched`` AuditEvent naming the caller and the filters).

Results come newest first; ``next`` is an opaque cursor for the following page
(search_after), so an export walks any number of documents without deep paging.
"""

import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from elasticsearch import AsyncElasticsearch, BadRequestError
from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from switchboard.audit_logger import chain
from switchboard.common import telemetry
from switchboard.common.auth import Authenticator, InvalidToken, Principal

logger = logging.getLogger(__name__)

AUDITOR = "auditor"
MAX_PAGE = 1000
_SORT = [{"@timestamp": "desc"}, {"event.id": "desc"}]
Record = Callable[[Principal, str, dict[str, str]], Awaitable[None]]
# Verifies the chains with documents since a time (Elasticsearch date math; None: all).
Verify = Callable[[str | None], Awaitable[chain.Report]]


def search_query(
    *,
    user: str | None = None,
    since: str | None = None,
    until: str | None = None,
    intent: str | None = None,
    channel: str | None = None,
    action: str | None = None,
    conversation: str | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """The Elasticsearch query for the given filters (all optional, all combined)."""
    filters: list[dict[str, Any]] = []
    if user:
        filters.append({"term": {"user.id": user}})
    if since or until:
        filters.append({"range": {"@timestamp": {k: v for k, v in (("gte", since), ("lt", until)) if v}}})
    for field, value in (
        ("switchboard.intent", intent),
        ("switchboard.channel", channel),
        ("event.action", action),
        ("switchboard.conversation", conversation),
    ):
        if value:
            filters.append({"term": {field: value}})
    must = [{"match": {"message": {"query": text, "operator": "and"}}}] if text else []
    return {"bool": {"filter": filters, "must": must}}


def _cursor(sort: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(sort).encode()).decode()


def _after(cursor: str) -> list[Any]:
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "after: not a cursor this API returned") from exc
    if not isinstance(after, list) or len(after) != len(_SORT):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "after: not a cursor this API returned")
    return after


def build_api(es: AsyncElasticsearch, index: str, auth: Authenticator, record: Record, verify: Verify) -> FastAPI:
    """The FastAPI application of the audit query API (``verify``: checks the chains since a
    time, with the chain key and the anchors, which the API itself does not hold)."""
    api = FastAPI(title="Switchboard audit API", version="1", docs_url="/docs", openapi_url="/openapi.json")
    telemetry.instrument_http(api)
    bearer = HTTPBearer(bearerFormat="JWT", auto_error=False)

    async def auditor(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing bearer token (Authorization: Bearer <JWT>)",
                headers={"WWW-Authenticate": 'Bearer realm="switchboard-audit"'},
            )
        try:
            caller = await auth.verify(credentials.credentials)
        except InvalidToken as exc:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"invalid token: {exc}",
                headers={"WWW-Authenticate": 'Bearer realm="switchboard-audit", error="invalid_token"'},
            ) from exc
        if AUDITOR not in caller.roles and AUDITOR not in caller.scopes:
            logger.warning("audit API refused a caller without the auditor role", extra={"subject": caller.subject})
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the audit trail is for the auditor role only")
        return caller

    Caller = Annotated[Principal, Depends(auditor)]

    @api.get("/v1/audit/events")
    async def events(
        caller: Caller,
        user: str | None = None,
        since: Annotated[str | None, Query(description="e.g. now-7d or 2026-11-01T00:00:00Z")] = None,
        until: str | None = None,
        intent: str | None = None,
        channel: str | None = None,
        action: str | None = None,
        conversation: str | None = None,
        q: Annotated[str | None, Query(description="words that must all be in the (masked) message")] = None,
        size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        after: Annotated[str | None, Query(description="the `next` cursor of the previous page")] = None,
    ) -> JSONResponse:
        filters = {
            k: v
            for k, v in dict(
                user=user,
                since=since,
                until=until,
                intent=intent,
                channel=channel,
                action=action,
                conversation=conversation,
                text=q,
            ).items()
            if v
        }
        search_after = _after(after) if after else None
        await record(caller, "audit.searched", filters)
        try:
            found = await es.search(
                index=index,
                query=search_query(**filters),
                sort=_SORT,
                size=size,
                search_after=search_after,
                track_total_hits=True,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
        except BadRequestError as exc:  # e.g. a date Elasticsearch cannot parse
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"bad filter: {exc.message}") from exc
        hits = found["hits"]["hits"]
        return JSONResponse(
            {
                "total": found["hits"]["total"]["value"],
                "events": [hit["_source"] for hit in hits],
                "next": _cursor(hits[-1]["sort"]) if len(hits) == size else None,
            }
        )

    @api.get("/v1/audit/verify")
    async def verify(caller: Caller, since: str | None = None) -> JSONResponse:
        await record(caller, "audit.verified", {"since": since} if since else {})
        report = await verify(since)
        return JSONResponse(report.__dict__ | {"ok": report.ok})

    return api
