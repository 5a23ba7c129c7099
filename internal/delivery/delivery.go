// Package delivery is the model of delivery metrics (the four DORA keys) per rollout: what is observed, once,
// when a rollout's first pod runs and when the rollout ends, and the durations derived from it. It is pure; the
// delivery sink (internal/sink/delivery) makes the observations from rollout notifications, and exporters
// (Prometheus, OpenTelemetry) record them.
//
//	lead time (stage running)  = first pod of the revision Running − commit time
//	lead time (stage complete) = rollout Current − commit time
//	rollout duration           = rollout Current − first pod submitted (the admission webhook's capture)
//	deployments                = rollouts that became Current (deployment frequency)
//	failed rollouts            = rollouts that Failed or were RolledBack (change failure rate)
//	time to restore            = rollout Current − the first failure of the workload since its last Current
package delivery

import (
	"context"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

// Kind is what an observation is about.
type Kind string

// The kinds of observations, each made at most once per rollout.
const (
	// KindRunning: the first pod of the revision runs.
	KindRunning Kind = "running"
	// KindComplete: the rollout became Current.
	KindComplete Kind = "complete"
	// KindFailed: the rollout Failed (its progress deadline passed, or its pods crash).
	KindFailed Kind = "failed"
	// KindRolledBack: the workload went back to an earlier template before the rollout completed, or after.
	KindRolledBack Kind = "rolled_back"
)

// Rollout is what the observations of one rollout know.
type Rollout struct {
	Workload owner.Workload
	// Environment and Cluster are the tracker's LOGICAL_ENVIRONMENT and CLUSTER.
	Environment, Cluster string
	Revision             int64
	// Commit is the commit SHA (or the ref, when it could not be resolved); "" when no commit was found.
	Commit string
	// CommitTime is when the commit was made (its committer date), or the commit-time annotation; zero when
	// unknown.
	CommitTime time.Time
	// Submitted, FirstRunning and Completed are the rollout's timeline (zero when not reached); Finished is when
	// it failed or was rolled back.
	Submitted, FirstRunning, Completed, Finished time.Time
	// FailedSince is, for a rollout that completed after failed rollouts of the workload, when the first of
	// those failures happened (the start of the outage it ends); zero otherwise.
	FailedSince time.Time
}

// Observation is one observation of a rollout.
type Observation struct {
	Kind    Kind
	Rollout Rollout
}

// Exporter records observations. Record is called once per observation, on the leader only; it must not block.
type Exporter interface {
	Record(ctx context.Context, o Observation)
}

// LeadTime is the commit-to-running (KindRunning) or commit-to-Current (KindComplete) time; false when the
// commit time is unknown, the observation has no lead time, or the clocks disagree (a negative duration).
func (o Observation) LeadTime() (time.Duration, bool) {
	r := o.Rollout
	if r.CommitTime.IsZero() {
		return 0, false
	}
	switch o.Kind {
	case KindRunning:
		return positive(r.FirstRunning, r.CommitTime)
	case KindComplete:
		return positive(r.Completed, r.CommitTime)
	}
	return 0, false
}

// RolloutDuration is first submission to Current, for KindComplete.
func (o Observation) RolloutDuration() (time.Duration, bool) {
	if o.Kind != KindComplete {
		return 0, false
	}
	return positive(o.Rollout.Completed, o.Rollout.Submitted)
}

// TimeToRestore is the first failure to the Current that ended it, for KindComplete after failures.
func (o Observation) TimeToRestore() (time.Duration, bool) {
	if o.Kind != KindComplete || o.Rollout.FailedSince.IsZero() {
		return 0, false
	}
	return positive(o.Rollout.Completed, o.Rollout.FailedSince)
}

// Stage is the stage label of a lead time: "running" or "complete".
func (o Observation) Stage() string { return string(o.Kind) }

// positive is end − start when both are set and end is not before start.
func positive(end, start time.Time) (time.Duration, bool) {
	if end.IsZero() || start.IsZero() || end.Before(start) {
		return 0, false
	}
	return end.Sub(start), true
}
