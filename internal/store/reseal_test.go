package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// TestReseal: key rotation moves every readable value to the primary key,
// retries a record that changed under it (keeping the change), and names
// every record it could not move; the check afterwards agrees.
func TestReseal(t *testing.T) {
	eachRedis(t, func(t *testing.T, r backend) {
		k1, k2 := GenerateKeySpec("k1"), GenerateKeySpec("k2")
		oldKeys, _ := ParseKeyring(k1)
		rotated, _ := ParseKeyring(k2 + "," + k1)
		newOnly, _ := ParseKeyring(k2)
		ctx := testCtx(t)
		teams := []string{"T1", "T2", "T3"}
		noWait := func() backoff.BackOff { return &backoff.ZeroBackOff{} }

		tests := []struct {
			name string
			// setup runs after the installs were saved under k1.
			setup func(t *testing.T)
			// beforeWrite runs between a record's read and its write (n counts calls).
			beforeWrite func(t *testing.T, ref SealedRef, n int)
			attempts    int
			// wantResealed, wantConflicts and wantGone count; wantFailed names the failed records.
			wantResealed, wantConflicts, wantGone int
			wantFailed                            []string
			// wantTokens are T1's bot token after the rotation ("" : not checked).
			wantT1 string
		}{
			{name: "every install moves to the new key", wantResealed: 3, wantT1: "xoxb-T1"},
			{name: "a record changed between read and write is read again, and the change kept",
				beforeWrite: func(t *testing.T, ref SealedRef, n int) {
					if n == 1 && ref.Key == InstallKey("A1", "", "T1") {
						// A worker still on the old key refreshes the token meanwhile.
						if err := NewInstallations(r.Client, oldKeys).Save(ctx, &Installation{AppID: "A1", TeamID: "T1", BotToken: "xoxb-T1-refreshed"}); err != nil {
							t.Error(err)
						}
					}
				},
				wantResealed: 3, wantConflicts: 1, wantT1: "xoxb-T1-refreshed"},
			{name: "a record that never stops changing is named", attempts: 3,
				beforeWrite: func(t *testing.T, ref SealedRef, _ int) {
					if ref.Key == InstallKey("A1", "", "T2") {
						if err := NewInstallations(r.Client, oldKeys).Save(ctx, &Installation{AppID: "A1", TeamID: "T2", BotToken: Secret("xoxb-" + time.Now().String())}); err != nil {
							t.Error(err)
						}
					}
				},
				wantResealed: 2, wantConflicts: 3, wantFailed: []string{"installation A1||T2"}},
			{name: "a corrupt record is named", setup: func(t *testing.T) {
				r.Client.Set(ctx, InstallKey("A1", "", "T3"), "{not json", 0)
			}, wantResealed: 2, wantFailed: []string{"installation A1||T3"}},
			{name: "a record of the wrong type is named", setup: func(t *testing.T) {
				r.Client.Del(ctx, InstallKey("A1", "", "T3"))
				r.Client.SAdd(ctx, InstallKey("A1", "", "T3"), "x")
			}, wantResealed: 2, wantFailed: []string{"installation A1||T3"}},
			{name: "a value under a key nobody has any more is named", setup: func(t *testing.T) {
				lost, _ := ParseKeyring(GenerateKeySpec("k0"))
				if err := NewInstallations(r.Client, lost).Save(ctx, &Installation{AppID: "A1", TeamID: "T2", BotToken: "xoxb-lost"}); err != nil {
					t.Fatal(err)
				}
			}, wantResealed: 2, wantFailed: []string{"installation A1||T2"}},
			{name: "an index entry without a record is gone, not failed", setup: func(t *testing.T) {
				r.Client.Del(ctx, InstallKey("A1", "", "T3"))
			}, wantResealed: 2, wantGone: 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r.flush(t)
				for _, team := range teams {
					in := &Installation{AppID: "A1", TeamID: team, BotToken: Secret("xoxb-" + team), BotRefreshToken: "xoxe-" + Secret(team),
						TokenExpiresAt: time.Now().Add(time.Hour)}
					if err := NewInstallations(r.Client, oldKeys).Save(ctx, in); err != nil {
						t.Fatal(err)
					}
				}
				r.Client.Expire(ctx, InstallKey("A1", "", "T1"), time.Hour)
				if tt.setup != nil {
					tt.setup(t)
				}
				calls := 0
				opts := ResealOptions{Attempts: tt.attempts, Retry: noWait}
				if tt.beforeWrite != nil {
					opts.beforeWrite = func(ref SealedRef) { calls++; tt.beforeWrite(t, ref, calls) }
				}
				set := NewInstallations(r.Client, rotated).SealedSet()
				st, err := Reseal(ctx, r.Client, rotated, set, opts)
				if err != nil {
					t.Fatal(err)
				}
				var failed []string
				for _, p := range st.Failed {
					failed = append(failed, p.Name)
				}
				if st.Resealed != tt.wantResealed || st.Conflicts != tt.wantConflicts || st.Gone != tt.wantGone || !slices.Equal(failed, tt.wantFailed) {
					t.Fatalf("Reseal = %d re-encrypted, %d conflicts, %d gone, failed %v (%+v); want %d, %d, %d, %v",
						st.Resealed, st.Conflicts, st.Gone, failed, st.Failed, tt.wantResealed, tt.wantConflicts, tt.wantGone, tt.wantFailed)
				}

				rep, err := CheckSealed(ctx, r.Client, rotated, set)
				if err != nil {
					t.Fatal(err)
				}
				var left []string
				for _, p := range rep.Problems {
					if !slices.Contains(left, p.Name) {
						left = append(left, p.Name)
					}
				}
				if !slices.Equal(left, tt.wantFailed) {
					t.Fatalf("CheckSealed names %v (%v); want %v", left, rep.Problems, tt.wantFailed)
				}
				if tt.wantT1 != "" {
					in, err := NewInstallations(r.Client, newOnly).Get(ctx, "A1", "", "T1")
					if err != nil || in.BotToken.Reveal() != tt.wantT1 {
						t.Fatalf("T1 with the new key alone: %v, %v; want %s", in, err, tt.wantT1)
					}
					if ttl := r.Client.TTL(ctx, InstallKey("A1", "", "T1")).Val(); tt.beforeWrite == nil && ttl <= 0 {
						t.Fatalf("T1's TTL after re-encryption = %s, want it kept", ttl)
					}
				}
			})
		}
	})
}

