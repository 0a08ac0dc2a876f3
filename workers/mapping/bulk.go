package mapping

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/orgbridge/orgbridge/internal/store"
)

// RevokeOrgIn fully revokes, in workspace w, every mapping and association
// with org (with every org when org is empty): the workspace was re-bound to
// another org, or an admin cleans up. Writes are fenced by lock (the
// workspace's binding lock) when it is not nil. It returns how many Slack
// users lost a mapping or an association.
func (s *Store) RevokeOrgIn(ctx context.Context, w, org string, lock *store.Lock) (int, error) {
	users, err := s.rdb.SUnion(ctx, kMaps(w), kAssocUsers(w)).Result()
	if err != nil {
		return 0, fmt.Errorf("mapping: listing the users of %s: %w", w, err)
	}
	slices.Sort(users)
	n := 0
	for _, u := range users {
		ok, err := s.revoke(ctx, w, u, org, lock)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// RevokeOrgUserIn fully revokes org user ou of org in workspace w (the org
// shows the user inactive): the Slack user mapped to or associated with it
// loses mapping and association, and may then connect as another org user.
// It returns that Slack user, or "" when ou had neither in w. Writes are
// fenced by lock (the workspace's binding lock) when it is not nil.
func (s *Store) RevokeOrgUserIn(ctx context.Context, w, org, ou string, lock *store.Lock) (string, error) {
	u, err := s.rdb.Get(ctx, kAssocByOrg(w, org, ou)).Result()
	if errors.Is(err, redis.Nil) {
		u, err = s.rdb.Get(ctx, kMapByOrg(w, org, ou)).Result()
	}
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("mapping: finding org user %s in %s: %w", ou, w, err)
	}
	ok, err := s.revoke(ctx, w, u, org, lock)
	if err != nil || !ok {
		return "", err
	}
	return u, nil
}

// RevokeOrg fully revokes every mapping and association with org in every
// workspace the org has had mappings in, and returns how many Slack users
// each workspace freed (workspaces with none left out).
func (s *Store) RevokeOrg(ctx context.Context, org string) (map[string]int, error) {
	ws, err := s.rdb.SMembers(ctx, kOrgWorkspaces(org)).Result()
	if err != nil {
		return nil, fmt.Errorf("mapping: listing the workspaces of org %s: %w", org, err)
	}
	slices.Sort(ws)
	out := map[string]int{}
	for _, w := range ws {
		n, err := s.RevokeOrgIn(ctx, w, org, nil)
		if err != nil {
			return out, err
		}
		if n > 0 {
			out[w] = n
		}
	}
	return out, nil
}
