"""The clients' TLS: certificates verified against the given CA, host names checked, TLS 1.2
at least, a client certificate presented where one is configured. Real handshakes with a
loopback server; certificates from trustme."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from switchboard.common import tls
from switchboard.common.config import KafkaSettings
from switchboard.common.kafka.security import connection_kwargs


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


async def _server(context: ssl.SSLContext) -> tuple[asyncio.Server, int, list[str]]:
    """A loopback TLS server that answers "ok" and records each client certificate's DNS names."""
    seen: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert")
        seen.append(",".join(name for kind, name in peer.get("subjectAltName", ()) if kind == "DNS") if peer else "")
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    return server, server.sockets[0].getsockname()[1], seen


async def _talk(port: int, context: ssl.SSLContext, host: str = "localhost") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=host)
    try:
        return await reader.read(2)
    finally:
        writer.close()


@pytest.fixture
async def server(ca: trustme.CA) -> AsyncIterator[tuple[int, list[str]]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_OPTIONAL  # a client certificate is checked when given
    running, port, seen = await _server(context)
    yield port, seen
    running.close()
    await running.wait_closed()


async def test_the_server_is_verified_against_the_given_ca(
    ca: trustme.CA, server: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, _ = server
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    context = tls.client_context(tmp_path / "ca.pem")
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2 and context.check_hostname
    assert await _talk(port, context) == b"ok"
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):  # another host name
        await _talk(port, context, host="kafka.example.com")
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other.pem"))
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):  # another CA
        await _talk(port, tls.client_context(tmp_path / "other.pem"))


async def test_a_configured_client_certificate_is_presented(
    ca: trustme.CA, server: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, seen = server
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client = ca.issue_cert("scheduler.switchboard")
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    context = tls.client_context(tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key")
    assert await _talk(port, context) == b"ok"
    assert seen == ["scheduler.switchboard"]
    with pytest.raises(ValueError, match="certificate"):
        tls.client_context(tmp_path / "ca.pem", keyfile=tmp_path / "client.key")


def test_kafka_over_tls_gets_a_verifying_context_and_plaintext_none(ca: trustme.CA, tmp_path: Path) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    assert "ssl_context" not in connection_kwargs(KafkaSettings())
    for protocol in ("SSL", "SASL_SSL"):
        kwargs = connection_kwargs(KafkaSettings(security_protocol=protocol, ssl_cafile=tmp_path / "ca.pem"))
        assert kwargs["security_protocol"] == protocol
        assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED and kwargs["ssl_context"].check_hostname
