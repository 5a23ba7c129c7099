// Package delivery is the delivery metrics rollout sink: it turns rollout notifications into the observations of
// internal/delivery (the four DORA keys), each made once per rollout, and hands them to exporters: Prometheus
// (Prometheus, always) and any other (OpenTelemetry).
//
//	the first pod of the revision runs → delivery.KindRunning    lead time, stage running
//	the rollout became Current         → delivery.KindComplete   lead time, stage complete; rollout duration;
//	                                                             a deployment; time to restore
//	the rollout Failed                 → delivery.KindFailed     a failed change
//	the rollout was RolledBack         → delivery.KindRolledBack a failed change, unless it failed first
//
// A rollout counts as one failed change at most: one that failed and was then rolled back is KindFailed only.
// Adopted rollouts (complete before the tracker first saw the workload) are never notified, and observe nothing.
//
// # Exactly once
//
// The kinds observed are listed in the state the sink returns (StateObserved), which the ledger keeps across
// restarts and leader changes and hands back with every notification: a kind it lists is never observed again.
// With a StateRecorder (the ledger) the state is written before the observations are recorded, so that a crash
// in between loses an observation rather than repeats it. Rollouts the sink was never told of whose events are
// older than Config.CatchUp when it starts (a tracker upgraded to one with delivery metrics) are marked observed
// without being recorded: they would show as a burst of deployments carrying the lead times of old commits.
//
// # The commit
//
// The commit of a rollout is looked for once, at its first observation, and kept in the state:
//
//  1. AnnotationCommitTime (RFC 3339) on the workload or its pod template is the commit time, with the commit of
//     step 2 if there is one: no lookup.
//  2. AnnotationCommit or AnnotationImageRevision (org.opencontainers.image.revision) on the workload, else on its
//     pod template, is the commit.
//  3. The repository, and the ref rule when step 2 found no commit: the workload's GitHub Deployments
//     configuration (github.deployment-tracker.io/ annotations or a GitHubDeployment, internal/sink/githubdeploy),
//     else AnnotationRepository with AnnotationRefFrom, AnnotationRefRegexp and AnnotationRefTemplate, the
//     syntax of the github.deployment-tracker.io/ ones (internal/extract: by default the first container's image
//     tag).
//  4. The commit's committer date, from GitHub (GET /repos/{owner}/{repo}/commits/{ref},
//     https://docs.github.com/rest/commits/commits#get-a-commit), kept in a bounded cache: by SHA until evicted,
//     by branch or tag name for Config.RefTTL.
//
// A rollout whose commit time stays unknown is observed without lead time and counted by reason
// (metrics.WithoutCommit*, through exporters that are a WithoutCommitRecorder). A commit GitHub does not know
// is such a rollout; a rate limit, refused credentials or a retryable failure is returned (the dispatcher
// retries or pauses the sink) before anything is observed. A rollback (a rollout restoring an earlier
// revision's template) brings no new change: it has no lead time, and no commit is looked for.
//
// # Time to restore
//
// A completed rollout ends the outage that began with the first failed (or rolled back) rollout of its workload
// since the workload's last completed one: the ledger's history of the workload (History), with the failure
// times this sink kept in the state of each (StateFailedAt: a rollback moves a rollout's finish time, not that).
// A rollout that failed and then recovered ends its own outage. Without History (no ledger), the failures this
// sink observed since it started.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/lru"

	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/ghclient"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/githubdeploy"
)

// Name is the sink's name: its status in the RolloutRecords is kept under it, so it must not change.
const Name = "delivery"

