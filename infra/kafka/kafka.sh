# Apache Kafka in KRaft mode, jars from Maven Central. One combined broker+controller by
# default; SB_KAFKA_BROKERS=3 starts three (each broker and controller: a quorum of three),
# with internal topics at replication 3 and min.insync.replicas 2, like production, for
# fault tests (tests/chaos). Node 1 is the daemon "kafka"; nodes 2 and 3 are "kafka-2" and
# "kafka-3". Node N listens on SB_KAFKA_PORT + 2(N-1), its controller on the port after,
# and TLS (SSL, the stack's own CA: tls_certs) on its port + 100 (19192 for node 1).
# shellcheck shell=bash

KAFKA_HOME=$SB_STATE/kafka

kafka_install() {
  need_cmd mvn "install Maven (apt-get install maven) to fetch the Kafka jars from Maven Central"
  java_home >/dev/null
  if [ -s "$KAFKA_HOME/libs.ok" ] && cmp -s "$KAFKA_HOME/libs.ok" "$SB_ROOT/infra/kafka/pom.xml"; then return 0; fi
  info "fetching Kafka jars with Maven (cached in ~/.m2)"
  rm -rf "$KAFKA_HOME/libs"
  mvn -q -B -f "$SB_ROOT/infra/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs" >"$SB_LOGS/kafka-install.log" 2>&1 ||
    die "could not fetch the Kafka jars from Maven Central; see $SB_LOGS/kafka-install.log (is the Maven registry reachable?)"
  cp "$SB_ROOT/infra/kafka/pom.xml" "$KAFKA_HOME/libs.ok"
}

kafka_brokers() {
  case "$SB_KAFKA_BROKERS" in
    1 | 3) echo "$SB_KAFKA_BROKERS" ;;
    *) die "SB_KAFKA_BROKERS must be 1 or 3, not '$SB_KAFKA_BROKERS'" ;;
  esac
}

kafka_node_port() { echo $((SB_KAFKA_PORT + 2 * ($1 - 1))); }          # kafka_node_port N
kafka_tls_port() { echo $(($(kafka_node_port "$1") + 100)); }           # its TLS listener
kafka_sasl_port() { echo $(($(kafka_node_port "$1") + 200)); }          # its SASL_SSL (SCRAM) listener
kafka_controller_port() { echo $((SB_KAFKA_CONTROLLER_PORT + 2 * ($1 - 1))); }
kafka_daemon() { if [ "$1" = 1 ]; then echo kafka; else echo "kafka-$1"; fi; }
kafka_data() { if [ "$1" = 1 ]; then echo "$KAFKA_HOME/data"; else echo "$KAFKA_HOME/data-$1"; fi; }

kafka_sasl_bootstrap() { # every broker's SASL_SSL listener, comma-separated
  local n out=
  for ((n = 1; n <= $(kafka_brokers); n++)); do out+="${out:+,}127.0.0.1:$(kafka_sasl_port "$n")"; done
  echo "$out"
}

kafka_tls_bootstrap() { # every broker's TLS listener, comma-separated
  local n out=
  for ((n = 1; n <= $(kafka_brokers); n++)); do out+="${out:+,}127.0.0.1:$(kafka_tls_port "$n")"; done
  echo "$out"
}

kafka_bootstrap() { # every broker, comma-separated
  local n out=
  for ((n = 1; n <= $(kafka_brokers); n++)); do out+="${out:+,}127.0.0.1:$(kafka_node_port "$n")"; done
  echo "$out"
}

