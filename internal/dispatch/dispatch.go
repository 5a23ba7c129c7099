// Package dispatch delivers records to a sink: a rate-limited workqueue keyed by record key, so that a key is
// never posted by two workers at once and a burst of pods of one workload collapses into one call, drained by N
// workers with backoff, Retry-After pauses and client-side pacing below the API's secondary rate limits.
//
// A sink that refuses the credentials (sink.ClassCredentials: a 401, a permission 403, a token that cannot be
// minted) is paused as a whole, like a Retry-After, with a pause that starts at CredentialsBaseDelay and
// doubles up to CredentialsMaxDelay: nothing is dropped or charged a retry, other sinks keep going, and the
// first success resumes it. The dispatchers tell of it with the deptracker_sink_credentials_refused gauge, one
// log line per transition, the OnCredentials callback and, through the reporter, the ledger status of every
// item waiting for the sink (once per item and episode).
//
// A 404 is told apart (notfound.go): an artifact without attestation is cached negatively and its record kept
// and posted again when the entry expires (and not before, across restarts: Config.NotAttested); a sink whose
// target does not exist (a wrong organization) pauses as a whole like refused credentials, and checks its target
// again until it answers. A decommission goes to the digest the sink holds for the key.
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
	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// pauseJitter spreads the workers that wake up at the end of a Retry-After pause.
const pauseJitter = 250 * time.Millisecond

// Config configures a Dispatcher.
type Config struct {
	// Sink receives the records.
	Sink sink.Sink
	// Workers is the number of concurrent posts (default 2).
	Workers int
	// RequestsPerMinute and RequestsPerHour pace posts below the sink's secondary rate limits; 0 disables.
	// Posts are spread evenly (a token bucket of one token), so that no window of a minute (an hour) ever
	// holds more posts than the limit.
	RequestsPerMinute int
	RequestsPerHour   int
	// BaseDelay and MaxDelay bound the exponential backoff of retryable failures (defaults 1s and 5m).
	BaseDelay, MaxDelay time.Duration
	// UnknownArtifactTTL is how long a 404 for an artifact digest is remembered (default 1h): no record of the
	// artifact is posted meanwhile, and the records that got it are posted again when it expires.
	UnknownArtifactTTL time.Duration
	// NotAttested, if set, returns the artifacts the sink answered had no attestation before a restart (the
	// ledger remembers them). It is called once in Start, after FirstSync (or the bulk delivery), before the
	// workers post: they are not posted again before their time (capped at UnknownArtifactTTL from now).
	NotAttested func(ctx context.Context) ([]NotAttested, error)
	// OnMisconfigured, if set, is called when the sink's target turns out not to exist (misconfigured, with the
	// error naming the configuration) and when it answers again. It is called on a worker or in Start: it must
	// not block for long (the app sets the deptracker_sink_misconfigured gauge).
	OnMisconfigured func(sink string, misconfigured bool, err error)
	// DrainTimeout is how long queued records may still be posted after the context is cancelled (default 20s).
	DrainTimeout time.Duration
	// Metrics, if set, receives the deptracker_post_* counters.
	Metrics *metrics.Metrics
	// Log is the logger; default: discard.
	Log logr.Logger
	// FirstSync, if set, is called before the workers start; it waits until the records of the cluster are
	// decided (the tracker has resumed) and reports whether this is the first sync of the cluster (its ledger
	// was empty). If so, and the sink is a sink.ClusterSink, every pending record is delivered with a few bulk
	// requests, and only what they did not deliver is posted one by one.
	FirstSync func(ctx context.Context) (bool, error)
	// Reporter, if set, is told the outcome of every post (the ledger records it). It is called on the
	// worker while the key is still held, so that outcomes of one key are reported in order. While the sink
	// refuses the credentials, each pending record is reported failed once (with the sink.CredentialsError),
	// whether it was posted or only waits, and not again on each retry; likewise while the sink is
	// misconfigured. A 404 for an artifact without attestation is reported with when it is tried again.
	// Records are reported as posted: a decommission with the digest the sink held.
	Reporter Reporter
	// SinkName names the sink in the sink label of deptracker_sink_credentials_refused, in the logs and in
	// OnCredentials (default "records"; the app uses the ledger's name, "github").
	SinkName string
	// CredentialsBaseDelay and CredentialsMaxDelay bound the pause of a sink that refuses the credentials:
	// the first pause, doubled with each refused round up to the cap, each with up to 10% taken off at
	// random (defaults 30s and 10m).
	CredentialsBaseDelay, CredentialsMaxDelay time.Duration
	// OnCredentials, if set, is called when the sink starts refusing the credentials (refused, with the
	// error) and when it accepts them again (the first success). It is called on a worker: it must not block
	// for long (the app emits a Kubernetes Event).
	OnCredentials func(sink string, refused bool, err error)
	// Now is the clock (default time.Now). It times Retry-After pauses, pacing, the negative cache and the drain;
	// the workqueue's backoff between retries runs on the real clock.
	Now func() time.Time
}

