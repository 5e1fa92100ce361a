# The five Switchboard services and the example plugin as local processes, wired to the stack.
# shellcheck shell=bash

# component name -> "python module|settings prefix"
declare -A SB_SERVICES=(
  [channel-gateway]="channel_gateway|SB_GATEWAY"
  [intent-parser]="intent_parser|SB_PARSER"
  [scheduler]="scheduler|SB_SCHEDULER"
  [inference-client]="inference_client|SB_INFERENCE"
  [audit-logger]="audit_logger|SB_AUDIT"
  [plugin-units]="plugin_units|SB_UNITS"
)

svc_module() { echo "${SB_SERVICES[$1]%%|*}"; }
svc_prefix() { echo "${SB_SERVICES[$1]#*|}"; }

svc_ports() {
  local p
  p=$(svc_prefix "$1")
  echo "${p}_HEALTH_PORT ${p}_METRICS_PORT"
  [ "$1" = channel-gateway ] && echo SB_GATEWAY_HTTP_PORT
  [ "$1" = inference-client ] && echo SB_INFERENCE_API_PORT
  [ "$1" = audit-logger ] && echo SB_AUDIT_API_PORT
  return 0
}

svc_start() {
  local name=$1 p
  p=$(svc_prefix "$name")
  local env=(
    "${p}_KAFKA__BOOTSTRAP_SERVERS=$(kafka_bootstrap)"
    "${p}_HEALTH_PORT=$(eval echo "\$${p}_HEALTH_PORT")"
    "${p}_METRICS_PORT=$(eval echo "\$${p}_METRICS_PORT")"
    "${p}_OTLP_ENDPOINT=http://127.0.0.1:$SB_JAEGER_OTLP_PORT" "${p}_TRACE_SAMPLE_RATIO=$SB_TRACE_SAMPLE_RATIO"
  )
  case "$name" in
    channel-gateway) env+=(
      "SB_GATEWAY_HTTP_PORT=$SB_GATEWAY_HTTP_PORT" "SB_GATEWAY_ID_SECRET=$(secret gateway-ids)"
      "SB_GATEWAY_JWT_SECRET=$(secret gateway-jwt)"
      "SB_GATEWAY_DATABASE_URL=postgresql://$SB_PG_GATEWAY_USER:$(secret postgres-gateway)@127.0.0.1:$SB_PG_PORT/$SB_PG_DATABASE"
      "SB_GATEWAY_MQTT_HOST=127.0.0.1" "SB_GATEWAY_MQTT_PORT=$SB_MQTT_PORT"
      "SB_GATEWAY_MQTT_USERNAME=$SB_MQTT_GATEWAY_USER" "SB_GATEWAY_MQTT_PASSWORD=$(secret mqtt-gateway)"
      "SB_GATEWAY_MQTT_CLIENT_ID=switchboard-gateway-local"
      "SB_GATEWAY_MEDIA__ENDPOINT_URL=http://127.0.0.1:$SB_OBJECTSTORE_PORT" "SB_GATEWAY_MEDIA__BUCKET=$SB_MEDIA_BUCKET"
      "SB_GATEWAY_MEDIA__ACCESS_KEY=$SB_OBJECTSTORE_ACCESS_KEY" "SB_GATEWAY_MEDIA__SECRET_KEY=$(secret objectstore)"
    ) ;;
    scheduler) env+=(
      "SB_SCHEDULER_DATABASE_URL=postgresql://$SB_PG_USER:$(secret postgres-scheduler)@127.0.0.1:$SB_PG_PORT/$SB_PG_DATABASE"
      "SB_SCHEDULER_PLUGINS_ENABLED=${SB_SCHEDULER_PLUGINS_ENABLED:-[\"units\"]}"
    ) ;;
    inference-client)
      secret openai-api-key >/dev/null  # made by the openai component; made here if started alone
      # The local chat model on Triton; the OpenAI-compatible server as the last fallback.
      local openai_target routes
      openai_target="{\"model\": \"smollm2\", \"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:$SB_OPENAI_PORT/v1\", \"api_key_file\": \"$SB_SECRETS/openai-api-key\"}"
      routes="{\"general\": {\"targets\": [{\"model\": \"smollm2\"}], \"fallback\": [$openai_target]}}"
      env+=(
        "SB_INFERENCE_TRITON_URL=127.0.0.1:$SB_TRITON_GRPC_PORT" "SB_INFERENCE_API_PORT=$SB_INFERENCE_API_PORT"
        "SB_INFERENCE_ROUTES=${SB_INFERENCE_ROUTES:-$routes}"
        # The gRPC API's one local caller; its token is .state/secrets/inference-api.
        "SB_INFERENCE_API_TOKENS={\"local\": \"$(secret inference-api)\"}"
      ) ;;
    intent-parser) env+=("SB_PARSER_MODEL_CACHE_DIR=$SB_PARSER_MODEL_CACHE_DIR") ;;
    audit-logger) env+=(
      "SB_AUDIT_ELASTICSEARCH_URL=http://127.0.0.1:$SB_ES_PORT"
      "SB_AUDIT_API_PORT=$SB_AUDIT_API_PORT" "SB_AUDIT_JWT_SECRET=$(secret audit-jwt)"
      "SB_AUDIT_CHAIN_KEY=$(secret audit-chain)"
    ) ;;
  esac
  # Exported in a subshell, never passed as arguments: the secrets among them stay off every
  # command line (ps shows the arguments of each process to every user).
  (export "${env[@]}" && start_daemon "$name" "$SB_ROOT/.venv/bin/python" -m "switchboard.$(svc_module "$name")")
  wait_ready "$name" 90 svc_health "$name"
}

svc_health() {
  local port
  port=$(eval echo "\$$(svc_prefix "$1")_HEALTH_PORT")
  "$SB_ROOT/.venv/bin/python" "$SB_ROOT/scripts/health_check.py" "127.0.0.1:$port"
}

svc_stop() { stop_daemon "$1" TERM 30; }
