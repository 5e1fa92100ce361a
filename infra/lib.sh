# Helpers shared by infra/stack.sh and the component scripts. Source, don't run.
# shellcheck shell=bash

SB_ROOT=${SB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# Where the stack keeps its data, logs and secrets: .state in the checkout. The servers run
# as an unprivileged user (below), who must be able to walk to it; a checkout others cannot
# enter (root's home, mode 700) gets its state under /var/tmp instead, one folder per
# checkout, with .state a link to it, so every path that names .state still works.
others_can_enter() { # others_can_enter DIR: every folder from / to DIR lets others through
  local dir=$1
  while [ "$dir" != / ]; do
    (($(stat -L -c '0%a' "$dir") & 1)) || return 1
    dir=$(dirname "$dir")
  done
}

if [ -z "${SB_STATE:-}" ]; then
  SB_STATE=$SB_ROOT/.state
  if [ "$(id -u)" = 0 ] && [ ! -L "$SB_STATE" ] && ! others_can_enter "$SB_ROOT"; then
    sb_state=/var/tmp/switchboard/$(printf %s "$SB_ROOT" | sha256sum | cut -c1-12)
    # A checkout without its link is new: what a removed checkout at the same path left
    # there is not its state (a fresh clone starts with none, as anywhere else).
    rm -rf "$sb_state"
    mkdir -p "$sb_state" && chmod 755 /var/tmp/switchboard "$sb_state"
    # State made before this rule (a checkout's first run) moves along with it.
    if [ -d "$SB_STATE" ]; then cp -a "$SB_STATE/." "$sb_state/" && rm -rf "$SB_STATE"; fi
    ln -s "$sb_state" "$SB_STATE"
  fi
  if [ -L "$SB_STATE" ]; then SB_STATE=$(readlink -f "$SB_STATE"); fi
fi
SB_CACHE=${SB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}
SB_RUN=$SB_STATE/run
SB_LOGS=$SB_STATE/logs
SB_SECRETS=$SB_STATE/secrets
# shellcheck source=infra/stack.env
. "$SB_ROOT/infra/stack.env"
export UV_PYTHON_DOWNLOADS=never

# One clear line saying what failed and how to fix it, then exit.
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
info() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

need_cmd() { # need_cmd CMD HOW-TO-FIX
  command -v "$1" >/dev/null 2>&1 || die "$1 not found; $2"
}

as_root() { [ "$(id -u)" = 0 ]; }

# Command prefix that runs a server as the unprivileged run user. setpriv execs, so
# the PID we record is the server's own. Empty when we are not root.
RUN_AS=()

ensure_run_user() {
  as_root || { SB_RUN_USER=$(id -un); return; }
  RUN_AS=(setpriv "--reuid=$SB_RUN_USER" "--regid=$SB_RUN_USER" --init-groups --)
  id "$SB_RUN_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin "$SB_RUN_USER" ||
    die "cannot create user $SB_RUN_USER; create it or set SB_RUN_USER to an existing unprivileged user"
  mkdir -p "$SB_STATE"
  "${RUN_AS[@]}" test -x "$SB_STATE" ||
    die "user $SB_RUN_USER cannot reach $SB_STATE; clone the repo where others can read it or set SB_STATE=/var/tmp/switchboard"
}

# Give the run user a private folder under .state (and the right to reach it).
own_dir() {
  mkdir -p "$@"
  if as_root; then chown -R "$SB_RUN_USER:" "$@"; fi
  chmod 700 "$@"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Fail early, with the variable to change, when another program holds our port.
require_free_port() { # require_free_port PORT VARIABLE COMPONENT
  if port_in_use "$1"; then
    die "port $1 needed by $3 is taken by another process; stop it or set $2 to a free port"
  fi
}

pid_of() { cat "$SB_RUN/$1.pid" 2>/dev/null; }

is_running() {
  local pid
  pid=$(pid_of "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Start a server in its own session (so its PID is also its process group id, and
# stopping it reaches every child) with output in .state/logs/NAME.log.
start_daemon() { # start_daemon NAME CMD...
  local name=$1; shift
  mkdir -p "$SB_RUN" "$SB_LOGS"
  [ -f "$SB_LOGS/$name.log" ] && mv -f "$SB_LOGS/$name.log" "$SB_LOGS/$name.log.1"
  setsid "$@" >>"$SB_LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$SB_RUN/$name.pid"
}

# Stop by PID: signal the process group, wait, then SIGKILL what is left.
stop_daemon() { # stop_daemon NAME [SIGNAL] [TIMEOUT_S]
  local name=$1 sig=${2:-TERM} timeout=${3:-30} pid i
  pid=$(pid_of "$name") || return 0
  if kill -0 "$pid" 2>/dev/null; then
    info "stopping $name (pid $pid)"
    kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null
    for ((i = 0; i < timeout * 5; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      info "$name did not stop in ${timeout}s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
  fi
  # Children that left the group would be orphans holding ports; reap them too.
  pkill -KILL -g "$pid" 2>/dev/null || true
  rm -f "$SB_RUN/$name.pid"
}

# Wait until CHECK succeeds, the daemon dies, or TIMEOUT_S passes.
wait_ready() { # wait_ready NAME TIMEOUT_S CHECK...
  local name=$1 timeout=$2 i; shift 2
  for ((i = 0; i < timeout; i++)); do
    if "$@" >/dev/null 2>&1; then info "$name is ready"; return 0; fi
    is_running "$name" || die "$name exited during start-up; see $SB_LOGS/$name.log"
    sleep 1
  done
  # The log's tail goes with the error: a test harness may delete the state folder afterwards.
  tail -n 30 "$SB_LOGS/$name.log" >&2 2>/dev/null || true
  die "$name not ready after ${timeout}s; see $SB_LOGS/$name.log (its last lines above)"
}

# A Go program built once from its module (the go command and the module proxy), for servers
# whose releases cannot be fetched here; kept as BINARY (under $SB_CACHE), its build log in
# .state/logs/NAME-build.log.
go_build_once() { # go_build_once NAME PACKAGE VERSION BINARY MINUTES
  local name=$1 package=$2 version=$3 binary=$4 minutes=$5
  [ -x "$binary" ] && return 0
  need_cmd go "install Go (the go command) to build $name"
  local build
  build=$(dirname "$binary")/build
  mkdir -p "$build"
  info "building $name $version from its Go module (first run only, about $minutes minutes)"
  (
    cd "$build" &&
      { [ -f go.mod ] || go mod init "switchboard.local/$name-build"; } &&
      go get -tool "$package@$version" &&
      go build -o "$binary.tmp" "$package" &&
      mv -f "$binary.tmp" "$binary"
  ) >"$SB_LOGS/$name-build.log" 2>&1 || die "building $name failed; see $SB_LOGS/$name-build.log"
}

# A random secret, created once and kept in .state/secrets/NAME (mode 600).
secret() { # secret NAME
  local file=$SB_SECRETS/$1
  if [ ! -s "$file" ]; then
    mkdir -p "$SB_SECRETS" && chmod 700 "$SB_SECRETS"
    (umask 077 && head -c 36 /dev/urandom | base64 | tr -d '/+=' >"$file")  # ≥ 40 characters
  fi
  cat "$file"
}

# The local stack's TLS: a CA of its own and one server certificate for localhost and
# 127.0.0.1 (EC P-256, PEM, keys PKCS#8 and unencrypted), made once in .state/tls (mode 700;
# never in git). Kafka, Mosquitto and PostgreSQL serve it on their TLS ports; clients trust
# ca.pem. Renewed when it is within 30 days of expiring.
tls_certs() {
  local dir=$SB_STATE/tls
  if [ -s "$dir/server.pem" ] && openssl x509 -checkend $((30 * 86400)) -noout -in "$dir/server.pem" >/dev/null 2>&1; then
    return 0
  fi
  need_cmd openssl "install openssl (apt-get install openssl)"
  mkdir -p "$dir" "$SB_LOGS" && chmod 700 "$dir"
  (
    umask 077 && cd "$dir" &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 825 \
        -subj "/CN=Switchboard local CA" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
        -subj "/CN=localhost" &&
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext &&
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -extfile server.ext \
        -out server.pem &&
      cat server.key server.pem >server-bundle.pem && chmod 644 ca.pem
  ) >>"$SB_LOGS/tls.log" 2>&1 || die "making the local TLS certificates failed; see $SB_LOGS/tls.log"
}

java_home() {
  need_cmd java "install a Java 17+ runtime (apt-get install openjdk-17-jre-headless) or put it on PATH"
  local java_bin
  java_bin=$(readlink -f "$(command -v java)")
  dirname "$(dirname "$java_bin")"
}

# Packages from Debian's archive, installed once (needs root).
apt_install() { # apt_install PKG...
  local missing=() pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  as_root || die "packages missing: ${missing[*]}; install them (sudo apt-get install ${missing[*]}) and retry"
  info "installing ${missing[*]} from Debian's archive"
  # Keep apt from starting the packages' own system-wide daemons; we run ours.
  local policy=/usr/sbin/policy-rc.d ours=
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && ours=1; fi
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$SB_LOGS/apt.log" 2>&1
  local rc=$?
  [ -n "$ours" ] && rm -f "$policy"
  [ $rc -eq 0 ] || die "apt-get install ${missing[*]} failed; see $SB_LOGS/apt.log"
}
