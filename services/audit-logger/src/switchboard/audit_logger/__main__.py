"""``python -m switchboard.audit_logger``: run the service; ``… verify``: check the trail.

    python -m switchboard.audit_logger                    # the service
    python -m switchboard.audit_logger verify [--since now-7d] [--json]
    python -m switchboard.audit_logger replay --since 2026-11-01T00:00Z [--until …]

``verify`` recomputes every document's hash and follows each chain (see
:mod:`switchboard.audit_logger.chain`); it exits 1 if a document was edited or removed.
``replay`` re-indexes the records of a time range from Kafka (see
:mod:`switchboard.audit_logger.replay`). Settings come from the same ``SB_AUDIT_*`` environment as the service's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from switchboard.audit_logger.app import client, indexer, install, serve, tune_gc, verifier
from switchboard.audit_logger.config import Settings
from switchboard.audit_logger.replay import replay
from switchboard.audit_logger.retention import seconds
from switchboard.common import lifecycle


async def _verify(settings: Settings, since: str | None, as_json: bool) -> int:
    err = Console(stderr=True)
    async with client(settings) as es:
        index = settings.data_stream
        await es.indices.refresh(index=index)
        query = {"range": {"@timestamp": {"gte": since}}} if since else None
        total = (await es.count(index=index, query=query))["count"]  # (the progress bar's length)
        columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True, disable=as_json) as progress:
            task = progress.add_task("verify", total=total)
            report = await verifier(settings, es, progress=lambda n: progress.advance(task, n))(since)
    if as_json:
        sys.stdout.write(json.dumps(report.__dict__ | {"ok": report.ok}, indent=2) + "\n")
    else:
        out = Console()
        out.print(f"{report.checked} documents in {report.chains} chains checked")
        out.print(f"{report.anchors_checked} chain heads compared with their anchors in Kafka")
        for label, ids in (
            ("edited", report.edited),
            ("missing before", report.broken),
            ("chains rewritten after their anchor", report.rewritten),
            ("chains whose anchored newest document is gone", report.truncated),
            ("refused stubs", report.stubs),
        ):
            if ids:
                out.print(
                    f"[{'yellow' if label == 'refused stubs' else 'red'}]{label}:[/] {len(ids)}: {', '.join(ids[:20])}"
                )
        out.print("[green]intact[/green]" if report.ok else "[red]TAMPERED[/red]")
    return 0 if report.ok else 1


def _moment_ms(text: str) -> int:
    """A point in time as epoch ms: ISO 8601 (UTC unless it says otherwise) or an age ("7d")."""
    try:
        return int((time.time() - seconds(text)) * 1000)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


async def _replay(settings: Settings, since: str, until: str | None) -> int:
    err = Console(stderr=True)
    async with client(settings) as es:
        await install(settings, es)
        audit = indexer(settings, es)
        columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("replay", total=None)
            report = await replay(
                settings,
                audit,
                _moment_ms(since),
                _moment_ms(until) if until else None,
                on_total=lambda n: progress.update(task, total=n),
                progress=lambda n: progress.advance(task, n),
            )
    Console().print(
        f"{report.records} records from {len(report.topics)} topics: {report.created} documents added, "
        f"{report.existing} already there, {report.rejected} refused, {report.undecodable} undecodable"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchboard-audit-logger", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    verify = commands.add_parser("verify", help="check that no audit document was edited or removed")
    verify.add_argument("--since", help="only chains with documents since this time, e.g. now-7d or 2026-11-01")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    again = commands.add_parser("replay", help="re-index a time range from Kafka (adds only what is missing)")
    again.add_argument("--since", required=True, help="start: ISO time (2026-11-01T00:00Z) or an age (7d, 12h)")
    again.add_argument("--until", help="end (exclusive), same forms; default now")
    args = parser.parse_args(argv)
    if args.command == "replay":
        return asyncio.run(_replay(Settings(), args.since, args.until))
    if args.command == "verify":
        return asyncio.run(_verify(Settings(), args.since, args.json))
    tune_gc()
    return lifecycle.main(Settings, serve)


if __name__ == "__main__":
    sys.exit(main())
