package provisioning

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/orgbridge/orgbridge/internal/orgapi"
)

// SCIMClient is what the sync needs of the directory (an [*orgapi.SCIM]).
type SCIMClient interface {
	AllUsers(ctx context.Context, filter string, pageSize int) iter.Seq2[orgapi.User, error]
	FindUsers(ctx context.Context, filter string) ([]orgapi.User, error)
	GetUser(ctx context.Context, id string) (*orgapi.User, error)
	CreateUser(ctx context.Context, u *orgapi.User) (*orgapi.User, error)
	PatchUserIfMatch(ctx context.Context, id, version string, ops ...orgapi.PatchOperation) (*orgapi.User, error)
	GetGroup(ctx context.Context, id string) (*orgapi.Group, error)
	PatchGroupMembers(ctx context.Context, id string, add, remove []string) error
	AllGroups(ctx context.Context, filter string, pageSize int, withMembers bool) iter.Seq2[orgapi.Group, error]
}

// maxDirectoryRetries bounds how often one write waits out a 429 or a 5xx.
const maxDirectoryRetries = 12

// directory wraps the SCIM client with what a sync run needs: every caller
// pauses together when the directory answers 429 (no storm of retries),
// transient failures are retried with backoff, and writes are counted.
type directory struct {
	c SCIMClient
	// pace spaces writes (nil: unpaced).
	pace *rate.Limiter

	mu          sync.Mutex
	pausedUntil time.Time

	writes, failed, throttled atomic.Int64
}

func newDirectory(c SCIMClient, writesPerSecond float64) *directory {
	d := &directory{c: c}
	if writesPerSecond > 0 {
		d.pace = rate.NewLimiter(rate.Limit(writesPerSecond), max(1, int(writesPerSecond/20)))
	}
	return d
}

