"""CPU time spent by each part of the local stack over a stretch of a benchmark (Linux /proc).

A benchmark takes a :func:`sample` before and after its load; :func:`spent` gives the CPU
seconds (user + system) each part used in between, processes grouped by what they are:
the Kafka broker, Elasticsearch, PostgreSQL (every backend), Triton (server and Python
backend stubs), each Switchboard service by module (every replica of it, the stack's own
idle copy included under ``stack: <module>``) and the bench itself. A process that started
or ended inside the stretch counts from zero or up to its last sample.
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _group(cmdline: str, bench_pid: int, pid: int, children: set[int]) -> str | None:
    if pid == bench_pid:
        return "bench (load and replies)"
    if "-m switchboard." in cmdline:
        module = cmdline.split("-m switchboard.", 1)[1].split()[0]
        return module if pid in children else f"stack: {module}"
    for needle, name in (
        ("kafka.Kafka", "Kafka"),
        ("org.elasticsearch", "Elasticsearch"),
        ("tritonserver", "Triton"),
        ("triton_python_backend_stub", "Triton"),
        ("postgres", "PostgreSQL"),
        ("prometheus", "Prometheus"),
        ("mosquitto", "Mosquitto"),
        ("/jaeger", "Jaeger"),
    ):
        if needle in cmdline:
            return name
    return None


def sample() -> dict[int, tuple[str, int]]:
    """Every grouped process's command line and CPU ticks so far, by pid."""
    bench = os.getpid()
    children = {int(p) for p in Path(f"/proc/{bench}/task/{bench}/children").read_text().split()}
    found: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        group = _group(cmdline, bench, int(entry.name), children)
        if group is not None:
            fields = stat[stat.rfind(")") + 2 :].split()
            found[int(entry.name)] = (group, int(fields[11]) + int(fields[12]))  # utime + stime
    return found


def spent(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]]) -> dict[str, float]:
    """CPU seconds per group between two samples, largest first."""
    totals: dict[str, float] = {}
    for pid, (group, ticks) in after.items():
        start = before.get(pid, (group, 0))[1]
        totals[group] = totals.get(group, 0.0) + (ticks - start) / TICKS
    return dict(sorted(totals.items(), key=lambda item: -item[1]))
