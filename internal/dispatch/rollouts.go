package dispatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/util/workqueue"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// RolloutsConfig configures a Rollouts dispatcher.
type RolloutsConfig struct {
	// Sinks receive the rollout notifications, by sink name: the name the ledger keeps each sink's delivery
	// state under, and the sink label of the metrics. No sinks make Notify a no-op.
	Sinks map[string]sink.RolloutSink
	// Reporter, if set, is told the outcome of every notification (the ledger records it). It is called on
	// the worker while the key is still held, so that outcomes of one sink and rollout are reported in order.
	// While a sink refuses the credentials, each rollout pending for it is reported failed once (with the
	// sink.CredentialsError), whether it was notified or only waits, and not again on each retry.
	Reporter RolloutReporter
	// CredentialsBaseDelay and CredentialsMaxDelay bound the pause of a sink that refuses the credentials:
	// the first pause, doubled with each refused round up to the cap, each with up to 10% taken off at
	// random (defaults 30s and 10m). Each sink has its own.
	CredentialsBaseDelay, CredentialsMaxDelay time.Duration
	// OnCredentials, if set, is called when a sink starts refusing the credentials (refused, with the error)
	// and when it accepts them again (its first success). It is called on a worker: it must not block for
	// long (the app emits a Kubernetes Event).
	OnCredentials func(sink string, refused bool, err error)
	// Workers is the number of concurrent notifications, all sinks together (default 2).
	Workers int
	// BaseDelay and MaxDelay bound the exponential backoff of retryable failures (defaults 1s and 5m).
	BaseDelay, MaxDelay time.Duration
	// DrainTimeout is how long pending notifications may still be delivered after the context is cancelled
	// (default 20s).
	DrainTimeout time.Duration
	// Metrics, if set, receives deptracker_rollout_notifications_*.
	Metrics *metrics.Metrics
	// Log is the logger; default: discard.
	Log logr.Logger
	// Now is the clock (default time.Now). It times Retry-After pauses and the drain; the workqueue's backoff
	// between retries and its delays run on the real clock.
	Now func() time.Time
}

// RolloutReporter receives the outcome of notifications (the ledger records it). Its methods may do I/O;
// errors are theirs to log.
type RolloutReporter interface {
	// RolloutDelivered tells that sink acknowledged r and returned state (nil: keep the state kept before).
	RolloutDelivered(ctx context.Context, r rollout.Rollout, sink string, state map[string]string)
	// RolloutFailed tells that notifying sink of r failed for the attempts-th time in a row; next is when it
	// is tried again, zero when it is not (the sink rejected it).
	RolloutFailed(ctx context.Context, r rollout.Rollout, sink string, err error, attempts int, next time.Time)
}

// Rollouts delivers rollout transitions to the rollout sinks. It keeps, per sink and rollout (workload and
// revision), the latest snapshot still to deliver and what the sink acknowledged last, and drains them with
// a rate-limited workqueue: a key is never notified by two workers at once, a newer snapshot replaces one not
// delivered yet (delivery is level-based), and a snapshot equal to the acknowledged one is not sent again.
// Each sink has its own keys and its own Retry-After pause, so that one failing sink never holds back
// another. Notify and Seed are safe to call from any goroutine and never block on I/O.
type Rollouts struct {
	cfg   RolloutsConfig
	names []string // of cfg.Sinks, sorted
	queue workqueue.TypedRateLimitingInterface[rolloutKey]
	// sleep waits for d on the clock of cfg.Now, or until ctx ends (the drain timeout); after queues k again
	// in d on that clock (a Retry-After pause). Tests replace both with a fake clock's.
	sleep func(ctx context.Context, d time.Duration) error
	after func(k rolloutKey, d time.Duration)
	// jitter takes a random part off a credentials pause (jitterDown); tests make it exact.
	jitter func(time.Duration) time.Duration
	creds  credentialsObserver

	mu        sync.Mutex
	entries   map[rolloutKey]*rolloutEntry
	npending  int                                 // entries with a pending snapshot
	pauseTill map[string]time.Time                // per sink: no notification before this (Retry-After, refused credentials)
	cred      map[string]*credentials[rolloutKey] // per sink
	emptied   chan struct{}                       // signalled when npending drops to 0, for the drain
}

