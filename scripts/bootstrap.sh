#!/usr/bin/env bash
# Install the developer tools the Makefile needs, once: uv (Python packaging) and buf
# (protobuf lint). Everything else comes from `infra/stack.sh install`.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../infra/lib.sh"

UV_VERSION=0.13.9

if ! command -v uv >/dev/null 2>&1; then
  need_cmd python3 "install Python 3.11 (the project's interpreter)"
  info "installing uv $UV_VERSION from PyPI"
  python3 -m pip install --quiet "uv==$UV_VERSION" || die "pip could not install uv; check access to PyPI"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash
  command -v uv >/dev/null 2>&1 || die "uv was installed but is not on PATH; add $(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))') to PATH"
fi

BUF=$SB_CACHE/tools/bin/buf
if [ ! -x "$BUF" ] || ! "$BUF" --version 2>/dev/null | grep -qx "${SB_BUF_VERSION#v}"; then
  need_cmd go "install Go (buf is built from the Go module proxy)"
  info "building buf $SB_BUF_VERSION through the Go module proxy (first run only, ~3 min)"
  mkdir -p "$SB_LOGS"
  GOBIN=$SB_CACHE/tools/bin go install "github.com/bufbuild/buf/cmd/buf@$SB_BUF_VERSION" >"$SB_LOGS/buf-install.log" 2>&1 ||
    die "could not build buf; see $SB_LOGS/buf-install.log"
fi
