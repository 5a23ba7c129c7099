package e2e

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// TestOwnerAnnotationChange: a change of a Deployment's metadata.github.com/ annotations reaches GitHub
// without any pod event; an unrelated annotation posts nothing.
func TestOwnerAnnotationChange(t *testing.T) {
	ns := newNamespace(t)
	d := deployment(ns, "tags", 1, container("app", "ghcr.io/octo-org/tags:1"))
	d.Annotations = map[string]string{"metadata.github.com/team": "payments"}
	mustCreate(t, d)
	waitCount(t, ns, 1)
	update(t, d, func(d *appsv1.Deployment) { d.Annotations["example.com/unrelated"] = "x" })
	stayCount(t, ns, 1)
	update(t, d, func(d *appsv1.Deployment) { d.Annotations["metadata.github.com/team"] = "checkout" })
	rs := waitCount(t, ns, 2)
	if r := rs[1]; r.Tags["team"] != "checkout" || r.Status != record.StatusDeployed || r.Digest != rs[0].Digest {
		t.Errorf("after the annotation change: %+v, want the same digest deployed with team=checkout", r)
	}
}
