"""docs/architecture.md's "Where each behaviour lives" table names modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Where each behaviour lives"


def _rows() -> list[tuple[str, list[str]]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text[text.index(SECTION) :].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("behaviour", "---"):
            rows.append((cells[0], re.findall(r"`([^`]+)`", cells[1])))
    return rows


def _paths(names: list[str]) -> list[Path]:
    """The first name is a path under services/; the ones after it sit in the same folder."""
    first = ROOT / "services" / names[0]
    return [first, *(first.parent / name for name in names[1:])]


def test_the_table_has_a_row_per_behaviour() -> None:
    rows = _rows()
    assert len(rows) >= 30
    assert all(names for _, names in rows), [behaviour for behaviour, names in rows if not names]


def test_every_module_in_the_table_exists() -> None:
    missing = [
        f"{behaviour}: {path.relative_to(ROOT)}"
        for behaviour, names in _rows()
        for path in _paths(names)
        if not path.exists()
    ]
    assert not missing, missing
