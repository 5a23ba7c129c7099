package delivery

import (
	"testing"

	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// FuzzNotifyState: whatever state the ledger hands back (written by this sink, an older version, or by hand),
// Notify does not panic, returns a state within the ledger's bounds, and a second notification of the same
// rollout with the state it returned observes nothing.
func FuzzNotifyState(f *testing.F) {
	f.Add("running,complete", "2025-06-01T10:00:00Z", "v1", "", "")
	f.Add("", "", "", "none", "")
	f.Add("failed,,unknown", "not a time", "", "", "2025-06-01T12:30:00.5Z")
	f.Add(",,,", "", "x", "not_found", "yesterday")
	f.Fuzz(func(t *testing.T, observed, commitTime, commitRef, without, failed string) {
		s, e := newTestSink(t, Config{Workloads: commitTimeOf(t0)})
		state := map[string]string{
			StateObserved: observed, StateCommitTime: commitTime, StateCommit: commitRef,
			StateWithoutCommit: without, StateFailedAt: failed,
		}
		for _, phase := range []rollout.Phase{rollout.PhaseFailed, rollout.PhaseCurrent, rollout.PhaseRolledBack} {
			r := ro(1, phase, submitted(1), running(2), finished(4))
			if phase != rollout.PhaseFailed {
				r = ro(1, phase, submitted(1), running(2), completed(3), finished(4))
			}
			n := rollout.Notification{Rollout: r, Acknowledged: rollout.PhaseInProgress, State: state}
			st, err := s.Notify(t.Context(), n)
			if err != nil {
				t.Fatalf("Notify() error = %v", err)
			}
			if len(st) > 16 {
				t.Fatalf("state of %d keys", len(st))
			}
			e.kinds()
			n.State = st
			if _, err := s.Notify(t.Context(), n); err != nil {
				t.Fatalf("second Notify() error = %v", err)
			}
			if got := e.kinds(); len(got) != 0 {
				t.Fatalf("the second notification observed %v (state %v)", got, st)
			}
		}
	})
}
