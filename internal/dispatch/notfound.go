package dispatch

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/go-logr/logr"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// A 404 means one of two things, and the dispatcher keeps them apart:
//
//   - the artifact has no attestation (GitHub's "no artifacts found"): a fact about the record. The artifact is
//     cached negatively for UnknownArtifactTTL, the record is kept (parked, not pending) and posted again when
//     the entry expires, unless a newer record of its key replaces it; the reporter (the ledger) remembers it, so
//     that a restart does not post it again before then (Config.NotAttested).
//   - what the sink posts to does not exist (a wrong ORG, a GitHub Enterprise Server BASE_URL without /api/v3):
//     a fact about the configuration. The sink says so with an error whose Misconfigured method returns true
//     (the GitHub sink checks its organization when a 404 is not the unknown-artifact answer, see
//     TargetChecker). Nothing is cached or dropped: the whole sink pauses, with the credentials pause's growing
//     backoff (CredentialsBaseDelay to CredentialsMaxDelay), and checks its target again at the end of each pause
//     until it answers.
//
// Why a pause of its own and not the credentials one: the remedy differs (fix ORG or BASE_URL, not the token),
// so the log line, OnMisconfigured (the app's deptracker_sink_misconfigured gauge) and the ledger reason
// (Misconfigured) say which one it is, and an alert on refused credentials does not fire for a typo in ORG. The
// mechanics are the same — pause the sink, keep everything pending, report each waiting record once, resume by
// itself — so the state is the same type, credentials[record.Key].

// TargetChecker is a sink that can check, with one read-only request, that what it posts to exists (the GitHub
// sink: GET /orgs/{org}). The dispatcher checks before the first post, and at the end of each pause while the
// target is missing.
type TargetChecker interface {
	// CheckTarget returns nil when the target exists; an error whose Misconfigured method returns true when it
	// does not; any other error when it cannot tell (network, 5xx, a rate limit, refused credentials).
	CheckTarget(ctx context.Context) error
}

// misconfiguredError is an error of a sink that says its configuration, not the item, is wrong.
type misconfiguredError interface {
	error
	Misconfigured() bool
}

// misconfigured returns the error in err's chain that says the sink's configuration is wrong, if any.
func misconfigured(err error) (error, bool) {
	var m misconfiguredError
	if errors.As(err, &m) && m.Misconfigured() {
		return m, true
	}
	return nil, false
}

// NotAttested is an artifact the sink answered, before a restart, that it has no attestation for, under one
// key, as the ledger remembers it: it is not posted again before Until.
type NotAttested struct {
	Key          record.Key
	Name, Digest string
	Until        time.Time
	// Message is the error the ledger keeps for it; the other keys that wait for the artifact are reported with
	// it.
	Message string
}

// notFound is an entry of the negative cache: until when the artifact is not posted, and the 404 that said so.
type notFound struct {
	until time.Time
	err   error
}

// parked is a record whose artifact has no attestation, waiting for the negative cache entry to expire.
type parked struct {
	it    item
	until time.Time
}

// recalledError is the 404 of an artifact as the ledger kept it across a restart.
type recalledError struct {
	msg string
	nf  *sink.NotFoundError
}

func (e *recalledError) Error() string { return e.msg }
func (e *recalledError) Unwrap() error { return e.nf }

// target is what to post for r, the head of k's pending records. A decommission goes to the digest the sink
// holds for k: when a workload's new digest was answered 404 (or rejected), the sink still holds the old one,
// and decommissioning the new one would leave the old one deployed at GitHub forever.
// Callers hold d.mu.
func (d *Dispatcher) target(k record.Key, r record.Record) record.Record {
	if r.Status != record.StatusDecommissioned {
		return r
	}
	del, ok := d.delivered[k]
	if !ok || del.Status != record.StatusDeployed || (del.Name == r.Name && del.Digest == r.Digest) {
		return r
	}
	del.Status = record.StatusDecommissioned
	return del
}

// cachedNotFound returns the negative cache entry of r's artifact while it lasts; an expired one is removed.
// Callers hold d.mu.
func (d *Dispatcher) cachedNotFound(r record.Record) (notFound, bool) {
	a := artifact{r.Name, r.Digest}
	nf, ok := d.unknown[a]
	if !ok {
		return notFound{}, false
	}
	if !d.cfg.Now().Before(nf.until) {
		delete(d.unknown, a)
		return notFound{}, false
	}
	return nf, true
}