// wait blocks while the directory asked everyone to slow down.
func (d *directory) wait(ctx context.Context) error {
	d.mu.Lock()
	until := d.pausedUntil
	d.mu.Unlock()
	if dl := time.Until(until); dl > 0 {
		t := time.NewTimer(dl)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (d *directory) pause(after time.Duration) {
	d.mu.Lock()
	if u := time.Now().Add(after); u.After(d.pausedUntil) {
		d.pausedUntil = u
	}
	d.mu.Unlock()
}

// retry runs fn until it succeeds, fails for good, or retries run out.
func (d *directory) retry(ctx context.Context, write bool, fn func() error) error {
	backoff := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if err := d.wait(ctx); err != nil {
			return err
		}
		if write && d.pace != nil {
			if err := d.pace.Wait(ctx); err != nil {
				return err
			}
		}
		err := fn()
		var rl *orgapi.RateLimitedError
		var ae *orgapi.APIError
		switch {
		case err == nil:
			if write {
				d.writes.Add(1)
			}
			return nil
		case errors.As(err, &rl) && attempt < maxDirectoryRetries:
			d.throttled.Add(1)
			d.pause(max(rl.RetryAfter(), 10*time.Millisecond))
			continue
		case errors.As(err, &ae) && ae.Status >= 500 && attempt < 3:
		case isTransport(err) && attempt < 3:
		default:
			if write {
				d.failed.Add(1)
			}
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff *= 2
	}
}

// isTransport reports an error that got no HTTP answer.
func isTransport(err error) bool {
	var ae *orgapi.APIError
	return err != nil && !errors.As(err, &ae) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

func (d *directory) create(ctx context.Context, u *orgapi.User) (*orgapi.User, error) {
	var out *orgapi.User
	err := d.retry(ctx, true, func() error {
		var err error
		out, err = d.c.CreateUser(ctx, u)
		return err
	})
	return out, err
}

// patch applies ops with If-Match: version; when the user changed since
// (412) it re-reads the user and tries once more with the new version.
func (d *directory) patch(ctx context.Context, id, version string, ops []orgapi.PatchOperation) (*orgapi.User, error) {
	var out *orgapi.User
	err := d.retry(ctx, true, func() error {
		var err error
		out, err = d.c.PatchUserIfMatch(ctx, id, version, ops...)
		return err
	})
	if errors.Is(err, orgapi.ErrPreconditionFailed) {
		d.failed.Add(-1) // not a failure yet: re-read and try once more
		cur, gerr := d.get(ctx, id)
		if gerr != nil {
			d.failed.Add(1)
			return nil, gerr
		}
		err = d.retry(ctx, true, func() error {
			var err error
			out, err = d.c.PatchUserIfMatch(ctx, id, versionOf(cur), ops...)
			return err
		})
	}
	return out, err
}

func (d *directory) get(ctx context.Context, id string) (*orgapi.User, error) {
	var out *orgapi.User
	err := d.retry(ctx, false, func() error {
		var err error
		out, err = d.c.GetUser(ctx, id)
		return err
	})
	return out, err
}

func (d *directory) find(ctx context.Context, filter string) ([]orgapi.User, error) {
	var out []orgapi.User
	err := d.retry(ctx, false, func() error {
		var err error
		out, err = d.c.FindUsers(ctx, filter)
		return err
	})
	return out, err
}

func (d *directory) group(ctx context.Context, id string) (*orgapi.Group, error) {
	var out *orgapi.Group
	err := d.retry(ctx, false, func() error {
		var err error
		out, err = d.c.GetGroup(ctx, id)
		return err
	})
	return out, err
}

// maxMembersPerPatch bounds the member changes of one group PATCH
// (directories commonly refuse more than 100).
const maxMembersPerPatch = 100

// patchMembers adds and removes team members, at most maxMembersPerPatch
// changes per request.
func (d *directory) patchMembers(ctx context.Context, team string, add, remove []string) error {
	for len(add) > 0 || len(remove) > 0 {
		na := min(len(add), maxMembersPerPatch)
		nr := min(len(remove), maxMembersPerPatch-na)
		a, r := add[:na], remove[:nr]
		if err := d.retry(ctx, true, func() error { return d.c.PatchGroupMembers(ctx, team, a, r) }); err != nil {
			return err
		}
		add, remove = add[na:], remove[nr:]
	}
	return nil
}

func versionOf(u *orgapi.User) string {
	if u == nil || u.Meta == nil {
		return ""
	}
	return u.Meta.Version
}

// dirUser is the part of a directory user the matching needs.
type dirUser struct {
	ID, ExternalID, UserName, Email, Version string
	Active                                   bool
}

// dirIndex finds directory users by externalId and by userName/email
// (case-insensitive), read once per run when an unlinked Slack user needs it.
type dirIndex struct {
	byExternal map[string]*dirUser
	byName     map[string]*dirUser
	byID       map[string]*dirUser
}

func (d *directory) index(ctx context.Context) (*dirIndex, error) {
	ix := &dirIndex{byExternal: map[string]*dirUser{}, byName: map[string]*dirUser{}, byID: map[string]*dirUser{}}
	var err error
	for u, lerr := range d.c.AllUsers(ctx, "", orgapi.DefaultPageSize) {
		if lerr != nil {
			err = lerr
			break
		}
		du := &dirUser{ID: u.ID, ExternalID: u.ExternalID, UserName: u.UserName, Email: u.PrimaryEmail(), Version: versionOf(&u), Active: u.IsActive()}
		ix.add(du)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the directory's users: %w", err)
	}
	return ix, nil
}

func (ix *dirIndex) add(du *dirUser) {
	ix.byID[du.ID] = du
	if du.ExternalID != "" {
		ix.byExternal[du.ExternalID] = du
	}
	if du.UserName != "" {
		ix.byName[strings.ToLower(du.UserName)] = du
	}
	if du.Email != "" {
		if _, taken := ix.byName[strings.ToLower(du.Email)]; !taken {
			ix.byName[strings.ToLower(du.Email)] = du
		}
	}
}
