#!/usr/bin/env bash
# Make sure a PostgreSQL server is available for the test suite and write its
# admin URL (postgresql+asyncpg://USER:PASS@127.0.0.1:PORT/postgres) to
# .pg-test-url in the repository root. The Makefile exports the contents of
# that file as LIAISON_TEST_POSTGRES_URL.
#
# Idempotent: safe to run repeatedly; it only does what is missing.
#
#  * LIAISON_TEST_POSTGRES_URL already set -> check that it answers, write it.
#  * otherwise, as root on Debian: install postgresql if needed, create/start
#    a cluster, create the superuser role liaison/liaison, write the URL.
#  * not root and no usable server -> print why, say the PostgreSQL tests will
#    be skipped, exit 0 without writing the URL. Under CI (CI=true, 1 or yes) this is
#    an error (exit 1) instead: CI must never silently skip the PostgreSQL tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
URL_FILE="$ROOT/.pg-test-url"
ROLE=liaison
PASSWORD=liaison
CLUSTER=main
WAIT_SECONDS=60

# CI services set CI=true; some set CI=1 or yes (tests/conftest.py reads it the same way).
in_ci() { case "$(echo "${CI:-}" | tr '[:upper:]' '[:lower:]' | tr -d '[:space:]')" in
    true|1|yes) return 0 ;; *) return 1 ;; esac; }

log() { echo "ensure-postgres: $*" >&2; }

# PostgreSQL cannot be provided here. Never leave a stale URL behind.
unavailable() {
    rm -f "$URL_FILE"
    if in_ci; then
        log "ERROR: PostgreSQL is required in CI (CI=${CI}) but unavailable: $*"
        exit 1
    fi
    log "PostgreSQL unavailable: $*"
    log "PostgreSQL tests will be SKIPPED. (Run as root, or set LIAISON_TEST_POSTGRES_URL" \
        "to postgresql+asyncpg://USER:PASS@HOST:PORT/postgres for a superuser.)"
    exit 0
}

write_url() {
    local tmp="$URL_FILE.tmp.$$"
    printf '%s\n' "$1" >"$tmp"
    mv -f "$tmp" "$URL_FILE"
    log "ok: wrote $(redact "$1") to ${URL_FILE#"$ROOT"/}"
}

redact() { sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#' <<<"$1"; }

# ---------------------------------------------------------------------------
# 1. Explicit URL from the environment: check it, write it, done.
# ---------------------------------------------------------------------------
if [[ -n "${LIAISON_TEST_POSTGRES_URL:-}" ]]; then
    url="$LIAISON_TEST_POSTGRES_URL"
    # The user asked for this server explicitly; if it does not work that is
    # a configuration error, not a reason to skip silently.
    if command -v psql >/dev/null 2>&1; then
        libpq_url="${url/postgresql+asyncpg:/postgresql:}"
        if ! err="$(psql "$libpq_url" -X -Atqc 'select 1' 2>&1 >/dev/null)"; then
            rm -f "$URL_FILE"
            log "ERROR: LIAISON_TEST_POSTGRES_URL=$(redact "$url") does not accept connections:"
            log "  $err"
            exit 1
        fi
    else
        # No client tools: at least check that something listens there.
        if ! python3 - "$url" <<'EOF'
import socket, sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=5).close()
EOF
        then
            rm -f "$URL_FILE"
            log "ERROR: nothing listens at LIAISON_TEST_POSTGRES_URL=$(redact "$url")"
            exit 1
        fi
        log "psql not installed; only checked that the port is open"
    fi
    write_url "$url"
    exit 0
fi

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Highest PostgreSQL major version whose server binaries are installed.
installed_version() {
    local d v best=""
    for d in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x "$d" ]] || continue
        v="${d#/usr/lib/postgresql/}"
        v="${v%%/*}"
        if [[ -z "$best" ]] || ((v > best)); then best="$v"; fi
    done
    echo "$best"
}

# Can we log in as the test role over TCP?
role_works() { # port
    PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=5 \
        psql -X -h 127.0.0.1 -p "$1" -U "$ROLE" -d postgres -Atqc 'select 1' >/dev/null 2>&1
}

