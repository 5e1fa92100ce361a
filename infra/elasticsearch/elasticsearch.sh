# Elasticsearch 8.14, one node, from Elastic's own distribution on Maven Central
# (org.elasticsearch.distribution.integ-test-zip). See infra/README.md for why not the
# codelibs cluster runner.
# shellcheck shell=bash

ES_HOME=$SB_STATE/elasticsearch

es_install() {
  need_cmd mvn "install Maven (apt-get install maven) to fetch Elasticsearch from Maven Central"
  java_home >/dev/null
  local dist=$ES_HOME/dist/elasticsearch-$SB_ES_VERSION
  [ -x "$dist/bin/elasticsearch" ] && return 0
  info "fetching Elasticsearch $SB_ES_VERSION with Maven (cached in ~/.m2)"
  mkdir -p "$ES_HOME/dist"
  mvn -q -B dependency:copy \
    "-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$SB_ES_VERSION:zip" \
    -DoutputDirectory="$ES_HOME/dist" >"$SB_LOGS/elasticsearch-install.log" 2>&1 ||
    die "could not fetch Elasticsearch $SB_ES_VERSION from Maven Central; see $SB_LOGS/elasticsearch-install.log"
  need_cmd unzip "install unzip (apt-get install unzip)"
  unzip -q -o "$ES_HOME/dist/elasticsearch-$SB_ES_VERSION.zip" -d "$ES_HOME/dist" ||
    die "could not unpack $ES_HOME/dist/elasticsearch-$SB_ES_VERSION.zip"
  rm -f "$ES_HOME/dist/elasticsearch-$SB_ES_VERSION.zip"
}

es_configure() {
  local conf=$ES_HOME/config
  mkdir -p "$conf"
  cp -r "$ES_HOME/dist/elasticsearch-$SB_ES_VERSION/config/." "$conf/"
  # The stock JVM options write GC logs and heap dumps relative to the working directory.
  sed -i "s|=logs/|=$ES_HOME/logs/|g; s|HeapDumpPath=data|HeapDumpPath=$ES_HOME/data|" "$conf/jvm.options"
  echo "-XX:ReplayDataFile=$ES_HOME/logs/replay_pid%p.log" >"$conf/jvm.options.d/switchboard.options"
  cat >"$conf/elasticsearch.yml" <<YAML
cluster.name: switchboard-local
node.name: es-1
network.host: 127.0.0.1
http.port: $SB_ES_PORT
transport.port: $SB_ES_TRANSPORT_PORT
discovery.type: single-node
path.data: $ES_HOME/data
path.logs: $ES_HOME/logs
# Loopback-only development node: no TLS or users. Production clusters are reached
# with an API key from the services' settings.
xpack.security.enabled: false
action.destructive_requires_name: false
YAML
  own_dir "$ES_HOME/data" "$ES_HOME/logs" "$ES_HOME/tmp"
  if as_root; then chown -R "$SB_RUN_USER:" "$conf"; fi
}

es_start() {
  es_configure
  # Elasticsearch refuses to run as root, so it runs as the unprivileged run user.
  start_daemon elasticsearch env ES_JAVA_HOME="$(java_home)" ES_PATH_CONF="$ES_HOME/config" \
    ES_TMPDIR="$ES_HOME/tmp" ES_JAVA_OPTS="-Xms$SB_ES_HEAP -Xmx$SB_ES_HEAP" \
    "${RUN_AS[@]}" "$ES_HOME/dist/elasticsearch-$SB_ES_VERSION/bin/elasticsearch"
  wait_ready elasticsearch 180 es_ready
}

es_ready() {
  curl -fsS "http://127.0.0.1:$SB_ES_PORT/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null
}

es_health() {
  curl -fsS "http://127.0.0.1:$SB_ES_PORT/_cluster/health" | grep -o '"status":"[a-z]*"'
}

es_ports() { echo SB_ES_PORT SB_ES_TRANSPORT_PORT; }

es_stop() { stop_daemon elasticsearch TERM 60; }
