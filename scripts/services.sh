#!/usr/bin/env bash
# Starts PostgreSQL and Redis when they are not answering (they are preinstalled on this
# kind of machine and usually already running). The tests use them for real.
set -uo pipefail
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! pg_up && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! redis_up && command -v redis-server >/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/tessera-redis.log || true
fi
for _ in $(seq 1 30); do pg_up && redis_up && exit 0; sleep 1; done
echo "services.sh: PostgreSQL or Redis did not come up on 127.0.0.1" >&2
exit 1
