# Jaeger v2, the trace backend: receives the services' spans over OTLP/gRPC on
# 127.0.0.1:$SB_JAEGER_OTLP_PORT (Triton's over OTLP/HTTP on $SB_JAEGER_OTLP_HTTP_PORT),
# keeps the last 100 000 traces in memory, and serves its UI
# and query API on http://127.0.0.1:$SB_JAEGER_UI_PORT (e.g. /api/traces/<trace id>).
# No Jaeger release binary can be fetched here, so it is built once from its Go module
# (the go command and the module proxy; about 6 minutes of two cores) and kept in
# $SB_CACHE. Why Jaeger: one process, OTLP in, a UI and an HTTP API a test can query,
# memory storage for a laptop; in a cluster the same binary runs with Elasticsearch storage.
# shellcheck shell=bash

JAEGER_HOME=$SB_STATE/jaeger
JAEGER_BIN=$SB_CACHE/jaeger-$SB_JAEGER_VERSION/jaeger

jaeger_install() {
  go_build_once jaeger github.com/jaegertracing/jaeger/cmd/jaeger "$SB_JAEGER_VERSION" "$JAEGER_BIN" 6
}

jaeger_configure() {
  own_dir "$JAEGER_HOME"
  # A copy beside its configuration: the run user may not reach $SB_CACHE (a home directory).
  cp -f "$JAEGER_BIN" "$JAEGER_HOME/jaeger"
  cat >"$JAEGER_HOME/config.yaml" <<CONF
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_query:
    storage:
      traces: memory
    http:
      endpoint: 127.0.0.1:$SB_JAEGER_UI_PORT
    grpc:
      endpoint: 127.0.0.1:$SB_JAEGER_QUERY_GRPC_PORT
  jaeger_storage:
    backends:
      memory:
        memory:
          max_traces: 100000
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:$SB_JAEGER_HEALTH_PORT
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$SB_JAEGER_OTLP_PORT
      http:
        endpoint: 127.0.0.1:$SB_JAEGER_OTLP_HTTP_PORT
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memory
CONF
  if as_root; then chown -R "$SB_RUN_USER:" "$JAEGER_HOME"; fi
}

jaeger_start() {
  jaeger_configure
  start_daemon jaeger "${RUN_AS[@]}" "$JAEGER_HOME/jaeger" --config "file:$JAEGER_HOME/config.yaml"
  wait_ready jaeger 60 jaeger_ready
}

jaeger_ready() { curl -fsS "http://127.0.0.1:$SB_JAEGER_UI_PORT/api/services" >/dev/null; }

jaeger_health() { jaeger_ready && echo "http://127.0.0.1:$SB_JAEGER_UI_PORT"; }

jaeger_ports() { echo SB_JAEGER_OTLP_PORT SB_JAEGER_OTLP_HTTP_PORT SB_JAEGER_UI_PORT SB_JAEGER_QUERY_GRPC_PORT SB_JAEGER_HEALTH_PORT; }

jaeger_stop() { stop_daemon jaeger TERM 20; }
