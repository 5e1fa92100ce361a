# The log shipper: rsyslog from Debian's packages (imfile, mmjsonparse, omelasticsearch)
# follows the services' log files in $SB_LOGS (and the e2e pipelines' in $SB_LOGS/e2e) and
# writes each line into the Elasticsearch data stream $SB_SERVICE_LOGS_STREAM. The services
# write ECS JSON lines (switchboard.common.logging): those go in as they are; any other
# line (a crash's traceback, a library's print) goes in as `message` with the file's service.
# It remembers how far it read each file ($LOGSHIP_HOME/work) and queues on disk while
# Elasticsearch is away, so a restart of either loses no line. Documents Elasticsearch
# rejects are written to $SB_LOGS/log-shipper-rejected.json with the reason.
# The data stream's template (mappings, 14-day retention by the data stream lifecycle) is
# deploy/k8s/logging/service-logs-template.json, the one the cluster's Filebeat setup applies.
# Why rsyslog here and Filebeat in a cluster: no Elastic Beats build can be fetched on this
# machine (only package registries), and rsyslog's Elasticsearch output is a Debian package.
# shellcheck shell=bash

LOGSHIP_HOME=$SB_STATE/log-shipper
LOGSHIP_TEMPLATE=$SB_ROOT/deploy/k8s/logging/service-logs-template.json

logship_install() { apt_install rsyslog rsyslog-elasticsearch; }

logship_configure() {
  mkdir -p "$LOGSHIP_HOME/work" "$SB_LOGS/e2e"
  local name inputs=""
  for name in "${!SB_SERVICES[@]}"; do
    inputs+="input(type=\"imfile\" file=\"$SB_LOGS/$name.log\" tag=\"$name\" ruleset=\"ship\" addMetadata=\"on\")
"
  done
  cat >"$LOGSHIP_HOME/rsyslog.conf" <<CONF
global(workDirectory="$LOGSHIP_HOME/work" maxMessageSize="256k")
module(load="imfile" mode="inotify")
module(load="mmjsonparse")
module(load="omelasticsearch")

$inputs
input(type="imfile" file="$SB_LOGS/e2e/*.log" tag="e2e" ruleset="ship" addMetadata="on")

# A line that is not JSON: its text, when it was read, and the service of its file.
template(name="plain_line" type="list" option.jsonf="on") {
  property(outname="@timestamp" name="timegenerated" dateFormat="rfc3339" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
  property(outname="service.name" name="programname" format="jsonf")
  property(outname="log.file.path" name="\$!metadata!filename" format="jsonf")
}
template(name="ecs_line" type="string" string="%\$!ecs%")
template(name="document_id" type="string" string="%uuid%")

ruleset(name="ship"
        queue.type="LinkedList" queue.filename="ship" queue.saveOnShutdown="on" queue.size="100000") {
  action(type="mmjsonparse" cookie="" container="\$!ecs")
  if \$parsesuccess == "OK" then {
    set \$!ecs!log!file!path = \$!metadata!filename;
    action(name="elasticsearch-ecs" type="omelasticsearch" template="ecs_line" $(logship_output))
  } else {
    action(name="elasticsearch-plain" type="omelasticsearch" template="plain_line" $(logship_output))
  }
}

# rsyslog's own messages (errors reaching Elasticsearch, say).
action(type="omfile" file="$SB_LOGS/log-shipper-internal.log")
CONF
  rsyslogd -N1 -f "$LOGSHIP_HOME/rsyslog.conf" >"$SB_LOGS/log-shipper-config.log" 2>&1 ||
    die "the log shipper's configuration is invalid; see $SB_LOGS/log-shipper-config.log"
}

# The Elasticsearch output's settings, shared by both actions: bulk requests of creates (a
# data stream takes no other), retried without end while Elasticsearch is away.
logship_output() {
  printf '%s ' server=\"127.0.0.1\" serverport=\"$SB_ES_PORT\" esVersion.major=\"8\" \
    searchIndex=\"$SB_SERVICE_LOGS_STREAM\" bulkmode=\"on\" writeoperation=\"create\" \
    bulkid=\"document_id\" dynbulkid=\"on\" errorFile=\"$SB_LOGS/log-shipper-rejected.json\" \
    action.resumeRetryCount=\"-1\" action.resumeInterval=\"2\"
}

# The data stream's index template, applied before the first line is shipped.
logship_template() {
  curl -fsS -X PUT "http://127.0.0.1:$SB_ES_PORT/_index_template/logs-switchboard.service" \
    -H 'content-type: application/json' --data-binary "@$LOGSHIP_TEMPLATE" >"$SB_LOGS/log-shipper-template.log" 2>&1 ||
    die "Elasticsearch refused the service-logs template; see $SB_LOGS/log-shipper-template.log"
}

logship_start() {
  es_ready || die "the log shipper needs Elasticsearch; start it first (infra/stack.sh up elasticsearch)"
  logship_template
  logship_configure
  start_daemon log-shipper rsyslogd -n -f "$LOGSHIP_HOME/rsyslog.conf" -i "$LOGSHIP_HOME/rsyslogd.pid"
  wait_ready log-shipper 30 logship_health
}

logship_health() {
  [ -s "$LOGSHIP_HOME/rsyslogd.pid" ] && kill -0 "$(cat "$LOGSHIP_HOME/rsyslogd.pid")" 2>/dev/null &&
    echo "-> $SB_SERVICE_LOGS_STREAM"
}

logship_ports() { :; }

logship_stop() { stop_daemon log-shipper TERM 20; }
