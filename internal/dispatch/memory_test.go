package dispatch

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

const mKeys = "deptracker_dispatch_keys"

// remembers reports whether d keeps what the sink holds for k: the record itself when it is deployed, nothing
// when it is a decommission (the key is forgotten).
func remembers(d *Dispatcher, k record.Key, holds record.Record) bool {
	got, ok := d.Delivered(k)
	if holds.Status == record.StatusDecommissioned {
		return !ok
	}
	return ok && equal(got, holds)
}

// keyState is the size of every per-key map of the dispatcher.
func keyState(d *Dispatcher) map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return map[string]int{
		"delivered": len(d.delivered), "pending": len(d.pending), "held": len(d.held), "unsure": len(d.unsure),
		"parked": len(d.parked), "recalled": len(d.recalled), "gen": len(d.gen),
	}
}

func emptyKeyState() map[string]int {
	return map[string]int{"delivered": 0, "pending": 0, "held": 0, "unsure": 0, "parked": 0, "recalled": 0, "gen": 0}
}

// TestChurnForgetsKeys: keys that are deployed and then decommissioned, as the pods of CI runners, ad-hoc Jobs
// and one-off bare pods are under names that never come back, leave nothing in the dispatcher's memory once
// their decommissions are delivered, and each got both records at the sink.
func TestChurnForgetsKeys(t *testing.T) {
	const keys = 2000
	tests := []struct {
		name string
		// together desires the decommission right after the deployed record, before the deployed record is
		// delivered (a pod shorter-lived than a post).
		together bool
	}{
		{name: "deployed, delivered, then decommissioned"},
		{name: "deployed and decommissioned before the first post", together: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{Workers: 8}, nil)
			h.start()
			for wave := range 2 {
				dn := func(i int) string { return fmt.Sprintf("ci/runner-%d-%05d/job", wave, i) }
				for i := range keys {
					h.desire(dep(dn(i), 1))
					if tt.together {
						h.desire(dec(dn(i), 1))
					}
				}
				if !tt.together {
					h.waitIdle()
					if got := h.metricValues(mKeys)[mKeys]; got != keys {
						t.Errorf("wave %d: %s = %v with every key deployed, want %d", wave, mKeys, got, keys)
					}
					for i := range keys {
						h.desire(dec(dn(i), 1))
					}
				}
				h.waitIdle()
				if diff := cmp.Diff(emptyKeyState(), keyState(h.d)); diff != "" {
					t.Errorf("wave %d: per-key state after the churn (-want +got):\n%s", wave, diff)
				}
				if got := h.metricValues(mKeys)[mKeys]; got != 0 {
					t.Errorf("wave %d: %s = %v, want 0", wave, mKeys, got)
				}
			}
			// Nothing lost: each key got its deployed record, then its decommission.
			byKey := map[string][]record.Status{}
			for _, r := range h.sink.posted(nil) {
				byKey[r.DeploymentName] = append(byKey[r.DeploymentName], r.Status)
			}
			if len(byKey) != 2*keys {
				t.Errorf("%d keys posted, want %d", len(byKey), 2*keys)
			}
			want := []record.Status{record.StatusDeployed, record.StatusDecommissioned}
			for dn, got := range byKey {
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("posts of %s (-want +got):\n%s", dn, diff)
				}
			}
		})
	}
}

