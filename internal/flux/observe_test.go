package flux

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
)

// TestPrometheus: a lead time is one histogram sample of the Kustomization; a revision without one counts by
// reason, and leaves the histogram alone.
func TestPrometheus(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	p := Prometheus{LeadTime: m.Flux.ApplyLeadTime, WithoutCommit: m.Flux.RevisionsWithoutCommit}
	k := types.NamespacedName{Namespace: "flux-system", Name: "apps"}
	p.Record(t.Context(), Observation{Kustomization: k, Cluster: "eu-1", LeadTime: 90 * time.Second})
	p.Record(t.Context(), Observation{Kustomization: k, Cluster: "eu-1", Reason: ReasonCommitNotFound})
	want := `
# HELP deptracker_flux_revisions_without_commit_total Revisions applied by Flux Kustomizations without a lead time, by reason (none, invalid, no_repository, lookup_disabled, not_found, rejected, lookup_failed, applied_before_commit).
# TYPE deptracker_flux_revisions_without_commit_total counter
deptracker_flux_revisions_without_commit_total{cluster="eu-1",name="apps",namespace="flux-system",reason="not_found"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "deptracker_flux_revisions_without_commit_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.Flux.ApplyLeadTime); n != 1 {
		t.Errorf("%d lead time series, want 1", n)
	}
	mf, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mf {
		if f.GetName() != "deptracker_flux_apply_lead_time_seconds" {
			continue
		}
		hist := f.GetMetric()[0].GetHistogram()
		if hist.GetSampleCount() != 1 || hist.GetSampleSum() != 90 {
			t.Errorf("lead time: %d samples, sum %v; want 1 of 90s", hist.GetSampleCount(), hist.GetSampleSum())
		}
		if len(hist.GetPositiveSpan()) == 0 || len(hist.GetBucket()) == 0 {
			t.Errorf("want both a native histogram and classic buckets: %v", hist)
		}
		return
	}
	t.Error("deptracker_flux_apply_lead_time_seconds not gathered")
}