// Reporter receives the outcome of posts. Its methods may do I/O; errors are theirs to log.
type Reporter interface {
	Delivered(ctx context.Context, r record.Record)
	Failed(ctx context.Context, r record.Record, err error, attempts int, next time.Time)
}

// Dispatcher holds, per record key, the records still to deliver and the record last delivered, and drains
// them to the sink. Desire is safe to call from any goroutine and never blocks on I/O.
type Dispatcher struct {
	cfg   Config
	queue *keyQueue
	// sleep waits for d on the clock of cfg.Now, or until ctx ends; after queues k again in d on that clock
	// (a key waiting for a sink that refuses the credentials). Tests replace both with a fake clock's.
	sleep func(ctx context.Context, d time.Duration) error
	after func(k record.Key, d time.Duration)
	// jitter takes a random part off a credentials pause (jitterDown); tests make it exact.
	jitter func(time.Duration) time.Duration
	creds  credentialsObserver

	mu        sync.Mutex
	pending   map[record.Key][]item // records still to deliver, in order; the head may be being posted
	npending  int                   // records in pending, all keys together
	delivered map[record.Key]record.Record
	bulking   int // bulk deliveries running: remember keeps decommissions meanwhile (memory.go)
	// gen counts the posts of each key the sink accepted one by one, so that a bulk result does not override
	// a newer delivery of its key (bulk).
	gen map[record.Key]uint64
	// held are the keys whose requeueing a worker or a backoff timer owns: Desire must not add them to the
	// queue, or it would bypass the backoff of a failing key.
	held map[record.Key]struct{}
	// unsure are the keys whose last post has no known outcome (in flight, or failed with a retryable error
	// that may have come after the sink stored the record): the sink may hold it or delivered[k].
	unsure    map[record.Key]struct{}
	unknown   map[artifact]notFound   // 404 negative cache: artifact → expiry and the answer
	parked    map[record.Key]parked   // records without attestation and nothing newer, posted again at expiry
	recalled  map[record.Key]artifact // keys whose 404 the ledger remembered across the restart (not reported again)
	pauseTill time.Time               // no post before this (Retry-After, refused credentials, misconfigured)
	cred      credentials[record.Key] // whether the sink accepts the credentials
	misconf   credentials[record.Key] // whether the sink's target is missing: the same kind of pause (notfound.go)
	checking  bool                    // a worker is checking the target of the misconfigured sink
	emptied   chan struct{}           // signalled when pending becomes empty, for the drain

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
	defaults(&cfg.Workers, &cfg.BaseDelay, &cfg.MaxDelay, &cfg.DrainTimeout, &cfg.Now, &cfg.Log)
	if cfg.UnknownArtifactTTL <= 0 {
		cfg.UnknownArtifactTTL = time.Hour
	}
	if cfg.SinkName == "" {
		cfg.SinkName = "records"
	}
	credentialsDefaults(&cfg.CredentialsBaseDelay, &cfg.CredentialsMaxDelay)
	d := &Dispatcher{
		cfg: cfg,
		// controller-runtime's priority queue: client-go's rate-limited workqueue, with priorities (Desire).
		queue: &keyQueue{PriorityQueue: priorityqueue.New("deployment_records", func(o *priorityqueue.Opts[record.Key]) {
			o.RateLimiter = workqueue.NewTypedItemExponentialFailureRateLimiter[record.Key](cfg.BaseDelay, cfg.MaxDelay)
		})},
		sleep:     sleep,
		jitter:    jitterDown,
		creds:     credentialsObserver{metrics: cfg.Metrics, log: cfg.Log, on: cfg.OnCredentials},
		pending:   map[record.Key][]item{},
		delivered: map[record.Key]record.Record{},
		gen:       map[record.Key]uint64{},
		held:      map[record.Key]struct{}{},
		unsure:    map[record.Key]struct{}{},
		unknown:   map[artifact]notFound{},
		parked:    map[record.Key]parked{},
		recalled:  map[record.Key]artifact{},
		emptied:   make(chan struct{}, 1),
	}
	d.after = func(k record.Key, dur time.Duration) { d.queue.AddAfter(k, dur) }
	d.minute = pace(cfg.RequestsPerMinute, time.Minute)
	d.hour = pace(cfg.RequestsPerHour, time.Hour)
	d.creds.started(cfg.SinkName)
	return d, nil
}

