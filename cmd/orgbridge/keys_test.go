package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orgbridge/orgbridge/internal/store"
	"github.com/orgbridge/orgbridge/internal/testenv"
	"github.com/orgbridge/orgbridge/workers/binding"
	"github.com/orgbridge/orgbridge/workers/mapping"
	"github.com/orgbridge/orgbridge/workers/provisioning"
)

// keysFixture fills Redis with every kind of sealed record, under keys.
type keysFixture struct {
	rdb  *testenv.Redis
	keys *store.Keyring
	n    int
}

func (f keysFixture) workspace(i int) string { return fmt.Sprintf("T%03d", i) }
func (f keysFixture) org(i int) string       { return fmt.Sprintf("00D%012d", i) }

func (f keysFixture) fill(t *testing.T, ctx context.Context) {
	t.Helper()
	installs, bindings, maps := store.NewInstallations(f.rdb.Client, f.keys), binding.NewStore(f.rdb.Client, f.keys), mapping.NewStore(f.rdb.Client, f.keys)
	for i := range f.n {
		w, org := f.workspace(i), f.org(i)
		if err := installs.Save(ctx, &store.Installation{AppID: "A1", TeamID: w, BotToken: store.Secret("xoxb-" + w),
			BotRefreshToken: store.Secret("xoxe-" + w), WebhookURL: store.Secret("https://hooks.slack.test/" + w)}); err != nil {
			t.Fatal(err)
		}
		f.bind(t, ctx, bindings, w, org)
		for _, u := range []string{"U1", "U2", "U3"} {
			if _, err := maps.Connect(ctx, &mapping.Mapping{Workspace: w, SlackUserID: u, OrgID: org, OrgUserID: "005" + u,
				Source: "oauth", RefreshToken: store.Secret("refresh-" + w + u)}); err != nil {
				t.Fatal(err)
			}
		}
		// A provisioning integration as the worker stores it (its store
		// creates them only through the connect flow).
		in := provisioning.Integration{ID: "int-" + org, OrgID: org, Status: provisioning.StatusActive, Rev: 1,
			Source: provisioning.Source{TeamID: w}, DirectoryURL: "https://scim.test/" + org}
		for field, v := range map[string]*store.Sealed{"slack": &in.SlackToken, "slack_refresh": &in.SlackRefresh,
			"directory": &in.DirectoryToken, "directory_refresh": &in.DirectoryRefresh} {
			var err error
			if *v, err = f.keys.Seal(store.Secret(field+"-"+org), "provisioning:"+org+":"+field); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := json.Marshal(in)
		f.rdb.Client.Set(ctx, store.Key(org, "prov", "integration"), b, 0)
		f.rdb.Client.SAdd(ctx, store.Key(store.GlobalTenant, "prov", "orgs"), org)
	}
}

func (f keysFixture) bind(t *testing.T, ctx context.Context, bindings *binding.Store, w, org string) {
	lock, err := store.NewLocker(f.rdb.Client).ObtainWait(ctx, binding.LockKey(w), time.Minute)
	if err != nil {
		t.Error(err)
		return
	}
	defer func() { _ = lock.Release(ctx) }()
	if err := bindings.Bind(ctx, &binding.Binding{Scope: w, OrgID: org, Valid: true, RefreshToken: store.Secret("org-refresh-" + w)}, lock); err != nil {
		t.Error(err)
	}
}

// churn rewrites records the way running workers do (with the rotated
// keyring, new key first) until stop closes: a binding marked invalid keeps
// its sealed token as it was, a provisioning update keeps the tokens it
// read, a reconnect and a token refresh seal anew.
func (f keysFixture) churn(t *testing.T, ctx context.Context, stop <-chan struct{}) (writes int) {
	installs, bindings, maps := store.NewInstallations(f.rdb.Client, f.keys), binding.NewStore(f.rdb.Client, f.keys), mapping.NewStore(f.rdb.Client, f.keys)
	prov := provisioning.NewStore(f.rdb.Client, f.keys)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return writes
		default:
		}
		k := i % f.n
		w, org := f.workspace(k), f.org(k)
		switch i % 4 {
		case 0:
			if _, err := bindings.Invalidate(ctx, w, org, "org expired"); err != nil {
				t.Error(err)
			}
			f.bind(t, ctx, bindings, w, org)
		case 1:
			if _, err := prov.Update(ctx, org, time.Now, func(in *provisioning.Integration) error { in.ConsecutiveFailures++; return nil }); err != nil {
				t.Error(err)
			}
		case 2:
			if _, err := maps.Connect(ctx, &mapping.Mapping{Workspace: w, SlackUserID: "U1", OrgID: org, OrgUserID: "005U1",
				Source: "oauth", RefreshToken: store.Secret(fmt.Sprintf("refresh-%d", i))}); err != nil {
				t.Error(err)
			}
		case 3:
			in, err := installs.Get(ctx, "A1", "", w)
			if err != nil {
				t.Error(err)
				continue
			}
			in.BotToken = store.Secret(fmt.Sprintf("xoxb-refreshed-%d", i))
			if err := installs.Save(ctx, in); err != nil {
				t.Error(err)
			}
		}
		writes++
	}
}

