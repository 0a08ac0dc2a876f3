#!/bin/sh
# Starts one data node of the Sentinel shape (a primary, its replicas and three Sentinels)
# through start.sh, as the primary or as a replica of the node that is the primary now.
#
#   REDIS_PASSWORD=… REDIS_REPLICA_PASSWORD=… REDIS_SENTINEL_PASSWORD=… \
#   REDIS_ANNOUNCE=redis-2:6379 REDIS_PRIMARY=redis-1:6379 \
#   REDIS_SENTINEL_ADDRS=sentinel-1:26379,sentinel-2:26379,sentinel-3:26379 \
#     deploy/redis/node.sh [redis-server options…]
#
#   REDIS_ANNOUNCE        host:port the other nodes and the Sentinels reach this node at: a name
#                         that survives a restart (compose's service name, the pod's DNS name in
#                         Kubernetes). Announced to the primary (replica-announce-ip/-port).
#   REDIS_PRIMARY         host:port of the primary when the Sentinels know none: the first start.
#   REDIS_SENTINEL_ADDRS  the Sentinels, asked first (REDIS_SENTINEL_PASSWORD; master name
#                         REDIS_SENTINEL_MASTER, default orgbridge). A node that comes back after
#                         a failover so rejoins as a replica of the new primary instead of
#                         starting as a second one.
#
# start.sh writes the ACL users (orgbridge, replica, sentinel; admin with REDIS_ADMIN_PASSWORD)
# and the replication password. Options go to redis-server (--bind, --port, --dir, …).
set -eu

: "${REDIS_ANNOUNCE:?set REDIS_ANNOUNCE: host:port the others reach this node at}"
: "${REDIS_PRIMARY:?set REDIS_PRIMARY: host:port of the first primary}"
: "${REDIS_REPLICA_PASSWORD:?set REDIS_REPLICA_PASSWORD: replicas authenticate to their primary with it}"
: "${REDIS_SENTINEL_PASSWORD:?set REDIS_SENTINEL_PASSWORD: the Sentinels authenticate with it}"

here=$(cd "$(dirname "$0")" && pwd)
master=${REDIS_SENTINEL_MASTER:-orgbridge}

. "$here/primary.sh"

primary=$(sentinel_primary)
if [ -n "$primary" ]; then
	echo "node.sh: the Sentinels name $primary as the primary of $master" >&2
else
	primary=$REDIS_PRIMARY
	echo "node.sh: no Sentinel answers; the primary is $primary (REDIS_PRIMARY)" >&2
fi

set -- --replica-announce-ip "${REDIS_ANNOUNCE%:*}" --replica-announce-port "${REDIS_ANNOUNCE##*:}" "$@"
if [ "$primary" != "$REDIS_ANNOUNCE" ]; then
	set -- --replicaof "${primary%:*}" "${primary##*:}" "$@"
fi
exec sh "$here/start.sh" "$@"
