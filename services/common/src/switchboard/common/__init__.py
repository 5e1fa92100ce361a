"""Shared library of the Switchboard services.

Modules:
    config     typed settings (pydantic-settings) shared by every service
    logging    JSON log lines with the current trace id
    tracing    W3C trace context helpers
    events     building and reading the protobuf Envelope
    kafka      producer and consumer with Switchboard's delivery guarantees
    health     grpc.health.v1 server
    metrics    Prometheus /metrics endpoint
    lifecycle  signal handling and graceful drain

This package is a library: it never runs on its own, and it never imports a service.
"""
