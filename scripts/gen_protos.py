"""Generate Python code (+ .pyi stubs and gRPC stubs) from proto/ into the common library.

    python scripts/gen_protos.py          # regenerate
    python scripts/gen_protos.py --check  # fail if the checked-in code is stale

Folder path == proto package, so generated imports (``from switchboard.events.v1 import
...``) work as they are, with no rewriting.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT_ROOT = ROOT / "services" / "common" / "src"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
_SERVICE = re.compile(r"^service\s", re.MULTILINE)


def generate(out: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    # gRPC stubs only where there is a service; elsewhere they would be empty modules.
    with_services = [p for p in protos if _SERVICE.search((PROTO_ROOT / p).read_text())]
    includes = [f"-I{PROTO_ROOT}", f"-I{resources.files('grpc_tools') / '_proto'}"]
    for args in (
        [*includes, f"--python_out={out}", f"--pyi_out={out}", *protos],
        [*includes, f"--grpc_python_out={out}", *with_services],
    ):
        if protoc.main(["protoc", *args]) != 0:
            raise SystemExit("protoc failed; see the messages above")
    # Packages for every generated folder (switchboard/ itself stays a namespace package).
    for proto in protos:
        for parent in (out / proto).parents:
            if parent == out / "switchboard" or parent == out:
                break
            (parent / "__init__.py").touch()


def generated_files(root: Path) -> set[Path]:
    return {
        p.relative_to(root)
        for p in (root / "switchboard").rglob("*")
        if p.name.endswith(GENERATED_SUFFIXES) or (p.name == "__init__.py" and _is_proto_package(root, p))
    }


def _is_proto_package(root: Path, init: Path) -> bool:
    folder = init.parent.relative_to(root)
    return (PROTO_ROOT / folder).is_dir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    check = parser.parse_args().check
    if not check:
        generate(OUT_ROOT)
        print(f"generated Python for {len(list(PROTO_ROOT.rglob('*.proto')))} proto files into {OUT_ROOT}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        want, have = generated_files(fresh), generated_files(OUT_ROOT)
        stale = sorted(str(p) for p in want ^ have)
        stale += sorted(str(p) for p in want & have if not filecmp.cmp(fresh / p, OUT_ROOT / p, shallow=False))
    if stale:
        print("generated protobuf code is stale; run `make proto` and commit:", *stale, sep="\n  ")
        return 1
    print("generated protobuf code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
