package app

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// TestWorkloadTransform: the owner resolver's metadata of Deployments (the same cache as the rollout
// controller's Deployments) is stripped of managed fields as other owner metadata is, keeping the labels of the
// workload selector; typed Deployments are trimmed for the rollout controller.
func TestWorkloadTransform(t *testing.T) {
	tr := workloadTransform(rollout.NewTransform(), []string{"team"})
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Namespace: "shop", Name: "web", UID: "u1",
			Labels:        map[string]string{"team": "payments", "app": "web"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", FieldsV1: &metav1.FieldsV1{Raw: make([]byte, 4096)}}},
		}
	}
	got, err := tr(&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta()})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := got.(*metav1.PartialObjectMetadata)
	if !ok {
		t.Fatalf("metadata transformed to %T, want *PartialObjectMetadata", got)
	}
	if len(m.ManagedFields) != 0 || m.Labels["team"] != "payments" || m.Labels["app"] != "" || m.UID != "u1" {
		t.Errorf("metadata = %+v, want managed fields dropped, the team label only, identity kept", m.ObjectMeta)
	}
	got, err = tr(&appsv1.Deployment{ObjectMeta: meta()})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := got.(*appsv1.Deployment); !ok || len(d.ManagedFields) != 0 || d.Name != "web" {
		t.Errorf("Deployment transformed to %#v, want it trimmed", got)
	}
}
