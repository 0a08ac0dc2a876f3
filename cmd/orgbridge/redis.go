package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/store"
)

// redisShapeEnv are the Redis settings besides REDIS_URL, for --help.
var redisShapeEnv = []string{"REDIS_SENTINEL_ADDRS", "REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_USERNAME", "REDIS_SENTINEL_PASSWORD",
	"REDIS_CLUSTER_ADDRS", "REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_TLS", "REDIS_TLS_CA"}

// redisConnectTimeout bounds the first answer from Redis at start.
const redisConnectTimeout = 5 * time.Second

// openRedis connects to Redis in the shape rc describes (one server, a primary
// behind Sentinel, a Redis Cluster) and checks that it answers as that shape:
// a REDIS_URL that points at a Sentinel, a cluster node or a read-only replica
// is refused with what to set instead. Commands honour their context's
// deadline (ContextTimeoutEnabled), so a handler's timeout bounds its Redis
// calls during a failover too.
func openRedis(ctx context.Context, rc config.Redis) (redis.UniversalClient, error) {
	rdb, err := newRedisClient(rc)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, redisConnectTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		if rc.Shape() == config.RedisSentinel {
			if err := checkSentinelMaster(pctx, rc); err != nil {
				return nil, err
			}
		}
		return nil, fmt.Errorf("cannot reach Redis at %s: %w", redisWhere(rc, rdb), err)
	}
	if single, ok := rdb.(*redis.Client); ok {
		if err := checkSingleServer(pctx, single); err != nil {
			rdb.Close()
			return nil, err
		}
	}
	return rdb, nil
}

// redisWhere names what openRedis tried to reach, without passwords.
func redisWhere(rc config.Redis, rdb redis.UniversalClient) string {
	if c, ok := rdb.(*redis.Client); ok && rc.Shape() == config.RedisSingle {
		return c.Options().Addr
	}
	return rc.String()
}

// newRedisClient builds go-redis's client for rc's shape without dialling.
func newRedisClient(rc config.Redis) (redis.UniversalClient, error) {
	var tlsConf *tls.Config
	if rc.UsesTLS() {
		var err error
		if tlsConf, err = redisTLS(rc.TLSCAFile); err != nil {
			return nil, err
		}
	}
	switch rc.Shape() {
	case config.RedisSingle:
		opts, err := redis.ParseURL(rc.URL)
		if err != nil {
			return nil, usagef("REDIS_URL: %v", err)
		}
		if opts.Username == "" {
			opts.Username = rc.Username
		}
		if opts.Password == "" {
			opts.Password = rc.Password.Reveal()
		}
		if tlsConf != nil {
			if host, _, err := net.SplitHostPort(opts.Addr); err == nil && opts.Network != "unix" {
				tlsConf.ServerName = host
			}
			opts.TLSConfig = tlsConf
		}
		opts.ContextTimeoutEnabled = true
		return redis.NewClient(opts), nil
	case config.RedisSentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: rc.SentinelMaster, SentinelAddrs: rc.SentinelAddrs,
			SentinelUsername: rc.SentinelUsername, SentinelPassword: rc.SentinelPassword.Reveal(),
			Username: rc.Username, Password: rc.Password.Reveal(),
			TLSConfig: tlsConf, ContextTimeoutEnabled: true,
		}), nil
	case config.RedisCluster:
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: rc.ClusterAddrs, Username: rc.Username, Password: rc.Password.Reveal(),
			TLSConfig: tlsConf, ContextTimeoutEnabled: true,
		})
		store.FollowFailovers(c)
		return c, nil
	}
	return nil, usagef("REDIS_URL (or REDIS_SENTINEL_ADDRS, or REDIS_CLUSTER_ADDRS) is required")
}

func redisTLS(caFile string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, usagef("REDIS_TLS_CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, usagef("REDIS_TLS_CA: %s holds no PEM certificate", caFile)
	}
	conf.RootCAs = pool
	return conf, nil
}

