package delivery

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

// samples reads the delivery metrics of reg as "name{label=value,…}" → the counter's value, or a histogram's
// "count/sum" (sum in seconds).
func samples(t *testing.T, reg *prometheus.Registry) map[string]string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, mf := range mfs {
		if !slices.Contains(deliveryMetricNames, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				if !slices.Contains(metrics.DeliveryLabels, lp.GetName()) {
					ls = append(ls, lp.GetName()+"="+lp.GetValue())
				}
			}
			key := mf.GetName() + "{" + strings.Join(ls, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = fmt.Sprint(m.GetCounter().GetValue())
			case dto.MetricType_HISTOGRAM:
				out[key] = fmt.Sprintf("%d/%g", m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum())
			}
		}
	}
	return out
}

var deliveryMetricNames = []string{
	"deptracker_lead_time_seconds", "deptracker_rollout_duration_seconds", "deptracker_deployments_total",
	"deptracker_rollouts_failed_total", "deptracker_time_to_restore_seconds", "deptracker_rollouts_without_commit_total",
}

// TestPrometheus: each observation, with times of the fake clock, moves the metrics it stands for, by the
// durations the model derives; unknown durations are not observed; counters start at zero.
func TestPrometheus(t *testing.T) {
	base := delivery.Rollout{
		Workload: web, Environment: "production", Cluster: "eu-1", Revision: 4, Commit: "a1a1a1a", CommitTime: at(-90),
		Submitted: at(1), FirstRunning: at(2), Completed: at(5),
	}
	with := func(f func(*delivery.Rollout)) delivery.Rollout { r := base; f(&r); return r }
	zeros := map[string]string{
		"deptracker_deployments_total{}":                        "0",
		"deptracker_rollouts_failed_total{outcome=failed}":      "0",
		"deptracker_rollouts_failed_total{outcome=rolled_back}": "0",
	}
	plus := func(m map[string]string) map[string]string { out := maps.Clone(zeros); maps.Copy(out, m); return out }
	tests := []struct {
		name    string
		obs     []delivery.Observation
		without []string
		want    map[string]string
	}{
		{
			name: "running: lead time to running",
			obs:  []delivery.Observation{{Kind: delivery.KindRunning, Rollout: base}},
			want: plus(map[string]string{"deptracker_lead_time_seconds{stage=running}": "1/5520"}),
		},
		{
			name: "complete: lead time, rollout duration, a deployment",
			obs:  []delivery.Observation{{Kind: delivery.KindComplete, Rollout: base}},
			want: plus(map[string]string{
				"deptracker_lead_time_seconds{stage=complete}": "1/5700",
				"deptracker_rollout_duration_seconds{}":        "1/240",
				"deptracker_deployments_total{}":               "1",
			}),
		},
		{
			name: "complete after failures: time to restore",
			obs: []delivery.Observation{{Kind: delivery.KindComplete, Rollout: with(func(r *delivery.Rollout) {
				r.FailedSince = at(-25)
			})}},
			want: plus(map[string]string{
				"deptracker_lead_time_seconds{stage=complete}": "1/5700",
				"deptracker_rollout_duration_seconds{}":        "1/240",
				"deptracker_deployments_total{}":               "1",
				"deptracker_time_to_restore_seconds{}":         "1/1800",
			}),
		},
		{
			name: "complete without commit nor submission: a deployment only",
			obs: []delivery.Observation{{Kind: delivery.KindComplete, Rollout: with(func(r *delivery.Rollout) {
				r.CommitTime, r.Submitted = time.Time{}, time.Time{}
			})}},
			want: plus(map[string]string{"deptracker_deployments_total{}": "1"}),
		},
		{
			name: "a commit after the rollout (clocks disagree): no lead time",
			obs: []delivery.Observation{{Kind: delivery.KindRunning, Rollout: with(func(r *delivery.Rollout) {
				r.CommitTime = at(3)
			})}},
			want: zeros,
		},
		{
			name: "failed and rolled back",
			obs: []delivery.Observation{
				{Kind: delivery.KindFailed, Rollout: base},
				{Kind: delivery.KindRolledBack, Rollout: with(func(r *delivery.Rollout) { r.Revision = 5 })},
				{Kind: delivery.KindFailed, Rollout: with(func(r *delivery.Rollout) { r.Revision = 6 })},
			},
			want: plus(map[string]string{
				"deptracker_rollouts_failed_total{outcome=failed}":      "2",
				"deptracker_rollouts_failed_total{outcome=rolled_back}": "1",
			}),
		},
		{
			name:    "without commit, by reason",
			without: []string{metrics.WithoutCommitNone, metrics.WithoutCommitNotFound, metrics.WithoutCommitNone},
			want: map[string]string{
				"deptracker_rollouts_without_commit_total{reason=none}":      "2",
				"deptracker_rollouts_without_commit_total{reason=not_found}": "1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			p := NewPrometheus(metrics.New(reg).Delivery)
			for _, o := range tt.obs {
				p.Record(t.Context(), o)
			}
			for _, reason := range tt.without {
				p.RecordWithoutCommit(t.Context(), base, reason)
			}
			if tt.want == nil {
				tt.want = map[string]string{}
			}
			if diff := cmp.Diff(tt.want, samples(t, reg)); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPrometheusLabels: the series are those of the workload, environment and cluster, nothing else (no
// commit, revision or digest).
func TestPrometheusLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := NewPrometheus(metrics.New(reg).Delivery)
	db := owner.Workload{Group: "apps", Kind: "StatefulSet", Namespace: "data", Name: "db"}
	for i, w := range []owner.Workload{web, db, web} {
		p.Record(t.Context(), delivery.Observation{Kind: delivery.KindComplete, Rollout: delivery.Rollout{
			Workload: w, Environment: "production", Cluster: "eu-1", Revision: int64(i), Commit: fmt.Sprint(i),
			CommitTime: at(0), Completed: at(10),
		}})
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "deptracker_deployments_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			got[strings.Join(ls, ",")] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"cluster=eu-1,environment=production,kind=Deployment,namespace=shop,workload=web": 2,
		"cluster=eu-1,environment=production,kind=StatefulSet,namespace=data,workload=db": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deptracker_deployments_total series (-want +got):\n%s", diff)
	}
}

// TestHistogramsAreNative: the histograms have classic buckets from half a minute to a week, and are native
// histograms as well (a schema, exponential buckets).
func TestHistogramsAreNative(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := NewPrometheus(metrics.New(reg).Delivery)
	p.Record(t.Context(), delivery.Observation{Kind: delivery.KindComplete, Rollout: delivery.Rollout{
		Workload: web, CommitTime: at(0), Submitted: at(1), Completed: at(61), FailedSince: at(30),
	}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_HISTOGRAM || !slices.Contains(deliveryMetricNames, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			seen++
			h := m.GetHistogram()
			if h.Schema == nil || len(h.GetPositiveSpan()) == 0 {
				t.Errorf("%s: not a native histogram (schema %v, spans %v)", mf.GetName(), h.Schema, h.GetPositiveSpan())
			}
			if len(h.GetBucket()) < 10 {
				t.Errorf("%s: %d classic buckets, want those of seconds to days", mf.GetName(), len(h.GetBucket()))
			}
		}
	}
	if seen != 3 {
		t.Errorf("saw %d histogram series, want 3 (lead time, rollout duration, time to restore)", seen)
	}
}
