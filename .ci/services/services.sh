#!/usr/bin/env bash
# The scale profile's services on this machine: PostgreSQL, Redis and an S3 emulator (moto).
#
#   .ci/services/services.sh start    install what is missing, start all three, write the profile
#   .ci/services/services.sh stop     stop them by their PIDs and remove their data
#   .ci/services/services.sh status   which are running
#
# Each service binds 127.0.0.1 only, on a free port, with its data in a fresh temp folder. The
# profile file ($SCOREHOUSE_SERVICES_ENV, default .scorehouse/services.env) holds the settings
# of the scale profile (SCOREHOUSE_PROFILE=scale and every service address); `scorehouse`,
# Dagster and the tests read it through SCOREHOUSE_PROFILE_FILE, and a shell can source it.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${SCOREHOUSE_PYTHON:-$ROOT/.venv/bin/python}"
ENV_FILE="${SCOREHOUSE_SERVICES_ENV:-$ROOT/.scorehouse/services.env}"
BUCKET="${SCOREHOUSE_SERVICES_BUCKET:-scorehouse}"

log() { echo "[services] $*" >&2; }
die() { echo "[services] error: $*" >&2; exit 1; }

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

apt_install() {
  command -v apt-get >/dev/null || die "$1 is missing and apt-get is not available: install $1"
  [ "$(id -u)" = 0 ] || die "$1 is missing: install it (apt-get install $*) or run as root"
  log "installing $* (apt-get)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}

pg_bin() {
  # pg_ctl on PATH, else Debian's versioned folder; install PostgreSQL if neither exists.
  local found
  found="$(command -v pg_ctl 2>/dev/null || true)"
  if [ -z "$found" ]; then
    found="$(ls -1d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -1 || true)"
  fi
  if [ -z "$found" ]; then
    apt_install postgresql
    found="$(ls -1d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)"
  fi
  dirname "$(readlink -f "$found")"
}

as_pg() {
  # PostgreSQL refuses to run as root: run its tools as the `postgres` user then.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_for() {  # wait_for NAME SECONDS COMMAND...
  local name="$1" seconds="$2"; shift 2
  for _ in $(seq 1 $((seconds * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "$name did not answer within ${seconds}s (logs in $STATE)"
}

start_postgres() {
  local bin port password
  bin="$(pg_bin)"
  port="$(free_port)"
  password="$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
  mkdir -p "$STATE/postgres"
  printf '%s\n' "$password" >"$STATE/postgres.password"
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$STATE/postgres" "$STATE/postgres.password"; fi
  as_pg "$bin/initdb" -D "$STATE/postgres/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 >"$STATE/postgres/initdb.log" 2>&1 \
    || die "initdb failed: $(tail -5 "$STATE/postgres/initdb.log")"
  as_pg "$bin/pg_ctl" -D "$STATE/postgres/data" -l "$STATE/postgres/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $STATE/postgres -c fsync=off" start >/dev/null \
    || die "PostgreSQL did not start: $(tail -5 "$STATE/postgres/server.log")"
  head -1 "$STATE/postgres/data/postmaster.pid" >"$STATE/postgres.pid"
  local psql=("$bin/psql" -h "$STATE/postgres" -p "$port" -U postgres -v ON_ERROR_STOP=1 -q)
  as_pg "${psql[@]}" -c "CREATE ROLE scorehouse LOGIN CREATEDB PASSWORD '$password'"
  for db in dagster mlflow feast; do
    as_pg "${psql[@]}" -c "CREATE DATABASE $db OWNER scorehouse"
  done
  echo "$bin" >"$STATE/postgres.bin"
  echo "SCOREHOUSE_POSTGRES_URL=postgresql://scorehouse:$password@127.0.0.1:$port" >>"$STATE/env"
  log "PostgreSQL on 127.0.0.1:$port (databases dagster, mlflow, feast)"
}

start_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  local port
  port="$(free_port)"
  mkdir -p "$STATE/redis"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$STATE/redis" --save "" \
    --appendonly no --protected-mode yes --daemonize no >"$STATE/redis/server.log" 2>&1 &
  echo $! >"$STATE/redis.pid"
  wait_for Redis 30 "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)"
  echo "SCOREHOUSE_REDIS_URL=redis://127.0.0.1:$port/0" >>"$STATE/env"
  log "Redis on 127.0.0.1:$port"
}

start_s3() {
  "$PY" -c "import moto.server" 2>/dev/null || {
    log "installing moto's server (pip)"
    "$PY" -m pip install --quiet "moto[s3]>=5.1,<6" flask-cors
  }
  local port endpoint
  port="$(free_port)"
  endpoint="http://127.0.0.1:$port"
  mkdir -p "$STATE/s3"
  AWS_EC2_METADATA_DISABLED=true "$PY" -m moto.server -H 127.0.0.1 -p "$port" \
    >"$STATE/s3/server.log" 2>&1 &
  echo $! >"$STATE/s3.pid"
  wait_for "the S3 emulator" 60 "$PY" -c \
    "import urllib.request; urllib.request.urlopen('$endpoint/moto-api/', timeout=2)"
  "$PY" -c "import urllib.request as u; u.urlopen(u.Request('$endpoint/$BUCKET', method='PUT'))"
  {
    echo "SCOREHOUSE_LAKEHOUSE_URI=s3://$BUCKET/lakehouse"
    echo "SCOREHOUSE_MLFLOW_ARTIFACTS=s3://$BUCKET/mlflow"
    printf 'SCOREHOUSE_STORAGE_OPTIONS={"AWS_ENDPOINT_URL": "%s", "AWS_ALLOW_HTTP": "true", ' \
      "$endpoint"
    echo '"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}'
  } >>"$STATE/env"
  log "S3 emulator on $endpoint (bucket $BUCKET)"
}

stop_pid() {  # stop_pid NAME PIDFILE: SIGTERM, then SIGKILL after 10 s
  local name="$1" file="$2" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    log "stopped $name (PID $pid)"
  fi
  rm -f "$file"
}

state_dir() {
  [ -f "$ENV_FILE" ] || return 1
  sed -n 's/^SCOREHOUSE_SERVICES_DIR=//p' "$ENV_FILE"
}

cmd_start() {
  if STATE="$(state_dir)" && [ -n "$STATE" ] && [ -d "$STATE" ]; then
    die "services already started ($ENV_FILE); run '$0 stop' first"
  fi
  STATE="$(mktemp -d "${TMPDIR:-/tmp}/scorehouse-services.XXXXXX")"
  chmod 755 "$STATE"
  : >"$STATE/env"
  mkdir -p "$(dirname "$ENV_FILE")"
  # Whatever started is stopped again if a later one fails: nothing is left half-started.
  trap 'status=$?; if [ $status -ne 0 ]; then STATE_ONLY=1 cmd_stop_state; fi' EXIT
  start_postgres
  start_redis
  start_s3
  {
    echo "# The scale profile on this machine's services (written by .ci/services/services.sh)."
    echo "SCOREHOUSE_PROFILE=scale"
    echo "SCOREHOUSE_SERVICES_DIR=$STATE"
    cat "$STATE/env"
  } >"$ENV_FILE"
  trap - EXIT
  log "profile written to $ENV_FILE (SCOREHOUSE_PROFILE_FILE=$ENV_FILE)"
}

cmd_stop_state() {
  stop_pid "the S3 emulator" "$STATE/s3.pid"
  stop_pid Redis "$STATE/redis.pid"
  if [ -f "$STATE/postgres.pid" ]; then
    if [ -f "$STATE/postgres.bin" ] && kill -0 "$(cat "$STATE/postgres.pid")" 2>/dev/null; then
      as_pg "$(cat "$STATE/postgres.bin")/pg_ctl" -D "$STATE/postgres/data" -m fast -w stop \
        >/dev/null 2>&1 || true
    fi
    stop_pid PostgreSQL "$STATE/postgres.pid"
  fi
  case "$STATE" in
    */scorehouse-services.*) rm -rf "$STATE" ;;
  esac
}

cmd_stop() {
  STATE="$(state_dir || true)"
  if [ -z "$STATE" ]; then log "no services recorded in $ENV_FILE"; return 0; fi
  cmd_stop_state
  rm -f "$ENV_FILE"
}

cmd_status() {
  STATE="$(state_dir || true)"
  [ -n "$STATE" ] || { log "not started"; return 1; }
  local code=0
  for name in postgres redis s3; do
    if [ -f "$STATE/$name.pid" ] && kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null; then
      log "$name running (PID $(cat "$STATE/$name.pid"))"
    else
      log "$name NOT running"; code=1
    fi
  done
  return $code
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
