"""``switchboard chat "hello"``: send a message and stream the reply as it is generated.

The conversation id is remembered in ~/.config/switchboard/conversation so that follow-up
messages keep their context; ``--new`` starts a fresh conversation.
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


def chat(url: str, text: str, new: bool, timeout_s: float) -> int:
    out, err = Console(), Console(stderr=True)
    with httpx.Client(base_url=url, timeout=timeout_s) as client:
        conversation = _conversation(client, new)
        body = {"conversation_id": conversation, "text": text, "wait": False}
        response = client.post("/v1/messages", json=body)
        if response.status_code == 404 and not new:
            # The gateway no longer knows the remembered conversation (e.g. a new secret).
            return chat(url, text, new=True, timeout_s=timeout_s)
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
    args = parser.parse_args()
    try:
        return chat(args.url, args.text, args.new, args.timeout)
    except httpx.HTTPError as exc:
        Console(stderr=True).print(f"[red]cannot reach {args.url}:[/red] {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
