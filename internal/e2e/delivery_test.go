package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/deployment-tracker/deployment-tracker/internal/apis/records/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	deliverysink "github.com/deployment-tracker/deployment-tracker/internal/sink/delivery"
)

// The repository the delivery metrics test deploys from: one commit per tag.
const (
	deliveryRepo = "delivery-web"
	shaD1        = "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"
	shaD2        = "d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2"
	shaD3        = "d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3"
)

// deliverySample reads the delivery metric name of the Deployment ns/workload from reg, with the labels extra
// besides the workload's: a histogram's sample count and sum (seconds), or a counter's value and 0. A series
// that does not exist reads 0, 0.
func deliverySample(t *testing.T, reg *prometheus.Registry, name, ns, workload string, extra map[string]string) (float64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering the tracker's metrics: %v", err)
	}
	want := map[string]string{"namespace": ns, "kind": "Deployment", "workload": workload, "environment": logicalEnvironment, "cluster": cluster}
	for k, v := range extra {
		want[k] = v
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if want[lp.GetName()] != lp.GetValue() {
					continue metric
				}
			}
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), 0
			}
		}
	}
	return 0, 0
}

// deliveryState is the state the delivery sink keeps in the ledger for revision rev of w.
func deliveryState(t *testing.T, w owner.Workload, rev int64) map[string]string {
	t.Helper()
	var l v1alpha1.RolloutRecordList
	if err := env.Client.List(context.Background(), &l, client.InNamespace(trackerNamespace)); err != nil {
		t.Fatalf("listing rollouts: %v", err)
	}
	for _, rr := range l.Items {
		s := rr.Spec
		if s.Workload.Kind != w.Kind || s.Workload.Namespace != w.Namespace || s.Workload.Name != w.Name || s.Revision != rev {
			continue
		}
		for _, st := range rr.Status.Sinks {
			if st.Sink == deliverysink.Name {
				return st.State
			}
		}
	}
	return nil
}

// within reports whether got (seconds) is want within tolerance; the ledger's times are cut to seconds.
func within(got float64, want, tolerance time.Duration) bool {
	d := time.Duration(got*float64(time.Second)) - want
	return d >= -tolerance && d <= tolerance
}

