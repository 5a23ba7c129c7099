package tracker

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/deployment-tracker/deployment-tracker/internal/keyed"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// DefaultLedgerWriters is how many ledger writes run at once by default.
const DefaultLedgerWriters = 8

// decision is a record the tracker decided, to be written to the ledger and then handed to the Desirer.
type decision struct {
	rec       record.Record
	meta      ledger.Meta
	workload  owner.Workload
	container string
	decided   time.Time
	// refusal is what the workload remembers when the ledger refuses the decision as older; prev and
	// prevRevision what it desired before, restored then (prev nil: nothing).
	refusal      refusal
	prev         *record.Record
	prevRevision int64
	// desireOlder hands the record on even when the ledger refuses it as older: another holder's record
	// desired again when a colliding workload goes.
	desireOlder bool
}

// EphemeralDesirer is a Desirer that can queue the records of ephemeral workloads behind the others (the
// dispatcher), so that churn never delays the records of long-lived workloads.
type EphemeralDesirer interface {
	DesireEphemeral(r record.Record, observed time.Time)
}

// ephemeral reports whether w is a workload with a unique name that comes and goes: a bare pod, or a Job that
// no CronJob owns (its pods' workload would be the CronJob).
func ephemeral(w owner.Workload) bool {
	return (w.Group == "" && w.Kind == "Pod") || (w.Group == "batch" && w.Kind == "Job")
}

// desireDecision hands d's record to desirer, behind the others when its workload is ephemeral.
func desireDecision(desirer Desirer, d decision) {
	if e, ok := desirer.(EphemeralDesirer); ok && ephemeral(d.workload) {
		e.DesireEphemeral(d.rec, d.decided)
		return
	}
	desirer.Desire(d.rec, d.decided)
}

// ledgerWrites writes the tracker's decisions to the ledger outside the tracker's lock, so that a burst is
// recorded at the rate of the API server, not of one write after the other: writes of different keys run
// concurrently, those of one key one at a time and coalesced (a decision not written yet is replaced by a
// newer one of its key), and a decision is handed to the Desirer once it is written — the sinks never hear of
// a decision the ledger does not hold. A write that fails is retried with backoff until it succeeds or a newer
// decision of its key replaces it: nothing decided is dropped while the tracker leads.
type ledgerWrites struct {
	ledger  Ledger
	desirer Desirer
	metrics *metrics.Metrics
	log     logr.Logger
	now     func() time.Time
	// refused is told of a decision the ledger refused as older (ledger.ErrOlder).
	refused func(d decision, err error)
	writes  *keyed.Writes[record.Key, decision]
}

func newLedgerWrites(l Ledger, d Desirer, m *metrics.Metrics, log logr.Logger, now func() time.Time,
	refused func(decision, error)) *ledgerWrites {
	w := &ledgerWrites{ledger: l, desirer: d, metrics: m, log: log, now: now, refused: refused}
	newest := func(_, next decision) decision { return next }
	w.writes = keyed.New("ledger-writes", newest, w.write, func(n int) { m.LedgerWritesPending.Set(float64(n)) })
	return w
}

// add queues d, replacing the decision of its key that is not being written yet.
func (w *ledgerWrites) add(d decision) { w.writes.Add(d.rec.Key(), d) }

// run writes with n workers until ctx is done. Decisions not written by then are left to the next leader,
// which decides them again from the pods and the ledger.
func (w *ledgerWrites) run(ctx context.Context, n int) { w.writes.Run(ctx, n) }

// wait returns once every decision queued so far, and any queued meanwhile, is written (or refused), or when
// ctx is done.
func (w *ledgerWrites) wait(ctx context.Context) error { return w.writes.Wait(ctx) }

// write writes decision d and hands on the outcome; it reports whether to write d again.
func (w *ledgerWrites) write(ctx context.Context, _ record.Key, d decision) bool {
	err := w.ledger.Put(ctx, d.rec, d.meta)
	older := errors.Is(err, ledger.ErrOlder)
	// The API server refusing the object itself is final; the tracker validates records first, so this is a
	// defect to see in the log, not a write to repeat every 30 s.
	invalid := apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)
	switch {
	case err != nil && !older && !invalid:
		if ctx.Err() != nil {
			return false // the tracker stops leading: left to the next leader
		}
		w.metrics.LedgerWriteFailures.Inc()
		w.log.Error(err, "Cannot write a decision to the ledger; retrying", "deploymentName", d.rec.DeploymentName, "workload", d.workload)
		return true
	case err == nil || (older && d.desireOlder):
		w.metrics.LedgerWriteSeconds.Observe(w.now().Sub(d.decided).Seconds())
		desireDecision(w.desirer, d)
	case older:
		w.refused(d, err)
	case invalid:
		w.metrics.LedgerWriteFailures.Inc()
		w.log.Error(err, "The API server refuses this ledger record; not recorded", "deploymentName", d.rec.DeploymentName, "workload", d.workload)
	}
	return false
}
