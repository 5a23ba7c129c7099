package delivery

import (
	"testing"
	"time"
)

func TestDurations(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	full := Rollout{
		CommitTime:   t0,
		Submitted:    t0.Add(10 * time.Minute),
		FirstRunning: t0.Add(12 * time.Minute),
		Completed:    t0.Add(15 * time.Minute),
		FailedSince:  t0.Add(-time.Hour),
	}
	tests := []struct {
		name                  string
		kind                  Kind
		change                func(*Rollout)
		lead, duration, ttr   time.Duration
		hasLead, hasDur, hasT bool
	}{
		{name: "running: lead time to the first pod", kind: KindRunning, lead: 12 * time.Minute, hasLead: true},
		{name: "complete: every duration", kind: KindComplete, lead: 15 * time.Minute, hasLead: true,
			duration: 5 * time.Minute, hasDur: true, ttr: 75 * time.Minute, hasT: true},
		{name: "complete without a commit time", kind: KindComplete, change: func(r *Rollout) { r.CommitTime = time.Time{} },
			duration: 5 * time.Minute, hasDur: true, ttr: 75 * time.Minute, hasT: true},
		{name: "complete without an outage", kind: KindComplete, change: func(r *Rollout) { r.FailedSince = time.Time{} },
			lead: 15 * time.Minute, hasLead: true, duration: 5 * time.Minute, hasDur: true},
		{name: "a commit after the rollout (clocks disagree)", kind: KindComplete, change: func(r *Rollout) { r.CommitTime = t0.Add(time.Hour) },
			duration: 5 * time.Minute, hasDur: true, ttr: 75 * time.Minute, hasT: true},
		{name: "failed: nothing to measure", kind: KindFailed},
		{name: "rolled back: nothing to measure", kind: KindRolledBack},
		{name: "running before it runs", kind: KindRunning, change: func(r *Rollout) { r.FirstRunning = time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := full
			if tt.change != nil {
				tt.change(&r)
			}
			o := Observation{Kind: tt.kind, Rollout: r}
			if got, ok := o.LeadTime(); ok != tt.hasLead || got != tt.lead {
				t.Errorf("LeadTime = %v, %v; want %v, %v", got, ok, tt.lead, tt.hasLead)
			}
			if got, ok := o.RolloutDuration(); ok != tt.hasDur || got != tt.duration {
				t.Errorf("RolloutDuration = %v, %v; want %v, %v", got, ok, tt.duration, tt.hasDur)
			}
			if got, ok := o.TimeToRestore(); ok != tt.hasT || got != tt.ttr {
				t.Errorf("TimeToRestore = %v, %v; want %v, %v", got, ok, tt.ttr, tt.hasT)
			}
			if o.Stage() != string(tt.kind) {
				t.Errorf("Stage = %q", o.Stage())
			}
		})
	}
}
