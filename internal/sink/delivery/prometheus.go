package delivery

import (
	"context"

	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
)

// Prometheus records observations in the tracker's delivery collectors (metrics.Delivery), labelled with the
// workload's namespace, kind and name, the environment and the cluster (metrics.DeliveryLabels):
//
//	KindRunning    deptracker_lead_time_seconds{stage="running"}
//	KindComplete   deptracker_lead_time_seconds{stage="complete"}, deptracker_rollout_duration_seconds,
//	               deptracker_deployments_total, deptracker_time_to_restore_seconds (after failures)
//	KindFailed     deptracker_rollouts_failed_total{outcome="failed"}
//	KindRolledBack deptracker_rollouts_failed_total{outcome="rolled_back"}
//
// A duration that is unknown (no commit time, no submission) is not observed. A workload's counters are created
// at zero with its first observation, so that a change failure rate reads 0, not "no data".
type Prometheus struct {
	m *metrics.Delivery
}

var (
	_ delivery.Exporter     = (*Prometheus)(nil)
	_ WithoutCommitRecorder = (*Prometheus)(nil)
)

// NewPrometheus returns an exporter recording into m.
func NewPrometheus(m *metrics.Delivery) *Prometheus { return &Prometheus{m: m} }

// Record implements delivery.Exporter.
func (p *Prometheus) Record(_ context.Context, o delivery.Observation) {
	l := labelValues(o.Rollout)
	with := func(first string) []string { return append([]string{first}, l...) }
	p.m.Deployments.WithLabelValues(l...)
	p.m.Failed.WithLabelValues(with(metrics.OutcomeFailed)...)
	p.m.Failed.WithLabelValues(with(metrics.OutcomeRolledBack)...)
	switch o.Kind {
	case delivery.KindRunning, delivery.KindComplete:
		if d, ok := o.LeadTime(); ok {
			p.m.LeadTime.WithLabelValues(with(o.Stage())...).Observe(d.Seconds())
		}
	case delivery.KindFailed:
		p.m.Failed.WithLabelValues(with(metrics.OutcomeFailed)...).Inc()
	case delivery.KindRolledBack:
		p.m.Failed.WithLabelValues(with(metrics.OutcomeRolledBack)...).Inc()
	}
	if o.Kind != delivery.KindComplete {
		return
	}
	p.m.Deployments.WithLabelValues(l...).Inc()
	if d, ok := o.RolloutDuration(); ok {
		p.m.RolloutDuration.WithLabelValues(l...).Observe(d.Seconds())
	}
	if d, ok := o.TimeToRestore(); ok {
		p.m.TimeToRestore.WithLabelValues(l...).Observe(d.Seconds())
	}
}

// RecordWithoutCommit implements WithoutCommitRecorder: deptracker_rollouts_without_commit_total{reason}.
func (p *Prometheus) RecordWithoutCommit(_ context.Context, r delivery.Rollout, reason string) {
	p.m.WithoutCommit.WithLabelValues(append([]string{reason}, labelValues(r)...)...).Inc()
}

// labelValues are the values of metrics.DeliveryLabels for r.
func labelValues(r delivery.Rollout) []string {
	return []string{r.Workload.Namespace, r.Workload.Kind, r.Workload.Name, r.Environment, r.Cluster}
}
