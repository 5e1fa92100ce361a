"""`switchboard models`: the models of a Triton server and their state, and loading or
unloading one through Triton's model-repository API (explicit model-control mode). After a
hot switch with several inference-client replicas, the old model is unloaded with this."""

from __future__ import annotations

import httpx
from rich.console import Console
from rich.table import Table


def show(triton_url: str, console: Console) -> int:
    with httpx.Client(base_url=triton_url, timeout=30) as client:
        response = client.post("/v2/repository/index", json={})
        response.raise_for_status()
    table = Table("model", "version", "state", "reason")
    for entry in sorted(response.json(), key=lambda e: (e["name"], e.get("version", ""))):
        table.add_row(
            entry["name"], entry.get("version", ""), entry.get("state", "UNAVAILABLE"), entry.get("reason", "")
        )
    console.print(table)
    return 0


def change(triton_url: str, action: str, name: str, console: Console) -> int:
    """``action`` is "load" or "unload"; Triton answers when it is done (an unload lets the
    model's requests in flight finish first)."""
    with (
        httpx.Client(base_url=triton_url, timeout=600) as client,
        console.status(f"{action}ing {name}"),
    ):
        response = client.post(f"/v2/repository/models/{name}/{action}", json={})
    if response.is_success:
        console.print(f"{name}: {action}ed")
        return 0
    console.print(f"[red]{name}: {action} failed:[/red] {response.json().get('error', response.text)}")
    return 1