// Desire asks for r to become the state of its key at the sink. Records of one key are delivered in order;
// a newer deployed record replaces any not yet delivered, and a decommissioned record is kept after a pending
// deployed one, so that a short-lived workload is still recorded as deployed and then decommissioned.
// observed is when the transition happened (for the latency metric).
func (d *Dispatcher) Desire(r record.Record, observed time.Time) {
	d.desire(r, observed, priorityNormal)
}

// DesireEphemeral is Desire for a record of an ephemeral workload (a bare pod, a Job of no CronJob: CI runners,
// ad-hoc Jobs): its key waits behind the keys of other workloads, so that churn never delays their records
// while posting is paced.
func (d *Dispatcher) DesireEphemeral(r record.Record, observed time.Time) {
	d.desire(r, observed, priorityEphemeral)
}

// keyQueue is the dispatcher's queue of record keys: controller-runtime's priority queue, which may be shut
// down once only, shut down as often as the drain and a test ask.
type keyQueue struct {
	priorityqueue.PriorityQueue[record.Key]
	once sync.Once
}

func (q *keyQueue) ShutDown() { q.once.Do(q.PriorityQueue.ShutDown) }

// Queue priorities: a key of an ephemeral workload is queued below the others. Retries are queued at the
// normal priority.
const (
	priorityNormal    = 0
	priorityEphemeral = -1
)

func (d *Dispatcher) desire(r record.Record, observed time.Time, priority int) {
	k := r.Key()
	d.mu.Lock()
	if p, ok := d.parked[k]; ok {
		if equal(p.it.rec, r) {
			d.mu.Unlock()
			return // already waiting for its negative cache entry to expire
		}
		delete(d.parked, k) // replaced: a newer record, or a decommission of what the sink holds
	}
	pend := d.pending[k]
	del, haveDel := d.delivered[k]
	_, unsure := d.unsure[k]
	// last is what the sink will hold once everything pending is delivered.
	last, haveLast := del, haveDel
	if n := len(pend); n > 0 {
		last, haveLast = pend[n-1].rec, true
	}
	if haveLast && equal(last, r) && (len(pend) > 0 || !unsure) {
		d.mu.Unlock()
		return
	}
	switch r.Status {
	case record.StatusDeployed:
		pend = pend[:0]
		// Back to what the sink already has: nothing to send, unless a post whose outcome is not known yet
		// (in flight, or failed after a timeout) may have replaced it there.
		if !haveDel || unsure || !equal(del, r) {
			pend = append(pend, item{rec: r, since: observed})
		}
	case record.StatusDecommissioned:
		if !haveLast || last.Status != record.StatusDeployed {
			d.mu.Unlock()
			// Nothing was deployed under this key (its record was never accepted: a 404, a 422): nothing to
			// decommission, and the key is as its decommission asks — reported so, so that the ledger shows
			// it synced and its retention ends it.
			d.report(func(rep Reporter) { rep.Delivered(context.Background(), r) })
			return
		}
		pend = append(pend, item{rec: r, since: observed})
	default:
		d.mu.Unlock()
		return
	}
	d.setPending(k, pend)
	_, held := d.held[k]
	d.mu.Unlock()
	if len(pend) > 0 && !held {
		d.queue.AddWithOpts(priorityqueue.AddOpts{Priority: &priority}, k)
	}
}

