package dispatch

import (
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// remember records r as what the sink holds for k, once the sink accepted it (or the ledger says it did). A
// decommission is not kept: the key is forgotten instead. Workloads with unique names (CI runner pods, ad-hoc
// Jobs, one-off bare pods) each bring keys that never come back, and keeping their decommissions would grow
// the dispatcher with every one of them.
//
// Forgetting changes no decision: a key without a delivered record and a key whose delivered record is a
// decommission are alike everywhere it is read. Desire posts a deployed record in both cases (the same
// digest deployed again is posted again) and drops a decommission in both (nothing deployed to end);
// target decommissions the record's own digest in both; dropFirst drops a decommission left at the head in
// both. Delivered reports a forgotten key as not delivered.
//
// The one reader that needs more is a running bulk delivery: it tells from gen whether a key was posted one
// by one since it took the key's record, and then posts again what the sink last accepted. While one runs,
// decommissions are kept, and bulkDone forgets them.
//
// Callers hold d.mu.
func (d *Dispatcher) remember(k record.Key, r record.Record) {
	switch {
	case r.Status != record.StatusDecommissioned || d.bulking > 0:
		d.delivered[k] = r
	default:
		d.forget(k)
	}
	d.countKeys()
}

// forget drops what the dispatcher keeps of k once the sink holds its decommission. Callers hold d.mu.
func (d *Dispatcher) forget(k record.Key) {
	delete(d.delivered, k)
	delete(d.gen, k) // read by a bulk delivery only, and none runs (remember)
}

// bulkStarted marks a bulk delivery as running, until bulkDone. Callers hold d.mu, in the same critical
// section as the bulk's reading of gen.
func (d *Dispatcher) bulkStarted() { d.bulking++ }

// bulkDone ends a bulk delivery and forgets the decommissions remember kept meanwhile.
func (d *Dispatcher) bulkDone() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bulking--; d.bulking > 0 {
		return
	}
	for k, r := range d.delivered {
		if r.Status == record.StatusDecommissioned {
			d.forget(k)
		}
	}
	d.countKeys()
}

// countKeys sets deptracker_dispatch_keys. Callers hold d.mu.
func (d *Dispatcher) countKeys() {
	d.count(func(m *metrics.Metrics) { m.DispatchKeys.Set(float64(len(d.delivered))) })
}
