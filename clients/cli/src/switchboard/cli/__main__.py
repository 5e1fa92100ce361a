"""``switchboard chat "hello"``: send a message and stream the reply as it is generated.

The conversation id is remembered in ~/.config/switchboard/conversation so that follow-up
messages keep their context; ``--new`` starts a fresh conversation. The bearer token comes
from ``--token`` or ``SWITCHBOARD_TOKEN``; ``switchboard token --secret-file F`` mints one
for an installation that signs its own tokens (``make up`` keeps the secret in
.state/secrets/gateway-jwt).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import httpx
from httpx_sse import connect_sse
from rich.console import Console

from switchboard.cli import audit, models
from switchboard.cli.tokens import AUDIENCE, mint

DEFAULT_URL = "http://127.0.0.1:18080"
STATE = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "switchboard" / "conversation"


def _conversation(client: httpx.Client, new: bool) -> str:
    if not new and STATE.is_file():
        return STATE.read_text().strip()
    response = client.post("/v1/conversations")
    response.raise_for_status()
    conversation = str(response.json()["conversation_id"])
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(conversation)
    return conversation


def chat(url: str, token: str, text: str, new: bool, timeout_s: float) -> int:
    out, err = Console(), Console(stderr=True)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=timeout_s, headers=headers) as client:
        conversation = _conversation(client, new)
        body = {"conversation_id": conversation, "text": text, "wait": False}
        response = client.post("/v1/messages", json=body)
        if response.status_code == 404 and not new:
            # The gateway no longer knows the remembered conversation (e.g. a new secret).
            return chat(url, token, text, new=True, timeout_s=timeout_s)
        if response.status_code >= 400:
            err.print(f"[red]error {response.status_code}:[/red] {response.json().get('detail')}")
            return 1
        message_id = response.json()["message_id"]
        with (
            err.status("thinking…") as status,
            connect_sse(client, "GET", f"/v1/messages/{message_id}/events") as events,
        ):
            shown = ""
            for event in events.iter_sse():
                status.stop()
                if event.event == "chunk":
                    text = json.loads(event.data)["text"]
                    out.print(text, end="", markup=False, highlight=False)
                    shown += text
                elif event.event == "done":
                    done = json.loads(event.data)
                    # A reply generated faster than the stream interval comes without chunks.
                    out.print(str(done.get("reply", ""))[len(shown) :], markup=False, highlight=False)
                    if done.get("model"):  # a model's answer (not a scheduler's or a plugin's reply)
                        err.print(f"[dim]{done.get('model')} · {done.get('finish_reason')}[/dim]")
                    return 0
                else:
                    err.print(f"[red]{event.event}:[/red] {event.data}")
                    return 1
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="switchboard", description="Talk to a Switchboard gateway.")
    parser.add_argument("--url", default=os.environ.get("SWITCHBOARD_URL", DEFAULT_URL), help="gateway base URL")
    commands = parser.add_subparsers(dest="command", required=True)
    chat_cmd = commands.add_parser("chat", help="send a message and stream the reply")
    chat_cmd.add_argument("text", help="what to say")
    chat_cmd.add_argument("--new", action="store_true", help="start a new conversation")
    chat_cmd.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the reply")
    chat_cmd.add_argument("--token", default=os.environ.get("SWITCHBOARD_TOKEN"), help="bearer token (JWT)")
    token_cmd = commands.add_parser("token", help="mint a bearer token with the gateway's HS256 secret")
    token_cmd.add_argument("--secret-file", type=Path, required=True, help="file holding SB_GATEWAY_JWT_SECRET")
    token_cmd.add_argument("--subject", default=os.environ.get("USER", "me"), help="who the token is for")
    token_cmd.add_argument("--scope", action="append", default=None, help="chat (default) or admin; repeatable")
    token_cmd.add_argument("--ttl", type=int, default=12 * 3600, help="seconds the token is valid")
    token_cmd.add_argument(
        "--audience", default=AUDIENCE, help="who accepts it: switchboard-gateway (default) or switchboard-audit"
    )
    audit_cmd = commands.add_parser("audit", help="search the audit trail (auditor role)")
    audit_cmd.add_argument("audit_command", choices=["search"], metavar="search")
    audit_cmd.add_argument(
        "--audit-url", default=os.environ.get("SWITCHBOARD_AUDIT_URL", audit.DEFAULT_URL), help="audit API base URL"
    )
    audit_cmd.add_argument("--token", default=os.environ.get("SWITCHBOARD_AUDIT_TOKEN"), help="auditor bearer token")
    for name in audit.FILTERS:
        audit_cmd.add_argument(
            f"--{name}", help="e.g. now-7d or 2026-11-01T00:00:00Z" if name in ("since", "until") else None
        )
    audit_cmd.add_argument("--text", help="words that must all be in the (masked) message")
    audit_cmd.add_argument("--limit", type=int, default=50, help="events shown (newest first)")
    audit_cmd.add_argument("--json", action="store_true", help="one JSON document per line instead of a table")
    audit_cmd.add_argument("--out", type=Path, help="export every matching event to this NDJSON file")
    models_cmd = commands.add_parser("models", help="list, load or unload the models of a Triton server")
    models_cmd.add_argument("action", choices=["list", "load", "unload"], nargs="?", default="list")
    models_cmd.add_argument("name", nargs="?", help="model to load or unload")
    models_cmd.add_argument(
        "--triton", default=os.environ.get("SWITCHBOARD_TRITON_URL", "http://127.0.0.1:18000"), help="Triton HTTP URL"
    )
    args = parser.parse_args()
    if args.command == "models":
        console = Console()
        try:
            if args.action == "list":
                return models.show(args.triton, console)
            if not args.name:
                parser.error(f"models {args.action} needs a model name")
            return models.change(args.triton, args.action, args.name, console)
        except httpx.HTTPError as exc:
            Console(stderr=True).print(f"[red]cannot reach Triton at {args.triton}:[/red] {exc}")
            return 1
    if args.command == "token":
        secret = args.secret_file.read_text().strip()
        sys.stdout.write(
            mint(secret, args.subject, args.scope or ["chat"], ttl_s=args.ttl, audience=args.audience) + "\n"
        )
        return 0
    if args.command == "audit":
        if not args.token:
            Console(stderr=True).print("[red]no token:[/red] pass --token or set SWITCHBOARD_AUDIT_TOKEN")
            return 2
        filters = {name: getattr(args, name) for name in audit.FILTERS} | {"q": args.text}
        try:
            return audit.search(args.audit_url, args.token, filters, args.limit, args.json, args.out)
        except httpx.HTTPError as exc:
            Console(stderr=True).print(f"[red]cannot reach {args.audit_url}:[/red] {exc}")
            return 1
    if not args.token:
        Console(stderr=True).print("[red]no token:[/red] pass --token or set SWITCHBOARD_TOKEN (see switchboard token)")
        return 2
    try:
        return chat(args.url, args.token, args.text, args.new, args.timeout)
    except httpx.HTTPError as exc:
        Console(stderr=True).print(f"[red]cannot reach {args.url}:[/red] {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
