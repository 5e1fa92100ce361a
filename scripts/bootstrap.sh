#!/usr/bin/env bash
# Install the developer tools the Makefile needs, once: uv (Python packaging), buf
# (protobuf lint), kustomize and kubeconform (Kubernetes manifests). Everything else
# comes from `infra/stack.sh install`.
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

# Go tools, built once through the Go module proxy into ~/.cache/switchboard/tools/bin.
# A tool is rebuilt when its pinned version changes (the version is kept beside it).
go_tool() { # go_tool NAME MODULE VERSION
  local bin=$SB_CACHE/tools/bin/$1 stamp=$SB_CACHE/tools/$1.version
  [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$3" ] && return 0
  need_cmd go "install Go ($1 is built from the Go module proxy)"
  info "building $1 $3 through the Go module proxy (first run only, a few minutes)"
  mkdir -p "$SB_LOGS" "$SB_CACHE/tools/bin"
  GOBIN=$SB_CACHE/tools/bin go install "$2@$3" >"$SB_LOGS/$1-install.log" 2>&1 ||
    die "could not build $1; see $SB_LOGS/$1-install.log"
  echo "$3" >"$stamp"
}

go_tool buf github.com/bufbuild/buf/cmd/buf "$SB_BUF_VERSION"
go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$SB_KUSTOMIZE_VERSION"
go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$SB_KUBECONFORM_VERSION"
