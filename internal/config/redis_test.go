package config

import (
	"slices"
	"strings"
	"testing"
)

func TestLoadRedisShapes(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		wantShape string
		wantTLS   bool
		check     func(Redis) bool
	}{
		{name: "nothing: dev starts one", env: map[string]string{}, wantShape: ""},
		{name: "one server", env: map[string]string{"REDIS_URL": "redis://orgbridge:pw@127.0.0.1:6379/0"}, wantShape: RedisSingle},
		{name: "one server over TLS", env: map[string]string{"REDIS_URL": "rediss://r.example:6380/0"}, wantShape: RedisSingle, wantTLS: true},
		{name: "one server, password apart", env: map[string]string{"REDIS_URL": "redis://r:6379/0", "REDIS_PASSWORD": "pw"}, wantShape: RedisSingle},
		{name: "Sentinel", env: map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379, s2:26379,s3:26379", "REDIS_SENTINEL_MASTER": "orgbridge",
			"REDIS_USERNAME": "orgbridge", "REDIS_PASSWORD": "pw", "REDIS_SENTINEL_PASSWORD": "spw", "REDIS_TLS": "true", "REDIS_TLS_CA": "/ca.pem"},
			wantShape: RedisSentinel, wantTLS: true,
			check: func(r Redis) bool {
				return slices.Equal(r.SentinelAddrs, []string{"s1:26379", "s2:26379", "s3:26379"}) && r.SentinelMaster == "orgbridge" &&
					r.Username == "orgbridge" && r.Password.Reveal() == "pw" && r.SentinelPassword.Reveal() == "spw" && r.TLSCAFile == "/ca.pem"
			}},
		{name: "Cluster", env: map[string]string{"REDIS_CLUSTER_ADDRS": "n1:6379,n2:6379", "REDIS_PASSWORD": "pw"}, wantShape: RedisCluster,
			check: func(r Redis) bool { return len(r.ClusterAddrs) == 2 && r.Password.Reveal() == "pw" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if c.Redis.Shape() != tt.wantShape || c.Redis.UsesTLS() != tt.wantTLS || (tt.check != nil && !tt.check(c.Redis)) {
				t.Fatalf("Redis = %+v (shape %q, TLS %v), want shape %q, TLS %v", c.Redis, c.Redis.Shape(), c.Redis.UsesTLS(), tt.wantShape, tt.wantTLS)
			}
			if s := c.Redis.String(); strings.Contains(s, "pw") {
				t.Fatalf("String() shows a password: %s", s)
			}
		})
	}
}

func TestLoadRedisErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
		want    string
	}{
		{name: "two shapes", env: map[string]string{"REDIS_URL": "redis://r:6379", "REDIS_CLUSTER_ADDRS": "n1:6379"}, wantVar: "REDIS_URL", want: "choose one"},
		{name: "Sentinel without a master name", env: map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379"}, wantVar: "REDIS_SENTINEL_MASTER", want: "sentinel monitor"},
		{name: "master name without Sentinels", env: map[string]string{"REDIS_SENTINEL_MASTER": "m"}, wantVar: "REDIS_SENTINEL_ADDRS", want: "is required"},
		{name: "Sentinel address without a port", env: map[string]string{"REDIS_SENTINEL_ADDRS": "s1", "REDIS_SENTINEL_MASTER": "m"}, wantVar: "REDIS_SENTINEL_ADDRS", want: "not host:port"},
		{name: "cluster address without a port", env: map[string]string{"REDIS_CLUSTER_ADDRS": "n1:6379,n2"}, wantVar: "REDIS_CLUSTER_ADDRS", want: "not host:port"},
		{name: "URL of another scheme", env: map[string]string{"REDIS_URL": "http://x"}, wantVar: "REDIS_URL", want: "scheme must be one of redis"},
		{name: "password twice", env: map[string]string{"REDIS_URL": "redis://:a@r:6379", "REDIS_PASSWORD": "b"}, wantVar: "REDIS_PASSWORD", want: "one place"},
		{name: "user without password", env: map[string]string{"REDIS_CLUSTER_ADDRS": "n1:6379", "REDIS_USERNAME": "u"}, wantVar: "REDIS_PASSWORD", want: "is required"},
		{name: "TLS flag not a bool", env: map[string]string{"REDIS_URL": "redis://r:6379", "REDIS_TLS": "yes please"}, wantVar: "REDIS_TLS", want: "neither true nor false"},
		{name: "CA without TLS", env: map[string]string{"REDIS_URL": "redis://r:6379", "REDIS_TLS_CA": "/ca.pem"}, wantVar: "REDIS_TLS_CA", want: "TLS is off"},
		{name: "Sentinel password without Sentinel", env: map[string]string{"REDIS_URL": "redis://r:6379", "REDIS_SENTINEL_PASSWORD": "x"}, wantVar: "REDIS_SENTINEL_PASSWORD", want: "without"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(func(k string) string { return tt.env[k] })
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantVar+":") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, tt.wantVar, tt.want)
			}
		})
	}
}

func TestRequireProductionAcceptsEveryRedisShape(t *testing.T) {
	base := map[string]string{"SLACK_SIGNING_SECRET": "s", "ORGBRIDGE_ENCRYPTION_KEYS": "k", "SLACK_CLIENT_ID": "c", "SLACK_CLIENT_SECRET": "c",
		"ORG_CLIENT_ID": "o", "ORG_CLIENT_SECRET": "o"}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{name: "none", env: nil, wantErr: "REDIS_URL: is required outside dev mode"},
		{name: "one server", env: map[string]string{"REDIS_URL": "redis://r:6379"}},
		{name: "Sentinel", env: map[string]string{"REDIS_SENTINEL_ADDRS": "s:26379", "REDIS_SENTINEL_MASTER": "m"}},
		{name: "Cluster", env: map[string]string{"REDIS_CLUSTER_ADDRS": "n:6379"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(func(k string) string {
				if v, ok := tt.env[k]; ok {
					return v
				}
				return base[k]
			})
			if err != nil {
				t.Fatal(err)
			}
			err = c.RequireProduction(true)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("RequireProduction = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
