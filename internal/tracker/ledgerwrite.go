package tracker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"

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
	queue   workqueue.TypedRateLimitingInterface[record.Key]

	mu       sync.Mutex
	pending  map[record.Key]decision // the newest decision of each key that is not being written
	inflight map[record.Key]bool     // keys being written
	waiters  []chan struct{}         // closed once nothing is pending or in flight
}

func newLedgerWrites(l Ledger, d Desirer, m *metrics.Metrics, log logr.Logger, now func() time.Time,
	refused func(decision, error)) *ledgerWrites {
	return &ledgerWrites{
		ledger: l, desirer: d, metrics: m, log: log, now: now, refused: refused,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[record.Key](50*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[record.Key]{Name: "ledger-writes"}),
		pending: map[record.Key]decision{}, inflight: map[record.Key]bool{},
	}
}

// add queues d, replacing the decision of its key that is not being written yet.
func (w *ledgerWrites) add(d decision) {
	k := d.rec.Key()
	w.mu.Lock()
	w.pending[k] = d
	w.metrics.LedgerWritesPending.Set(float64(len(w.pending) + len(w.inflight)))
	w.mu.Unlock()
	w.queue.Add(k)
}

// run writes with n workers until ctx is done. Decisions not written by then are left to the next leader,
// which decides them again from the pods and the ledger.
func (w *ledgerWrites) run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for w.next(ctx) {
			}
		})
	}
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
}

// next writes the newest decision of the next key; false once the queue is shut down.
func (w *ledgerWrites) next(ctx context.Context) bool {
	k, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(k)
	w.mu.Lock()
	d, ok := w.pending[k]
	if ok {
		delete(w.pending, k)
		w.inflight[k] = true
	}
	w.mu.Unlock()
	if !ok {
		return true // written already, with a newer decision that arrived while it waited
	}
	err := w.ledger.Put(ctx, d.rec, d.meta)
	older := errors.Is(err, ledger.ErrOlder)
	// The API server refusing the object itself is final; the tracker validates records first, so this is a
	// defect to see in the log, not a write to repeat every 30 s.
	invalid := apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)
	retry := err != nil && !older && !invalid && ctx.Err() == nil
	// The outcome is handed on while the key still counts as in flight, so that wait returns after it.
	switch {
	case retry:
		w.metrics.LedgerWriteFailures.Inc()
		w.log.Error(err, "Cannot write a decision to the ledger; retrying", "deploymentName", d.rec.DeploymentName, "workload", d.workload)
		w.queue.AddRateLimited(k)
	case err == nil || (older && d.desireOlder):
		w.queue.Forget(k)
		w.metrics.LedgerWriteSeconds.Observe(w.now().Sub(d.decided).Seconds())
		desireDecision(w.desirer, d)
	case older:
		w.queue.Forget(k)
		w.refused(d, err)
	case invalid:
		w.queue.Forget(k)
		w.metrics.LedgerWriteFailures.Inc()
		w.log.Error(err, "The API server refuses this ledger record; not recorded", "deploymentName", d.rec.DeploymentName, "workload", d.workload)
	}
	w.mu.Lock()
	delete(w.inflight, k)
	if _, newer := w.pending[k]; retry && !newer {
		w.pending[k] = d
	}
	w.metrics.LedgerWritesPending.Set(float64(len(w.pending) + len(w.inflight)))
	w.mu.Unlock()
	w.notifyIdle()
	return true
}

// notifyIdle wakes the waiters once nothing is pending or in flight.
func (w *ledgerWrites) notifyIdle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 || len(w.inflight) > 0 {
		return
	}
	for _, c := range w.waiters {
		close(c)
	}
	w.waiters = nil
}

// wait returns once every decision queued so far, and any queued meanwhile, is written (or refused), or when
// ctx is done.
func (w *ledgerWrites) wait(ctx context.Context) error {
	w.mu.Lock()
	if len(w.pending) == 0 && len(w.inflight) == 0 {
		w.mu.Unlock()
		return nil
	}
	c := make(chan struct{})
	w.waiters = append(w.waiters, c)
	w.mu.Unlock()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
