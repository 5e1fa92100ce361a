# PostgreSQL from Debian's packages, our own cluster under .state (not the system one).
# shellcheck shell=bash

PG_HOME=$SB_STATE/postgres

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] || die "PostgreSQL binaries not found; run 'make setup' (apt-get install postgresql)"
  echo "$dir"
}

pg_install() { apt_install postgresql postgresql-client; }

pg_configure() {
  own_dir "$PG_HOME" "$PG_HOME/socket"
  if [ ! -f "$PG_HOME/data/PG_VERSION" ]; then
    info "initialising a PostgreSQL cluster in $PG_HOME/data"
    own_dir "$PG_HOME/data"
    # Local socket connections (a private 0700 folder) are trusted; TCP needs a password.
    "${RUN_AS[@]}" "$(pg_bin)/initdb" -D "$PG_HOME/data" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host=scram-sha-256 >"$SB_LOGS/postgres-initdb.log" 2>&1 ||
      die "initdb failed; see $SB_LOGS/postgres-initdb.log"
  fi
}

pg_start() {
  pg_configure
  # TLS on the same port (clients choose: sslmode=verify-full checks the stack's CA and the
  # host name); the key must belong to the server's user with mode 600.
  tls_certs
  cp "$SB_STATE/tls/server.pem" "$SB_STATE/tls/server.key" "$PG_HOME/"
  if as_root; then chown "$SB_RUN_USER:" "$PG_HOME/server.pem" "$PG_HOME/server.key"; fi
  chmod 600 "$PG_HOME/server.key"
  start_daemon postgres "${RUN_AS[@]}" "$(pg_bin)/postgres" -D "$PG_HOME/data" -p "$SB_PG_PORT" \
    -k "$PG_HOME/socket" -c listen_addresses=127.0.0.1 -c max_connections=200 \
    -c ssl=on -c ssl_cert_file="$PG_HOME/server.pem" -c ssl_key_file="$PG_HOME/server.key" \
    -c ssl_min_protocol_version=TLSv1.2
  wait_ready postgres 60 "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$SB_PG_PORT"
  pg_bootstrap
}

# The database and one role per service that keeps state in it (each in its own schema);
# passwords live in .state/secrets.
pg_bootstrap() {
  secret postgres-scheduler >/dev/null && secret postgres-gateway >/dev/null
  # psql reads the passwords from their files (\set `cat ...`): never on a command line.
  SB_SECRETS=$SB_SECRETS "$(pg_bin)/psql" -q -h "$PG_HOME/socket" -p "$SB_PG_PORT" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -v owner="$SB_PG_USER" -v gateway="$SB_PG_GATEWAY_USER" -v db="$SB_PG_DATABASE" \
    >>"$SB_LOGS/postgres.log" 2>&1 <<'SQL' ||
\set owner_password `cat "$SB_SECRETS/postgres-scheduler"`
\set gateway_password `cat "$SB_SECRETS/postgres-gateway"`
SELECT format('CREATE ROLE %I LOGIN', :'owner') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
ALTER ROLE :"owner" WITH LOGIN PASSWORD :'owner_password';
SELECT format('CREATE ROLE %I LOGIN', :'gateway') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'gateway') \gexec
ALTER ROLE :"gateway" WITH LOGIN PASSWORD :'gateway_password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
GRANT CONNECT, CREATE ON DATABASE :"db" TO :"gateway";
SQL
    die "creating the services' roles and database failed; see $SB_LOGS/postgres.log"
}

pg_health() {
  "$(pg_bin)/pg_isready" -h 127.0.0.1 -p "$SB_PG_PORT"
}

pg_ports() { echo SB_PG_PORT; }

# SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, then stop.
pg_stop() { stop_daemon postgres INT 60; }
