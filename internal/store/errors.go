package store

import "errors"

var (
	// ErrNotObtained is returned by [Locker.Obtain] when another holder has the
	// lock, and by [Locker.ObtainWait] when the wait ended before it was freed.
	ErrNotObtained = errors.New("store: lock is held by another owner")

	// ErrLockNotHeld is returned when a lock's token no longer matches the one in
	// Redis: the lock expired (and perhaps another owner took it) or was released.
	// [ApplyOnce] returns it when the fencing check refuses a stale token; the
	// effect was not applied and the caller must not assume it holds the lock.
	ErrLockNotHeld = errors.New("store: lock is no longer held by this owner")

	// ErrInvalidTTL is returned when a lock or record is asked to live for a
	// non-positive duration, which Redis would treat as "forever" or reject.
	ErrInvalidTTL = errors.New("store: ttl must be positive")
)
