"""Routes from a file (a Kubernetes ConfigMap, say), followed while the service runs: when
the file changes, the engine hot-switches to the new routes. A file that does not parse or
validate is logged and ignored; the routes in force stay."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from switchboard.inference_client.config import Route
from switchboard.inference_client.engine import Engine

logger = logging.getLogger(__name__)

_ROUTES = TypeAdapter(dict[str, Route])


def read(path: Path) -> dict[str, Route]:
    """The routes in ``path``; ValueError saying what is wrong otherwise."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not isinstance(raw.get("routes"), dict):
        raise ValueError(f"{path}: expected a mapping with a 'routes' mapping of profile -> route")
    try:
        return _ROUTES.validate_python(raw["routes"])
    except ValidationError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def follow(path: Path, engine: Engine, stop: asyncio.Event, poll_s: float, unload_unused: bool) -> None:
    """Switch ``engine`` to the file's routes whenever its content changes, until ``stop``."""
    seen = _digest(path)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_s)
        try:
            digest = _digest(path)
            if digest == seen:
                continue
            seen = digest
            routes = read(path)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            logger.error("routes file not applied; current routes stay", extra={"path": str(path), "error": str(exc)})
            continue
        try:
            unloaded = await engine.switch(routes, unload_unused)
        except Exception:
            logger.exception("hot switch failed; will retry when the file changes again")
            continue
        logger.info("hot switch done", extra={"profiles": sorted(routes), "unloaded": unloaded})