// rolloutKey identifies what one sink is told of one rollout.
type rolloutKey struct {
	sink     string
	workload owner.Workload
	revision int64
}

// rolloutEntry is the delivery state of one key.
type rolloutEntry struct {
	// pending is the snapshot still to deliver, nil when none; while a worker notifies the sink it stays
	// here unless a newer one replaces it.
	pending *rollout.Rollout
	// acked is the snapshot the sink acknowledged last (nil: none, or not known after a restart); ackPhase
	// and ackState are what the next notification tells the sink it acknowledged.
	acked    *rollout.Rollout
	ackPhase rollout.Phase
	ackState map[string]string
	// rejected is the last snapshot the sink rejected (permanent or not found): an equal one is not sent again.
	rejected *rollout.Rollout
	// unsure is set while the last notification has no known outcome (in flight, or failed with a retryable
	// error that may have come after the sink acted on it): the sink may have seen a snapshot other than acked.
	unsure bool
	// held is set while a worker or a timer (backoff, pause) owns the key's requeueing: Notify must not add
	// it to the queue, or it would cut the backoff or the pause short.
	held bool
	// forgotten asks for the entry to be dropped once nothing is pending or held (Forget).
	forgotten bool
}

// NewRollouts validates cfg, fills its defaults and returns a Rollouts dispatcher; call Start to run the
// workers.
func NewRollouts(cfg RolloutsConfig) (*Rollouts, error) {
	var errs []error
	for name, s := range cfg.Sinks {
		if name == "" {
			errs = append(errs, errors.New("dispatch: rollout sink without a name"))
		}
		if s == nil {
			errs = append(errs, fmt.Errorf("dispatch: rollout sink %q is nil", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	defaults(&cfg.Workers, &cfg.BaseDelay, &cfg.MaxDelay, &cfg.DrainTimeout, &cfg.Now, &cfg.Log)
	credentialsDefaults(&cfg.CredentialsBaseDelay, &cfg.CredentialsMaxDelay)
	cfg.Sinks = maps.Clone(cfg.Sinks)
	d := &Rollouts{
		cfg:   cfg,
		names: slices.Sorted(maps.Keys(cfg.Sinks)),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[rolloutKey](cfg.BaseDelay, cfg.MaxDelay),
			workqueue.TypedRateLimitingQueueConfig[rolloutKey]{Name: "rollout_notifications"}),
		sleep:     sleep,
		jitter:    jitterDown,
		creds:     credentialsObserver{metrics: cfg.Metrics, log: cfg.Log, on: cfg.OnCredentials},
		entries:   map[rolloutKey]*rolloutEntry{},
		pauseTill: map[string]time.Time{},
		cred:      map[string]*credentials[rolloutKey]{},
		emptied:   make(chan struct{}, 1),
	}
	d.after = func(k rolloutKey, dur time.Duration) { d.queue.AddAfter(k, dur) }
	for _, name := range d.names {
		d.cred[name] = &credentials[rolloutKey]{}
		d.creds.started(name)
	}
	return d, nil
}

// Notify asks for r (the latest state of one rollout) to reach every sink. Never blocks on I/O; safe from any
// goroutine. A sink that acknowledged a snapshot equal to r (rollout.Equal) is not told again; a snapshot not
// delivered yet is replaced by r.
func (d *Rollouts) Notify(r rollout.Rollout) {
	if len(d.names) == 0 {
		return
	}
	r.Containers = slices.Clone(r.Containers) // the caller's slice is never shared with the workers
	var add []rolloutKey
	d.mu.Lock()
	for _, name := range d.names {
		k := rolloutKey{sink: name, workload: r.Workload, revision: r.Revision}
		if d.want(k, r) {
			add = append(add, k)
		}
	}
	d.mu.Unlock()
	for _, k := range add {
		d.queue.Add(k)
	}
}

// want makes r the snapshot k must reach and reports whether k must be queued. Callers hold d.mu.
func (d *Rollouts) want(k rolloutKey, r rollout.Rollout) bool {
	e := d.entry(k)
	switch {
	case e.pending != nil && rollout.Equal(*e.pending, r):
		return false // already on its way
	case !e.unsure && e.acked != nil && rollout.Equal(*e.acked, r),
		!e.unsure && e.rejected != nil && rollout.Equal(*e.rejected, r):
		// What the sink acknowledged (or refused) last: nothing to send, unless a notification whose outcome
		// is not known yet may have told it of another snapshot since.
		d.setPending(e, nil)
		return false
	}
	d.setPending(e, &r)
	return !e.held
}

// Seed tells the dispatcher what a sink acknowledged for r before a restart (from the ledger): the phase, the
// state it returned, and whether that acknowledgement covers r as it is now (synced); an unsynced one is
// notified again. It does nothing for a sink not configured, or for a rollout the sink was notified of
// since.
func (d *Rollouts) Seed(sinkName string, r rollout.Rollout, acknowledged rollout.Phase, state map[string]string, synced bool) {
	if _, ok := d.cfg.Sinks[sinkName]; !ok {
		return
	}
	r.Containers = slices.Clone(r.Containers)
	k := rolloutKey{sink: sinkName, workload: r.Workload, revision: r.Revision}
	d.mu.Lock()
	e := d.entry(k)
	if e.acked != nil || e.rejected != nil || e.unsure || e.held {
		d.mu.Unlock()
		return // this dispatcher knows better than the ledger
	}
	e.ackPhase, e.ackState = acknowledged, maps.Clone(state)
	add := false
	switch {
	case synced:
		e.acked = &r
		if e.pending != nil && rollout.Equal(*e.pending, r) {
			d.setPending(e, nil)
		}
	case e.pending == nil:
		// Not acknowledged as it is now; a snapshot Notify gave meanwhile is newer and is kept instead.
		d.setPending(e, &r)
		add = true
	}
	d.mu.Unlock()
	if add {
		d.queue.Add(k)
	}
}

// Forget drops what the dispatcher keeps of the rollout of revision of w, for every sink: call it when the
// ledger prunes the rollout, so that memory stays bounded. A rollout still being delivered is dropped once
// it is, unless it is notified again meanwhile. Once dropped, a rollout notified again is delivered as a new
// one (Acknowledged empty).
func (d *Rollouts) Forget(w owner.Workload, revision int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range d.names {
		k := rolloutKey{sink: name, workload: w, revision: revision}
		e, ok := d.entries[k]
		if !ok {
			continue
		}
		e.forgotten = true
		d.gc(k, e)
	}
}

// CredentialsRefused returns, by sink name, since when each sink that refuses the credentials does; empty
// while every sink accepts them.
func (d *Rollouts) CredentialsRefused() map[string]time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]time.Time{}
	for name, c := range d.cred {
		if c.refused {
			out[name] = c.since
		}
	}
	return out
}

// Idle reports whether nothing is waiting to be delivered.
func (d *Rollouts) Idle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.npending == 0
}

