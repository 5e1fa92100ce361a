"""What a chaos scenario reports, and the table scripts/chaos.py prints."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rich.table import Table


@dataclass(frozen=True)
class Outcome:
    """One scenario's count, by event id.

    ``sent``: events accepted (by the gateway, or acknowledged by the cluster);
    ``replies``: distinct events handled, or messages given the right answer;
    ``failed_politely``: messages answered with a failure message instead (a dependency
    was away past the request's deadline); ``lost``: accepted, never answered;
    ``duplicated``: events written to the log more than once, or messages answered by two
    different reply events (a second copy a user would see); ``redelivered``:
    handler calls for an event already handled (at-least-once delivery after a crash,
    absorbed by the handlers' idempotence on the event id); ``order_violations``:
    conversations whose events were first handled out of order; ``recovery_s``: per
    fault, seconds from the fault until the events it held up were handled again;
    ``audit_missing``: events with no audit document (where the scenario audits);
    ``overtaken``: replies that came after the reply to a later message of the same
    conversation, one answered by other services (not held back for each other: allowed,
    but counted).
    """

    scenario: str
    sent: int
    replies: int
    lost: int
    duplicated: int
    redelivered: int
    order_violations: int
    recovery_s: Sequence[float] = field(default_factory=list)
    audit_missing: int | None = None  # None: the scenario does not audit
    failed_politely: int = 0
    overtaken: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.order_violations == 0
            and self.replies + self.failed_politely == self.sent
            and not self.audit_missing
        )


def first_order_violations(first_handled: Mapping[str, Iterable[int]]) -> int:
    """Conversations whose sequence numbers, in the order first handled, are not increasing."""
    return sum(1 for seqs in first_handled.values() if (s := list(seqs)) != sorted(s))


def overtaken(first_handled: Mapping[str, Iterable[int]]) -> int:
    """Replies (sequence numbers per conversation, in the order first handled) that came
    after the reply to a later message of their conversation."""
    count = 0
    for seqs in first_handled.values():
        highest = -1
        for seq in seqs:
            count += seq < highest
            highest = max(highest, seq)
    return count


COLUMNS = (
    "sent",
    "replies",
    "polite failures",
    "lost",
    "duplicated",
    "redelivered",
    "order kept",
    "overtaken",
    "unaudited",
)


def table(outcomes: Iterable[Outcome]) -> Table:
    out = Table(title="Chaos scenarios")
    out.add_column("scenario", overflow="fold")
    for column in (*COLUMNS, "recover p50 / max"):
        out.add_column(column, justify="right")
    for o in outcomes:
        recovery = f"{statistics.median(o.recovery_s):.1f} / {max(o.recovery_s):.1f} s" if o.recovery_s else "-"
        out.add_row(
            o.scenario,
            str(o.sent),
            str(o.replies),
            str(o.failed_politely),
            str(o.lost),
            str(o.duplicated),
            str(o.redelivered),
            "yes" if o.order_violations == 0 else f"no ({o.order_violations})",
            str(o.overtaken),
            "-" if o.audit_missing is None else str(o.audit_missing),
            recovery,
            style=None if o.ok else "bold red",
        )
    return out
