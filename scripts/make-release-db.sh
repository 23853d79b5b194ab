#!/usr/bin/env bash
# Make the "previous release" databases tests/service/store/test_migration_agencies.py
# starts from: the release (default: the last commit before agencies, migration 0028) is
# checked out into a scratch worktree and its own code writes them
# (scripts/make_release_db.py). Needs PostgreSQL (scripts/ensure-postgres.sh) and
# .venv (make setup). Usage: bash scripts/make-release-db.sh [commit]
set -euo pipefail
release="${1:-f495b37}"
root="$(git rev-parse --show-toplevel)"
url="${LIAISON_TEST_POSTGRES_URL:-$(cat "$root/.pg-test-url")}"
admin="${url/postgresql+asyncpg:/postgresql:}"
work="$(mktemp -d)"
trap 'git -C "$root" worktree remove --force "$work/release"; rm -rf "$work"' EXIT
git -C "$root" worktree add --detach "$work/release" "$release" >/dev/null
cd "$work/release"
PYTHONPATH="$work/release" "$root/.venv/bin/python" "$root/scripts/make_release_db.py" \
    --release "$release" --postgres "$admin" --out "$root/tests/fixtures/release" \
    --scratch "$work"