// Delivered returns the record the sink last accepted for k, while it is a deployed one: once the sink accepted
// the decommission of k, the key is forgotten (remember) and Delivered reports false, as for a key never
// delivered.
func (d *Dispatcher) Delivered(k record.Key) (record.Record, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.delivered[k]
	return r, ok
}

// CredentialsRefused returns, by sink name, since when a sink refuses the credentials: the sink, while it
// does; empty while it accepts them.
func (d *Dispatcher) CredentialsRefused() map[string]time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]time.Time{}
	if d.cred.refused {
		out[d.cfg.SinkName] = d.cred.since
	}
	return out
}

// Idle reports whether nothing is waiting to be delivered.
func (d *Dispatcher) Idle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending) == 0
}

// drained reports whether the drain at shutdown is over: nothing is pending, or the sink is misconfigured, so
// that nothing can be posted before the end of a pause that outlasts any drain (the records stay pending in the
// ledger, for the next leader).
func (d *Dispatcher) drained() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending) == 0 || d.misconf.refused
}

// NeedLeaderElection makes the Dispatcher run on the elected leader only: only the leader posts.
func (d *Dispatcher) NeedLeaderElection() bool { return true }

// Start runs the workers until ctx is cancelled, then keeps them posting until nothing is pending (records
// queued, retried or desired meanwhile included) or DrainTimeout has passed, whichever comes first. It
// implements controller-runtime's manager.Runnable.
func (d *Dispatcher) Start(ctx context.Context) error {
	// Posts get their own context so that the drain after cancellation can still deliver; it is cancelled when
	// the drain deadline passes.
	postCtx, cancelPosts := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPosts()
	// The target first, so that a wrong organization is told at once, not after the tracker has resumed.
	configured := d.checkAtStart(ctx)
	if d.cfg.FirstSync != nil {
		first, err := d.cfg.FirstSync(ctx)
		if err != nil && ctx.Err() == nil {
			d.cfg.Log.Error(err, "Cannot tell whether this is the first sync; posting records one by one")
		}
		// A misconfigured sink would fail the bulk requests: its records wait, and are posted one by one.
		if cs, ok := d.cfg.Sink.(sink.ClusterSink); ok && first && configured && ctx.Err() == nil {
			// With ctx, not postCtx: a bulk job can be waited for for minutes, and the shutdown stops it (what it
			// did not deliver stays pending, for the drain and the next leader).
			d.bulk(ctx, cs)
		}
	}
	d.recall(ctx)
	runWorkers(ctx, postCtx, cancelPosts, pool{
		workers: d.cfg.Workers, process: d.processNext, idle: d.drained, pending: d.pendingRecords, emptied: d.emptied,
		shutdown: d.queue.ShutDown, sleep: d.sleep, timeout: d.cfg.DrainTimeout, log: d.cfg.Log, what: "records",
	})
	return nil
}

func (d *Dispatcher) processNext(ctx context.Context) bool {
	k, shutdown := d.queue.Get()
	if shutdown {
		return false
	}
	defer d.queue.Done(k)
	d.count(func(m *metrics.Metrics) { m.QueueDepth.Set(float64(d.queue.Len())) })
	if ctx.Err() != nil {
		return true // past the drain deadline: empty the queue without posting
	}
	d.deliver(ctx, k)
	return true
}

