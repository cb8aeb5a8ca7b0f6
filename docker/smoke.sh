#!/usr/bin/env bash
# Smoke test of a built image without a container daemon:
#   docker/smoke.sh [IMAGE]      (default localhost/gatehouse:test)
# Runs the image's migrate, API, worker and gateway commands, each with `buildah run` (chroot
# isolation, host network), against the Postgres on 127.0.0.1:5432 (user postgres; a fresh
# database, dropped after) and the Redis on 127.0.0.1:6379 (a fresh key prefix, deleted after);
# checks /healthz and /readyz of each, creates a tenant, sees the gateway node registered, and gets
# the gateway's 401 on the tenant's MCP URL. Prints SMOKE PASSED or SMOKE FAILED with the logs.
# Build first, e.g.: buildah bud --isolation chroot -f docker/Dockerfile -t localhost/gatehouse:test .
set -u
IMAGE=${1:-localhost/gatehouse:test}
S="buildah ${BUILDAH_OPTS:-}"
RAND=$(openssl rand -hex 4); DB=gatehouse_smoke_$RAND
LOGS=$(mktemp -d)
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB" || exit 1
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PA=$(port); PG=$(port); PW=$(port)
ADMIN=$(openssl rand -hex 24); KEY=$(openssl rand -hex 32)
ENV=(-e DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB -e REDIS_URL=redis://127.0.0.1:6379 -e REDIS_KEY_PREFIX=gatehouse:smoke:$RAND: -e SECRETS_KEY=$KEY -e ADMIN_TOKEN=$ADMIN -e PUBLIC_GATEWAY_URL=http://127.0.0.1:$PG -e LOG_LEVEL=warn)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; sleep 3
  for c in gh-mig gh-api gh-wrk gh-gw; do $S rm $c-$RAND >/dev/null 2>&1; done
  redis-cli -h 127.0.0.1 --scan --pattern "gatehouse:smoke:$RAND:*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  rm -rf "$LOGS"
}
trap cleanup EXIT
for c in gh-mig gh-api gh-wrk gh-gw; do $S from --pull-never --name $c-$RAND "$IMAGE" >/dev/null; done
echo "== migrate (node packages/db/dist/cli.js deploy)"
$S run --isolation chroot --user gatehouse "${ENV[@]}" gh-mig-$RAND -- node packages/db/dist/cli.js deploy || exit 1
$S run --isolation chroot --user gatehouse "${ENV[@]}" -e API_PORT=$PA -e API_HOST=127.0.0.1 -e DB_MIGRATE_ON_START=false gh-api-$RAND -- node apps/api/dist/main.js >$LOGS/api.log 2>&1 & pids+=($!)
$S run --isolation chroot --user gatehouse "${ENV[@]}" -e WORKER_PORT=$PW gh-wrk-$RAND -- node apps/api/dist/worker.js >$LOGS/wrk.log 2>&1 & pids+=($!)
$S run --isolation chroot --user gatehouse "${ENV[@]}" -e GATEWAY_PORT=$PG -e GATEWAY_HOST=127.0.0.1 -e GATEWAY_NODE_ID=smoke-gw-1 gh-gw-$RAND -- node apps/gateway/dist/main.js >$LOGS/gw.log 2>&1 & pids+=($!)
wait_ok() { for _ in $(seq 1 90); do curl -sf -m 2 "$1" >/dev/null && return 0; sleep 1; done; echo "FAIL: $1 never answered 200"; return 1; }
fail=0
for u in http://127.0.0.1:$PA/healthz http://127.0.0.1:$PA/readyz http://127.0.0.1:$PG/healthz http://127.0.0.1:$PG/readyz http://127.0.0.1:$PW/healthz; do
  wait_ok "$u" && echo "ok   $u -> $(curl -s -m 2 "$u" | head -c 150)" || fail=1
done
auth=(-H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json")
echo "== POST /v1/tenants"; t=$(curl -s "${auth[@]}" http://127.0.0.1:$PA/v1/tenants -d '{"slug":"smoke","name":"Smoke"}'); echo "$t" | head -c 300; echo
echo "$t" | grep -q '"gatewayUrl"' || fail=1
echo "== GET /v1/gateways"; g=$(curl -s "${auth[@]}" http://127.0.0.1:$PA/v1/gateways); echo "$g" | head -c 300; echo
echo "$g" | grep -q smoke-gw-1 || fail=1
echo "== gateway answers MCP on the tenant URL (no credentials -> 401 with WWW-Authenticate)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' http://127.0.0.1:$PG/t/smoke/mcp -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}'); echo "HTTP $code"
[ "$code" = 401 ] || fail=1
[ $fail = 0 ] && echo "SMOKE PASSED" || { echo "SMOKE FAILED"; tail -20 $LOGS/api.log $LOGS/gw.log $LOGS/wrk.log; }
exit $fail