// NeedLeaderElection makes the dispatcher run on the elected leader only: only the leader notifies.
func (d *Rollouts) NeedLeaderElection() bool { return true }

// Start runs the workers until ctx is cancelled, then keeps them notifying until nothing is pending
// (snapshots queued, retried or notified meanwhile included) or DrainTimeout has passed, whichever comes
// first. It implements controller-runtime's manager.Runnable.
func (d *Rollouts) Start(ctx context.Context) error {
	// Notifications get their own context so that the drain after cancellation can still deliver; it is
	// cancelled when the drain deadline passes.
	notifyCtx, cancelNotify := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelNotify()
	runWorkers(ctx, notifyCtx, cancelNotify, pool{
		workers: d.cfg.Workers, process: d.processNext, idle: d.Idle, pending: d.pending, emptied: d.emptied,
		shutdown: d.queue.ShutDown, sleep: d.sleep, timeout: d.cfg.DrainTimeout, log: d.cfg.Log, what: "rollout notifications",
	})
	return nil
}

func (d *Rollouts) processNext(ctx context.Context) bool {
	k, shutdown := d.queue.Get()
	if shutdown {
		return false
	}
	defer d.queue.Done(k)
	if ctx.Err() != nil {
		return true // past the drain deadline: empty the queue without notifying
	}
	d.deliver(ctx, k)
	return true
}

