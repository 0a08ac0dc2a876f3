package store

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// backend is a Redis a contract test runs against.
type backend struct {
	Client redis.UniversalClient
	flush  func(t testing.TB)
}

// eachRedis runs f against a single redis-server and against a six-node Redis
// Cluster: every key and script of the store must work on both, which a
// script or transaction touching keys of two slots (CROSSSLOT) would not.
func eachRedis(t *testing.T, f func(t *testing.T, r backend)) {
	t.Helper()
	t.Run("single", func(t *testing.T) {
		r := testenv.StartRedis(t)
		f(t, backend{Client: r.Client, flush: func(t testing.TB) {
			if err := r.Client.FlushDB(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		}})
	})
	t.Run("cluster", func(t *testing.T) {
		c := testenv.SharedRedisCluster(t)
		f(t, backend{Client: c.Client, flush: c.Flush})
	})
}
