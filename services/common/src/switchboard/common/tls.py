"""TLS for the services' clients (Kafka, Faust, MQTT, PostgreSQL, Elasticsearch): one way to
make the context, so every link has the same floor.

Certificates are verified (against ``cafile``, or the system's CAs) and host names checked;
TLS 1.2 is the oldest version offered. ``certfile`` / ``keyfile`` (PEM) are the client's own
certificate and key, for servers that ask for one (mutual TLS).
"""

from __future__ import annotations

import ssl
from pathlib import Path


def client_context(
    cafile: Path | None = None, certfile: Path | None = None, keyfile: Path | None = None
) -> ssl.SSLContext:
    """A client context that verifies the server against ``cafile`` (the system's CAs when
    None) and presents ``certfile`` / ``keyfile`` when given."""
    if keyfile is not None and certfile is None:
        raise ValueError("a client key needs its certificate (certfile)")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cafile) if cafile else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile is not None:
        context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    return context