// TestCheckSealedFindsOldKeys: a value a writer put back under the old key
// after the rotation is reported as ErrOldKey, so the caller knows another
// round fixes it.
func TestCheckSealedFindsOldKeys(t *testing.T) {
	eachRedis(t, func(t *testing.T, r backend) {
		k1, k2 := GenerateKeySpec("k1"), GenerateKeySpec("k2")
		oldKeys, _ := ParseKeyring(k1)
		rotated, _ := ParseKeyring(k2 + "," + k1)
		ctx := testCtx(t)
		if err := NewInstallations(r.Client, oldKeys).Save(ctx, &Installation{AppID: "A1", TeamID: "T1", BotToken: "xoxb-1"}); err != nil {
			t.Fatal(err)
		}
		rep, err := CheckSealed(context.Background(), r.Client, rotated, NewInstallations(r.Client, rotated).SealedSet())
		if err != nil || rep.Records != 1 || rep.Values != 1 || len(rep.Problems) != 1 {
			t.Fatalf("CheckSealed = %+v, %v; want one problem", rep, err)
		}
		if p := rep.Problems[0]; !errors.Is(p.Err, ErrOldKey) || p.KeyID != "k1" || p.Field != "bot" || p.Name != "installation A1||T1" {
			t.Fatalf("problem = %+v (%s)", p, p)
		}
	})
}
