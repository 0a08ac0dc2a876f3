package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"
)

// Key rotation. Every kind of record that holds sealed values describes
// itself as a [SealedSet]; [Reseal] moves a set to the primary key one record
// at a time (read, re-seal, compare-and-set, retry when the record changed
// meanwhile), and [CheckSealed] proves afterwards that nothing is left under
// another key, so an operator knows when the old keys can go.

// SealedRef names one stored record that holds sealed values.
type SealedRef struct {
	// Key is the record's Redis key; the record is a string value.
	Key string
	// Name identifies the record for people ("installation A1|E1|T1").
	Name string
}

// SealedSet is one kind of record holding sealed values, as key rotation
// sees it. The stores build theirs (for example [Installations.SealedSet]).
type SealedSet struct {
	// Kind names the records in reports ("installations").
	Kind string
	// List returns every record of the kind, from the kind's indexes; an
	// index entry whose record is gone is skipped by the callers.
	List func(ctx context.Context) ([]SealedRef, error)
	// Visit decodes a stored record, calls f with each of its sealed values
	// (f may replace *s) and returns the record encoded again. A record that
	// does not decode is an error; so is an error from f.
	Visit func(raw []byte, f func(field string, s *Sealed, aad string) error) ([]byte, error)
}

// SealedProblem is a record key rotation could not move to the primary key,
// or that the final check found not under it.
type SealedProblem struct {
	Kind string
	Name string
	Key  string
	// Field is the sealed value concerned; empty when the whole record is
	// unreadable.
	Field string
	// KeyID is the key the value is sealed under, when known.
	KeyID string
	Err   error
}

func (p SealedProblem) String() string {
	what := p.Name
	if p.Field != "" {
		what += " (" + p.Field + ")"
	}
	if p.KeyID != "" {
		what += " under key " + p.KeyID
	}
	return what + ": " + p.Err.Error()
}

// ResealStats counts what [Reseal] did to one set.
type ResealStats struct {
	Kind string
	// Records is how many index entries were visited.
	Records int
	// Resealed records were written back under the primary key; Current ones
	// already were entirely under it; Gone ones had no record any more.
	Resealed, Current, Gone int
	// Conflicts counts compare-and-set misses: the record changed between
	// the read and the write (a token refresh, a reconnect) and was read
	// and re-sealed again.
	Conflicts int
	// Failed are the records left as they were: unreadable, sealed under a
	// key the keyring lacks, or still changing after every attempt.
	Failed []SealedProblem
}

// ResealOptions tune [Reseal]; the zero value is fine.
type ResealOptions struct {
	// Progress, when set, is called after every 500 records and at the end.
	Progress func(done, total int)
	// Attempts bounds the reads and writes of one record (default 10).
	Attempts int
	// Retry is the wait between attempts (default: exponential from 10 ms to 1 s).
	Retry func() backoff.BackOff
	// beforeWrite runs between a record's read and its compare-and-set (tests).
	beforeWrite func(ref SealedRef)
}

// ErrOldKey: [CheckSealed] found a value that opens but is still sealed
// under another key than the primary one (it was written under the old key
// after [Reseal] passed it, or Reseal could not write it).
var ErrOldKey = errors.New("store: still sealed under an old key")

// errChanged: the record changed between the read and the compare-and-set.
var errChanged = errors.New("store: the record kept changing while it was re-encrypted; run the rotation again")