// deliver posts the first pending record of k, if any, and requeues k as the outcome requires.
func (d *Dispatcher) deliver(ctx context.Context, k record.Key) {
	d.mu.Lock()
	d.held[k] = struct{}{}
	d.unpark(k)
	pend := d.pending[k]
	if len(pend) == 0 {
		d.release(k)
		d.mu.Unlock()
		d.queue.Forget(k)
		return
	}
	it := pend[0]
	post := d.target(k, it.rec)
	a := artifact{post.Name, post.Digest}
	if nf, ok := d.cachedNotFound(post); ok {
		report := d.reportHit(k, a)
		d.mu.Unlock()
		d.count(func(m *metrics.Metrics) { m.UnknownArtifactHit.Inc() })
		if report {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			d.report(func(r Reporter) { r.Failed(rctx, post, nf.err, d.queue.NumRequeues(k)+1, nf.until) })
			cancel()
		}
		d.parkAndRelease(k, it, nf.until)
		return
	}
	if d.waitMisconfigured(ctx, k, post) {
		return
	}
	// While the sink refuses the credentials, its keys wait for the pause on a timer, not on a worker, and
	// each is reported once, so that the ledger tells why it waits. k stays held, so that Desire does not
	// cut the pause short.
	if wait := d.pauseTill.Sub(d.cfg.Now()); d.cred.refused && wait > 0 {
		report, credErr, until := d.cred.report(k), d.cred.err, d.pauseTill
		d.mu.Unlock()
		if report {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			d.report(func(r Reporter) { r.Failed(rctx, post, credErr, d.queue.NumRequeues(k), until) })
			cancel()
		}
		d.after(k, wait+time.Duration(rand.Int64N(int64(pauseJitter))))
		return
	}
	// From here on the sink may end up holding it.rec whatever Desire does meanwhile.
	d.unsure[k] = struct{}{}
	d.mu.Unlock()

	if err := d.wait(ctx); err != nil {
		d.queue.AddRateLimited(k)
		return
	}
	d.mu.Lock()
	round, misRound := d.cred.round, d.misconf.round
	d.mu.Unlock()
	start := d.cfg.Now()
	err := d.cfg.Sink.Post(ctx, post)
	d.count(func(m *metrics.Metrics) { m.PostTimer.Observe(d.cfg.Now().Sub(start).Seconds()) })
	log := d.cfg.Log.WithValues("deploymentName", k.DeploymentName, "name", post.Name, "digest", post.Digest, "status", post.Status)
	if !equal(post, it.rec) {
		log = log.WithValues("desiredDigest", it.rec.Digest)
	}
	if cutShort(ctx, err) {
		// The drain deadline passed while posting: the queue is shutting down, the record stays pending.
		log.V(1).Info("Post cut short by the shutdown; left pending")
		return
	}

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if misErr, ok := misconfigured(err); ok {
		// Nothing is wrong with the record, and nothing is known of it: it stays pending, the sink pauses.
		d.mu.Lock()
		delete(d.unsure, k)
		d.mu.Unlock()
		d.count(func(m *metrics.Metrics) { m.PostSoftFail.Inc() })
		until := d.misconfigure(misRound, misErr, false)
		d.mu.Lock()
		report := d.misconf.report(k)
		d.mu.Unlock()
		if report {
			d.report(func(r Reporter) { r.Failed(rctx, post, err, d.queue.NumRequeues(k)+1, until) })
		}
		d.after(k, max(until.Sub(d.cfg.Now()), 0)+time.Duration(rand.Int64N(int64(pauseJitter))))
		return
	}
	switch sink.Classify(err) {
	case sink.ClassNone:
		d.report(func(r Reporter) { r.Delivered(rctx, post) })
		d.configured(false) // a post went through: whatever was missing is there
		d.mu.Lock()
		d.gen[k]++
		d.remember(k, post) // after gen: a delivered decommission forgets both
		delete(d.unsure, k)
		d.dropFirst(k, it.rec)
		requeue := d.release(k)
		resumed, since, until := d.cred.accept()
		if resumed && d.pauseTill.Equal(until) {
			d.pauseTill = time.Time{} // the pause was the refusal's alone
		}
		d.mu.Unlock()
		if resumed {
			d.creds.accepted(d.cfg.SinkName, since, d.cfg.Now())
		}
		d.queue.Forget(k)
		d.count(func(m *metrics.Metrics) {
			m.PostOK.Inc()
			if !it.since.IsZero() {
				m.RecordLatency.Observe(d.cfg.Now().Sub(it.since).Seconds())
			}
		})
		log.Info("Record delivered")
		if requeue {
			d.queue.Add(k)
		}
	case sink.ClassRetryAfter:
		var ra *sink.RetryAfterError
		errors.As(err, &ra)
		d.mu.Lock()
		if ra.At.After(d.pauseTill) {
			d.pauseTill = ra.At
		}
		d.mu.Unlock()
		d.count(func(m *metrics.Metrics) { m.PostRateLimited.Inc(); m.PostSoftFail.Inc() })
		d.report(func(r Reporter) { r.Failed(rctx, post, err, d.queue.NumRequeues(k)+1, ra.At) })
		log.Info("Rate limited; pausing all posts", "until", ra.At, "error", err.Error())
		if ra.At.After(d.cfg.Now()) {
			// The pause in wait holds this key back like every other one, on the dispatcher's clock.
			d.queue.Add(k)
		} else {
			d.queue.AddRateLimited(k) // no usable pause: back off, or a sink that keeps refusing spins
		}
	case sink.ClassCredentials:
		// Nothing is wrong with the record: it stays pending, uncharged, and the whole sink pauses.
		until, report := d.refuse(&k, round, err)
		d.count(func(m *metrics.Metrics) { m.PostCredentialsRefused.Inc(); m.PostSoftFail.Inc() })
		if report {
			d.report(func(r Reporter) { r.Failed(rctx, post, err, d.queue.NumRequeues(k)+1, until) })
		}
		if wait := until.Sub(d.cfg.Now()); wait > 0 {
			d.after(k, wait+time.Duration(rand.Int64N(int64(pauseJitter))))
		} else {
			d.queue.AddRateLimited(k)
		}
	case sink.ClassNotFound:
		// Not attested: kept, and posted again when the cache entry expires. Still counted in hard_fail, as
		// before and as the reference implementation does: the shipped alert and dashboards take
		// no_attestation out of hard_fail to tell rejections apart.
		until := d.cfg.Now().Add(d.cfg.UnknownArtifactTTL)
		d.report(func(r Reporter) { r.Failed(rctx, post, err, d.queue.NumRequeues(k)+1, until) })
		d.mu.Lock()
		now := d.cfg.Now()
		maps.DeleteFunc(d.unknown, func(_ artifact, nf notFound) bool { return !now.Before(nf.until) })
		d.unknown[a] = notFound{until: until, err: err}
		delete(d.unsure, k)
		d.mu.Unlock()
		d.count(func(m *metrics.Metrics) { m.PostNoAttestation.Inc(); m.PostClientError.Inc(); m.PostHardFail.Inc() })
		log.Info("Artifact unknown to the sink (not attested?); posted again later", "ttl", d.cfg.UnknownArtifactTTL, "retryAt", until, "error", err.Error())
		d.parkAndRelease(k, it, until)
	case sink.ClassPermanent:
		d.report(func(r Reporter) { r.Failed(rctx, post, err, d.queue.NumRequeues(k)+1, time.Time{}) })
		d.mu.Lock()
		delete(d.unsure, k)
		d.dropFirst(k, it.rec)
		requeue := d.release(k)
		d.mu.Unlock()
		d.count(func(m *metrics.Metrics) { m.PostClientError.Inc(); m.PostHardFail.Inc() })
		log.Error(err, "Record rejected; not retried")
		d.queue.Forget(k)
		if requeue {
			d.queue.Add(k)
		}
	default:
		// Retryable: retried with exponential backoff, without limit on the number of attempts, so that an
		// outage of any length loses nothing; the backoff is capped at MaxDelay. k stays held, so that Desire
		// does not cut the backoff short.
		d.count(func(m *metrics.Metrics) { m.PostSoftFail.Inc() })
		n := d.queue.NumRequeues(k)
		d.report(func(r Reporter) { r.Failed(rctx, post, err, n+1, d.cfg.Now().Add(d.backoff(n))) })
		log.Info("Post failed; will retry", "attempt", n+1, "error", err.Error())
		d.queue.AddRateLimited(k)
	}
}

