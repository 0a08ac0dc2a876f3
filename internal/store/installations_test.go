package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestInstallations(t *testing.T) {
	eachRedis(t, func(t *testing.T, r backend) {
		oldSpec := GenerateKeySpec("old")
		keys, _ := ParseKeyring(oldSpec)
		s := NewInstallations(r.Client, keys)
		ctx := testCtx(t)
		newSpec := GenerateKeySpec("new")

		ws := &Installation{AppID: "A1", EnterpriseID: "E1", TeamID: "T1", BotToken: "xoxe.xoxb-workspace",
			BotRefreshToken: "xoxe-1-refresh", Scopes: []string{"chat:write"}, TokenExpiresAt: time.Now().Add(time.Hour)}
		grid := &Installation{AppID: "A1", EnterpriseID: "E1", IsEnterpriseInstall: true, BotToken: "xoxb-grid"}
		for _, in := range []*Installation{ws, grid} {
			if err := s.Save(ctx, in); err != nil {
				t.Fatalf("Save: %v", err)
			}
		}
		raw := r.Client.Get(ctx, InstallKey("A1", "E1", "T1")).Val()
		if strings.Contains(raw, "xoxb") || strings.Contains(raw, "xoxe-1") {
			t.Fatalf("token in plain text in Redis: %s", raw)
		}

		tests := []struct {
			name      string
			ent, team string
			wantToken string
			wantErr   error
		}{
			{name: "workspace install", ent: "E1", team: "T1", wantToken: "xoxe.xoxb-workspace"},
			{name: "other workspace of the grid uses the org-wide install", ent: "E1", team: "T2", wantToken: "xoxb-grid"},
			{name: "org-wide install itself", ent: "E1", wantToken: "xoxb-grid"},
			{name: "not installed", team: "T9", wantErr: ErrNoInstallation},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in, err := s.Find(ctx, "A1", tt.ent, tt.team)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Find err = %v, want %v", err, tt.wantErr)
					}
					return
				}
				if err != nil || in.BotToken.Reveal() != tt.wantToken {
					t.Fatalf("Find = %v, %v; want token %s", in, err, tt.wantToken)
				}
			})
		}

		t.Run("fenced save refuses a lost lock", func(t *testing.T) {
			locker := NewLocker(r.Client)
			lock, err := locker.Obtain(ctx, InstallLockKey("A1", "E1", "T1"), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			ws.BotToken = "xoxe.xoxb-refreshed"
			if err := s.SaveFenced(ctx, ws, lock); err != nil {
				t.Fatalf("SaveFenced with the lock: %v", err)
			}
			_ = lock.Release(ctx)
			ws.BotToken = "xoxe.xoxb-stale"
			if err := s.SaveFenced(ctx, ws, lock); !errors.Is(err, ErrLockNotHeld) {
				t.Fatalf("SaveFenced without the lock = %v, want ErrLockNotHeld", err)
			}
			in, _ := s.Get(ctx, "A1", "E1", "T1")
			if in.BotToken.Reveal() != "xoxe.xoxb-refreshed" {
				t.Fatalf("token = %s after a stale save", in.BotToken.Reveal())
			}
		})

		t.Run("key rotation re-encrypts under the new key", func(t *testing.T) {
			rotated, _ := ParseKeyring(newSpec + "," + oldSpec)
			s2 := NewInstallations(r.Client, rotated)
			st, err := Reseal(ctx, r.Client, rotated, s2.SealedSet(), ResealOptions{})
			if err != nil || st.Resealed != 2 || len(st.Failed) != 0 {
				t.Fatalf("Reseal = %+v, %v; want 2 re-encrypted", st, err)
			}
			if raw := r.Client.Get(ctx, InstallKey("A1", "E1", "T1")).Val(); strings.Contains(raw, `"kid":"old"`) {
				t.Fatalf("still sealed under the old key: %s", raw)
			}
			newOnly, _ := ParseKeyring(newSpec)
			in, err := NewInstallations(r.Client, newOnly).Get(ctx, "A1", "E1", "T1")
			if err != nil || in.BotToken.Reveal() != "xoxe.xoxb-refreshed" {
				t.Fatalf("after dropping the old key: %v, %v", in, err)
			}
		})

		t.Run("list and delete", func(t *testing.T) {
			all, _ := ParseKeyring(newSpec + "," + oldSpec)
			s := NewInstallations(r.Client, all)
			list, err := s.List(ctx)
			if err != nil || len(list) != 2 {
				t.Fatalf("List = %d, %v", len(list), err)
			}
			if ok, err := s.Delete(ctx, "A1", "E1", "T1"); !ok || err != nil {
				t.Fatalf("Delete = %v, %v", ok, err)
			}
			if ok, _ := s.Delete(ctx, "A1", "E1", "T1"); ok {
				t.Fatal("second Delete reported a removal")
			}
			if apps, _ := s.AppsAt(ctx, "T1"); len(apps) != 0 {
				t.Fatalf("apps at T1 after delete: %v", apps)
			}
			if list, _ := s.List(ctx); len(list) != 1 {
				t.Fatalf("List after delete = %d", len(list))
			}
		})
	})
}

