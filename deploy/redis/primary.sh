# Sourced by node.sh and sentinel.sh (not run alone): which node the Sentinels name as
# orgbridge's primary. Needs REDIS_SENTINEL_PASSWORD and $master (REDIS_SENTINEL_MASTER,
# default orgbridge); reads REDIS_SENTINEL_ADDRS.

# ask HOST:PORT prints the primary that Sentinel names, as host:port, and fails when it names none.
ask() {
	a=$(REDISCLI_AUTH=$REDIS_SENTINEL_PASSWORD timeout 3 redis-cli -h "${1%:*}" -p "${1##*:}" \
		--raw sentinel get-master-addr-by-name "$master" 2>/dev/null) || return 1
	set -- $a
	[ $# -eq 2 ] || return 1
	case $2 in '' | *[!0-9]*) return 1 ;; esac
	echo "$1:$2"
}

# sentinel_primary [SELF] prints the primary the first Sentinel of REDIS_SENTINEL_ADDRS that
# answers names (SELF, a Sentinel's own address, is not asked); nothing when none does.
sentinel_primary() {
	for s in $(echo "${REDIS_SENTINEL_ADDRS:-}" | tr ',' ' '); do
		[ "$s" = "${1:-}" ] && continue
		ask "$s" && return
	done
	return 0
}
