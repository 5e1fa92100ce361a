# Prometheus from Debian's packages: scrapes every service's /metrics, Triton's and the lag
# exporter's, and evaluates the alert rules of deploy/prometheus/alerts.yaml (the same rules
# as the cluster's PrometheusRule). Its UI and API: http://127.0.0.1:$SB_PROMETHEUS_PORT.
# The lag exporter (infra/lag-exporter) reads the consumer groups' lag from Kafka, as
# Strimzi's Kafka Exporter does in a cluster.
# shellcheck shell=bash

PROM_HOME=$SB_STATE/prometheus

prom_install() { apt_install prometheus; }

prom_configure() {
  own_dir "$PROM_HOME" "$PROM_HOME/data"
  local name p targets=
  for name in "${!SB_SERVICES[@]}"; do
    p=$(svc_prefix "$name")
    targets+="      - targets: ['127.0.0.1:$(eval echo "\$${p}_METRICS_PORT")']
        labels: {service: $name}
"
  done
  cat >"$PROM_HOME/prometheus.yml" <<CONF
global:
  scrape_interval: ${SB_PROMETHEUS_SCRAPE_S}s
  evaluation_interval: ${SB_PROMETHEUS_SCRAPE_S}s
rule_files:
  - $PROM_HOME/alerts.yaml
scrape_configs:
  - job_name: switchboard
    static_configs:
$targets  - job_name: triton
    static_configs:
      - targets: ['127.0.0.1:$SB_TRITON_METRICS_PORT']
        labels: {service: triton}
  - job_name: kafka-lag
    static_configs:
      - targets: ['127.0.0.1:$SB_LAG_METRICS_PORT']
        labels: {service: lag-exporter}
CONF
  # A copy beside the configuration: the checkout may sit where the run user cannot read.
  cp "$SB_ROOT/deploy/prometheus/alerts.yaml" "$PROM_HOME/alerts.yaml"
  promtool check config "$PROM_HOME/prometheus.yml" >"$SB_LOGS/prometheus-config.log" 2>&1 ||
    die "the Prometheus configuration is invalid; see $SB_LOGS/prometheus-config.log"
  if as_root; then chown -R "$SB_RUN_USER:" "$PROM_HOME"; fi
}

prom_start() {
  prom_configure
  start_daemon prometheus "${RUN_AS[@]}" /usr/bin/prometheus --config.file="$PROM_HOME/prometheus.yml" \
    --storage.tsdb.path="$PROM_HOME/data" --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$SB_PROMETHEUS_PORT" --web.enable-lifecycle
  wait_ready prometheus 60 prom_ready
}

prom_ready() { curl -fsS "http://127.0.0.1:$SB_PROMETHEUS_PORT/-/ready" >/dev/null; }

prom_health() {
  prom_ready && echo "http://127.0.0.1:$SB_PROMETHEUS_PORT"
}

prom_ports() { echo SB_PROMETHEUS_PORT; }

prom_stop() { stop_daemon prometheus TERM 20; }

lag_start() {
  (export "SB_LAG_KAFKA__BOOTSTRAP_SERVERS=$(kafka_bootstrap)" "SB_LAG_METRICS_PORT=$SB_LAG_METRICS_PORT" \
    "SB_LAG_GROUPS=$SB_LAG_GROUPS" "SB_LAG_INTERVAL_S=$SB_LAG_INTERVAL_S" &&
    start_daemon lag-exporter "$SB_ROOT/.venv/bin/python" -m switchboard.lag_exporter)
  wait_ready lag-exporter 60 lag_health
}

lag_health() {
  curl -fsS "http://127.0.0.1:$SB_LAG_METRICS_PORT/metrics" | grep -q '^kafka_lag_exporter_snapshot_age_seconds [0-9]' &&
    echo "http://127.0.0.1:$SB_LAG_METRICS_PORT/metrics"
}

lag_ports() { echo SB_LAG_METRICS_PORT; }

lag_stop() { stop_daemon lag-exporter TERM 20; }