// resealCAS writes ARGV[2] only if the key still holds ARGV[1] (the value
// that was read and re-sealed), keeping the key's TTL.
var resealCAS = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1`)

// Reseal re-encrypts every sealed value of set that is under another key
// than keys' primary one. Each record is read, re-sealed and written back
// only if it did not change meanwhile; a record that changed is read again,
// with backoff, up to opts.Attempts times. Records it cannot move (unreadable,
// under an unknown key, forever changing) are listed in the stats, never
// skipped silently. The error is for what stops the whole set: its index
// cannot be read, or ctx ended.
func Reseal(ctx context.Context, rdb redis.Cmdable, keys *Keyring, set SealedSet, opts ResealOptions) (ResealStats, error) {
	st := ResealStats{Kind: set.Kind}
	refs, err := set.List(ctx)
	if err != nil {
		return st, fmt.Errorf("store: listing %s: %w", set.Kind, err)
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 10
	}
	if opts.Retry == nil {
		opts.Retry = func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 10*time.Millisecond, time.Second, 0
			return b
		}
	}
	for i, ref := range refs {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		st.Records++
		outcome, p := resealOne(ctx, rdb, keys, set, ref, opts, &st.Conflicts)
		switch {
		case p != nil:
			st.Failed = append(st.Failed, *p)
		case outcome == resealed:
			st.Resealed++
		case outcome == gone:
			st.Gone++
		default:
			st.Current++
		}
		if opts.Progress != nil && ((i+1)%500 == 0 || i+1 == len(refs)) {
			opts.Progress(i+1, len(refs))
		}
	}
	return st, ctx.Err()
}

type resealOutcome int

const (
	current resealOutcome = iota
	resealed
	gone
)

func resealOne(ctx context.Context, rdb redis.Cmdable, keys *Keyring, set SealedSet, ref SealedRef, opts ResealOptions, conflicts *int) (resealOutcome, *SealedProblem) {
	var (
		outcome resealOutcome
		problem *SealedProblem
	)
	op := func() error {
		outcome, problem = current, nil
		raw, err := rdb.Get(ctx, ref.Key).Result()
		switch {
		case errors.Is(err, redis.Nil):
			outcome = gone
			return nil
		case redis.HasErrorPrefix(err, "WRONGTYPE"):
			problem = &SealedProblem{Kind: set.Kind, Name: ref.Name, Key: ref.Key, Err: fmt.Errorf("unreadable: %w", err)}
			return backoff.Permanent(err)
		case err != nil:
			return err // Redis is unwell: try again
		}
		changed := false
		out, err := set.Visit([]byte(raw), func(field string, s *Sealed, aad string) error {
			n, ch, err := keys.Reseal(*s, aad)
			if err != nil {
				problem = &SealedProblem{Kind: set.Kind, Name: ref.Name, Key: ref.Key, Field: field, KeyID: s.KeyID, Err: err}
				return err
			}
			if ch {
				*s, changed = n, true
			}
			return nil
		})
		if err != nil {
			if problem == nil {
				problem = &SealedProblem{Kind: set.Kind, Name: ref.Name, Key: ref.Key, Err: fmt.Errorf("unreadable: %w", err)}
			}
			return backoff.Permanent(err)
		}
		if !changed {
			return nil
		}
		if opts.beforeWrite != nil {
			opts.beforeWrite(ref)
		}
		ok, err := resealCAS.Run(ctx, rdb, []string{ref.Key}, raw, out).Int()
		if err != nil {
			return err
		}
		if ok == 0 {
			*conflicts++
			return errChanged
		}
		outcome = resealed
		return nil
	}
	b := backoff.WithContext(backoff.WithMaxRetries(opts.Retry(), uint64(opts.Attempts-1)), ctx)
	if err := backoff.Retry(op, b); err != nil && problem == nil {
		problem = &SealedProblem{Kind: set.Kind, Name: ref.Name, Key: ref.Key, Err: err}
	}
	return outcome, problem
}

// SealedReport is what [CheckSealed] found.
type SealedReport struct {
	// Records and Values count the records read and the sealed values in them.
	Records, Values int
	// Problems are the values not under the primary key, or that do not open
	// with the configured keys, and the records that do not decode.
	Problems []SealedProblem
}

// CheckSealed reads every record of sets and reports each sealed value that
// is not under keys' primary key or does not open, and each record that does
// not decode. An empty report means every old key can be removed. The error
// is for an index or a record that cannot be read at all (Redis is down).
func CheckSealed(ctx context.Context, rdb redis.Cmdable, keys *Keyring, sets ...SealedSet) (SealedReport, error) {
	var rep SealedReport
	for _, set := range sets {
		refs, err := set.List(ctx)
		if err != nil {
			return rep, fmt.Errorf("store: listing %s: %w", set.Kind, err)
		}
		for _, ref := range refs {
			raw, err := rdb.Get(ctx, ref.Key).Result()
			switch {
			case errors.Is(err, redis.Nil):
				continue
			case redis.HasErrorPrefix(err, "WRONGTYPE"):
				rep.Records++
				rep.Problems = append(rep.Problems, SealedProblem{Kind: set.Kind, Name: ref.Name, Key: ref.Key, Err: fmt.Errorf("unreadable: %w", err)})
				continue
			case err != nil:
				return rep, fmt.Errorf("store: reading %s: %w", ref.Name, err)
			}
			rep.Records++
			_, err = set.Visit([]byte(raw), func(field string, s *Sealed, aad string) error {
				if s.IsZero() {
					return nil
				}
				rep.Values++
				p := SealedProblem{Kind: set.Kind, Name: ref.Name, Key: ref.Key, Field: field, KeyID: s.KeyID}
				if _, err := keys.Open(*s, aad); err != nil {
					p.Err = err
				} else if s.KeyID != keys.PrimaryID() {
					p.Err = fmt.Errorf("%w, not the primary key %s", ErrOldKey, keys.PrimaryID())
				}
				if p.Err != nil {
					rep.Problems = append(rep.Problems, p)
				}
				return nil
			})
			if err != nil {
				rep.Problems = append(rep.Problems, SealedProblem{Kind: set.Kind, Name: ref.Name, Key: ref.Key, Err: fmt.Errorf("unreadable: %w", err)})
			}
		}
	}
	return rep, nil
}
