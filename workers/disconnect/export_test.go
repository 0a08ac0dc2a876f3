package disconnect

import "context"

// SetAfterCallHook installs a hook that runs after a successful disconnect
// call and before "done" is recorded; a non-nil error ends the handler there,
// as if the worker was killed (tests only).
func SetAfterCallHook(w *Worker, f func(ctx context.Context, requestID string) error) {
	w.afterCall = f
}

// AuditKey is the Redis stream holding e's audit trail (tests only).
func AuditKey(e string) string { return auditKey(e) }

// IndexKey, IDKey and LegacyIDsKey name the request index of e, the id →
// enterprise key of id and the old global id hash (tests only).
func IndexKey(e string) string { return indexKey(e) }
func IDKey(id string) string   { return idKey(id) }
func LegacyIDsKey() string     { return legacyIDsKey }

// SetBeforeBeginHook installs a hook that runs once the pacer granted a
// disconnect call, before it is recorded in flight (tests only).
func SetBeforeBeginHook(w *Worker, f func(ctx context.Context, requestID string) error) {
	w.beforeBegin = f
}

// CallKey is the in-flight/done record of a request's call (tests only).
func CallKey(e, id string) string { return callKey(e, id) }
