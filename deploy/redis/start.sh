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
#                +info                      INFO only (read-only): a write that must survive a
#                                           failover asks how many replicas to WAIT for
#                                           (internal/store.Replicated; WAIT is in @connection)
#   admin      (REDIS_ADMIN_PASSWORD, only when set) people and backups: everything.
#   replica    (REDIS_REPLICA_PASSWORD, only when set) replicas of the Sentinel shape
#              (node.sh) reading their primary's stream: PSYNC, REPLCONF, PING. With it every
#              node also authenticates to its primary as `replica` (masteruser/masterauth,
#              written to a config file beside the ACL file, never on the command line),
#              since a failover may turn any node into a replica.
#   sentinel   (REDIS_SENTINEL_PASSWORD, only when set) the Sentinels (sentinel.sh) watching
#              the nodes and reconfiguring them in a failover: the commands Redis documents
#              for a Sentinel's ACL user (INFO, ROLE, REPLICAOF, CONFIG REWRITE, CLIENT KILL,
#              the hello channel, …), no keys.
set -eu

: "${REDIS_PASSWORD:?set REDIS_PASSWORD: the password of the orgbridge user (REDIS_URL redis://orgbridge:<password>@host:6379/0)}"

here=$(cd "$(dirname "$0")" && pwd)

sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

acl() {
	echo "user default off resetkeys resetchannels -@all"
	echo "user orgbridge on #$(sha256 "$REDIS_PASSWORD") resetkeys ~ob:* resetchannels -@all" \
		"+@read +@write +@keyspace +@scripting +@transaction +@connection +time" \
		"-@dangerous -function -script|flush +info"
	if [ -n "${REDIS_ADMIN_PASSWORD:-}" ]; then
		echo "user admin on #$(sha256 "$REDIS_ADMIN_PASSWORD") ~* &* +@all"
	fi
	if [ -n "${REDIS_REPLICA_PASSWORD:-}" ]; then
		echo "user replica on #$(sha256 "$REDIS_REPLICA_PASSWORD") resetkeys resetchannels -@all +psync +replconf +ping"
	fi
	if [ -n "${REDIS_SENTINEL_PASSWORD:-}" ]; then
		echo "user sentinel on #$(sha256 "$REDIS_SENTINEL_PASSWORD") resetkeys allchannels -@all" \
			"+multi +exec +ping +info +role +slaveof +replicaof +config|rewrite +client|setname +client|kill" \
			"+script|kill +subscribe +publish"
	fi
}

if [ "${1:-}" = "--print-acl" ]; then
	acl
	exit 0
fi

file=${REDIS_ACL_FILE:-/tmp/orgbridge-users.acl}
umask 077
acl >"$file"
if [ -z "${REDIS_REPLICA_PASSWORD:-}" ]; then
	exec redis-server "$here/redis.conf" --aclfile "$file" "$@"
fi
# The primary's password for replication in a file of its own (owner-only, like the ACL file)
# that includes redis.conf. It is writable, so the CONFIG REWRITE a Sentinel sends after
# reconfiguring this node succeeds.
conf=$file.conf
{
	echo "include \"$here/redis.conf\""
	echo "aclfile \"$file\""
	echo "masteruser replica"
	echo "masterauth \"$REDIS_REPLICA_PASSWORD\""
} >"$conf"
exec redis-server "$conf" "$@"
