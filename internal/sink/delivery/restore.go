package delivery

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// History reads the rollouts of a workload, by ascending revision, with what each sink kept about each
// (ledger.Ledger.WorkloadRollouts).
type History interface {
	WorkloadRollouts(ctx context.Context, w owner.Workload) ([]ledger.RolloutEntry, error)
}

// failedSince is, for the completed rollout r whose state is st, when the outage it ends began: the first
// failure of its workload since the last completed rollout before it (History, else what this sink observed),
// or r's own failure when it failed and recovered; zero when there was none.
func (s *Sink) failedSince(ctx context.Context, r rollout.Rollout, st map[string]string) (time.Time, error) {
	var since time.Time
	if s.cfg.History != nil {
		entries, err := s.cfg.History.WorkloadRollouts(ctx, r.Workload)
		if err != nil {
			return time.Time{}, fmt.Errorf("history of %s: %w", r.Workload, err)
		}
		since = outageStart(entries, r.Revision, s.cfg.Name)
	} else {
		s.mu.Lock()
		since = s.outages[r.Workload]
		s.mu.Unlock()
	}
	if own, ok := parseTime(st[StateFailedAt]); ok && (since.IsZero() || own.Before(since)) {
		since = own
	}
	return since, nil
}

// outageStart is when the first failure of entries (a workload's rollouts, by ascending revision) since the
// last completed rollout below revision happened; zero when none failed since. A failure is a rollout that
// sinkName observed failed or rolled back (at the time it kept), or one the ledger shows Failed or RolledBack;
// a completed rollout that was rolled back afterwards is a failure, not the last good one.
func outageStart(entries []ledger.RolloutEntry, revision int64, sinkName string) time.Time {
	var since time.Time
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Rollout.Revision >= revision {
			continue
		}
		if !e.Rollout.Completed.IsZero() && e.Rollout.Phase != rollout.PhaseRolledBack {
			break
		}
		if at, failed := failureOf(e, sinkName); failed {
			since = at
		}
	}
	return since
}

// failureOf reports whether the rollout of e failed, and when.
func failureOf(e ledger.RolloutEntry, sinkName string) (time.Time, bool) {
	st := e.Sinks[sinkName].State
	if at, ok := parseTime(st[StateFailedAt]); ok {
		return at, true
	}
	observed := kindsOf(st[StateObserved])
	if slices.Contains(observed, string(delivery.KindFailed)) || slices.Contains(observed, string(delivery.KindRolledBack)) ||
		e.Rollout.Phase == rollout.PhaseFailed || e.Rollout.Phase == rollout.PhaseRolledBack {
		return failedAt(e.Rollout), true
	}
	return time.Time{}, false
}

// remember keeps, without History, the first failure of r's workload since its last completed rollout.
func (s *Sink) remember(r rollout.Rollout, recorded []delivery.Kind) {
	if s.cfg.History != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case slices.Contains(recorded, delivery.KindComplete) && r.Phase != rollout.PhaseRolledBack:
		delete(s.outages, r.Workload)
	case slices.Contains(recorded, delivery.KindFailed), slices.Contains(recorded, delivery.KindRolledBack):
		if _, ok := s.outages[r.Workload]; !ok && len(s.outages) < maxOutages {
			s.outages[r.Workload] = failedAt(r)
		}
	}
}

func parseTime(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}
