"""Standalone Kubernetes JSON schemas for kubeconform, made offline from the schemas that
the kubernetes-validate package (PyPI) ships.

Its per-kind schemas reference one shared ``/api/_definitions.json``, which kubeconform
cannot resolve; this writes each kind with the definitions it reaches inlined, in
kubeconform's ``<version>-standalone-strict/<kind>.json`` layout.

    python scripts/k8s_schemas.py 1.33.0 .state/k8s-schemas
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate

# References to the shared file from a kind, and between definitions inside it.
_REF = re.compile(r'"\$ref": "(?:/api/_definitions\.json)?#/\$defs/([^"]+)"')


def _reachable(schema_text: str, defs: dict[str, Any]) -> dict[str, Any]:
    todo, seen = set(_REF.findall(schema_text)), set()
    while todo:
        name = todo.pop()
        seen.add(name)
        todo |= set(_REF.findall(json.dumps(defs[name]))) - seen
    return {name: defs[name] for name in sorted(seen)}


def build(version: str, out_root: Path) -> Path:
    source = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    if not source.is_dir():
        raise SystemExit(f"kubernetes-validate has no schemas for Kubernetes {version}")
    out = out_root / f"v{version}-standalone-strict"
    if (out / ".complete").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    defs = json.loads((source / "_definitions.json").read_text())["$defs"]
    for path in source.glob("*.json"):
        if path.name.startswith("_"):
            continue
        text = path.read_text()
        schema = json.loads(_REF.sub(r'"$ref": "#/$defs/\1"', text))
        schema.pop("$id", None)  # relative to the package's own registry; meaningless here
        schema["$defs"] = {
            name: json.loads(_REF.sub(r'"$ref": "#/$defs/\1"', json.dumps(body)))
            for name, body in _reachable(text, defs).items()
        }
        (out / path.name).write_text(json.dumps(schema))
    (out / ".complete").touch()
    return out


if __name__ == "__main__":
    print(build(sys.argv[1], Path(sys.argv[2])))
