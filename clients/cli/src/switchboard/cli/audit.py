"""``switchboard audit search``: query the audit trail through the audit API (auditors only).

    switchboard audit search --user p-alice --since now-7d --intent reminder.create
    switchboard audit search --since now-30d --json > last-month.ndjson
    switchboard audit search --since now-30d --out export.ndjson   # every page, with progress

The token must carry the ``auditor`` role (``switchboard token --audience switchboard-audit
--scope auditor`` mints one for a single installation).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

DEFAULT_URL = "http://127.0.0.1:18142"
FILTERS = ("user", "since", "until", "intent", "channel", "action", "conversation")


def _pages(client: httpx.Client, params: dict[str, Any]) -> Any:
    """Each page's (total, events), following the API's cursor."""
    after = None
    while True:
        response = client.get("/v1/audit/events", params=params | ({"after": after} if after else {}))
        if response.status_code >= 400:
            raise SystemExit(_refused(response))
        page = response.json()
        yield page["total"], page["events"]
        after = page["next"]
        if after is None:
            return


def _refused(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text
    return f"audit API refused ({response.status_code}): {detail}"


def _row(doc: dict[str, Any]) -> list[str]:
    sb = doc.get("switchboard", {})
    latency = sb.get("latency_ms")
    return [
        doc.get("@timestamp", "")[:19].replace("T", " "),
        doc.get("user", {}).get("id", "") or doc.get("device", {}).get("id", ""),
        sb.get("channel", ""),
        doc.get("event", {}).get("action", ""),
        sb.get("intent", ""),
        sb.get("model", ""),
        "" if latency is None else str(latency),
        sb.get("blocked_reason", ""),
        (doc.get("message") or "")[:60],
    ]


def search(url: str, token: str, filters: dict[str, str | None], limit: int, as_json: bool, out: Path | None) -> int:
    params: dict[str, Any] = {k: v for k, v in filters.items() if v}
    err = Console(stderr=True)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        if out is not None:  # an export: every page, with a progress bar
            written = 0
            columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            with out.open("w") as sink, Progress(*columns, console=err) as progress:
                task = progress.add_task("export", total=None)
                for total, events in _pages(client, params | {"size": 1000}):
                    progress.update(task, total=total)
                    for doc in events:
                        sink.write(json.dumps(doc, ensure_ascii=False) + "\n")
                    written += len(events)
                    progress.advance(task, len(events))
            err.print(f"{written} events written to {out}")
            return 0
        total, events = next(_pages(client, params | {"size": limit}))
    if as_json:
        for doc in events:
            sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return 0
    table = Table(title=f"{len(events)} of {total} audit events, newest first")
    for column in ("time (UTC)", "user / device", "channel", "action", "intent", "model", "ms", "blocked", "message"):
        table.add_column(column, overflow="fold")
    for doc in events:
        table.add_row(*_row(doc))
    Console().print(table)
    return 0
