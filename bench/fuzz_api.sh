#!/usr/bin/env bash
# Fuzz the JSON API from its own OpenAPI schema with schemathesis, against a real server process
# on a fresh database: SQLite by default, or PostgreSQL with `bench/fuzz_api.sh postgresql URL`.
# Prints schemathesis's summary; the figure that matters is "not_a_server_error" (0 failures).
#   pip install schemathesis   (not a project dependency: a tool for this run)
set -euo pipefail
kind="${1:-sqlite}"
port="${PORT:-8799}"
work="$(mktemp -d)"
export HF_HUB_OFFLINE=1 MOCKINTERVIEW_DATA_DIR="$work" MOCKINTERVIEW_REVIEWER_TOKEN="fuzz-reviewer-token-0123"
export MOCKINTERVIEW_GRADE_RATE_PER_MINUTE=100000
if [ "$kind" = postgresql ]; then
  base="${2:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
  db="mi_fuzz_$$"
  psql "${base/+psycopg/}" -qc "CREATE DATABASE $db" >/dev/null
  export MOCKINTERVIEW_DATABASE_URL="${base%/*}/$db"
fi
mockinterview db upgrade >/dev/null
mockinterview serve --port "$port" >"$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  if [ "$kind" = postgresql ]; then psql "${base/+psycopg/}" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 1; done
echo "== $kind: $(python3 -c 'import platform; print(platform.processor() or platform.machine())'), $(nproc) cores"
schemathesis run "http://127.0.0.1:$port/openapi.json" --checks all --max-examples 50 \
  -H "Authorization: Bearer $MOCKINTERVIEW_REVIEWER_TOKEN" --no-color 2>&1 | tail -"${TAIL:-40}" || true
echo "== server errors in the server log: $(grep -c ' 500 ' "$work/server.log" || true)"
kill -0 "$server" && echo "== server still alive"
