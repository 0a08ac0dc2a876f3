#!/bin/sh
# Starts a Redis Sentinel watching orgbridge's primary (node.sh starts the data nodes). Three
# Sentinels, two of which must agree, promote a replica when the primary stops answering, and
# orgbridge follows them (REDIS_SENTINEL_ADDRS, REDIS_SENTINEL_MASTER).
#
#   REDIS_SENTINEL_PASSWORD=… REDIS_ANNOUNCE=sentinel-1:26379 REDIS_PRIMARY=redis-1:6379 \
#   REDIS_SENTINEL_ADDRS=sentinel-1:26379,sentinel-2:26379,sentinel-3:26379 \
#     deploy/redis/sentinel.sh [redis-server options…]
#
#   REDIS_SENTINEL_PASSWORD  required of every client of this Sentinel (orgbridge's
#                            REDIS_SENTINEL_PASSWORD, the other Sentinels) and used to log in to
#                            the data nodes as their `sentinel` ACL user (start.sh)
#   REDIS_ANNOUNCE           host:port the others reach this Sentinel at (a name that survives a
#                            restart)
#   REDIS_PRIMARY            host:port of the primary to watch when no other Sentinel in
#                            REDIS_SENTINEL_ADDRS names one (the first start); after a failover the
#                            others' answer, and their hello messages, win
#   REDIS_SENTINEL_MASTER    the name the primary is watched under (default orgbridge)
#   REDIS_SENTINEL_DOWN_AFTER_MS  how long the primary may be silent before a Sentinel thinks it
#                            down (default 5000)
#
# The configuration goes to REDIS_SENTINEL_CONF (default /tmp/orgbridge-sentinel.conf,
# owner-only): a Sentinel rewrites it as it learns, so it must be writable. Host names are
# resolved and announced (resolve-hostnames, announce-hostnames): pod IPs change, names do not.
set -eu

: "${REDIS_SENTINEL_PASSWORD:?set REDIS_SENTINEL_PASSWORD: clients and the other Sentinels authenticate with it}"
: "${REDIS_ANNOUNCE:?set REDIS_ANNOUNCE: host:port the others reach this Sentinel at}"
: "${REDIS_PRIMARY:?set REDIS_PRIMARY: host:port of the first primary}"

master=${REDIS_SENTINEL_MASTER:-orgbridge}
conf=${REDIS_SENTINEL_CONF:-/tmp/orgbridge-sentinel.conf}

here=$(cd "$(dirname "$0")" && pwd)
. "$here/primary.sh"

primary=$(sentinel_primary "$REDIS_ANNOUNCE")
if [ -n "$primary" ]; then
	echo "sentinel.sh: the Sentinels name $primary as the primary of $master" >&2
fi
primary=${primary:-$REDIS_PRIMARY}

umask 077
cat >"$conf" <<EOF
port ${REDIS_ANNOUNCE##*:}
dir /tmp
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip "${REDIS_ANNOUNCE%:*}"
sentinel announce-port ${REDIS_ANNOUNCE##*:}
requirepass "$REDIS_SENTINEL_PASSWORD"
sentinel sentinel-pass "$REDIS_SENTINEL_PASSWORD"
sentinel monitor $master ${primary%:*} ${primary##*:} 2
sentinel auth-user $master sentinel
sentinel auth-pass $master "$REDIS_SENTINEL_PASSWORD"
sentinel down-after-milliseconds $master ${REDIS_SENTINEL_DOWN_AFTER_MS:-5000}
sentinel failover-timeout $master 60000
sentinel parallel-syncs $master 1
EOF
exec redis-server "$conf" --sentinel "$@"
