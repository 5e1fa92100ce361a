#!/usr/bin/env bash
# The local Switchboard stack on 127.0.0.1: Kafka, Elasticsearch, PostgreSQL, Mosquitto,
# Triton, an OpenAI-compatible model server, Prometheus, Jaeger, a log shipper into
# Elasticsearch and the services. Idempotent: `up` installs what is missing, starts what is not running and
# waits until each component answers.
#
#   infra/stack.sh install            fetch and install everything (first run only)
#   infra/stack.sh up [COMPONENT...]  start (all by default)
#   infra/stack.sh down               stop everything this script started, by PID
#   infra/stack.sh restart COMPONENT  stop one component and start it again (fault tests)
#   infra/stack.sh stop COMPONENT...  stop these (fault tests; `up` starts them again)
#   infra/stack.sh kill COMPONENT...  SIGKILL these, as a crash (fault tests)
#   infra/stack.sh broker kill|start N  SIGKILL or start Kafka node N (SB_KAFKA_BROKERS=3)
#   infra/stack.sh status             one line per component
#   infra/stack.sh logs [COMPONENT]   tail the logs
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$SB_ROOT/infra/kafka/kafka.sh"
. "$SB_ROOT/infra/elasticsearch/elasticsearch.sh"
. "$SB_ROOT/infra/postgres/postgres.sh"
. "$SB_ROOT/infra/mosquitto/mosquitto.sh"
. "$SB_ROOT/infra/triton/triton.sh"
. "$SB_ROOT/infra/openai/openai.sh"
. "$SB_ROOT/infra/prometheus/prometheus.sh"
. "$SB_ROOT/infra/jaeger/jaeger.sh"
. "$SB_ROOT/infra/objectstore/objectstore.sh"
. "$SB_ROOT/infra/logship/logship.sh"
. "$SB_ROOT/infra/services/services.sh"

# Start order; stopped in reverse. name:function-prefix (functions get the name as $1).
COMPONENTS=(
  kafka:kafka elasticsearch:es postgres:pg mosquitto:mqtt jaeger:jaeger objectstore:objectstore triton:triton openai:openai lag-exporter:lag
  prometheus:prom log-shipper:logship audit-logger:svc plugin-units:svc scheduler:svc inference-client:svc intent-parser:svc channel-gateway:svc
)

prefix_of() {
  local entry
  for entry in "${COMPONENTS[@]}"; do
    [ "${entry%%:*}" = "$1" ] && { echo "${entry#*:}"; return; }
  done
  die "unknown component '$1'; known: ${COMPONENTS[*]%%:*}"
}

