package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DeliveryLabels are the labels every delivery metric carries, in this order: the workload's namespace, kind
// and name, and the tracker's LOGICAL_ENVIRONMENT and CLUSTER. They are bounded by the workloads of the cluster;
// commits, refs, digests and revisions are never labels.
var DeliveryLabels = []string{"namespace", "kind", "workload", "environment", "cluster"}

// Stages of deptracker_lead_time_seconds.
const (
	StageRunning  = "running"  // the commit to the first pod of the revision running
	StageComplete = "complete" // the commit to the rollout Current
)

// Outcomes of deptracker_rollouts_failed_total.
const (
	OutcomeFailed     = "failed"
	OutcomeRolledBack = "rolled_back"
)

// Reasons of deptracker_rollouts_without_commit_total: why a rollout has no lead time.
const (
	// WithoutCommitNone: no annotation nor configuration names the commit of the workload.
	WithoutCommitNone = "none"
	// WithoutCommitInvalid: an annotation that does not parse, or a ref rule that extracts nothing.
	WithoutCommitInvalid = "invalid"
	// WithoutCommitNoRepository: a commit is named, but no repository to look its time up in.
	WithoutCommitNoRepository = "no_repository"
	// WithoutCommitLookupDisabled: the commit is known but not its time, and GitHub is not asked (a dry run).
	WithoutCommitLookupDisabled = "lookup_disabled"
	// WithoutCommitNotFound: GitHub knows no such commit (or repository).
	WithoutCommitNotFound = "not_found"
	// WithoutCommitRejected: GitHub refused the lookup for good (another 4xx).
	WithoutCommitRejected = "rejected"
)

// Delivery are the delivery metrics (the four DORA keys), recorded once per rollout by the delivery sink's
// Prometheus exporter (internal/sink/delivery). Every one carries DeliveryLabels.
type Delivery struct {
	// LeadTime is the commit time to the first pod running (stage running) and to the rollout Current (stage
	// complete); label stage before DeliveryLabels.
	LeadTime *prometheus.HistogramVec
	// RolloutDuration is the first pod submitted to the rollout Current.
	RolloutDuration *prometheus.HistogramVec
	// Deployments counts the rollouts that became Current (deployment frequency).
	Deployments *prometheus.CounterVec
	// Failed counts the rollouts that failed or were rolled back (change failure rate); label outcome before
	// DeliveryLabels.
	Failed *prometheus.CounterVec
	// TimeToRestore is the first failure of a workload since its last Current to the Current that ended it.
	TimeToRestore *prometheus.HistogramVec
	// WithoutCommit counts the rollouts without a lead time; label reason before DeliveryLabels.
	WithoutCommit *prometheus.CounterVec
}

// Classic buckets, in seconds, for durations of minutes to days (lead times, time to restore) and of seconds to
// hours (rollouts).
var (
	leadTimeBuckets = seconds(30*time.Second, time.Minute, 2*time.Minute, 5*time.Minute, 10*time.Minute,
		30*time.Minute, time.Hour, 2*time.Hour, 6*time.Hour, 12*time.Hour, 24*time.Hour, 48*time.Hour, 7*24*time.Hour)
	rolloutBuckets = seconds(5*time.Second, 10*time.Second, 30*time.Second, time.Minute, 2*time.Minute,
		5*time.Minute, 10*time.Minute, 30*time.Minute, time.Hour, 2*time.Hour, 6*time.Hour)
)

func seconds(ds ...time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// deliveryHistogram is a histogram with classic buckets and a native (sparse) one: a scraper that negotiates
// native histograms gets 10% resolution at any scale, the others the buckets.
func deliveryHistogram(name, help string, buckets []float64, extra ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: name, Help: help, Buckets: buckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}, append(extra, DeliveryLabels...))
}

// newDelivery creates the delivery collectors and registers them on reg.
func newDelivery(reg prometheus.Registerer) *Delivery {
	d := &Delivery{
		LeadTime: deliveryHistogram("deptracker_lead_time_seconds",
			"Time from the commit of a rollout to its first pod running (stage running) and to the rollout Current (stage complete); once per rollout.",
			leadTimeBuckets, "stage"),
		RolloutDuration: deliveryHistogram("deptracker_rollout_duration_seconds",
			"Time from the first pod of a rollout submitted (the admission webhook's capture) to the rollout Current.",
			rolloutBuckets),
		Deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deptracker_deployments_total", Help: "Rollouts that became Current (deployment frequency).",
		}, DeliveryLabels),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deptracker_rollouts_failed_total",
			Help: "Rollouts that failed (progress deadline, crashing pods) or were rolled back, by outcome; each rollout counts once (change failure rate).",
		}, append([]string{"outcome"}, DeliveryLabels...)),
		TimeToRestore: deliveryHistogram("deptracker_time_to_restore_seconds",
			"Time from the first failed rollout of a workload since its last Current to the rollout Current that ended it.",
			leadTimeBuckets),
		WithoutCommit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deptracker_rollouts_without_commit_total",
			Help: "Rollouts observed without a lead time, by reason (none, invalid, no_repository, lookup_disabled, not_found, rejected).",
		}, append([]string{"reason"}, DeliveryLabels...)),
	}
	reg.MustRegister(d.LeadTime, d.RolloutDuration, d.Deployments, d.Failed, d.TimeToRestore, d.WithoutCommit)
	return d
}
