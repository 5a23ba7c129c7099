package e2e

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// TestScopeChanges: a workload annotated deployment-tracker.io/ignore gets no record and no rollout; a
// Deployment recorded, then out of the scope (its namespace no longer matches -namespace-selector while the
// tracker was stopped), keeps its record through the restart and through its deletion: it left the scope, it
// did not stop; a new revision of it out of the scope is no rollout either.
func TestScopeChanges(t *testing.T) {
	ns := newNamespace(t)
	setShard := func(shard string) {
		update(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, func(n *corev1.Namespace) {
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			n.Labels["e2e.deployment-tracker.io/shard"] = shard
		})
	}
	setShard("a")
	current, restart := withTracker(t, trackerSettings{args: []string{"-namespace-selector=e2e.deployment-tracker.io/shard=a"}})

	app := container("app", "ghcr.io/octo-org/web:1.0")
	web := deployment(ns, "web", 1, app)
	mustCreate(t, web)
	batch := deployment(ns, "batch", 1, container("app", "ghcr.io/octo-org/batch:1.0"))
	batch.Annotations = map[string]string{podwatch.AnnotationIgnore: "true"}
	mustCreate(t, batch)
	waitRunning(t, ns, batch.Spec.Selector.MatchLabels, 1)
	got := waitCount(t, ns, 1)
	if w := want(ns, "web", "app", "ghcr.io/octo-org/web", digestOf(t, app.Image), "1.0", record.StatusDeployed); got[0].DeploymentName != w.DeploymentName || got[0].Status != w.Status {
		t.Fatalf("records = %+v, want only %s deployed (batch is ignored)", got, w.DeploymentName)
	}
	webW := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}
	batchW := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "batch"}
	waitRollout(t, webW, 1, rollout.PhaseCurrent)
	if got := notes.phases(batchW, 1); len(got) != 0 {
		t.Errorf("rollout of the ignored Deployment notified: %v, want nothing", got)
	}

	restart(func() { setShard("b") })
	deadline := time.Now().Add(waitTimeout)
	for !current().app.Tracker.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the restarted tracker did not resume")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stayCount(t, ns, 1) // no decommissioned record at the resume

	update(t, web, func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/web:1.1" })
	waitRunning(t, ns, map[string]string{"app": "web"}, 1)
	stayCount(t, ns, 1)
	if got := notes.phases(webW, 2); len(got) != 0 {
		t.Errorf("revision 2 of the Deployment out of the scope notified: %v, want nothing", got)
	}

	mustDelete(t, web)
	stayCount(t, ns, 1) // nor when it goes, out of the scope
}
