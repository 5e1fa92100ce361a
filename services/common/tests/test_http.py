"""The services' HTTP servers keep idle connections longer than the clients in front of them."""

from __future__ import annotations

import asyncio

import httpx

from switchboard.common.http import HttpServer, listening, serve_http, server_config


async def _hello(scope: dict[str, object], receive: object, send: object) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


async def test_an_idle_connection_outlives_the_clients_keepalive() -> None:
    # httpx drops a pooled connection after 5 s idle; a server that closes at the same
    # moment loses a request sent just then ("server disconnected without sending a
    # response"). So the server's side must still be open after the client's has expired.
    client_expiry = httpx.Limits().keepalive_expiry
    assert client_expiry is not None
    server = HttpServer(server_config(_hello, "127.0.0.1", 0, ws="none"))
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_http(server, stop))
    await listening(server)
    port = server.servers[0].sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET / HTTP/1.1\r\nhost: test\r\n\r\n"
    try:
        for idle in (0, client_expiry + 0.5):  # the same connection, idle past the client's expiry
            await asyncio.sleep(idle)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            assert await reader.readexactly(2) == b"ok"
    finally:
        writer.close()
        stop.set()
        await serving
