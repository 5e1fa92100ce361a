"""The NetworkPolicies against what the services are configured to talk to.

Each service's connections are derived from its own Settings (every field naming something
it connects to) and its production ConfigMap (the ports used); each must be a flow of
deploy/k8s/network/flows.yaml, and the rendered policies (policies.yaml, evaluated here the
way Kubernetes does) must allow exactly the catalogued flows and deny the rest."""

from __future__ import annotations

import importlib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NETWORK = ROOT / "deploy" / "k8s" / "network"
CATALOGUE: dict[str, Any] = yaml.safe_load((NETWORK / "flows.yaml").read_text())
POLICIES = [doc for doc in yaml.safe_load_all((NETWORK / "policies.yaml").read_text()) if doc]
NAMESPACE = "switchboard"
NAME = "app.kubernetes.io/name"
SERVICES = {  # workload -> (settings module, environment prefix)
    "channel-gateway": ("switchboard.channel_gateway.config", "SB_GATEWAY_"),
    "intent-parser": ("switchboard.intent_parser.config", "SB_PARSER_"),
    "scheduler": ("switchboard.scheduler.config", "SB_SCHEDULER_"),
    "inference-client": ("switchboard.inference_client.config", "SB_INFERENCE_"),
    "audit-logger": ("switchboard.audit_logger.config", "SB_AUDIT_"),
    "plugin-units": ("switchboard.plugin_units.config", "SB_UNITS_"),
}
# Settings fields that name an address but are not a connection the service makes.
LISTENS = {"health_host", "metrics_host", "http_host", "api_host"}  # where it listens
NOT_CONNECTIONS = {"telegram_webhook_url": "the gateway's public address, which Telegram calls"}


def connections(workload: str) -> set[str]:
    """The Settings fields of ``workload`` that name something it connects to."""
    module, _ = SERVICES[workload]
    settings = importlib.import_module(module).Settings
    fields = {name for name in settings.model_fields if re.search(r"_(url|host|endpoint|address)$", name)}
    return {"kafka.bootstrap_servers"} | (fields - LISTENS - set(NOT_CONNECTIONS))


@pytest.mark.parametrize("workload", sorted(SERVICES))
def test_every_connection_a_service_can_make_is_a_catalogued_flow(workload: str) -> None:
    declared = set(CATALOGUE["workloads"][workload].get("connects") or {})
    missing = connections(workload) - declared
    assert not missing, f"{workload} connects to {sorted(missing)}: add a flow to deploy/k8s/network/flows.yaml"
    assert not declared - connections(workload), f"{workload}: flows for settings it no longer has"


@pytest.mark.parametrize("workload", sorted(SERVICES))
def test_the_production_config_uses_the_ports_the_flows_allow(workload: str) -> None:
    _, prefix = SERVICES[workload]
    config = next(yaml.safe_load_all((ROOT / "deploy" / "k8s" / workload / "configmap.yaml").read_text()))["data"]
    flows = CATALOGUE["workloads"][workload]["connects"]
    for setting, target in flows.items():
        value = config.get(prefix + setting.upper().replace(".", "__"), "")
        if not value:
            continue  # from a Secret, or off
        url = urlsplit(value if "://" in value else f"tcp://{value.split(',')[0]}")
        ports = {int(str(p).split("/")[0]) for p in CATALOGUE["peers"][target]["ports"]}
        assert url.port in ports, f"{workload}: {setting} = {value} is not on a port of {target} ({sorted(ports)})"
    listening = {
        int(config[prefix + name.upper().replace("_HOST", "_PORT")])
        for name in LISTENS
        if prefix + name.upper() in config
    }
    accepted = {int(p) for p in CATALOGUE["workloads"][workload]["accepts"]}
    probes = {int(config[prefix + "HEALTH_PORT"])}  # the kubelet's, not subject to policies
    assert listening - probes == accepted, f"{workload} listens on {sorted(listening)}, accepts {sorted(accepted)}"


