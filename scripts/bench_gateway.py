"""Gateway benchmark: webhook acknowledgement latency under load, and how many WebSocket
sessions one gateway process holds, in one run.

    make up                           # the stack (Kafka, PostgreSQL; the services are not used)
    .venv/bin/python scripts/bench_gateway.py [--rates 50,100,200,400] [--sessions 20000]

1. Webhook: a gateway alone (Telegram webhook mode, a stand-in Bot API) gets Updates POSTed
   at fixed rates, open loop, each from its own user; the acknowledgement (200) comes once
   the message is on Kafka and remembered in PostgreSQL. Prints p50/p99 per rate.
2. WebSocket: a fresh gateway alone; sessions are opened in steps, each authenticated and
   sending a chat message every 10 s (staggered); a step counts as held when every session is
   connected and every message is acknowledged ("accepted") within 2 s. Prints, per step,
   the gateway's RSS (and per 1 000 sessions), acknowledgement p99 and failures; stops at the
   first step not held. The clients live in ``--client-processes`` worker processes, so no
   process needs more descriptors than the machine allows one (the gateway needs one per
   session: the largest step is capped below its descriptor limit, and the table says so).

Both parts run the gateway as a real process against the real Kafka and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import load_stack
from tests.e2e.pipeline import Pipeline
from tests.e2e.test_telegram import _update
from tests.fakes.telegram_bot_api import FakeBotApi

console = Console(width=120)
BOT_TOKEN = "123456:bench-token"  # noqa: S105 (the stand-in Bot API's)
WEBHOOK_SECRET = "bench-webhook-secret"  # noqa: S105 (a local benchmark value)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def webhook_latency(url: str, rate: int, duration_s: float, first_id: int) -> tuple[list[float], int]:
    """POST ``rate`` updates a second for ``duration_s``, open loop; latencies (ms) and errors."""
    latencies: list[float] = []
    errors = 0
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET, "content-type": "application/json"}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(update_id: int) -> None:
            nonlocal errors
            body = _update(update_id, "hello", chat_id=update_id % 100_000 + 1)  # a user per update
            started = time.perf_counter()
            try:
                response = await client.post("/v1/channels/telegram/webhook", content=body, headers=headers)
            except httpx.HTTPError:
                errors += 1
                return
            if response.status_code != 200:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

        tasks = []
        start = time.perf_counter()
        total = int(rate * duration_s)
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(first_id + i)))
        await asyncio.gather(*tasks)
    return latencies, errors


@dataclass
class Sessions:
    """WebSocket clients, each sending a message every ``period_s``."""

    url: str
    token: str
    period_s: float = 10.0
    sockets: list[ClientConnection] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    failures: int = 0
    stopping: bool = False

    async def open(self, count: int) -> None:
        async def one() -> None:
            try:
                socket = await connect(self.url, open_timeout=30, ping_interval=None, max_queue=64)
                await socket.send(json.dumps({"type": "auth", "token": self.token}))
                assert json.loads(await socket.recv())["type"] == "ready"
                await socket.send(json.dumps({"type": "conversation"}))
                conversation = json.loads(await socket.recv())["conversation_id"]
            except (OSError, TimeoutError, ValueError, KeyError, AssertionError, ConnectionClosed):
                # counted: the step is then not held
                self.failures += 1
                return
            self.sockets.append(socket)
            self.tasks.append(asyncio.create_task(self._talk(socket, conversation)))

        gate = asyncio.Semaphore(200)

        async def gated() -> None:
            async with gate:
                await one()

        await asyncio.gather(*(gated() for _ in range(count)))

    async def _talk(self, socket: ClientConnection, conversation: str) -> None:
        await asyncio.sleep(random.uniform(0, self.period_s))  # noqa: S311 (staggering, not crypto)
        while not self.stopping:
            sent = time.perf_counter()
            try:
                await socket.send(json.dumps({"type": "message", "conversation_id": conversation, "text": "hi"}))
                while True:
                    frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
                    if frame["type"] == "accepted":
                        self.ack_ms.append((time.perf_counter() - sent) * 1000)
                        break
                    if frame["type"] == "error":
                        self.failures += 1
                        break
            except (OSError, TimeoutError, ValueError, KeyError, ConnectionClosed):
                self.failures += 1
                return
            await asyncio.sleep(max(0.0, self.period_s - (time.perf_counter() - sent)))

    async def close(self) -> None:
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(s.close() for s in self.sockets), return_exceptions=True)


def _client_worker(url: str, token: str, commands: Connection) -> None:
    """A process of WebSocket clients, driven over ``commands``: ("open", n) -> sessions
    open; ("collect", None) -> (acknowledgement ms, failures) since the last collect;
    ("close", None)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def serve() -> None:
        sessions = Sessions(url, token)
        loop = asyncio.get_running_loop()
        while True:
            command, argument = await loop.run_in_executor(None, commands.recv)
            if command == "open":
                await sessions.open(argument)
                commands.send(len(sessions.sockets))  # how many are open
            elif command == "collect":
                commands.send((sessions.ack_ms, sessions.failures))
                sessions.ack_ms = []
            else:
                await sessions.close()
                commands.send(None)
                return

    asyncio.run(serve())


