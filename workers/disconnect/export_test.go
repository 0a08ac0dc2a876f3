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
