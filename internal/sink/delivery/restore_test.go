package delivery

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// entry is a rollout of the ledger with the state the delivery sink kept about it (nil: none).
func entry(r rollout.Rollout, st map[string]string) ledger.RolloutEntry {
	e := ledger.RolloutEntry{Rollout: r}
	if st != nil {
		e.Sinks = map[string]ledger.RolloutDelivery{Name: {Phase: r.Phase, Synced: true, State: st}}
	}
	return e
}

func failedState(m float64) map[string]string {
	return map[string]string{StateObserved: "running,failed", StateFailedAt: at(m).Format(time.RFC3339Nano)}
}

// TestOutageStart: the first failure since the last completed rollout below the one that completes.
func TestOutageStart(t *testing.T) {
	good := entry(ro(1, rollout.PhaseSuperseded, completed(2), finished(10)), map[string]string{StateObserved: "running,complete"})
	tests := []struct {
		name     string
		entries  []ledger.RolloutEntry
		revision int64
		want     time.Time
	}{
		{name: "no history", revision: 1},
		{name: "only good rollouts before", entries: []ledger.RolloutEntry{good}, revision: 2},
		{
			name: "a failure fixed forward: the ledger shows it superseded, the state failed",
			entries: []ledger.RolloutEntry{
				good, entry(ro(2, rollout.PhaseSuperseded, finished(30)), failedState(20)),
			},
			revision: 3, want: at(20),
		},
		{
			name: "two failures: the first",
			entries: []ledger.RolloutEntry{
				good, entry(ro(2, rollout.PhaseSuperseded, finished(30)), failedState(20)),
				entry(ro(3, rollout.PhaseRolledBack, finished(45)), map[string]string{StateObserved: "rolled_back", StateFailedAt: at(45).Format(time.RFC3339Nano)}),
			},
			revision: 4, want: at(20),
		},
		{
			name: "failed then rolled back: the failure's time, not the rollback's",
			entries: []ledger.RolloutEntry{
				good, entry(ro(2, rollout.PhaseRolledBack, finished(50)), failedState(20)),
			},
			revision: 3, want: at(20),
		},
		{
			name: "a failure this sink never heard of: the ledger's phase and finish time",
			entries: []ledger.RolloutEntry{
				good, entry(ro(2, rollout.PhaseFailed, finished(25)), nil),
			},
			revision: 3, want: at(25),
		},
		{
			name: "failures before the last good rollout are over",
			entries: []ledger.RolloutEntry{
				entry(ro(1, rollout.PhaseSuperseded, finished(5)), failedState(4)),
				entry(ro(2, rollout.PhaseSuperseded, completed(8), finished(20)), map[string]string{StateObserved: "complete"}),
				entry(ro(3, rollout.PhaseSuperseded, finished(40)), failedState(30)),
			},
			revision: 4, want: at(30),
		},
		{
			name: "a rollout that failed and recovered is a good one",
			entries: []ledger.RolloutEntry{
				entry(ro(2, rollout.PhaseSuperseded, completed(12), finished(20)), map[string]string{StateObserved: "failed,complete", StateFailedAt: at(10).Format(time.RFC3339Nano)}),
			},
			revision: 3,
		},
		{
			name: "completed then rolled back: a failure, not the last good one",
			entries: []ledger.RolloutEntry{
				good,
				entry(ro(2, rollout.PhaseRolledBack, completed(12), finished(40)), map[string]string{StateObserved: "running,complete,rolled_back", StateFailedAt: at(40).Format(time.RFC3339Nano)}),
			},
			revision: 3, want: at(40),
		},
		{
			name: "superseded before it ran: neither",
			entries: []ledger.RolloutEntry{
				good, entry(ro(2, rollout.PhaseSuperseded, finished(30)), failedState(20)), entry(ro(3, rollout.PhaseSuperseded, finished(31)), nil),
			},
			revision: 4, want: at(20),
		},
		{
			name: "rollouts above the revision do not count",
			entries: []ledger.RolloutEntry{
				good, entry(ro(2, rollout.PhaseSuperseded, finished(30)), failedState(20)),
				entry(ro(4, rollout.PhaseFailed, finished(60)), failedState(60)),
			},
			revision: 3, want: at(20),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outageStart(tt.entries, tt.revision, Name); !got.Equal(tt.want) {
				t.Errorf("outageStart() = %s, want %s", got, tt.want)
			}
		})
	}
}

// history is the ledger of the sink's rollouts: what Notify kept, by revision, as ledger.RolloutEntry.
type history struct {
	mu      sync.Mutex
	entries map[int64]ledger.RolloutEntry
	fail    error
}