kafka_configure() {
  local brokers n voters= replication
  tls_certs
  brokers=$(kafka_brokers)
  replication=$((brokers == 3 ? 3 : 1))
  for ((n = 1; n <= brokers; n++)); do voters+="${voters:+,}$n@127.0.0.1:$(kafka_controller_port "$n")"; done
  # Storage formatted for another cluster shape cannot join this one: start it afresh.
  local before
  before=$(cat "$KAFKA_HOME/brokers" 2>/dev/null || echo 1)  # storage older than this file: one broker
  if [ "$before" != "$brokers" ] && [ -d "$KAFKA_HOME/data" ]; then
    info "Kafka changes from $before to $brokers broker(s): its data starts empty"
    rm -rf "$KAFKA_HOME"/data "$KAFKA_HOME"/data-*
  fi
  mkdir -p "$KAFKA_HOME"
  echo "$brokers" >"$KAFKA_HOME/brokers"
  local cluster_id=
  for ((n = 1; n <= brokers; n++)); do
    mkdir -p "$(kafka_data "$n")"
    cat >"$KAFKA_HOME/server-$n.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(kafka_node_port "$n"),SSL://127.0.0.1:$(kafka_tls_port "$n"),SASL_SSL://127.0.0.1:$(kafka_sasl_port "$n"),CONTROLLER://127.0.0.1:$(kafka_controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_node_port "$n"),SSL://127.0.0.1:$(kafka_tls_port "$n"),SASL_SSL://127.0.0.1:$(kafka_sasl_port "$n")
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$SB_STATE/tls/server-bundle.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SB_STATE/tls/ca.pem
ssl.enabled.protocols=TLSv1.3,TLSv1.2
ssl.client.auth=none
inter.broker.listener.name=PLAINTEXT
log.dirs=$(kafka_data "$n")
num.partitions=6
auto.create.topics.enable=false
default.replication.factor=$replication
min.insync.replicas=$((replication == 3 ? 2 : 1))
offsets.topic.replication.factor=$replication
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$((replication == 3 ? 2 : 1))
share.coordinator.state.topic.replication.factor=$replication
share.coordinator.state.topic.min.isr=$((replication == 3 ? 2 : 1))
group.initial.rebalance.delay.ms=0
PROPS
    if [ ! -f "$(kafka_data "$n")/meta.properties" ]; then
      # Every node of one cluster is formatted with the same cluster id.
      [ -n "$cluster_id" ] || cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid) ||
        die "the Kafka storage tool failed to run; check that java works and the jars in $KAFKA_HOME/libs"
      kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_HOME/server-$n.properties" \
        >"$SB_LOGS/kafka-format.log" 2>&1 || die "formatting Kafka storage failed; see $SB_LOGS/kafka-format.log"
    fi
  done
}

kafka_java() {
  "$(java_home)/bin/java" -Xmx256m -cp "$KAFKA_HOME/libs/*" \
    -Dlog4j2.configurationFile="$SB_ROOT/infra/kafka/log4j2.yaml" "$@"
}

kafka_start_node() { # kafka_start_node N: start one node of a configured cluster
  start_daemon "$(kafka_daemon "$1")" "$(java_home)/bin/java" "-Xms$SB_KAFKA_HEAP" "-Xmx$SB_KAFKA_HEAP" -XX:+UseG1GC \
    -cp "$KAFKA_HOME/libs/*" -Dlog4j2.configurationFile="$SB_ROOT/infra/kafka/log4j2.yaml" \
    kafka.Kafka "$KAFKA_HOME/server-$1.properties"
}

kafka_start() {
  kafka_configure
  local n brokers
  brokers=$(kafka_brokers)
  # All at once: a node of three waits for a quorum before it reports started.
  for ((n = 1; n <= brokers; n++)); do is_running "$(kafka_daemon "$n")" || kafka_start_node "$n"; done
  for ((n = 1; n <= brokers; n++)); do wait_ready "$(kafka_daemon "$n")" "$SB_KAFKA_START_TIMEOUT_S" kafka_node_ready "$n"; done
  [ -z "$SB_KAFKA_SCRAM_USER" ] || kafka_scram_user "$SB_KAFKA_SCRAM_USER" kafka-scram
}

