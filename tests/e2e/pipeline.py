"""Starts the five services as real processes against the local stack, isolated from any
other run: their own topics, consumer groups, PostgreSQL schema, data stream and ports."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchboard.cli.tokens import mint
from switchboard.common.config import TopicSettings
from switchboard.common.kafka import positions
from switchboard.events.v1 import envelope_pb2
from switchboard.events.v1 import messages_pb2 as m
from switchboard.intent_parser.app import internal_topics
from switchboard.intent_parser.config import Settings as ParserSettings
from tests.command_lines import command_lines, leaked
from tests.conftest import Stack

LOGS = Path(__file__).resolve().parents[2] / ".state" / "logs" / "e2e"
# Intent models by fingerprint of their inputs: the first parser trains, the others load.
MODEL_CACHE = Path(__file__).resolve().parents[2] / ".state" / "cache" / "intent-model"
SERVICES = {  # module -> environment prefix
    "channel_gateway": "SB_GATEWAY_",
    "intent_parser": "SB_PARSER_",
    "scheduler": "SB_SCHEDULER_",
    "inference_client": "SB_INFERENCE_",
    "audit_logger": "SB_AUDIT_",
    "plugin_units": "SB_UNITS_",  # the example plugin: started only where a test names it
}
CORE = ("channel_gateway", "intent_parser", "scheduler", "inference_client", "audit_logger")
ECHO_ROUTES = {"general": {"model": "echo_stream", "kind": "echo"}}
# The gateways audit repeated 401s as a summary after each window of this many seconds
# (60 in production): short, so that a test sees the summary soon.
REJECTION_WINDOW_S = 2
# The settings that hold secrets, which must never be on a command line.
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|KEY")


async def read_records(stack: Stack, topic: str, partitions: int = 6) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on ``topic`` now, in partition order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out = [record async for record in positions.to_end(consumer, tps)]
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def refusals(audited: list[envelope_pb2.Envelope]) -> list[m.AuditEvent]:
    """Each refused request among the ``audited`` envelopes, once: the gateway audits the
    401s of one client, method and path after the first of a window as one summary, which
    stands for its ``count`` here."""
    out: list[m.AuditEvent] = []
    for envelope in audited:
        event = envelope.audit_event
        if event.action == "request.rejected.summary":
            out += [event] * int(event.labels["count"])
        elif event.action == "request.rejected":
            out.append(event)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pipeline:
    stack: Stack
    replicas: int = 1
    routes: dict[str, Any] = field(default_factory=lambda: dict(ECHO_ROUTES))
    # Extra settings per module, without its prefix: {"channel_gateway": {"TELEGRAM_MODE": "webhook"}}
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    processes: list[tuple[str, subprocess.Popen[bytes], int]] = field(default_factory=list)
    gateway_urls: list[str] = field(default_factory=list)
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # Which services to start (the five unless a test adds the plugin or a benchmark wants one alone).
    modules: tuple[str, ...] = CORE
    # Replicas of each topic it creates (3 on the chaos suite's three-broker cluster, with
    # min.insync.replicas 2, like production).
    replication: int = 1
    # Processes started so far (numbers each one's log file).
    spawned: int = 0
    # Every service over TLS: Kafka's SASL_SSL listeners (and a SCRAM login), PostgreSQL (verify-full),
    # MQTT's TLS port (tests/e2e/home.py), each verified against the stack's CA.
    tls: bool = False
    # Export every service's spans to the stack's trace backend (off: no spans are recorded).
    tracing: bool = False
    # How long a process may take to serve. Ten may start at once on two cores; an intent
    # parser that finds no saved model of its inputs trains first: about 15 s alone, 55 s
    # beside a second replica, 84 s beside the chaos suite's three brokers.
    start_timeout_s: float = 180
    # Each running process's replica slot, by pid (a replacement takes the lowest free one).
    slots: dict[int, int] = field(default_factory=dict)
    _secrets: dict[str, str] = field(default_factory=dict)  # every spawned process's, by setting
    log_dir: Path = LOGS

    def __post_init__(self) -> None:
        self.topics = TopicSettings(
            **{name: f"e2e.{self.run_id}.{name}" for name in TopicSettings.model_fields}  # type: ignore[arg-type]
        )
        self.schema = f"e2e_{self.run_id}"
        self.gateway_schema = f"e2e_{self.run_id}_gateway"
        self.namespace = f"e2e{self.run_id}"
        self.data_stream = f"logs-switchboard.audit-{self.namespace}"
        self.parser_settings = ParserSettings(topic_prefix=f"e2e.{self.run_id}.parser")
        self.units_requests = f"e2e.{self.run_id}.plugin_units_requests"

    @property
    def pg_dsn(self) -> str:
        """The services' PostgreSQL DSN: over TLS with the stack's CA and the host name checked
        when ``tls``, named after the run either way (pg_stat_activity.application_name)."""
        params = f"application_name=e2e-{self.run_id}"
        if self.tls:
            params += f"&sslmode=verify-full&sslrootcert={self.stack.tls_ca_file}"
        return f"{self.stack.pg_dsn}?{params}"

    def all_topics(self) -> list[str]:
        """The business topics, the intent parser's own (its people topic, its changelogs) and
        the example plugin's request topic."""
        return [*self.topics.model_dump().values(), *internal_topics(self.parser_settings), self.units_requests]

    def token(self, subject: str = "e2e-user", scopes: tuple[str, ...] = ("chat",)) -> str:
        """A bearer token the pipeline's gateways accept."""
        return mint(self.jwt_secret, subject, list(scopes))

    def client(self, url: str, timeout: float = 60, subject: str = "e2e-user", **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client of the gateway at ``url``, authenticated as ``subject`` (chat scope)."""
        headers = {"Authorization": f"Bearer {self.token(subject)}"}
        return httpx.AsyncClient(base_url=url, timeout=timeout, headers=headers, **kwargs)

    def group_id(self, module: str) -> str:
        """The Kafka consumer group (the parser's Faust app id) of ``module``'s replicas."""
        return f"e2e-{self.run_id}-{module}"

    def env(self, module: str, replica: int, health_port: int) -> dict[str, str]:
        prefix = SERVICES[module]
        values: dict[str, str] = {
            "KAFKA__BOOTSTRAP_SERVERS": self.stack.kafka_bootstrap,
            "KAFKA__CLIENT_ID": f"e2e-{module}-{replica}",
            "HEALTH_PORT": str(health_port),
            "METRICS_PORT": "0",
            "LOG_LEVEL": "INFO",
        }
        if self.tracing:
            values["OTLP_ENDPOINT"] = self.stack.otlp_endpoint
        values.update({f"TOPICS__{name.upper()}": topic for name, topic in self.topics.model_dump().items()})
        if self.tls:  # the SASL_SSL listeners only (TLS and a SCRAM login): the brokers answer with those addresses
            values.update(
                {
                    "KAFKA__BOOTSTRAP_SERVERS": self.stack.kafka_sasl_bootstrap,
                    "KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
                    "KAFKA__SSL_CAFILE": self.stack.tls_ca_file,
                    "KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
                    "KAFKA__SASL_USERNAME": self.stack.kafka_scram_user,
                    "KAFKA__SASL_PASSWORD": self.stack.kafka_scram_password,
                }
            )
        group = self.group_id(module)
        if module == "channel_gateway":
            port = free_port()
            self.gateway_urls.append(f"http://127.0.0.1:{port}")
            values.update(
                {
                    "HTTP_PORT": str(port),
                    "ID_SECRET": f"e2e-ids-{self.run_id}",
                    "JWT_SECRET": self.jwt_secret,
                    "DATABASE_URL": self.pg_dsn,
                    "DATABASE_SCHEMA": self.gateway_schema,
                    # One MQTT session per replica slot, taken over by the slot's next
                    # process (as a StatefulSet's pod keeps its name): a killed replica's
                    # queued device messages go to its successor. Unused without MQTT_HOST.
                    "MQTT_CLIENT_ID": f"e2e-{self.run_id}-gateway-{replica}",
                    "REJECTION_WINDOW_S": str(REJECTION_WINDOW_S),
                    # Voice notes and pictures go to the stack's media store.
                    "MEDIA__ENDPOINT_URL": self.stack.objectstore_url,
                    "MEDIA__BUCKET": self.stack.media_bucket,
                    "MEDIA__ACCESS_KEY": self.stack.objectstore_access_key,
                    "MEDIA__SECRET_KEY": self.stack.objectstore_secret_key,
                }
            )
        elif module == "intent_parser":
            # The gateway's limit is what the pipeline tests exercise; the parser's has its own tests.
            values.update(
                {
                    "APP_ID": group,
                    "TOPIC_PREFIX": self.parser_settings.topic_prefix,
                    "RATE_LIMIT": "0",
                    "MODEL_CACHE_DIR": str(MODEL_CACHE),
                }
            )
        elif module == "scheduler":
            values.update(
                {
                    "GROUP_ID": group,
                    "DATABASE_URL": self.pg_dsn,
                    "DATABASE_SCHEMA": self.schema,
                    "MAX_TOKENS": "32",
                }
            )
        elif module == "inference_client":
            values.update(
                {"GROUP_ID": group, "TRITON_URL": self.stack.triton_grpc_url, "ROUTES": json.dumps(self.routes)}
            )
        elif module == "plugin_units":
            values.update({"REQUEST_TOPIC": self.units_requests})
        elif module == "audit_logger":
            values.update(
                {
                    "GROUP_ID": group,
                    "ELASTICSEARCH_URL": self.stack.es_url,
                    "NAMESPACE": self.namespace,
                    "CHAIN_KEY": f"e2e-chain-key-{self.run_id}",
                    # This run's plugin request topic, not the stack's shared ones.
                    "PLUGIN_REQUEST_PATTERN": re.escape(self.units_requests),
                }
            )
        values.update(self.extra_env.get(module, {}))
        base = {k: v for k, v in os.environ.items() if not k.startswith("SB_")}
        # A service that dies of a signal (e.g. a crash in a C extension) leaves its
        # Python stack in its log instead of nothing.
        base["PYTHONFAULTHANDLER"] = "1"
        return {**base, **{prefix + k: v for k, v in values.items()}}

    async def start(self) -> None:
        await self._create_topics()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for module in self.modules:
            for replica in range(self.replicas):
                self.processes.append(self._spawn(module, replica))
        try:
            await asyncio.gather(*(self._wait_serving(module, proc, port) for module, proc, port in self.processes))
            leaks = leaked(self._secrets, command_lines())
            assert not leaks, f"secrets on a command line while the services run: {sorted(leaks)}"
        except BaseException:
            await self.stop()  # never leave orphans behind a failed start
            raise

    def _spawn(self, module: str, replica: int) -> tuple[str, subprocess.Popen[bytes], int]:
        port = free_port()
        # One file per process: a restarted replica gets the next number, the old log stays.
        self.spawned += 1
        env = self.env(module, replica, port)
        # What it is given as a secret (at least 16 characters, as the services require).
        self._secrets.update({k: v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 16})
        with open(self.log_dir / f"{self.run_id}-{module}-{replica}.{self.spawned}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", f"switchboard.{module}"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.slots[proc.pid] = replica
        return module, proc, port

    def log_tails(self, lines: int = 25) -> str:
        """The last ``lines`` of every process's log in this run, for a failure message."""
        parts = []
        for path in sorted(self.log_dir.glob(f"{self.run_id}-*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    async def restart(
        self, module: str, while_down: Callable[[], Awaitable[None]] | None = None, sig: int = signal.SIGTERM
    ) -> None:
        """Stop every replica of ``module`` (``sig``), run ``while_down``, start it again."""
        for entry in self.replicas_of(module):
            await self.end(entry, sig)
            if while_down is not None:
                await while_down()
            await self.add_replica(module)

    def replicas_of(self, module: str) -> list[tuple[str, subprocess.Popen[bytes], int]]:
        return [entry for entry in self.processes if entry[0] == module]

    async def end(self, entry: tuple[str, subprocess.Popen[bytes], int], sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to one process and wait until it is gone."""
        entry[1].send_signal(sig)
        await asyncio.to_thread(entry[1].wait, 30)
        self.processes.remove(entry)

    async def add_replica(self, module: str) -> None:
        """Start one more replica of ``module`` in its lowest free slot and wait until it serves."""
        taken = {self.slots[proc.pid] for _, proc, _ in self.replicas_of(module)}
        self.processes.append(self._spawn(module, min(set(range(len(taken) + 1)) - taken)))
        await self._wait_serving(*self.processes[-1])

    async def stop_module(self, module: str) -> None:
        """SIGTERM every replica of ``module`` and wait for it to exit (cleanly)."""
        for entry in self.replicas_of(module):
            entry[1].send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(entry[1].wait, 30)
            assert code == 0, f"{module} exited with {code}"
            self.processes.remove(entry)

    async def stop(self) -> dict[str, int | None]:
        """SIGTERM every process; returns each one's exit code (None if it had to be killed)."""
        for _, proc, _ in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for module, proc, port in self.processes:
            try:
                codes[f"{module}:{port}"] = await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[f"{module}:{port}"] = None
        await self._drop()
        return codes

    async def _wait_serving(self, module: str, proc: subprocess.Popen[bytes], port: int) -> None:
        async with asyncio.timeout(self.start_timeout_s):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{module} exited with {proc.returncode}; see {self.log_dir}")
                try:
                    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                        reply = await health_pb2_grpc.HealthStub(channel).Check(
                            health_pb2.HealthCheckRequest(service=""), timeout=1
                        )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.2)

    async def _create_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.stack.kafka_bootstrap)
        await admin.start()
        try:
            configs = {"min.insync.replicas": "2"} if self.replication >= 3 else {}
            await admin.create_topics(
                [NewTopic(t, 6, self.replication, topic_configs=configs) for t in self.all_topics()]
            )
        finally:
            await admin.close()

    async def _drop(self) -> None:
        if os.environ.get("SB_E2E_KEEP"):  # keep topics and schema to investigate a failure
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.stack.kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics(self.all_topics())
        finally:
            await admin.close()
        conn = await asyncpg.connect(self.stack.pg_dsn)
        try:
            # The scheduler's schema and the gateway's.
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}", "{self.gateway_schema}" CASCADE')
        finally:
            await conn.close()