// refuse records that the sink refused the credentials to a post begun in round (of k; nil: a bulk request),
// pauses the sink and tells of the transition. It returns the end of the pause, and whether k is to be
// reported (the first refusal of k in this episode).
func (d *Dispatcher) refuse(k *record.Key, round uint64, err error) (until time.Time, report bool) {
	now := d.cfg.Now()
	d.mu.Lock()
	pause, first, grown := d.cred.refuse(now, round, err, d.cfg.CredentialsBaseDelay, d.cfg.CredentialsMaxDelay, d.jitter)
	if d.cred.until.After(d.pauseTill) {
		d.pauseTill = d.cred.until
	}
	until, since := d.pauseTill, d.cred.since
	if k != nil {
		report = d.cred.report(*k)
	}
	d.mu.Unlock()
	d.creds.refused(d.cfg.SinkName, err, pause, first, grown, since, now)
	return until, report
}

// parkAndRelease parks it, k's record without attestation, until (park), ends the worker's hold on k and
// queues k again: at once when a newer record is pending, at until when it was parked.
func (d *Dispatcher) parkAndRelease(k record.Key, it item, until time.Time) {
	d.mu.Lock()
	waits := d.park(k, it, until)
	requeue := d.release(k)
	d.mu.Unlock()
	d.queue.Forget(k)
	switch {
	case requeue:
		d.queue.Add(k)
	case waits:
		d.after(k, max(until.Sub(d.cfg.Now()), 0))
	}
}

