#!/bin/sh
# Starts redis-server with deploy/redis/redis.conf and orgbridge's ACL users.
#
#   REDIS_PASSWORD=… deploy/redis/start.sh [redis-server options…]
#
# It writes the ACL file (REDIS_ACL_FILE, default /tmp/orgbridge-users.acl, owner-only)
# with the SHA-256 of each password, never the password, then runs
# `redis-server redis.conf --aclfile FILE [options…]`; options override redis.conf
# (for example --bind 0.0.0.0 on a private network, --port, --dir).
# `start.sh --print-acl` prints the ACL file instead, for a Redis started some other way.
#
# Users:
#   default    off: a client without a user and password is refused.
#   orgbridge  (REDIS_PASSWORD) the ingress, the workers and the CLI, REDIS_URL
#              redis://orgbridge:<password>@host:6379/0. Keys ob:* only (every orgbridge
#              key: internal/store.Key); no pub/sub channels. Commands:
#                +@read +@write +@keyspace  strings, hashes, sets, sorted sets, lists, streams,
#                                           DEL/EXPIRE/EXISTS/TYPE
#                +@scripting                EVAL/EVALSHA: locks, idempotency and stores are Lua
#                +@transaction              MULTI/EXEC (TxPipeline)
#                +@connection +time         HELLO/AUTH/PING/CLIENT SETINFO; TIME inside scripts
#                -@dangerous                no FLUSHALL/FLUSHDB, KEYS, CONFIG, DEBUG, MIGRATE,
#                                           RESTORE, SORT, INFO, MONITOR, ACL, SHUTDOWN, …
#                -function -script|flush   no server-side function libraries, no flushing scripts
#   admin      (REDIS_ADMIN_PASSWORD, only when set) people and backups: everything.
set -eu

: "${REDIS_PASSWORD:?set REDIS_PASSWORD: the password of the orgbridge user (REDIS_URL redis://orgbridge:<password>@host:6379/0)}"

here=$(cd "$(dirname "$0")" && pwd)

sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

acl() {
	echo "user default off resetkeys resetchannels -@all"
	echo "user orgbridge on #$(sha256 "$REDIS_PASSWORD") resetkeys ~ob:* resetchannels -@all" \
		"+@read +@write +@keyspace +@scripting +@transaction +@connection +time" \
		"-@dangerous -function -script|flush"
	if [ -n "${REDIS_ADMIN_PASSWORD:-}" ]; then
		echo "user admin on #$(sha256 "$REDIS_ADMIN_PASSWORD") ~* &* +@all"
	fi
}

if [ "${1:-}" = "--print-acl" ]; then
	acl
	exit 0
fi

file=${REDIS_ACL_FILE:-/tmp/orgbridge-users.acl}
umask 077
acl >"$file"
exec redis-server "$here/redis.conf" --aclfile "$file" "$@"
