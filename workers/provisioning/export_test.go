package provisioning

import "context"

// SetAfterPage makes w call f after each checkpointed page (tests stop a
// worker mid-run with it).
func SetAfterPage(w *Worker, f func(ctx context.Context, r *Run) error) { w.afterPage = f }

// Apply exposes the filter's matching to tests.
func (f RowFilter) Apply(rows []Row) []Row { return f.apply(rows) }
