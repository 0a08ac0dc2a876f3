package main

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/internal/config"
	"github.com/orgbridge/orgbridge/internal/testenv"
)

// TestOpenRedis: each shape connects and stores; a REDIS_URL that names a
// Sentinel, a cluster node or a replica is refused at start with what to set
// instead, rather than accepted because it answers PING.
func TestOpenRedis(t *testing.T) {
	single := testenv.StartRedis(t)
	replica := testenv.StartRedis(t)
	host, port, _ := net.SplitHostPort(single.Addr)
	if err := replica.Client.ReplicaOf(context.Background(), host, port).Err(); err != nil {
		t.Fatal(err)
	}
	sentinel := testenv.StartRedisSentinel(t)
	cluster := testenv.StartRedisCluster(t)
	tests := []struct {
		name    string
		rc      config.Redis
		wantErr []string // all in the error; none: it works
	}{
		{name: "one server", rc: config.Redis{URL: single.URL()}},
		{name: "Sentinel", rc: config.Redis{SentinelAddrs: sentinel.SentinelAddrs(), SentinelMaster: sentinel.Master}},
		{name: "Cluster", rc: config.Redis{ClusterAddrs: cluster.Addrs()[:2]}},
		{name: "REDIS_URL at a Sentinel", rc: config.Redis{URL: sentinel.SentinelURL()},
			wantErr: []string{"is a Redis Sentinel", "REDIS_SENTINEL_ADDRS=" + sentinel.SentinelAddrs()[0], "REDIS_SENTINEL_MASTER=" + sentinel.Master}},
		{name: "REDIS_URL at a cluster node", rc: config.Redis{URL: "redis://" + cluster.Addrs()[0]},
			wantErr: []string{"node of a Redis Cluster", "REDIS_CLUSTER_ADDRS=" + cluster.Addrs()[0]}},
		{name: "REDIS_URL at a replica", rc: config.Redis{URL: replica.URL()}, wantErr: []string{"read-only replica", "primary"}},
		{name: "Sentinel with a wrong master name", rc: config.Redis{SentinelAddrs: sentinel.SentinelAddrs(), SentinelMaster: "nope"},
			wantErr: []string{"REDIS_SENTINEL_MASTER", `no primary named "nope"`, "it monitors " + sentinel.Master}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			rdb, err := openRedis(ctx, tt.rc)
			if len(tt.wantErr) > 0 {
				if err == nil {
					rdb.Close()
					t.Fatal("accepted")
				}
				var ue *usageError
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if !errors.As(err, &ue) {
					t.Errorf("error %v is not a usage error (exit code 2)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			key := "ob:{T" + strconv.Itoa(i) + "}:probe"
			if err := rdb.Set(ctx, key, "v", time.Minute).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			if v, err := rdb.Get(ctx, key).Result(); err != nil || v != "v" {
				t.Fatalf("GET = %q, %v", v, err)
			}
		})
	}
}