// checkSingleServer refuses a REDIS_URL whose server cannot hold orgbridge's
// state by itself. A Sentinel answers PING like a server but refuses every
// data command; a cluster node answers for its own slots only; a replica
// refuses writes. Each is caught here, at start, with the setting that fits.
func checkSingleServer(ctx context.Context, c *redis.Client) error {
	mode, role, err := serverMode(ctx, c)
	if err != nil {
		return nil // an ACL that allows neither HELLO nor INFO: nothing to check with
	}
	addr := c.Options().Addr
	switch {
	case mode == "sentinel":
		hint := "REDIS_SENTINEL_MASTER=<the name it monitors>"
		if names := sentinelMasters(ctx, c); len(names) > 0 {
			hint = "REDIS_SENTINEL_MASTER=" + strings.Join(names, " or ")
		}
		return usagef("REDIS_URL: %s is a Redis Sentinel, not a Redis server: it answers PING but stores nothing. "+
			"Leave REDIS_URL unset and set REDIS_SENTINEL_ADDRS=%s (and the other Sentinels) and %s", addr, addr, hint)
	case mode == "cluster":
		return usagef("REDIS_URL: %s is a node of a Redis Cluster, which serves only its own slots. "+
			"Leave REDIS_URL unset and set REDIS_CLUSTER_ADDRS=%s (and a few other nodes)", addr, addr)
	case role == "replica" || role == "slave":
		return usagef("REDIS_URL: %s is a read-only replica; point REDIS_URL at the primary, or use Sentinel "+
			"(REDIS_SENTINEL_ADDRS, REDIS_SENTINEL_MASTER) so failovers are followed", addr)
	}
	return nil
}

// serverMode asks the server what it is (standalone, sentinel or cluster) and
// its role (master or replica): HELLO, which any user may send, else INFO.
func serverMode(ctx context.Context, c *redis.Client) (mode, role string, err error) {
	proto := c.Options().Protocol
	if proto == 0 {
		proto = 3
	}
	if v, err := c.Do(ctx, "HELLO", proto).Result(); err == nil {
		fields := map[string]string{}
		switch v := v.(type) {
		case map[any]any: // RESP3
			for k, val := range v {
				fields[fmt.Sprint(k)] = fmt.Sprint(val)
			}
		case []any: // RESP2: flat pairs
			for i := 0; i+1 < len(v); i += 2 {
				fields[fmt.Sprint(v[i])] = fmt.Sprint(v[i+1])
			}
		}
		if fields["mode"] != "" {
			return fields["mode"], fields["role"], nil
		}
	}
	info, err := c.Info(ctx, "server", "replication").Result()
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "redis_mode":
			mode = v
		case "role":
			role = v
		}
	}
	if mode == "" {
		return "", "", errors.New("INFO names no redis_mode")
	}
	return mode, role, nil
}

// checkSentinelMaster explains a Sentinel setup that cannot work: no
// Sentinel monitors a primary named REDIS_SENTINEL_MASTER (go-redis says only
// "redis: nil" then).
func checkSentinelMaster(ctx context.Context, rc config.Redis) error {
	var tlsConf *tls.Config
	if rc.UsesTLS() {
		tlsConf, _ = redisTLS(rc.TLSCAFile)
	}
	for _, addr := range rc.SentinelAddrs {
		c := redis.NewClient(&redis.Options{Addr: addr, Username: rc.SentinelUsername, Password: rc.SentinelPassword.Reveal(),
			TLSConfig: tlsConf, MaxRetries: -1, ContextTimeoutEnabled: true})
		names := sentinelMasters(ctx, c)
		c.Close()
		if len(names) == 0 {
			continue // unreachable, or not a Sentinel: the caller's error says enough
		}
		if !slices.Contains(names, rc.SentinelMaster) {
			return usagef("REDIS_SENTINEL_MASTER: the Sentinel at %s monitors no primary named %q; it monitors %s",
				addr, rc.SentinelMaster, strings.Join(names, ", "))
		}
		return nil
	}
	return nil
}

// sentinelMasters lists the names a Sentinel monitors (none if it will not say).
func sentinelMasters(ctx context.Context, c *redis.Client) []string {
	v, err := c.Do(ctx, "SENTINEL", "MASTERS").Slice()
	if err != nil {
		return nil
	}
	var names []string
	for _, m := range v {
		switch m := m.(type) {
		case map[any]any:
			if n, ok := m["name"]; ok {
				names = append(names, fmt.Sprint(n))
			}
		case []any:
			for i := 0; i+1 < len(m); i += 2 {
				if fmt.Sprint(m[i]) == "name" {
					names = append(names, fmt.Sprint(m[i+1]))
				}
			}
		}
	}
	return names
}

// redisReady is a /readyz check and the workers' dependency probe: every
// primary holding data answers (store.Ping).
func redisReady(rdb redis.UniversalClient) func(context.Context) error {
	return func(ctx context.Context) error { return store.Ping(ctx, rdb) }
}