// TestInstallationIndexedBeforeRecord: a save that fails after the record
// write (here: the tenant's app set has the wrong type) still leaves the
// install in the global index and the expiry index, so listing, refresh and
// key rotation see it; no record is ever invisible to them.
func TestInstallationIndexedBeforeRecord(t *testing.T) {
	eachRedis(t, func(t *testing.T, r backend) {
		keys, _ := ParseKeyring(GenerateKeySpec("k"))
		s := NewInstallations(r.Client, keys)
		ctx := testCtx(t)
		if err := r.Client.Set(ctx, Key("T9", "installs"), "not a set", 0).Err(); err != nil {
			t.Fatal(err)
		}
		in := &Installation{AppID: "A1", TeamID: "T9", BotToken: "xoxe.xoxb-1", BotRefreshToken: "xoxe-1",
			TokenExpiresAt: time.Now().Add(10 * time.Minute)}
		if err := s.Save(ctx, in); err == nil {
			t.Fatal("Save succeeded although the script failed")
		}
		if r.Client.Exists(ctx, InstallKey("A1", "", "T9")).Val() == 1 {
			if !r.Client.SIsMember(ctx, globalInstallIndex, indexMember("A1", "", "T9")).Val() {
				t.Fatal("the install record exists but the global index does not name it")
			}
		}
		if !r.Client.SIsMember(ctx, globalInstallIndex, indexMember("A1", "", "T9")).Val() {
			t.Fatal("the global index was not written before the record")
		}
		if due, err := s.Due(ctx, time.Now().Add(time.Hour)); err != nil || len(due) != 1 {
			t.Fatalf("Due = %+v, %v; want the install", due, err)
		}
	})
}

// TestInstallationsDue: only installs with a rotating token expiring before
// the bound are returned, and deleting an install removes it from the index.
func TestInstallationsDue(t *testing.T) {
	eachRedis(t, func(t *testing.T, r backend) {
		keys, _ := ParseKeyring(GenerateKeySpec("k"))
		s := NewInstallations(r.Client, keys)
		ctx := testCtx(t)
		now := time.Now()
		for _, in := range []*Installation{
			{AppID: "A1", TeamID: "TDUE", BotToken: "xoxe.xoxb-1", BotRefreshToken: "xoxe-1", TokenExpiresAt: now.Add(10 * time.Minute)},
			{AppID: "A1", TeamID: "TLATER", BotToken: "xoxe.xoxb-2", BotRefreshToken: "xoxe-2", TokenExpiresAt: now.Add(10 * time.Hour)},
			{AppID: "A1", TeamID: "TSTATIC", BotToken: "xoxb-3"},
		} {
			if err := s.Save(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		due, err := s.Due(ctx, now.Add(time.Hour))
		if err != nil || len(due) != 1 || due[0] != (InstallRef{AppID: "A1", TeamID: "TDUE"}) {
			t.Fatalf("Due = %+v, %v; want only TDUE", due, err)
		}
		if _, err := s.Delete(ctx, "A1", "", "TDUE"); err != nil {
			t.Fatal(err)
		}
		if due, err := s.Due(ctx, now.Add(24*time.Hour)); err != nil || len(due) != 1 || due[0].TeamID != "TLATER" {
			t.Fatalf("Due after delete = %+v, %v; want only TLATER", due, err)
		}
	})
}