// The annotations of a workload (and, for the commit, of its pod template) that name the commit of its rollouts.
// rollout.Transform keeps them on cached workloads.
const (
	AnnotationPrefix = "delivery.deployment-tracker.io/"
	// AnnotationCommitTime is the commit time (RFC 3339): no lookup.
	AnnotationCommitTime = AnnotationPrefix + "commit-time"
	// AnnotationCommit is the commit (a SHA, or any ref of the repository).
	AnnotationCommit = AnnotationPrefix + "commit"
	// AnnotationImageRevision is the OCI annotation of the source revision
	// (https://github.com/opencontainers/image-spec/blob/main/annotations.md), read like AnnotationCommit.
	AnnotationImageRevision = "org.opencontainers.image.revision"
	// AnnotationRepository is the repository the commit is looked up in: NAME (in the organization) or
	// OWNER/NAME; the GitHub Deployments configuration of the workload wins over it.
	AnnotationRepository = AnnotationPrefix + "repository"
	// AnnotationRefFrom, AnnotationRefRegexp and AnnotationRefTemplate extract the ref when no annotation names
	// the commit, as their github.deployment-tracker.io/ namesakes do (default: the first container's image tag).
	AnnotationRefFrom     = AnnotationPrefix + "ref-from"
	AnnotationRefRegexp   = AnnotationPrefix + "ref-regexp"
	AnnotationRefTemplate = AnnotationPrefix + "ref-template"
)

// The state keys the sink returns.
const (
	// StateObserved lists the kinds observed (recorded, or marked by the catch-up), comma-separated.
	StateObserved = "observed"
	// StateCommit is the commit (or the ref, when it was not resolved).
	StateCommit = "commit"
	// StateCommitTime is the commit time (RFC 3339), when known.
	StateCommitTime = "commitTime"
	// StateWithoutCommit is why the commit time is not known (a metrics.WithoutCommit* reason).
	StateWithoutCommit = "withoutCommit"
	// StateFailedAt is when the rollout failed or was rolled back (RFC 3339), for the time to restore.
	StateFailedAt = "failedAt"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds one Notify: a few cache reads, a commit lookup, a list of the ledger and a write.
	DefaultTimeout = 20 * time.Second
	// DefaultCatchUp is how old the events of rollouts the sink was never told of may be at its start, and
	// still be recorded.
	DefaultCatchUp = time.Hour
	// DefaultCacheSize bounds the commits kept.
	DefaultCacheSize = 4096
	// DefaultRefTTL is how long a commit looked up by a branch or tag name is kept: long enough for the
	// workloads deployed from one commit together, short enough for a branch that moves.
	DefaultRefTTL = time.Minute
	// maxOutages bounds the failures kept in memory without History.
	maxOutages = 4096
	// maxCommit bounds the commit kept in the state (a git ref name has at most 255 bytes).
	maxCommit = 255
)

// WorkloadReader reads the annotations of a workload and of its pod template; found is false when it no longer
// exists.
type WorkloadReader interface {
	Annotations(ctx context.Context, w owner.Workload) (a Annotations, found bool, err error)
}

// Annotations are the annotations of a workload and of its pod template.
type Annotations struct {
	Workload, Template map[string]string
}

// StateRecorder keeps the sink's state of a rollout durable (ledger.Ledger.RolloutDelivered) before the
// observations it lists are recorded.
type StateRecorder interface {
	RolloutDelivered(ctx context.Context, r rollout.Rollout, sink string, state map[string]string) error
}

// WithoutCommitRecorder is an exporter that also counts the rollouts observed without a lead time, once per
// rollout, by reason (a metrics.WithoutCommit* value). The sink finds it with a type assertion.
type WithoutCommitRecorder interface {
	RecordWithoutCommit(ctx context.Context, r delivery.Rollout, reason string)
}

