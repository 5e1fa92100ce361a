"""Which targets a request tries, in order: one of the route's weighted targets (the
canary split), the route's other targets, then its fallbacks."""

from __future__ import annotations

import hashlib

from switchboard.inference_client.config import Route, Target


def route_for(profile: str, routes: dict[str, Route]) -> Route:
    """The route of ``profile``, falling back to "general"."""
    route = routes.get(profile) or routes.get("general")
    if route is None:
        raise LookupError(f"no model route for profile {profile!r} and no 'general' route")
    return route


def share(key: str) -> float:
    """A stable point in [0, 1) for ``key``: the same conversation always lands on the same
    side of a canary split, so it is not answered by two versions in turn."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def chain(route: Route, key: str) -> list[Target]:
    """The targets to try for ``key``, first choice first."""
    weighted = [t for t in route.targets if t.weight > 0]
    point = share(key) * sum(t.weight for t in weighted)
    chosen = weighted[-1]
    for target in weighted:
        if point < target.weight:
            chosen = target
            break
        point -= target.weight
    others = sorted((t for t in route.targets if t is not chosen), key=lambda t: -t.weight)
    return [chosen, *others, *route.fallback]
