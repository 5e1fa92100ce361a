"""The audit API's access rules and query building (no Elasticsearch reached)."""

import time
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from switchboard.audit_logger.api import build_api, search_query
from switchboard.audit_logger.chain import Report
from switchboard.common.auth import Authenticator, Principal

SECRET = "test-secret-of-at-least-32-bytes!!"


def _token(**claims: Any) -> str:
    now = int(time.time())
    base = {"sub": "ann", "iss": "switchboard", "aud": "switchboard-audit", "iat": now, "exp": now + 60}
    return jwt.encode(base | claims, SECRET, algorithm="HS256")


class _NoElasticsearch:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError("a refused caller must not reach Elasticsearch")


@pytest.fixture
def client() -> TestClient:
    recorded: list[tuple[str, str]] = []

    async def record(caller: Principal, action: str, filters: dict[str, str]) -> None:
        recorded.append((caller.subject, action))

    auth = Authenticator(issuer="switchboard", audience="switchboard-audit", secret=SECRET)

    async def verify(since: str | None) -> Report:
        raise AssertionError("a refused caller must not reach the chain")

    api = build_api(_NoElasticsearch(), "logs-x", auth, record, verify)  # type: ignore[arg-type]
    test_client = TestClient(api)
    test_client.recorded = recorded  # type: ignore[attr-defined]
    return test_client


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({}, 401, "missing bearer token"),
        ({"Authorization": "Bearer not-a-jwt"}, 401, "invalid token"),
        ({"Authorization": f"Bearer {_token(aud='switchboard-gateway', scope='auditor')}"}, 401, "Audience"),
        ({"Authorization": f"Bearer {_token(scope='chat admin')}"}, 403, "auditor role only"),  # admin is not enough
        ({"Authorization": f"Bearer {_token(roles=['operator'])}"}, 403, "auditor role only"),
    ],
)
def test_only_auditors_get_in(client: TestClient, headers: dict[str, str], status: int, detail: str) -> None:
    response = client.get("/v1/audit/events", headers=headers)
    assert response.status_code == status
    assert detail in response.json()["detail"]
    assert client.recorded == []  # type: ignore[attr-defined]


def test_a_bad_cursor_is_a_400_with_a_reason(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {_token(roles=['auditor'])}"}
    response = client.get("/v1/audit/events", params={"after": "!!"}, headers=headers)
    assert response.status_code == 400 and "cursor" in response.json()["detail"]
    response = client.get("/v1/audit/events", params={"size": 5000}, headers=headers)
    assert response.status_code == 422  # more than a page


def test_filters_become_one_bool_query() -> None:
    query = search_query(user="p-1", since="now-7d", intent="chat", text="lamp on")
    assert query["bool"]["filter"] == [
        {"term": {"user.id": "p-1"}},
        {"range": {"@timestamp": {"gte": "now-7d"}}},
        {"term": {"switchboard.intent": "chat"}},
    ]
    assert query["bool"]["must"] == [{"match": {"message": {"query": "lamp on", "operator": "and"}}}]
    assert search_query() == {"bool": {"filter": [], "must": []}}