func TestKeysRotate(t *testing.T) {
	k1, k2 := store.GenerateKeySpec("k1"), store.GenerateKeySpec("k2")
	oldKeys, _ := store.ParseKeyring(k1)
	rotated, _ := store.ParseKeyring(k2 + "," + k1)
	newOnly, _ := store.ParseKeyring(k2)

	tests := []struct {
		name string
		// churn runs writers alongside the command.
		churn bool
		// damage breaks records after they were written.
		damage   func(ctx context.Context, r *testenv.Redis)
		wantCode int
		// wantOut is in stdout (exit 0) or stderr (exit 1).
		wantOut []string
		// wantLeft are the records still not under k2 afterwards.
		wantLeft []string
	}{
		{name: "every record moves to the new key while workers keep writing", churn: true, wantCode: 0,
			wantOut: []string{"installations: 40 records", "bindings: 40 records", "mappings: 120 records", "provisioning integrations: 40 records",
				"all under key k2"}},
		{name: "an unreadable mapping fails the rotation, named", wantCode: 1,
			damage: func(ctx context.Context, r *testenv.Redis) {
				r.Client.Set(ctx, store.Key("T007", "map", "U2"), "{torn write", 0)
			},
			wantOut:  []string{"1 sealed values are not under key k2", "mapping T007/U2", "unreadable", "keep every old key"},
			wantLeft: []string{"mapping T007/U2"}},
		{name: "a token under a key nobody has fails the rotation, named", wantCode: 1,
			damage: func(ctx context.Context, r *testenv.Redis) {
				lost, _ := store.ParseKeyring(store.GenerateKeySpec("k0"))
				_ = store.NewInstallations(r.Client, lost).Save(ctx, &store.Installation{AppID: "A1", TeamID: "T003", BotToken: "xoxb-lost"})
			},
			wantOut:  []string{"installation A1||T003 (bot) under key k0", "not configured"},
			wantLeft: []string{"installation A1||T003"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r := testenv.StartRedis(t)
			keysFixture{rdb: r, keys: oldKeys, n: 40}.fill(t, ctx)
			if tt.damage != nil {
				tt.damage(ctx, r)
			}
			env := map[string]string{"REDIS_URL": r.URL(), "ORGBRIDGE_ENCRYPTION_KEYS": k2 + "," + k1}

			stop, churned := make(chan struct{}), make(chan int, 1)
			var wg sync.WaitGroup
			if tt.churn {
				wg.Add(1)
				go func() { defer wg.Done(); churned <- keysFixture{rdb: r, keys: rotated, n: 40}.churn(t, ctx, stop) }()
			}
			code, out, errOut := invokeWait(t, env, "keys", "rotate")
			close(stop)
			wg.Wait()
			if tt.churn {
				t.Logf("%d concurrent writes during the rotation; the command said:\n%s", <-churned, out)
			}
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			shown := out
			if code != 0 {
				shown = errOut
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(shown, want) {
					t.Errorf("output lacks %q:\nstdout:\n%s\nstderr:\n%s", want, out, errOut)
				}
			}

			// What an operator who now drops k1 would see.
			rep, err := store.CheckSealed(ctx, r.Client, newOnly, sealedSets(r.Client, newOnly)...)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, p := range rep.Problems {
				left = append(left, p.Name)
			}
			if strings.Join(left, ",") != strings.Join(tt.wantLeft, ",") {
				t.Fatalf("with k2 alone, unreadable: %v; want %v", rep.Problems, tt.wantLeft)
			}
			if rep.Records < 40*5 {
				t.Fatalf("checked %d records, want every one of %d", rep.Records, 40*5)
			}
		})
	}
}

// TestKeysRotateRoundsCatchLateOldKeyWrites: values written back under the
// old key after their record was re-sealed are found by the check and
// re-sealed in another round, so the command still ends with exit 0.
func TestKeysRotateRoundsCatchLateOldKeyWrites(t *testing.T) {
	k1, k2 := store.GenerateKeySpec("k1"), store.GenerateKeySpec("k2")
	oldKeys, _ := store.ParseKeyring(k1)
	rotated, _ := store.ParseKeyring(k2 + "," + k1)
	r := testenv.StartRedis(t)
	ctx := t.Context()
	keysFixture{rdb: r, keys: oldKeys, n: 3}.fill(t, ctx)
	sets := sealedSets(r.Client, rotated)
	// A writer still on the old key saves an install after the first pass
	// over installs (between that pass and the check).
	late := store.SealedSet{Kind: "late writer", List: func(ctx context.Context) ([]store.SealedRef, error) {
		if err := store.NewInstallations(r.Client, oldKeys).Save(ctx, &store.Installation{AppID: "A1", TeamID: "T001", BotToken: "xoxb-late"}); err != nil {
			return nil, err
		}
		return nil, nil
	}, Visit: func([]byte, func(string, *store.Sealed, string) error) ([]byte, error) {
		return nil, errors.New("never called")
	}}
	var out syncBuffer
	c := &cli{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	calls := 0
	lateOnce := late
	lateOnce.List = func(ctx context.Context) ([]store.SealedRef, error) {
		calls++
		if calls > 1 {
			return nil, nil
		}
		return late.List(ctx)
	}
	if err := rotateKeys(ctx, c, r.Client, rotated, append(sets, lateOnce), store.ResealOptions{}); err != nil {
		t.Fatalf("rotateKeys: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "round 2: 1 values came back under an old key") {
		t.Fatalf("no second round:\n%s", out.String())
	}
	newOnly, _ := store.ParseKeyring(k2)
	in, err := store.NewInstallations(r.Client, newOnly).Get(ctx, "A1", "", "T001")
	if err != nil || in.BotToken.Reveal() != "xoxb-late" {
		t.Fatalf("late write with k2 alone: %v, %v", in, err)
	}
}
