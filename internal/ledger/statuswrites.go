package ledger

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// StatusWrites records the outcomes of posts (Delivered, Failed) in the ledger's status without holding the
// poster: the dispatcher's few workers post one record after the other while the status writes run beside
// them, concurrently across keys. The outcomes of one key are written in the order they were reported; those
// that arrive while a key is written are written together, in one read and one update. A write that fails is
// tried again with backoff. It implements the dispatcher's Reporter.
//
// Losing a status write costs one post, never a record: the spec is written before a record is posted (by the
// tracker), and a record whose status does not show it accepted is posted again after a restart.
type StatusWrites struct {
	ledger *Ledger
	log    logr.Logger
	queue  workqueue.TypedRateLimitingInterface[record.Key]

	mu       sync.Mutex
	pending  map[record.Key][]statusChange // per key, the outcomes not written yet, in order
	inflight map[record.Key]bool
	waiters  []chan struct{}
}

// NewStatusWrites returns the status writes of l; Run writes them.
func NewStatusWrites(l *Ledger, log logr.Logger) *StatusWrites {
	return &StatusWrites{
		ledger: l, log: log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[record.Key](50*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[record.Key]{Name: "ledger-status-writes"}),
		pending: map[record.Key][]statusChange{}, inflight: map[record.Key]bool{},
	}
}

// Delivered queues the record that the sink accepted r (Ledger.Delivered).
func (w *StatusWrites) Delivered(_ context.Context, r record.Record) {
	w.add(r.Key(), w.ledger.delivered(r))
}

// Failed queues the record of a failed post of r (Ledger.Failed).
func (w *StatusWrites) Failed(_ context.Context, r record.Record, postErr error, attempts int, next time.Time) {
	w.add(r.Key(), w.ledger.failed(r, postErr, attempts, next))
}

func (w *StatusWrites) add(k record.Key, c statusChange) {
	w.mu.Lock()
	w.pending[k] = append(w.pending[k], c)
	w.mu.Unlock()
	w.queue.Add(k)
}

// Run writes with n workers until ctx is done; what is not written by then is dropped (see StatusWrites).
func (w *StatusWrites) Run(ctx context.Context, n int) {
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

func (w *StatusWrites) next(ctx context.Context) bool {
	k, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(k)
	w.mu.Lock()
	changes := w.pending[k]
	delete(w.pending, k)
	if len(changes) > 0 {
		w.inflight[k] = true
	}
	w.mu.Unlock()
	if len(changes) == 0 {
		return true
	}
	err := w.ledger.status(ctx, k, changes...)
	// Gone (the record was deleted by the retention, or never written): nothing to report on.
	retry := err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil
	if retry {
		w.log.Error(err, "Cannot record the outcome of a post in the ledger; retrying", "deploymentName", k.DeploymentName)
		w.queue.AddRateLimited(k)
	} else {
		w.queue.Forget(k)
	}
	w.mu.Lock()
	delete(w.inflight, k)
	if retry {
		w.pending[k] = append(changes, w.pending[k]...) // before those reported since: the order is kept
	}
	idle := len(w.pending) == 0 && len(w.inflight) == 0
	var waiters []chan struct{}
	if idle {
		waiters, w.waiters = w.waiters, nil
	}
	w.mu.Unlock()
	for _, c := range waiters {
		close(c)
	}
	return true
}

// Wait returns once every outcome reported so far is written (or dropped), or when ctx is done.
func (w *StatusWrites) Wait(ctx context.Context) error {
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
