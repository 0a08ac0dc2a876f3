package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Redis shapes: how orgbridge reaches Redis.
const (
	// RedisSingle is one server (REDIS_URL).
	RedisSingle = "single"
	// RedisSentinel is a primary with replicas, found through Sentinel
	// (REDIS_SENTINEL_ADDRS and REDIS_SENTINEL_MASTER): the Sentinels promote a
	// replica when the primary fails, and clients follow.
	RedisSentinel = "sentinel"
	// RedisCluster is a Redis Cluster (REDIS_CLUSTER_ADDRS): keys sharded over
	// several primaries, each with replicas.
	RedisCluster = "cluster"
)

// Redis is how the ingress, the workers and the CLI reach Redis, in exactly
// one of three shapes: one server (URL), a primary behind Sentinel
// (SentinelAddrs and SentinelMaster) or a Redis Cluster (ClusterAddrs).
// cmd/orgbridge builds go-redis's Client, FailoverClient or ClusterClient from it.
type Redis struct {
	// URL is one server: redis://[user:password@]host:port/db, rediss:// for
	// TLS (REDIS_URL).
	URL string
	// SentinelAddrs are the Sentinels' host:port (REDIS_SENTINEL_ADDRS) and
	// SentinelMaster the name they monitor the primary under
	// (REDIS_SENTINEL_MASTER).
	SentinelAddrs  []string
	SentinelMaster string
	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// themselves, when they require it (REDIS_SENTINEL_USERNAME,
	// REDIS_SENTINEL_PASSWORD).
	SentinelUsername string
	SentinelPassword Secret
	// ClusterAddrs are some nodes of a Redis Cluster; the others are found
	// from them (REDIS_CLUSTER_ADDRS).
	ClusterAddrs []string
	// Username and Password are the ACL user of the Redis servers
	// (REDIS_USERNAME, REDIS_PASSWORD); with URL they may be in the URL instead.
	Username string
	Password Secret
	// TLS turns TLS on (REDIS_TLS=true; a rediss:// URL does too), checked
	// against TLSCAFile instead of the system roots when set (REDIS_TLS_CA).
	TLS       bool
	TLSCAFile string
}

// LoadRedis reads the Redis settings through getenv and checks that they
// name exactly one shape, completely.
func LoadRedis(getenv func(string) string) (Redis, error) {
	r := Redis{
		URL:              getenv("REDIS_URL"),
		SentinelAddrs:    splitNonEmpty(getenv("REDIS_SENTINEL_ADDRS")),
		SentinelMaster:   getenv("REDIS_SENTINEL_MASTER"),
		SentinelUsername: getenv("REDIS_SENTINEL_USERNAME"),
		SentinelPassword: Secret(getenv("REDIS_SENTINEL_PASSWORD")),
		ClusterAddrs:     splitNonEmpty(getenv("REDIS_CLUSTER_ADDRS")),
		Username:         getenv("REDIS_USERNAME"),
		Password:         Secret(getenv("REDIS_PASSWORD")),
		TLSCAFile:        getenv("REDIS_TLS_CA"),
	}
	if v := getenv("REDIS_TLS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return r, &Error{"REDIS_TLS", fmt.Sprintf("%q is neither true nor false", v)}
		}
		r.TLS = b
	}
	return r, r.Validate()
}

// Shape is [RedisSingle], [RedisSentinel] or [RedisCluster], or "" when no
// Redis is configured.
func (r Redis) Shape() string {
	switch {
	case len(r.SentinelAddrs) > 0 || r.SentinelMaster != "":
		return RedisSentinel
	case len(r.ClusterAddrs) > 0:
		return RedisCluster
	case r.URL != "":
		return RedisSingle
	}
	return ""
}

// Configured reports whether a Redis is configured (dev starts one when not).
func (r Redis) Configured() bool { return r.Shape() != "" }

// UsesTLS reports whether connections to Redis use TLS.
func (r Redis) UsesTLS() bool { return r.TLS || strings.HasPrefix(r.URL, "rediss://") }

// String describes where Redis is, without passwords: for logs and banners.
func (r Redis) String() string {
	switch r.Shape() {
	case RedisSentinel:
		return "Sentinel primary " + r.SentinelMaster + " via " + strings.Join(r.SentinelAddrs, ",")
	case RedisCluster:
		return "Redis Cluster via " + strings.Join(r.ClusterAddrs, ",")
	case RedisSingle:
		if u, err := url.Parse(r.URL); err == nil {
			return u.Redacted()
		}
		return "(unparsable REDIS_URL)"
	}
	return "(no Redis configured)"
}

// Validate reports the first setting that cannot work, naming its variable.
func (r Redis) Validate() error {
	var shapes []string
	for _, s := range []struct {
		name string
		set  bool
	}{{"REDIS_URL", r.URL != ""}, {"REDIS_SENTINEL_ADDRS", len(r.SentinelAddrs) > 0 || r.SentinelMaster != ""}, {"REDIS_CLUSTER_ADDRS", len(r.ClusterAddrs) > 0}} {
		if s.set {
			shapes = append(shapes, s.name)
		}
	}
	if len(shapes) > 1 {
		return &Error{shapes[0], fmt.Sprintf("and %s are both set; Redis is one server (REDIS_URL), behind Sentinel (REDIS_SENTINEL_ADDRS) or a cluster (REDIS_CLUSTER_ADDRS): choose one", shapes[1])}
	}
	switch r.Shape() {
	case RedisSingle:
		if err := checkURL(r.URL, "redis", "rediss", "unix"); err != nil {
			return &Error{"REDIS_URL", err.Error()}
		}
		if u, _ := url.Parse(r.URL); u.User != nil {
			if _, ok := u.User.Password(); ok && r.Password != "" {
				return &Error{"REDIS_PASSWORD", "is set and REDIS_URL has a password too: give it in one place"}
			}
			if u.User.Username() != "" && r.Username != "" {
				return &Error{"REDIS_USERNAME", "is set and REDIS_URL names a user too: give it in one place"}
			}
		}
	case RedisSentinel:
		if r.SentinelMaster == "" {
			return &Error{"REDIS_SENTINEL_MASTER", "is required with REDIS_SENTINEL_ADDRS: the name the Sentinels monitor the primary under (`sentinel monitor <name> …` in sentinel.conf)"}
		}
		if len(r.SentinelAddrs) == 0 {
			return &Error{"REDIS_SENTINEL_ADDRS", "is required with REDIS_SENTINEL_MASTER: the Sentinels' host:port, comma-separated"}
		}
		if err := checkAddrs(r.SentinelAddrs); err != nil {
			return &Error{"REDIS_SENTINEL_ADDRS", err.Error()}
		}
	case RedisCluster:
		if err := checkAddrs(r.ClusterAddrs); err != nil {
			return &Error{"REDIS_CLUSTER_ADDRS", err.Error()}
		}
	}
	if r.SentinelPassword != "" && r.Shape() != RedisSentinel {
		return &Error{"REDIS_SENTINEL_PASSWORD", "is set without REDIS_SENTINEL_ADDRS"}
	}
	if r.Username != "" && r.Password == "" && r.Shape() != RedisSingle {
		return &Error{"REDIS_PASSWORD", "is required with REDIS_USERNAME"}
	}
	if r.TLSCAFile != "" && !r.UsesTLS() {
		return &Error{"REDIS_TLS_CA", "is set but TLS is off: set REDIS_TLS=true (or use a rediss:// REDIS_URL)"}
	}
	return nil
}

func checkAddrs(addrs []string) error {
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("%q is not host:port", a)
		}
	}
	return nil
}
