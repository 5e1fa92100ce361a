"""Connection settings shared by producers, consumers and admin clients."""

from __future__ import annotations

from typing import Any

from switchboard.common.config import KafkaSettings


def connection_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """aiokafka keyword arguments for the security settings in ``settings``."""
    kwargs: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.sasl_mechanism:
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = settings.sasl_password.get_secret_value() if settings.sasl_password else None
    return kwargs