class Clients:
    """``Sessions`` spread over worker processes, opened and measured together."""

    def __init__(self, url: str, token: str, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._workers = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            worker = context.Process(target=_client_worker, args=(url, token, theirs), daemon=True)
            worker.start()
            self._pipes.append(ours)
            self._workers.append(worker)
        self.count = 0

    async def _ask(self, command: str, arguments: list[Any]) -> list[Any]:
        for pipe, argument in zip(self._pipes, arguments, strict=True):
            pipe.send((command, argument))
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(None, pipe.recv) for pipe in self._pipes)))

    async def open(self, count: int) -> None:
        shares = [count // len(self._pipes) + (i < count % len(self._pipes)) for i in range(len(self._pipes))]
        self.count = sum(await self._ask("open", shares))

    async def collect(self) -> tuple[list[float], int]:
        """Acknowledgement latencies since the last collect, and failures so far."""
        answers = await self._ask("collect", [None] * len(self._pipes))
        acks = [ms for ms_list, _ in answers for ms in ms_list]
        return acks, sum(failures for _, failures in answers)

    async def close(self) -> None:
        await self._ask("close", [None] * len(self._pipes))
        for worker in self._workers:
            worker.join(timeout=30)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="50,100,200,400", help="webhook updates per second, comma-separated")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per webhook rate")
    parser.add_argument("--sessions", type=int, default=20_000, help="WebSocket sessions to reach")
    parser.add_argument("--step", type=int, default=2_500, help="sessions added per step")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds each step is held")
    parser.add_argument("--client-processes", type=int, default=2, help="processes the WebSocket clients run in")
    args = parser.parse_args()

    # The gateway holds a descriptor per session: raise the limit as far as allowed (as root,
    # up to the kernel's nr_open, unless the machine caps the hard limit); it is inherited.
    wanted = args.sessions + 4096
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), max(hard, wanted)))
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # Kafka, PostgreSQL, the listening socket and the gateway's own files need some too.
    most_sessions = min(args.sessions, fd_limit - 500)
    console.print(f"file descriptors per process: {fd_limit}; at most {most_sessions} sessions")

    stack = load_stack()
    bot_api = FakeBotApi(BOT_TOKEN)
    await bot_api.start()

    # 1. Webhook acknowledgement latency.
    webhook = Table(title="Telegram webhook: acknowledgement latency (gateway alone, open loop)")
    for column in ("rate /s", "sent", "errors", "p50 ms", "p99 ms", "max ms"):
        webhook.add_column(column, justify="right")
    pipeline = Pipeline(stack, modules=("channel_gateway",))
    pipeline.extra_env = {
        "channel_gateway": {
            "TELEGRAM_MODE": "webhook",
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "TELEGRAM_API_URL": bot_api.url,
            "LOG_LEVEL": "WARNING",
        }
    }
    await pipeline.start()
    try:
        url = pipeline.gateway_urls[0]
        await webhook_latency(url, 20, 2, first_id=1)  # warm up
        next_id = 1_000
        with Progress(console=console, transient=True) as progress:
            rates = [int(r) for r in args.rates.split(",")]
            bar = progress.add_task("webhook load", total=len(rates))
            for rate in rates:
                latencies, errors = await webhook_latency(url, rate, args.duration, next_id)
                next_id += int(rate * args.duration) + 1
                webhook.add_row(
                    str(rate),
                    str(len(latencies) + errors),
                    str(errors),
                    f"{pct(latencies, 0.5):.1f}",
                    f"{pct(latencies, 0.99):.1f}",
                    f"{max(latencies, default=float('nan')):.1f}",
                )
                progress.advance(bar)
    finally:
        await pipeline.stop()
    console.print(webhook)

    # 2. WebSocket sessions held by one gateway process.
    sockets = Table(title="WebSocket sessions on one gateway process (a message per session every 10 s)")
    for column in ("sessions", "held", "RSS MiB", "MiB / 1 000", "ack p50 ms", "ack p99 ms", "failures"):
        sockets.add_column(column, justify="right")
    pipeline = Pipeline(stack, modules=("channel_gateway",))
    pipeline.extra_env = {"channel_gateway": {"RATE_LIMIT_PER_MINUTE": "0", "LOG_LEVEL": "WARNING"}}
    await pipeline.start()
    url = pipeline.gateway_urls[0].replace("http://", "ws://") + "/v1/ws"
    clients = Clients(url, pipeline.token(), args.client_processes)
    gateway_pid = pipeline.processes[0][1].pid
    try:
        idle_rss = rss_mib(gateway_pid)
        sockets.add_row("0", "yes", f"{idle_rss:.0f}", "", "", "", "0")
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task("opening sessions", total=most_sessions)
            while clients.count < most_sessions:
                await clients.open(min(args.step, most_sessions - clients.count))
                progress.update(bar, completed=clients.count)
                await clients.collect()  # latencies from while sessions were opening do not count
                await asyncio.sleep(args.hold)
                ack_ms, failures = await clients.collect()
                rss = rss_mib(gateway_pid)
                held = failures == 0 and pct(ack_ms, 0.99) <= 2000
                sockets.add_row(
                    str(clients.count),
                    "yes" if held else "no",
                    f"{rss:.0f}",
                    f"{(rss - idle_rss) / clients.count * 1000:.1f}",
                    f"{pct(ack_ms, 0.5):.1f}",
                    f"{pct(ack_ms, 0.99):.1f}",
                    str(failures),
                )
                if not held:
                    break
    finally:
        await clients.close()
        await pipeline.stop()
        await bot_api.stop()
    if most_sessions < args.sessions:
        sockets.caption = f"capped at {most_sessions}: {fd_limit} descriptors per process on this machine"
    console.print(sockets)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