// TestForgottenKeyComesBack: a key forgotten after its decommission behaves as one never delivered: deployed
// again, even with the same digest, it is posted again; a decommission of it alone posts nothing.
func TestForgottenKeyComesBack(t *testing.T) {
	h := newHarness(t, Config{Workers: 2}, nil)
	h.start()
	h.desire(dep("web", 1))
	h.waitIdle()
	h.desire(dec("web", 1))
	h.waitIdle()
	if _, ok := h.d.Delivered(keyOf("web")); ok {
		t.Fatal("Delivered(web) after its decommission: the key is not forgotten")
	}
	h.desire(dec("web", 1)) // again: nothing deployed to end
	h.waitIdle()
	h.desire(dep("web", 1)) // the same digest, back
	h.waitIdle()
	if !remembers(h.d, keyOf("web"), dep("web", 1)) {
		t.Errorf("Delivered(web) does not hold the digest deployed again")
	}
	h.desire(dep("web", 1)) // what the sink holds: no call
	h.desire(dec("web", 1))
	h.waitIdle()
	want := []record.Record{dep("web", 1), dec("web", 1), dep("web", 1), dec("web", 1)}
	if diff := cmp.Diff(want, h.sink.posted(nil), cmp.Comparer(equal)); diff != "" {
		t.Errorf("posts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(emptyKeyState(), keyState(h.d)); diff != "" {
		t.Errorf("per-key state (-want +got):\n%s", diff)
	}
}

// TestSeedKeepsNoDecommission: the ledger's decommissioned records, seeded after a restart, are not kept.
func TestSeedKeepsNoDecommission(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	for i := range 100 {
		h.d.Seed(dec(fmt.Sprintf("ci/job-%d/app", i), 1))
	}
	h.d.Seed(dep("web", 1))
	if got := keyState(h.d)["delivered"]; got != 1 {
		t.Errorf("%d keys kept after seeding 100 decommissions and one deployed record, want 1", got)
	}
	if got := h.metricValues(mKeys)[mKeys]; got != 1 {
		t.Errorf("%s = %v, want 1", mKeys, got)
	}
	// A seeded decommission still costs no call when desired again.
	h.start()
	h.desire(dec("ci/job-1/app", 1), dep("web", 1))
	h.waitIdle()
	if n := h.sink.numCalls(); n != 0 {
		t.Errorf("%d posts, want none", n)
	}
}

// TestBulkKeepsDecommissions: while a bulk delivery runs, a delivered decommission is kept (the bulk tells
// from it what the sink must end with), and forgotten when the bulk ends.
func TestBulkKeepsDecommissions(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	k := keyOf("web")
	h.d.mu.Lock()
	h.d.bulkStarted()
	h.d.gen[k]++
	h.d.remember(k, dec("web", 1))
	h.d.mu.Unlock()
	if r, ok := h.d.Delivered(k); !ok || !equal(r, dec("web", 1)) {
		t.Errorf("Delivered(web) = %+v, %t while the bulk runs; want the decommission kept", r, ok)
	}
	h.d.bulkDone()
	if diff := cmp.Diff(emptyKeyState(), keyState(h.d)); diff != "" {
		t.Errorf("per-key state after the bulk (-want +got):\n%s", diff)
	}
}

// TestDecommissionOfUnacceptedKeyReported: a key whose deployed record the sink never accepted (a 422) is
// decommissioned: nothing is posted, and the decommission is reported delivered, so that the ledger shows the
// key synced and its retention ends it instead of keeping it forever.
func TestDecommissionOfUnacceptedKeyReported(t *testing.T) {
	rep := &fakeReporter{}
	h := newHarness(t, Config{Workers: 1, BaseDelay: fastBase, MaxDelay: fastMax, Reporter: rep}, nil)
	h.sink.fail(forKey("web"), &sink.PermanentError{StatusCode: 422, Message: "Validation Failed"})
	h.start()
	h.desire(dep("web", 1))
	h.waitIdle()
	gone := dep("web", 1)
	gone.Status = record.StatusDecommissioned
	h.desire(gone)
	h.waitIdle()
	if got := h.sink.posted(forKey("web")); len(got) != 1 {
		t.Errorf("web posted %d times, want once (the rejected deployed record; nothing to decommission)", len(got))
	}
	reports := rep.all()["web"]
	if n := len(reports); n == 0 || !reports[n-1].Delivered || reports[n-1].Rec.Status != record.StatusDecommissioned {
		t.Errorf("reports of web %+v, want the decommission reported delivered last", reports)
	}
}
