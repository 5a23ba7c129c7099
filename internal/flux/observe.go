package flux

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// Reasons an applied revision has no lead time: the reason label of
// deptracker_flux_revisions_without_commit_total. The values shared with deptracker_rollouts_without_commit_total
// mean the same there.
const (
	// ReasonNoCommit: the revision names no git commit (an OCI artifact without an origin revision, a Bucket).
	ReasonNoCommit = "none"
	// ReasonInvalidCommitTime: the commit-time annotation is not an RFC 3339 time.
	ReasonInvalidCommitTime = "invalid"
	// ReasonNoRepository: the source is not a GitRepository on GitHub (or cannot be read) and the Kustomization
	// has no repository annotation naming one.
	ReasonNoRepository = "no_repository"
	// ReasonLookupDisabled: there are no GitHub credentials to look commits up with (-dry-run) and no
	// commit-time annotation.
	ReasonLookupDisabled = "lookup_disabled"
	// ReasonCommitNotFound: GitHub does not have the commit, or the credentials cannot see the repository.
	ReasonCommitNotFound = "not_found"
	// ReasonRejected: GitHub refused the lookup for good (another 4xx), or answered a commit without a date.
	ReasonRejected = "rejected"
	// ReasonLookupFailed: the lookup kept failing (network, 5xx, refused credentials) and was given up after the
	// retries.
	ReasonLookupFailed = "lookup_failed"
	// ReasonAppliedBeforeCommit: the Ready transition is before the commit time (clocks that disagree, or a
	// Ready condition that stayed True while the revision changed).
	ReasonAppliedBeforeCommit = "applied_before_commit"
)

// Observation is one applied revision, observed once.
type Observation struct {
	Kustomization types.NamespacedName
	// Cluster is the tracker's CLUSTER.
	Cluster string
	// Revision is the applied revision (status.lastAppliedRevision); Commit its git SHA ("" when none).
	Revision, Commit string
	// Repository is OWNER/REPO, when known.
	Repository string
	// CommitTime is the commit's time (zero when unknown); AppliedAt the Ready transition.
	CommitTime, AppliedAt time.Time
	// LeadTime is AppliedAt − CommitTime, when Reason is "".
	LeadTime time.Duration
	// Reason says why there is no lead time (one of the Reason* constants); "" when there is one.
	Reason string
}

// Recorder records observations. Record is called once per applied revision, on the leader only, after the
// ledger holds it; it must not block.
type Recorder interface {
	Record(ctx context.Context, o Observation)
}

// Prometheus records observations in the tracker's collectors (internal/metrics.Flux): the lead time in
// LeadTime (labels namespace, name, cluster), the revisions without one in WithoutCommit (reason, namespace,
// name, cluster).
type Prometheus struct {
	LeadTime      *prometheus.HistogramVec
	WithoutCommit *prometheus.CounterVec
}

var _ Recorder = Prometheus{}

// Record implements Recorder.
func (p Prometheus) Record(_ context.Context, o Observation) {
	k := o.Kustomization
	if o.Reason == "" {
		p.LeadTime.WithLabelValues(k.Namespace, k.Name, o.Cluster).Observe(o.LeadTime.Seconds())
		return
	}
	p.WithoutCommit.WithLabelValues(o.Reason, k.Namespace, k.Name, o.Cluster).Inc()
}
