// Package dispatch delivers records to a sink: a rate-limited workqueue keyed by record key, so that a key is
// never posted by two workers at once and a burst of pods of one workload collapses into one call, drained by N
// workers with backoff, Retry-After pauses and client-side pacing below the API's secondary rate limits.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// Config configures a Dispatcher.
type Config struct {
	// Sink receives the records.
	Sink sink.Sink
	// Workers is the number of concurrent posts (default 2).
	Workers int
	// RequestsPerMinute and RequestsPerHour pace posts below the sink's secondary rate limits; 0 disables.
	RequestsPerMinute int
	RequestsPerHour   int
	// BaseDelay and MaxDelay bound the exponential backoff of retryable failures (defaults 1s and 5m).
	BaseDelay, MaxDelay time.Duration
	// UnknownArtifactTTL is how long a 404 for an artifact digest is remembered (default 1h).
	UnknownArtifactTTL time.Duration
	// DrainTimeout is how long queued records may still be posted after the context is cancelled (default 20s).
	DrainTimeout time.Duration
	// Metrics, if set, receives the deptracker_post_* counters.
	Metrics *metrics.Metrics
	// Log is the logger; default: discard.
	Log logr.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Dispatcher holds, per record key, the records still to deliver and the record last delivered, and drains
// them to the sink. Desire is safe to call from any goroutine and never blocks on I/O.
type Dispatcher struct {
	cfg   Config
	queue workqueue.TypedRateLimitingInterface[record.Key]

	mu        sync.Mutex
	pending   map[record.Key][]item
	delivered map[record.Key]record.Record
	unknown   map[artifact]time.Time // 404 negative cache: artifact → expiry
	pauseTill time.Time              // no post before this (Retry-After)

	minute, hour *rate.Limiter
}

type item struct {
	rec   record.Record
	since time.Time // when the transition was observed; for the latency histogram
}

type artifact struct{ name, digest string }

// New validates cfg, fills its defaults and returns a Dispatcher; call Start to run the workers.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Sink == nil {
		return nil, errors.New("dispatch: no sink")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = time.Second
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 5 * time.Minute
	}
	if cfg.UnknownArtifactTTL <= 0 {
		cfg.UnknownArtifactTTL = time.Hour
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 20 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	d := &Dispatcher{
		cfg: cfg,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[record.Key](cfg.BaseDelay, cfg.MaxDelay),
			workqueue.TypedRateLimitingQueueConfig[record.Key]{Name: "deployment_records"}),
		pending:   map[record.Key][]item{},
		delivered: map[record.Key]record.Record{},
		unknown:   map[artifact]time.Time{},
	}
	if cfg.RequestsPerMinute > 0 {
		d.minute = rate.NewLimiter(rate.Limit(float64(cfg.RequestsPerMinute)/60), cfg.RequestsPerMinute)
	}
	if cfg.RequestsPerHour > 0 {
		d.hour = rate.NewLimiter(rate.Limit(float64(cfg.RequestsPerHour)/3600), cfg.RequestsPerHour)
	}
	return d, nil
}

// Desire asks for r to become the state of its key at the sink. Records of one key are delivered in order;
// a newer deployed record replaces any not yet delivered, and a decommissioned record is kept after a pending
// deployed one, so that a short-lived workload is still recorded as deployed and then decommissioned.
// observed is when the transition happened (for the latency metric).
func (d *Dispatcher) Desire(r record.Record, observed time.Time) {
	k := r.Key()
	d.mu.Lock()
	pend := d.pending[k]
	last, haveLast := d.delivered[k]
	if n := len(pend); n > 0 {
		last, haveLast = pend[n-1].rec, true
	}
	if haveLast && equal(last, r) {
		d.mu.Unlock()
		return
	}
	switch r.Status {
	case record.StatusDeployed:
		pend = pend[:0]
		if del, ok := d.delivered[k]; ok && equal(del, r) {
			break // back to what the sink already has: nothing to send
		}
		pend = append(pend, item{rec: r, since: observed})
	case record.StatusDecommissioned:
		if !haveLast || last.Status != record.StatusDeployed {
			d.mu.Unlock()
			return // nothing was deployed under this key: nothing to decommission
		}
		pend = append(pend, item{rec: r, since: observed})
	}
	if len(pend) == 0 {
		delete(d.pending, k)
	} else {
		d.pending[k] = pend
	}
	d.updateGauges()
	d.mu.Unlock()
	d.queue.Add(k)
}

