package delivery

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

// TestWorkloads: the annotations of a typed workload and its pod template come from the cache, those of
// another kind from the whole object; a workload that does not exist is not found.
func TestWorkloads(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Annotations: map[string]string{AnnotationRepository: "shop"}},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationImageRevision: sha1}},
		}},
	}
	cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(d).Build()
	argo := fakeObjects{
		"metadata": map[string]any{"annotations": map[string]any{AnnotationCommit: sha2}},
		"spec":     map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationCommitTime: "2025-06-01T10:00:00Z"}}}},
	}
	rollouts := owner.Workload{Group: "argoproj.io", Kind: "Rollout", Namespace: "shop", Name: "api"}
	tests := []struct {
		name      string
		r         Workloads
		w         owner.Workload
		want      Annotations
		wantFound bool
	}{
		{
			name: "a Deployment, from the cache", r: Workloads{Cache: cache}, w: web, wantFound: true,
			want: Annotations{Workload: map[string]string{AnnotationRepository: "shop"}, Template: map[string]string{AnnotationImageRevision: sha1}},
		},
		{name: "a Deployment that does not exist", r: Workloads{Cache: cache}, w: owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "gone"}},
		{
			name: "an Argo Rollout, from the object", r: Workloads{Cache: cache, Objects: argo}, w: rollouts, wantFound: true,
			want: Annotations{Workload: map[string]string{AnnotationCommit: sha2}, Template: map[string]string{AnnotationCommitTime: "2025-06-01T10:00:00Z"}},
		},
		{name: "another kind, no object reader", r: Workloads{Cache: cache}, w: rollouts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found, err := tt.r.Annotations(t.Context(), tt.w)
			if err != nil {
				t.Fatal(err)
			}
			if found != tt.wantFound {
				t.Errorf("found = %t, want %t", found, tt.wantFound)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Annotations() (-want +got):\n%s", diff)
			}
		})
	}
}
