package provisioning

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/orgbridge/orgbridge/events"
)

// Run fires scheduled and quarantine-retry runs until ctx ends. Every
// replica runs it: a slot's run id is the same everywhere and is created at
// most once (SETNX), and its trigger's Msg-Id is de-duplicated by JetStream,
// so each integration runs once per slot however many replicas there are. A
// slot missed while everything was down runs when a replica comes back (once,
// for the latest missed slot).
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.ScheduleTick)
	defer t.Stop()
	for {
		if err := w.Tick(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("provisioning: scheduling", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick queues the runs that are due now.
func (w *Worker) Tick(ctx context.Context) error {
	orgs, err := w.store.Orgs(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, org := range orgs {
		if err := w.tickOrg(ctx, org); err != nil {
			errs = append(errs, err)
		}
	}
	w.metrics.setQuarantined(ctx, w) // every replica keeps the gauge current, also after a resume
	return errors.Join(errs...)
}

func (w *Worker) tickOrg(ctx context.Context, org string) error {
	in, err := w.store.Integration(ctx, org)
	if errors.Is(err, ErrNoIntegration) {
		return nil // indexed by a connect that was refused or did not finish
	}
	if err != nil || in.Status != StatusActive {
		return err
	}
	now := w.cfg.Now()
	var slot time.Time
	trigger := events.TriggerSchedule
	if q := in.Quarantine; q != nil {
		if now.Before(q.NextRetry) {
			return nil
		}
		slot = q.NextRetry
	} else {
		base := in.LastScheduled
		if base.IsZero() {
			base = in.Created
		}
		next := in.Settings.NextRun(base)
		if next.After(now) {
			return nil
		}
		// the latest slot not after now: missed days run once
		for s := next; !s.After(now); s = in.Settings.NextRun(s) {
			slot = s
		}
	}
	run := &Run{ID: slotRunID(in, slot), OrgID: org, IntegrationID: in.ID, Trigger: trigger, By: "scheduler",
		Status: events.RunPending, SettingsVersion: in.SettingsVersion, Created: now.UTC(), Counts: map[string]int{}}
	created, err := w.store.CreateRun(ctx, run, w.cfg.HistoryLimit)
	if err != nil {
		return err
	}
	if !created {
		cur, err := w.store.Run(ctx, org, run.ID)
		if err != nil {
			return err
		}
		if cur.Status != events.RunPending {
			return w.markScheduled(ctx, in, slot)
		}
		run = cur // created by a replica that died before publishing: publish again (same Msg-Id)
	}
	if err := w.publishTrigger(ctx, run, events.ActionRun, "scheduler"); err != nil {
		return err
	}
	if _, err := w.store.Update(ctx, org, w.cfg.Now, func(in *Integration) error {
		if in.CurrentRunID == "" {
			in.CurrentRunID = run.ID
		}
		return nil
	}); err != nil {
		return err
	}
	return w.markScheduled(ctx, in, slot)
}

func (w *Worker) markScheduled(ctx context.Context, in *Integration, slot time.Time) error {
	_, err := w.store.Update(ctx, in.OrgID, w.cfg.Now, func(cur *Integration) error {
		if cur.Quarantine != nil && !cur.Quarantine.NextRetry.After(slot) {
			cur.Quarantine.NextRetry = slot.Add(w.cfg.QuarantineBackoff << min(cur.Quarantine.Retries, 10))
			return nil
		}
		if slot.After(cur.LastScheduled) {
			cur.LastScheduled = slot
		}
		return nil
	})
	return err
}
