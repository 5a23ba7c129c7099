package dispatch

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// defaults fills the settings both dispatchers share: workers, the backoff bounds, the drain timeout, the clock
// and the logger.
func defaults(workers *int, base, maxDelay, drain *time.Duration, now *func() time.Time, log *logr.Logger) {
	if *workers <= 0 {
		*workers = 2
	}
	if *base <= 0 {
		*base = time.Second
	}
	if *maxDelay <= 0 {
		*maxDelay = 5 * time.Minute
	}
	if *maxDelay < *base {
		*maxDelay = *base
	}
	if *drain <= 0 {
		*drain = 20 * time.Second
	}
	if *now == nil {
		*now = time.Now
	}
	if log.GetSink() == nil {
		*log = logr.Discard()
	}
}

// backoff is the delay the workqueue's exponential rate limiter (base, maxDelay) applies after n failures.
func backoff(n int, base, maxDelay time.Duration) time.Duration {
	delay := base
	for i := 0; i < n && delay < maxDelay; i++ {
		delay *= 2
	}
	return min(delay, maxDelay)
}

// pool is what runWorkers needs of a dispatcher.
type pool struct {
	workers int
	// process handles one queue item; false once the queue is shut down.
	process func(ctx context.Context) bool
	idle    func() bool
	pending func() int
	emptied <-chan struct{} // signalled when nothing is pending any more
	// shutdown shuts the queue down, so that process returns false.
	shutdown func()
	sleep    func(ctx context.Context, d time.Duration) error
	timeout  time.Duration
	log      logr.Logger
	what     string // "records", "rollout notifications"
}

// runWorkers runs p's workers with workCtx until ctx is cancelled, then keeps them going until nothing is
// pending or the drain timeout has passed, whichever comes first; then it cancels workCtx (cancel) and waits
// for the workers. workCtx must not be cancelled with ctx, so that the drain can still deliver.
func runWorkers(ctx, workCtx context.Context, cancel context.CancelFunc, p pool) {
	var wg sync.WaitGroup
	for range p.workers {
		wg.Go(func() {
			for p.process(workCtx) {
			}
		})
	}
	<-ctx.Done()

	p.log.Info("Draining "+p.what, "pending", p.pending(), "timeout", p.timeout)
	timerCtx, stopTimer := context.WithCancel(context.Background())
	defer stopTimer()
	timeout := make(chan struct{})
	go func() {
		if p.sleep(timerCtx, p.timeout) == nil {
			close(timeout)
		}
	}()
drain:
	for !p.idle() {
		select {
		case <-p.emptied:
		case <-timeout:
			p.log.Info("Drain timeout; "+p.what+" left undelivered", "pending", p.pending())
			break drain
		}
	}
	cancel()
	p.shutdown()
	wg.Wait()
}

// cutShort reports whether err is the cancellation of ctx, the posts' context, at the drain deadline: the post
// was cut short by the shutdown, and nothing is known of it. Such a post is not reported (the ledger would
// record "context canceled" as its last error): it stays pending as it was, for the next leader to post.
func cutShort(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled)
}