// Delivered returns the record the sink last accepted for k.
func (d *Dispatcher) Delivered(k record.Key) (record.Record, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.delivered[k]
	return r, ok
}

// Idle reports whether nothing is waiting to be delivered.
func (d *Dispatcher) Idle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending) == 0
}

// NeedLeaderElection makes the Dispatcher run on the elected leader only: only the leader posts.
func (d *Dispatcher) NeedLeaderElection() bool { return true }

// Start runs the workers until ctx is cancelled, then stops taking new work and drains the queue for up to
// DrainTimeout. It implements controller-runtime's manager.Runnable.
func (d *Dispatcher) Start(ctx context.Context) error {
	// Posts get their own context so that the drain after cancellation can still deliver; it is cancelled when
	// the drain deadline passes.
	postCtx, cancelPosts := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPosts()
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d.processNext(postCtx) {
			}
		}()
	}
	<-ctx.Done()
	d.cfg.Log.Info("Draining delivery queue", "queued", d.queue.Len(), "timeout", d.cfg.DrainTimeout)
	drained := make(chan struct{})
	go func() {
		d.queue.ShutDownWithDrain()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(d.cfg.DrainTimeout):
		d.cfg.Log.Info("Drain timeout; records left undelivered", "queued", d.queue.Len())
		cancelPosts()
		d.queue.ShutDown()
	}
	wg.Wait()
	return nil
}

func (d *Dispatcher) processNext(ctx context.Context) bool {
	k, shutdown := d.queue.Get()
	if shutdown {
		return false
	}
	defer d.queue.Done(k)
	if d.cfg.Metrics != nil {
		d.cfg.Metrics.QueueDepth.Set(float64(d.queue.Len()))
	}
	d.deliver(ctx, k)
	return true
}

