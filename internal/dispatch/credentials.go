package dispatch

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/go-logr/logr"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// Default bounds of the pause of a sink that refuses the credentials: the first pause, doubled with each
// refused round, up to the cap. A refusal is fixed by a person (a new token, an SSO authorization, a
// permission granted), so the first retry comes soon enough for a quick fix and the cap bounds both the wait
// after a slow one and the refused requests meanwhile (six an hour).
const (
	DefaultCredentialsBaseDelay = 30 * time.Second
	DefaultCredentialsMaxDelay  = 10 * time.Minute
)

// credentialsJitter is the share of a credentials pause taken off at random, so that trackers sharing
// credentials (one GitHub App for many clusters) do not all retry in the same instant.
const credentialsJitter = 0.1

// credentialsDefaults fills the bounds of the credentials pause.
func credentialsDefaults(base, maxDelay *time.Duration) {
	if *base <= 0 {
		*base = DefaultCredentialsBaseDelay
	}
	if *maxDelay <= 0 {
		*maxDelay = DefaultCredentialsMaxDelay
	}
	if *maxDelay < *base {
		*maxDelay = *base
	}
}

// jitterDown takes up to credentialsJitter of d off at random: the pause never exceeds its cap.
func jitterDown(d time.Duration) time.Duration {
	span := int64(float64(d) * credentialsJitter)
	if span <= 0 {
		return d
	}
	return d - time.Duration(rand.Int64N(span))
}

// credentials is what a dispatcher knows of whether one sink accepts the tracker's credentials. A refusal
// (sink.ClassCredentials) says nothing about the record or rollout posted: the whole sink pauses, with a
// pause that grows with each refused round, every item stays pending, and the first success ends it. A round
// is one pause and the posts begun before it ends: posts already in flight when the first of them is refused
// do not grow the pause again. K is the dispatcher's key; the zero value accepts. Callers hold the
// dispatcher's lock.
type credentials[K comparable] struct {
	refused bool
	since   time.Time // first refusal of this episode
	err     error     // the last refusal (the sink.CredentialsError)
	rounds  int       // refused rounds in a row
	round   uint64    // bumped when a pause begins; a post remembers the round it began in
	until   time.Time // end of the current pause
	// reported are the keys whose refusal (or wait for the refused sink) the reporter was told of in this
	// episode: each is reported once, so that the ledger is written on the transition, not on every retry.
	reported map[K]struct{}
}

// refuse records that the sink refused the credentials to a post begun in round. When that post began in
// the current round (or the sink accepted until now) a new, longer pause begins, until now+pause; first
// tells that the sink accepted until now.
func (c *credentials[K]) refuse(now time.Time, round uint64, err error, base, maxDelay time.Duration, jitter func(time.Duration) time.Duration) (pause time.Duration, first, grown bool) {
	// The refusal itself, without the context of the post it answered: it is what the items that only wait
	// are reported with.
	c.err = err
	var ce *sink.CredentialsError
	if errors.As(err, &ce) {
		c.err = ce
	}
	first = !c.refused
	if first {
		c.refused, c.since, c.rounds, c.reported = true, now, 0, map[K]struct{}{}
	} else if round != c.round {
		return 0, false, false // begun before the current pause: that refusal is already paid for
	}
	pause = jitter(backoff(c.rounds, base, maxDelay))
	c.rounds++
	c.round++
	c.until = now.Add(pause)
	return pause, first, true
}

// accept records a success: the episode ends, and the next refusal starts from the first pause again. It
// returns whether the sink was refusing, since when, and the end of the pause that no longer applies.
func (c *credentials[K]) accept() (was bool, since, until time.Time) {
	if !c.refused {
		return false, time.Time{}, time.Time{}
	}
	was, since, until = true, c.since, c.until
	*c = credentials[K]{round: c.round}
	return was, since, until
}

// report reports whether k is to be reported as waiting for the refused sink, and marks it reported.
func (c *credentials[K]) report(k K) bool {
	if !c.refused {
		return false
	}
	if _, ok := c.reported[k]; ok {
		return false
	}
	c.reported[k] = struct{}{}
	return true
}

// credentialsObserver tells of the transitions of a sink's credentials: the log (once per transition, not per
// item), the gauge and the OnCredentials callback.
type credentialsObserver struct {
	metrics *metrics.Metrics
	log     logr.Logger
	on      func(sink string, refused bool, err error)
}

// started sets the gauge of a configured sink to 0, so that it is exported before any refusal.
func (o credentialsObserver) started(sinkName string) {
	if o.metrics != nil {
		o.metrics.SinkCredentialsRefused.WithLabelValues(sinkName).Set(0)
	}
}

// refused tells of a refusal: an error and the callback on the first of an episode, a V(1) line when the
// pause grows.
func (o credentialsObserver) refused(sinkName string, err error, pause time.Duration, first, grown bool, since, now time.Time) {
	switch {
	case first:
		if o.metrics != nil {
			o.metrics.SinkCredentialsRefused.WithLabelValues(sinkName).Set(1)
		}
		o.log.Error(err, "Sink refused the credentials; pausing it, nothing is dropped", "sink", sinkName, "retryIn", pause)
		if o.on != nil {
			o.on(sinkName, true, err)
		}
	case grown:
		o.log.V(1).Info("Sink still refuses the credentials; pausing longer", "sink", sinkName, "retryIn", pause,
			"refusedFor", now.Sub(since), "error", err.Error())
	}
}

// accepted tells of the end of an episode.
func (o credentialsObserver) accepted(sinkName string, since, now time.Time) {
	if o.metrics != nil {
		o.metrics.SinkCredentialsRefused.WithLabelValues(sinkName).Set(0)
	}
	o.log.Info("Sink accepts the credentials again; posting resumed", "sink", sinkName, "refusedFor", now.Sub(since))
	if o.on != nil {
		o.on(sinkName, false, nil)
	}
}
