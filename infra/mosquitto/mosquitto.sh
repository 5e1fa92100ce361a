# Mosquitto MQTT broker from Debian's packages: password file and ACL, never anonymous.
# shellcheck shell=bash

MQTT_HOME=$SB_STATE/mosquitto

mqtt_install() { apt_install mosquitto mosquitto-clients; }

mqtt_configure() {
  own_dir "$MQTT_HOME" "$MQTT_HOME/data"
  # Rebuilt on every start from the secrets, so rotating a secret file rotates the password.
  # Written in plain text by the shell (printf is a builtin: no command line holds a
  # password), then hashed in place.
  rm -f "$MQTT_HOME/passwd"
  (umask 077 && printf '%s:%s\n' "$SB_MQTT_GATEWAY_USER" "$(secret mqtt-gateway)" \
    "$SB_MQTT_DEVICE_USER" "$(secret mqtt-device)" >"$MQTT_HOME/passwd")
  mosquitto_passwd -U "$MQTT_HOME/passwd" ||
    die "mosquitto_passwd failed; is the mosquitto package installed? (make setup)"
  sed "s/@GATEWAY_USER@/$SB_MQTT_GATEWAY_USER/" "$SB_ROOT/infra/mosquitto/acl" >"$MQTT_HOME/acl"
  tls_certs
  cp "$SB_STATE/tls/ca.pem" "$SB_STATE/tls/server.pem" "$SB_STATE/tls/server.key" "$MQTT_HOME/"
  cat >"$MQTT_HOME/mosquitto.conf" <<CONF
per_listener_settings false
listener $SB_MQTT_PORT 127.0.0.1
listener $SB_MQTT_TLS_PORT 127.0.0.1
cafile $MQTT_HOME/ca.pem
certfile $MQTT_HOME/server.pem
keyfile $MQTT_HOME/server.key
tls_version tlsv1.2
# Without it, Nagle's algorithm holds each small PUBACK back until the peer's delayed ACK
# (~40 ms per QoS 1 round trip: 30 commands/s per client instead of thousands).
set_tcp_nodelay true
protocol mqtt
allow_anonymous false
password_file $MQTT_HOME/passwd
acl_file $MQTT_HOME/acl
persistence true
# Mosquitto queues at most 1 000 QoS 1 messages per client by default and drops the rest
# silently: a burst of device commands while the gateway catches up would be lost.
max_queued_messages 1000000
max_queued_bytes 268435456
persistence_location $MQTT_HOME/data/
log_dest stdout
log_type error
log_type warning
log_type notice
connection_messages true
CONF
  if as_root; then chown -R "$SB_RUN_USER:" "$MQTT_HOME"; fi
}

mqtt_start() {
  mqtt_configure
  start_daemon mosquitto "${RUN_AS[@]}" /usr/sbin/mosquitto -c "$MQTT_HOME/mosquitto.conf"
  wait_ready mosquitto 30 mqtt_listening
}

mqtt_health() { # the account from mosquitto_sub's options file, not the command line
  local options=$SB_RUN/mqtt-health
  (umask 077 && mkdir -p "$options" &&
    printf -- '-u %s\n-P %s\n' "$SB_MQTT_GATEWAY_USER" "$(secret mqtt-gateway)" >"$options/mosquitto_sub")
  XDG_CONFIG_HOME=$options mosquitto_sub -h 127.0.0.1 -p "$SB_MQTT_PORT" -t '$SYS/broker/version' -C 1 -W 3
}

mqtt_listening() { port_in_use "$SB_MQTT_PORT" && port_in_use "$SB_MQTT_TLS_PORT"; }

mqtt_ports() { echo SB_MQTT_PORT SB_MQTT_TLS_PORT; }

mqtt_stop() { stop_daemon mosquitto TERM 20; }
