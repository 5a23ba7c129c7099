package app

import (
	"context"
	"time"

	"github.com/go-logr/logr"

	"github.com/deployment-tracker/deployment-tracker/internal/dispatch"
	"github.com/deployment-tracker/deployment-tracker/internal/ledger"
)

// statusWriters is how many ledger status writes run at once beside the record dispatcher's workers.
const statusWriters = 8

// reportingDispatcher runs the record dispatcher with its ledger status writes (ledger.StatusWrites): they
// start before it and stop after its drain, so that the outcomes of the last posts are written too, within the
// part of the shutdown budget the drain leaves (flush).
type reportingDispatcher struct {
	*dispatch.Dispatcher
	writes *ledger.StatusWrites
	flush  time.Duration
	log    logr.Logger
}

func (r reportingDispatcher) Start(ctx context.Context) error {
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	written := make(chan struct{})
	go func() {
		defer close(written)
		r.writes.Run(wctx, statusWriters)
	}()
	err := r.Dispatcher.Start(ctx)
	fctx, cancel := context.WithTimeout(wctx, r.flush)
	if werr := r.writes.Wait(fctx); werr != nil {
		r.log.Info("Outcomes of the last posts not recorded in the ledger before the shutdown budget ran out; "+
			"their records are posted again by the next leader", "waited", r.flush)
	}
	cancel()
	stop()
	<-written
	return err
}

// statusFlush is how long the status writes may finish after the drain: half of what the shutdown budget
// keeps beyond it, so that the manager's grace period is not exceeded.
func statusFlush(shutdown, drain time.Duration) time.Duration {
	return max((shutdown-drain)/2, 100*time.Millisecond)
}
