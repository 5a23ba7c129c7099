package dispatch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// TestDrainDeadlineLeavesPending: a post cut short at the drain deadline is not reported failed (the ledger
// would show "context canceled" as its last error): it stays pending as it was, for the next leader.
func TestDrainDeadlineLeavesPending(t *testing.T) {
	t.Run("records", func(t *testing.T) {
		clock := newFakeClock()
		rep := &fakeReporter{}
		h := newHarness(t, Config{Workers: 1, DrainTimeout: time.Minute, BaseDelay: fastBase, MaxDelay: fastMax, Reporter: rep}, clock)
		h.sink.hold(func(record.Record) bool { return true }) // the sink hangs until the post's context ends
		h.start()
		h.desire(dep("web", 1))
		eventually(t, "the post is in flight", func() bool { return h.sink.held() == 1 })
		h.cancel()
		eventually(t, "the drain timer runs", func() bool { return clock.Sleepers() == 1 })
		clock.Advance(time.Minute)
		h.stop()

		calls := h.sink.callList()
		if len(calls) != 1 || !errors.Is(calls[0].Err, context.Canceled) {
			t.Fatalf("posts %+v, want one, cancelled at the drain deadline", calls)
		}
		if got := rep.all(); len(got) != 0 {
			t.Errorf("reports %+v, want none for a post cut short by the shutdown", got)
		}
		if h.d.Idle() {
			t.Errorf("Idle() = true, want the record still pending")
		}
		h.wantCounters(nil)
	})

	t.Run("rollouts", func(t *testing.T) {
		clock := newFakeClock()
		fake := newFakeRolloutSink(t)
		h := newRolloutHarness(t, RolloutsConfig{Workers: 1, DrainTimeout: time.Minute, BaseDelay: fastBase, MaxDelay: fastMax},
			map[string]*fakeRolloutSink{"slack": fake}, clock)
		fake.hold(func(rollout.Notification) bool { return true })
		h.start()
		h.d.Notify(ipWeb)
		eventually(t, "the notification is in flight", func() bool { return fake.held() == 1 })
		h.cancel()
		eventually(t, "the drain timer runs", func() bool { return clock.Sleepers() == 1 })
		clock.Advance(time.Minute)
		h.stop()

		if calls := fake.callList(); len(calls) != 1 || !errors.Is(calls[0].Err, context.Canceled) {
			t.Fatalf("notifications %+v, want one, cancelled at the drain deadline", calls)
		}
		if got := h.reporter.all(); got != nil {
			t.Errorf("reports %+v, want none for a notification cut short by the shutdown", got)
		}
		if h.d.Idle() {
			t.Errorf("Idle() = true, want the notification still pending")
		}
	})
}

// blockingCluster is a fake sink whose bulk request waits, like a job being polled, until it is released
// (then it accepts every record, as GitHub would, after whatever was posted meanwhile) or its context ends.
type blockingCluster struct {
	*fakeSink
	entered chan struct{} // closed when PostCluster is called
	release chan struct{}
	once    sync.Once
}

var _ sink.ClusterSink = (*blockingCluster)(nil)

func newBlockingCluster(s *fakeSink) *blockingCluster {
	return &blockingCluster{fakeSink: s, entered: make(chan struct{}), release: make(chan struct{})}
}

func (c *blockingCluster) PostCluster(ctx context.Context, recs []record.Record) ([]error, error) {
	c.once.Do(func() { close(c.entered) })
	results := make([]error, len(recs))
	select {
	case <-ctx.Done():
		for i := range results {
			results[i] = ctx.Err()
		}
		return results, ctx.Err()
	case <-c.release:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		c.current[r.Key()] = r
	}
	return results, nil
}

// TestBulkStopsOnShutdown: the shutdown stops a first sync's bulk request; what it did not deliver stays
// pending, and Start returns.
func TestBulkStopsOnShutdown(t *testing.T) {
	rep := &fakeReporter{}
	h := newHarness(t, Config{Workers: 1, DrainTimeout: time.Millisecond, BaseDelay: fastBase, MaxDelay: fastMax, Reporter: rep,
		FirstSync: func(context.Context) (bool, error) { return true, nil }}, nil)
	cs := newBlockingCluster(h.sink)
	h.d.cfg.Sink = cs
	h.sink.hold(func(record.Record) bool { return true }) // the drain cannot post them one by one either
	h.desire(dep("web", 1), dep("api", 1))
	h.start()
	<-cs.entered
	h.stop() // fails the test if the bulk request outlives the shutdown

	if got := h.sink.state(); len(got) != 0 {
		t.Errorf("sink state %+v, want nothing delivered", got)
	}
	for _, dn := range []string{"web", "api"} {
		if _, ok := h.d.Delivered(keyOf(dn)); ok {
			t.Errorf("%s counts as delivered", dn)
		}
	}
	if got := rep.all(); len(got) != 0 {
		t.Errorf("reports %+v, want none: the records stay pending in the ledger", got)
	}
}

// TestBulkDoesNotOverrideNewerDelivery: a bulk request still running when a newer record of one of its keys was
// delivered one by one does not override that delivery, in the dispatcher or in the ledger, and the newer
// record is posted once more, since the sink may have applied the bulk after it. Start runs the bulk before the
// workers, so the test plays the worker that delivers the newer record.
func TestBulkDoesNotOverrideNewerDelivery(t *testing.T) {
	rep := &fakeReporter{}
	h := newHarness(t, Config{Workers: 1, BaseDelay: fastBase, MaxDelay: fastMax, Reporter: rep,
		FirstSync: func(context.Context) (bool, error) { return true, nil }}, nil)
	cs := newBlockingCluster(h.sink)
	h.d.cfg.Sink = cs
	h.desire(dep("web", 1), dep("api", 1))
	h.start()
	<-cs.entered
	h.desire(dep("web", 2))
	h.d.deliver(t.Context(), keyOf("web"))
	if got := h.sink.state()[keyOf("web")]; !equal(got, dep("web", 2)) {
		t.Fatalf("sink holds %+v for web, want the newer record posted one by one", got)
	}
	close(cs.release) // the bulk now sets web to its older record
	h.waitIdle()

	if got, _ := h.d.Delivered(keyOf("web")); !equal(got, dep("web", 2)) {
		t.Errorf("Delivered(web) = %+v, want the newer record", got)
	}
	if got, _ := h.d.Delivered(keyOf("api")); !equal(got, dep("api", 1)) {
		t.Errorf("Delivered(api) = %+v, want the bulk's record", got)
	}
	want := map[record.Key]record.Record{keyOf("web"): dep("web", 2), keyOf("api"): dep("api", 1)}
	if diff := cmp.Diff(want, h.sink.state()); diff != "" {
		t.Errorf("sink state (-want +got):\n%s", diff)
	}
	var webDelivered []record.Record
	for _, r := range rep.all()["web"] {
		if r.Delivered {
			webDelivered = append(webDelivered, r.Rec)
		}
	}
	if diff := cmp.Diff([]record.Record{dep("web", 2), dep("web", 2)}, webDelivered, cmp.Comparer(equal)); diff != "" {
		t.Errorf("web deliveries reported (-want +got):\n%s", diff)
	}
}