// deliver notifies k's sink of k's pending snapshot, if any, and requeues k as the outcome requires.
func (d *Rollouts) deliver(ctx context.Context, k rolloutKey) {
	d.mu.Lock()
	e, ok := d.entries[k]
	if !ok || e.pending == nil {
		if ok {
			e.held = false
			d.gc(k, e)
		}
		d.mu.Unlock()
		d.queue.Forget(k)
		return
	}
	e.held = true
	cred := d.cred[k.sink]
	// A paused sink's keys wait on a timer, not on a worker, so that the other sinks keep their workers. A
	// rollout waiting for a sink that refuses the credentials is reported once, so that the ledger tells why.
	if wait := d.pauseTill[k.sink].Sub(d.cfg.Now()); wait > 0 {
		report, credErr, until, snap := cred.report(k), cred.err, d.pauseTill[k.sink], *e.pending
		d.mu.Unlock()
		if report {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			d.report(func(r RolloutReporter) { r.RolloutFailed(rctx, snap, k.sink, credErr, d.queue.NumRequeues(k), until) })
			cancel()
		}
		d.after(k, wait+time.Duration(rand.Int64N(int64(pauseJitter))))
		return
	}
	snap := *e.pending
	n := rollout.Notification{Rollout: snap, Acknowledged: e.ackPhase, State: maps.Clone(e.ackState)}
	// From here on the sink may act on snap whatever Notify does meanwhile.
	e.unsure = true
	round := cred.round
	d.mu.Unlock()

	state, err := d.cfg.Sinks[k.sink].Notify(ctx, n)
	log := d.cfg.Log.WithValues("sink", k.sink, "workload", k.workload.String(), "revision", k.revision, "phase", snap.Phase)
	if cutShort(ctx, err) {
		// The drain deadline passed while notifying: the queue is shutting down, the rollout stays pending.
		log.V(1).Info("Rollout notification cut short by the shutdown; left pending")
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	switch sink.Classify(err) {
	case sink.ClassNone:
		// Counted and reported before the snapshot stops being pending, so that both are done when Idle says so.
		d.count(k.sink, metrics.NotificationDelivered)
		d.report(func(r RolloutReporter) { r.RolloutDelivered(rctx, snap, k.sink, maps.Clone(state)) })
		d.mu.Lock()
		e.acked, e.ackPhase, e.rejected, e.unsure = &snap, snap.Phase, nil, false
		if state != nil {
			e.ackState = maps.Clone(state)
		}
		requeue := d.done(k, e, snap)
		resumed, since, until := cred.accept()
		if resumed && d.pauseTill[k.sink].Equal(until) {
			delete(d.pauseTill, k.sink) // the pause was the refusal's alone
		}
		d.mu.Unlock()
		if resumed {
			d.creds.accepted(k.sink, since, d.cfg.Now())
		}
		d.queue.Forget(k)
		log.V(1).Info("Rollout notification delivered")
		if requeue {
			d.queue.Add(k)
		}
	case sink.ClassRetryAfter:
		var ra *sink.RetryAfterError
		errors.As(err, &ra)
		d.mu.Lock()
		if ra.At.After(d.pauseTill[k.sink]) {
			d.pauseTill[k.sink] = ra.At
		}
		d.mu.Unlock()
		d.count(k.sink, metrics.NotificationRateLimited)
		d.report(func(r RolloutReporter) { r.RolloutFailed(rctx, snap, k.sink, err, d.queue.NumRequeues(k)+1, ra.At) })
		log.Info("Rate limited; pausing the sink", "until", ra.At, "error", err.Error())
		if wait := ra.At.Sub(d.cfg.Now()); wait > 0 {
			d.after(k, wait+time.Duration(rand.Int64N(int64(pauseJitter))))
		} else {
			d.queue.AddRateLimited(k) // no usable pause: back off, or a sink that keeps refusing spins
		}
	case sink.ClassCredentials:
		// Nothing is wrong with the rollout: it stays pending, uncharged, and the whole sink pauses; the
		// other sinks go on.
		now := d.cfg.Now()
		d.mu.Lock()
		pause, first, grown := cred.refuse(now, round, err, d.cfg.CredentialsBaseDelay, d.cfg.CredentialsMaxDelay, d.jitter)
		if cred.until.After(d.pauseTill[k.sink]) {
			d.pauseTill[k.sink] = cred.until
		}
		until, since, report := d.pauseTill[k.sink], cred.since, cred.report(k)
		d.mu.Unlock()
		d.count(k.sink, metrics.NotificationCredentialsRefused)
		d.creds.refused(k.sink, err, pause, first, grown, since, now)
		if report {
			d.report(func(r RolloutReporter) { r.RolloutFailed(rctx, snap, k.sink, err, d.queue.NumRequeues(k)+1, until) })
		}
		if wait := until.Sub(d.cfg.Now()); wait > 0 {
			d.after(k, wait+time.Duration(rand.Int64N(int64(pauseJitter))))
		} else {
			d.queue.AddRateLimited(k)
		}
	case sink.ClassNotFound, sink.ClassPermanent:
		d.count(k.sink, metrics.NotificationRejected)
		d.report(func(r RolloutReporter) {
			r.RolloutFailed(rctx, snap, k.sink, err, d.queue.NumRequeues(k)+1, time.Time{})
		})
		d.mu.Lock()
		e.rejected, e.unsure = &snap, false
		requeue := d.done(k, e, snap)
		d.mu.Unlock()
		d.queue.Forget(k)
		log.Error(err, "Rollout notification rejected; not retried")
		if requeue {
			d.queue.Add(k)
		}
	default:
		// Retryable: retried with exponential backoff, without limit on the number of attempts, so that an
		// outage of any length loses nothing; the backoff is capped at MaxDelay. k stays held, so that Notify
		// does not cut the backoff short. The retry sends the latest snapshot by then.
		n := d.queue.NumRequeues(k)
		d.count(k.sink, metrics.NotificationRetried)
		d.report(func(r RolloutReporter) { r.RolloutFailed(rctx, snap, k.sink, err, n+1, d.cfg.Now().Add(d.backoff(n))) })
		log.Info("Rollout notification failed; will retry", "attempt", n+1, "error", err.Error())
		d.queue.AddRateLimited(k)
	}
}

// done ends a worker's hold on k after the sink answered for snap for good: snap is no longer pending unless
// a newer snapshot replaced it meanwhile. It reports whether k must be queued again. Callers hold d.mu.
func (d *Rollouts) done(k rolloutKey, e *rolloutEntry, snap rollout.Rollout) bool {
	if e.pending != nil && rollout.Equal(*e.pending, snap) {
		d.setPending(e, nil)
	}
	e.held = false
	requeue := e.pending != nil
	d.gc(k, e)
	return requeue
}

// entry returns k's entry, creating it. Callers hold d.mu.
func (d *Rollouts) entry(k rolloutKey) *rolloutEntry {
	e, ok := d.entries[k]
	if !ok {
		e = &rolloutEntry{}
		d.entries[k] = e
	}
	return e
}

// gc drops k's entry if it was forgotten and nothing needs it any more. Callers hold d.mu.
func (d *Rollouts) gc(k rolloutKey, e *rolloutEntry) {
	if e.forgotten && e.pending == nil && !e.held && !e.unsure {
		delete(d.entries, k)
	}
}

// setPending makes r the pending snapshot of e (nil: none) and keeps the gauge and the drain signal current.
// Callers hold d.mu.
func (d *Rollouts) setPending(e *rolloutEntry, r *rollout.Rollout) {
	switch {
	case e.pending == nil && r != nil:
		d.npending++
	case e.pending != nil && r == nil:
		d.npending--
		if d.npending == 0 {
			select {
			case d.emptied <- struct{}{}:
			default:
			}
		}
	}
	e.pending = r
	if r != nil {
		e.forgotten = false // notified again: a new delivery to track
	}
	if d.cfg.Metrics != nil {
		d.cfg.Metrics.RolloutPending.Set(float64(d.npending))
	}
}

func (d *Rollouts) pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.npending
}

// backoff is the delay the queue's rate limiter applies after n failures.
func (d *Rollouts) backoff(n int) time.Duration { return backoff(n, d.cfg.BaseDelay, d.cfg.MaxDelay) }

func (d *Rollouts) count(sinkName, outcome string) {
	if d.cfg.Metrics != nil {
		d.cfg.Metrics.RolloutNotifications.WithLabelValues(sinkName, outcome).Inc()
	}
}

func (d *Rollouts) report(f func(RolloutReporter)) {
	if d.cfg.Reporter != nil {
		f(d.cfg.Reporter)
	}
}
