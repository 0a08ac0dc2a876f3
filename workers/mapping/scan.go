package mapping

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/orgbridge/orgbridge/internal/store"
)

// scanBatch is how many mappings [Store.Scan] reads per round trip.
const scanBatch = 500

// Scan calls fn with each mapping matching f, in the order of [Store.List]
// (workspace, then Slack user), reading them scanBatch at a time, so a
// listing of any size holds one batch in memory; fn's error stops the scan
// and is returned. With f.OrgID set only the workspaces the org ever had
// mappings in are read, not every tenant's. The mappings fn gets carry no
// refresh token (they are for listings and exports).
func (s *Store) Scan(ctx context.Context, f Filter, fn func(*Mapping) error) error {
	var ws []string
	switch {
	case f.Workspace != "":
		ws = []string{f.Workspace}
	default:
		var err error
		if f.OrgID == "" {
			ws, err = s.rdb.SMembers(ctx, kWorkspaces).Result()
			slices.Sort(ws)
		} else {
			ws, err = s.OrgWorkspaces(ctx, f.OrgID)
		}
		if err != nil {
			return fmt.Errorf("mapping: listing workspaces: %w", err)
		}
	}
	for _, w := range ws {
		users := []string{f.SlackUserID}
		if f.SlackUserID == "" {
			var err error
			if users, err = store.SetMembers(ctx, s.rdb, kMaps(w)); err != nil {
				return fmt.Errorf("mapping: listing the mappings of %s: %w", w, err)
			}
			slices.Sort(users)
		}
		for len(users) > 0 {
			batch := users[:min(scanBatch, len(users))]
			users = users[len(batch):]
			keys := make([]string, len(batch))
			for i, u := range batch {
				keys[i] = kMap(w, u)
			}
			vals, err := s.rdb.MGet(ctx, keys...).Result()
			if err != nil {
				return fmt.Errorf("mapping: reading the mappings of %s: %w", w, err)
			}
			for _, v := range vals {
				str, ok := v.(string)
				if !ok {
					continue // deleted since, or only in the index
				}
				var rec record
				if err := json.Unmarshal([]byte(str), &rec); err != nil {
					return fmt.Errorf("mapping: decoding: %w", err)
				}
				m := rec.Mapping
				if f.match(&m) {
					if err := fn(&m); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// OrgWorkspaces returns the workspaces org has had mappings in (sorted),
// those connected now and those uninstalled since.
func (s *Store) OrgWorkspaces(ctx context.Context, org string) ([]string, error) {
	// One read per form of the id: the two forms are two hash tags, so two
	// Redis Cluster slots, which one SUNION cannot span.
	var ws []string
	for _, o := range orgIDForms(org) {
		members, err := s.rdb.SMembers(ctx, kOrgWorkspaces(o)).Result()
		if err != nil {
			return nil, fmt.Errorf("mapping: listing the workspaces of %s: %w", org, err)
		}
		ws = append(ws, members...)
	}
	slices.Sort(ws)
	return slices.Compact(ws), nil
}

// orgIDForms returns org's 15- and 18-character forms (an org id has both;
// the 18-character one appends a checksum of the letters' case), so a
// listing finds mappings stored under either.
func orgIDForms(org string) []string {
	if !validOrgID(org, "") {
		return []string{org}
	}
	short := org[:15]
	var sum [3]byte
	for i := range sum {
		n := 0
		for j := range 5 {
			if c := short[i*5+j]; c >= 'A' && c <= 'Z' {
				n |= 1 << j
			}
		}
		sum[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[n]
	}
	return []string{short, short + string(sum[:])}
}

// sameOrgID reports whether a and b are the same org id, in either form.
func sameOrgID(a, b string) bool {
	if len(a) >= 15 && len(b) >= 15 && validOrgID(a, "") && validOrgID(b, "") {
		return a[:15] == b[:15]
	}
	return a == b
}

// Page returns the mappings matching f from offset on, at most limit, and
// how many match in all: one page of a listing too long to show at once.
func (s *Store) Page(ctx context.Context, f Filter, offset, limit int) ([]*Mapping, int, error) {
	out := []*Mapping{}
	n := 0
	err := s.Scan(ctx, f, func(m *Mapping) error {
		if n >= offset && len(out) < limit {
			out = append(out, m)
		}
		n++
		return nil
	})
	return out, n, err
}

// Count returns how many mappings match f.
func (s *Store) Count(ctx context.Context, f Filter) (int, error) {
	_, n, err := s.Page(ctx, f, 0, 0)
	return n, err
}

// DeleteMatching deletes every mapping matching f, as [Store.DeleteByID]
// does one (the associations stay: a user connects again with the same org
// user), and returns how many it deleted. A mapping replaced since it was
// read is left alone.
func (s *Store) DeleteMatching(ctx context.Context, f Filter) (int, error) {
	var ids []string
	if err := s.Scan(ctx, f, func(m *Mapping) error { ids = append(ids, m.ID); return nil }); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		_, err := s.DeleteByID(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}
