package ledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// runStatusWrites runs w until the test ends.
func runStatusWrites(t *testing.T, w *StatusWrites) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, 4) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitWritten(t *testing.T, w *StatusWrites) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := w.Wait(ctx); err != nil {
		t.Fatalf("the status writes did not finish: %v", err)
	}
}

// TestStatusWrites: outcomes reported while nothing is written are written in order, together, in one update;
// a write that fails is tried again; an outcome for a record the ledger does not hold is dropped.
func TestStatusWrites(t *testing.T) {
	errDown := errors.New("connection refused")
	other := recA
	other.DeploymentName = "shop/api/app"
	tests := []struct {
		name       string
		fail       map[string][]error
		report     func(w *StatusWrites)
		want       *condition
		wantWrites int // status updates
	}{
		{
			name: "failed, then delivered: one update, delivered",
			report: func(w *StatusWrites) {
				w.Failed(t.Context(), recA, errDown, 1, t1.Add(time.Minute))
				w.Delivered(t.Context(), recA)
			},
			want: accepted(1), wantWrites: 1,
		},
		{
			name: "delivered, then failed: the failure shows, in order",
			report: func(w *StatusWrites) {
				w.Delivered(t.Context(), recA)
				w.Failed(t.Context(), recA, errDown, 1, t1.Add(time.Minute))
			},
			want: postFailed(1, "connection refused"), wantWrites: 1,
		},
		{
			name: "the update fails: written again",
			fail: map[string][]error{"status": {errDown, errDown}},
			report: func(w *StatusWrites) {
				w.Delivered(t.Context(), recA)
			},
			want: accepted(1), wantWrites: 1,
		},
		{
			name: "a record the ledger does not hold: dropped",
			report: func(w *StatusWrites) {
				w.Delivered(t.Context(), other)
				w.Delivered(t.Context(), recA)
			},
			want: accepted(1), wantWrites: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, true)
			c := &clock{at: t1}
			l := newLedger(s, c)
			apply(t, l, c, []op{put(t1, recA, decidedBy(0, v1alpha1.SourceWebhook))})
			for op, errs := range tt.fail {
				s.failNext(op, errs...)
			}
			before := s.writeCount()
			w := NewStatusWrites(l, logr.Discard())
			tt.report(w) // before Run: all of them wait together
			runStatusWrites(t, w)
			waitWritten(t, w)
			if diff := cmp.Diff(tt.want, syncedCondition(get(t, s, recA))); diff != "" {
				t.Errorf("Synced condition mismatch (-want +got):\n%s", diff)
			}
			if got := s.writeCount() - before; got != tt.wantWrites {
				t.Errorf("%d status updates, want %d", got, tt.wantWrites)
			}
		})
	}
}

// TestStatusWritesConcurrentKeys: outcomes of many keys are all written.
func TestStatusWritesConcurrentKeys(t *testing.T) {
	s := newAPIServer(t, true)
	c := &clock{at: t1}
	l := newLedger(s, c)
	var recs []record.Record
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		r := recA
		r.DeploymentName = "shop/" + n + "/app"
		recs = append(recs, r)
		apply(t, l, c, []op{put(t1, r, decidedBy(0, v1alpha1.SourceWebhook))})
	}
	w := NewStatusWrites(l, logr.Discard())
	runStatusWrites(t, w)
	for _, r := range recs {
		w.Delivered(t.Context(), r)
	}
	waitWritten(t, w)
	for _, r := range recs {
		if diff := cmp.Diff(accepted(1), syncedCondition(get(t, s, r))); diff != "" {
			t.Errorf("%s: Synced condition mismatch (-want +got):\n%s", r.DeploymentName, diff)
		}
	}
}
