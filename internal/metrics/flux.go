package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FluxLabels are the labels of the Flux metrics, in this order: the Kustomization's namespace and name, and the
// tracker's CLUSTER. They are bounded by the Kustomizations of the cluster; revisions and commits are never
// labels.
var FluxLabels = []string{"namespace", "name", "cluster"}

// Flux are the metrics of the revisions Flux Kustomizations apply (internal/flux), recorded once per applied
// revision.
type Flux struct {
	// ApplyLeadTime is the commit time to the Kustomization's Ready transition after applying it.
	ApplyLeadTime *prometheus.HistogramVec
	// RevisionsWithoutCommit counts the applied revisions without a lead time; label reason before FluxLabels.
	RevisionsWithoutCommit *prometheus.CounterVec
}

// newFlux creates the Flux collectors and registers them on reg.
func newFlux(reg prometheus.Registerer) *Flux {
	f := &Flux{
		ApplyLeadTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "deptracker_flux_apply_lead_time_seconds",
			Help: "Time from the commit a Flux Kustomization applied to its Ready transition (reason ReconciliationSucceeded); once per applied revision.",
			// The classic buckets of the other lead times, and a native histogram of 10% resolution.
			Buckets:                         leadTimeBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, FluxLabels),
		RevisionsWithoutCommit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deptracker_flux_revisions_without_commit_total",
			Help: "Revisions applied by Flux Kustomizations without a lead time, by reason (none, invalid, no_repository, lookup_disabled, not_found, rejected, lookup_failed, applied_before_commit).",
		}, append([]string{"reason"}, FluxLabels...)),
	}
	reg.MustRegister(f.ApplyLeadTime, f.RevisionsWithoutCommit)
	return f
}