// dropFirst removes r from the head of k's pending records if it is still there (a newer record may have
// replaced it while it was being posted). A decommissioned record left at the head with no deployed record
// at the sink before it is dropped too: its deployed record was rejected, nothing is there to decommission.
// Callers hold d.mu.
func (d *Dispatcher) dropFirst(k record.Key, r record.Record) {
	pend := d.pending[k]
	if len(pend) > 0 && equal(pend[0].rec, r) {
		pend = slices.Delete(pend, 0, 1)
	}
	if len(pend) > 0 && pend[0].rec.Status == record.StatusDecommissioned {
		if del, ok := d.delivered[k]; !ok || del.Status != record.StatusDeployed {
			pend = slices.Delete(pend, 0, 1)
		}
	}
	d.setPending(k, pend)
}

// release ends a worker's hold on k and reports whether k must be queued again. Callers hold d.mu.
func (d *Dispatcher) release(k record.Key) bool {
	delete(d.held, k)
	return len(d.pending[k]) > 0
}

// setPending stores the pending records of k and keeps the gauge and the drain signal current. Callers hold
// d.mu.
func (d *Dispatcher) setPending(k record.Key, pend []item) {
	d.npending += len(pend) - len(d.pending[k])
	if len(pend) == 0 {
		delete(d.pending, k)
		if len(d.pending) == 0 {
			select {
			case d.emptied <- struct{}{}:
			default:
			}
		}
	} else {
		d.pending[k] = pend
	}
	d.count(func(m *metrics.Metrics) { m.PendingRecords.Set(float64(d.npending)) })
}

func (d *Dispatcher) pendingRecords() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.npending
}

// wait blocks until posting is allowed: within the pacing limits, and after any Retry-After pause.
func (d *Dispatcher) wait(ctx context.Context) error {
	for _, l := range []*rate.Limiter{d.minute, d.hour} {
		if l == nil {
			continue
		}
		now := d.cfg.Now()
		r := l.ReserveN(now, 1)
		if err := d.sleep(ctx, r.DelayFrom(now)); err != nil {
			r.CancelAt(d.cfg.Now())
			return fmt.Errorf("wait for pacing limiter: %w", err)
		}
	}
	// The pause last: one may have begun while this worker waited for a token.
	for {
		d.mu.Lock()
		until := d.pauseTill
		d.mu.Unlock()
		delay := until.Sub(d.cfg.Now())
		if delay <= 0 {
			return nil
		}
		// Jitter so that paused workers do not all fire in the same instant.
		delay += time.Duration(rand.Int64N(int64(pauseJitter)))
		if err := d.sleep(ctx, delay); err != nil {
			return fmt.Errorf("wait for rate limit pause: %w", err)
		}
	}
}