selected() { # the names given, or all
  if [ $# -gt 0 ]; then printf '%s\n' "$@"; else printf '%s\n' "${COMPONENTS[@]%%:*}"; fi
}

python_env() {
  need_cmd uv "install uv (python3 -m pip install uv) or run 'make setup'"
  if [ -x "$SB_ROOT/.venv/bin/python" ] && [ "$SB_ROOT/.venv/.synced" -nt "$SB_ROOT/uv.lock" ]; then return 0; fi
  info "installing Python dependencies (uv sync)"
  # llama-cpp-python is the one package that compiles (5-10 min); it is installed from a
  # wheel built once and kept in ~/.cache/switchboard/wheels, not rebuilt by every sync.
  (cd "$SB_ROOT" && uv sync --frozen --no-install-package llama-cpp-python >"$SB_LOGS/uv-sync.log" 2>&1) ||
    die "uv sync failed; see $SB_LOGS/uv-sync.log"
  local version wheels=$SB_CACHE/wheels wheel
  version=$(awk '/^name = "llama-cpp-python"/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$SB_ROOT/uv.lock")
  [ -n "$version" ] || die "llama-cpp-python is missing from uv.lock"
  # compgen, not ls: under pipefail a failing ls would end the script without a word.
  wheel=$(compgen -G "$wheels/llama_cpp_python-$version-*.whl" | head -n 1) || true
  if [ -z "$wheel" ]; then
    info "building llama-cpp-python $version (first run only, 5-10 minutes)"
    mkdir -p "$wheels"
    CMAKE_ARGS="-DGGML_NATIVE=OFF" uvx --quiet --from pip==25.3 pip wheel --no-deps \
      "llama-cpp-python==$version" --wheel-dir "$wheels" >"$SB_LOGS/llama-build.log" 2>&1 ||
      die "building llama-cpp-python failed; see $SB_LOGS/llama-build.log (needs gcc, g++ and cmake)"
    wheel=$(compgen -G "$wheels/llama_cpp_python-$version-*.whl" | head -n 1)
  fi
  uv pip install --quiet --python "$SB_ROOT/.venv/bin/python" --no-deps "$wheel" >>"$SB_LOGS/uv-sync.log" 2>&1 ||
    die "installing $wheel failed; see $SB_LOGS/uv-sync.log"
  # Byte code, once (about a minute): where PYTHONDONTWRITEBYTECODE is set, as on CI machines,
  # every process would otherwise compile its imports again, 5 s of CPU per service start.
  info "compiling the dependencies' byte code"
  "$SB_ROOT/.venv/bin/python" -m compileall -q -j 0 "$SB_ROOT/.venv/lib" >>"$SB_LOGS/uv-sync.log" 2>&1 || true
  touch "$SB_ROOT/.venv/.synced"
}

cmd_install() {
  mkdir -p "$SB_LOGS" "$SB_RUN"
  ensure_run_user
  apt_install curl unzip procps chromium chromium-driver  # chromium: the web chat browser test
  pg_install
  mqtt_install
  prom_install
  python_env
  kafka_install
  es_install
  triton_install
  jaeger_install
  objectstore_install
  logship_install
}

# What the components to start need (everything when none are named).
install_for() {
  [ $# -gt 0 ] || { cmd_install; return; }
  mkdir -p "$SB_LOGS" "$SB_RUN"
  ensure_run_user
  python_env
  local name
  for name in "$@"; do
    if declare -F "$(prefix_of "$name")_install" >/dev/null; then "$(prefix_of "$name")_install"; fi
  done
}

# Before installing anything: every port a component to start needs must be free.
preflight() {
  local name var offset
  for name in $(selected "$@"); do
    is_running "$name" && continue
    for var in $("$(prefix_of "$name")_ports" "$name"); do  # VARIABLE or VARIABLE+OFFSET
      offset=0
      [[ $var == *+* ]] && offset=${var#*+} var=${var%%+*}
      require_free_port "$((${!var} + offset))" "$var" "$name"
    done
  done
}

cmd_up() {
  preflight "$@"
  install_for "$@"
  local name
  for name in $(selected "$@"); do
    if is_running "$name"; then
      info "$name already running (pid $(pid_of "$name"))"
    else
      info "starting $name"
      "$(prefix_of "$name")_start" "$name"
    fi
    # Applied on every `up` (idempotent), before any service subscribes.
    if [ "$name" = kafka ]; then kafka_topics; fi
  done
  write_env
  cmd_status "$@" || return 1
  if is_running channel-gateway; then try_it; fi
}

try_it() {
  cat <<TRY

Switchboard is up. Every API call needs a bearer token; mint one with the local secret,
then ask something (the local SmolLM2 model answers):

  export SWITCHBOARD_TOKEN=\$(.venv/bin/switchboard token --secret-file $SB_SECRETS/gateway-jwt --subject demo)
  C=\$(curl -s -X POST http://127.0.0.1:$SB_GATEWAY_HTTP_PORT/v1/conversations -H "Authorization: Bearer \$SWITCHBOARD_TOKEN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["conversation_id"])')
  curl -s http://127.0.0.1:$SB_GATEWAY_HTTP_PORT/v1/messages -H "Authorization: Bearer \$SWITCHBOARD_TOKEN" \\
       -H 'content-type: application/json' -d "{\\"conversation_id\\": \\"\$C\\", \\"text\\": \\"What is the capital of France?\\"}"

  .venv/bin/switchboard chat "hello"        # streams the reply as it is generated
  .venv/bin/switchboard chat "remind me in 1 minute to stretch"   # the scheduler confirms, then fires it
  .venv/bin/switchboard chat "convert 5 miles to km"              # answered by the example plugin

The audit trail (auditor role; its own secret):

  export SWITCHBOARD_AUDIT_TOKEN=\$(.venv/bin/switchboard token --secret-file $SB_SECRETS/audit-jwt --audience switchboard-audit --scope auditor)
  .venv/bin/switchboard audit search --since now-1h

API docs: http://127.0.0.1:$SB_GATEWAY_HTTP_PORT/docs, http://127.0.0.1:$SB_AUDIT_API_PORT/docs   Stop everything: make down
TRY
}

cmd_down() {
  local i name
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    name=${COMPONENTS[i]%%:*}
    "${COMPONENTS[i]#*:}_stop" "$name"
  done
  info "stack stopped"
}

cmd_restart() {
  [ $# -ge 1 ] || die "restart what? one of: ${COMPONENTS[*]%%:*}"
  ensure_run_user
  local name
  for name in "$@"; do
    "$(prefix_of "$name")_stop" "$name"
    info "starting $name"
    "$(prefix_of "$name")_start" "$name"
  done
}

cmd_status() { # [COMPONENT...]: all by default
  local name state detail rc=0
  printf '%-17s %-9s %-8s %s\n' COMPONENT STATE PID DETAIL
  for name in $(selected "$@"); do
    if ! is_running "$name"; then
      state=stopped detail="" rc=1
    elif detail=$("$(prefix_of "$name")_health" "$name" 2>/dev/null | head -n 1); then
      state=healthy
    else
      state=unhealthy detail="see $SB_LOGS/$name.log" rc=1
    fi
    printf '%-17s %-9s %-8s %s\n' "$name" "$state" "$(pid_of "$name" || echo -)" "$detail"
  done
  return $rc
}

cmd_logs() {
  local files=() name
  for name in $(selected "$@"); do files+=("$SB_LOGS/$name.log"); done
  exec tail -n 50 -F "${files[@]}"
}

# Connection settings for services and tests, secrets included: mode 600, git-ignored.
write_env() {
  (umask 077 && cat >"$SB_STATE/stack.env" <<ENV
SB_KAFKA_BOOTSTRAP=$(kafka_bootstrap)
SB_KAFKA_TLS_BOOTSTRAP=$(kafka_tls_bootstrap)
SB_KAFKA_SASL_BOOTSTRAP=$(kafka_sasl_bootstrap)
SB_KAFKA_SCRAM_USER=$SB_KAFKA_SCRAM_USER
SB_KAFKA_SCRAM_PASSWORD=$(secret kafka-scram)
SB_TLS_CA_FILE=$SB_STATE/tls/ca.pem
SB_ES_URL=http://127.0.0.1:$SB_ES_PORT
SB_PG_DSN=postgresql://$SB_PG_USER:$(secret postgres-scheduler)@127.0.0.1:$SB_PG_PORT/$SB_PG_DATABASE
SB_MQTT_HOST=127.0.0.1
SB_MQTT_PORT=$SB_MQTT_PORT
SB_MQTT_TLS_PORT=$SB_MQTT_TLS_PORT
SB_MQTT_GATEWAY_USER=$SB_MQTT_GATEWAY_USER
SB_MQTT_GATEWAY_PASSWORD=$(secret mqtt-gateway)
SB_MQTT_DEVICE_USER=$SB_MQTT_DEVICE_USER
SB_MQTT_DEVICE_PASSWORD=$(secret mqtt-device)
SB_TRITON_GRPC_URL=127.0.0.1:$SB_TRITON_GRPC_PORT
SB_TRITON_HTTP_URL=http://127.0.0.1:$SB_TRITON_HTTP_PORT
SB_CHAT_MODEL=smollm2
SB_OPENAI_URL=http://127.0.0.1:$SB_OPENAI_PORT/v1
SB_OPENAI_API_KEY_FILE=$SB_SECRETS/openai-api-key
SB_PROMETHEUS_URL=http://127.0.0.1:$SB_PROMETHEUS_PORT
SB_JAEGER_URL=http://127.0.0.1:$SB_JAEGER_UI_PORT
SB_OTLP_ENDPOINT=http://127.0.0.1:$SB_JAEGER_OTLP_PORT
SB_SERVICE_LOGS_STREAM=$SB_SERVICE_LOGS_STREAM
SB_GATEWAY_URL=http://127.0.0.1:$SB_GATEWAY_HTTP_PORT
SB_GATEWAY_JWT_SECRET_FILE=$SB_SECRETS/gateway-jwt
SB_OBJECTSTORE_URL=http://127.0.0.1:$SB_OBJECTSTORE_PORT
SB_OBJECTSTORE_ACCESS_KEY=$SB_OBJECTSTORE_ACCESS_KEY
SB_OBJECTSTORE_SECRET_KEY=$(secret objectstore)
SB_MEDIA_BUCKET=$SB_MEDIA_BUCKET
ENV
  )
}

main() {
  local cmd=${1:-} name
  shift || true
  mkdir -p "$SB_LOGS" "$SB_RUN"
  case "$cmd" in
    install) cmd_install ;;
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    restart) cmd_restart "$@" ;;
    broker) kafka_broker "$@" ;;
    stop) for name in "$@"; do "$(prefix_of "$name")_stop" "$name"; done ;;
    kill) for name in "$@"; do prefix_of "$name" >/dev/null && stop_daemon "$name" KILL 10; done ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
  esac
}

main "$@"