# ---------------------------------------------------------------------------
# 2. Server binaries (Debian packaging: postgresql-common + postgresql-NN).
# ---------------------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ -z "$(installed_version)" ]]; then
    is_root || unavailable "no PostgreSQL server installed and not root (cannot apt-get install postgresql)"
    command -v apt-get >/dev/null 2>&1 || unavailable "no PostgreSQL server installed and no apt-get"
    log "installing PostgreSQL with apt-get ..."
    # policy-rc.d in containers may forbid starting services during install;
    # that is fine, the cluster is started below.
    if ! { apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; then
        unavailable "apt-get install postgresql failed"
    fi
fi
version="$(installed_version)"
[[ -n "$version" ]] || unavailable "postgresql installed but no server binaries found under /usr/lib/postgresql"

# ---------------------------------------------------------------------------
# 3. Cluster: use "<version> main" (Debian creates it on install).
# ---------------------------------------------------------------------------
cluster_field() { # field-number (pg_lsclusters -h: ver cluster port status owner datadir log)
    pg_lsclusters -h 2>/dev/null | awk -v v="$version" -v c="$CLUSTER" -v f="$1" \
        '$1 == v && $2 == c { print $f; exit }'
}

if [[ -z "$(cluster_field 2)" ]]; then
    is_root || unavailable "no PostgreSQL $version cluster '$CLUSTER' and not root (cannot pg_createcluster)"
    log "creating cluster $version $CLUSTER ..."
    pg_createcluster "$version" "$CLUSTER" >/dev/null ||
        unavailable "pg_createcluster $version $CLUSTER failed"
fi
port="$(cluster_field 3)"
status="$(cluster_field 4)"

# ---------------------------------------------------------------------------
# 4. Start it if needed and wait until it accepts connections.
# ---------------------------------------------------------------------------
if [[ "$status" != online* ]]; then
    if ! is_root; then
        # Maybe someone already set things up for us under another name.
        role_works "$port" && { write_url "postgresql+asyncpg://$ROLE:$PASSWORD@127.0.0.1:$port/postgres"; exit 0; }
        unavailable "cluster $version $CLUSTER is $status and not root (cannot start it)"
    fi
    # /run is a tmpfs; in containers nothing recreates the socket directory.
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql
    log "starting cluster $version $CLUSTER (port $port) ..."
    # As root, pg_ctlcluster switches to the cluster owner itself. Without
    # systemd (containers) it runs pg_ctl directly; with systemd it goes through
    # postgresql@VER-main.service. Either way no `service` / init needed.
    if ! pg_ctlcluster "$version" "$CLUSTER" start; then
        log "last lines of the server log:"
        tail -n 20 "$(cluster_field 7)" >&2 2>/dev/null || true
        unavailable "could not start cluster $version $CLUSTER"
    fi
fi

for ((i = 0; i < WAIT_SECONDS; i++)); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$port" ||
    unavailable "server on 127.0.0.1:$port did not accept connections within ${WAIT_SECONDS}s"

# ---------------------------------------------------------------------------
# 5. Role liaison/liaison (SUPERUSER: tests create and drop databases).
# ---------------------------------------------------------------------------
if ! role_works "$port"; then
    is_root || unavailable "cannot log in as $ROLE on 127.0.0.1:$port and not root (cannot create the role)"
    log "creating/updating role $ROLE ..."
    # Peer authentication over the Unix socket as the postgres OS user.
    # (cd / so psql does not complain about an unreadable working directory.)
    (cd / && runuser -u postgres -- psql -X -q -p "$port" -d postgres -v ON_ERROR_STOP=1) <<SQL ||
DO \$\$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    ALTER ROLE $ROLE WITH LOGIN SUPERUSER PASSWORD '$PASSWORD';
  ELSE
    CREATE ROLE $ROLE WITH LOGIN SUPERUSER PASSWORD '$PASSWORD';
  END IF;
END
\$\$;
SQL
        unavailable "could not create role $ROLE"
    role_works "$port" ||
        unavailable "role $ROLE exists but password login on 127.0.0.1:$port fails (check pg_hba.conf)"
fi

write_url "postgresql+asyncpg://$ROLE:$PASSWORD@127.0.0.1:$port/postgres"