// sleep waits for dur on the real clock, or until ctx ends.
func sleep(ctx context.Context, dur time.Duration) error {
	if dur <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (d *Dispatcher) count(f func(*metrics.Metrics)) {
	if d.cfg.Metrics != nil {
		f(d.cfg.Metrics)
	}
}

// bulk delivers every pending deployed record with the sink's bulk requests, before the workers start. What it
// does not deliver stays pending (and queued) for the workers to post one by one; a bulk failure never stops
// the tracker, and the shutdown (ctx) stops it.
//
// A bulk result is applied to a key only if the sink accepted no post of the key one by one since the bulk took
// its record (gen): a job can run for minutes, and a newer record of the key delivered meanwhile is what the
// sink must end with. That record is neither overridden here nor in the ledger, and is posted once more, since
// the sink may have applied the bulk after it.
func (d *Dispatcher) bulk(ctx context.Context, cs sink.ClusterSink) {
	d.mu.Lock()
	var recs []record.Record
	var keys []record.Key
	var gens []uint64
	d.bulkStarted()
	for k, pend := range d.pending {
		if len(pend) > 0 && pend[0].rec.Status == record.StatusDeployed {
			recs = append(recs, pend[0].rec)
			keys = append(keys, k)
			gens = append(gens, d.gen[k])
		}
	}
	d.mu.Unlock()
	defer d.bulkDone()
	if len(recs) == 0 {
		return
	}
	log := d.cfg.Log.WithValues("records", len(recs))
	log.Info("First sync of the cluster: delivering in bulk")
	d.mu.Lock()
	round := d.cred.round
	d.mu.Unlock()
	start := d.cfg.Now()
	results, err := cs.PostCluster(ctx, recs)
	switch sink.Classify(err) {
	case sink.ClassNone:
	case sink.ClassCredentials:
		// Logged as the sink's transition; the records wait for the pause like any other.
		d.refuse(nil, round, err)
	default:
		if cutShort(ctx, err) {
			log.Info("Bulk delivery stopped by the shutdown; the records not delivered stay pending")
			break
		}
		log.Error(err, "Bulk delivery failed; the records not delivered are posted one by one")
		var ra *sink.RetryAfterError
		if errors.As(err, &ra) {
			d.mu.Lock()
			if ra.At.After(d.pauseTill) {
				d.pauseTill = ra.At
			}
			d.mu.Unlock()
		}
	}
	delivered, superseded := 0, 0
	for i, r := range recs {
		if i >= len(results) || results[i] != nil {
			continue
		}
		k := keys[i]
		d.mu.Lock()
		_, busy := d.held[k]
		if busy || d.gen[k] != gens[i] {
			// Superseded: a post of the key went out one by one since the bulk took r (or is going out).
			superseded++
			d.unsure[k] = struct{}{}
			repost := !busy && len(d.pending[k]) == 0
			if repost {
				d.setPending(k, []item{{rec: d.delivered[k]}})
			}
			d.mu.Unlock()
			if repost {
				d.queue.Add(k)
			}
			continue
		}
		d.held[k] = struct{}{} // the report is ordered with the key's posts, as a worker's is
		d.mu.Unlock()
		// After a shutdown the ledger is not written: a bulk of thousands would outlast the shutdown's budget,
		// and the next leader posts the records again (delivery is an upsert).
		if ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			d.report(func(rep Reporter) { rep.Delivered(rctx, r) })
			cancel()
		}
		d.mu.Lock()
		d.delivered[k] = r
		d.dropFirst(k, r)
		requeue := d.release(k)
		d.mu.Unlock()
		if requeue {
			d.queue.Add(k)
		}
		delivered++
		d.count(func(m *metrics.Metrics) { m.PostOK.Inc() })
	}
	log.Info("Bulk delivery done", "delivered", delivered, "superseded", superseded, "left", len(recs)-delivered-superseded,
		"took", d.cfg.Now().Sub(start))
}

// backoff is the delay the queue's rate limiter applies after n failures.
func (d *Dispatcher) backoff(n int) time.Duration { return backoff(n, d.cfg.BaseDelay, d.cfg.MaxDelay) }

func (d *Dispatcher) report(f func(Reporter)) {
	if d.cfg.Reporter != nil {
		f(d.cfg.Reporter)
	}
}

// Seed tells the dispatcher what the sink already holds for r's key (from the ledger, after a restart), so
// that desiring it again costs no call. It does nothing for a key with records pending or delivered since, and
// keeps nothing of a decommission (remember).
func (d *Dispatcher) Seed(r record.Record) {
	k := r.Key()
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.delivered[k]; ok || len(d.pending[k]) > 0 {
		return
	}
	d.remember(k, r)
}

func equal(a, b record.Record) bool { return record.Equal(a, b) }

// pace returns a token bucket that never allows more than limit requests in any window of period, yet lets a
// burst through at once (a rollout of a few workloads is posted without waiting): a bucket of depth b
// refilled at r allows at most b + r·period in a window, so b = limit/6 and r = (limit-b)/period. nil when
// limit is 0 (unlimited).
func pace(limit int, period time.Duration) *rate.Limiter {
	if limit <= 0 {
		return nil
	}
	burst := max(1, limit/6)
	refill := limit - burst
	if refill == 0 { // a limit of one: one request per period
		refill = limit
	}
	return rate.NewLimiter(rate.Limit(float64(refill)/period.Seconds()), burst)
}
