"""Connection settings shared by producers, consumers and admin clients."""

from __future__ import annotations

import ssl
from typing import Any

from switchboard.common import tls
from switchboard.common.config import KafkaSettings


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of ``settings`` (SSL and SASL_SSL), or None for a plaintext link."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    return tls.client_context(settings.ssl_cafile, settings.ssl_certfile, settings.ssl_keyfile)


def connection_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """aiokafka keyword arguments for the security settings in ``settings``."""
    kwargs: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if (context := ssl_context(settings)) is not None:
        kwargs["ssl_context"] = context
    if settings.sasl_mechanism:
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = settings.sasl_password.get_secret_value() if settings.sasl_password else None
    return kwargs