# The SCRAM-SHA-512 account clients log in with on the SASL_SSL listener, its password the
# secret SECRET. Kafka keeps the credential in its metadata log; it is set again only when
# the secret changed (a JVM run takes seconds). The password goes in a file, never an argument.
kafka_scram_user() { # kafka_scram_user NAME SECRET
  local name=$1 marker=$KAFKA_HOME/data/scram-$1 digest file
  digest=$(secret "$2" | sha256sum | cut -d' ' -f1)
  [ "$(cat "$marker" 2>/dev/null)" = "$digest" ] && return 0
  file=$(mktemp "$SB_SECRETS/scram.XXXXXX")
  printf 'SCRAM-SHA-512=password=%s\n' "$(secret "$2")" >"$file"
  kafka_java kafka.admin.ConfigCommand --bootstrap-server "$(kafka_bootstrap)" --alter --entity-type users \
    --entity-name "$name" --add-config-file "$file" >"$SB_LOGS/kafka-scram.log" 2>&1
  local rc=$?
  rm -f "$file"
  [ "$rc" = 0 ] || die "creating the Kafka SCRAM account $name failed; see $SB_LOGS/kafka-scram.log"
  echo "$digest" >"$marker"
  info "Kafka SCRAM account $name set"
}

# Fault tests: `infra/stack.sh broker kill|start N` (kill is SIGKILL, as a crash).
kafka_broker() { # kafka_broker kill|start N
  local action=$1 n=${2:-}
  [ -n "$n" ] && [ "$n" -ge 1 ] && [ "$n" -le "$(kafka_brokers)" ] || die "broker $action N: N is 1 to $(kafka_brokers)"
  case "$action" in
    kill) kill -KILL -- "-$(pid_of "$(kafka_daemon "$n")")" 2>/dev/null || true; rm -f "$SB_RUN/$(kafka_daemon "$n").pid" ;;
    start) is_running "$(kafka_daemon "$n")" || kafka_start_node "$n"; wait_ready "$(kafka_daemon "$n")" "$SB_KAFKA_START_TIMEOUT_S" kafka_node_ready "$n" ;;
    *) die "broker: kill or start, not '$action'" ;;
  esac
}

# Run on every `up`, so a topic added to the list appears on a running broker too.
kafka_topics() {
  local environment=local
  [ "$(kafka_brokers)" = 3 ] && environment=cluster
  info "applying infra/kafka/topics.yaml ($environment)"
  "$SB_ROOT/.venv/bin/python" "$SB_ROOT/scripts/create_topics.py" --bootstrap "$(kafka_bootstrap)" \
    --environment "$environment" >"$SB_LOGS/kafka-topics.log" 2>&1 ||
    die "creating topics failed; see $SB_LOGS/kafka-topics.log"
}

kafka_node_ready() { # kafka_node_ready N
  grep -q "Kafka Server started" "$SB_LOGS/$(kafka_daemon "$1").log" && port_in_use "$(kafka_node_port "$1")" &&
    port_in_use "$(kafka_tls_port "$1")" && port_in_use "$(kafka_sasl_port "$1")"
}

kafka_health() {
  local n
  for ((n = 1; n <= $(kafka_brokers); n++)); do
    is_running "$(kafka_daemon "$n")" && port_in_use "$(kafka_node_port "$n")" || return 1
  done
  kafka_bootstrap
}

kafka_ports() { # VARIABLE+OFFSET of each port of each node
  local n
  for ((n = 1; n <= $(kafka_brokers); n++)); do
    echo "SB_KAFKA_PORT+$((2 * (n - 1))) SB_KAFKA_PORT+$((100 + 2 * (n - 1))) SB_KAFKA_PORT+$((200 + 2 * (n - 1)))" \
      "SB_KAFKA_CONTROLLER_PORT+$((2 * (n - 1)))"
  done
}

kafka_stop() { # all nodes at once: one stopped after the others would wait for a quorum
  local n
  for ((n = 1; n <= 3; n++)); do stop_daemon "$(kafka_daemon "$n")" TERM 60 & done
  wait
}
