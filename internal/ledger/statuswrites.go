package ledger

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/deployment-tracker/deployment-tracker/internal/keyed"
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
	writes *keyed.Writes[record.Key, []statusChange]
}

// NewStatusWrites returns the status writes of l; Run writes them.
func NewStatusWrites(l *Ledger, log logr.Logger) *StatusWrites {
	w := &StatusWrites{ledger: l, log: log}
	inOrder := func(queued, next []statusChange) []statusChange { return append(queued, next...) }
	w.writes = keyed.New("ledger-status-writes", inOrder, w.write, nil)
	return w
}

// Delivered queues the record that the sink accepted r (Ledger.Delivered).
func (w *StatusWrites) Delivered(_ context.Context, r record.Record) {
	w.writes.Add(r.Key(), []statusChange{w.ledger.delivered(r)})
}

// Failed queues the record of a failed post of r (Ledger.Failed).
func (w *StatusWrites) Failed(_ context.Context, r record.Record, postErr error, attempts int, next time.Time) {
	w.writes.Add(r.Key(), []statusChange{w.ledger.failed(r, postErr, attempts, next)})
}

// Run writes with n workers until ctx is done; what is not written by then is dropped (see StatusWrites).
func (w *StatusWrites) Run(ctx context.Context, n int) { w.writes.Run(ctx, n) }

// Wait returns once every outcome reported so far is written (or dropped), or when ctx is done.
func (w *StatusWrites) Wait(ctx context.Context) error { return w.writes.Wait(ctx) }

// write applies changes to k's status in one write; it reports whether to try them again.
func (w *StatusWrites) write(ctx context.Context, k record.Key, changes []statusChange) bool {
	err := w.ledger.status(ctx, k, changes...)
	// Gone (the record was deleted by the retention, or never written): nothing to report on.
	if err == nil || apierrors.IsNotFound(err) || ctx.Err() != nil {
		return false
	}
	w.log.Error(err, "Cannot record the outcome of a post in the ledger; retrying", "deploymentName", k.DeploymentName)
	return true
}