func (h *history) RolloutDelivered(_ context.Context, r rollout.Rollout, _ string, st map[string]string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.entries == nil {
		h.entries = map[int64]ledger.RolloutEntry{}
	}
	h.entries[r.Revision] = entry(r, st)
	return nil
}

func (h *history) WorkloadRollouts(_ context.Context, w owner.Workload) ([]ledger.RolloutEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return nil, h.fail
	}
	var out []ledger.RolloutEntry
	for rev := int64(1); rev <= 10; rev++ {
		if e, ok := h.entries[rev]; ok && e.Rollout.Workload == w {
			out = append(out, e)
		}
	}
	return out, nil
}

// put keeps r in the ledger as the controller does, with the state the sink kept.
func (h *history) put(r rollout.Rollout) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.entries == nil {
		h.entries = map[int64]ledger.RolloutEntry{}
	}
	e := h.entries[r.Revision]
	e.Rollout = r
	h.entries[r.Revision] = e
}

// TestTimeToRestore: a failed rollout, then a fix, gives a time to restore from the failure to the fix's Current;
// the next rollout none. With the ledger's history, and without (what the sink observed).
func TestTimeToRestore(t *testing.T) {
	for _, withHistory := range []bool{true, false} {
		name := "without history"
		if withHistory {
			name = "with the ledger's history"
		}
		t.Run(name, func(t *testing.T) {
			h := &history{}
			cfg := Config{Workloads: commitTimeOf(t0), Ledger: h}
			if withHistory {
				cfg.History = h
			}
			s, e := newTestSink(t, cfg)
			n := newNotifier()
			step := func(r rollout.Rollout) {
				t.Helper()
				h.put(r)
				n.notify(t, s, r)
			}
			step(ro(1, rollout.PhaseCurrent, running(1), completed(2)))
			if o, _ := e.last(delivery.KindComplete); !o.Rollout.FailedSince.IsZero() {
				t.Errorf("the first rollout restores from %s; want nothing", o.Rollout.FailedSince)
			}
			step(ro(1, rollout.PhaseSuperseded, running(1), completed(2), finished(10)))
			step(ro(2, rollout.PhaseInProgress, running(11)))
			step(ro(2, rollout.PhaseFailed, running(11), finished(20)))
			step(ro(2, rollout.PhaseSuperseded, running(11), finished(30))) // the fix starts
			step(ro(3, rollout.PhaseCurrent, running(31), completed(35)))
			o, _ := e.last(delivery.KindComplete)
			if d, ok := o.TimeToRestore(); !ok || d != 15*time.Minute {
				t.Errorf("time to restore %s, %t; want 15m (the failure at +20m to the fix's Current at +35m)", d, ok)
			}
			step(ro(3, rollout.PhaseSuperseded, running(31), completed(35), finished(40)))
			step(ro(4, rollout.PhaseCurrent, running(41), completed(42)))
			if o, _ := e.last(delivery.KindComplete); !o.Rollout.FailedSince.IsZero() {
				t.Errorf("the rollout after the fix restores from %s; want nothing", o.Rollout.FailedSince)
			}
		})
	}
}

// TestTimeToRestoreOwnFailure: a rollout that failed and recovered restores from its own failure.
func TestTimeToRestoreOwnFailure(t *testing.T) {
	h := &history{}
	s, e := newTestSink(t, Config{Workloads: commitTimeOf(t0), Ledger: h, History: h})
	n := newNotifier()
	for _, r := range []rollout.Rollout{
		ro(1, rollout.PhaseFailed, running(1), finished(6)),
		ro(1, rollout.PhaseCurrent, running(1), completed(9)),
	} {
		h.put(r)
		n.notify(t, s, r)
	}
	o, _ := e.last(delivery.KindComplete)
	if d, ok := o.TimeToRestore(); !ok || d != 3*time.Minute {
		t.Errorf("time to restore %s, %t; want 3m", d, ok)
	}
}

// TestTimeToRestoreHistoryFails: a history that cannot be read is a retryable error; nothing is observed.
func TestTimeToRestoreHistoryFails(t *testing.T) {
	h := &history{fail: errors.New("connection refused")}
	s, e := newTestSink(t, Config{Workloads: commitTimeOf(t0), History: h})
	st, err := s.Notify(t.Context(), rollout.Notification{Rollout: ro(1, rollout.PhaseCurrent, running(1), completed(2))})
	if err == nil || st != nil {
		t.Fatalf("Notify() = %v, %v; want an error", st, err)
	}
	if got := e.kinds(); len(got) != 0 {
		t.Errorf("observed %v", got)
	}
}