// park takes it, the record of k just answered 404 (or known to be), off k's pending records and, unless a newer
// record of k was desired meanwhile, keeps it to be posted again at until. It reports whether it did, so that the
// caller sets the timer. Callers hold d.mu.
func (d *Dispatcher) park(k record.Key, it item, until time.Time) bool {
	pend := d.pending[k]
	newer := len(pend) != 1 || !equal(pend[0].rec, it.rec)
	d.dropFirst(k, it.rec)
	if newer {
		return false
	}
	d.parked[k] = parked{it: it, until: until}
	return true
}

// unpark makes k's parked record pending again once its time has come. Callers hold d.mu.
func (d *Dispatcher) unpark(k record.Key) {
	p, ok := d.parked[k]
	if !ok || len(d.pending[k]) > 0 || d.cfg.Now().Before(p.until) {
		return
	}
	delete(d.parked, k)
	d.setPending(k, []item{p.it})
}

// recall loads the artifacts the sink said had no attestation before a restart into the negative cache, each
// until its time, but no longer than UnknownArtifactTTL from now.
func (d *Dispatcher) recall(ctx context.Context) {
	if d.cfg.NotAttested == nil {
		return
	}
	list, err := d.cfg.NotAttested(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Log.Error(err, "Cannot read which artifacts have no attestation; they are posted again")
		}
		return
	}
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, na := range list {
		until := na.Until
		if limit := now.Add(d.cfg.UnknownArtifactTTL); until.After(limit) {
			until = limit // the TTL is shorter now than when the 404 came
		}
		if !until.After(now) {
			continue
		}
		a := artifact{na.Name, na.Digest}
		if cur, ok := d.unknown[a]; !ok || cur.until.Before(until) {
			msg := na.Message
			if msg == "" {
				msg = "no attestation for " + na.Name + "@" + na.Digest
			}
			d.unknown[a] = notFound{until: until, err: &recalledError{msg: msg, nf: &sink.NotFoundError{Message: msg}}}
		}
		d.recalled[na.Key] = a
		n++
	}
	if n > 0 {
		d.cfg.Log.Info("Artifacts without attestation remembered from the ledger; not posted again before their time", "records", n)
	}
}

// reportHit reports whether a cache hit of k for artifact a is to be reported: not when the ledger already
// says so for k (recalled after a restart), so that a restart writes nothing for it. Callers hold d.mu.
func (d *Dispatcher) reportHit(k record.Key, a artifact) bool {
	was, ok := d.recalled[k]
	delete(d.recalled, k)
	return !ok || was != a
}

// checkAtStart checks the sink's target before anything is posted, and pauses the sink when it is missing.
// It reports whether the sink may post.
func (d *Dispatcher) checkAtStart(ctx context.Context) bool {
	checker, ok := d.cfg.Sink.(TargetChecker)
	if !ok {
		return true
	}
	d.mu.Lock()
	round := d.misconf.round
	d.mu.Unlock()
	err := checker.CheckTarget(ctx)
	switch m, mis := misconfigured(err); {
	case err == nil:
		d.cfg.Log.V(1).Info("Sink target checked", "sink", d.cfg.SinkName)
		return true
	case mis:
		d.misconfigure(round, m, false)
		return false
	case ctx.Err() == nil:
		d.cfg.Log.Info("Cannot check the sink's target; posting anyway", "sink", d.cfg.SinkName, "error", err.Error())
	}
	return true
}

// recheck checks the target of a misconfigured sink at the end of a pause (on one worker at a time; the
// caller set d.checking). It ends the episode and reports true when the target answers; else the pause grows.
// A sink that cannot check is let through: its next post is the probe.
func (d *Dispatcher) recheck(ctx context.Context, round uint64) bool {
	checker, ok := d.cfg.Sink.(TargetChecker)
	var err error
	if ok {
		err = checker.CheckTarget(ctx)
	}
	if err == nil {
		d.configured(true)
		return true
	}
	m, mis := misconfigured(err)
	if !mis {
		// Not disproved: keep the pause, and the error the waiting records are reported with.
		d.cfg.Log.V(1).Info("Cannot check the sink's target; still paused", "sink", d.cfg.SinkName, "error", err.Error())
		d.mu.Lock()
		m = d.misconf.err
		d.mu.Unlock()
	}
	d.misconfigure(round, m, true)
	return false
}

