import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchboard.common.health import HealthServer
from switchboard.common.metrics import EVENTS_PRODUCED, MetricsServer


async def _check(port: int, service: str) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(response.status)


async def test_health_goes_from_not_serving_to_serving_and_back() -> None:
    server = HealthServer("127.0.0.1", 0, services=("switchboard.test",))
    await server.start()
    try:
        assert server.port > 0
        assert await _check(server.port, "") == health_pb2.HealthCheckResponse.NOT_SERVING
        await server.set_serving()
        assert await _check(server.port, "") == health_pb2.HealthCheckResponse.SERVING
        assert await _check(server.port, "switchboard.test") == health_pb2.HealthCheckResponse.SERVING
        await server.set_not_serving()
        assert await _check(server.port, "switchboard.test") == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        await server.stop(grace=0)


def test_metrics_endpoint_serves_switchboard_metrics() -> None:
    server = MetricsServer("127.0.0.1", 0)
    server.start()
    try:
        EVENTS_PRODUCED.labels(topic="t", event_type="InboundMessage").inc()
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            body = response.read().decode()
        assert 'switchboard_events_produced_total{event_type="InboundMessage",topic="t"}' in body
    finally:
        server.stop()
