# Apache Kafka in KRaft mode (one combined broker+controller), jars from Maven Central.
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

kafka_configure() {
  mkdir -p "$KAFKA_HOME/data"
  cat >"$KAFKA_HOME/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$SB_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$SB_KAFKA_PORT,CONTROLLER://127.0.0.1:$SB_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$SB_KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_HOME/data
num.partitions=6
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  if [ ! -f "$KAFKA_HOME/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid) || die "the Kafka storage tool failed to run; check that java works and the jars in $KAFKA_HOME/libs"
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_HOME/server.properties" \
      >"$SB_LOGS/kafka-format.log" 2>&1 || die "formatting Kafka storage failed; see $SB_LOGS/kafka-format.log"
  fi
}

kafka_java() {
  "$(java_home)/bin/java" -Xmx256m -cp "$KAFKA_HOME/libs/*" \
    -Dlog4j2.configurationFile="$SB_ROOT/infra/kafka/log4j2.yaml" "$@"
}

kafka_start() {
  kafka_configure
  start_daemon kafka "$(java_home)/bin/java" "-Xms$SB_KAFKA_HEAP" "-Xmx$SB_KAFKA_HEAP" -XX:+UseG1GC \
    -cp "$KAFKA_HOME/libs/*" -Dlog4j2.configurationFile="$SB_ROOT/infra/kafka/log4j2.yaml" \
    kafka.Kafka "$KAFKA_HOME/server.properties"
  wait_ready kafka 90 kafka_ready
}

# Run on every `up`, so a topic added to the list appears on a running broker too.
kafka_topics() {
  info "applying infra/kafka/topics.yaml"
  "$SB_ROOT/.venv/bin/python" "$SB_ROOT/scripts/create_topics.py" --bootstrap "127.0.0.1:$SB_KAFKA_PORT" \
    --environment local >"$SB_LOGS/kafka-topics.log" 2>&1 ||
    die "creating topics failed; see $SB_LOGS/kafka-topics.log"
}

kafka_ready() {
  grep -q "Kafka Server started" "$SB_LOGS/kafka.log" && port_in_use "$SB_KAFKA_PORT"
}

kafka_health() {
  port_in_use "$SB_KAFKA_PORT" && echo "127.0.0.1:$SB_KAFKA_PORT"
}

kafka_ports() { echo SB_KAFKA_PORT SB_KAFKA_CONTROLLER_PORT; }

kafka_stop() { stop_daemon kafka TERM 60; }