// misconfigure records that the sink's target is missing, found by a post or a check begun in round, and pauses
// the sink; checked tells that the check of the worker that set d.checking is over. It returns the end of the
// pause.
func (d *Dispatcher) misconfigure(round uint64, err error, checked bool) time.Time {
	now := d.cfg.Now()
	d.mu.Lock()
	if checked {
		d.checking = false // in the same critical section as the new pause: no other worker checks meanwhile
	}
	pause, first, grown := d.misconf.refuse(now, round, err, d.cfg.CredentialsBaseDelay, d.cfg.CredentialsMaxDelay, d.jitter)
	if d.misconf.until.After(d.pauseTill) {
		d.pauseTill = d.misconf.until
	}
	until, since := d.pauseTill, d.misconf.since
	d.mu.Unlock()
	misconfiguredObserver{log: d.cfg.Log, on: d.cfg.OnMisconfigured}.misconfigured(d.cfg.SinkName, err, pause, first, grown, since, now)
	return until
}

// configured ends an episode of a misconfigured sink, if one is going on: its target answered (checked: the
// check of the worker that set d.checking), or it accepted a post.
func (d *Dispatcher) configured(checked bool) {
	d.mu.Lock()
	if checked {
		d.checking = false
	}
	was, since, until := d.misconf.accept()
	if was && d.pauseTill.Equal(until) {
		d.pauseTill = time.Time{}
	}
	d.mu.Unlock()
	if was {
		misconfiguredObserver{log: d.cfg.Log, on: d.cfg.OnMisconfigured}.configured(d.cfg.SinkName, since, d.cfg.Now())
	}
}

// waitMisconfigured handles k while the sink is misconfigured: at the end of the pause one worker checks the
// target again (and k is delivered at once if it answers); meanwhile k waits on a timer, reported once per
// episode. It reports whether k was handled (requeued); false: the sink is not misconfigured, post. Callers hold
// d.mu; waitMisconfigured releases it when it returns true.
func (d *Dispatcher) waitMisconfigured(ctx context.Context, k record.Key, r record.Record) bool {
	if !d.misconf.refused {
		return false
	}
	if !d.pauseTill.After(d.cfg.Now()) && !d.checking {
		d.checking = true
		round := d.misconf.round
		d.mu.Unlock()
		if d.recheck(ctx, round) {
			d.queue.Add(k) // k is still held: delivered again, now that the sink posts
			return true
		}
		d.mu.Lock()
	}
	report, misErr, until := d.misconf.report(k), d.misconf.err, d.pauseTill
	d.mu.Unlock()
	if report {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		d.report(func(rep Reporter) { rep.Failed(rctx, r, misErr, d.queue.NumRequeues(k), until) })
		cancel()
	}
	// Past the pause (another worker is checking): look again shortly.
	d.after(k, max(until.Sub(d.cfg.Now()), 0)+time.Duration(rand.Int64N(int64(pauseJitter))))
	return true
}

// misconfiguredObserver tells of the transitions of a misconfigured sink: an error log line naming the
// configuration (the sink's error does: ORG and BASE_URL for GitHub) and OnMisconfigured on both transitions, a
// V(1) line when the pause grows.
type misconfiguredObserver struct {
	log logr.Logger
	on  func(sink string, misconfigured bool, err error)
}

func (o misconfiguredObserver) misconfigured(sinkName string, err error, pause time.Duration, first, grown bool, since, now time.Time) {
	switch {
	case first:
		o.log.Error(err, "Sink misconfigured: what it posts to does not exist; pausing it, nothing is dropped", "sink", sinkName, "retryIn", pause)
		if o.on != nil {
			o.on(sinkName, true, err)
		}
	case grown:
		o.log.V(1).Info("Sink still misconfigured; pausing longer", "sink", sinkName, "retryIn", pause,
			"misconfiguredFor", now.Sub(since), "error", err.Error())
	}
}

func (o misconfiguredObserver) configured(sinkName string, since, now time.Time) {
	o.log.Info("Sink target found again; posting resumed", "sink", sinkName, "misconfiguredFor", now.Sub(since))
	if o.on != nil {
		o.on(sinkName, false, nil)
	}
}