@dataclass(frozen=True)
class Endpoint:
    """One side of a connection: a pod (namespace, labels) or an address outside."""

    namespace: str = NAMESPACE
    labels: dict[str, str] = field(default_factory=dict)
    ip: str = "10.0.0.9"

    def __hash__(self) -> int:
        return hash((self.namespace, tuple(sorted(self.labels.items())), self.ip))


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _peer_matches(peer: dict[str, Any], other: Endpoint, policy_namespace: str = NAMESPACE) -> bool:
    if "ipBlock" in peer:
        if other.labels:  # a pod: ipBlock is for addresses outside the cluster
            return False
        ip = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": other.namespace}):
            return False
    elif other.namespace != policy_namespace:
        return False
    return bool(other.labels) and _selects(peer.get("podSelector") or {}, other.labels)


def _port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    return not ports or any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports)


def allowed(source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
    """Whether the policies let ``source`` open ``destination:port`` (both sides' policies)."""

    def side(pod: Endpoint, kind: str, rules_key: str, peers_key: str, other: Endpoint) -> bool:
        if pod.namespace != NAMESPACE or not pod.labels:
            return True  # not in Switchboard's namespace: not ours to restrict
        selecting = [
            p for p in POLICIES if kind in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod.labels)
        ]
        return not selecting or any(
            any(_peer_matches(peer, other) for peer in rule.get(peers_key) or [])
            and _port_matches(rule.get("ports"), port, protocol)
            for policy in selecting
            for rule in policy["spec"].get(rules_key) or []
        )

    return side(source, "Egress", "egress", "to", destination) and side(
        destination, "Ingress", "ingress", "from", source
    )


def pod(workload: str, **extra: str) -> Endpoint:
    return Endpoint(labels={NAME: workload, **extra})


def peer_endpoint(name: str) -> Endpoint:
    spec = CATALOGUE["peers"][name]
    if "cidr" in spec:
        return Endpoint(namespace="", ip="203.0.113.7")
    return Endpoint(namespace=spec.get("namespace", NAMESPACE), labels=dict(spec.get("pods", {})))


def _ports(name: str) -> list[tuple[int, str]]:
    return [(int(p.split("/")[0]), [*p.split("/"), "TCP"][1]) for p in map(str, CATALOGUE["peers"][name]["ports"])]


@pytest.mark.parametrize("workload", sorted(CATALOGUE["workloads"]))
def test_the_policies_allow_exactly_the_catalogued_connections(workload: str) -> None:
    flows = CATALOGUE["workloads"][workload]
    wanted = set((flows.get("connects") or {}).values()) | {"dns"}
    for name in CATALOGUE["peers"]:
        if "ports" not in CATALOGUE["peers"][name]:
            continue  # a peer that only connects to us
        for number, protocol in _ports(name):
            verdict = allowed(pod(workload), peer_endpoint(name), number, protocol)
            assert verdict == (name in wanted), f"{workload} -> {name}:{number}/{protocol}: {verdict}"
    # Nothing to another workload directly: they talk through Kafka...
    for other in CATALOGUE["workloads"]:
        if other != workload and other != "triton":
            assert not allowed(pod(workload), pod(other), 8080)
    # ... and the internet only where catalogued, never a private address on 443.
    assert not allowed(pod(workload), Endpoint(namespace="", ip="10.1.2.3"), 443)


def test_who_may_connect_to_the_services() -> None:
    prometheus, ingress = peer_endpoint("prometheus"), peer_endpoint("ingress-controller")
    assert allowed(pod("inference-client"), pod("triton"), 8001)
    assert not allowed(pod("channel-gateway"), pod("triton"), 8001)  # Triton: the inference client only
    assert not allowed(pod("inference-client"), pod("triton"), 8000)  # its HTTP port: no one
    assert allowed(prometheus, pod("triton"), 8002)
    assert allowed(pod("reports", **{"switchboard.io/inference-caller": "true"}), pod("inference-client"), 50051)
    assert not allowed(pod("reports"), pod("inference-client"), 50051)  # not a designated caller
    assert not allowed(pod("channel-gateway"), pod("inference-client"), 50051)
    assert allowed(ingress, pod("channel-gateway"), 8080) and allowed(ingress, pod("audit-logger"), 8080)
    assert not allowed(ingress, pod("scheduler"), 9090) and not allowed(ingress, pod("inference-client"), 50051)
    assert not allowed(Endpoint(namespace="default", labels={"app": "x"}), pod("channel-gateway"), 8080)
    for workload in SERVICES:
        assert allowed(prometheus, pod(workload), 9090)