// TestDeliveryMetrics: delivery metrics as the binary wires them, against the GitHub fake's commits. A rollout
// of a Deployment whose image tag names a commit made an hour ago observes its lead times once, equal to the
// commit's age when the rollout's first pod ran and when it completed; a restarted tracker observes nothing of it
// again; a failed rollout is counted, and its fix observes the time to restore from the failure.
func TestDeliveryMetrics(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	committed := map[string]time.Time{shaD1: now.Add(-time.Hour), shaD2: now.Add(-30 * time.Minute), shaD3: now.Add(-10 * time.Minute)}
	commits := map[string]githubtest.Commit{}
	for sha, at := range committed {
		commits[sha] = githubtest.Commit{Message: "change " + sha[:2], AuthorDate: at.Add(-time.Hour), CommitterDate: at}
	}
	if err := gh.AddRepo(deliveryRepo, githubtest.Repo{
		Tags: map[string]string{"v1": shaD1, "v2": shaD2, "v3": shaD3}, Commits: commits,
	}); err != nil {
		t.Fatal(err)
	}
	current, restart := withTracker(t, trackerSettings{configuredRolloutSinks: true})
	ns := newNamespace(t)
	w := workloadOf("Deployment", ns, "web")
	sample := func(name string, extra map[string]string) (float64, float64) {
		t.Helper()
		return deliverySample(t, current().reg, name, ns, "web", extra)
	}
	const (
		leadTime      = "deptracker_lead_time_seconds"
		duration      = "deptracker_rollout_duration_seconds"
		deployments   = "deptracker_deployments_total"
		failed        = "deptracker_rollouts_failed_total"
		timeToRestore = "deptracker_time_to_restore_seconds"
		withoutCommit = "deptracker_rollouts_without_commit_total"
	)
	running, complete := map[string]string{"stage": "running"}, map[string]string{"stage": "complete"}

	d := deployment(ns, "web", 1, container("app", "ghcr.io/octo-org/dm-web:v1"))
	d.Annotations = map[string]string{deliverysink.AnnotationRepository: deliveryRepo}
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](5)
	mustCreate(t, d)
	rev1 := waitRollout(t, w, 1, rollout.PhaseCurrent)
	waitFor(t, "the lead times of revision 1", func() bool {
		r, _ := sample(leadTime, running)
		c, _ := sample(leadTime, complete)
		return r == 1 && c == 1
	})
	for _, lt := range []struct {
		stage map[string]string
		at    *time.Time
	}{{running, &rev1.FirstRunning.Time}, {complete, &rev1.Completed.Time}} {
		n, sum := sample(leadTime, lt.stage)
		want := lt.at.Sub(committed[shaD1])
		if n != 1 || !within(sum, want, time.Second) {
			t.Errorf("lead time %v: %g samples, %gs; want 1 of %s (the ledger's time, to the second)", lt.stage, n, sum, want)
		}
		if sum < time.Hour.Seconds() || sum > (time.Hour+2*time.Minute).Seconds() {
			t.Errorf("lead time %v: %gs, want an hour and a few seconds", lt.stage, sum)
		}
	}
	if n, _ := sample(deployments, nil); n != 1 {
		t.Errorf("%s = %g, want 1", deployments, n)
	}
	if n, sum := sample(duration, nil); n != 1 || sum <= 0 {
		t.Errorf("%s: %g samples of %gs, want 1", duration, n, sum)
	}
	if n, _ := sample(withoutCommit, map[string]string{"reason": "none"}); n != 0 {
		t.Errorf("%s{reason=none} = %g, want 0", withoutCommit, n)
	}
	waitFor(t, "the ledger to keep what was observed", func() bool {
		st := deliveryState(t, w, 1)
		return st[deliverysink.StateObserved] == "running,complete" && st[deliverysink.StateCommit] == shaD1
	})

	// A restart: the new instance's registry starts empty and must stay so for revision 1.
	restart(nil)
	waitFor(t, "the restarted tracker to deliver what is pending", func() bool { return current().app.Notifier.Idle() })
	time.Sleep(2 * time.Second) // a resumed tracker that observed again would have done so by now
	for _, m := range []struct {
		name  string
		extra map[string]string
	}{{leadTime, running}, {leadTime, complete}, {duration, nil}, {deployments, nil}} {
		if n, _ := sample(m.name, m.extra); n != 0 {
			t.Errorf("after the restart, %s%v = %g, want 0: revision 1 was observed again", m.name, m.extra, n)
		}
	}

	// A failed rollout (its pod runs, never ready, past the progress deadline), then a fix.
	update(t, d, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/dm-web:v2"
		d.Spec.Template.Labels[labelNeverReady] = "false"
	})
	waitRollout(t, w, 2, rollout.PhaseFailed)
	waitFor(t, "the failed rollout to be counted", func() bool {
		n, _ := sample(failed, map[string]string{"outcome": "failed"})
		return n == 1
	})
	failedAt, err := time.Parse(time.RFC3339Nano, deliveryState(t, w, 2)[deliverysink.StateFailedAt])
	if err != nil {
		t.Fatalf("the failure time the ledger keeps: %v", err)
	}
	update(t, d, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/dm-web:v3"
		delete(d.Spec.Template.Labels, labelNeverReady)
	})
	rev3 := waitRollout(t, w, 3, rollout.PhaseCurrent)
	waitRollout(t, w, 2, rollout.PhaseSuperseded)
	waitFor(t, "the time to restore", func() bool { n, _ := sample(timeToRestore, nil); return n == 1 })
	if n, sum := sample(timeToRestore, nil); !within(sum, rev3.Completed.Sub(failedAt), time.Second) || sum <= 0 {
		t.Errorf("time to restore: %g samples, %gs; want 1 of %s (the failure at %s to the fix's Current at %s)",
			n, sum, rev3.Completed.Sub(failedAt), failedAt, rev3.Completed)
	}
	if n, sum := sample(leadTime, complete); n != 1 || !within(sum, rev3.Completed.Sub(committed[shaD3]), time.Second) {
		t.Errorf("lead time of the fix: %g samples, %gs; want 1 of %s", n, sum, rev3.Completed.Sub(committed[shaD3]))
	}
	for _, c := range []struct {
		name  string
		extra map[string]string
		want  float64
	}{
		{deployments, nil, 1},
		{failed, map[string]string{"outcome": "failed"}, 1},
		{failed, map[string]string{"outcome": "rolled_back"}, 0},
		{leadTime, running, 2}, // the failed rollout's pod ran too
	} {
		if n, _ := sample(c.name, c.extra); n != c.want {
			t.Errorf("%s%v = %g, want %g", c.name, c.extra, n, c.want)
		}
	}
	if t.Failed() {
		t.Logf("ledger: %+v; delivery states: %v %v %v", rolloutsOf(t, w),
			deliveryState(t, w, 1), deliveryState(t, w, 2), deliveryState(t, w, 3))
	}
}