// deliver posts the first pending record of k, if any, and requeues k as the outcome requires.
func (d *Dispatcher) deliver(ctx context.Context, k record.Key) {
	d.mu.Lock()
	pend := d.pending[k]
	if len(pend) == 0 {
		d.mu.Unlock()
		d.queue.Forget(k)
		return
	}
	it := pend[0]
	a := artifact{it.rec.Name, it.rec.Digest}
	if exp, ok := d.unknown[a]; ok {
		if d.cfg.Now().Before(exp) {
			d.dropFirst(k, it.rec)
			d.mu.Unlock()
			d.count(func(m *metrics.Metrics) { m.UnknownArtifactHit.Inc() })
			d.queue.Forget(k)
			d.requeueIfPending(k)
			return
		}
		delete(d.unknown, a)
	}
	d.mu.Unlock()

	if err := d.wait(ctx); err != nil {
		d.queue.AddRateLimited(k)
		return
	}
	start := d.cfg.Now()
	err := d.cfg.Sink.Post(ctx, it.rec)
	d.count(func(m *metrics.Metrics) { m.PostTimer.Observe(time.Since(start).Seconds()) })
	log := d.cfg.Log.WithValues("deploymentName", k.DeploymentName, "name", it.rec.Name, "digest", it.rec.Digest, "status", it.rec.Status)

	switch sink.Classify(err) {
	case sink.ClassNone:
		d.mu.Lock()
		d.delivered[k] = it.rec
		d.dropFirst(k, it.rec)
		d.mu.Unlock()
		d.queue.Forget(k)
		d.count(func(m *metrics.Metrics) {
			m.PostOK.Inc()
			if !it.since.IsZero() {
				m.RecordLatency.Observe(d.cfg.Now().Sub(it.since).Seconds())
			}
		})
		log.V(1).Info("Record delivered")
		d.requeueIfPending(k)
	case sink.ClassRetryAfter:
		var ra *sink.RetryAfterError
		errors.As(err, &ra)
		d.mu.Lock()
		if ra.At.After(d.pauseTill) {
			d.pauseTill = ra.At
		}
		d.mu.Unlock()
		d.count(func(m *metrics.Metrics) { m.PostRateLimited.Inc(); m.PostSoftFail.Inc() })
		log.Info("Rate limited; pausing all posts", "until", ra.At, "error", err.Error())
		d.queue.AddAfter(k, ra.At.Sub(d.cfg.Now()))
	case sink.ClassNotFound:
		d.mu.Lock()
		d.unknown[a] = d.cfg.Now().Add(d.cfg.UnknownArtifactTTL)
		d.dropFirst(k, it.rec)
		d.mu.Unlock()
		d.count(func(m *metrics.Metrics) { m.PostNoAttestation.Inc(); m.PostClientError.Inc(); m.PostHardFail.Inc() })
		log.Info("Artifact unknown to the sink (not attested?); not retried for a while", "ttl", d.cfg.UnknownArtifactTTL, "error", err.Error())
		d.queue.Forget(k)
		d.requeueIfPending(k)
	case sink.ClassPermanent:
		d.mu.Lock()
		d.dropFirst(k, it.rec)
		d.mu.Unlock()
		d.count(func(m *metrics.Metrics) { m.PostClientError.Inc(); m.PostHardFail.Inc() })
		log.Error(err, "Record rejected; not retried")
		d.queue.Forget(k)
		d.requeueIfPending(k)
	default:
		// Retryable: retried with exponential backoff, without limit on the number of attempts, so that an
		// outage of any length loses nothing; the backoff is capped at MaxDelay.
		d.count(func(m *metrics.Metrics) { m.PostSoftFail.Inc() })
		log.Info("Post failed; will retry", "attempt", d.queue.NumRequeues(k)+1, "error", err.Error())
		d.queue.AddRateLimited(k)
	}
}

// dropFirst removes r from the head of k's pending records if it is still there (a newer record may have
// replaced it while it was being posted). Callers hold d.mu.
func (d *Dispatcher) dropFirst(k record.Key, r record.Record) {
	pend := d.pending[k]
	if len(pend) > 0 && equal(pend[0].rec, r) {
		pend = pend[1:]
	}
	if len(pend) == 0 {
		delete(d.pending, k)
	} else {
		d.pending[k] = pend
	}
	d.updateGauges()
}

func (d *Dispatcher) requeueIfPending(k record.Key) {
	d.mu.Lock()
	n := len(d.pending[k])
	d.mu.Unlock()
	if n > 0 {
		d.queue.Add(k)
	}
}

// wait blocks until posting is allowed: after any Retry-After pause, and within the pacing limits.
func (d *Dispatcher) wait(ctx context.Context) error {
	for {
		d.mu.Lock()
		until := d.pauseTill
		d.mu.Unlock()
		delay := until.Sub(d.cfg.Now())
		if delay <= 0 {
			break
		}
		// Jitter so that paused workers do not all fire in the same instant.
		delay += time.Duration(rand.Int64N(int64(250 * time.Millisecond)))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for rate limit pause: %w", ctx.Err())
		case <-t.C:
		}
	}
	for _, l := range []*rate.Limiter{d.minute, d.hour} {
		if l == nil {
			continue
		}
		if err := l.Wait(ctx); err != nil {
			return fmt.Errorf("wait for pacing limiter: %w", err)
		}
	}
	return nil
}

func (d *Dispatcher) count(f func(*metrics.Metrics)) {
	if d.cfg.Metrics != nil {
		f(d.cfg.Metrics)
	}
}

func (d *Dispatcher) updateGauges() {
	if d.cfg.Metrics != nil {
		d.cfg.Metrics.PendingRecords.Set(float64(len(d.pending)))
	}
}

// equal compares two records field by field (tags and runtime risks included).
func equal(a, b record.Record) bool { return reflect.DeepEqual(a, b) }
