// Package keyed runs writes keyed by K beside their callers: concurrently across keys, one at a time per key,
// the values queued for a key while it waits or is written merged into one, and a write that asks to be
// retried written again with backoff. The tracker's ledger writes and the ledger's status writes use it.
package keyed

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// Writes queues values by key and writes them with Run's workers.
type Writes[K comparable, V any] struct {
	// merge combines a value still queued for a key (queued) with one added after it (next).
	merge func(queued, next V) V
	// write writes v for k and reports whether to try it again later; it hands on the outcome itself.
	write func(ctx context.Context, k K, v V) (retry bool)
	// pending, if set, is told how many keys are queued or being written after each change.
	pending func(n int)
	queue   workqueue.TypedRateLimitingInterface[K]

	mu       sync.Mutex
	queued   map[K]V         // per key, what waits to be written
	inflight map[K]bool      // keys being written
	waiters  []chan struct{} // closed once nothing is queued or in flight
}

// New returns the writes named name (the workqueue's metrics). pending may be nil.
func New[K comparable, V any](name string, merge func(queued, next V) V, write func(ctx context.Context, k K, v V) bool,
	pending func(n int)) *Writes[K, V] {
	return &Writes[K, V]{
		merge: merge, write: write, pending: pending,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[K](50*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[K]{Name: name}),
		queued: map[K]V{}, inflight: map[K]bool{},
	}
}

// Add queues v for k, merged with what waits for k already.
func (w *Writes[K, V]) Add(k K, v V) {
	w.mu.Lock()
	if q, ok := w.queued[k]; ok {
		v = w.merge(q, v)
	}
	w.queued[k] = v
	w.report()
	w.mu.Unlock()
	w.queue.Add(k)
}

// Run writes with n workers until ctx is done; what is not written by then is dropped.
func (w *Writes[K, V]) Run(ctx context.Context, n int) {
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

// next writes what waits for the next key; false once the queue is shut down.
func (w *Writes[K, V]) next(ctx context.Context) bool {
	k, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(k)
	w.mu.Lock()
	v, ok := w.queued[k]
	if ok {
		delete(w.queued, k)
		w.inflight[k] = true
	}
	w.mu.Unlock()
	if !ok {
		return true // written already, with what arrived while it waited
	}
	// The write hands its outcome on while the key still counts as in flight, so that Wait returns after it.
	retry := w.write(ctx, k, v) && ctx.Err() == nil
	if retry {
		w.queue.AddRateLimited(k)
	} else {
		w.queue.Forget(k)
	}
	w.mu.Lock()
	delete(w.inflight, k)
	if retry {
		if later, ok := w.queued[k]; ok {
			v = w.merge(v, later)
		}
		w.queued[k] = v
	}
	w.report()
	var waiters []chan struct{}
	if len(w.queued) == 0 && len(w.inflight) == 0 {
		waiters, w.waiters = w.waiters, nil
	}
	w.mu.Unlock()
	for _, c := range waiters {
		close(c)
	}
	return true
}

// report tells pending how many keys are queued or in flight. Callers hold w.mu.
func (w *Writes[K, V]) report() {
	if w.pending != nil {
		w.pending(len(w.queued) + len(w.inflight))
	}
}

// Wait returns once everything added so far, and anything added meanwhile, is written (or dropped), or when
// ctx is done.
func (w *Writes[K, V]) Wait(ctx context.Context) error {
	w.mu.Lock()
	if len(w.queued) == 0 && len(w.inflight) == 0 {
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
