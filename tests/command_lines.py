"""Every process's command line, as ``ps`` shows it to any user: where no secret may be."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path


def command_lines() -> list[str]:
    """The command line of every process now (arguments joined by spaces)."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:  # gone meanwhile
                continue
    return lines


def leaked(secrets: Mapping[str, str], lines: Iterable[str]) -> set[str]:
    """The names of the ``secrets`` (name -> value) whose value is in one of ``lines``."""
    lines = list(lines)
    return {name for name, value in secrets.items() if value and any(value in line for line in lines)}