// Config configures the sink.
type Config struct {
	// Name is the sink's name in the ledger (default Name).
	Name string
	// LogicalEnvironment and Cluster label every observation (LOGICAL_ENVIRONMENT and CLUSTER).
	// LogicalEnvironment is required.
	LogicalEnvironment, Cluster string
	// Exporters record the observations; at least one.
	Exporters []delivery.Exporter
	// Workloads reads the commit annotations; nil: none are read.
	Workloads WorkloadReader
	// Targets finds the GitHub Deployments configuration of a workload that a GitHubDeployment names
	// (githubdeploy.Targets); nil: only annotations configure repositories.
	Targets githubdeploy.TargetReader
	// Objects reads whole workloads, for JSONPath ref rules (githubdeploy.APIObjects); nil: such rules extract
	// nothing.
	Objects githubdeploy.ObjectReader
	// Client looks commits up at GitHub; nil (a dry run): never, and a commit without AnnotationCommitTime has
	// no time.
	Client *ghclient.Client
	// Org is the owner of repositories named without one.
	Org string
	// History reads a workload's rollouts for the time to restore (ledger.Ledger); nil: the failures observed
	// since the sink started.
	History History
	// Ledger, if set, keeps the state durable before the observations are recorded (ledger.Ledger).
	Ledger StateRecorder
	// CatchUp is how old, at the sink's start, the events of a rollout the sink was never told of may be and
	// still be recorded (default DefaultCatchUp; negative: any age).
	CatchUp time.Duration
	// CacheSize bounds the commits kept (default DefaultCacheSize); RefTTL is how long one looked up by a branch
	// or tag name is kept (default DefaultRefTTL).
	CacheSize int
	RefTTL    time.Duration
	// Timeout bounds one Notify (default DefaultTimeout).
	Timeout time.Duration
	// Now is the clock of the catch-up and of RefTTL (default time.Now).
	Now func() time.Time
}

// Sink observes delivery metrics. It is safe for concurrent use.
type Sink struct {
	cfg     Config
	started time.Time
	commits *lru.Cache // owner/repo@ref → cachedCommit

	mu sync.Mutex
	// outages is, without History, the first failure of each workload since its last completed rollout.
	outages map[owner.Workload]time.Time
}

var _ sink.RolloutSink = (*Sink)(nil)

