package dispatch

import (
	"slices"
	"testing"
	"time"
)

// TestEphemeralWaitsBehind: while a post is held, records of ephemeral workloads (DesireEphemeral) queue up
// first, then one of a long-lived workload: that one is posted next, before the churn.
func TestEphemeralWaitsBehind(t *testing.T) {
	h := newHarness(t, Config{Workers: 1, BaseDelay: fastBase, MaxDelay: fastMax}, nil)
	release := h.sink.hold(forRecord(dep("first", 1)))
	h.start()
	h.desire(dep("first", 1))
	eventually(t, "the first post in flight", func() bool { return h.sink.held() == 1 })
	for _, dn := range []string{"ci-1", "ci-2", "ci-3", "ci-4"} {
		h.d.DesireEphemeral(dep(dn, 1), time.Now())
	}
	h.desire(dep("web", 1))
	release()
	h.waitIdle()
	var order []string
	for _, c := range h.sink.callList() {
		order = append(order, c.Rec.DeploymentName)
	}
	i := slices.Index(order, dep("web", 1).DeploymentName)
	if i != 1 {
		t.Errorf("posts in the order %v, want web right after the first, before the ephemeral ones", order)
	}
	if len(order) != 6 {
		t.Errorf("%d posts, want 6: every record posted once", len(order))
	}
	for _, dn := range []string{"ci-1", "ci-2", "ci-3", "ci-4"} {
		r := dep(dn, 1)
		if _, ok := h.d.Delivered(r.Key()); !ok {
			t.Errorf("%s not delivered", dn)
		}
	}
}
