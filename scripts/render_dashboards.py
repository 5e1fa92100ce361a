"""Write each Grafana dashboard of deploy/grafana/dashboards.yaml as deploy/grafana/<name>.json.

python scripts/render_dashboards.py          # write the JSON files
python scripts/render_dashboards.py --check  # fail if one is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

GRAFANA = Path(__file__).resolve().parent.parent / "deploy" / "grafana"
SPEC = GRAFANA / "dashboards.yaml"
WIDTH, HEIGHT = 12, 8  # two panels a row, on Grafana's 24-column grid


def dashboard(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    panels = []
    for i, panel in enumerate(spec["panels"]):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": panel["title"],
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"x": (i % 2) * WIDTH, "y": (i // 2) * HEIGHT, "w": WIDTH, "h": HEIGHT},
                "fieldConfig": {"defaults": {"unit": panel["unit"]}, "overrides": []},
                "targets": [
                    {"refId": chr(ord("A") + j), "expr": expr, "legendFormat": legend}
                    for j, (expr, legend) in enumerate(panel["queries"])
                ],
            }
        )
    return {
        "title": spec["title"],
        "uid": f"switchboard-{name}",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "tags": ["switchboard"],
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
        },
        "panels": panels,
    }


def rendered() -> dict[Path, str]:
    specs = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["dashboards"]
    return {
        GRAFANA / f"{name}.json": json.dumps(dashboard(name, spec), indent=2, ensure_ascii=False) + "\n"
        for name, spec in specs.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a rendered file is stale")
    args = parser.parse_args()
    stale = []
    for path, text in rendered().items():
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale dashboards: {', '.join(stale)}: run make dashboards", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