// New validates cfg and returns a Sink.
func New(cfg Config) (*Sink, error) {
	var errs []error
	if cfg.LogicalEnvironment == "" {
		errs = append(errs, errors.New("delivery: LogicalEnvironment is required"))
	}
	if len(cfg.Exporters) == 0 {
		errs = append(errs, errors.New("delivery: an exporter is required"))
	}
	if slices.Contains(cfg.Exporters, nil) {
		errs = append(errs, errors.New("delivery: an exporter is nil"))
	}
	if cfg.CacheSize < 0 || cfg.RefTTL < 0 || cfg.Timeout < 0 {
		errs = append(errs, errors.New("delivery: CacheSize, RefTTL and Timeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = Name
	}
	if cfg.CatchUp == 0 {
		cfg.CatchUp = DefaultCatchUp
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.RefTTL == 0 {
		cfg.RefTTL = DefaultRefTTL
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Exporters = slices.Clone(cfg.Exporters)
	return &Sink{cfg: cfg, started: cfg.Now(), commits: lru.New(cfg.CacheSize), outages: map[owner.Workload]time.Time{}}, nil
}

// Notify makes the observations the rollout calls for that the state does not list yet, as the package
// describes, and returns the state listing them.
func (s *Sink) Notify(ctx context.Context, n rollout.Notification) (map[string]string, error) {
	r := n.Rollout
	st := maps.Clone(n.State)
	if st == nil {
		st = map[string]string{}
	}
	observed := kindsOf(st[StateObserved])
	due := dueKinds(r, observed)
	if r.Adopted || len(due) == 0 {
		return st, nil
	}
	record := due
	if n.Acknowledged == "" && len(n.State) == 0 {
		record = slices.DeleteFunc(slices.Clone(due), func(k delivery.Kind) bool { return s.stale(r, k) })
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()

	c, known := commitOfState(st)
	fresh := !known && needsCommit(record) && r.Restores == 0
	if fresh {
		var err error
		if c, err = s.resolve(ctx, r); err != nil {
			return nil, err
		}
	}
	var failedSince time.Time
	if slices.Contains(record, delivery.KindComplete) {
		var err error
		if failedSince, err = s.failedSince(ctx, r, st); err != nil {
			return nil, err
		}
	}

	if fresh {
		c.into(st)
	}
	for _, k := range due {
		observed = append(observed, string(k))
		if k == delivery.KindFailed || k == delivery.KindRolledBack {
			st[StateFailedAt] = failedAt(r).UTC().Format(time.RFC3339Nano)
		}
	}
	st[StateObserved] = strings.Join(observed, ",")
	if s.cfg.Ledger != nil {
		if err := s.cfg.Ledger.RolloutDelivered(ctx, r, s.cfg.Name, st); err != nil {
			return nil, fmt.Errorf("keeping the delivery state of %s revision %d: %w", r.Workload, r.Revision, err)
		}
	}

	// Kept: now recorded.
	dr := s.deliveryRollout(r, c, failedSince)
	if fresh && c.Reason != "" {
		for _, e := range s.cfg.Exporters {
			if wc, ok := e.(WithoutCommitRecorder); ok {
				wc.RecordWithoutCommit(ctx, dr, c.Reason)
			}
		}
	}
	for _, k := range record {
		for _, e := range s.cfg.Exporters {
			e.Record(ctx, delivery.Observation{Kind: k, Rollout: dr})
		}
	}
	s.remember(r, record)
	return st, nil
}

// dueKinds are the kinds of observations r calls for that observed does not list, in the order of the rollout.
func dueKinds(r rollout.Rollout, observed []string) []delivery.Kind {
	has := func(k delivery.Kind) bool { return slices.Contains(observed, string(k)) }
	var due []delivery.Kind
	if !r.FirstRunning.IsZero() && !has(delivery.KindRunning) {
		due = append(due, delivery.KindRunning)
	}
	// Completed is set when the rollout became Current and stays set: a rollout superseded before its Current
	// was delivered completed all the same.
	if !r.Completed.IsZero() && !has(delivery.KindComplete) {
		due = append(due, delivery.KindComplete)
	}
	failed := has(delivery.KindFailed) || has(delivery.KindRolledBack)
	switch {
	case failed:
	case r.Phase == rollout.PhaseFailed:
		due = append(due, delivery.KindFailed)
	case r.Phase == rollout.PhaseRolledBack:
		due = append(due, delivery.KindRolledBack)
	}
	return due
}

// stale reports whether the event of kind k of r happened more than CatchUp before the sink started.
func (s *Sink) stale(r rollout.Rollout, k delivery.Kind) bool {
	if s.cfg.CatchUp < 0 {
		return false
	}
	at := failedAt(r)
	switch k {
	case delivery.KindRunning:
		at = r.FirstRunning
	case delivery.KindComplete:
		at = r.Completed
	}
	return at.Before(s.started.Add(-s.cfg.CatchUp))
}

// needsCommit reports whether an observation of kinds has a lead time.
func needsCommit(kinds []delivery.Kind) bool {
	return slices.Contains(kinds, delivery.KindRunning) || slices.Contains(kinds, delivery.KindComplete)
}

// failedAt is when r failed or was rolled back: its finish time (set for both), else its start.
func failedAt(r rollout.Rollout) time.Time {
	if !r.Finished.IsZero() {
		return r.Finished
	}
	return r.Started
}

// kindsOf reads StateObserved. Names this version does not know are kept, and written back.
func kindsOf(v string) []string {
	var out []string
	for k := range strings.SplitSeq(v, ",") {
		if k = strings.TrimSpace(k); k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func (s *Sink) deliveryRollout(r rollout.Rollout, c commit, failedSince time.Time) delivery.Rollout {
	return delivery.Rollout{
		Workload: r.Workload, Environment: s.cfg.LogicalEnvironment, Cluster: s.cfg.Cluster, Revision: r.Revision,
		Commit: c.SHA, CommitTime: c.Time,
		Submitted: r.Submitted, FirstRunning: r.FirstRunning, Completed: r.Completed, Finished: r.Finished,
		FailedSince: failedSince,
	}
}
