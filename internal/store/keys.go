package store

import "strings"

// KeyPrefix starts every orgbridge key, so the keyspace can be shared and
// inspected with a glance.
const KeyPrefix = "ob"

// GlobalTenant is the hash tag of keys that belong to no tenant.
const GlobalTenant = "_"

// Key builds a Redis key for tenant: "ob:{T123}:binding:…". The tenant is the
// Redis Cluster hash tag, so every key of one tenant lives in one slot and a Lua
// script may touch several of them. An empty tenant becomes [GlobalTenant]; braces
// in the tenant become '_' so they cannot break the hash tag. Parts are joined with
// ':' as given.
func Key(tenant string, parts ...string) string {
	tenant = hashTag(tenant)
	n := len(KeyPrefix) + len(tenant) + 3
	for _, p := range parts {
		n += len(p) + 1
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(KeyPrefix)
	b.WriteString(":{")
	b.WriteString(tenant)
	b.WriteByte('}')
	for _, p := range parts {
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

func hashTag(tenant string) string {
	if tenant == "" {
		return GlobalTenant
	}
	if !strings.ContainsAny(tenant, "{}") {
		return tenant
	}
	return strings.Map(func(r rune) rune {
		if r == '{' || r == '}' {
			return '_'
		}
		return r
	}, tenant)
}
