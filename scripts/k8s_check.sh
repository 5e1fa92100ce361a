#!/usr/bin/env bash
# `make k8s`: render every kustomization and validate the result with kubeconform
# against the Kubernetes schemas (offline, from the kubernetes-validate package).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../infra/lib.sh"

K8S_VERSION=${SB_K8S_VERSION:-1.33.0}
TOOLS=$SB_CACHE/tools/bin
OUT=$SB_STATE/k8s
mkdir -p "$OUT"

schemas=$("$SB_ROOT/.venv/bin/python" "$SB_ROOT/scripts/k8s_schemas.py" "$K8S_VERSION" "$SB_STATE/k8s-schemas")
rendered=()
for dir in "$SB_ROOT"/deploy/k8s/*/ "$SB_ROOT"/deploy/k8s/overlays/*/; do
  [ -f "$dir/kustomization.yaml" ] || continue
  name=$(basename "$dir")
  [ "$(basename "$(dirname "$dir")")" = overlays ] && name=overlay-$name
  "$TOOLS/kustomize" build "$dir" >"$OUT/$name.yaml" || die "kustomize build $dir failed"
  rendered+=("$OUT/$name.yaml")
done
# KafkaTopic (Strimzi), Certificate and Issuer (cert-manager), PodMonitor and PrometheusRule
# (Prometheus Operator) are custom resources: no schema ships with Kubernetes. The rules
# themselves are checked by promtool (tests/contract/test_alert_rules.py).
"$TOOLS/kubeconform" -strict -summary -kubernetes-version "$K8S_VERSION" \
  -skip KafkaTopic,Certificate,Issuer,PodMonitor,PrometheusRule \
  -schema-location "$(dirname "$schemas")/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json" \
  "${rendered[@]}"
