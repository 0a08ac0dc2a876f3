package binding

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/orgbridge/orgbridge/internal/store"
)

// AuditEntry is one change to a workspace's org connection that people
// should be able to find later: who or what did it, to which org, and what
// it removed.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	OrgID  string    `json:"org_id,omitempty"`
	// Actor is who did it: a Slack user, "admin", "orgbridge" (a check
	// found it).
	Actor  string `json:"actor"`
	Detail string `json:"detail,omitempty"`
	// Mappings is how many Slack users lost a mapping or association.
	Mappings int `json:"mappings,omitempty"`
}

// Audit actions.
const (
	AuditBound          = "bound"
	AuditOldOrgRemoved  = "old_org_mappings_removed"
	AuditInvalidated    = "invalidated"
	AuditUserRevoked    = "org_user_revoked"
	AuditUnbind         = "unbind_requested"
	AuditCleared        = "cleared"
	AuditMappingsDelete = "mappings_deleted"
)

// auditKeep is how many entries a workspace's audit trail keeps.
const auditKeep = 200

func kAudit(w string) string { return store.Key(w, "binding", "audit") }

// Audit appends e to w's audit trail (newest first, the last auditKeep kept).
func (s *Store) Audit(ctx context.Context, w string, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	b, _ := json.Marshal(e)
	pipe := s.rdb.TxPipeline()
	pipe.LPush(ctx, kAudit(w), b)
	pipe.LTrim(ctx, kAudit(w), 0, auditKeep-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("binding: auditing %s in %s: %w", e.Action, w, err)
	}
	return nil
}

// AuditLog returns w's audit trail, newest first.
func (s *Store) AuditLog(ctx context.Context, w string) ([]AuditEntry, error) {
	raw, err := s.rdb.LRange(ctx, kAudit(w), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, 0, len(raw))
	for _, r := range raw {
		var e AuditEntry
		if json.Unmarshal([]byte(r), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// audit records e in w's trail and logs it; a failed write is logged, never
// returned: the change itself happened.
func (w *Worker) audit(ctx context.Context, ws string, e AuditEntry) {
	auditAndLog(ctx, w.cfg.Bindings, w.log, ws, e)
}

func auditAndLog(ctx context.Context, s *Store, log *slog.Logger, ws string, e AuditEntry) {
	log.Info("org connection changed: "+e.Action, "workspace", ws, "org", e.OrgID, "actor", e.Actor,
		"detail", e.Detail, "mappings", e.Mappings)
	if err := s.Audit(context.WithoutCancel(ctx), ws, e); err != nil {
		log.Warn("audit entry not stored", "workspace", ws, "action", e.Action, "err", err)
	}
}
